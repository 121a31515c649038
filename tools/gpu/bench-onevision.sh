#!/usr/bin/env bash
# Runs ON the GPU machine, after tools/gpu/build-cudagraph.sh: builds a random checkpoint with
# LLaVA-OneVision-Qwen2-7B's shapes (tools/fixtures/make_7b_shaped.py --family onevision), times HF transformers on it
# (tools/gpu/hf_bench.py --family onevision: SDPA without attentions; eager with output_attentions) and the engine with
# the standard and the alternating schedule (every step's, layer's and head's attention captured; then the standard one
# with cuBLAS products and with the one-block attention kernel), same weights, image and prompt, and prints one table and
# what the alternating schedule costs over the standard one.
# A benchmark: it asserts nothing.
set -uo pipefail
app=".gpu/app/AttnPortal.Cli.dll"
ckpt=/tmp/onevision7b
runs=${RUNS:-5}
warmup=${WARMUP:-1}  # untimed runs first, the same number for HF and the engine
image=${IMAGE:-AttnPortal.Tests/Fixtures/hf/images/wide.png}
prompt=${PROMPT:-What is shown in this image?}
cli() { bash .gpu/on-gpu.sh dotnet "$app" "$@"; }
[[ -d $ckpt ]] || python3 tools/fixtures/make_7b_shaped.py --family onevision \
  --tiny AttnPortal.Tests/Fixtures/hf-families/tiny-onevision --out $ckpt 2>&1 | grep -v -i warn | tail -1
# HF's stderr is kept: if its API moved, the table still comes out with the engine rows and the log's tail.
python3 tools/gpu/hf_bench.py --family onevision --model $ckpt --image "$image" --prompt "$prompt" --runs $runs --warmup $warmup \
  --max-new-tokens 32 2>/tmp/ov-hf.log | tail -1 > /tmp/ov-hf.json
for schedule in standard alternating; do
  cli bench --model $ckpt --image "$image" --prompt "$prompt" --runs $runs --warmup $warmup --max-new-tokens 32 \
    --device cuda --dtype bfloat16 --schedule $schedule > /tmp/ov-$schedule.md
  echo "== $schedule"; cat /tmp/ov-$schedule.md
done
# The standard schedule once more with cuBLAS for the decoding products (ATTNPORTAL_GEMV=0), to show what the
# hand-written GEMV brings.
ATTNPORTAL_GEMV=0 cli bench --model $ckpt --image "$image" --prompt "$prompt" --runs $runs --warmup $warmup --max-new-tokens 32 \
  --device cuda --dtype bfloat16 --schedule standard > /tmp/ov-cublas.md
echo "== standard, ATTNPORTAL_GEMV=0"; grep -E "decoding|median total" /tmp/ov-cublas.md
# And with the decoding attention in one block per query head (ATTNPORTAL_SPLIT_ATTENTION=0), the kernel before the
# keys were split across blocks.
ATTNPORTAL_SPLIT_ATTENTION=0 cli bench --model $ckpt --image "$image" --prompt "$prompt" --runs $runs --warmup $warmup --max-new-tokens 32 \
  --device cuda --dtype bfloat16 --schedule standard > /tmp/ov-onehead.md
echo "== standard, ATTNPORTAL_SPLIT_ATTENTION=0"; grep -E "median total" /tmp/ov-onehead.md
gpu=$(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -1)
python3 - "$runs" "${gpu:-GPU}" "$warmup" <<'PY'
import json, re, sys
from importlib.metadata import PackageNotFoundError, version

try:
    hf = json.load(open("/tmp/ov-hf.json"))
except ValueError:
    hf = None
engine = {}
labels = {"standard": "standard schedule", "alternating": "alternating schedule",
          "cublas": "standard schedule, cuBLAS decoding products (ATTNPORTAL_GEMV=0)",
          "onehead": "standard schedule, decoding attention one block per query head (ATTNPORTAL_SPLIT_ATTENTION=0)"}
