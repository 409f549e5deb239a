// UTF-8, properties, NFC and lowercasing over zs_ustr (see unicode.h).
#include "models/unicode.h"
#include <stdlib.h>
#include <string.h>

void zs_ustr_free(zs_ustr *s) {
    free(s->v);
    s->v = NULL;
    s->n = s->cap = 0;
}

zs_status zs_ustr_reserve(zs_ustr *s, size_t cap) {
    if (cap <= s->cap) return ZS_OK;
    size_t c = s->cap ? s->cap : 16;
    while (c < cap) c *= 2;
    uint32_t *v = realloc(s->v, c * sizeof *v);
    if (!v) return ZS_ERR(ZS_ENOMEM, "out of memory (%zu code points)", c);
    s->v = v;
    s->cap = c;
    return ZS_OK;
}

zs_status zs_ustr_push(zs_ustr *s, uint32_t c) {
    if (s->n == s->cap) ZS_TRY(zs_ustr_reserve(s, s->n + 1));
    s->v[s->n++] = c;
    return ZS_OK;
}

zs_status zs_ustr_append(zs_ustr *s, const uint32_t *v, size_t n) {
    ZS_TRY(zs_ustr_reserve(s, s->n + n));
    if (n) memcpy(s->v + s->n, v, n * sizeof *v);
    s->n += n;
    return ZS_OK;
}

int zs_ustr_eq(const zs_ustr *a, const zs_ustr *b) {
    return a->n == b->n && (a->n == 0 || !memcmp(a->v, b->v, a->n * sizeof *a->v));
}

void zs_ustr_swap(zs_ustr *a, zs_ustr *b) {
    zs_ustr t = *a;
    *a = *b;
    *b = t;
}

zs_status zs_utf8_decode(const char *str, size_t n, zs_ustr *out) {
    const uint8_t *s = (const uint8_t *)str;
    ZS_TRY(zs_ustr_reserve(out, out->n + n));
    size_t i = 0;
    while (i < n) {
        uint8_t b = s[i];
        if (b < 0x80) { out->v[out->n++] = b; i++; continue; }
        int need;
        uint32_t c;
        uint8_t lo = 0x80, hi = 0xBF;  // allowed range of the second byte (no overlongs/surrogates)
        if (b >= 0xC2 && b <= 0xDF) need = 1, c = b & 0x1F;
        else if (b >= 0xE0 && b <= 0xEF) {
            need = 2, c = b & 0x0F;
            if (b == 0xE0) lo = 0xA0;
            if (b == 0xED) hi = 0x9F;
        } else if (b >= 0xF0 && b <= 0xF4) {
            need = 3, c = b & 0x07;
            if (b == 0xF0) lo = 0x90;
            if (b == 0xF4) hi = 0x8F;
        } else { out->v[out->n++] = 0xFFFD; i++; continue; }
        size_t k = 1;
        for (; k <= (size_t)need; k++) {
            if (i + k >= n) break;
            uint8_t x = s[i + k];
            if (k == 1 ? (x < lo || x > hi) : (x & 0xC0) != 0x80) break;
            c = c << 6 | (x & 0x3F);
        }
        if (k <= (size_t)need) { out->v[out->n++] = 0xFFFD; i += k; continue; }  // maximal invalid subpart
        out->v[out->n++] = c;
        i += k;
    }
    return ZS_OK;
}

int zs_utf8_put(uint32_t c, char *buf) {
    uint8_t *b = (uint8_t *)buf;
    if (c < 0x80) { b[0] = (uint8_t)c; return 1; }
    if (c < 0x800) { b[0] = (uint8_t)(0xC0 | c >> 6); b[1] = (uint8_t)(0x80 | (c & 0x3F)); return 2; }
    if (c < 0x10000) {
        b[0] = (uint8_t)(0xE0 | c >> 12); b[1] = (uint8_t)(0x80 | (c >> 6 & 0x3F)); b[2] = (uint8_t)(0x80 | (c & 0x3F));
        return 3;
    }
    b[0] = (uint8_t)(0xF0 | c >> 18); b[1] = (uint8_t)(0x80 | (c >> 12 & 0x3F));
    b[2] = (uint8_t)(0x80 | (c >> 6 & 0x3F)); b[3] = (uint8_t)(0x80 | (c & 0x3F));
    return 4;
}

