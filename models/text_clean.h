// Text cleanup before CLIP BPE, matching the two reference tokenizers.
#ifndef ZS_TEXT_CLEAN_H
#define ZS_TEXT_CLEAN_H
#include "models/unicode.h"

// ftfy 6.3.1 fix_text() with its default config, except mojibake repair (fix_encoding and the
// options that only steer it): per line, until nothing changes, unescape_html ("auto": off from
// the first line holding '<'), fix_c1_controls, fix_latin_ligatures, fix_character_width,
// uncurl_quotes, fix_line_breaks, remove_terminal_escapes, remove_control_chars, NFC.
// fix_surrogates has nothing to do on decoded UTF-8 (surrogates arrive as U+FFFD).
zs_status zs_ftfy_fix_text(zs_ustr *s);
// Python's html.unescape().
zs_status zs_html_unescape(zs_ustr *s);
// open_clip SimpleTokenizer 'lower' clean: ftfy.fix_text, html.unescape twice, strip,
// collapse whitespace to ' ', str.lower().
zs_status zs_clean_openclip(zs_ustr *s);
// transformers CLIPTokenizer normalizer: NFC, \s+ -> ' ', lowercase.
zs_status zs_normalize_hf(zs_ustr *s);
#endif
