#!/usr/bin/env bash
# Runs ON the GPU machine (see ../shared/gpu/README.md): CUDA parity of the published CLI against the HF fixtures,
# with and without the fused decoding kernels, a bfloat16 run, a CUDA benchmark, and HF's alpha handling for RGBA input. Writes reports under $OUT.
set -uo pipefail
app=".gpu/app/AttnPortal.Cli.dll"
fx=AttnPortal.Tests/Fixtures/hf
cli() { bash .gpu/on-gpu.sh dotnet "$app" "$@"; }
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
# tiny-llava (peaked attention; its weights are not bfloat16-representable) and tiny-llava-bf16 (ordinary scales,
# bfloat16-representable weights; made by tools/fixtures/make_bf16_fixture.py), each run against HF float32 on the CPU;
# the bfloat16 runs of tiny-llava-bf16 also against HF's own bfloat16 on CUDA (runs/bf16fx-<run>-hfbf16). With the
# fused decoding kernels (native/kernels) and without them (op by op): both paths must match HF.
for kernels in 1 0; do
for model in tiny-llava tiny-llava-bf16; do
  prefix=""; [[ $model == tiny-llava-bf16 ]] && prefix="bf16fx-"
  if [[ ! -f $fx/$model/model.safetensors ]]; then
    echo "== $model: missing (run tools/fixtures/make_bf16_fixture.py first)" | tee -a $OUT/cuda-parity.md; continue
  fi
  for spec in "wide-pad wide.png pad What is in the picture?" "tall-crop tall-alpha.png crop   Describe  the image ,please."; do
    read -r run image aspect question <<<"$spec"
    [[ $run == tall-crop ]] && question="  Describe  the image ,please."
    for dtype in float32 bfloat16; do
      echo "== $model $run on cuda $dtype, fused kernels $kernels" | tee -a $OUT/cuda-parity.md
      out=/tmp/$prefix$run-$dtype-$kernels.safetensors
      ATTNPORTAL_FUSED_KERNELS=$kernels cli infer --model $fx/$model --image $fx/images/$image --image-aspect $aspect \
        --prompt "$question" --max-new-tokens 8 --save-logits --device cuda --dtype $dtype --out $out 2>&1 | tail -2
      cli compare $out $fx/runs/$prefix$run.safetensors | tee -a $OUT/cuda-parity.md
      if [[ -n $prefix && $dtype == bfloat16 ]]; then
        cli compare $out $fx/runs/$prefix$run-hfbf16.safetensors | tee -a $OUT/cuda-parity.md
      fi
    done
  done
done
done
echo "== HF's own bfloat16 (CUDA) against HF float32 (CPU), from $fx/bf16-report.json" | tee -a $OUT/cuda-parity.md
python3 - "$fx/bf16-report.json" <<'PY' 2>&1 | tee -a $OUT/cuda-parity.md
import json, sys
try:
    r = json.load(open(sys.argv[1]))
except FileNotFoundError:
    sys.exit(f"{sys.argv[1]} missing: run tools/fixtures/make_bf16_fixture.py first")
print(f"HF bfloat16 on {r['bf16_device']}; tiny-llava-bf16 init std {r['chosen_scale']:g} ({r['chosen_by']})")
print("| fixture | run | attention | logits | ids equal |")
print("|---|---|---|---|---|")
for key in ("existing_fixture", "new_fixture"):
    for run, d in r[key]["runs"].items():
        h = d["hf_bf16_vs_hf_f32"]
        print(f"| {r[key]['checkpoint']} | {run} | {h['attention']:.2e} | {h['logits']:.2e} | {h['ids_equal']} |")
PY
echo "== bench tiny on cuda float32"
cli bench --model $fx/tiny-llava --image $fx/images/wide.png --runs 5 --max-new-tokens 32 --device cuda | tee $OUT/bench-tiny-cuda.md
echo "== HF alpha handling (CLIPImageProcessorPil on the RGBA image, no pre-compositing)"
python3 - <<'PY' 2>&1 | grep -v -i warn | tee $OUT/alpha.txt
import numpy as np
from PIL import Image
from transformers import CLIPImageProcessorPil
ip = CLIPImageProcessorPil(size={"shortest_edge": 336}, crop_size={"height": 336, "width": 336}, resample=3)
im = Image.open("AttnPortal.Tests/Fixtures/hf/images/tall-alpha.png")
print("mode", im.mode)
hf = ip(images=im, return_tensors="np")["pixel_values"][0]
drop = ip(images=im.convert("RGB"), return_tensors="np")["pixel_values"][0]
bg = Image.new("RGBA", im.size, (255, 255, 255))
white = ip(images=Image.alpha_composite(bg, im.convert("RGBA")).convert("RGB"), return_tensors="np")["pixel_values"][0]
print("HF vs drop-alpha max abs", float(np.abs(hf - drop).max()))
print("HF vs composite-over-white max abs", float(np.abs(hf - white).max()))
PY
