#!/usr/bin/env bash
# Runs ON the GPU machine: builds a random checkpoint with LLaVA-1.5-7B's shapes (BF16, sharded like the Hub's),
# then loads and runs it through the published CLI on CUDA: load speed, host memory while loading 14 GB, timings.
set -uo pipefail
app=".gpu/app/AttnPortal.Cli.dll"
fx=AttnPortal.Tests/Fixtures/hf
cli() { bash .gpu/on-gpu.sh dotnet "$app" "$@"; }
python3 tools/fixtures/make_7b_shaped.py --tiny $fx/tiny-llava --out /tmp/llava7b 2>&1 | grep -v -i warn | tail -2
du -sh /tmp/llava7b
sync; echo 3 > /proc/sys/vm/drop_caches 2>/dev/null || true
cli bench --model /tmp/llava7b --image $fx/images/wide.png --runs 3 --max-new-tokens 32 --device cuda --dtype bfloat16 | tee $OUT/bench-7b-cuda-bf16.md
cli infer --model /tmp/llava7b --image $fx/images/wide.png --prompt "What is in the picture?" --max-new-tokens 32 \
  --device cuda --dtype bfloat16 --out /tmp/7b.safetensors 2>&1 | grep -E "loaded|wrote"
