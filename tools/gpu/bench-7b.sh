#!/usr/bin/env bash
# Runs ON the GPU machine (../shared/gpu/README.md), in one call: builds a random checkpoint with LLaVA-1.5-7B's
# shapes (BF16, sharded like the Hub's), times HF transformers (SDPA without attentions; eager with
# output_attentions) and the engine (every step's, layer's and head's attention captured) on the same weights, image
# and prompt, and prints one table. A benchmark: it asserts nothing.
set -uo pipefail
app=".gpu/app/AttnPortal.Cli.dll"
fx=AttnPortal.Tests/Fixtures/hf
ckpt=/tmp/llava7b
runs=${RUNS:-5}
warmup=${WARMUP:-1}  # untimed runs first, the same number for HF and the engine
cli() { bash .gpu/on-gpu.sh dotnet "$app" "$@"; }
[[ -d $ckpt ]] || python3 tools/fixtures/make_7b_shaped.py --tiny $fx/tiny-llava --out $ckpt 2>&1 | grep -v -i warn | tail -1
gb=$(du -sb $ckpt/*.safetensors | awk '{s+=$1} END {printf "%.2f", s/1e9}')
python3 tools/gpu/hf_bench.py --model $ckpt --image $fx/images/wide.png --runs $runs --warmup $warmup 2>/dev/null | tail -1 > /tmp/hf.json
base=$(nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits | head -1)
(while true; do nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits | head -1; sleep 0.1; done) > /tmp/mem.txt &
sampler=$!
cli bench --model $ckpt --image $fx/images/wide.png --runs $runs --warmup $warmup --max-new-tokens 32 --device cuda --dtype bfloat16 > /tmp/engine.md
kill $sampler
cat /tmp/engine.md
# The same without CUDA graphs (eager decoding), for the record.
ATTNPORTAL_CUDA_GRAPHS=0 cli bench --model $ckpt --image $fx/images/wide.png --runs $runs --warmup $warmup --max-new-tokens 32 --device cuda --dtype bfloat16 > /tmp/engine-eager.md
# Without the hand-written GEMV (cuBLAS products), and without any fused decoding kernel (op by op attention), to
# show what they bring.
ATTNPORTAL_GEMV=0 cli bench --model $ckpt --image $fx/images/wide.png --runs $runs --warmup $warmup --max-new-tokens 32 --device cuda --dtype bfloat16 > /tmp/engine-cublas.md
ATTNPORTAL_FUSED_KERNELS=0 cli bench --model $ckpt --image $fx/images/wide.png --runs $runs --warmup $warmup --max-new-tokens 32 --device cuda --dtype bfloat16 > /tmp/engine-unfused.md
python3 - "$gb" "$base" "$(nvidia-smi --query-gpu=name --format=csv,noheader | head -1)" "$warmup" <<'PY'
import json, re, sys
gb, base, gpu = float(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
hf = json.load(open("/tmp/hf.json"))
engine = open("/tmp/engine.md").read()
peak = (max(int(x) for x in open("/tmp/mem.txt").read().split()) - base) / 1024
allocated = re.search(r"GPU peak allocated ([\d.]+) GiB", engine)
def times(text):
    # total = CPU preprocessing + model; model = vision + prefill + decode, the span HF's timed generate covers
    return [float(re.search(rf"{k}: ([\d.]+) ms", text).group(1)) / 1000
            for k in ("median total", "best total", "median model \\(vision \\+ prefill \\+ decode\\)")]
med, best, model = times(engine)
load = float(re.search(r"load: ([\d.]+) s", engine).group(1))
rows = [r for r in engine.splitlines() if re.match(r"\| \d+ \|", r)]
steps = int(rows[-1].split("|")[3])
anchor = hf["eager_attentions"]["median_s"]
print(f"\nLLaVA-1.5-7B shapes, bf16, {gpu}; {hf['prompt_tokens']} prompt tokens + 32 new, greedy; median of {len(rows)} timed runs after {sys.argv[4]} untimed\n")
print("| system | median s | best s | new tokens/s | peak GPU GiB | vs HF eager+attentions | median s without preprocessing (HF's timed span) | vs HF eager+attentions, same span |")
print("|---|---|---|---|---|---|---|---|")
for name, key in (("HF transformers 5.17, SDPA, no attentions", "sdpa"), ("HF transformers 5.17, eager + output_attentions", "eager_attentions")):
    h = hf[key]
    print(f"| {name} | {h['median_s']:.3f} | {h['best_s']:.3f} | {h['new_tokens'] / h['median_s']:.1f} | {h['peak_gib']:.1f} (max allocated) | {anchor / h['median_s']:.2f}x | {h['median_s']:.3f} | {anchor / h['median_s']:.2f}x |")
peak_text = f"{float(allocated.group(1)):.1f} (max allocated; nvidia-smi {peak:.1f})" if allocated else f"{peak:.1f} (nvidia-smi, incl. CUDA context)"
print(f"| AttnPortal engine, every step/layer/head captured | {med:.3f} | {best:.3f} | {steps / med:.1f} | {peak_text} | {anchor / med:.2f}x | {model:.3f} | {anchor / model:.2f}x |")
for path, label in (("/tmp/engine-cublas.md", "same, cuBLAS for the decoding products (ATTNPORTAL_GEMV=0)"),
                    ("/tmp/engine-unfused.md", "same, fused kernels off (ATTNPORTAL_FUSED_KERNELS=0)"),
                    ("/tmp/engine-eager.md", "same, CUDA graphs off (ATTNPORTAL_CUDA_GRAPHS=0)")):
    omed, obest, omodel = times(open(path).read())
    print(f"| {label} | {omed:.3f} | {obest:.3f} | {steps / omed:.1f} | | {anchor / omed:.2f}x | {omodel:.3f} | {anchor / omodel:.2f}x |")
print(f"\nengine load: {gb:.2f} GB of safetensors in {load:.1f} s = {gb / load:.2f} GB/s")
PY
