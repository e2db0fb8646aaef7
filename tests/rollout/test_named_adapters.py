"""Several adapters on one base, switched per request: each answers as it would alone, and mistakes
(an unknown name, an adapter of another base, mixed kinds) are one line."""

import pytest
import torch

from alignline.cli import main
from alignline.errors import UserError
from alignline.models.loading import load_model
from alignline.models.logprob_model import TokenLogprobModel
from alignline.models.named_adapters import load_named_adapters, parse_adapter_flags, using
from alignline.rollout.generator import Generator
from support import random_packed_batch, save_random_adapter, save_tiny_model

MESSAGES = [{"role": "user", "content": "What is 2 plus 2?"}]


@pytest.fixture(scope="module")
def adapters(tmp_path_factory, tiny_model_dir):
    root = tmp_path_factory.mktemp("adapters")
    return {
        kind: {
            name: str(save_random_adapter(tiny_model_dir, root / f"{kind}-{name}", kind, seed=seed))
            for name, seed in (("legal", 1), ("support", 2))
        }
        for kind in ("bottleneck", "lora")
    }


@torch.no_grad()
def _logprobs(model, batch):
    return TokenLogprobModel(model, fast=False)(**batch)


@pytest.mark.parametrize("kind", ["bottleneck", "lora"])
def test_two_adapters_swap_and_each_equals_itself_alone(adapters, tiny_model_dir, kind):
    paths = adapters[kind]
    _, model = load_named_adapters(str(tiny_model_dir), paths)
    batch = random_packed_batch(384, rows=2, width=32)
    outputs = {}
    for name in ("legal", "support", "legal", "base"):
        with using(model, name):
            outputs.setdefault(name, []).append(_logprobs(model, batch))
    assert torch.equal(outputs["legal"][0], outputs["legal"][1])  # switching back gives the same again
    assert not torch.allclose(outputs["legal"][0], outputs["support"][0])
    for name, path in paths.items():
        alone = load_model(path).eval()
        assert torch.equal(outputs[name][0], _logprobs(alone, batch))
    assert torch.equal(outputs["base"][0], _logprobs(load_model(str(tiny_model_dir)).eval(), batch))


def test_generator_use_and_per_call_adapter(adapters, tiny_model_dir):
    paths = adapters["bottleneck"]
    gen = Generator(str(tiny_model_dir), adapters=paths, use="support")
    alone = {name: Generator(path)(MESSAGES, max_new_tokens=6) for name, path in paths.items()}
    assert gen(MESSAGES, max_new_tokens=6) == alone["support"]
    assert gen(MESSAGES, max_new_tokens=6, adapter="legal") == alone["legal"]
    assert gen(MESSAGES, max_new_tokens=6) == alone["support"]  # a per-call choice does not stick
    gen.use("legal")
    assert gen(MESSAGES, max_new_tokens=6) == alone["legal"]
    assert gen(MESSAGES, max_new_tokens=6, adapter="base") == Generator(str(tiny_model_dir))(MESSAGES, max_new_tokens=6)
    with pytest.raises(UserError, match="adapter 'tax' is not loaded; loaded: legal, support"):
        gen.use("tax")


def test_cli_generate_with_named_adapters(adapters, tiny_model_dir, capsys):
    legal, support = adapters["lora"]["legal"], adapters["lora"]["support"]
    base = [
        "generate",
        "--model",
        str(tiny_model_dir),
        "--adapter",
        f"legal={legal}",
        "--adapter",
        f"support={support}",
        "--prompt",
        "hi",
        "--max-new-tokens",
        "3",
    ]
    assert main(base + ["--use", "legal"]) == 0
    printed = capsys.readouterr().out
    assert "--- legal" in printed and "--- support" not in printed
    assert main(base) == 0  # no --use: each adapter answers in turn
    printed = capsys.readouterr().out
    assert "--- legal" in printed and "--- support" in printed


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--use", "tax"], "adapter 'tax' is not loaded; loaded: legal"),
        (["--adapter", "legal=/nonexistent/x"], "no such directory"),
        (["--adapter", "nameonly"], "expected NAME=PATH"),
        (["--adapter", "base=x"], "reserved"),
    ],
)
def test_cli_mistakes_are_one_line(adapters, tiny_model_dir, capsys, flags, message):
    args = [
        "generate",
        "--model",
        str(tiny_model_dir),
        "--adapter",
        f"legal={adapters['bottleneck']['legal']}",
        "--prompt",
        "hi",
        *flags,
    ]
    if flags[0] == "--adapter":
        args[3:5] = []
    assert main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0], err


