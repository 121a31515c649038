#!/usr/bin/env python3
"""HF transformers on the same checkpoint, image and prompt as `AttnPortal.Cli bench`: generate with SDPA and no
attentions, and with eager attention and output_attentions=True (what attention tools use). Prints JSON.

--family llava (default): LLaVA-1.5, "USER: <image>\n{prompt} ASSISTANT:", the image padded to a square, 576 image
  tokens (the tiny fixture's tokenizer: image token 600).
--family onevision: LLaVA-OneVision, the Qwen2 chat template, anyres_max_9 tiles with image_sizes, as many image tokens
  as the model packs (base view, unpadded grid, one newline per grid row); also prints image_tokens."""
import argparse, json, os, statistics, sys, time

import torch
from PIL import Image, ImageOps
from transformers import (AutoTokenizer, CLIPImageProcessorPil, LlavaForConditionalGeneration,
                          LlavaOnevisionForConditionalGeneration)


def expand2square(im, background):
    w, h = im.size
    if w == h:
        return im
    side = max(w, h)
    out = Image.new(im.mode, (side, side), background)
    out.paste(im, ((side - w) // 2, (side - h) // 2))
    return out


def llava_inputs(a, model):
    tok = AutoTokenizer.from_pretrained(a.model)
    ip = CLIPImageProcessorPil.from_pretrained(a.model)
    mean = tuple(int(x * 255) for x in ip.image_mean)
    pixels = ip(images=expand2square(Image.open(a.image).convert("RGB"), mean), return_tensors="pt")["pixel_values"]
    ids = tok(f"USER: <image>\n{a.prompt} ASSISTANT:")["input_ids"]
    i = ids.index(600)
    ids = torch.tensor([ids[:i] + [600] * 576 + ids[i + 1:]], device="cuda")
    return {"input_ids": ids, "pixel_values": pixels.to("cuda", torch.bfloat16)}, {}


def onevision_inputs(a, model):
    # The template, PIL processor and feature count of make_family_fixtures.py, which verify-families.sh checks the
    # engine's ids against. transformers 5.17's LlavaOnevisionProcessor cannot be built without a video processor, so
    # the placeholder is expanded by hand, to the count the model itself packs (generate rejects any other count).
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, "fixtures"))
    sys.dont_write_bytecode = True  # tools/fixtures/__pycache__ is tracked: a benchmark should not rewrite it
    from make_family_fixtures import image_features, onevision_prompt, pil_processor
    tok = AutoTokenizer.from_pretrained(a.model)
    ip = pil_processor("LlavaOnevisionImageProcessor").from_pretrained(a.model)
    # The engine applies EXIF orientation to every image and drops alpha.
    enc = ip(images=ImageOps.exif_transpose(Image.open(a.image)).convert("RGB"), return_tensors="pt")
    pixels = enc["pixel_values"].to("cuda", torch.bfloat16)
    sizes = enc["image_sizes"].to("cuda")
    with torch.inference_mode():
        n = int(image_features(model, model.config, pixels, sizes).shape[0])
    ids = tok(onevision_prompt(a.prompt))["input_ids"]
    # The engine finds the tokenizer's <image> and fills the config's image token id, as done here.
    i = ids.index(tok.convert_tokens_to_ids("<image>"))
    image_id = model.config.image_token_id
    ids = torch.tensor([ids[:i] + [image_id] * n + ids[i + 1:]], device="cuda")
    return {"input_ids": ids, "pixel_values": pixels, "image_sizes": sizes}, {"image_tokens": n}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--family", choices=("llava", "onevision"), default="llava")
    ap.add_argument("--model", required=True)
    ap.add_argument("--image", required=True)
    ap.add_argument("--prompt", default="What is shown in this image?")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=1, help="untimed runs first")
    ap.add_argument("--max-new-tokens", type=int, default=32)
    a = ap.parse_args()
    model_class, prepare = ((LlavaForConditionalGeneration, llava_inputs) if a.family == "llava"
                            else (LlavaOnevisionForConditionalGeneration, onevision_inputs))
    out, inputs = {}, None
    for mode, attn in (("sdpa", False), ("eager_attentions", True)):
        model = model_class.from_pretrained(a.model, dtype=torch.bfloat16, device_map="cuda",
                                            attn_implementation="sdpa" if mode == "sdpa" else "eager")
        if inputs is None:
            # OneVision's image-token count comes from the loaded model; built once, so both modes get the same ids.
            inputs, extra = prepare(a, model)
            out["prompt_tokens"] = inputs["input_ids"].shape[1]
            out.update(extra)
        ids = inputs["input_ids"]
        torch.cuda.reset_peak_memory_stats()
        times = []
        for r in range(a.warmup + a.runs):
            torch.cuda.synchronize()
            t = time.perf_counter()
            with torch.inference_mode():
                g = model.generate(**inputs, attention_mask=torch.ones_like(ids),
                                   max_new_tokens=a.max_new_tokens, min_new_tokens=a.max_new_tokens, do_sample=False,
                                   output_attentions=attn, return_dict_in_generate=True)
            torch.cuda.synchronize()
            if r >= a.warmup:
                times.append(time.perf_counter() - t)
        out[mode] = {"median_s": statistics.median(times), "best_s": min(times),
                     "new_tokens": int(g.sequences.shape[1] - ids.shape[1]),
                     "peak_gib": torch.cuda.max_memory_allocated() / 2**30}
        del model, g
        torch.cuda.empty_cache()
    print(json.dumps(out))


if __name__ == "__main__":
    main()
