"""What `run.json` records so a run can be repeated and traced: package versions, the git commit and
the machine. The record itself, and every write of it, is `train/run_record.py`'s `RunRecord`."""

from __future__ import annotations

import os
import platform
import subprocess
from importlib import metadata
from pathlib import Path

PACKAGES = ("alignline", "torch", "transformers", "peft", "accelerate", "safetensors", "datasets", "tokenizers")


def package_versions() -> dict[str, str | None]:
    out = {}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def git_commit(directory: Path | None = None) -> str | None:
    """The commit of the code that ran (alignline's checkout, else the working directory's repo)."""
    for where in (Path(__file__).resolve().parent, directory or Path.cwd()):
        try:
            out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=where, capture_output=True, text=True, timeout=5)
        except (OSError, subprocess.TimeoutExpired):
            continue
        if out.returncode == 0:
            return out.stdout.strip()
    return None


def environment() -> dict:
    import torch

    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "torch_threads": torch.get_num_threads(),
    }
