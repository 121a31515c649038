#!/usr/bin/env bash
# Runs ON the GPU machine, after tools/gpu/build-cudagraph.sh: builds a random checkpoint with
# LLaVA-OneVision-Qwen2-7B's shapes (tools/fixtures/make_7b_shaped.py --family onevision) and times the engine on it
# with the standard and the alternating schedule (every step's, layer's and head's attention captured), same image
# and prompt, and prints what the alternating schedule costs over the standard one. A benchmark: it asserts nothing.
set -uo pipefail
app=".gpu/app/AttnPortal.Cli.dll"
ckpt=/tmp/onevision7b
runs=${RUNS:-5}
image=${IMAGE:-AttnPortal.Tests/Fixtures/hf/images/wide.png}
[[ -d $ckpt ]] || python3 tools/fixtures/make_7b_shaped.py --family onevision \
  --tiny AttnPortal.Tests/Fixtures/hf-families/tiny-onevision --out $ckpt 2>&1 | grep -v -i warn | tail -1
for schedule in standard alternating; do
  bash .gpu/on-gpu.sh dotnet "$app" bench --model $ckpt --image "$image" --runs $runs --max-new-tokens 32 \
    --device cuda --dtype bfloat16 --schedule $schedule > /tmp/ov-$schedule.md
  echo "== $schedule"; cat /tmp/ov-$schedule.md
done
python3 - <<'PY'
import re
med = {s: float(re.search(r"median total: ([\d.]+) ms", open(f"/tmp/ov-{s}.md").read()).group(1)) for s in ("standard", "alternating")}
print(f"\nOneVision-Qwen2-7B shapes: standard {med['standard']:.1f} ms, alternating {med['alternating']:.1f} ms median; "
      f"alternating costs {100 * (med['alternating'] / med['standard'] - 1):+.1f} %")
PY
