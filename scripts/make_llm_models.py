#!/usr/bin/env python3
"""Make the test language models for xnpu's LLM support (issue 8: Phi Silica-class LLMs).

    make_llm_models.py OUT_DIR [--size tiny|bench] [--layers N] [--force] [--keep-src]

Nothing is downloaded: the tokenizer is trained here on fixed sentences and the model has
random weights from fixed seeds. Steps:

1. A Llama/Phi-3-style tokenizer (SentencePiece-like BPE over "▁"-marked text, byte
   fallback, `<unk>`=0, `<s>`=1, `</s>`=2, the 256 byte tokens `<0x00>`..`<0xFF>`=3..258,
   then the learned pieces, then Phi-3's chat special tokens as added tokens) trained with
   the `tokenizers` library on the sentences below, saved as a Hugging Face tokenizer folder
   (tokenizer.json, tokenizer_config.json, special_tokens_map.json).
2. A transformers `Phi3ForCausalLM` with random weights (torch.manual_seed), saved with
   save_pretrained (safetensors) into OUT_DIR/src-<size>/.
3. onnxruntime-genai's model builder (`python -m onnxruntime_genai.models.builder`) on it:
     tiny:  OUT_DIR/tiny-int4       precision int4, EP cpu, block_size=32, accuracy_level=4
                                    (MatMulNBits with int8-quantized activations: the CPU default)
            OUT_DIR/tiny-int4-acc1  precision int4, EP cpu, block_size=32, accuracy_level=1
                                    (same weights, fp32 activations: no activation quantization)
            OUT_DIR/tiny-fp32       precision fp32, EP cpu
            OUT_DIR/tiny-int4-qdq   tiny-fp32 with its MatMul weights quantised by ONNX
                                    Runtime's MatMulNBitsQuantizer in QDQ form (INT4
                                    DequantizeLinear, block_size 32, symmetric, then MatMul):
                                    the form NPU quantisers write
     bench: OUT_DIR/bench-int4      Phi-3.5-mini shapes (hidden 3072, 32 heads, 32 kv heads,
                                    intermediate 8192, vocab 32064, --layers N, default 2),
                                    precision int4, EP cpu, block_size=32, accuracy_level=4
            OUT_DIR/bench-fp32      the same, precision fp32
            OUT_DIR/bench-int4-qdq  bench-fp32 quantised like tiny-int4-qdq: what
                                    `xnpu bench generate bench-int4-qdq --against bench-int4`
                                    compares with the MatMulNBits form
   Each folder has genai_config.json, model.onnx (+ model.onnx.data), the tokenizer files.
4. Sanity checks on each variant: onnxruntime-genai loads it, its tokenizer gives the same ids
   as transformers' AutoTokenizer on a few strings, and 32 greedy tokens are not all the same.

Idempotent: a folder whose `.stamp` matches (sha256 of this script + size + layers) is kept.
OUT_DIR/src-tiny (the HF model, 0.6 MB) is kept; OUT_DIR/src-bench (1.7 GB) is removed after a
bench build unless --keep-src.

Measured (2 shared cores): tiny, all four variants ~25 s; bench (2 layers), all three ~50 s,
peak RSS 5.0 GB, bench-int4/model.onnx.data 599 MB (embedding stays fp32: 394 MB of it),
bench-fp32 1.7 GB, bench-int4-qdq 599 MB.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

# No network: everything is local (the builder would otherwise look up the Hugging Face hub).
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

SEED = 1234

# Training text for the tokenizer (and the prompts the tests use come from the same words).
SENTENCES = [
    "The quick brown fox jumps over the lazy dog.",
    "A journey of a thousand miles begins with a single step.",
    "To be or not to be, that is the question.",
    "All that glitters is not gold.",
    "The early bird catches the worm, but the second mouse gets the cheese.",
    "Once upon a time there was a small village at the edge of a great forest.",
    "The children played in the garden while their parents prepared dinner.",
    "Rain fell softly on the roof as the old man read his favourite book.",
    "She opened the window and watched the sun rise over the quiet hills.",
    "Every morning the baker made fresh bread for the people of the town.",
    "The river flows from the mountains down to the sea.",
    "Computers follow instructions written by programmers in many languages.",
    "A neural network learns patterns from examples and makes predictions.",
    "The model reads a prompt and writes one token at a time.",
    "Language models predict the next word given the words before it.",
    "Small devices such as phones and laptops now run these models locally.",
    "The battery lasted all day because the processor was very efficient.",
    "He wrote a short letter to his friend who lived across the ocean.",
    "The museum was full of paintings, statues and ancient coins.",
    "Our team won the match after a long and difficult season.",
    "Please remember to turn off the lights when you leave the room.",
    "The cat slept on the warm blanket next to the fire.",
    "Music can change the mood of a room in a single moment.",
    "Scientists measured the temperature of the water every hour.",
    "The train arrived at the station exactly on time.",
    "What is the capital of France? The capital of France is Paris.",
    "How many days are there in a week? There are seven days in a week.",
    "Write a short poem about the moon and the stars.",
    "Explain why the sky is blue in simple words.",
    "The teacher asked the students to open their books to page twenty.",
    "Fresh vegetables and fruit are good for your health.",
    "The engineer checked every part of the machine before starting it.",
    "Mountains, rivers, forests and deserts cover the surface of the earth.",
    "The library opens at nine in the morning and closes at six in the evening.",
    "Numbers like 1, 2, 3, 42 and 2024 appear in many sentences.",
    "Hello, world! This is a test of the tokenizer.",
    "It was the best of times, it was the worst of times.",
    "The farmer planted wheat in the spring and harvested it in the autumn.",
    "Birds build their nests high in the trees to keep their eggs safe.",
    "Good software is simple, correct and fast.",
]

# Phi-3's added (chat) tokens, in Phi-3's order; <|endoftext|> is the end of sequence.
PHI3_ADDED = [
    "<|endoftext|>", "<|assistant|>", "<|placeholder1|>", "<|placeholder2|>",
    "<|placeholder3|>", "<|placeholder4|>", "<|system|>", "<|end|>",
    "<|placeholder5|>", "<|placeholder6|>", "<|user|>",
]

SIZES = {
    # Tiny: hidden 64, 4 heads (head size 16), 2 kv heads (GQA), 2 layers.
    "tiny": dict(hidden_size=64, num_attention_heads=4, num_key_value_heads=2,
                 intermediate_size=128, num_hidden_layers=2, max_position_embeddings=256,
                 tok_vocab=512, vocab_size=None, initializer_range=0.25),
    # Phi-3.5-mini shapes (vocab 32064), fewer layers.
    "bench": dict(hidden_size=3072, num_attention_heads=32, num_key_value_heads=32,
                  intermediate_size=8192, num_hidden_layers=2, max_position_embeddings=4096,
                  tok_vocab=512, vocab_size=32064, initializer_range=0.02),
}

# Builder runs per size: (folder, precision, extra_options).
VARIANTS = {
    "tiny": [
        ("tiny-int4", "int4", {"block_size": "32", "accuracy_level": "4"}),
        ("tiny-int4-acc1", "int4", {"block_size": "32", "accuracy_level": "1"}),
        ("tiny-fp32", "fp32", {}),
        # Made from tiny-fp32 (listed after it), not by the builder.
        ("tiny-int4-qdq", "int4-qdq", {"from": "tiny-fp32", "block_size": "32"}),
    ],
    "bench": [
        ("bench-int4", "int4", {"block_size": "32", "accuracy_level": "4"}),
        ("bench-fp32", "fp32", {}),
        ("bench-int4-qdq", "int4-qdq", {"from": "bench-fp32", "block_size": "32"}),
    ],
}

CHECK_STRINGS = [
    "The quick brown fox jumps over the lazy dog",
    "Hello, world!",
    "  two  spaces and ünïcödé 日本 🙂",
    "<|user|>What is the capital of France?<|end|><|assistant|>",
]


def log(msg: str) -> None:
    print(f"[make_llm_models] {msg}", flush=True)


def script_hash(size: str, layers: int) -> str:
    h = hashlib.sha256(Path(__file__).read_bytes())
    h.update(f"|{size}|{layers}".encode())
    return h.hexdigest()


def stamped(folder: Path, want: str) -> bool:
    try:
        return (folder / ".stamp").read_text().strip() == want
    except OSError:
        return False


def write_stamp(folder: Path, want: str) -> None:
    (folder / ".stamp").write_text(want + "\n")


# ---------------------------------------------------------------------------------------------
# Tokenizer
# ---------------------------------------------------------------------------------------------

def build_tokenizer(train_vocab: int, total_vocab: int | None):
    """Returns a `tokenizers.Tokenizer` laid out like Llama/Phi-3's.

    train_vocab: size of the base vocabulary to train (specials + bytes + learned pieces).
    total_vocab: when set, the base vocabulary is padded with unreachable `<unused_N>`
    pieces so that base + Phi-3 added tokens + trailing `<|dummy_N|>` added tokens is exactly
    total_vocab (Phi-3: 32000 base + 11 added, model vocab 32064)."""
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers
    from tokenizers import AddedToken

    specials = ["<unk>", "<s>", "</s>"]
    byte_tokens = [f"<0x{b:02X}>" for b in range(256)]

    # 1. Learn merges on "▁"-marked words (Metaspace splits at spaces, so no merge crosses
    # a word boundary, as with SentencePiece).
    trainer_tok = Tokenizer(models.BPE(unk_token="<unk>"))
    trainer_tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="first", split=True)
    n_learn = train_vocab - len(specials) - len(byte_tokens)
    trainer = trainers.BpeTrainer(vocab_size=n_learn, min_frequency=2, show_progress=False,
                                  special_tokens=[], limit_alphabet=1000)
    trainer_tok.train_from_iterator(SENTENCES, trainer=trainer)
    learned = json.loads(trainer_tok.to_str())["model"]
    learned_vocab = sorted(learned["vocab"].items(), key=lambda kv: kv[1])
    merges = [tuple(m) if isinstance(m, list) else tuple(m.split(" ")) for m in learned["merges"]]

    # 2. Llama layout: specials, bytes, learned pieces (in learned order).
    vocab: dict[str, int] = {}
    for t in specials + byte_tokens:
        vocab[t] = len(vocab)
    for t, _ in learned_vocab:
        if t not in vocab:
            vocab[t] = len(vocab)
    if total_vocab is not None:
        base_target = total_vocab - 64  # Phi-3: 32000 base ids, then 64 ids of added tokens
        i = 0
        while len(vocab) < base_target:
            vocab[f"<unused_{i}>"] = len(vocab)
            i += 1

    tok = Tokenizer(models.BPE(vocab=vocab, merges=merges, unk_token="<unk>",
                               fuse_unk=True, byte_fallback=True))
    # Llama-2 / Phi-3 tokenizer.json pipeline.
    tok.normalizer = normalizers.Sequence([normalizers.Prepend("▁"), normalizers.Replace(" ", "▁")])
    tok.pre_tokenizer = None
    tok.decoder = decoders.Sequence([
        decoders.Replace("▁", " "), decoders.ByteFallback(), decoders.Fuse(), decoders.Strip(" ", 1, 0),
    ])
    # No post-processor: encode() adds no <s>, as with Phi-3 (add_bos_token false) and as
    # onnxruntime-genai's tokenizer does (it ignores post_processor / add_bos_token here).
    tok.post_processor = None

    tok.add_special_tokens([AddedToken(t, normalized=False, special=True) for t in specials])
    added = list(PHI3_ADDED)
    if total_vocab is not None:
        i = 0
        while len(vocab) + len(added) < total_vocab:
            added.append(f"<|dummy_{i}|>")
            i += 1
    tok.add_special_tokens([AddedToken(t, normalized=False, special=True) for t in added])
    return tok


def save_tokenizer(tok, out: Path, max_len: int) -> dict:
    """Saves tok as a Hugging Face tokenizer folder; returns the special token ids."""
    from transformers import PreTrainedTokenizerFast

    out.mkdir(parents=True, exist_ok=True)
    hf = PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token="<s>", eos_token="<|endoftext|>", unk_token="<unk>",
        pad_token="<|endoftext|>", model_max_length=max_len, padding_side="left",
        clean_up_tokenization_spaces=False,
    )
    hf.save_pretrained(str(out))
    # transformers 5 no longer writes special_tokens_map.json; write it (older readers use it).
    stm = out / "special_tokens_map.json"
    if not stm.exists():
        stm.write_text(json.dumps({
            "bos_token": "<s>", "eos_token": "<|endoftext|>", "unk_token": "<unk>",
            "pad_token": "<|endoftext|>",
        }, indent=2) + "\n")
    ids = {
        "bos": tok.token_to_id("<s>"), "eos": tok.token_to_id("<|endoftext|>"),
        "unk": tok.token_to_id("<unk>"), "pad": tok.token_to_id("<|endoftext|>"),
        "vocab": tok.get_vocab_size(with_added_tokens=True),
    }
    return ids


# ---------------------------------------------------------------------------------------------
# Model
# ---------------------------------------------------------------------------------------------

def make_hf_model(size: str, layers: int, src: Path, want: str) -> dict:
    """Tokenizer + random-weight Phi-3 model in src (Hugging Face folder)."""
    if stamped(src, want):
        log(f"{src.name}: up to date")
        return json.loads((src / "xnpu_llm_info.json").read_text())
    import torch
    from transformers import Phi3Config, Phi3ForCausalLM

    spec = dict(SIZES[size])
    if src.exists():
        shutil.rmtree(src)
    src.mkdir(parents=True)

    t0 = time.time()
    tok = build_tokenizer(spec.pop("tok_vocab"), spec["vocab_size"])
    ids = save_tokenizer(tok, src, spec["max_position_embeddings"])
    vocab = spec.pop("vocab_size") or ids["vocab"]
    assert ids["vocab"] == vocab, (ids, vocab)
    log(f"{src.name}: tokenizer vocab {vocab} ({time.time() - t0:.1f} s)")

    torch.manual_seed(SEED)
    config = Phi3Config(
        vocab_size=vocab,
        hidden_size=spec["hidden_size"],
        intermediate_size=spec["intermediate_size"],
        num_hidden_layers=layers,
        num_attention_heads=spec["num_attention_heads"],
        num_key_value_heads=spec["num_key_value_heads"],
        hidden_act="silu",
        max_position_embeddings=spec["max_position_embeddings"],
        original_max_position_embeddings=spec["max_position_embeddings"],  # plain RoPE
        initializer_range=spec["initializer_range"],
        rms_norm_eps=1e-5,
        rope_parameters={"rope_type": "default", "rope_theta": 10000.0, "partial_rotary_factor": 1.0},
        tie_word_embeddings=False,
        bos_token_id=ids["bos"],
        eos_token_id=ids["eos"],
        pad_token_id=ids["pad"],
        sliding_window=None,
        architectures=["Phi3ForCausalLM"],
        dtype="float32",
    )
    t0 = time.time()
    model = Phi3ForCausalLM(config).eval()
    with torch.no_grad():
        # RMSNorm weights are initialised to 1; give them some spread so the test exercises them.
        g = torch.Generator().manual_seed(SEED + 1)
        for name, p in model.named_parameters():
            if name.endswith("norm.weight"):
                p.copy_(1.0 + 0.2 * torch.randn(p.shape, generator=g))
    model.save_pretrained(str(src), safe_serialization=True)
    log(f"{src.name}: Phi3ForCausalLM {sum(p.numel() for p in model.parameters()):,} parameters "
        f"({time.time() - t0:.1f} s)")

    info = {"size": size, "layers": layers, "vocab": vocab, "special_ids": ids,
            "config": {k: getattr(config, k) for k in (
                "hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads",
                "num_key_value_heads", "max_position_embeddings", "initializer_range", "rms_norm_eps")}}
    if size == "tiny":
        # Greedy generation in torch: the reference for "it is not one token repeated".
        from transformers import AutoTokenizer
        hf_tok = AutoTokenizer.from_pretrained(str(src))
        prompt = hf_tok("The quick brown fox jumps over the lazy dog", return_tensors="pt")
        out = model.generate(**prompt, max_new_tokens=32, min_new_tokens=32, do_sample=False,
                             pad_token_id=ids["pad"], eos_token_id=None)
        gen = out[0, prompt["input_ids"].shape[1]:].tolist()
        info["torch_greedy"] = {"prompt_ids": prompt["input_ids"][0].tolist(), "generated_ids": gen}
        distinct = len(set(gen))
        log(f"{src.name}: torch greedy 32 tokens, {distinct} distinct: {gen}")
        if distinct < 4:
            raise SystemExit(f"greedy output too repetitive ({distinct} distinct ids): raise initializer_range")
    (src / "xnpu_llm_info.json").write_text(json.dumps(info, indent=2) + "\n")
    write_stamp(src, want)
    return info


def run_builder(src: Path, out: Path, precision: str, extra: dict, cache: Path) -> float:
    cmd = [sys.executable, "-m", "onnxruntime_genai.models.builder",
           "-i", str(src), "-o", str(out), "-p", precision, "-e", "cpu", "-c", str(cache),
           "--extra_options", "hf_token=false", *[f"{k}={v}" for k, v in extra.items()]]
    log("running " + " ".join(cmd[1:]))
    t0 = time.time()
    res = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if res.returncode != 0:
        sys.stderr.write(res.stdout[-8000:])
        raise SystemExit(f"model builder failed for {out.name} (exit {res.returncode})")
    (out / "builder.log").write_text(res.stdout)
    return time.time() - t0


def make_qdq(fp32: Path, out: Path, block_size: int) -> float:
    """A copy of the fp32 variant whose MatMul weights are INT4 QDQ: ONNX Runtime's
    MatMulNBitsQuantizer in QDQ format (DequantizeLinear of an INT4 [K, N] initializer,
    blocked along K, symmetric: no zero point), the form NPU quantisers write."""
    import onnx
    from onnxruntime.quantization import QuantFormat
    from onnxruntime.quantization.matmul_nbits_quantizer import (
        DefaultWeightOnlyQuantConfig, MatMulNBitsQuantizer)

    t0 = time.time()
    shutil.copytree(fp32, out, ignore=shutil.ignore_patterns(
        "model.onnx", "model.onnx.data", "builder.log", "xnpu_variant.json", ".stamp"))
    model = onnx.load(str(fp32 / "model.onnx"))
    cfg = DefaultWeightOnlyQuantConfig(block_size=block_size, is_symmetric=True,
                                       quant_format=QuantFormat.QDQ)
    q = MatMulNBitsQuantizer(model, algo_config=cfg)
    q.process()
    onnx.save(q.model.model, str(out / "model.onnx"), save_as_external_data=True,
              all_tensors_to_one_file=True, location="model.onnx.data", size_threshold=1024)
    return time.time() - t0


def check_variant(folder: Path, src: Path, size: str) -> dict:
    """onnxruntime-genai loads it; tokenizers agree; greedy output is not degenerate."""
    import onnxruntime_genai as og
    from transformers import AutoTokenizer

    model = og.Model(str(folder))
    tok = og.Tokenizer(model)
    hf = AutoTokenizer.from_pretrained(str(folder))
    for s in CHECK_STRINGS:
        a = [int(t) for t in tok.encode(s)]
        b = hf(s)["input_ids"]
        if a != b:
            raise SystemExit(f"{folder.name}: tokenizer mismatch on {s!r}: genai {a} vs transformers {b}")
    prompt = [int(t) for t in tok.encode(CHECK_STRINGS[0])]
    params = og.GeneratorParams(model)
    params.set_search_options(do_sample=False, max_length=len(prompt) + 32)
    gen = og.Generator(model, params)
    gen.append_tokens(prompt)
    out = []
    while not gen.is_done():
        gen.generate_next_token()
        out.append(int(gen.get_next_tokens()[0]))
    distinct = len(set(out))
    log(f"{folder.name}: genai greedy {len(out)} tokens, {distinct} distinct: {out}")
    if size == "tiny" and distinct < 4:
        raise SystemExit(f"{folder.name}: greedy output too repetitive")
    return {"prompt_ids": prompt, "generated_ids": out}


def folder_size(p: Path) -> int:
    return sum(f.stat().st_size for f in p.rglob("*") if f.is_file())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("out_dir", type=Path)
    ap.add_argument("--size", choices=sorted(SIZES), default="tiny")
    ap.add_argument("--layers", type=int, default=None,
                    help="decoder layers (default: 2 for both sizes)")
    ap.add_argument("--force", action="store_true", help="rebuild even when stamps match")
    ap.add_argument("--keep-src", action="store_true",
                    help="keep OUT_DIR/src-bench (the fp32 HF model) after a bench build")
    args = ap.parse_args()
    missing = [m for m in ("torch", "transformers", "tokenizers", "onnxruntime_genai")
               if importlib.util.find_spec(m) is None]
    if missing:
        sys.exit(f"make_llm_models.py: this Python ({sys.executable}) lacks {', '.join(missing)}: "
                 "run `bash scripts/setup_llm.sh` first (it installs them into .venv), then "
                 ".venv/bin/python scripts/make_llm_models.py OUT_DIR")

    layers = args.layers or SIZES[args.size]["num_hidden_layers"]
    out_dir: Path = args.out_dir.resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    want = script_hash(args.size, layers)

    variants = VARIANTS[args.size]
    if not args.force and all(stamped(out_dir / v[0], want) for v in variants):
        log(f"{args.size}: up to date in {out_dir}")
        return

    src = out_dir / f"src-{args.size}"
    if args.force and src.exists():
        shutil.rmtree(src)
    make_hf_model(args.size, layers, src, want)

    cache = out_dir / f".cache-{args.size}"
    for name, precision, extra in variants:
        folder = out_dir / name
        if not args.force and stamped(folder, want):
            log(f"{name}: up to date")
            continue
        if folder.exists():
            shutil.rmtree(folder)
        if precision == "int4-qdq":
            secs = make_qdq(out_dir / extra["from"], folder, int(extra["block_size"]))
        else:
            secs = run_builder(src, folder, precision, extra, cache)
            # The builder re-saves the tokenizer with transformers, which (5.x) writes no
            # special_tokens_map.json: copy ours so the folder is a complete HF tokenizer
            # folder.
            shutil.copy2(src / "special_tokens_map.json", folder / "special_tokens_map.json")
        info = {"precision": precision, "execution_provider": "cpu", "extra_options": extra,
                "builder_seconds": round(secs, 1)}
        info["check"] = check_variant(folder, src, args.size)
        (folder / "xnpu_variant.json").write_text(json.dumps(info, indent=2) + "\n")
        write_stamp(folder, want)
        files = ", ".join(f"{f.name} {f.stat().st_size:,}" for f in sorted(folder.iterdir())
                          if f.name.startswith("model"))
        log(f"{name}: built in {secs:.1f} s; {files}; folder {folder_size(folder):,} bytes")
    shutil.rmtree(cache, ignore_errors=True)
    if args.size == "bench" and not args.keep_src:
        # 1.7 GB of fp32 safetensors, needed again only to rebuild (which remakes it anyway).
        shutil.rmtree(src, ignore_errors=True)


if __name__ == "__main__":
    main()
