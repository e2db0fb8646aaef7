"""What every contender shares: the run spec, step timing, peak memory, and the machine description."""

from __future__ import annotations

import json
import os
import platform
import resource
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path


@dataclass
class Spec:
    """One contender's run. The same spec (bar `name`) goes to every contender of a comparison."""

    name: str
    model_dir: str
    data_path: str
    work_dir: str
    batch_size: int = 8
    max_length: int = 512
    warmup: int = 2
    steps: int = 5
    lr: float = 1.0e-4
    lora: dict | None = field(default_factory=lambda: {"r": 16, "alpha": 32, "dropout": 0.0})
    """None: full fine-tuning."""
    dtype: str = "float32"
    device: str = "cpu"
    threads: int | None = None
    seed: int = 0

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(asdict(self), indent=1))

    @staticmethod
    def load(path: Path) -> Spec:
        return Spec(**json.loads(Path(path).read_text()))


@dataclass
class Result:
    name: str
    step_seconds: list[float]
    step_tokens: list[int]
    """Non-padding tokens of each optimizer step."""
    step_slots: list[int]
    """Token slots computed per step (padding included)."""
    warmup: int
    peak_rss_mib: float = 0.0
    peak_cuda_mib: float | None = None
    load_before: float = 0.0
    load_after: float = 0.0
    notes: str = ""

    @property
    def measured(self) -> tuple[list[float], list[int], list[int]]:
        w = self.warmup
        return self.step_seconds[w:], self.step_tokens[w:], self.step_slots[w:]

    def summary(self) -> dict:
        seconds, tokens, slots = self.measured
        rates = sorted(t / s for t, s in zip(tokens, seconds))
        return {
            "tokens_per_s": sum(tokens) / sum(seconds),
            # robust to a step slowed by another job on a shared machine
            "tokens_per_s_median_step": rates[len(rates) // 2]
            if len(rates) % 2
            else (rates[len(rates) // 2 - 1] + rates[len(rates) // 2]) / 2,
            "seconds_per_step": sum(seconds) / len(seconds),
            "tokens_per_step": sum(tokens) / len(tokens),
            "padding_fraction": 1 - sum(tokens) / sum(slots),
            "measured_steps": len(seconds),
        }


def apply_threads(threads: int | None) -> None:
    import torch

    if threads:
        torch.set_num_threads(threads)


def peak_rss_mib() -> float:
    # Linux reports ru_maxrss in KiB: the largest resident set this process had, model loading included.
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class StepClock:
    """Wall time between consecutive step ends: everything a step costs (data, forward, backward, update)."""

    def __init__(self) -> None:
        self.last = time.perf_counter()
        self.seconds: list[float] = []

    def tick(self) -> None:
        now = time.perf_counter()
        self.seconds.append(now - self.last)
        self.last = now


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def cpu_flags() -> list[str]:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                have = set(line.split(":", 1)[1].split())
                return [f for f in ("avx2", "fma", "avx512f", "avx512_bf16", "amx_bf16") if f in have]
    except OSError:
        pass
    return []


def machine_info() -> dict:
    import torch

    info = {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "cpu_flags": cpu_flags(),
        "memory_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
        "torch_threads": torch.get_num_threads(),
        "os": platform.platform(),
        "python": platform.python_version(),
    }
    if torch.cuda.is_available():
        props = torch.cuda.get_device_properties(0)
        info.update(
            gpu=props.name, gpu_memory_gib=round(props.total_memory / 2**30, 1), gpu_count=torch.cuda.device_count()
        )
    return info


def machine_slug(info: dict) -> str:
    """A file-name-safe description: 'cpu2-amd-epyc' or 'h100-80gb-hbm3'."""
    if "gpu" in info:
        name = info["gpu"].lower().replace("nvidia", "")
    else:
        words = [
            w
            for w in info["cpu"].lower().replace("(r)", "").replace("(tm)", "").split()
            if w not in ("processor", "cpu", "core")
        ][:3]
        name = f"cpu{info['cores']}-" + "-".join(words)
    return "-".join("".join(c if c.isalnum() else " " for c in name).split())


def package_versions() -> dict:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for pkg in ("torch", "transformers", "peft", "accelerate", "trl"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            out[pkg] = None
    return out


def best_dtype() -> str:
    """The project's own rule (`alignline.models.dtype.choose_dtype("auto")`): bfloat16 where the CPU has bf16
    units (avx512_bf16 or AMX) or on a GPU with bf16, float32 elsewhere; one rule for the engines and the bench."""
    from alignline.models.dtype import choose_dtype

    return choose_dtype("auto")


def load_average() -> float:
    """The 1-minute load average: above the core count, other jobs shared the machine."""
    return os.getloadavg()[0]


def load_line() -> str:
    """`uptime`'s load averages and the core count, for a results file or a table caption."""
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f}, {five:.2f}, {fifteen:.2f} on {os.cpu_count()} cores"


VLLM_ENV = {
    # the engine in the caller's process: one process to measure, no spawn (which would need a __main__ guard)
    "VLLM_ENABLE_V1_MULTIPROCESSING": "0",
    # GiB of KV cache. Without it vLLM CPU reserves gpu_memory_utilization (default 0.92) of the machine's RAM and
    # refuses to start where other jobs hold memory; with it that check is skipped (vllm/v1/worker/cpu_worker.py).
    "VLLM_CPU_KVCACHE_SPACE": "2",
}


def set_vllm_env() -> dict:
    """Offline, in-process vLLM settings every benchmark shares (an explicit environment value wins)."""
    for key, value in {**VLLM_ENV, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}.items():
        os.environ.setdefault(key, value)
    return {k: os.environ[k] for k in VLLM_ENV}


def expand_contenders(names: str, contenders, sets: dict, script: str) -> list[str]:
    """`--contenders a,b,set` as the contender names, sets expanded, in order, once each; an unknown name
    stops the script with the known ones."""
    out: list[str] = []
    for n in names.split(","):
        for c in sets.get(n, [n]):
            if c not in contenders:
                sys.exit(f"{script}: unknown contender {c!r} (known: {', '.join(contenders)}, {', '.join(sets)})")
            if c not in out:
                out.append(c)
    return out


def keep_log(prefix: str, name: str, stdout, stderr) -> tuple[str, str]:
    """A worker's output kept in `<tmp>/<prefix>-<name>.log`; its path and the line that best says what
    happened."""
    text = "".join(x.decode(errors="replace") if isinstance(x, bytes) else (x or "") for x in (stdout, stderr))
    log = Path(tempfile.gettempdir()) / f"{prefix}-{name}.log"
    log.write_text(text)
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    return str(log), ([ln for ln in lines if "Error" in ln] or lines or ["(no output)"])[-1][:400]
