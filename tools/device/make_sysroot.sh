#!/usr/bin/env bash
# Builds build-sysroot/: headers and libraries of the small Debian packages zsmlc links
# (cJSON, zlib), unpacked without installing. For build machines that cannot apt-get
# (e.g. a lent GPU box with no network): carry the folder there and build with
#   make SYSROOT_EXTRA=build-sysroot ...
set -euo pipefail
cd "$(dirname "$0")/../.."
out=build-sysroot
rm -rf "$out" && mkdir -p "$out/debs"
(cd "$out/debs" && apt-get download -q libcjson-dev libcjson1 zlib1g-dev zlib1g libpng-dev libpng16-16 libjpeg62-turbo-dev libjpeg62-turbo libstb-dev libstb0 >/dev/null)
for d in "$out"/debs/*.deb; do dpkg-deb -x "$d" "$out"; done
rm -rf "$out/debs"
# Debian's dev symlinks point at /lib/...; repoint them inside the sysroot.
lib="$out/usr/lib/x86_64-linux-gnu"
for l in "$lib"/*.so; do
    t=$(readlink "$l" || true)
    [ -n "$t" ] && ln -sf "$(basename "$t")" "$l"
done
[ -e "$out/lib/x86_64-linux-gnu" ] && cp -a "$out"/lib/x86_64-linux-gnu/* "$lib"/ 2>/dev/null || true
# Plain files only (some copy mechanisms drop symlinks).
find "$out" -type l | while read -r l; do t=$(readlink -f "$l"); rm -f "$l"; cp -r "$t" "$l" 2>/dev/null || true; done
echo "sysroot in $out: $(du -sh "$out" | cut -f1)"
# diffusers and its dependencies for the PyTorch side of the SD bench
# (tools/bench/bench_diffusers.py): the GPU box has torch but no network. Wheels for CPython
# 3.12 (Ubuntu 24.04's) on x86_64; numpy is left out (torch's own must stay). gpu_check.sh
# installs them one by one into build-pylib, skipping what does not fit its Python.
mkdir -p "$out/wheels"
python3 -m pip download -q -d "$out/wheels" --only-binary=:all: --python-version "${WHEEL_PY:-3.12}" \
    --platform manylinux_2_28_x86_64 --platform manylinux2014_x86_64 --platform manylinux_2_17_x86_64 diffusers==0.42.1 \
    2>/dev/null || echo "note: no diffusers wheels (pip download failed); the SD bench runs without the PyTorch side"
rm -f "$out"/wheels/numpy-*.whl
echo "wheels: $(ls "$out/wheels" 2>/dev/null | wc -l) files, $(du -sh "$out/wheels" | cut -f1)"