for s in labels:
    text = open(f"/tmp/ov-{s}.md").read()
    # total = CPU preprocessing + model; model = vision + prefill + decode, the span HF's timed generate covers
    med, best, model = (re.search(rf"{k}: ([\d.]+) ms", text)
                        for k in ("median total", "best total", r"median model \(vision \+ prefill \+ decode\)"))
    rows = [r.split("|") for r in text.splitlines() if re.match(r"\| \d+ \|", r)]
    peak = re.search(r"GPU peak allocated ([\d.]+) GiB", text)
    engine[s] = None if not (med and rows) else {
        "median_s": float(med.group(1)) / 1000, "best_s": float(best.group(1)) / 1000,
        "model_s": float(model.group(1)) / 1000 if model else float("nan"),
        "prompt_tokens": int(rows[-1][2]), "new_tokens": int(rows[-1][3]), "runs": len(rows),
        "peak": f"{float(peak.group(1)):.1f}" if peak else "n/a (no diagnostics shim)"}

gpu = sys.argv[2]
try:
    hf_version = version("transformers")
except PackageNotFoundError:
    hf_version = "?"
# Equal prompt lengths are what makes the rows comparable: one image token more or less is another input.
counts = {"HF": hf["prompt_tokens"] if hf else None,
          **{f"engine {s}": e["prompt_tokens"] for s, e in engine.items() if e}}
known = {v for v in counts.values() if v is not None}
print("\nprompt tokens: " + ", ".join(f"{k} {v if v is not None else '?'}" for k, v in counts.items())
      + (f" (HF: {hf['image_tokens']} image tokens)" if hf and "image_tokens" in hf else ""))
if len(known) > 1:
    print("\n" + "!" * 100 + f"\n!!! PROMPT TOKENS DIFFER ({', '.join(f'{k} {v}' for k, v in counts.items())}): "
          "HF and the engine are NOT timed on the same input; the ratios below compare different work\n" + "!" * 100)

first = next((e for e in engine.values() if e), None)
tokens = next(iter(known)) if len(known) == 1 else "/".join(str(v) for v in sorted(known))
print(f"\nOneVision-Qwen2-7B shapes, bf16, {gpu}; {tokens} prompt tokens + 32 new, greedy; "
      f"median of {first['runs'] if first else sys.argv[1]} timed runs after {sys.argv[3]} untimed\n")
print("| system | median s | best s | new tokens/s | peak GPU GiB (max allocated) | vs HF eager+attentions | "
      "median s without preprocessing (HF's timed span) | vs HF eager+attentions, same span |")
print("|---|---|---|---|---|---|---|---|")
anchor = hf["eager_attentions"]["median_s"] if hf else None
ratio = lambda m: f"{anchor / m:.2f}x" if anchor else ""
if hf:
    for name, key in (("SDPA, no attentions", "sdpa"), ("eager + output_attentions", "eager_attentions")):
        h = hf[key]
        print(f"| HF transformers {hf_version}, {name} | {h['median_s']:.3f} | {h['best_s']:.3f} | "
              f"{h['new_tokens'] / h['median_s']:.1f} | {h['peak_gib']:.1f} | {ratio(h['median_s'])} | {h['median_s']:.3f} | "
              f"{ratio(h['median_s'])} |")
else:
    print(f"| HF transformers {hf_version} | failed: see below | | | | |")
for s, e in engine.items():
    name = f"AttnPortal engine, {labels[s]}, every step/layer/head captured"
    if e is None:
        print(f"| {name} | failed: see /tmp/ov-{s}.md | | | | |")
        continue
    print(f"| {name} | {e['median_s']:.3f} | {e['best_s']:.3f} | {e['new_tokens'] / e['median_s']:.1f} | "
          f"{e['peak']} | {ratio(e['median_s'])} | {e['model_s']:.3f} | {ratio(e['model_s'])} |")
if engine["standard"] and engine["alternating"]:
    m = {s: engine[s]["median_s"] * 1000 for s in ("standard", "alternating")}
    print(f"\nOneVision-Qwen2-7B shapes: standard {m['standard']:.1f} ms, alternating {m['alternating']:.1f} ms median; "
          f"alternating costs {100 * (m['alternating'] / m['standard'] - 1):+.1f} %")
if hf is None:
    print("\nHF run failed; last lines of /tmp/ov-hf.log:\n" + "".join(open("/tmp/ov-hf.log").readlines()[-20:]))
PY
