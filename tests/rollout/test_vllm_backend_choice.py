"""Which engine `load_engine` picks, and what it says when vLLM cannot serve: one line on stderr naming the
cause and the fallback (backend auto), or a one-line error (backend vllm, exit 2 at the CLI). No vLLM engine
starts here; the dtype rule is checked against fake /proc/cpuinfo files."""

from __future__ import annotations

import json
import sys

import pytest

import alignline.rollout.engine as engine_module
from alignline.cli import main
from alignline.errors import ConfigError
from alignline.models.dtype import choose_dtype, cpu_has_bf16
from alignline.rollout.engine import load_engine
from alignline.rollout.hf import HFEngine
from support import save_random_adapter, save_tiny_model, vllm_or_skip


@pytest.fixture(scope="module")
def head64_dir(tmp_path_factory):
    """A tiny model vLLM's CPU attention could run (head size 64; the session's tiny model has 8)."""
    return save_tiny_model(tmp_path_factory.mktemp("h64") / "model", hidden=128, heads=2, kv_heads=1, intermediate=128)


def no_vllm(monkeypatch):
    monkeypatch.setitem(sys.modules, "vllm", None)  # `import vllm` now raises ModuleNotFoundError


def test_auto_falls_back_to_hf_in_one_line_when_vllm_is_missing(head64_dir, monkeypatch, capsys):
    no_vllm(monkeypatch)
    engine = load_engine(str(head64_dir), backend="auto")
    err = capsys.readouterr().err.strip().splitlines()
    assert isinstance(engine, HFEngine) and engine.dtype == "float32"
    assert len(err) == 1 and "vLLM is not installed" in err[0] and "using the Hugging Face engine" in err[0]


def test_backend_vllm_when_vllm_is_missing_is_a_one_line_error(head64_dir, monkeypatch):
    no_vllm(monkeypatch)
    with pytest.raises(ConfigError, match="generation backend 'vllm': vLLM is not installed"):
        load_engine(str(head64_dir), backend="vllm")


def test_auto_falls_back_when_vllm_fails_to_load(head64_dir, monkeypatch, capsys):
    import alignline.rollout.vllm as vllm_module

    def broken(*args, **kwargs):
        raise RuntimeError("no KV cache space\nsecond line")

    monkeypatch.setattr(engine_module, "vllm_cannot_serve", lambda model, adapters: None)
    monkeypatch.setattr(vllm_module.VLLMEngine, "load", broken)
    assert isinstance(load_engine(str(head64_dir), backend="auto"), HFEngine)
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"generation: vLLM could not load {head64_dir}: no KV cache space; using the Hugging Face engine"]
    with pytest.raises(ConfigError, match="generation backend 'vllm': vLLM could not load .*no KV cache space$"):
        load_engine(str(head64_dir), backend="vllm")


def test_head_sizes_vllm_cpu_cannot_run_go_to_hf_without_importing_vllm(tiny_model_dir, monkeypatch, capsys):
    monkeypatch.setattr(engine_module.torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(engine_module, "vllm_import_problem", lambda: pytest.fail("vllm must not be imported"))
    assert isinstance(load_engine(str(tiny_model_dir)), HFEngine)
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert "head size 8" in line and "using the Hugging Face engine" in line


def test_non_lora_adapters(tiny_model_dir, tmp_path, capsys):
    bottleneck = save_random_adapter(tiny_model_dir, tmp_path / "bn", kind="bottleneck")
    with pytest.raises(ConfigError, match="vLLM serves LoRA adapters only"):
        load_engine(str(bottleneck), backend="vllm")
    assert isinstance(load_engine(str(bottleneck), backend="auto"), HFEngine)
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert "LoRA adapters only" in line and "alignline_bottleneck" in line


def test_eval_backend_vllm_with_a_non_lora_adapter_exits_2_in_one_line(tiny_model_dir, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("ALIGNLINE_CACHE", str(tmp_path / "cache"))
    bottleneck = save_random_adapter(tiny_model_dir, tmp_path / "bn", kind="bottleneck")
    code = main(
        ["eval", "--model", str(bottleneck), "--suite", "starter/arithmetic", "--limit", "2", "--backend", "vllm"]
        + ["--out", str(tmp_path / "out"), "--bootstrap", "10"]
    )
    err = [line for line in capsys.readouterr().err.strip().splitlines() if not line.startswith("eval: ")]  # progress
    assert code == 2 and len(err) == 1, err
    assert "generation backend 'vllm'" in err[0] and "LoRA adapters only" in err[0] and "Traceback" not in err[0]


def test_eval_results_record_backend_and_dtype(tiny_model_dir, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("ALIGNLINE_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "out"
    code = main(
        ["eval", "--model", f"m={tiny_model_dir}", "--suite", "starter/arithmetic", "--limit", "2"]
        + ["--backend", "hf", "--dtype", "float32", "--out", str(out), "--bootstrap", "10"]
    )
    assert code == 0
    record = json.loads((out / "results.json").read_text())["models"]["m"]["engine"]
    assert record == {"backend": "hf", "dtype": "float32", "loaded": True}


@pytest.mark.parametrize(
    ("flags", "device", "want"),
    [
        ("fpu sse2 avx512f avx512_bf16", "cpu", "bfloat16"),
        ("fpu sse2 amx_bf16 amx_tile", "cpu", "bfloat16"),
        ("fpu sse2 avx2 avx512f", "cpu", "float32"),
        ("", "cpu", "float32"),
    ],
)
def test_auto_dtype_follows_the_cpu_flags(tmp_path, flags, device, want):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text(f"processor\t: 0\nmodel name\t: x\nflags\t\t: {flags}\n\nprocessor\t: 1\n")
    assert choose_dtype("auto", device, cpuinfo) == want
    assert choose_dtype("float32", device, cpuinfo) == "float32"
    assert choose_dtype("bfloat16", device, cpuinfo) == "bfloat16"


def test_auto_dtype_on_cuda_follows_bf16_support(monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda: True)
    assert choose_dtype("auto", "cuda") == "bfloat16"
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda: False)
    assert choose_dtype("auto", "cuda") == "float32"
    assert cpu_has_bf16("/nonexistent/cpuinfo") is False


def test_the_cpu_head_sizes_are_vllms(tmp_path):
    vllm_or_skip()
    from vllm.v1.attention.backends.cpu_attn import CPUAttentionBackend

    assert tuple(CPUAttentionBackend.get_supported_head_sizes()) == engine_module.CPU_HEAD_SIZES
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"architectures": ["NoSuchModelForCausalLM"]}))
    assert engine_module.unsupported_architecture(str(tmp_path)) == "NoSuchModelForCausalLM"
    config.write_text(json.dumps({"architectures": ["LlamaForCausalLM"]}))
    assert engine_module.unsupported_architecture(str(tmp_path)) is None


def test_generate_backend_vllm_on_a_model_vllm_cpu_cannot_run_exits_2(tiny_model_dir, monkeypatch, capsys):
    monkeypatch.setattr(engine_module.torch.cuda, "is_available", lambda: False)
    code = main(["generate", "--model", str(tiny_model_dir), "--backend", "vllm", "--prompt", "hi"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "generation backend 'vllm'" in err[0] and "head size 8" in err[0]
    assert main(["generate", "--model", str(tiny_model_dir), "--backend", "hf", "--prompt", "hi"]) == 0
