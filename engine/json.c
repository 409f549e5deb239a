#include "json.h"
#include <stdio.h>
#include <stdlib.h>

zs_status zs_json_read_object(const char *path, cJSON **out) {
    *out = NULL;
    FILE *f = fopen(path, "rb");
    if (!f) return ZS_ERR(ZS_EIO, "%s: cannot open", path);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = n >= 0 && n < (1 << 24) ? malloc((size_t)n + 1) : NULL;  // configs are small
    if (!buf || fread(buf, 1, (size_t)n, f) != (size_t)n) {
        fclose(f);
        free(buf);
        return ZS_ERR(ZS_EIO, "%s: cannot read (or larger than 16 MiB)", path);
    }
    fclose(f);
    buf[n] = 0;
    zs_status s = zs_json_parse_object(buf, path, out);
    free(buf);
    return s;
}

zs_status zs_json_parse_object(const char *text, const char *what, cJSON **out) {
    const char *end = NULL;
    *out = cJSON_ParseWithOpts(text, &end, 1);
    if (!*out || !cJSON_IsObject(*out)) {
        cJSON_Delete(*out);
        *out = NULL;
        return ZS_ERR(ZS_EFORMAT, "%s: not a JSON object", what);
    }
    return ZS_OK;
}
