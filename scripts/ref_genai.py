#!/usr/bin/env python3
"""Reference generation with onnxruntime-genai, for xnpu's LLM tests (issue 8).

Greedy generation (do_sample=False), JSON on stdout:

    ref_genai.py MODEL_DIR --prompt "The quick brown fox" [--max-tokens 32] [--chunk N]
                 [--top-k K] [--no-eos]
    ref_genai.py MODEL_DIR --prompt-ids 332,427,357 ...

    {"model_dir": ..., "prompt": ..., "prompt_ids": [...], "generated_ids": [...],
     "text": <genai-decoded generated ids>, "hf_text": <HF-decoded>, "finish": "length"|"eos", "chunk": N|null,
     "eos_token_ids": [...], "seconds": {...}, "steps": [{"top_ids": [...], "top_logits": [...]}, ...]}

  --chunk N    feed the prompt in chunks of N tokens (one append_tokens call per chunk:
               chunked prefill against the growing KV cache) instead of all at once.
  --top-k K    with K > 0, "steps" holds, for each generated token, the K best ids and their
               logits (fp32) from the logits that chose it: tests can tell a real mismatch from
               a near-tie (default 0: no "steps").
  --no-eos     keep generating past an end-of-sequence token (min_length = max_length).
               By default generation stops at EOS as onnxruntime-genai does ("finish": "eos").

Tokenizer ids (Hugging Face AutoTokenizer, which reads tokenizer.json as the Rust
`tokenizers` crate does; onnxruntime-genai's own tokenizer alongside):

    ref_genai.py MODEL_DIR --tokenize "some text" [--tokenize "more text" ...]

    {"model_dir": ..., "items": [{"text": ..., "ids": [...], "tokens": [...],
      "genai_ids": [...], "decoded": ...}, ...]}
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def tokenize(model_dir: str, texts: list[str]) -> dict:
    from transformers import AutoTokenizer

    hf = AutoTokenizer.from_pretrained(model_dir)
    try:
        import onnxruntime_genai as og
        og_tok = og.Tokenizer(og.Model(model_dir))
    except Exception:  # noqa: BLE001 - the genai ids are informative only
        og_tok = None
    items = []
    for text in texts:
        ids = hf(text, add_special_tokens=True)["input_ids"]
        item = {
            "text": text,
            "ids": ids,
            "tokens": hf.convert_ids_to_tokens(ids),
            "decoded": hf.decode(ids, skip_special_tokens=False),
        }
        if og_tok is not None:
            item["genai_ids"] = [int(t) for t in og_tok.encode(text)]
        items.append(item)
    return {"model_dir": model_dir, "items": items}


def peak_rss_bytes() -> int | None:
    """VmHWM of this process (Linux), the peak resident memory."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def hf_decode(model_dir: str, ids: list[int]) -> str | None:
    try:
        from transformers import AutoTokenizer
    except ImportError:
        return None
    return AutoTokenizer.from_pretrained(model_dir).decode(ids, skip_special_tokens=True)


