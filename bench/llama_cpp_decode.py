"""Prefill and decode tokens/s of llama.cpp (llama-cpp-python) on the same GGUF, prompt ids
and thread count as inference/examples/decode_bench.rs. Prints one JSON line.

Usage: llama_cpp_decode.py MODEL PROMPT_IDS_JSON NEW_TOKENS THREADS
"""
import json
import sys
import time

import llama_cpp


def main() -> None:
    model, prompt_json, new_tokens, threads = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    prompt = json.loads(prompt_json)
    llm = llama_cpp.Llama(model_path=model, n_ctx=1024, n_batch=512, n_threads=threads,
                          n_threads_batch=threads, verbose=False)

    def run():
        llm.reset()
        t0 = time.perf_counter()
        llm.eval(prompt)
        t1 = time.perf_counter()
        token = int(llm.scores[llm.n_tokens - 1].argmax())
        for _ in range(new_tokens - 1):
            llm.eval([token])
            token = int(llm.scores[llm.n_tokens - 1].argmax())
        t2 = time.perf_counter()
        return t1 - t0, t2 - t1

    run()  # warm-up
    prefill, decode = run()
    print(json.dumps({"prefill_tps": round(len(prompt) / prefill, 2),
                      "decode_tps": round((new_tokens - 1) / decode, 2),
                      "prompt_tokens": len(prompt), "new_tokens": new_tokens}))


if __name__ == "__main__":
    main()