def test_adapter_for_a_different_base_is_one_line(adapters, tmp_path, capsys):
    other = save_tiny_model(tmp_path / "other", hidden=64)
    assert (
        main(["generate", "--model", str(other), "--adapter", f"legal={adapters['lora']['legal']}", "--prompt", "hi"])
        == 2
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "was trained on" in err[0] and "load it on its own base" in err[0]


def test_mixed_kinds_and_use_without_adapters_are_errors(adapters, tiny_model_dir):
    with pytest.raises(UserError, match="different kinds"):
        load_named_adapters(str(tiny_model_dir), {"a": adapters["lora"]["legal"], "b": adapters["bottleneck"]["legal"]})
    with pytest.raises(UserError, match="no adapters loaded"):
        Generator(str(tiny_model_dir), use="legal")
    assert parse_adapter_flags(["a=x", "b=y=z"]) == {"a": "x", "b": "y=z"}


def test_chat_switches_adapters_with_slash_use(adapters, tiny_model_dir, monkeypatch, capsys):
    import io

    monkeypatch.setattr("sys.stdin", io.StringIO("hi\n/use support\nhi\n/use nope\nhi\n\n"))
    assert (
        main(
            [
                "chat",
                "--model",
                str(tiny_model_dir),
                "--adapter",
                f"legal={adapters['bottleneck']['legal']}",
                "--adapter",
                f"support={adapters['bottleneck']['support']}",
                "--max-new-tokens",
                "3",
            ]
        )
        == 0
    )
    captured = capsys.readouterr()
    assert captured.out.count("assistant:") == 3
    assert "using support" in captured.err and "adapter 'nope' is not loaded" in captured.err


def test_model_that_is_itself_an_adapter_is_refused_with_adapters(adapters, capsys):
    legal = adapters["lora"]["legal"]
    assert (
        main(["generate", "--model", legal, "--adapter", f"support={adapters['lora']['support']}", "--prompt", "hi"])
        == 2
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "is an adapter" in err[0]


@pytest.mark.parametrize("kind", ["bottleneck", "lora"])
def test_engine_serves_named_adapters_per_use(adapters, tiny_model_dir, kind):
    from alignline.rollout.engine import load_engine
    from alignline.rollout.types import SamplingParams

    paths = adapters[kind]
    prompts = [MESSAGES, "Hello"]
    params = SamplingParams(max_new_tokens=5, logprobs=True)
    engine = load_engine(str(tiny_model_dir), backend="hf", adapters=paths)
    assert engine.active == "legal"
    for name in ("legal", "support", "base"):
        engine.use(name)
        alone = load_engine(paths.get(name, str(tiny_model_dir)), backend="hf")
        got, want = engine.generate(prompts, params), alone.generate(prompts, params)
        assert [[c.token_ids for c in g] for g in got] == [[c.token_ids for c in g] for g in want]
        assert [[c.logprobs for c in g] for g in got] == [[c.logprobs for c in g] for g in want]
    with pytest.raises(UserError, match="not loaded"):
        engine.use("tax")


def test_vllm_refuses_bottleneck_adapters(adapters, tiny_model_dir):
    from alignline.errors import ConfigError
    from alignline.rollout.engine import load_engine

    with pytest.raises(ConfigError, match="serves LoRA adapters only"):
        load_engine(str(tiny_model_dir), backend="vllm", adapters=adapters["bottleneck"])
