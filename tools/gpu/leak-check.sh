#!/usr/bin/env bash
# Runs ON the GPU machine, after bench-7b.sh made its checkpoint: 100 consecutive runs of the engine on it, printing
# the first and last runs' times and the GPU memory allocated after each (flat unless something leaks), and the
# process's host memory at the end. A check run on purpose: it asserts nothing.
set -uo pipefail
runs=${RUNS:-100}
bash .gpu/on-gpu.sh dotnet .gpu/app/AttnPortal.Cli.dll bench --model ${CKPT:-/tmp/llava7b} \
  --image AttnPortal.Tests/Fixtures/hf/images/wide.png --runs $runs --max-new-tokens 32 --device cuda --dtype bfloat16 > /tmp/leak.md
head -8 /tmp/leak.md; echo "..."; tail -5 /tmp/leak.md
python3 - <<'PY'
rows = [r.split("|") for r in open("/tmp/leak.md") if r.startswith("| ") and r.split("|")[1].strip().isdigit()]
alloc = [int(r[10]) for r in rows if r[10].strip()]
total = [float(r[8]) for r in rows]
if alloc:
    print(f"\nGPU allocated after run 1 / 50 / {len(alloc)}: {alloc[0]} / {alloc[len(alloc) // 2 - 1]} / {alloc[-1]} MiB; "
          f"max - min over all runs: {max(alloc) - min(alloc)} MiB")
print(f"total ms, runs 1-10 median {sorted(total[:10])[5]:.1f}, last 10 median {sorted(total[-10:])[5]:.1f}")
PY
# Then a stream of questions of 6 lengths in turn, across a 128-key capacity step: the first longer one replaces the
# decoding workspace (cache, recorded step) by one with more room, which the shorter ones then share; memory must come
# back to the same figure at every length after the first round.
bash .gpu/on-gpu.sh dotnet .gpu/app/AttnPortal.Cli.dll bench --model ${CKPT:-/tmp/llava7b} \
  --image AttnPortal.Tests/Fixtures/hf/images/wide.png --runs ${VARIED_RUNS:-30} --prompt-variants 6 --max-new-tokens 32 \
  --device cuda --dtype bfloat16 > /tmp/leak-varied.md
echo; echo "== 6 prompt lengths in turn"; head -12 /tmp/leak-varied.md | tail -8; echo "..."; tail -4 /tmp/leak-varied.md
python3 - <<'PY'
rows = [r.split("|") for r in open("/tmp/leak-varied.md") if r.startswith("| ") and r.split("|")[1].strip().isdigit()]
alloc = [int(r[10]) for r in rows if r[10].strip()]
if alloc:
    print(f"GPU allocated after runs 1-6: {alloc[:6]} MiB; after the last 6: {alloc[-6:]} MiB; max - min over runs 7-: "
          f"{max(alloc[6:]) - min(alloc[6:])} MiB; last run - run 6: {alloc[-1] - alloc[5]} MiB")
PY
