#!/usr/bin/env python3
"""Explains tokenizer_golden.json: an independent byte-level BPE over the GGUF's merges,
run with two pre-tokenizers, compared with llama.cpp's ids in the fixture.

  smollm       what tokenizer.ggml.pre = "smollm" means: every digit (\\p{N}) is its own
               piece, then the GPT-2 regex; no prefix space. Expected to equal llama.cpp.
  gpt2_prefix  plain GPT-2 byte-level with add_prefix_space=true and no digit splitting
               (what a loader that ignores tokenizer.ggml.pre ends up with). Expected to
               differ on digits and on text that does not start with a space.

Informative only (nothing here is a fixture):

  .venv-golden/bin/python scripts/golden/bpe_contrast.py models/SmolLM2-135M-Instruct.Q4_1.gguf \\
      inference/tests/fixtures/tokenizer_golden.json
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import regex

sys.path.insert(0, str(Path(__file__).resolve().parent))
from gguf_meta import read_gguf_metadata  # noqa: E402

GPT2_PATTERN = regex.compile(
    r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+""")
DIGIT = regex.compile(r"\p{N}")


def byte_alphabet() -> dict[int, str]:
    """GPT-2's printable stand-in for every byte value."""
    keep = list(range(ord("!"), ord("~") + 1)) + list(range(0xA1, 0xAD)) + list(range(0xAE, 0x100))
    table, extra = {}, 0
    for b in range(256):
        if b in keep:
            table[b] = chr(b)
        else:
            table[b] = chr(256 + extra)
            extra += 1
    return table


class Bpe:
    def __init__(self, tokens: list[str], merges: list[str], specials: list[str]):
        self.ids = {t: i for i, t in enumerate(tokens)}
        self.ranks = {tuple(m.split(" ", 1)): r for r, m in enumerate(merges)}
        self.alpha = byte_alphabet()
        self.specials = sorted(specials, key=len, reverse=True)

    def merge(self, word: str) -> list[int]:
        parts = list(word)
        while len(parts) > 1:
            best, best_rank = None, None
            for i in range(len(parts) - 1):
                r = self.ranks.get((parts[i], parts[i + 1]))
                if r is not None and (best_rank is None or r < best_rank):
                    best, best_rank = i, r
            if best is None:
                break
            parts[best:best + 2] = [parts[best] + parts[best + 1]]
        return [self.ids[p] for p in parts]

    def pieces(self, text: str, mode: str) -> list[str]:
        if mode == "gpt2_prefix":
            if text and not text.startswith(" "):
                text = " " + text
            chunks = [text]
        else:  # smollm: isolate each digit first
            chunks, last = [], 0
            for m in DIGIT.finditer(text):
                if m.start() > last:
                    chunks.append(text[last:m.start()])
                chunks.append(m.group())
                last = m.end()
            if last < len(text):
                chunks.append(text[last:])
        out = []
        for chunk in chunks:
            out.extend(m.group() for m in GPT2_PATTERN.finditer(chunk))
        return out

    def encode_plain(self, text: str, mode: str) -> list[int]:
        ids = []
        for p in self.pieces(text, mode):
            ids.extend(self.merge("".join(self.alpha[b] for b in p.encode("utf-8"))))
        return ids

    def encode(self, text: str, mode: str, parse_special: bool) -> list[int]:
        if not parse_special or not self.specials:
            return self.encode_plain(text, mode)
        pat = regex.compile("(" + "|".join(regex.escape(s) for s in self.specials) + ")")
        ids = []
        for i, seg in enumerate(pat.split(text)):
            if i % 2:
                ids.append(self.ids[seg])
            elif seg:
                ids.extend(self.encode_plain(seg, mode))
        return ids


def main() -> int:
    gguf_path, fixture_path = Path(sys.argv[1]), Path(sys.argv[2])
    kv = read_gguf_metadata(gguf_path)["kv"]
    tokens = kv["tokenizer.ggml.tokens"]
    types = kv["tokenizer.ggml.token_type"]
    specials = [t for t, ty in zip(tokens, types) if ty in (3, 4)]  # CONTROL, USER_DEFINED
    bpe = Bpe(tokens, kv["tokenizer.ggml.merges"], specials)
    fixture = json.loads(fixture_path.read_text(encoding="utf-8"))
    same_smollm, diff_gpt2 = 0, []
    for case in fixture["cases"]:
        ours = bpe.encode(case["text"], "smollm", case["parse_special"])
        if ours == case["ids"]:
            same_smollm += 1
        else:
            print(f"MISMATCH smollm {case['name']}: {case['text']!r}\n  llama.cpp {case['ids']}\n"
                  f"  ours      {ours}")
        g = bpe.encode(case["text"], "gpt2_prefix", case["parse_special"])
        if g != case["ids"]:
            diff_gpt2.append((case, g))
    n = len(fixture["cases"])
    print(f"smollm re-implementation equals llama.cpp on {same_smollm}/{n} cases")
    print(f"plain GPT-2 byte-level (prefix space, no digit split) differs on {len(diff_gpt2)}/{n}")
    for case, g in diff_gpt2:
        print(f"  {case['name']}: {case['text']!r}\n    llama.cpp   {case['ids']} "
              f"{[tokens[i] for i in case['ids']]}\n    gpt2_prefix {g} {[tokens[i] for i in g]}")
    return 0 if same_smollm == n else 1


if __name__ == "__main__":
    sys.exit(main())
