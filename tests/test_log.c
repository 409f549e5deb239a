// Progress line and JSON-lines logging.
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cjson/cJSON.h>
#include "engine/log.h"
#include "test.h"

TEST(log_progress_format) {
    zs_progress p;
    zs_progress_begin(&p, "steps", 200);
    p.done = 50;
    char buf[256];
    zs_progress_format(&p, p.t_start + 10.0, "loss 0.5", buf, sizeof buf);
    // 50 done in 10 s: 5/s, 150 left: eta 30 s.
    CHECK(strstr(buf, "50/200 (25.0%)") && strstr(buf, "5/s") && strstr(buf, "eta 30s") && strstr(buf, "loss 0.5"),
          "got '%s'", buf);
    p.total = 0;
    zs_progress_format(&p, p.t_start + 4000.0, NULL, buf, sizeof buf);
    CHECK(strstr(buf, "elapsed 1h06m") && !strstr(buf, "eta"), "got '%s'", buf);
    return ZT_PASS;
}

TEST(log_jsonl_roundtrip) {
    char path[] = "/tmp/zsmlc_test_jsonlXXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0, "mkstemp");
    close(fd);
    zs_jsonl j;
    CHECK_OK(zs_jsonl_open(&j, path, 0));
    zs_jsonl_begin(&j);
    zs_jsonl_str(&j, "name", "a \"quoted\"\ttab\n");
    zs_jsonl_num(&j, "loss", 0.25);
    zs_jsonl_num(&j, "bad", 0.0 / 0.0);
    zs_jsonl_int(&j, "step", 7);
    zs_jsonl_end(&j);
    zs_jsonl_close(&j);
    FILE *f = fopen(path, "r");
    char line[512] = {0};
    CHECK(f && fgets(line, sizeof line, f), "read back");
    fclose(f);
    remove(path);
    cJSON *o = cJSON_Parse(line);
    CHECK(o, "valid JSON: %s", line);
    int ok = !strcmp(cJSON_GetObjectItem(o, "name")->valuestring, "a \"quoted\"\ttab\n") &&
             cJSON_GetObjectItem(o, "loss")->valuedouble == 0.25 && cJSON_IsNull(cJSON_GetObjectItem(o, "bad")) &&
             cJSON_GetObjectItem(o, "step")->valueint == 7;
    cJSON_Delete(o);
    CHECK(ok, "fields: %s", line);
    return ZT_PASS;
}
