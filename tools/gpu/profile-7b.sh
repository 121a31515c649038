#!/usr/bin/env bash
# Runs ON the GPU machine: profiles the engine on the 7B-shaped checkpoint (made as bench-7b.sh makes it) with Nsight
# Systems and prints the kernels by total GPU time, with counts, so that kernels per decoding step can be read off
# (one profiled run after a warm-up). A diagnostic: it asserts nothing.
set -uo pipefail
app=".gpu/app/AttnPortal.Cli.dll"
fx=AttnPortal.Tests/Fixtures/hf
ckpt=/tmp/llava7b
out=${OUT:-/tmp}
nsys=$(command -v nsys || ls /usr/local/cuda/bin/nsys /opt/nvidia/nsight-systems/*/bin/nsys 2>/dev/null | head -1)
[[ -d $ckpt ]] || python3 tools/fixtures/make_7b_shaped.py --tiny $fx/tiny-llava --out $ckpt 2>&1 | grep -v -i warn | tail -1
if [[ -z $nsys ]]; then echo "no nsys on this machine"; exit 1; fi
"$nsys" profile -o /tmp/engine --force-overwrite true -t cuda --cuda-graph-trace=node \
  bash .gpu/on-gpu.sh dotnet "$app" bench --model $ckpt --image $fx/images/wide.png --runs 1 --max-new-tokens 32 \
  --device cuda --dtype bfloat16 | tail -6
"$nsys" stats -q --report cuda_gpu_kern_sum --format csv /tmp/engine.nsys-rep > "$out/kernels.csv" 2>/dev/null
python3 - "$out/kernels.csv" <<'PY'
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1])))
total = sum(float(r["Total Time (ns)"]) for r in rows)
print(f"{sum(int(r['Instances']) for r in rows)} kernels, {total / 1e6:.1f} ms GPU time (warm-up + 1 run)")
for r in rows[:40]:
    print(f"{float(r['Total Time (ns)']) / 1e6:8.2f} ms {int(r['Instances']):7d} x {float(r['Avg (ns)']) / 1e3:8.2f} us  {r['Name'][:110]}")
PY
