"""`alignline serve calibrate`: may this confidence score route answers at this threshold? Measured on
labelled prompts, written down, and checked by `alignline serve --route-below T --calibration FILE`.

Every served model (the base and each adapter) answers every labelled prompt; an existing grader
(`rewards/registry.py`, `exact_match` by default) scores the answer against the record's `answer`
(correct: score >= 0.5). Per model, the confidence is set against correctness:
- ECE over `bins` equal-width bins (`evals/stats.py:ece_stat`) and the reliability bins;
- accuracy overall, accuracy of the answers at or above the threshold (what users get unreviewed), and
  the share below it (what reviewers get);
- the same two figures across thresholds, to choose one.

With `--fit platt`, the raw score is first mapped to a probability of being right, Platt scaling:
p = sigmoid(a * logit(raw) + b), (a, b) fitted per model by logistic regression (Newton's method, a small
L2 penalty so a perfectly separated set stays finite). The figures above are then measured out of fold
(5-fold cross-fitting: each record's calibrated score comes from a fit that did not see it), so the ECE is
not flattered by fitting on what it measures; the mapping the server applies is fitted on all records.
A model whose raw probabilities are overconfident (a small model answering arithmetic) becomes usable
for routing this way, where its raw score would be refused.

The file records the models' fingerprints (file names, sizes and the first 64 KiB of each file of the
model and adapter folders: cheap, and any retrain changes them), the confidence kind, the threshold and
the largest ECE allowed. The server refuses to route on it if any of these differ from what it serves,
or if a model's ECE exceeds the maximum: a miscalibrated score is no routing signal. The check says
which and shows the numbers, in one line.
"""

from __future__ import annotations

import hashlib
import time
from pathlib import Path

import numpy as np

from alignline.data.sources import read_records
from alignline.errors import DataError, UserError
from alignline.evals.answers import PROMPT_FIELDS
from alignline.evals.stats import compute, reliability_bins
from alignline.io import write_json, write_text
from alignline.models.loading import resolve
from alignline.render import html as h
from alignline.render.svg import line_chart, reliability_diagram
from alignline.rewards.registry import get_grader, grade
from alignline.rollout.types import SamplingParams

FINGERPRINT_BYTES = 1 << 16
SWEEP = [round(0.05 * k, 2) for k in range(1, 20)]


def fingerprint(path: str) -> str:
    """A short hash of a model or adapter folder (see the module docstring)."""
    root = Path(path)
    h = hashlib.sha256()
    files = sorted(
        p
        for p in root.rglob("*")
        if p.is_file() and not any(part.startswith(".") for part in p.relative_to(root).parts)
    )
    for p in files:
        rel = p.relative_to(root).as_posix()
        if rel.startswith(("checkpoint", "runs/")) or p.suffix in (".html", ".log"):
            continue
        h.update(f"{rel}\0{p.stat().st_size}\0".encode())
        with p.open("rb") as fh:
            h.update(fh.read(FINGERPRINT_BYTES))
    return h.hexdigest()[:16]


def identity(model: str | None, adapters: dict[str, str]) -> dict:
    """What a calibration is tied to: the base model's and each adapter's fingerprint."""
    base, own = resolve(model)
    out = {"model": model or "smollm2-135m", "base": fingerprint(base), "adapters": {}}
    if own:
        out["own_adapter"] = fingerprint(own)
    for name, path in adapters.items():
        out["adapters"][name] = fingerprint(resolve(path)[1] or path)
    return out


def load_labelled(path: str) -> list[dict]:
    """Records with `prompt` (text or messages) or `messages` (a trailing assistant turn dropped), and
    `answer`: [{id, messages, record}]."""
    out = []
    try:
        rows = list(read_records(path))
    except OSError as e:
        raise UserError(f"--labelled {path}: cannot read it ({e.strerror or e})") from None
    for location, r in rows:
        if not isinstance(r, dict):
            raise DataError(path, "expected an object", record=location)
        if "answer" not in r or r["answer"] is None:
            raise DataError(path, "is missing (the known answer the grader checks)", record=location, field="answer")
        p = r.get("prompt", r.get("messages"))
        if isinstance(p, str) and p.strip():
            messages = [{"role": "user", "content": p}]
        elif (
            isinstance(p, list)
            and p
            and all(isinstance(m, dict) and isinstance(m.get("content"), str) and m.get("role") for m in p)
        ):
            messages = [{"role": m["role"], "content": m["content"]} for m in p]
            while messages and messages[-1]["role"] == "assistant":
                messages.pop()
            if not messages:
                raise DataError(path, "has only assistant turns", record=location, field="messages")
        else:
            raise DataError(
                path, "expected a 'prompt' (text or messages) or 'messages' list", record=location, field="prompt"
            )
        out.append({"id": str(r.get("id", location)), "messages": messages, "record": r})
    if len(out) < 2:
        raise DataError(
            path,
            f"has {len(out)} labelled record(s); calibration needs at least 2 (a few hundred for numbers to trust)",
        )
    return out


