#include "log.h"
#include <math.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

double zs_now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + t.tv_nsec * 1e-9;
}

void zs_progress_begin(zs_progress *p, const char *what, int64_t total) {
    memset(p, 0, sizeof *p);
    p->what = what;
    p->total = total;
    p->out = stderr;
    p->tty = isatty(fileno(stderr));
    p->t_start = p->t_last_print = zs_now();
}

static void fmt_dur(double s, char *b, size_t n) {
    if (!isfinite(s) || s < 0) { snprintf(b, n, "?"); return; }
    long t = (long)(s + 0.5);
    if (t >= 3600) snprintf(b, n, "%ldh%02ldm", t / 3600, t / 60 % 60);
    else if (t >= 60) snprintf(b, n, "%ldm%02lds", t / 60, t % 60);
    else snprintf(b, n, "%lds", t);
}

void zs_progress_format(const zs_progress *p, double now, const char *extra, char *buf, size_t n) {
    double el = now - p->t_start, rate = el > 0 ? p->done / el : 0;
    char e[32], eta[32];
    fmt_dur(el, e, sizeof e);
    fmt_dur(rate > 0 && p->total > 0 ? (p->total - p->done) / rate : NAN, eta, sizeof eta);
    if (p->total > 0)
        snprintf(buf, n, "%s %lld/%lld (%.1f%%) %.3g/s elapsed %s eta %s%s%s", p->what, (long long)p->done,
                 (long long)p->total, 100.0 * p->done / p->total, rate, e, eta, extra ? " " : "", extra ? extra : "");
    else
        snprintf(buf, n, "%s %lld %.3g/s elapsed %s%s%s", p->what, (long long)p->done, rate, e, extra ? " " : "",
                 extra ? extra : "");
}

void zs_progress_step(zs_progress *p, int64_t n, const char *extra) {
    p->done += n;
    double now = zs_now();
    int last = p->total > 0 && p->done >= p->total;
    // Redraw at most 10x/s on a terminal; every 10 s into a log file.
    if (!last && now - p->t_last_print < (p->tty ? 0.1 : 10.0)) return;
    p->t_last_print = now;
    char line[512];
    zs_progress_format(p, now, extra, line, sizeof line);
    if (p->tty) fprintf(p->out, "\r\033[K%s", line);
    else fprintf(p->out, "%s\n", line);
    fflush(p->out);
}

void zs_progress_end(zs_progress *p) {
    if (p->tty) fputc('\n', p->out);
    fflush(p->out);
}

void zs_json_write_string(FILE *f, const char *s) {
    fputc('"', f);
    for (const unsigned char *c = (const unsigned char *)s; *c; c++) {
        if (*c == '"' || *c == '\\') fprintf(f, "\\%c", *c);
        else if (*c == '\n') fputs("\\n", f);
        else if (*c == '\t') fputs("\\t", f);
        else if (*c < 0x20) fprintf(f, "\\u%04x", *c);
        else fputc(*c, f);
    }
    fputc('"', f);
}

zs_status zs_jsonl_open(zs_jsonl *j, const char *path, int append) {
    j->f = fopen(path, append ? "a" : "w");
    j->first = 1;
    if (!j->f) return ZS_ERR(ZS_EIO, "%s: cannot open for writing", path);
    return ZS_OK;
}

void zs_jsonl_begin(zs_jsonl *j) {
    fputc('{', j->f);
    j->first = 1;
}

static void key(zs_jsonl *j, const char *k) {
    if (!j->first) fputs(", ", j->f);
    j->first = 0;
    zs_json_write_string(j->f, k);
    fputs(": ", j->f);
}

void zs_jsonl_str(zs_jsonl *j, const char *k, const char *v) { key(j, k); zs_json_write_string(j->f, v); }
void zs_jsonl_num(zs_jsonl *j, const char *k, double v) {
    key(j, k);
    if (isfinite(v)) fprintf(j->f, "%.9g", v);
    else fputs("null", j->f);
}
void zs_jsonl_int(zs_jsonl *j, const char *k, int64_t v) { key(j, k); fprintf(j->f, "%lld", (long long)v); }
void zs_jsonl_end(zs_jsonl *j) {
    fputs("}\n", j->f);
    fflush(j->f);
}
void zs_jsonl_close(zs_jsonl *j) {
    if (j->f) fclose(j->f);
    j->f = NULL;
}
