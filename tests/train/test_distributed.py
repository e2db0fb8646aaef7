"""Many processes through the standard launcher (torchrun; accelerate picks it up), no home-made
distribution: 2 processes x accumulation 1 give exactly the weights of 1 process x accumulation 2."""

import os
import socket
import subprocess
import sys

import pytest
import torch
from safetensors.torch import load_file

from alignline.train.metrics import read_metrics
from support import reorder_tolerance


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_processes_equal_one_process_with_accumulation(sft_recipe, tmp_path):
    recipe, _ = sft_recipe
    common = [
        "--quiet",
        "training.max_steps=3",
        "training.eval_every=2",
        "adapter.dropout=0.0",
        "lr_scheduler=constant",
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MASTER_ADDR": "127.0.0.1"}
    two = tmp_path / "two"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--nproc_per_node",
            "2",
            "--master_addr",
            "127.0.0.1",
            "--master_port",
            str(_free_port()),
            "-m",
            "alignline.cli",
            "train",
            str(recipe),
            *common,
            f"output_dir={two}",
        ],
        check=True,
        env=env,
        timeout=600,
        capture_output=True,
    )
    one = tmp_path / "one"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "alignline.cli",
            "train",
            str(recipe),
            *common,
            f"output_dir={one}",
            "training.grad_accum=2",
        ],
        check=True,
        env=env,
        timeout=600,
        capture_output=True,
    )
    a = load_file(two / "final" / "adapter_model.safetensors")
    b = load_file(one / "final" / "adapter_model.safetensors")
    for k in a:  # Adam's step is scale-free: gradients a few ulp apart move a weight by ~steps*lr*ulps, << 1e-6
        torch.testing.assert_close(a[k], b[k], atol=1e-6, rtol=1e-5)
    ma, mb = read_metrics(two / "metrics.jsonl"), read_metrics(one / "metrics.jsonl")
    assert len(ma) == len(mb) == 3
    # token means over <= 2 x 2 x 128 float32 terms, all-reduced across processes or accumulated in one: equal to
    # reorder_tolerance, not digit for digit (rounding to 5 places splits values 1 ulp apart at a boundary)
    for key in ("loss", "eval_loss"):
        xs, ys = [m[key] for m in ma if key in m], [m[key] for m in mb if key in m]
        assert len(xs) == len(ys) > 0, (xs, ys)
        assert all(x == pytest.approx(y, rel=0, abs=reorder_tolerance(x, terms=2 * 2 * 128)) for x, y in zip(xs, ys))
