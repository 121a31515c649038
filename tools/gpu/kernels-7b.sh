#!/usr/bin/env bash
# Runs ON the GPU machine after build-cudagraph.sh: the fused decoding kernels against the op-by-op path on the
# LLaVA-1.5-7B-shaped checkpoint (bf16), the same run each way: generated ids and every captured attention row
# compared (`compare`), then each timed (`bench`). Asserts nothing; prints both.
set -uo pipefail
app=".gpu/app/AttnPortal.Cli.dll"
fx=AttnPortal.Tests/Fixtures/hf
ckpt=/tmp/llava7b
runs=${RUNS:-5}
cli() { bash .gpu/on-gpu.sh dotnet "$app" "$@"; }
[[ -d $ckpt ]] || python3 tools/fixtures/make_7b_shaped.py --tiny $fx/tiny-llava --out $ckpt 2>&1 | grep -v -i warn | tail -1
for kernels in 1 0; do
  ATTNPORTAL_FUSED_KERNELS=$kernels cli infer --model $ckpt --image $fx/images/wide.png --prompt "What is in the picture?" \
    --max-new-tokens 32 --save-logits --device cuda --dtype bfloat16 --out /tmp/7b-kernels-$kernels.safetensors 2>&1 | tail -1
done
echo "== fused kernels (first) vs op by op (second)"
cli compare /tmp/7b-kernels-1.safetensors /tmp/7b-kernels-0.safetensors
for kernels in 1 0; do
  echo "== bench, fused kernels $kernels"
  ATTNPORTAL_FUSED_KERNELS=$kernels cli bench --model $ckpt --image $fx/images/wide.png --runs $runs --max-new-tokens 32 \
    --device cuda --dtype bfloat16 | grep -E "fused|median total|^\| [0-9w]"
done
