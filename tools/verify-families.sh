#!/usr/bin/env bash
# End-to-end parity of the engine (template, tokenizer, anyres preprocessing, model, schedules) with every HF
# reference run of the family fixtures: `infer` from the question and image, then `compare` with HF's run.
# Usage: [CLI="command that runs AttnPortal.Cli"] tools/verify-families.sh [--device cpu|cuda] [--dtype float32|bfloat16]
#   default CLI: the Release build, dotnet AttnPortal.Cli/bin/Release/net10.0/AttnPortal.Cli.dll
# FIXTURES (default AttnPortal.Tests/Fixtures/hf-families) may point at a freshly generated set.
set -uo pipefail
read -r -a cli <<< "${CLI:-dotnet AttnPortal.Cli/bin/Release/net10.0/AttnPortal.Cli.dll}"
fx=${FIXTURES:-AttnPortal.Tests/Fixtures/hf-families}
images=AttnPortal.Tests/Fixtures/hf/images
out=${OUT_DIR:-/tmp/verify-families}; mkdir -p "$out"
echo "| run | input ids | generated ids | attention max abs diff | logits max abs diff |"
echo "|---|---|---|---|---|"
for json in "$fx"/runs/*.json; do
  run=$(basename "$json" .json)
  IFS=$'\t' read -r image question schedule seed < <(python3 -c 'import json,sys; j=json.load(open(sys.argv[1])); print(j["image"], j["question"], j["schedule"], int(j["seed_compatible"]), sep="\t")' "$json")
  case $run in onevision-lora-*) model=$fx/tiny-onevision-lora;; onevision-*) model=$fx/tiny-onevision;; *) model=$fx/tiny-next-mistral;; esac
  flags=(--schedule "$schedule"); [[ $seed == 1 ]] && flags+=(--seed-decoding)
  if ! "${cli[@]}" infer --model "$model" --image "$images/$image" --prompt "$question" --max-new-tokens 8 --save-logits \
      "${flags[@]}" "$@" --out "$out/$run.safetensors" > "$out/$run.log" 2>&1; then
    echo "| $run | infer failed: $(tail -1 "$out/$run.log") | | | |"; continue
  fi
  "${cli[@]}" compare "$out/$run.safetensors" "$fx/runs/$run.safetensors" > "$out/$run.compare.md"
  cell() { grep "^| $1 " "$out/$run.compare.md" | awk -F'|' '{print $6}' | sed 's/^ *//; s/ *$//'; }
  echo "| $run | $(cell input_ids) | $(cell generated_ids) | $(cell attention) | $(cell step_logits) |"
done
