// Fuzz entry for the SD config readers (tests/fuzz/fuzz_sd_config.c and the corpus replay in
// tests/test_sd_plan.c). data[0] % 5 picks: 0 UNet config.json (then the slot plan it
// implies), 1 VAE config.json, 2..4 scheduler_config.json for Euler / DDIM / DPM-Solver++ (then
// the schedule of data[1] % 64 + 1 steps); the rest is the file's text. Always returns 0.
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "models/scheduler.h"
#include "models/sd_plan.h"

int zs_fuzz_sd_config(const uint8_t *data, size_t size) {
    if (size < 2) return 0;
    int kind = data[0] % 5, steps = data[1] % 64 + 1;
    char *text = malloc(size - 1);
    if (!text) return 0;
    memcpy(text, data + 2, size - 2);
    text[size - 2] = 0;
    if (kind == 0) {
        zs_sd_unet_config u;
        zs_sd_vae_config v;
        zs_sd_vae_config_default(&v, 1);
        zs_sd_slot *slots = NULL;
        int n = 0, nu = 0;
        if (zs_sd_unet_config_parse(&u, text, "fuzz unet") == ZS_OK && zs_sd_slots(&u, &v, &slots, &n, &nu) == ZS_OK)
            zs_sd_slots_free(slots, n);
    } else if (kind == 1) {
        zs_sd_vae_config v;
        (void)zs_sd_vae_config_parse(&v, text, "fuzz vae");
    } else {
        char path[64];
        snprintf(path, sizeof path, "/tmp/zsmlc_fuzz_sched_%d.json", (int)getpid());
        FILE *f = fopen(path, "wb");
        if (f) {
            fwrite(text, 1, size - 2, f);
            fclose(f);
            zs_sched s;
            if (zs_sched_init(&s, (zs_sampler)(kind - 2), path, NULL) == ZS_OK) {
                (void)zs_sched_set_timesteps(&s, steps);
                zs_sched_free(&s);
            }
            remove(path);
        }
    }
    free(text);
    return 0;
}