static uint32_t range_find(const zs_urange *r, int n, uint32_t c) {
    int lo = 0, hi = n - 1;
    while (lo <= hi) {
        int m = (lo + hi) / 2;
        if (c < r[m].lo) hi = m - 1;
        else if (c > r[m].hi) lo = m + 1;
        else return r[m].v;
    }
    return 0;
}

uint32_t zs_uprop(uint32_t c) {
    static uint16_t ascii[128];  // hot path: ASCII, filled once (the table is constant)
    static int init;
    if (c < 128) {
        if (!init) {
            for (uint32_t i = 0; i < 128; i++) ascii[i] = (uint16_t)range_find(zs_uprops, zs_uprops_n, i);
            init = 1;
        }
        return ascii[c];
    }
    return range_find(zs_uprops, zs_uprops_n, c);
}

int zs_ccc_of(uint32_t c) { return c < 0x300 ? 0 : (int)range_find(zs_ccc, zs_ccc_n, c); }

const zs_umap *zs_umap_find(const zs_umap *m, int n, uint32_t c) {
    int lo = 0, hi = n - 1;
    while (lo <= hi) {
        int mid = (lo + hi) / 2;
        if (c < m[mid].cp) hi = mid - 1;
        else if (c > m[mid].cp) lo = mid + 1;
        else return &m[mid];
    }
    return NULL;
}

int zs_umap_len(const zs_umap *e) {
    int k = 0;
    while (k < 4 && e->to[k]) k++;
    return k;
}

// Hangul syllables are decomposed and composed algorithmically (Unicode ch. 3.12).
enum { SBASE = 0xAC00, LBASE = 0x1100, VBASE = 0x1161, TBASE = 0x11A7, LCOUNT = 19, VCOUNT = 21, TCOUNT = 28,
       NCOUNT = VCOUNT * TCOUNT, SCOUNT = LCOUNT * NCOUNT };

static uint32_t compose(uint32_t a, uint32_t b) {
    if (a >= LBASE && a < LBASE + LCOUNT && b >= VBASE && b < VBASE + VCOUNT)
        return SBASE + ((a - LBASE) * VCOUNT + (b - VBASE)) * TCOUNT;
    if (a >= SBASE && a < SBASE + SCOUNT && (a - SBASE) % TCOUNT == 0 && b > TBASE && b < TBASE + TCOUNT)
        return a + (b - TBASE);
    int lo = 0, hi = zs_comp_n - 1;
    while (lo <= hi) {
        int m = (lo + hi) / 2;
        const zs_ucomp *e = &zs_comp[m];
        if (a < e->a || (a == e->a && b < e->b)) hi = m - 1;
        else if (a > e->a || b > e->b) lo = m + 1;
        else return e->c;
    }
    return 0;
}

