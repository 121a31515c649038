#!/usr/bin/env bash
# Runs ON the GPU machine (see ../shared/gpu/README.md): CUDA parity of the published CLI against the HF fixtures,
# with and without the fused decoding kernels, a bfloat16 run, a CUDA benchmark, and HF's alpha handling for RGBA input. Writes reports under $OUT.
set -uo pipefail
app=".gpu/app/AttnPortal.Cli.dll"
fx=AttnPortal.Tests/Fixtures/hf
cli() { bash .gpu/on-gpu.sh dotnet "$app" "$@"; }
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
# With the fused decoding kernels (native/kernels) and without them (op by op): both paths must match HF.
for kernels in 1 0; do
  for spec in "wide-pad wide.png pad What is in the picture?" "tall-crop tall-alpha.png crop   Describe  the image ,please."; do
    read -r run image aspect question <<<"$spec"
    [[ $run == tall-crop ]] && question="  Describe  the image ,please."
    for dtype in float32 bfloat16; do
      echo "== $run on cuda $dtype, fused kernels $kernels" | tee -a $OUT/cuda-parity.md
      ATTNPORTAL_FUSED_KERNELS=$kernels cli infer --model $fx/tiny-llava --image $fx/images/$image --image-aspect $aspect \
        --prompt "$question" --max-new-tokens 8 --save-logits --device cuda --dtype $dtype \
        --out /tmp/$run-$dtype-$kernels.safetensors 2>&1 | tail -2
      cli compare /tmp/$run-$dtype-$kernels.safetensors $fx/runs/$run.safetensors | tee -a $OUT/cuda-parity.md
    done
  done
done
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
