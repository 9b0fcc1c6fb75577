#!/usr/bin/env python3
"""Closed-loop load on an OpenAI-compatible chat endpoint over plain HTTP (standard library
only): CLIENTS concurrent clients, each sending streaming chat requests one after another
for SECONDS, then waiting for those in flight. Prints one JSON line: aggregate output
tokens/s (from each stream's `usage` chunk), and p50/p99 of time to first token (over all
requests, and over all but each client's first, which arrive together as one burst) and of
the inter-token latency (gaps between content chunks).

    serve_load.py URL CLIENTS SECONDS MAX_TOKENS [--model NAME]

Used by bench/serve_batch.sh against `veritee proxy` (attested TLS to the runtime) and
against llama-server, with the same prompts (about 40 prompt tokens after the chat
template of SmolLM2) and greedy decoding.
"""

import asyncio
import json
import sys
import time
from urllib.parse import urlparse

SUBJECTS = [
    "a lighthouse keeper", "a river in spring", "an old clockmaker", "the first snow",
    "a lost umbrella", "a market at dawn", "a tired astronaut", "a garden of herbs",
]


def prompt(client, n):
    # Varied per request, the same for every server; about 40 tokens once templated.
    subject = SUBJECTS[(client + n) % len(SUBJECTS)]
    return f"Write a short story about {subject}, number {client * 1000 + n}, in plain words."


async def one_request(host, port, path, model, text, max_tokens):
    body = json.dumps({
        "model": model,
        "messages": [{"role": "user", "content": text}],
        "max_tokens": max_tokens,
        "temperature": 0,
        "stream": True,
        "stream_options": {"include_usage": True},
    }).encode()
    reader, writer = await asyncio.open_connection(host, port)
    sent = time.perf_counter()
    writer.write(
        f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode() + body)
    await writer.drain()
    status = await reader.readline()
    if b" 200 " not in status:
        rest = await reader.read()
        raise RuntimeError(f"{status!r}: {rest[:300]!r}")
    while (await reader.readline()) not in (b"\r\n", b""):
        pass  # headers
    chunk_times, tokens, prompt_tokens, buf = [], None, None, b""
    while True:
        data = await reader.read(65536)
        if not data:
            break
        buf += data
        # Chunked transfer framing or not, SSE events are "data: ...\n\n" lines.
        while b"\n" in buf:
            line, buf = buf.split(b"\n", 1)
            line = line.strip()
            if not line.startswith(b"data: ") or line == b"data: [DONE]":
                continue
            try:
                event = json.loads(line[6:])
            except ValueError:
                continue
            now = time.perf_counter()
            for choice in event.get("choices") or []:
                if (choice.get("delta") or {}).get("content"):
                    chunk_times.append(now)
            if event.get("usage"):
                tokens = event["usage"]["completion_tokens"]
                prompt_tokens = event["usage"]["prompt_tokens"]
    writer.close()
    if tokens is None:
        raise RuntimeError("no usage chunk in the stream")
    ttft = chunk_times[0] - sent if chunk_times else None
    gaps = [b - a for a, b in zip(chunk_times, chunk_times[1:])]
    return tokens, ttft, gaps, prompt_tokens


async def first_model(u):
    # The id the server lists first (the runtime refuses a model it does not serve).
    reader, writer = await asyncio.open_connection(u.hostname, u.port)
    writer.write(f"GET /v1/models HTTP/1.1\r\nHost: {u.hostname}:{u.port}\r\nConnection: close\r\n\r\n".encode())
    await writer.drain()
    raw = await reader.read()
    writer.close()
    body = raw.split(b"\r\n\r\n", 1)[1]
    if b"\r\n" in body and body[:1] not in (b"{", b"["):  # chunked: one chunk expected
        body = body.split(b"\r\n", 1)[1].rsplit(b"\r\n0\r\n", 1)[0]
    return json.loads(body)["data"][0]["id"]


def percentile(values, p):
    if not values:
        return None
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


async def main():
    url, clients, seconds, max_tokens = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4])
    u = urlparse(url)
    model = sys.argv[sys.argv.index("--model") + 1] if "--model" in sys.argv else await first_model(u)
    path = (u.path.rstrip("/") or "") + "/v1/chat/completions"
    start = time.perf_counter()
    deadline = start + seconds
    results, errors = [], []

    async def client(c):
        n = 0
        while time.perf_counter() < deadline:
            try:
                results.append(await one_request(u.hostname, u.port, path, model, prompt(c, n), max_tokens) + (n,))
            except Exception as e:  # counted and shown: a failed request is a finding
                errors.append(str(e))
                await asyncio.sleep(0.5)
            n += 1

    await asyncio.gather(*(client(c) for c in range(clients)))
    elapsed = time.perf_counter() - start
    tokens = sum(r[0] for r in results)
    ttfts = [r[1] for r in results if r[1] is not None]
    # Every client's first request arrives at once (a burst of CLIENTS prompts): TTFT is
    # also reported without those first requests.
    steady = [r[1] for r in results if r[1] is not None and r[4] > 0]
    gaps = [g for r in results for g in r[2]]
    print(json.dumps({
        "clients": clients,
        "requests": len(results),
        "errors": len(errors),
        "first_error": errors[0] if errors else None,
        "elapsed_s": round(elapsed, 2),
        "output_tokens": tokens,
        "prompt_tokens_mean": round(sum(r[3] for r in results) / max(1, len(results)), 1),
        "tokens_per_s": round(tokens / elapsed, 2),
        "ttft_p50_s": percentile(ttfts, 50),
        "ttft_p99_s": percentile(ttfts, 99),
        "ttft_p50_after_first_s": percentile(steady, 50),
        "ttft_p99_after_first_s": percentile(steady, 99),
        "itl_p50_s": percentile(gaps, 50),
        "itl_p99_s": percentile(gaps, 99),
    }))


if __name__ == "__main__":
    asyncio.run(main())
