// ftfy.fix_text subset, html.unescape and the two cleanup pipelines (see text_clean.h).
// Each step mirrors the Python source it replaces; the order of steps matters and is ftfy's.
#include "models/text_clean.h"
#include <stdlib.h>
#include <string.h>

#define PUSH(o, c) ZS_TRY(zs_ustr_push((o), (c)))

static int is_ascii_alnum(uint32_t c) { return (c >= '0' && c <= '9') || ((c | 32) >= 'a' && (c | 32) <= 'z'); }
static int is_hex(uint32_t c) { return (c >= '0' && c <= '9') || ((c | 32) >= 'a' && (c | 32) <= 'f'); }

// Entity lookup by name (ASCII code points, ';' included if part of the key); flag 1 or 2.
static const zs_entity *entity_find(const uint32_t *v, size_t n, int flag) {
    char key[40];
    if (n == 0 || n >= sizeof key) return NULL;
    for (size_t i = 0; i < n; i++) {
        if (v[i] >= 128) return NULL;
        key[i] = (char)v[i];
    }
    key[n] = 0;
    int lo = 0, hi = zs_entities_n - 1;
    while (lo <= hi) {
        int m = (lo + hi) / 2, c = strcmp(key, zs_entities[m].name);
        if (c < 0) hi = m - 1;
        else if (c > 0) lo = m + 1;
        else return (zs_entities[m].flags & flag) ? &zs_entities[m] : NULL;
    }
    return NULL;
}

static zs_status push_utf8(zs_ustr *o, const char *s) { return zs_utf8_decode(s, strlen(s), o); }

// html._replace_charref for a numeric reference (num saturates above 0x10FFFF).
static zs_status push_charref(zs_ustr *o, uint64_t num) {
    const zs_umap *e = num < 0x110000 ? zs_umap_find(zs_html_invalid_charrefs, zs_html_invalid_charrefs_n, (uint32_t)num) : NULL;
    if (e) return zs_ustr_append(o, e->to, (size_t)zs_umap_len(e));
    if ((num >= 0xD800 && num <= 0xDFFF) || num > 0x10FFFF) return zs_ustr_push(o, 0xFFFD);
    for (int i = 0; i < zs_html_invalid_codepoints_n; i++)
        if (zs_html_invalid_codepoints[i] == num) return ZS_OK;
    return zs_ustr_push(o, (uint32_t)num);
}

static uint64_t parse_num(const uint32_t *v, size_t n, int base) {
    uint64_t x = 0;
    for (size_t i = 0; i < n; i++) {
        uint32_t c = v[i] | (v[i] >= 'A' ? 32 : 0);
        x = x * (uint64_t)base + (c <= '9' ? c - '0' : c - 'a' + 10);
        if (x > 0x110000) x = 0x110000;
    }
    return x;
}

// ftfy.fixes.unescape_html: &#?[0-9A-Za-z]{1,24}; replaced by ftfy's entity table, or a numeric
// reference through html.unescape unless the result still holds ';'.
static zs_status ftfy_unescape(const zs_ustr *s, zs_ustr *o) {
    for (size_t i = 0; i < s->n;) {
        uint32_t c = s->v[i];
        if (c != '&') { PUSH(o, c); i++; continue; }
        size_t j = i + 1, k = 0;
        int hash = j < s->n && s->v[j] == '#';
        j += (size_t)hash;
        while (j + k < s->n && is_ascii_alnum(s->v[j + k])) k++;
        if (k < 1 || k > 24 || j + k >= s->n || s->v[j + k] != ';') { PUSH(o, c); i++; continue; }
        size_t end = j + k + 1;  // one past ';'
        const zs_entity *e = entity_find(s->v + i + 1, end - i - 1, 2);
        size_t before = o->n;
        if (e) ZS_TRY(push_utf8(o, e->value));
        else if (hash) {
            const uint32_t *b = s->v + j;
            size_t digits = 0, hexd = 0;
            while (digits < k && b[digits] >= '0' && b[digits] <= '9') digits++;
            if (k >= 2 && (b[0] | 32) == 'x') while (1 + hexd < k && is_hex(b[1 + hexd])) hexd++;
            if (digits == k) ZS_TRY(push_charref(o, parse_num(b, k, 10)));
            else if (k >= 2 && 1 + hexd == k) ZS_TRY(push_charref(o, parse_num(b + 1, k - 1, 16)));
            else ZS_TRY(zs_ustr_append(o, s->v + i, end - i));
            for (size_t t = before; t < o->n; t++)
                if (o->v[t] == ';') {  // e.g. &#59; stays as written
                    o->n = before;
                    ZS_TRY(zs_ustr_append(o, s->v + i, end - i));
                    break;
                }
        } else ZS_TRY(zs_ustr_append(o, s->v + i, end - i));
        i = end;
    }
    return ZS_OK;
}

