// zsmlc: one program, subcommands. The Make targets (synth, train-textenc, train-cls,
// bench) call into it.
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include "engine/backend.h"
#include "engine/cli.h"

typedef struct { const char *name; int (*fn)(int, char **); const char *help; } zs_cmd;
static const zs_cmd k_cmds[] = {
    {"inspect", zs_cmd_inspect, "FILE_OR_DIR: list the tensors of safetensors weights"},
    {"tokenize", zs_cmd_tokenize, "--vocab FILE_OR_DIR [--mode openclip|hf] TEXT...: CLIP token ids"},
    {"clip-encode", zs_cmd_clip_encode, "--model PATH (--text T... | --image FILE...) --out FILE.safetensors: CLIP embeddings"},
    {"clip-score", zs_cmd_clip_score, "--model PATH --images DIR_OR_FILE... --labels FILE --out FILE.csv|.jsonl: similarities"},
    {"txt2img", zs_cmd_txt2img, "--model DIR_OR_FILE --prompt T [--negative T] [--steps N] ... --out PATH: Stable Diffusion"},
    {"selfcheck", zs_cmd_selfcheck, "[--device cpu|cuda]: exercise tokenizer, safetensors and ops"},
};

static void usage(FILE *f) {
    fprintf(f, "zsmlc %s: zero-shot multi-label classification by synthetic data\n\nusage: zsmlc COMMAND [ARGS]\n\n",
            ZSMLC_VERSION);
    for (size_t i = 0; i < sizeof k_cmds / sizeof k_cmds[0]; i++) fprintf(f, "  %-11s %s\n", k_cmds[i].name, k_cmds[i].help);
    fprintf(f, "  --version   version and what is built in\n");
}

int zs_cli_fail(const char *cmd, int status) {
    fprintf(stderr, "zsmlc %s: %s: %s\n", cmd, zs_status_name((zs_status)status), zs_errmsg());
    return 1;
}

const char *zs_cli_device_dtype(const char *device, const char *dtype, zs_dtype cuda_default, zs_device *dev,
                                int *index, zs_dtype *dt) {
    static char why[512];
    *dev = ZS_CPU, *index = 0;
    if (device && zs_device_parse(device, dev, index)) return zs_errmsg();
    *dt = *dev == ZS_CUDA ? cuda_default : ZS_F32;
    if (!dtype) return NULL;
    if (!strcasecmp(dtype, "f32")) *dt = ZS_F32;
    else if (!strcasecmp(dtype, "bf16")) *dt = ZS_BF16;
    else if (!strcasecmp(dtype, "f16")) *dt = ZS_F16;
    else {
        snprintf(why, sizeof why, "--dtype wants f32, bf16 or f16, got '%s'", dtype);
        return why;
    }
    if (*dev == ZS_CPU && *dt != ZS_F32) {  // say so now, not after loading the model
        snprintf(why, sizeof why, "--dtype bf16 / f16 need --device cuda (the CPU computes in f32), got '%s'", dtype);
        return why;
    }
    return NULL;
}

int main(int argc, char **argv) {
    if (argc < 2) { usage(stderr); return 2; }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) { usage(stdout); return 0; }
    if (!strcmp(argv[1], "--version") || !strcmp(argv[1], "version")) {
        char info[4096];
        zs_build_info(info, sizeof info);
        printf("zsmlc %s\n%s", ZSMLC_VERSION, info);
        return 0;
    }
    for (size_t i = 0; i < sizeof k_cmds / sizeof k_cmds[0]; i++)
        if (!strcmp(argv[1], k_cmds[i].name)) return k_cmds[i].fn(argc - 1, argv + 1);
    fprintf(stderr, "zsmlc: unknown command '%s'\n\n", argv[1]);
    usage(stderr);
    return 2;
}