FITS = ("none", "platt")
PLATT_L2 = 1e-2
FOLDS = 5


def logit(p) -> np.ndarray:
    p = np.clip(np.asarray(p, dtype=float), 1e-6, 1 - 1e-6)
    return np.log(p / (1 - p))


def fit_platt(conf, correct, l2: float = PLATT_L2, steps: int = 50) -> tuple[float, float]:
    """(a, b) maximizing the likelihood of `correct` under sigmoid(a * logit(conf) + b), L2-penalized.
    Newton steps, halved until the penalized loss falls (scores that barely vary make the two columns
    nearly collinear, where a full step overshoots)."""
    X = np.stack([logit(conf), np.ones(len(conf))], -1)  # (n, 2)
    y = np.asarray(correct, dtype=float)

    def loss(w):
        z = X @ w
        return float(np.sum(np.logaddexp(0, z) - y * z) + 0.5 * l2 * w @ w)

    w = np.array([1.0, 0.0])  # start at the identity map
    for _ in range(steps):
        p = 1 / (1 + np.exp(-np.clip(X @ w, -60, 60)))
        grad = X.T @ (p - y) + l2 * w
        hess = (X * (p * (1 - p))[:, None]).T @ X + l2 * np.eye(2)
        step = np.linalg.solve(hess, grad)
        current, scale = loss(w), 1.0
        while scale > 1e-6 and loss(w - scale * step) > current:
            scale /= 2
        w = w - scale * step
        if np.abs(scale * step).max() < 1e-10:
            break
    return float(w[0]), float(w[1])


def apply_fit(conf, fit: dict | None):
    """A calibration file's fit applied to raw scores (a float or an array); no fit: unchanged."""
    if not fit or fit.get("kind") != "platt":
        return conf
    out = 1 / (1 + np.exp(-np.clip(fit["a"] * logit(conf) + fit["b"], -60, 60)))
    return float(out) if np.ndim(out) == 0 else out


def cross_fitted(conf, correct, folds: int = FOLDS) -> np.ndarray:
    """Out-of-fold Platt-calibrated scores: record i scored by the fit on the folds without it."""
    conf, correct = np.asarray(conf, dtype=float), np.asarray(correct, dtype=float)
    # folds by a seeded shuffle: records in file order are often grouped (by topic, by difficulty)
    fold = np.random.default_rng(0).permutation(len(conf)) % min(folds, len(conf))
    out = np.empty_like(conf)
    for k in np.unique(fold):
        a, b = fit_platt(conf[fold != k], correct[fold != k])
        out[fold == k] = apply_fit(conf[fold == k], {"kind": "platt", "a": a, "b": b})
    return out


def routing_figures(conf, correct, threshold: float) -> dict:
    conf, correct = np.asarray(conf, dtype=float), np.asarray(correct, dtype=float)
    kept = conf >= threshold
    return {
        "accuracy_above": float(correct[kept].mean()) if kept.any() else None,
        "share_routed": float((~kept).mean()) if len(conf) else 0.0,
        "answered": int(kept.sum()),
    }


def measure(conf: list[float], correct: list[float], threshold: float, bins: int) -> dict:
    arrays = {"confidence": conf, "correct": correct}
    return {
        "n": len(conf),
        "ece": compute("ece", arrays, {"bins": bins}),
        "accuracy": float(np.mean(correct)),
        "mean_confidence": float(np.mean(conf)),
        **routing_figures(conf, correct, threshold),
        "reliability": reliability_bins(conf, correct, bins),
        "sweep": [{"threshold": t, **routing_figures(conf, correct, t)} for t in SWEEP],
    }