static int name_stop(uint32_t c) {
    return c == '\t' || c == '\n' || c == '\f' || c == ' ' || c == '<' || c == '&' || c == '#' || c == ';';
}

zs_status zs_html_unescape(zs_ustr *s) {
    size_t i = 0;
    while (i < s->n && s->v[i] != '&') i++;
    if (i == s->n) return ZS_OK;
    zs_ustr o = {0};
    zs_status st = zs_ustr_reserve(&o, s->n);
    for (i = 0; st == ZS_OK && i < s->n;) {
        const uint32_t *v = s->v;
        if (v[i] != '&' || i + 1 >= s->n) { st = zs_ustr_push(&o, v[i++]); continue; }
        size_t j = i + 1;
        if (v[j] == '#') {  // #[0-9]+;?  |  #[xX][0-9a-fA-F]+;?
            size_t a = j + 1, b = a;
            int base = 10;
            if (b < s->n && v[b] >= '0' && v[b] <= '9') {
                while (b < s->n && v[b] >= '0' && v[b] <= '9') b++;
            } else if (b + 1 < s->n && (v[b] | 32) == 'x' && is_hex(v[b + 1])) {
                a = b + 1, b = a, base = 16;
                while (b < s->n && is_hex(v[b])) b++;
            } else { st = zs_ustr_push(&o, v[i++]); continue; }
            st = push_charref(&o, parse_num(v + a, b - a, base));
            i = b + (b < s->n && v[b] == ';');
            continue;
        }
        size_t n = 0;  // [^\t\n\f <&#;]{1,32};?
        while (n < 32 && j + n < s->n && !name_stop(v[j + n])) n++;
        if (n == 0) { st = zs_ustr_push(&o, v[i++]); continue; }
        if (j + n < s->n && v[j + n] == ';') n++;
        const zs_entity *e = entity_find(v + j, n, 1);
        size_t x = n;
        for (size_t y = n - 1; !e && y >= 2; y--)  // longest name prefix (names without ';')
            if ((e = entity_find(v + j, y, 1))) x = y;
        if (e) {
            st = push_utf8(&o, e->value);
            if (st == ZS_OK && x < n) st = zs_ustr_append(&o, v + j + x, n - x);
        } else {
            st = zs_ustr_append(&o, v + i, n + 1);
        }
        i = j + n;
    }
    if (st == ZS_OK) zs_ustr_swap(s, &o);
    zs_ustr_free(&o);
    return st;
}

// One pass of the character-level fixers, in ftfy's order, from s into o.
static zs_status ftfy_pass(const zs_ustr *s, zs_ustr *o) {
    const zs_umap *e;
    for (size_t i = 0; i < s->n; i++) {
        uint32_t c = s->v[i];
        if (c >= 0x80 && c <= 0x9F) c = zs_umap_find(zs_ftfy_c1, zs_ftfy_c1_n, c)->to[0];  // fix_c1_controls
        if ((e = zs_umap_find(zs_ftfy_ligatures, zs_ftfy_ligatures_n, c)) ||
            (e = zs_umap_find(zs_ftfy_width, zs_ftfy_width_n, c))) {
            // Ligatures and width forms are never each other's input or output, so one lookup serves both.
            for (int k = 0; k < zs_umap_len(e); k++) {
                uint32_t d = e->to[k];
                if (d == 0x2BC || (d >= 0x2018 && d <= 0x201B)) d = '\'';
                else if (d >= 0x201C && d <= 0x201F) d = '"';
                PUSH(o, d);
            }
            continue;
        }
        if (c == 0x2BC || (c >= 0x2018 && c <= 0x201B)) c = '\'';  // uncurl_quotes
        else if (c >= 0x201C && c <= 0x201F) c = '"';
        PUSH(o, c);
    }
    // fix_line_breaks: \r\n, \r, U+2028, U+2029, U+0085 -> \n
    size_t w = 0;
    for (size_t i = 0; i < o->n; i++) {
        uint32_t c = o->v[i];
        if (c == '\r' && i + 1 < o->n && o->v[i + 1] == '\n') continue;
        if (c == '\r' || c == 0x2028 || c == 0x2029 || c == 0x85) c = '\n';
        o->v[w++] = c;
    }
    o->n = w;
    // remove_terminal_escapes: \x1b\[(\d|;)*[a-zA-Z]
    w = 0;
    for (size_t i = 0; i < o->n; i++) {
        if (o->v[i] == 0x1B && i + 1 < o->n && o->v[i + 1] == '[') {
            size_t j = i + 2;
            while (j < o->n && (o->v[j] == ';' || (zs_uprop(o->v[j]) & ZU_PY_DIGIT))) j++;
            if (j < o->n && o->v[j] < 128 && ((o->v[j] | 32) >= 'a' && (o->v[j] | 32) <= 'z')) { i = j; continue; }
        }
        o->v[w++] = o->v[i];
    }
    o->n = w;
    // remove_control_chars
    w = 0;
    for (size_t i = 0; i < o->n; i++) {
        uint32_t c = o->v[i];
        if (c <= 8 || c == 0xB || (c >= 0xE && c <= 0x1F) || c == 0x7F || (c >= 0x206A && c <= 0x206F) ||
            c == 0xFEFF || (c >= 0xFFF9 && c <= 0xFFFC))
            continue;
        o->v[w++] = c;
    }
    o->n = w;
    return zs_nfc(o);
}

