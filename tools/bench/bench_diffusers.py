"""PyTorch / diffusers side of `zsmlc_bench --suite sd`: the same cases on the same GPU, so the
engine's numbers have a reference beside them (run by tools/device/gpu_check.sh).

UNet2DConditionModel / AutoencoderKL from the real SD 1.5 / SD 2.1 configs (written out below,
as in the hub's unet/config.json and vae/config.json), random weights, fp32 (TF32 off, as the
engine) and bf16; each figure is the median of --repeat calls after 2 warm-ups, synchronised.
Attention is PyTorch's SDPA (diffusers' default processor). Prints a table and writes JSON lines.

    python tools/bench/bench_diffusers.py [--out FILE] [--repeat 5] [--filter SUBSTR]
"""
import argparse, json, time

import torch
from diffusers import AutoencoderKL, UNet2DConditionModel

UNET = {
    1: dict(sample_size=64, in_channels=4, out_channels=4, layers_per_block=2, block_out_channels=(320, 640, 1280, 1280),
            down_block_types=("CrossAttnDownBlock2D",) * 3 + ("DownBlock2D",),
            up_block_types=("UpBlock2D",) + ("CrossAttnUpBlock2D",) * 3, cross_attention_dim=768, attention_head_dim=8),
    2: dict(sample_size=96, in_channels=4, out_channels=4, layers_per_block=2, block_out_channels=(320, 640, 1280, 1280),
            down_block_types=("CrossAttnDownBlock2D",) * 3 + ("DownBlock2D",),
            up_block_types=("UpBlock2D",) + ("CrossAttnUpBlock2D",) * 3, cross_attention_dim=1024,
            attention_head_dim=(5, 10, 20, 20), use_linear_projection=True, upcast_attention=True),
}
VAE = dict(in_channels=3, out_channels=3, latent_channels=4, layers_per_block=2, block_out_channels=(128, 256, 512, 512),
           down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4, sample_size=512)
CASES = [  # name, kind, version, latent size, batch, grad: as bench/bench_sd.c
    ("unet_sd15_512", "unet", 1, 64, 2, False), ("unet_sd2_768", "unet", 2, 96, 2, False),
    ("unet_sd2_560_grad", "unet", 2, 70, 2, True), ("vae_decode_512", "vae", 1, 64, 1, False),
    ("vae_decode_768", "vae", 2, 96, 1, False), ("vae_decode_560_grad", "vae", 2, 70, 1, True),
]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out"), ap.add_argument("--filter"), ap.add_argument("--repeat", type=int, default=5)
    a = ap.parse_args()
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    dev = torch.device("cuda")
    out = open(a.out, "w") if a.out else None
    print(f"torch {torch.__version__}, {torch.cuda.get_device_name()}")
    print(f"{'case':20s} {'dtype':6s} {'ms/call':>9s} {'it/s':>8s} {'peak MiB':>9s}")
    for dt in (torch.float32, torch.bfloat16):
        for name, kind, ver, s, B, grad in CASES:
            if a.filter and a.filter not in name:
                continue
            torch.manual_seed(0)
            m = (UNet2DConditionModel(**UNET[ver]) if kind == "unet" else AutoencoderKL(**VAE)).to(dev, dt)
            m.requires_grad_(False)
            x = torch.randn(B, 4, s, s, device=dev, dtype=dt, requires_grad=grad)
            ctx = torch.randn(B, 77, UNET[ver]["cross_attention_dim"], device=dev, dtype=dt, requires_grad=grad)
            t = torch.full((B,), 801.0, device=dev)

            def call():
                with torch.set_grad_enabled(grad):
                    y = m(x, t, ctx).sample if kind == "unet" else m.decode(x).sample
                    if grad:
                        y.backward(torch.ones_like(y))

            for _ in range(2):
                call()
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            ts = []
            for _ in range(a.repeat):
                t0 = time.perf_counter()
                call()
                torch.cuda.synchronize()
                ts.append((time.perf_counter() - t0) * 1e3)
            ms = sorted(ts)[len(ts) // 2]
            peak = torch.cuda.max_memory_allocated() / 2**20
            d = "bf16" if dt == torch.bfloat16 else "f32"
            print(f"{name:20s} {d:6s} {ms:9.1f} {1e3 / ms:8.3f} {peak:9.0f}")
            if out:
                out.write(json.dumps(dict(suite="sd-diffusers", case=name, dtype=d, ms=ms, it_per_s=1e3 / ms,
                                          peak_mib=peak, torch=torch.__version__)) + "\n")
            del m, x, ctx
            torch.cuda.empty_cache()


if __name__ == "__main__":
    main()
