#!/usr/bin/env python3
"""HF transformers on the same checkpoint, image and prompt as `AttnPortal.Cli bench`: generate with SDPA and no
attentions, and with eager attention and output_attentions=True (what attention tools use). Prints JSON."""
import argparse, json, statistics, time

import torch
from PIL import Image
from transformers import AutoTokenizer, CLIPImageProcessorPil, LlavaForConditionalGeneration


def expand2square(im, background):
    w, h = im.size
    if w == h:
        return im
    side = max(w, h)
    out = Image.new(im.mode, (side, side), background)
    out.paste(im, ((side - w) // 2, (side - h) // 2))
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--image", required=True)
    ap.add_argument("--prompt", default="What is shown in this image?")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--max-new-tokens", type=int, default=32)
    a = ap.parse_args()
    tok = AutoTokenizer.from_pretrained(a.model)
    ip = CLIPImageProcessorPil.from_pretrained(a.model)
    mean = tuple(int(x * 255) for x in ip.image_mean)
    pixels = ip(images=expand2square(Image.open(a.image).convert("RGB"), mean), return_tensors="pt")["pixel_values"]
    ids = tok(f"USER: <image>\n{a.prompt} ASSISTANT:")["input_ids"]
    i = ids.index(600)
    ids = torch.tensor([ids[:i] + [600] * 576 + ids[i + 1:]], device="cuda")
    pixels = pixels.to("cuda", torch.bfloat16)
    out = {"prompt_tokens": ids.shape[1]}
    for mode, attn in (("sdpa", False), ("eager_attentions", True)):
        model = LlavaForConditionalGeneration.from_pretrained(a.model, dtype=torch.bfloat16, device_map="cuda",
                                                              attn_implementation="sdpa" if mode == "sdpa" else "eager")
        torch.cuda.reset_peak_memory_stats()
        times = []
        for r in range(a.runs + 1):
            torch.cuda.synchronize()
            t = time.perf_counter()
            with torch.inference_mode():
                g = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), pixel_values=pixels,
                                   max_new_tokens=a.max_new_tokens, min_new_tokens=a.max_new_tokens, do_sample=False,
                                   output_attentions=attn, return_dict_in_generate=True)
            torch.cuda.synchronize()
            if r > 0:
                times.append(time.perf_counter() - t)
        out[mode] = {"median_s": statistics.median(times), "best_s": min(times),
                     "new_tokens": int(g.sequences.shape[1] - ids.shape[1]),
                     "peak_gib": torch.cuda.max_memory_allocated() / 2**30}
        del model, g
        torch.cuda.empty_cache()
    print(json.dumps(out))


if __name__ == "__main__":
    main()
