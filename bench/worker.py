"""Run one contender in this process and write its Result as JSON: `worker.py NAME SPEC.json OUT.json`.

One process per contender, so each peak resident set (or peak CUDA allocation) is its own.
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import asdict
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # everything is local; never reach for the network
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import Spec, apply_threads, peak_rss_mib


def _contender(module: str, function: str = "run", **kwargs):
    return lambda spec: getattr(__import__(f"contenders.{module}", fromlist=[function]), function)(spec, **kwargs)


CONTENDERS = {
    "alignline": _contender("alignline_run"),
    "trl": _contender("trl_sft"),
    "trl-packed": _contender("trl_sft", packing=True),
    "bare": _contender("bare_loop"),
    "alignline-dpo": _contender("alignline_run", method="dpo"),
    "trl-dpo": _contender("trl_preference", "run_dpo"),
    "alignline-rm": _contender("alignline_run", method="rm"),
    "trl-rm": _contender("trl_preference", "run_rm"),
}


def main(name: str, spec_path: str, out_path: str) -> None:
    import warnings

    import torch

    warnings.filterwarnings("ignore")
    spec = Spec.load(Path(spec_path))
    apply_threads(spec.threads)
    load_before = os.getloadavg()[0]
    result = CONTENDERS[name](spec)
    result.load_before, result.load_after = load_before, os.getloadavg()[0]
    result.peak_rss_mib = peak_rss_mib()
    if spec.device == "cuda":
        result.peak_cuda_mib = torch.cuda.max_memory_allocated() / 2**20
    Path(out_path).write_text(json.dumps(asdict(result), indent=1))


if __name__ == "__main__":
    main(*sys.argv[1:4])
