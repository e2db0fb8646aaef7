"""`StreamingVLLM`'s stepping over a stand-in for vLLM's engine (no vLLM needed): rows, deltas, n > 1, a client
that leaves, the text decoded as the HF engine decodes it. The real engine: tests/serve/test_vllm_serve.py."""

from __future__ import annotations

from types import SimpleNamespace

from alignline.rollout.types import SamplingParams, TokenIds
from alignline.serve.vllm_backend import StreamingVLLM, serving_engine


class Tokenizer:
    eos_token_id = 0

    def decode(self, ids, skip_special_tokens=True):
        return "".join(chr(ord("a") + i - 1) for i in ids if not (skip_special_tokens and i == 0))


class FakeEngine:
    """Answers each request with `script[prompt[0]]`'s tokens, one per step per choice, as vLLM's DELTA outputs."""

    def __init__(self, script):
        self.script, self.requests, self.aborted = script, {}, []

    def add_request(self, rid, prompt, sampling, lora_request=None):
        self.requests[rid] = {
            "prompt": prompt["prompt_token_ids"],
            "n": sampling.n,
            "pos": 0,
            "first": True,
            "lora": lora_request,
        }
        self.loras = getattr(self, "loras", []) + [(prompt["prompt_token_ids"][0], lora_request)]

    def abort_request(self, ids):
        self.aborted += ids
        for rid in ids:
            self.requests.pop(rid, None)

    def has_unfinished_requests(self):
        return bool(self.requests)

    def step(self):
        self.batches = getattr(self, "batches", []) + [{r["lora"] for r in self.requests.values()}]
        outs = []
        for rid, r in list(self.requests.items()):
            answer = self.script[r["prompt"][0]]
            pos = r["pos"]
            outputs = [
                SimpleNamespace(
                    index=j,
                    token_ids=answer[pos : pos + 1],
                    logprobs=[{answer[pos]: SimpleNamespace(logprob=-0.5)}],
                    finish_reason=("stop" if answer[-1] == 0 else "length") if pos == len(answer) - 1 else None,
                )
                for j in range(r["n"])
            ]
            r["pos"] += 1
            done = r["pos"] == len(answer)
            outs.append(
                SimpleNamespace(
                    request_id=rid,
                    prompt_token_ids=r["prompt"] if r["first"] else None,
                    outputs=outputs,
                    finished=done,
                )
            )
            r["first"] = False
            if done:
                del self.requests[rid]
        return outs


def engine(script, adapters=None):
    e = StreamingVLLM(SimpleNamespace(llm_engine=FakeEngine(script)), Tokenizer(), adapters)
    e.sampling = lambda params: SimpleNamespace(n=params.n)  # the stand-in needs no vLLM SamplingParams
    e.lora_request = lambda: e.active  # and no LoRARequest: the adapter's name stands for it
    return e


def test_rows_stream_as_the_engine_steps_and_join_to_the_answers():
    e = engine({7: [1, 2, 3, 0], 8: [4, 5, 6]})
    seen = []
    out = e.generate(
        [TokenIds([7, 1]), TokenIds([8])],
        SamplingParams(max_new_tokens=3, n=2, logprobs=True),
        on_token=lambda row, t: seen.append((row, t)),
    )
    assert [[c.text for c in g] for g in out] == [["abc", "abc"], ["def", "def"]]
    assert out[0][0].finish_reason == "stop" and out[1][1].finish_reason == "length"
    assert out[0][1].token_ids == [1, 2, 3, 0] and out[0][1].logprobs == [-0.5] * 4
    assert out[0][0].prompt_tokens == 2 and out[1][0].prompt_tokens == 1
    # rows are prompt x n + choice; the first step's tokens reach on_token before the second step's
    assert seen[:4] == [(0, 1), (1, 1), (2, 4), (3, 4)]
    assert [t for r, t in seen if r == 3] == [4, 5, 6]


def test_a_row_whose_client_left_is_aborted_in_the_engine():
    e = engine({7: [1, 2, 3, 4, 5, 0], 8: [4, 5, 6]})
    fake = e.llm.llm_engine
    out = e.generate(
        [TokenIds([7]), TokenIds([8])], SamplingParams(max_new_tokens=8), on_token=lambda row, t: row == 0 and t == 2
    )
    assert len(fake.aborted) == 1 and fake.aborted[0].endswith("-0")  # prompt 0 only
    assert out[0][0].token_ids == [1, 2] and out[1][0].text == "def"


def test_only_an_engine_holding_vllm_is_wrapped():
    plain = SimpleNamespace(name="hf", tokenizer=None)
    assert serving_engine(plain) is plain
    vllm_like = SimpleNamespace(name="vllm", llm=SimpleNamespace(llm_engine=None), tokenizer=None, adapters={"a": "/p"})
    wrapped = serving_engine(vllm_like)
    assert isinstance(wrapped, StreamingVLLM) and wrapped.streams_tokens and wrapped.lora_ids == {"a": 1}
    wrapped.use("a")
    assert wrapped.active == "a"
    wrapped.use("base")
    assert wrapped.active is None


def test_calls_from_several_threads_share_the_engine_each_with_its_own_adapter():
    import threading

    e = engine({1: [1, 2, 3, 4, 5, 6, 7, 8, 0], 2: [2, 0], 3: [3, 3, 0]}, adapters={"a": "/a"})
    results, started = {}, threading.Barrier(3)

    def call(first: int, adapter: str) -> None:
        e.use(adapter)
        started.wait()
        results[first] = e.generate([TokenIds([first])], SamplingParams(max_new_tokens=9))[0][0].text

    threads = [threading.Thread(target=call, args=(k, a)) for k, a in ((1, "a"), (2, "base"), (3, "a"))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert results == {1: "abcdefgh", 2: "b", 3: "cc"}
    assert sorted(e.llm.llm_engine.loras) == [(1, "a"), (2, None), (3, "a")]
    assert e.calls == {} and not e.llm.llm_engine.requests and e.running == (None, 0)
    # on a CPU, one adapter (or the base) at a time in vLLM's batch: the CPU build mixed them up
    assert not e.mix_adapters and all(len(adapters) == 1 for adapters in e.llm.llm_engine.batches)
