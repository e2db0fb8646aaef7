"""`choose_dtype`: the weights dtype generation runs in when the user says `auto`.

bfloat16 where the hardware computes it natively (a CUDA GPU with bf16, or a CPU whose flags list
`avx512_bf16` or `amx_bf16`): there it is about twice as fast as float32 for the same greedy answers up to
rounding. Everywhere else bfloat16 is emulated and slower than float32, so float32. The choice is made once
per engine and recorded (`engine.dtype`, eval results, run.json).
"""

from __future__ import annotations

from pathlib import Path

DTYPE_CHOICES = ("auto", "float32", "bfloat16")
BF16_CPU_FLAGS = ("avx512_bf16", "amx_bf16")


def cpu_flags(cpuinfo: str | Path = "/proc/cpuinfo") -> set[str]:
    """The `flags` of the first processor in /proc/cpuinfo (empty where there is none: macOS, Windows)."""
    try:
        text = Path(cpuinfo).read_text()
    except OSError:
        return set()
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip() in ("flags", "Features"):
            return set(value.split())
    return set()


def cpu_has_bf16(cpuinfo: str | Path = "/proc/cpuinfo") -> bool:
    return any(flag in cpu_flags(cpuinfo) for flag in BF16_CPU_FLAGS)


def choose_dtype(requested: str, device=None, cpuinfo: str | Path = "/proc/cpuinfo") -> str:
    """`float32` / `bfloat16` as asked; `auto`: bfloat16 on a CUDA device with bf16 support or a CPU with
    avx512_bf16 / amx_bf16, else float32. `device`: a torch device or its name; None: CUDA if present."""
    import torch

    if requested != "auto":  # what the user chose (the CLI and the recipe checks allow float32 / bfloat16)
        return requested
    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    kind = torch.device(device).type
    if kind == "cuda":
        return "bfloat16" if torch.cuda.is_available() and torch.cuda.is_bf16_supported() else "float32"
    if kind == "cpu":
        return "bfloat16" if cpu_has_bf16(cpuinfo) else "float32"
    return "float32"