def run_calibration(
    engine,
    served: dict[str, str],
    records: list[dict],
    grader: str,
    confidence,
    threshold: float,
    max_ece: float,
    bins: int = 10,
    max_tokens: int = 64,
    batch: int = 16,
    progress=None,
    fit: str = "none",
) -> dict:
    """Answer every record with every served model ({served id: engine adapter name}); the calibration dict,
    its models keyed by engine name (`base` or the adapter's)."""
    scorer = get_grader(grader)
    params = SamplingParams(max_new_tokens=max_tokens, temperature=0.0, logprobs=confidence.needs_logprobs)
    prompts = [r["messages"] for r in records]
    names = list(dict.fromkeys(k for r in records for k in r["record"] if k not in PROMPT_FIELDS))
    columns = {n: [r["record"].get(n) for r in records] for n in names}
    models, examples = {}, {}
    for served_name, engine_name in served.items():
        if getattr(engine, "adapters", None):
            engine.use(engine_name)
        completions = []
        for start in range(0, len(prompts), batch):
            completions += [g[0] for g in engine.generate(prompts[start : start + batch], params)]
            if progress:
                progress(served_name, min(start + batch, len(prompts)), len(prompts))
        conf = confidence(prompts, completions)
        scores = grade(grader, scorer, prompts, [c.text for c in completions], columns)
        correct = [float(s is not None and s >= 0.5) for s in scores]
        raw = conf
        entry: dict = {"served_name": served_name}
        if fit == "platt":
            a, b = fit_platt(raw, correct)
            entry["fit"] = {"kind": "platt", "a": a, "b": b}
            conf = [float(c) for c in cross_fitted(raw, correct)]
            entry["ece_raw"] = measure(raw, correct, threshold, bins)["ece"]
        # keyed by the engine's name (`base`, adapter names): the base's served id may change, the model not
        models[engine_name] = {**entry, **measure(conf, correct, threshold, bins)}
        models[engine_name]["passed"] = models[engine_name]["ece"] <= max_ece
        examples[engine_name] = sorted(
            (
                {
                    "id": r["id"],
                    "prompt": r["messages"][-1]["content"],
                    "answer": c.text,
                    "expected": r["record"]["answer"],
                    "confidence": round(s, 4),
                    "raw_confidence": round(r0, 4),
                    "correct": bool(ok),
                }
                for r, c, s, r0, ok in zip(records, completions, conf, raw, correct)
            ),
            key=lambda e: e["confidence"],
        )
    return {
        "kind": "alignline-serve-calibration",
        "version": 1,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "threshold": threshold,
        "max_ece": max_ece,
        "bins": bins,
        "grader": grader,
        "confidence": confidence.spec.label,
        "fit": fit,
        "max_tokens": max_tokens,
        "models": models,
        "passed": all(m["passed"] for m in models.values()),
        "examples": examples,
    }


def describe(name: str, m: dict, threshold: float, max_ece: float) -> str:
    above = "n/a" if m["accuracy_above"] is None else f"{m['accuracy_above']:.3f}"
    fitted = f" after Platt scaling, out of fold (raw {m['ece_raw']:.3f})" if m.get("fit") else ""
    return (
        f"model '{name}': ECE {m['ece']:.3f}{fitted} (max {max_ece:g}), accuracy {m['accuracy']:.3f}, accuracy at or "
        f"above {threshold:g} {above}, routed {100 * m['share_routed']:.1f} % of {m['n']}"
    )


