"""Generation throughput: `alignline eval`'s generation path (the suite runner over a generation suite,
cache off, so every prompt goes through the batched engine) against
lm-eval-harness's Hugging Face backend and against the old one-prompt-at-a-time `Generator`, on the
same prompts, model and settings, each contender in its own process, in one run.

    python bench/generation.py                       # 48 prompts x 48 new tokens, greedy, batch 16
    python bench/generation.py --prompts 96 --rounds 2

Task: held-out chat prompts from the bundled demo data (rendered with the model's chat template by
every contender alike), greedy decoding, at most `--max-new-tokens` new tokens, stopping at EOS.
Generated tokens are counted the same way for everyone: the output text re-tokenized. Measured:
generated tokens per second over the whole `generate` call (model loading and a short warm-up call excluded), peak RSS.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

CONTENDERS = ("alignline", "lm-eval", "one-at-a-time")


def prompts(n: int) -> list[list[dict]]:
    """Chat prompts (no answers) from the demo SFT files, cycled to n."""
    out = []
    for name in ("sft_heldout.jsonl", "sft_eval.jsonl", "sft_train.jsonl"):
        for line in (ROOT / "data" / "demo" / name).read_text().splitlines():
            msgs = [m for m in json.loads(line)["messages"] if m["role"] != "assistant"]
            out.append(msgs[-2:] if msgs[0]["role"] == "system" else msgs[-1:])
            if len(out) == n:
                return out
    return out


def eval_suite(chats: list[list[dict]], max_new: int):
    """A generation suite of the same prompts (greedy, `max_new` tokens), written where the loader reads it."""
    import tempfile

    import yaml

    from alignline.evals.suites import load_suite

    path = Path(tempfile.mkdtemp()) / "bench.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "name": "bench",
                "kind": "accuracy",
                "grader": "normalized_match",
                "max_new_tokens": max_new,
                "temperature": 0.0,
                "records": [{"id": i, "prompt": c, "answer": ""} for i, c in enumerate(chats)],
            }
        )
    )
    return load_suite(str(path))


def run_contender(name: str, n_prompts: int, max_new: int, batch: int) -> dict:
    import torch

    from alignline.models.loading import resolve_model_path
    from alignline.rollout.types import SamplingParams, render_prompt

    model_dir = resolve_model_path("smollm2-135m")
    chats = prompts(n_prompts)
    if name == "alignline":
        from alignline.evals.context import Context, ModelHandle
        from alignline.evals.results import run_suites

        # What `alignline eval --suite S --no-cache --backend hf --batch-size B` runs for an accuracy suite of
        # these prompts: suite loading, prompt rendering, batched generation, grading; minus writing the files.
        suite = eval_suite(chats, max_new)
        ctx = Context(cache_enabled=False, batch_size=batch, backend="hf")
        model = ModelHandle("alignline", model_dir, backend="hf", batch_size=batch)
        tok = model.engine().tokenizer
        model.engine().generate(chats[:2], SamplingParams(max_new_tokens=4))  # warm-up, as for every contender
        started = time.perf_counter()
        examples = run_suites([model], [suite], ctx)["alignline"][suite.name].examples
        texts = [e["output"] for e in examples]
    elif name == "one-at-a-time":
        from alignline.rollout.generator import Generator

        gen = Generator(model_dir)
        tok = gen.tokenizer
        gen(chats[0], max_new_tokens=4)
        started = time.perf_counter()
        texts = [gen(c, max_new_tokens=max_new) for c in chats]
    else:
        from lm_eval.api.instance import Instance
        from lm_eval.models.huggingface import HFLM

        lm = HFLM(pretrained=model_dir, batch_size=batch, device="cpu", dtype="float32")
        tok = lm.tokenizer
        contexts = [render_prompt(tok, c) for c in chats]
        requests = [
            Instance(
                request_type="generate_until",
                doc={},
                idx=i,
                arguments=(ctx, {"until": [tok.eos_token], "max_gen_toks": max_new, "do_sample": False}),
            )
            for i, ctx in enumerate(contexts)
        ]
        lm.generate_until(requests[:2], disable_tqdm=True)
        started = time.perf_counter()
        texts = lm.generate_until(requests, disable_tqdm=True)
    seconds = time.perf_counter() - started
    generated = sum(len(tok(t, add_special_tokens=False).input_ids) for t in texts)
    return {
        "name": name,
        "seconds": seconds,
        "generated_tokens": generated,
        "tokens_per_s": generated / seconds,
        "prompts": len(chats),
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "torch_threads": torch.get_num_threads(),
        "sample": texts[:2],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--prompts", type=int, default=48)
    parser.add_argument("--max-new-tokens", type=int, default=48)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=1, help="interleaved rounds; the median is reported")
    parser.add_argument("--contenders", default=",".join(CONTENDERS))
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(run_contender(args.worker, args.prompts, args.max_new_tokens, args.batch_size)))
        return
    runs: dict[str, list[dict]] = {}
    for _ in range(args.rounds):
        for name in args.contenders.split(","):
            cmd = [
                sys.executable,
                __file__,
                "--worker",
                name,
                "--prompts",
                str(args.prompts),
                "--max-new-tokens",
                str(args.max_new_tokens),
                "--batch-size",
                str(args.batch_size),
            ]
            load = os.getloadavg()[0]
            out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.strip().splitlines()[-1]
            result = json.loads(out)
            result["load_before"] = load
            runs.setdefault(name, []).append(result)
            print(
                f"{name}: {result['tokens_per_s']:.1f} generated tok/s ({result['generated_tokens']} tokens, "
                f"{result['seconds']:.1f} s)",
                flush=True,
            )
    median = {name: sorted(r["tokens_per_s"] for r in rs)[len(rs) // 2] for name, rs in runs.items()}
    table = ["| contender | generated tok/s | vs lm-eval | vs one-at-a-time |", "| --- | --- | --- | --- |"]
    for name, rate in median.items():
        table.append(
            f"| {name} | {rate:.1f} | {rate / median.get('lm-eval', rate):.2f}x | "
            f"{rate / median.get('one-at-a-time', rate):.2f}x |"
        )
    print("\n".join(table))
    machine = f"cpu{os.cpu_count()}"
    out_path = ROOT / "bench" / "results" / f"generation-{machine}-b{args.batch_size}-{date.today()}.json"
    settings = {
        "prompts": args.prompts,
        "max_new_tokens": args.max_new_tokens,
        "batch_size": args.batch_size,
        "rounds": args.rounds,
        "model": "smollm2-135m (float32)",
        "decoding": "greedy, stop at EOS",
    }
    out_path.write_text(
        json.dumps({"settings": settings, "runs": runs, "median_tokens_per_s": median, "table": table}, indent=1)
    )
    print(f"results: {out_path}")


if __name__ == "__main__":
    main()
