"""Token-by-token streaming through the official `openai` client against a real server on loopback: live
where nothing can be held (no routing, or flag only), buffered where an answer may be held."""

from __future__ import annotations

import json
import threading
import time

import openai
import pytest

from alignline.rollout.types import Completion, cut_at_stop
from alignline.serve.routing import JsonlQueue, Policy, Reviews, Router

HI = [{"role": "user", "content": "Hello, how are you today?"}]


class Gated:
    """The tiny engine, with a streamed generate (or every one, `always`) kept from returning until the
    client has a content chunk or `wait_s` passes: a chunk that came in time left before generation ended.
    `waited` says which, per call that waited."""

    def __init__(self, engine, wait_s: float, always: bool = False):
        self.engine, self.wait_s, self.always = engine, wait_s, always
        self.tokenizer, self.adapters = engine.tokenizer, engine.adapters
        self.streams_tokens = True
        self.got_content = threading.Event()
        self.waited: list[bool] = []
        self.ended = 0.0

    def use(self, name):
        self.engine.use(name)

    def generate(self, prompts, params, on_token=None):
        out = self.engine.generate(prompts, params, on_token=on_token)
        if on_token is not None or self.always:
            self.waited.append(self.got_content.wait(self.wait_s))
        self.ended = time.monotonic()
        return out


def read_stream(client, gate: Gated | None = None, **kwargs):
    """(chunks, text, seconds from the request to the first content chunk)."""
    start, first = time.monotonic(), None
    chunks, text = [], ""
    for c in client.chat.completions.create(model="tiny", stream=True, **kwargs):
        chunks.append(c)
        delta = c.choices[0].delta.content if c.choices else None
        if delta:
            first = first or time.monotonic() - start
            text += delta
            if gate:
                gate.got_content.set()
    return chunks, text, first


def content_chunks(chunks) -> list[str]:
    return [c.choices[0].delta.content for c in chunks if c.choices and c.choices[0].delta.content]


def test_live_stream_equals_the_answer_and_starts_before_generation_ends(start_server, tiny_engine):
    gate = Gated(tiny_engine, wait_s=20)
    client, _ = start_server(gate)
    whole = client.chat.completions.create(model="tiny", messages=HI, max_tokens=16, temperature=0, seed=1)
    start = time.monotonic()
    chunks, text, first = read_stream(
        client, gate, messages=HI, max_tokens=16, temperature=0, seed=1, stream_options={"include_usage": True}
    )
    assert gate.waited == [True]  # the first chunk reached the client while generate had not returned
    assert text == whole.choices[0].message.content and len(content_chunks(chunks)) > 1
    assert first < gate.ended - start  # time to first chunk < time to the end of generation
    finish = [c for c in chunks if c.choices and c.choices[0].finish_reason]
    assert len(finish) == 1 and finish[0].choices[0].finish_reason == whole.choices[0].finish_reason
    assert finish[0].choices[0].model_extra["confidence"] == whole.choices[0].model_extra["confidence"]
    assert finish[0].model_extra["alignline"]["routed"] is False
    assert chunks[-1].usage.completion_tokens == whole.usage.completion_tokens


def test_live_stream_honours_stop_strings_and_n(start_server, tiny_engine):
    client, _ = start_server(tiny_engine)
    free = client.chat.completions.create(model="tiny", messages=HI, max_tokens=16, temperature=0)
    stop = free.choices[0].message.content[3:6]
    cut = client.chat.completions.create(model="tiny", messages=HI, max_tokens=16, temperature=0, stop=[stop])
    _, text, _ = read_stream(client, messages=HI, max_tokens=16, temperature=0, stop=[stop])
    assert text == cut.choices[0].message.content and stop not in text
    assert free.choices[0].message.content.startswith(text)
    # n = 3 sampled with a seed: every choice's deltas go to its own index and join to its answer
    whole = client.chat.completions.create(model="tiny", messages=HI, max_tokens=8, temperature=1.0, seed=5, n=3)
    chunks, _, _ = read_stream(client, messages=HI, max_tokens=8, temperature=1.0, seed=5, n=3)
    joined = {
        i: "".join(c.choices[0].delta.content or "" for c in chunks if c.choices and c.choices[0].index == i)
        for i in range(3)
    }
    assert joined == {i: c.message.content for i, c in enumerate(whole.choices)}


def test_flag_mode_streams_live_with_confidence_and_review_id_last(start_server, tiny_engine, tmp_path):
    queue = tmp_path / "reviews.jsonl"
    gate = Gated(tiny_engine, wait_s=20)
    # the tiny random model's confidence is far below 0.99: every answer is flagged
    client, _ = start_server(
        gate, router=Router(threshold=0.99, on_low="flag"), reviews=Reviews([JsonlQueue(str(queue))])
    )
    whole = client.chat.completions.create(model="tiny", messages=HI, max_tokens=12, temperature=0)
    chunks, text, _ = read_stream(client, gate, messages=HI, max_tokens=12, temperature=0)
    assert gate.waited == [True] and len(content_chunks(chunks)) > 1
    assert text == whole.choices[0].message.content
    last = chunks[-1]
    meta = last.model_extra["alignline"]
    assert meta["routed"] and meta["action"] == "flag" and meta["review_id"] == 2
    assert meta["reasons"][0].startswith("confidence ")
    assert last.choices[0].model_extra["confidence"] == meta["confidence"] < 0.99
    assert all(c.model_extra.get("alignline") is None for c in chunks[:-1])  # the meta only comes last
    items = [json.loads(line) for line in queue.read_text().splitlines()]
    assert items[-1]["review_id"] == 2 and items[-1]["response"] == text
    assert items[-1]["meta"]["request_id"] == last.id


