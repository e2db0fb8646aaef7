"""Many processes through the standard launcher (torchrun; accelerate picks it up), no home-made
distribution: 2 processes x accumulation 1 give exactly the weights of 1 process x accumulation 2."""

import os
import socket
import subprocess
import sys

import torch
from safetensors.torch import load_file

from alignline.train.metrics import read_metrics


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_processes_equal_one_process_with_accumulation(sft_recipe, tmp_path):
    recipe, _ = sft_recipe
    common = ["--quiet", "training.max_steps=3", "training.eval_every=2", "adapter.dropout=0.0",
              "lr_scheduler=constant"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MASTER_ADDR": "127.0.0.1"}
    two = tmp_path / "two"
    subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_addr",
                    "127.0.0.1", "--master_port", str(_free_port()), "-m", "alignline.cli", "train", str(recipe),
                    *common, f"output_dir={two}"], check=True, env=env, timeout=600, capture_output=True)
    one = tmp_path / "one"
    subprocess.run([sys.executable, "-m", "alignline.cli", "train", str(recipe), *common, f"output_dir={one}",
                    "training.grad_accum=2"], check=True, env=env, timeout=600, capture_output=True)
    a = load_file(two / "final" / "adapter_model.safetensors")
    b = load_file(one / "final" / "adapter_model.safetensors")
    for k in a:
        torch.testing.assert_close(a[k], b[k], atol=1e-6, rtol=1e-5)
    ma, mb = read_metrics(two / "metrics.jsonl"), read_metrics(one / "metrics.jsonl")
    assert [round(m["loss"], 5) for m in ma] == [round(m["loss"], 5) for m in mb]
    assert [round(m["eval_loss"], 5) for m in ma if "eval_loss" in m] == \
        [round(m["eval_loss"], 5) for m in mb if "eval_loss" in m]
