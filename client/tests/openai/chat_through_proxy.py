"""Chat through `veritee proxy` with the official OpenAI Python SDK, unchanged.

Usage: chat_through_proxy.py BASE_URL MODEL
Prints one JSON object with what the SDK returned; the Rust test asserts on it.
"""
import json
import sys

from openai import OpenAI

base_url, model = sys.argv[1], sys.argv[2]
client = OpenAI(base_url=base_url, api_key="unused-the-proxy-verifies-instead")
messages = [{"role": "user", "content": "What is the capital of France?"}]

plain = client.chat.completions.create(
    model=model, messages=messages, max_tokens=24, temperature=0, seed=1
)
text = ""
usage = None
chunks = 0
finish = None
for chunk in client.chat.completions.create(
    model=model,
    messages=messages,
    max_tokens=24,
    temperature=0,
    seed=1,
    stream=True,
    stream_options={"include_usage": True},
):
    chunks += 1
    if chunk.usage is not None:
        usage = chunk.usage
    for choice in chunk.choices:
        if choice.delta.content:
            text += choice.delta.content
        if choice.finish_reason:
            finish = choice.finish_reason

models = [m.id for m in client.models.list()]
print(json.dumps({
    "models": models,
    "plain_content": plain.choices[0].message.content,
    "plain_finish": plain.choices[0].finish_reason,
    "plain_usage": plain.usage.model_dump(),
    "stream_content": text,
    "stream_finish": finish,
    "stream_chunks": chunks,
    "stream_usage": usage.model_dump() if usage else None,
}))
