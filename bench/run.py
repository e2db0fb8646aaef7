"""`make bench`: alignline SFT vs TRL's SFTTrainer vs a bare PyTorch loop, one machine, one run.

    python bench/run.py                      # CPU: SmolLM2-135M, LoRA r16, batch 8 x 512, 2 warm-up + 5 steps
    python bench/run.py --steps 20 --rounds 2 --trl-packing
    python bench/run.py --gpu                # GPU: 0.5B and 1.5B random-weight models, LoRA and full, bf16

Each contender runs in its own process (`worker.py`), so peak memory is its own. Results go to
bench/results/<machine>-<date>.json, and a Markdown table is printed for docs/performance.md.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import statistics
import subprocess
import sys
import tempfile
from dataclasses import replace
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from common import Result, Spec, machine_info, machine_slug, package_versions  # noqa: E402


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--steps", type=int, default=5, help="measured optimizer steps per contender (default 5)")
    p.add_argument("--warmup", type=int, default=2, help="steps run first and not measured (default 2)")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--max-length", type=int, default=512)
    p.add_argument("--threads", type=int, default=None, help="torch threads in every contender (default: torch's)")
    p.add_argument("--methods", default="sft,dpo,rm", help="CPU mode: comma-separated sft,dpo,rm")
    p.add_argument(
        "--contenders",
        default="alignline,trl,bare",
        help="SFT contenders, comma-separated: alignline,trl,trl-packed,bare",
    )
    p.add_argument("--trl-packing", action="store_true", help="also run TRL with packing (BFD, padding-free)")
    p.add_argument(
        "--rounds",
        type=int,
        default=1,
        help="run all contenders this many times, interleaved; report the median (noisy machines)",
    )
    p.add_argument("--examples", type=int, default=None, help="conversations to generate (default: enough)")
    p.add_argument("--machine", default=None, help="name for the results file (default: from the hardware)")
    p.add_argument("--out", type=Path, default=HERE / "results", help="directory for the results JSON")
    p.add_argument("--gpu", action="store_true", help="GPU mode: bf16, random-weight 0.5B/1.5B models")
    p.add_argument("--gpu-models", default="0.5b,1.5b", help="GPU mode: shapes from bench/gpu.py")
    p.add_argument("--gpu-modes", default="lora,full", help="GPU mode: lora and/or full fine-tuning")
    p.add_argument("--peak-tflops", type=float, default=None, help="GPU dense bf16 peak, if not a known GPU")
    p.add_argument("--smoke", action="store_true", help=argparse.SUPPRESS)  # GPU plumbing on a CPU, tiny model
    return p.parse_args(argv)


def run_contender(name: str, spec: Spec, work: Path) -> Result:
    spec = replace(spec, name=name, work_dir=str(work / f"{name}-{os.getpid()}-{len(list(work.iterdir()))}"))
    Path(spec.work_dir).mkdir(parents=True)
    spec_path, out_path = Path(spec.work_dir) / "spec.json", Path(spec.work_dir) / "result.json"
    spec.save(spec_path)
    proc = subprocess.run(
        [sys.executable, str(HERE / "worker.py"), name, str(spec_path), str(out_path)],
        cwd=HERE.parent,
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0:
        sys.stderr.write(proc.stdout[-4000:] + proc.stderr[-8000:])
        raise SystemExit(f"bench: contender '{name}' failed (exit {proc.returncode})")
    return Result(**json.loads(out_path.read_text()))


def summarize(results: list[Result]) -> dict:
    """Median over rounds of tokens/s; the largest peak memory seen."""
    per_round = [r.summary() for r in results]
    best = statistics.median(s["tokens_per_s"] for s in per_round)
    out = dict(per_round[0])
    out.update(
        tokens_per_s=best,
        tokens_per_s_rounds=[s["tokens_per_s"] for s in per_round],
        peak_rss_mib=max(r.peak_rss_mib for r in results),
        notes=results[0].notes,
        load_average=[[r.load_before, r.load_after] for r in results],
        step_seconds=[r.step_seconds for r in results],
        step_tokens=[r.step_tokens for r in results],
    )
    if results[0].peak_cuda_mib is not None:
        out["peak_cuda_mib"] = max(r.peak_cuda_mib for r in results)
    return out


def _baseline(summary: dict, prefix: str) -> str | None:
    """The TRL (or bare-loop) contender of this comparison: 'trl', 'trl-dpo', 'bare', ..."""
    return next((k for k in summary if k == prefix or (k.startswith(prefix + "-") and k != "trl-packed")), None)


def ratios(summary: dict[str, dict]) -> dict:
    out = {}
    mem_key = "peak_cuda_mib" if any("peak_cuda_mib" in v for v in summary.values()) else "peak_rss_mib"
    trl, bare = _baseline(summary, "trl"), _baseline(summary, "bare")
    for a in summary:
        for b in (trl, bare, "trl-packed" if a != "trl-packed" else None):
            if b and b in summary and a != b and not (a.startswith("trl") and b.startswith("trl")):
                out[f"{a}/{b} tokens_per_s"] = summary[a]["tokens_per_s"] / summary[b]["tokens_per_s"]
                out[f"{a}/{b} peak_memory"] = summary[a][mem_key] / summary[b][mem_key]
    return out


def run_all(contenders: list[str], spec: Spec, rounds: int, work: Path) -> dict[str, dict]:
    results: dict[str, list[Result]] = {c: [] for c in contenders}
    for r in range(rounds):
        for name in contenders:
            print(f"  round {r + 1}/{rounds}: {name} ...", end="", flush=True)
            res = run_contender(name, spec, work)
            s = res.summary()
            cuda = res.peak_cuda_mib is not None
            mem = f"{res.peak_cuda_mib:.0f} MiB CUDA" if cuda else f"{res.peak_rss_mib:.0f} MiB RSS"
            print(
                f" {s['tokens_per_s']:.1f} tok/s (median step {s['tokens_per_s_median_step']:.1f}), "
                f"{s['seconds_per_step']:.1f} s/step, peak {mem}, load {res.load_before:.1f}->{res.load_after:.1f}",
                flush=True,
            )
            if max(res.load_before, res.load_after) > (os.cpu_count() or 1) + 0.5:
                print(
                    f"  warning: load average above {os.cpu_count()} cores: another job shared this machine", flush=True
                )
            results[name].append(res)
    return {name: summarize(rs) for name, rs in results.items()}


def table(summary: dict[str, dict], extra: dict[str, dict] | None = None) -> str:
    mem_key = "peak_cuda_mib" if any("peak_cuda_mib" in v for v in summary.values()) else "peak_rss_mib"
    mem_name = "peak CUDA alloc" if mem_key == "peak_cuda_mib" else "peak RSS"
    trl, bare = _baseline(summary, "trl"), _baseline(summary, "bare")
    base_trl = summary[trl]["tokens_per_s"] if trl else None
    base_bare = summary[bare]["tokens_per_s"] if bare else None
    mem_trl = summary[trl][mem_key] if trl else None
    has_mfu = any("mfu" in v for v in summary.values())
    head = f"| contender | non-padding tok/s | s/step | padding | {mem_name} | vs TRL | memory vs TRL | vs bare loop |"
    head += " MFU |" if has_mfu else ""
    lines = [head, "|" + "---|" * (9 if has_mfu else 8)]
    for name, s in summary.items():
        row = (
            f"| {name} | {s['tokens_per_s']:.1f} | {s['seconds_per_step']:.2f} | {s['padding_fraction']:.0%} | "
            f"{s[mem_key] / 1024:.2f} GiB | "
        )
        row += f"{s['tokens_per_s'] / base_trl:.2f}x | " if base_trl else "- | "
        row += f"{s[mem_key] / mem_trl:.2f}x | " if mem_trl else "- | "
        row += f"{s['tokens_per_s'] / base_bare:.0%} |" if base_bare else "- |"
        if has_mfu:
            row += f" {s['mfu']:.1%} |" if "mfu" in s else " - |"
        lines.append(row)
    return "\n".join(lines)


CONTENDERS_BY_METHOD = {"dpo": ["alignline-dpo", "trl-dpo"], "rm": ["alignline-rm", "trl-rm"]}


def cpu_mode(args, info: dict, work: Path) -> dict:
    from alignline.models.loading import load_tokenizer, resolve_model_path
    from data import describe, examples, write_dataset, write_preference_dataset

    model_dir = resolve_model_path("smollm2-135m")
    tokenizer = load_tokenizer(model_dir)
    spec = Spec(
        name="",
        model_dir=model_dir,
        data_path="",
        work_dir="",
        batch_size=args.batch_size,
        max_length=args.max_length,
        warmup=args.warmup,
        steps=args.steps,
        threads=args.threads,
    )
    settings = {k: v for k, v in vars(spec).items() if k not in ("name", "work_dir", "data_path", "model_dir")}
    body = {"model": "smollm2-135m (embedded, float32)", "spec": settings, "methods": {}}
    for method in args.methods.split(","):
        if method == "sft":
            n = args.examples or max(300, 2 * (args.warmup + args.steps) * args.batch_size * args.max_length // 160)
            data_path = write_dataset(tokenizer, work / "chat.jsonl", n)
            stats = describe(examples(tokenizer, str(data_path), args.max_length))
            print(
                f"sft data: {stats['examples']} conversations, {stats['length_min']}-{stats['length_max']} tokens "
                f"(median {stats['length_median']:.0f}, mean {stats['length_mean']:.0f}), "
                f"{stats['target_tokens'] / stats['tokens']:.0%} of tokens trained"
            )
            contenders = args.contenders.split(",") + (["trl-packed"] if args.trl_packing else [])
        else:
            n = args.examples or (args.warmup + args.steps + 2) * args.batch_size
            data_path = work / "pairs.jsonl"
            if not data_path.exists():
                write_preference_dataset(tokenizer, data_path, n)
            stats = {"pairs": n, "format": "conversational prompt/chosen/rejected, 30-500 tokens per sequence"}
            print(f"{method} data: {n} preference pairs")
            contenders = CONTENDERS_BY_METHOD[method]
        summary = run_all(contenders, replace(spec, data_path=str(data_path)), args.rounds, work)
        body["methods"][method] = {
            "data": stats,
            "results": summary,
            "ratios": ratios(summary),
            "table": table(summary),
        }
    return body


def gpu_mode(args, info: dict, work: Path) -> dict:
    import gpu

    from alignline.models.loading import load_tokenizer, resolve_model_path
    from data import describe, examples, write_dataset

    device = "cpu" if args.smoke else "cuda"
    if device == "cuda" and "gpu" not in info:
        raise SystemExit("bench: --gpu needs a CUDA GPU (none visible)")
    peak = gpu.peak_tflops(info.get("gpu", ""), args.peak_tflops)
    tokenizer_dir = resolve_model_path("smollm2-135m")
    tokenizer = load_tokenizer(tokenizer_dir)
    n = args.examples or max(300, 2 * (args.warmup + args.steps) * args.batch_size * args.max_length // 160)
    data_path = write_dataset(tokenizer, work / "chat.jsonl", n)
    stats = describe(examples(tokenizer, str(data_path), args.max_length))
    runs = {}
    for shape in ["smoke"] if args.smoke else args.gpu_models.split(","):
        model_dir = gpu.make_model_dir(
            shape, work / f"model-{shape}", tokenizer_dir, dtype="float32" if args.smoke else "bfloat16"
        )
        for mode in args.gpu_modes.split(","):
            print(f"{shape} {mode}:")
            spec = Spec(
                name="",
                model_dir=str(model_dir),
                data_path=str(data_path),
                work_dir="",
                batch_size=args.batch_size,
                max_length=args.max_length,
                warmup=args.warmup,
                steps=args.steps,
                lora={"r": 16, "alpha": 32, "dropout": 0.0} if mode == "lora" else None,
                dtype="float32" if args.smoke else "bfloat16",
                device=device,
                threads=args.threads,
            )
            summary = run_all(
                args.contenders.split(",") + (["trl-packed"] if args.trl_packing else []), spec, args.rounds, work
            )
            for name, s in summary.items():
                context = args.max_length if name == "bare" else stats["context_mean"]
                s["model_flops_per_token"] = gpu.flops_per_token(shape, context)
                s["tflops"] = s["tokens_per_s"] * s["model_flops_per_token"] / 1e12
                if peak:
                    s["mfu"] = s["tflops"] / peak
            runs[f"{shape}-{mode}"] = {
                "parameters_in_matmuls": gpu.matmul_parameters(shape),
                "results": summary,
                "ratios": ratios(summary),
                "table": table(summary),
            }
    return {"peak_bf16_tflops": peak, "data": stats, "runs": runs}


def main(argv=None) -> None:
    args = parse_args(argv)
    info = machine_info()
    if args.threads:
        info["torch_threads"] = args.threads
    print(
        f"machine: {info.get('gpu') or info['cpu']}, {info['cores']} cores, {info['memory_gib']} GiB; "
        f"torch threads {info['torch_threads']}"
    )
    with tempfile.TemporaryDirectory(prefix="alignline-bench-") as tmp:
        work = Path(tmp)
        body = gpu_mode(args, info, work) if args.gpu else cpu_mode(args, info, work)
    from alignline.train.run_info import git_commit

    today = datetime.date.today().isoformat()
    record = {
        "date": today,
        "mode": "gpu" if args.gpu else "cpu",
        "machine": info,
        "packages": package_versions(),
        "git_commit": git_commit(),
        "command": " ".join(sys.argv),
        **body,
    }
    name = args.machine or machine_slug(info) + ("-smoke" if args.smoke else "")
    args.out.mkdir(parents=True, exist_ok=True)
    out = args.out / f"{name}-{today}.json"
    out.write_text(json.dumps(record, indent=1))
    print()
    for key, run in (body.get("runs") or body.get("methods")).items():
        print(f"{key}\n{run['table']}\n")
    print(f"results: {out}")


if __name__ == "__main__":
    main()