zs_status zs_nfc(zs_ustr *s) {
    // Quick check: pure ASCII / Latin-1 letters without combining marks are already NFC.
    size_t i = 0;
    while (i < s->n && s->v[i] < 0x300) i++;
    if (i == s->n) return ZS_OK;
    zs_ustr d = {0};
    zs_status st = zs_ustr_reserve(&d, s->n + 8);
    for (i = 0; st == ZS_OK && i < s->n; i++) {  // full canonical decomposition
        uint32_t c = s->v[i];
        const zs_umap *e;
        if (c >= SBASE && c < SBASE + SCOUNT) {
            uint32_t k = c - SBASE;
            st = zs_ustr_push(&d, LBASE + k / NCOUNT);
            if (st == ZS_OK) st = zs_ustr_push(&d, VBASE + k % NCOUNT / TCOUNT);
            if (st == ZS_OK && k % TCOUNT) st = zs_ustr_push(&d, TBASE + k % TCOUNT);
        } else if (c >= 0xC0 && (e = zs_umap_find(zs_nfd, zs_nfd_n, c))) {
            st = zs_ustr_append(&d, e->to, (size_t)zs_umap_len(e));
        } else {
            st = zs_ustr_push(&d, c);
        }
    }
    if (st != ZS_OK) { zs_ustr_free(&d); return st; }
    // Canonical ordering: stable insertion sort of each run of non-starters by combining class.
    for (i = 1; i < d.n; i++) {
        int cc = zs_ccc_of(d.v[i]);
        if (!cc) continue;
        size_t j = i;
        uint32_t c = d.v[i];
        while (j > 0) {
            int pc = zs_ccc_of(d.v[j - 1]);
            if (pc <= cc) break;
            d.v[j] = d.v[j - 1];
            j--;
        }
        d.v[j] = c;
    }
    // Canonical composition: a character joins the last starter unless blocked.
    size_t o = 0;
    long starter = -1;
    int last_cc = 0;
    for (i = 0; i < d.n; i++) {
        uint32_t c = d.v[i];
        int cc = zs_ccc_of(c);
        if (starter >= 0) {
            int adjacent = (long)o - 1 == starter;
            if (adjacent || (last_cc != 0 && last_cc < cc)) {
                uint32_t k = compose(d.v[starter], c);
                if (k) { d.v[starter] = k; continue; }
            }
        }
        if (cc == 0) starter = (long)o;
        last_cc = cc;
        d.v[o++] = c;
    }
    d.n = o;
    zs_ustr_swap(s, &d);
    zs_ustr_free(&d);
    return ZS_OK;
}

static zs_status lower_with(zs_ustr *s, const zs_umap *m, int n, int final_sigma) {
    size_t i = 0;
    while (i < s->n && s->v[i] < 128 && !(s->v[i] >= 'A' && s->v[i] <= 'Z')) i++;
    if (i == s->n) return ZS_OK;
    zs_ustr o = {0};
    zs_status st = zs_ustr_reserve(&o, s->n + 4);
    for (i = 0; st == ZS_OK && i < s->n; i++) {
        uint32_t c = s->v[i];
        if (c < 128) { st = zs_ustr_push(&o, c >= 'A' && c <= 'Z' ? c + 32 : c); continue; }
        if (c == 0x3A3 && final_sigma) {
            // CPython: \p{cased}\p{case-ignorable}* SIGMA !(\p{case-ignorable}*\p{cased}) -> final form.
            long j = (long)i - 1;
            while (j >= 0 && (zs_uprop(s->v[j]) & ZU_PY_IGN)) j--;
            int fin = j >= 0 && (zs_uprop(s->v[j]) & ZU_PY_CASED);
            if (fin) {
                size_t k = i + 1;
                while (k < s->n && (zs_uprop(s->v[k]) & ZU_PY_IGN)) k++;
                fin = k == s->n || !(zs_uprop(s->v[k]) & ZU_PY_CASED);
            }
            st = zs_ustr_push(&o, fin ? 0x3C2 : 0x3C3);
            continue;
        }
        const zs_umap *e = zs_umap_find(m, n, c);
        st = e ? zs_ustr_append(&o, e->to, (size_t)zs_umap_len(e)) : zs_ustr_push(&o, c);
    }
    if (st == ZS_OK) zs_ustr_swap(s, &o);
    zs_ustr_free(&o);
    return st;
}

zs_status zs_lower_py(zs_ustr *s) { return lower_with(s, zs_py_lower, zs_py_lower_n, 1); }
zs_status zs_lower_hf(zs_ustr *s) { return lower_with(s, zs_hf_lower, zs_hf_lower_n, 0); }
