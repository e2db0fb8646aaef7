"""The OpenAI-compatible API, driven by the official `openai` client against a real uvicorn server."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import openai
import pytest

from alignline.serve.routing import JsonlQueue, Reviews, Router, load_policy
from support import ScriptedEngine

HI = [{"role": "user", "content": "Hello, how are you today?"}]


def test_models_chat_stream_adapter_and_unknown_model(start_server, tiny_engine):
    client, _ = start_server(tiny_engine, adapters=["lora"])
    assert [m.id for m in client.models.list()] == ["tiny", "lora"]

    base = client.chat.completions.create(model="tiny", messages=HI, max_tokens=8, temperature=0)
    choice = base.choices[0]
    assert choice.message.role == "assistant" and choice.finish_reason in ("stop", "length")
    assert 0 <= choice.model_extra["confidence"] <= 1
    assert base.model_extra["alignline"]["routed"] is False
    assert base.usage.completion_tokens >= 1 and base.usage.prompt_tokens > 0
    assert base.usage.total_tokens == base.usage.prompt_tokens + base.usage.completion_tokens

    lora = client.chat.completions.create(model="lora", messages=HI, max_tokens=8, temperature=0)
    assert lora.choices[0].message.content != choice.message.content  # the adapter answers, not the base
    again = client.chat.completions.create(model="base", messages=HI, max_tokens=8, temperature=0)
    assert again.choices[0].message.content == choice.message.content  # `base` names the base too; greedy repeats

    chunks = list(
        client.chat.completions.create(
            model="tiny", messages=HI, max_tokens=8, temperature=0, stream=True, stream_options={"include_usage": True}
        )
    )
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == choice.message.content
    assert [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason] == [
        choice.finish_reason
    ]
    assert chunks[-1].usage.completion_tokens == base.usage.completion_tokens

    with pytest.raises(openai.NotFoundError, match="does not exist"):
        client.chat.completions.create(model="gpt-4o", messages=HI)


def test_parameters_are_honoured(start_server, tiny_engine):
    client, _ = start_server(tiny_engine, adapters=["lora"])
    r = client.chat.completions.create(model="tiny", messages=HI, n=3, max_completion_tokens=3, temperature=1.0, seed=7)
    assert len(r.choices) == 3 and all(c.finish_reason == "length" for c in r.choices)
    assert r.usage.completion_tokens == 9
    same = client.chat.completions.create(
        model="tiny", messages=HI, n=3, max_completion_tokens=3, temperature=1.0, seed=7
    )
    assert [c.message.content for c in same.choices] == [c.message.content for c in r.choices]  # the seed holds
    one = client.chat.completions.create(model="tiny", messages=HI, max_tokens=1, temperature=0)
    assert one.usage.completion_tokens == 1
    full = client.chat.completions.create(model="tiny", messages=HI, max_tokens=8, temperature=0)
    word = full.choices[0].message.content[2:4]
    if word.strip():
        cut = client.chat.completions.create(model="tiny", messages=HI, max_tokens=8, temperature=0, stop=[word])
        assert word not in cut.choices[0].message.content and cut.choices[0].finish_reason == "stop"


@pytest.mark.parametrize(
    "body, param",
    [
        ({"messages": HI}, "model"),
        ({"model": "tiny", "messages": []}, "messages"),
        ({"model": "tiny", "messages": [{"role": "wizard", "content": "x"}]}, "messages[0]"),
        ({"model": "tiny", "messages": HI, "temperature": 3}, "temperature"),
        ({"model": "tiny", "messages": HI, "n": 0}, "n"),
        ({"model": "tiny", "messages": HI, "max_tokens": "many"}, "max_tokens"),
        ({"model": "tiny", "messages": HI, "stop": [1, 2]}, "stop"),
    ],
)
def test_bad_requests_are_400_in_openai_shape(start_server, tiny_engine, body, param):
    client, _ = start_server(tiny_engine, adapters=["lora"])
    r = httpx.post(f"{client.base_url}chat/completions", json=body, timeout=30)
    assert r.status_code == 400
    error = r.json()["error"]
    assert error["param"] == param and error["type"] == "invalid_request_error" and error["message"]
    # The JSON content type is required (a body without one is a 415: tests/serve/test_hardening.py).
    bad_json = httpx.post(
        f"{client.base_url}chat/completions", content=b"{nope", timeout=30, headers={"content-type": "application/json"}
    )
    assert bad_json.status_code == 400 and "JSON" in bad_json.json()["error"]["message"]


def test_concurrent_requests_are_batched_and_match_one_at_a_time(start_server, tiny_engine):
    client, app = start_server(tiny_engine, adapters=["lora"], batch_wait_s=0.2)
    alone = client.chat.completions.create(model="tiny", messages=HI, max_tokens=6, temperature=0)
    with ThreadPoolExecutor(6) as pool:
        answers = list(
            pool.map(
                lambda _: client.chat.completions.create(model="tiny", messages=HI, max_tokens=6, temperature=0),
                range(6),
            )
        )
    assert {a.choices[0].message.content for a in answers} == {alone.choices[0].message.content}
    assert max(app.state.worker.batches) > 1  # some requests shared an engine call


class SlowEngine(ScriptedEngine):
    def __init__(self, gate: threading.Event):
        super().__init__(lambda text: "a slow answer")
        self.gate = gate

    def generate(self, prompts, params):
        self.gate.wait(30)
        return super().generate(prompts, params)


def test_a_full_queue_answers_503(start_server):
    gate = threading.Event()
    client, app = start_server(SlowEngine(gate), max_queue=1, batch_wait_s=0.0)
    with ThreadPoolExecutor(2) as pool:
        first = pool.submit(client.chat.completions.create, model="tiny", messages=HI)
        while app.state.worker.waiting:  # the worker took the first request and is stuck in the engine
            time.sleep(0.01)
        time.sleep(0.05)
        second = pool.submit(client.chat.completions.create, model="tiny", messages=HI)  # waits in the queue
        while not app.state.worker.waiting:
            time.sleep(0.01)
        with pytest.raises(openai.InternalServerError) as e:
            client.chat.completions.create(model="tiny", messages=HI)
        assert e.value.status_code == 503 and "busy" in str(e.value)
        gate.set()
        assert first.result().choices[0].message.content == "a slow answer"
        assert second.result().choices[0].message.content == "a slow answer"


def test_threshold_holds_or_flags_and_queues_with_the_request_id(start_server, tmp_path):
    # ScriptedEngine gives every token log-prob -0.1: confidence exp(-0.1) = 0.905 for every answer.
    engine = ScriptedEngine(lambda text: "Paris is the capital.")
    queue = tmp_path / "reviews.jsonl"
    held, _ = start_server(
        engine,
        router=Router(threshold=0.95, on_low="hold", hold_message="held: {request_id}"),
        reviews=Reviews([JsonlQueue(str(queue))]),
    )
    r = held.chat.completions.create(model="tiny", messages=[{"role": "user", "content": "Capital of France?"}])
    meta = r.model_extra["alignline"]
    assert r.choices[0].message.content == f"held: {r.id}" and r.choices[0].finish_reason == "stop"
    assert meta["routed"] and meta["action"] == "hold" and meta["review_id"] == 1
    assert meta["reasons"] == ["confidence 0.905 < 0.95"]
    import json

    item = json.loads(queue.read_text())
    assert item["response"] == "Paris is the capital." and item["meta"]["request_id"] == r.id
    assert item["prompt"] == [{"role": "user", "content": "Capital of France?"}]

    flagged, _ = start_server(
        engine, router=Router(threshold=0.95, on_low="flag"), reviews=Reviews([JsonlQueue(str(queue))])
    )
    chunks = list(flagged.chat.completions.create(model="tiny", messages=HI, stream=True))
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == "Paris is the capital."
    last = chunks[-1].model_extra["alignline"]
    assert last["routed"] and last["action"] == "flag" and last["review_id"] == 2
    assert len(queue.read_text().splitlines()) == 2

    passed, _ = start_server(engine, router=Router(threshold=0.9), reviews=Reviews([JsonlQueue(str(queue))]))
    ok = passed.chat.completions.create(model="tiny", messages=HI)
    assert not ok.model_extra["alignline"]["routed"] and ok.choices[0].message.content == "Paris is the capital."
    assert len(queue.read_text().splitlines()) == 2


def test_policy_rules_route_whatever_the_confidence(start_server, tmp_path):
    rules = tmp_path / "rules.yaml"
    rules.write_text("action: flag\npii: [email]\ntopics:\n  medical:\n    keywords: [dosage]\n    where: prompt\n")
    engine = ScriptedEngine(lambda text: "Write to jane.doe@example.com" if "contact" in text else "Fine.")
    queue = tmp_path / "q.jsonl"
    client, _ = start_server(
        engine, router=Router(policy=load_policy(str(rules))), reviews=Reviews([JsonlQueue(str(queue))])
    )

    def ask(text):
        return client.chat.completions.create(model="tiny", messages=[{"role": "user", "content": text}])

    assert ask("What dosage of ibuprofen?").model_extra["alignline"]["reasons"] == ["topic:medical"]
    pii = ask("Whom do I contact?")
    assert pii.model_extra["alignline"]["reasons"] == ["pii:email"]
    assert pii.choices[0].message.content.startswith("Write to")  # flagged, not held
    assert not ask("How are you?").model_extra["alignline"]["routed"]
    assert len(queue.read_text().splitlines()) == 2


def test_routed_answers_reach_the_annotation_store_and_come_back_with_lineage(start_server, tmp_path):
    """Serve -> the store's review queue (SQLite) -> a reviewer's correction -> export: SFT and preference
    records whose lineage names the request."""
    from alignline.annotate.store import FAST_KDF, Store
    from alignline.serve.routing import open_reviews

    url = f"sqlite:///{tmp_path / 'annotate.db'}"
    engine = ScriptedEngine(lambda text: "12")
    client, _ = start_server(
        engine,
        router=Router(threshold=0.95, on_low="flag"),
        reviews=open_reviews(url, "reviews", str(tmp_path / "q.jsonl")),
    )
    r = client.chat.completions.create(model="tiny", messages=[{"role": "user", "content": "What is 5 + 8?"}])
    meta = r.model_extra["alignline"]
    store = Store(url, kdf=FAST_KDF)
    (entry,) = store.reviews("reviews")
    assert meta["review_id"] == entry["item_id"] and entry["meta"]["request_id"] == r.id
    admin = store.add_user("rev", "admin", "a long password")
    item = store.next_item("reviews", admin)
    assert item["responses"] == ["12"] and item["prompt"] == [{"role": "user", "content": "What is 5 + 8?"}]
    store.add_label(item["id"], admin, None, scores={"quality": 1}, edit="13")
    records = {rec["kind"]: rec for rec in store.export("reviews")}
    assert records["sft"]["messages"][-1] == {"role": "assistant", "content": "13"}
    assert records["preference"]["chosen"] == "13" and records["preference"]["rejected"] == "12"
    assert records["sft"]["lineage"]["review"]["request_id"] == r.id
    assert records["preference"]["lineage"]["review"]["lineage_id"] == f"{r.id}#0"
