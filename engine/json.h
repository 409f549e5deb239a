// Small JSON helpers over cJSON for config files (config.json, scheduler_config.json, ...).
#ifndef ZS_JSON_H
#define ZS_JSON_H
#include <cjson/cJSON.h>
#include "status.h"

// Reads path and parses it as one JSON object (nothing but whitespace after it). *out is
// cJSON_Delete'd by the caller. Errors name the file.
zs_status zs_json_read_object(const char *path, cJSON **out);
// The same for text in memory; `what` names it in errors.
zs_status zs_json_parse_object(const char *text, const char *what, cJSON **out);
#endif