def check_calibration(path: str, ident: dict, served: list[str], threshold: float, confidence: str) -> dict:
    """The calibration file, if it allows routing below `threshold` for these models (engine names: `base`,
    adapter names) and this confidence;
    otherwise one UserError line saying why, with the numbers."""
    import json

    try:
        cal = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as e:
        raise UserError(f"--calibration {path}: cannot read it ({e.strerror or e})") from None
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise UserError(f"--calibration {path}: not a JSON file (make one with `alignline serve calibrate`)") from None
    if not isinstance(cal, dict) or cal.get("kind") != "alignline-serve-calibration":
        raise UserError(f"--calibration {path}: not a calibration file (make one with `alignline serve calibrate`)")
    where = f"--calibration {path}"
    if abs(float(cal["threshold"]) - threshold) > 1e-9:
        raise UserError(
            f"{where}: made for threshold {cal['threshold']:g}, not {threshold:g}; recalibrate "
            f"(alignline serve calibrate ... --threshold {threshold:g})"
        )
    if cal["confidence"] != confidence:
        raise UserError(
            f"{where}: made for confidence {cal['confidence']}, not {confidence}; recalibrate with "
            f"--confidence {confidence}"
        )
    mine = cal.get("identity", {})
    if mine.get("base") != ident["base"] or mine.get("own_adapter") != ident.get("own_adapter"):
        raise UserError(
            f"{where}: made for model {mine.get('model')} ({mine.get('base')}), not {ident['model']} "
            f"({ident['base']}); recalibrate on the model you serve"
        )
    for name in served:
        if name not in cal["models"]:
            raise UserError(f"{where}: model '{name}' was not calibrated (calibrated: {', '.join(cal['models'])})")
        if name in ident["adapters"] and mine.get("adapters", {}).get(name) != ident["adapters"][name]:
            raise UserError(
                f"{where}: adapter '{name}' differs from the one calibrated (fingerprint "
                f"{mine.get('adapters', {}).get(name)} vs {ident['adapters'][name]}); recalibrate"
            )
    for name in served:
        m = cal["models"][name]
        if not m["ece"] <= cal["max_ece"]:
            hint = "" if m.get("fit") else "; try `alignline serve calibrate ... --fit platt`"
            raise UserError(
                f"{where}: refusing to route on a miscalibrated score: "
                f"{describe(name, m, cal['threshold'], cal['max_ece'])}{hint}"
            )
    return cal


def write_calibration(out: str, cal: dict) -> tuple[Path, Path]:
    json_path = write_json(out, cal)
    html_path = write_text(Path(out).with_suffix(".html"), report_html(cal))
    return json_path, html_path


def report_html(cal: dict) -> str:
    t, max_ece = cal["threshold"], cal["max_ece"]
    rows = [
        [
            name,
            h.status(m["passed"]),
            m["ece"],
            m.get("ece_raw", m["ece"]),
            m["accuracy"],
            m["mean_confidence"],
            m["accuracy_above"],
            m["share_routed"],
            m["n"],
        ]
        for name, m in cal["models"].items()
    ]
    sections = [
        h.section(
            "Verdict",
            h.paragraph(
                f"Routing below {t:g} on confidence '{cal['confidence']}'"
                f"{' (Platt-scaled; figures out of fold)' if cal.get('fit') == 'platt' else ''} is "
                f"{'allowed' if cal['passed'] else 'refused'}: every served model needs ECE <= {max_ece:g}."
            ),
            h.table(
                [
                    "model",
                    "ECE ok",
                    "ECE",
                    "ECE of the raw score",
                    "accuracy",
                    "mean confidence",
                    f"accuracy at/above {t:g}",
                    "share routed",
                    "prompts",
                ],
                rows,
            ),
        )
    ]
    charts = []
    for name, m in cal["models"].items():
        charts.append(reliability_diagram(m["reliability"], f"{name}: ECE {m['ece']:.3f}"))
        sweep = m["sweep"]
        charts.append(
            line_chart(
                {
                    "accuracy of answers kept": [
                        (s["threshold"], s["accuracy_above"]) for s in sweep if s["accuracy_above"] is not None
                    ],
                    "share routed to review": [(s["threshold"], s["share_routed"]) for s in sweep],
                },
                "threshold",
                "share",
                f"{name}: threshold choice (calibrated at {t:g})",
            )
        )
    sections.append(h.section("Reliability and threshold", h.grid(charts)))
    for name, m in cal["models"].items():
        bins = [
            [f"{b['low']:.1f}-{b['high']:.1f}", b["count"], b["confidence"], b["accuracy"]] for b in m["reliability"]
        ]
        low = cal.get("examples", {}).get(name, [])[:12]
        ex = [
            [
                e["id"],
                e["confidence"],
                e["raw_confidence"],
                h.status(e["correct"]),
                e["prompt"][:160],
                e["answer"][:200],
                str(e["expected"]),
            ]
            for e in low
        ]
        sections.append(
            h.section(
                f"{name}: bins and the least confident answers",
                h.table(["confidence", "answers", "mean confidence", "accuracy"], bins),
                h.table(["id", "confidence", "raw", "correct", "prompt", "answer", "expected"], ex),
            )
        )
    return h.page(
        "alignline serve calibration",
        sections,
        subtitle=f"grader {cal['grader']}, {cal['bins']} bins, made {cal['created']}",
    )
