#!/usr/bin/env bash
# Runs ON the GPU machine, after tools/gpu/build-cudagraph.sh: times the engine on the 7B-shaped checkpoint (made as
# bench-7b.sh makes it), profiles one more run with libtorch's Kineto profiler (`bench --profile`; Nsight Systems
# cannot make reports there) and prints what tools/gpu/trace_summary.py reads from the trace: kernels by GPU time,
# kernel time against wall time per decoding step, idle gaps. Extra arguments go to `bench` (e.g. --schedule).
# A diagnostic: it asserts nothing. The trace is left, gzipped, in $OUT.
set -uo pipefail
app=".gpu/app/AttnPortal.Cli.dll"
fx=AttnPortal.Tests/Fixtures/hf
ckpt=${CKPT:-/tmp/llava7b}
out=${OUT:-/tmp}
[[ -d $ckpt ]] || python3 tools/fixtures/make_7b_shaped.py --tiny $fx/tiny-llava --out $ckpt 2>&1 | grep -v -i warn | tail -1
bash .gpu/on-gpu.sh dotnet "$app" bench --model $ckpt --image $fx/images/wide.png --runs ${RUNS:-3} --max-new-tokens 32 \
  --device cuda --dtype bfloat16 --profile /tmp/engine-trace.json "$@"
python3 tools/gpu/trace_summary.py /tmp/engine-trace.json
gzip -c /tmp/engine-trace.json > "$out/engine-trace.json.gz"