def test_hold_mode_stays_buffered(start_server, tiny_engine, tmp_path):
    gate = Gated(tiny_engine, wait_s=1.0, always=True)
    client, _ = start_server(
        gate,
        router=Router(threshold=0.99, on_low="hold", hold_message="held {request_id}"),
        reviews=Reviews([JsonlQueue(str(tmp_path / "q.jsonl"))]),
    )
    chunks, text, _ = read_stream(client, gate, messages=HI, max_tokens=12, temperature=0)
    assert gate.waited == [False]  # nothing reached the client while generating
    assert text == f"held {chunks[0].id}" and chunks[-1].model_extra["alignline"]["action"] == "hold"


@pytest.mark.parametrize(
    "router, may_hold",
    [
        (Router(), False),
        (Router(threshold=0.5, on_low="flag"), False),
        (Router(threshold=0.5, on_low="hold"), True),
        (Router(policy=Policy(pii=("email",))), True),  # a policy without an action takes --on-low (hold)
        (Router(on_low="flag", policy=Policy(pii=("email",))), False),
        (Router(threshold=0.5, on_low="flag", policy=Policy(pii=("email",), action="hold")), True),
    ],
)
def test_which_routers_may_hold(router, may_hold):
    assert router.may_hold is may_hold


class TokenScript:
    """Streams a scripted reply's tiny-tokenizer tokens through on_token (multi-byte characters split into
    byte tokens), ending at EOS or a stop string as the real engine does."""

    streams_tokens = True

    def __init__(self, tokenizer, reply: str, fail_after: int | None = None):
        self.tokenizer, self.reply, self.fail_after = tokenizer, reply, fail_after

    def generate(self, prompts, params, on_token=None):
        tok = self.tokenizer
        ids = tok(self.reply, add_special_tokens=False).input_ids + [tok.eos_token_id]
        out = []
        for i, _ in enumerate(prompts):
            group = []
            for c in range(params.n):
                taken = []
                for t in ids[: params.max_new_tokens]:
                    if self.fail_after is not None and len(taken) == self.fail_after:
                        raise RuntimeError("the engine broke")
                    taken.append(t)
                    if on_token:
                        on_token(i * params.n + c, t)
                    if cut_at_stop(tok.decode(taken, skip_special_tokens=True), params.stop)[1]:
                        break
                text = cut_at_stop(tok.decode(taken, skip_special_tokens=True), params.stop)[0]
                group.append(Completion(text, taken, "stop", [-0.1] * len(taken) if params.logprobs else None))
            out.append(group)
        return out


def test_multibyte_characters_and_stops_stream_exactly(start_server, tokenizer):
    reply = "Grüße aus Köln — 日本語 ✓ 🎉 fin. Ende STOP nicht mehr"
    client, _ = start_server(TokenScript(tokenizer, reply), default_max_tokens=200)
    chunks, text, _ = read_stream(client, messages=HI)
    assert text == reply and len(content_chunks(chunks)) > 5
    assert not any("\ufffd" in d for d in content_chunks(chunks))
    _, cut, _ = read_stream(client, messages=HI, stop=["STOP", "ü"])
    assert cut == "Gr"
    _, cut, _ = read_stream(client, messages=HI, stop=["STOP"])
    assert cut == "Grüße aus Köln — 日本語 ✓ 🎉 fin. Ende "


def test_an_engine_failure_mid_stream_is_an_error_event(start_server, tokenizer):
    client, _ = start_server(TokenScript(tokenizer, "one two three four five six", fail_after=4), default_max_tokens=50)
    with pytest.raises(openai.APIError, match="the engine broke"):
        read_stream(client, messages=HI)


def test_only_engines_that_stream_tokens_stream_live(tiny_engine):
    """vLLM's offline engine and scripted engines have no `streams_tokens`: their streams are buffered."""
    from alignline.serve.streaming import live_streaming
    from support import ScriptedEngine

    assert live_streaming(tiny_engine, Router(threshold=0.5, on_low="flag"))
    assert not live_streaming(tiny_engine, Router(threshold=0.5, on_low="hold"))
    assert not live_streaming(ScriptedEngine(lambda text: "x"), Router())
    tiny_engine.own_loop = False  # transformers' generate returns finished sequences only
    try:
        assert not live_streaming(tiny_engine, Router())
    finally:
        tiny_engine.own_loop = True


def test_streamed_requests_share_an_engine_call_each_with_its_own_text(start_server, tiny_engine):
    """Three streams and two plain requests, different prompts, batched into one engine call: each stream
    gets its own row's tokens and joins to what that prompt gets alone."""
    from concurrent.futures import ThreadPoolExecutor

    client, app = start_server(tiny_engine, batch_wait_s=0.3)
    asks = [[{"role": "user", "content": f"Tell me about item number {k}."}] for k in range(5)]
    alone = [
        client.chat.completions.create(model="tiny", messages=m, max_tokens=10, temperature=0)
        .choices[0]
        .message.content
        for m in asks
    ]
    calls_before = len(app.state.worker.batches)

    def ask(k):
        if k < 3:
            return read_stream(client, messages=asks[k], max_tokens=10, temperature=0)[1]
        return (
            client.chat.completions.create(model="tiny", messages=asks[k], max_tokens=10, temperature=0)
            .choices[0]
            .message.content
        )

    with ThreadPoolExecutor(5) as pool:
        got = list(pool.map(ask, range(5)))
    assert got == alone
    assert max(app.state.worker.batches[calls_before:]) > 1
