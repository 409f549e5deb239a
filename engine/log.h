// Logging for long loops: a one-line progress display on stderr (items/s, ETA; redrawn in
// place on a terminal, a plain line every few seconds otherwise) and JSON-lines metrics.
#ifndef ZS_LOG_H
#define ZS_LOG_H
#include <stdint.h>
#include <stdio.h>
#include "status.h"

typedef struct {
    const char *what;   // "steps", "images", ...
    int64_t total;      // 0 if unknown
    int64_t done;
    double t_start, t_last_print;
    int tty;
    FILE *out;          // stderr by default
} zs_progress;

double zs_now(void);  // monotonic seconds
void zs_progress_begin(zs_progress *p, const char *what, int64_t total);
// Advances by n; `extra` (may be NULL) is appended, e.g. "loss 0.1234".
void zs_progress_step(zs_progress *p, int64_t n, const char *extra);
void zs_progress_end(zs_progress *p);
// Formats the progress line into buf (used by zs_progress_step; exposed for tests).
void zs_progress_format(const zs_progress *p, double now, const char *extra, char *buf, size_t n);

// JSON lines: one object per record, flushed per line so a killed run keeps its log.
typedef struct {
    FILE *f;
    int first;  // within the current record
} zs_jsonl;

zs_status zs_jsonl_open(zs_jsonl *j, const char *path, int append);
void zs_jsonl_begin(zs_jsonl *j);
void zs_jsonl_str(zs_jsonl *j, const char *key, const char *v);
void zs_jsonl_num(zs_jsonl *j, const char *key, double v);  // non-finite written as null
void zs_jsonl_int(zs_jsonl *j, const char *key, int64_t v);
void zs_jsonl_end(zs_jsonl *j);
void zs_jsonl_close(zs_jsonl *j);
// Writes s as a JSON string literal (with quotes) to f.
void zs_json_write_string(FILE *f, const char *s);

#endif