// ftfy.fix_and_explain on one segment: repeat all fixers until the text stops changing.
static zs_status fix_segment(zs_ustr *seg, int html) {
    zs_ustr a = {0}, b = {0};
    zs_status st = ZS_OK;
    for (int iter = 0; iter < 64 && st == ZS_OK; iter++) {  // converges in 2-3 passes; bound for safety
        a.n = b.n = 0;
        if (html) st = ftfy_unescape(seg, &a);
        else st = zs_ustr_append(&a, seg->v, seg->n);
        if (st == ZS_OK) st = ftfy_pass(&a, &b);
        if (st != ZS_OK) break;
        int same = zs_ustr_eq(&b, seg);
        zs_ustr_swap(seg, &b);
        if (same) break;
    }
    zs_ustr_free(&a);
    zs_ustr_free(&b);
    return st;
}

zs_status zs_ftfy_fix_text(zs_ustr *s) {
    zs_ustr out = {0}, seg = {0};
    zs_status st = ZS_OK;
    int html = 1;  // "auto" turns off for good at the first line that holds '<'
    for (size_t pos = 0; pos < s->n && st == ZS_OK;) {
        size_t end = pos;
        while (end < s->n && s->v[end] != '\n') end++;
        if (end < s->n) end++;
        for (size_t i = pos; i < end; i++)
            if (s->v[i] == '<') html = 0;
        seg.n = 0;
        st = zs_ustr_append(&seg, s->v + pos, end - pos);
        if (st == ZS_OK) st = fix_segment(&seg, html);
        if (st == ZS_OK) st = zs_ustr_append(&out, seg.v, seg.n);
        pos = end;
    }
    if (st == ZS_OK) zs_ustr_swap(s, &out);
    zs_ustr_free(&out);
    zs_ustr_free(&seg);
    return st;
}

// Collapses runs of characters having prop to one ' '; strip drops them at both ends.
static void collapse(zs_ustr *s, uint32_t prop, int strip) {
    size_t w = 0;
    int in_ws = 0;
    for (size_t i = 0; i < s->n; i++) {
        if (zs_uprop(s->v[i]) & prop) { in_ws = 1; continue; }
        if (in_ws && (w > 0 || !strip)) s->v[w++] = ' ';
        in_ws = 0;
        s->v[w++] = s->v[i];
    }
    if (in_ws && !strip) s->v[w++] = ' ';
    s->n = w;
}

zs_status zs_clean_openclip(zs_ustr *s) {
    ZS_TRY(zs_ftfy_fix_text(s));
    ZS_TRY(zs_html_unescape(s));
    ZS_TRY(zs_html_unescape(s));
    collapse(s, ZU_PY_SPACE, 1);  // strip() then " ".join(text.split())
    return zs_lower_py(s);
}

zs_status zs_normalize_hf(zs_ustr *s) {
    ZS_TRY(zs_nfc(s));
    collapse(s, ZU_HF_WS, 0);
    return zs_lower_hf(s);
}
