#!/usr/bin/env bash
# Runs ON the GPU machine (see ../shared/gpu/README.md): regenerates the family fixtures with HF transformers (CPU
# float32; deterministic, so everything but deliberate changes must come out byte-identical), then runs every
# reference through the published CLI on CUDA in float32 and bfloat16. Writes the fixtures (fx.tgz) and the
# tables under $OUT.
set -uo pipefail
python3 tools/fixtures/make_family_fixtures.py --out /tmp/fx > $OUT/fixtures.log 2>&1 || { tail -30 $OUT/fixtures.log; exit 1; }
tar czf $OUT/fx.tgz -C /tmp fx
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
export FIXTURES=/tmp/fx CLI="bash .gpu/on-gpu.sh dotnet .gpu/app/AttnPortal.Cli.dll"
for dtype in float32 bfloat16; do
  echo "== CUDA $dtype"
  OUT_DIR=/tmp/verify-$dtype bash tools/verify-families.sh --device cuda --dtype $dtype | tee $OUT/cuda-$dtype.md
done