def generate(args) -> dict:
    import numpy as np
    import onnxruntime_genai as og

    t0 = time.perf_counter()
    if args.threads:
        # The decoder session's intra-op pool (ONNX Runtime's CPU kernels).
        cfg = og.Config(args.model_dir)
        cfg.overlay(json.dumps({"model": {"decoder": {"session_options": {
            "intra_op_num_threads": args.threads, "inter_op_num_threads": 1}}}}))
        model = og.Model(cfg)
    else:
        model = og.Model(args.model_dir)
    tok = og.Tokenizer(model)
    t_load = time.perf_counter() - t0
    if args.prompt_ids is not None:
        prompt_ids = [int(x) for x in args.prompt_ids.split(",") if x.strip()]
    else:
        prompt_ids = [int(t) for t in tok.encode(args.prompt)]
    if not prompt_ids:
        raise SystemExit("empty prompt")

    with open(os.path.join(args.model_dir, "genai_config.json")) as f:
        gcfg = json.load(f)
    eos = gcfg["model"]["eos_token_id"]
    eos = eos if isinstance(eos, list) else [eos]

    params = og.GeneratorParams(model)
    max_length = len(prompt_ids) + args.max_tokens
    opts = {"do_sample": False, "max_length": max_length, "batch_size": 1}
    if args.no_eos:
        opts["min_length"] = max_length
    params.set_search_options(**opts)
    gen = og.Generator(model, params)

    chunk = args.chunk if args.chunk and args.chunk > 0 else len(prompt_ids)
    t0 = time.perf_counter()
    for i in range(0, len(prompt_ids), chunk):
        gen.append_tokens(prompt_ids[i:i + chunk])
    t_prefill = time.perf_counter() - t0
    t0 = time.perf_counter()

    out: list[int] = []
    steps = []
    t_first = None
    while not gen.is_done():
        if args.top_k > 0:
            logits = np.asarray(gen.get_logits(), dtype=np.float32).reshape(-1)
        gen.generate_next_token()
        t = int(gen.get_next_tokens()[0])
        if args.top_k > 0:
            top = np.argsort(-logits, kind="stable")[: args.top_k]
            steps.append({"top_ids": [int(i) for i in top],
                          "top_logits": [float(logits[i]) for i in top]})
            if not args.no_eos and int(top[0]) != t and t not in eos:
                print(f"warning: step {len(out)}: argmax {int(top[0])} != generated {t}", file=sys.stderr)
        out.append(t)
        if t_first is None:
            t_first = time.perf_counter() - t0

    t_decode = time.perf_counter() - t0
    finish = "eos" if out and out[-1] in eos and len(out) < args.max_tokens else "length"
    res = {
        "model_dir": args.model_dir,
        "prompt": args.prompt,
        "prompt_ids": prompt_ids,
        "generated_ids": out,
        # onnxruntime-genai's decode (it drops what follows an invalid UTF-8 byte sequence
        # and keeps the leading space) and Hugging Face's (tokenizer.json as the Rust
        # `tokenizers` crate reads it; skip_special_tokens=True).
        "text": tok.decode(np.array(out, dtype=np.int32)) if out else "",
        "hf_text": None if args.no_hf else hf_decode(args.model_dir, out),
        "finish": finish,
        "chunk": args.chunk,
        "max_tokens": args.max_tokens,
        "eos_token_ids": eos,
        # Informative only (wall clock, this machine): model load, prompt (append_tokens),
        # and the generation loop (the first generated token's argmax included).
        "seconds": {"load": round(t_load, 4), "prefill": round(t_prefill, 4),
                    "decode": round(t_decode, 4)},
        # The same measures as `xnpu generate --json`: the first token is chosen from the
        # prompt's logits; every later one costs one model run.
        "prompt_tokens": len(prompt_ids),
        "generated_tokens": len(out),
        "time_to_first_token_s": t_prefill + (t_first or 0.0),
        "prompt_tokens_per_s": len(prompt_ids) / max(t_prefill, 1e-9),
        "generated_tokens_per_s": (len(out) - 1) / max(t_decode - (t_first or 0.0), 1e-9)
        if len(out) > 1 else 0.0,
        "load_s": t_load,
        "peak_rss_bytes": peak_rss_bytes(),
    }
    if args.top_k > 0:
        res["steps"] = steps
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description="onnxruntime-genai greedy reference / tokenizer ids")
    ap.add_argument("model_dir")
    ap.add_argument("--prompt")
    ap.add_argument("--prompt-ids", help="comma-separated token ids instead of --prompt")
    ap.add_argument("--max-tokens", type=int, default=32)
    ap.add_argument("--chunk", type=int, default=None)
    ap.add_argument("--top-k", type=int, default=0)
    ap.add_argument("--no-eos", action="store_true")
    ap.add_argument("--tokenize", action="append", metavar="TEXT")
    ap.add_argument("--threads", type=int, default=0,
                    help="ONNX Runtime intra-op threads (default: its own choice)")
    ap.add_argument("--no-hf", action="store_true",
                    help="skip the Hugging Face decode of the output (benchmarks)")
    args = ap.parse_args()

    if args.tokenize:
        res = tokenize(args.model_dir, args.tokenize)
    elif args.prompt is not None or args.prompt_ids is not None:
        res = generate(args)
    else:
        ap.error("give --prompt, --prompt-ids or --tokenize")
    json.dump(res, sys.stdout, ensure_ascii=False)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
