"""`alignline rollout-server MODEL`: a vLLM server that RL rollouts and eval generation on other machines send to
(`generation.server: URL`), with adapters loaded at run time (each RL step's policy, by path).

It runs vLLM's own OpenAI-compatible server (`python -m vllm.entrypoints.openai.api_server`) as a child process,
with LoRA enabled, runtime adapter loading allowed (`VLLM_ALLOW_RUNTIME_LORA_UPDATING=True`), the model resolved to
its local directory (`smollm2-135m` -> the embedded copy; an adapter directory -> its base) and the dtype chosen by
the same rule as in-process generation (bfloat16 where the CPU has avx512_bf16 or AMX, or on a GPU; float32
elsewhere). Once the server answers it prints the recipe line to use. `--print-command` prints the equivalent
`vllm serve` command instead, for those who run vLLM themselves.
"""

from __future__ import annotations

import json
import os
import shlex
import signal
import socket
import subprocess
import sys
from pathlib import Path

from alignline.errors import UserError
from alignline.models.dtype import choose_dtype

LORA_RANKS = (8, 16, 32, 64, 128, 256, 512)
CPU_KV_CACHE_GIB = 2.0
"""The KV cache on a CPU: ~20k tokens of a 135M model in float32; a larger model wants `--kv-cache-gib` more."""


def model_context(path: str) -> int | None:
    try:
        config = json.loads((Path(path) / "config.json").read_text())
    except (OSError, ValueError):
        return None
    value = config.get("max_position_embeddings") or config.get("n_positions")
    return int(value) if isinstance(value, int) and value > 0 else None


def vllm_args(args, base: str, served: str, dtype: str) -> list[str]:
    """vLLM server flags (the same for `vllm serve BASE` and `python -m vllm.entrypoints.openai.api_server`)."""
    out = ["--served-model-name", served, "--host", args.host, "--port", str(args.port), "--dtype", dtype]
    out += ["--enable-lora", "--max-lora-rank", str(args.max_lora_rank), "--max-loras", str(args.max_loras)]
    context = args.max_model_len or model_context(base)
    if context:
        out += ["--max-model-len", str(context)]
    kv_gib = args.kv_cache_gib if args.kv_cache_gib is not None else (None if on_gpu() else CPU_KV_CACHE_GIB)
    if kv_gib:
        # On the CPU build, vLLM otherwise reserves --gpu-memory-utilization (0.92) of the machine's memory and
        # refuses to start where other processes hold some of it.
        out += ["--kv-cache-memory-bytes", str(int(kv_gib * 2**30))]
    return out


def on_gpu() -> bool:
    import torch

    return torch.cuda.is_available()


def public_url(host: str, port: int) -> str:
    shown = socket.gethostname() if host in ("0.0.0.0", "::") else host
    return f"http://{shown}:{port}"


def run_rollout_server(args) -> int:
    from alignline.cli.serve import model_name
    from alignline.models.loading import resolve

    if args.max_lora_rank not in LORA_RANKS:
        raise UserError(f"--max-lora-rank {args.max_lora_rank}: vLLM takes one of {', '.join(map(str, LORA_RANKS))}")
    if args.max_loras < 1 or not 0 <= args.port < 65536:
        raise UserError("--max-loras must be at least 1 and --port a port number")
    base, adapter = resolve(args.model)
    served = args.served_name or model_name(args.model if adapter is None else base)
    dtype = choose_dtype(args.dtype)
    flags = vllm_args(args, base, served, dtype)
    url = public_url(args.host, args.port)
    api_key = args.api_key or os.environ.get("ALIGNLINE_API_KEY") or None
    if args.print_command:
        key = " --api-key $VLLM_API_KEY" if api_key else ""
        print(f"VLLM_ALLOW_RUNTIME_LORA_UPDATING=True vllm serve {shlex.quote(base)} {shlex.join(flags)}{key}")
        return 0
    import importlib.util

    if importlib.util.find_spec("vllm") is None:
        raise UserError("alignline rollout-server needs vLLM, which is not installed (`make install` installs it)")
    env = {**os.environ, "VLLM_ALLOW_RUNTIME_LORA_UPDATING": "True"}
    if api_key:
        env["VLLM_API_KEY"] = api_key  # vLLM reads it there: the key stays out of other users' `ps`
    command = [sys.executable, "-m", "vllm.entrypoints.openai.api_server", "--model", base, *flags]
    print(f"rollout-server: starting vLLM on {base} ({dtype}, LoRA up to rank {args.max_lora_rank})", file=sys.stderr)
    child = subprocess.Popen(command, env=env)

    def stop(signum, frame):  # our own stop stops the server too
        child.terminate()

    signal.signal(signal.SIGTERM, stop)
    from alignline.serve.app import wait_ready

    try:
        wait_ready(f"http://127.0.0.1:{args.port}/v1" if args.port else url + "/v1", child, args.ready_timeout, api_key)
    except RuntimeError as e:
        child.terminate()
        child.wait()
        raise UserError(f"rollout-server: {e}") from None
    except KeyboardInterrupt:
        child.terminate()
        child.wait()
        return 130
    print(f"rollout-server: ready at {url}/v1 (model {served}); in a recipe:", flush=True)
    print(f"  generation:\n    server: {url}", flush=True)
    print(
        "rollout-server: adapters are loaded by path: the trainer's run directory must be on a filesystem this "
        "machine shares (docs/serving.md)",
        file=sys.stderr,
        flush=True,
    )
    try:
        return child.wait()
    except KeyboardInterrupt:
        child.terminate()
        child.wait()
        return 130


def register(sub) -> None:
    p = sub.add_parser(
        "rollout-server",
        help="a vLLM server for RL rollouts and eval on other machines (generation.server: URL)",
        description="Start vLLM's OpenAI-compatible server on MODEL with LoRA adapters loadable at run time, "
        "for recipes with `generation.server: URL` (each RL step hot-loads its adapter by path).",
    )
    p.add_argument("model", nargs="?", default="smollm2-135m", help="model dir, adapter dir or smollm2-135m")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (0.0.0.0: other machines)")
    p.add_argument("--port", type=int, default=8001, help="port to listen on")
    p.add_argument(
        "--dtype",
        default="auto",
        choices=["auto", "float32", "bfloat16"],
        help="weights dtype (auto: bfloat16 on a GPU or a CPU with avx512_bf16/AMX, else float32)",
    )
    p.add_argument("--max-lora-rank", type=int, default=64, help="the largest LoRA rank it loads (vLLM's sizes)")
    p.add_argument("--max-loras", type=int, default=4, help="adapters in one batch (the policy and its successor)")
    p.add_argument("--max-model-len", type=int, default=None, help="context length (default: the model's)")
    p.add_argument(
        "--kv-cache-gib",
        type=float,
        default=None,
        help=f"memory for vLLM's KV cache in GiB (default: {CPU_KV_CACHE_GIB:g} on a CPU, vLLM's share on a GPU)",
    )
    p.add_argument("--served-name", default=None, help="the base model's id (default: the model's name)")
    p.add_argument(
        "--api-key",
        default=None,
        metavar="KEY",
        help="require 'Authorization: Bearer KEY' (default: $ALIGNLINE_API_KEY; unset: no key)",
    )
    p.add_argument("--ready-timeout", type=float, default=900, help="seconds to wait for vLLM to start")
    p.add_argument(
        "--print-command",
        action="store_true",
        help="print the equivalent `vllm serve` command and exit (to run vLLM yourself)",
    )
    p.set_defaults(func=run_rollout_server)
