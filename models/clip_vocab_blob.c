// The OpenAI CLIP BPE file, embedded so that zsmlc tokenizes without any files on disk.
// The path is relative to the repo root, where make runs the compiler (the fuzz build too).
#include <stddef.h>

__asm__(".section .rodata,\"a\",@progbits\n"
        ".balign 16\n"
        ".global zs_clip_vocab_gz_start\n"
        ".type zs_clip_vocab_gz_start, @object\n"
        "zs_clip_vocab_gz_start:\n"
        ".incbin \"weights/clip/bpe_simple_vocab_16e6.txt.gz\"\n"
        ".global zs_clip_vocab_gz_end\n"
        ".type zs_clip_vocab_gz_end, @object\n"
        "zs_clip_vocab_gz_end:\n"
        ".byte 0\n"
        ".previous\n");

extern const unsigned char zs_clip_vocab_gz_start[], zs_clip_vocab_gz_end[];

const unsigned char *zs_clip_vocab_gz(size_t *n) {
    *n = (size_t)(zs_clip_vocab_gz_end - zs_clip_vocab_gz_start);
    return zs_clip_vocab_gz_start;
}
