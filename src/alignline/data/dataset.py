"""From the recipe's `data:` section to tokenized train and eval examples, with a report of what happened.

Order of operations, and why: each source is read and validated whole (a bad record stops the run
before any training); the held-out fraction is taken from each source before mixing, so upsampled
copies of a record can never sit on both sides; then the sources are mixed by weight.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import ClassVar

from alignline.config import DataConfig, RunConfig
from alignline.data.formats import Conversation, Sample, format_of, refuse_unpaired, to_sample
from alignline.data.sources import file_sha256, read_records
from alignline.data.templates import Example, build_examples, settle_reasoning
from alignline.errors import DataError, warn


@dataclass
class DataReportBase:
    """What every method's data preparation reports, under one set of names (`Prepared.report`): the files read
    (`sources`, one entry each), the units each side got (`train_units`, `eval_units`: examples, pairs, records or
    prompts, as `unit` says), the records `dropped` as untrainable (the prompt alone fills max_length), the sequences
    `truncated` to max_length, and `train_tokens`. Each method's report adds its own counts.

    run.json's `data` (and so report.html's Data section and `train --dry-run`) keeps the keys it has always had,
    through `as_json`: `train_units`/`eval_units` are written `train_<unit>`/`eval_<unit>` (train_examples,
    train_pairs, train_prompts), `json_names` renames the others per kind (PairReport: dropped -> dropped_pairs), and
    counts a kind does not measure (`unmeasured`: prompts are not tokenized when prepared) are left out, not
    written as 0.
    """

    unit: ClassVar[str] = "examples"
    json_names: ClassVar[dict[str, str]] = {}
    unmeasured: ClassVar[tuple[str, ...]] = ()

    sources: list[dict] = field(default_factory=list)
    train_units: int = 0
    eval_units: int = 0
    dropped: int = 0
    truncated: int = 0
    train_tokens: int = 0

    def as_json(self) -> dict:
        """The report as run.json records it (see the class docstring for the names)."""
        names = {"train_units": f"train_{self.unit}", "eval_units": f"eval_{self.unit}", **self.json_names}
        return {names.get(k, k): v for k, v in asdict(self).items() if k not in self.unmeasured}


@dataclass
class DataReport(DataReportBase):
    """SFT and CPT: records (`train_samples`) become examples (a long document may become several windows);
    `dropped` counts training examples left with no target token after truncation."""

    json_names: ClassVar[dict[str, str]] = {"truncated": "truncated_examples"}

    train_samples: int = 0
    eval_samples: int = 0
    truncated_tokens: int = 0
    train_target_tokens: int = 0
    formats: dict[str, int] = field(default_factory=dict)
    reasoning_dropped: dict[str, int] = field(default_factory=dict)
    """`data.reasoning: drop`: reasoning fields the chat template cannot render, left out, by field."""


def load_samples(
    path: str, allowed: tuple[str, ...] | None = None, split: str = "train", columns: dict[str, str] | None = None
) -> list[Sample]:
    """All samples of one file; `allowed` restricts the formats a method accepts (e.g. CPT: text)."""
    samples = []
    for location, record in read_records(path, split, columns):
        refuse_unpaired(record, str(path), location)
        sample = to_sample(record, str(path), location)
        if allowed is not None and format_of(sample) not in allowed:
            raise DataError(
                str(path),
                f"this method takes {' or '.join(allowed)} records, this one is {format_of(sample)}",
                record=location,
                field="text" if allowed == ("text",) else None,
            )
        samples.append(sample)
    return samples


def mix(sources: list[list[Sample]], weights: list[float], total: int | None, rng: random.Random) -> list[Sample]:
    """Weighted mix: source i gives round(w_i / sum(w) * total) samples, repeating only when upsampled."""
    total = total or sum(len(s) for s in sources)
    mixed = []
    for samples, weight in zip(sources, weights):
        want = round(weight / sum(weights) * total)
        full, rest = divmod(want, len(samples))
        mixed += samples * full + rng.sample(samples, rest)
    rng.shuffle(mixed)
    return mixed


def split_off(samples: list[Sample], fraction: float, rng: random.Random) -> tuple[list[Sample], list[Sample]]:
    if fraction <= 0:
        return samples, []
    order = list(range(len(samples)))
    rng.shuffle(order)
    n_eval = max(1, round(len(samples) * fraction))
    held = set(order[:n_eval])
    return [s for i, s in enumerate(samples) if i not in held], [samples[i] for i in sorted(held)]


def split_and_mix(
    data: DataConfig,
    load: Callable[[str, str, dict[str, str] | None], list],
    seed: int,
    sources: list[dict],
    unit: str = "records",
    require_train_part: bool = False,
) -> tuple[list, list]:
    """Every training source read with `load(path, split, columns)`, `eval_fraction` of each held out (seeded)
    before the weighted mix, or the eval file; one entry per file appended to `sources`, its count named `unit`.
    `require_train_part`: a source the held-out split leaves empty is an error. -> (train records, held out)."""
    rng = random.Random(seed)
    per_source, held = [], []
    for src in data.train:
        records = load(src.path, data.split, data.columns)
        train_part, held_part = split_off(records, data.eval_fraction if data.eval is None else 0.0, rng)
        if require_train_part and not train_part:
            raise DataError(src.path, "nothing left to train on after the held-out split", field="data.eval_fraction")
        per_source.append(train_part)
        held += held_part
        sources.append(
            {
                "path": str(src.path),
                "sha256": file_sha256(src.path),
                unit: len(records),
                "weight": src.weight,
                "held_out": len(held_part),
            }
        )
    train = (
        per_source[0]
        if len(per_source) == 1 and data.mix_size is None
        else mix(per_source, [s.weight for s in data.train], data.mix_size, rng)
    )
    if data.eval is not None:
        held = load(data.eval, data.eval_split or data.split, data.columns)
        sources.append({"path": str(data.eval), "sha256": file_sha256(data.eval), unit: len(held), "role": "eval"})
    return train, held


def load_split(
    cfg: RunConfig, load: Callable[..., list], sources: list[dict], unit: str = "pairs"
) -> tuple[list, list]:
    """The records of a method that reads them whole (pairs, unpaired, prompts), split and mixed as
    `split_and_mix` does with the run's seed. -> (train records, held-out records)."""
    if not cfg.data.train:
        raise DataError("<recipe>", "no training data: set data.train", field="data.train")
    return split_and_mix(cfg.data, load, cfg.training.seed, sources, unit)


def tokenize(
    tokenizer,
    samples: list[Sample],
    max_length: int,
    loss_on: str,
    split_long: bool,
    report: DataReport | None = None,
    progress: bool = False,
) -> list[Example]:
    from tqdm.auto import tqdm

    examples = []
    for sample in tqdm(samples, desc="tokenizing", disable=not progress, leave=False):
        for ex in build_examples(tokenizer, sample, max_length, loss_on, split_long):
            if report is not None and ex.truncated:
                report.truncated += 1
                report.truncated_tokens += ex.truncated
            if ex.num_targets > 0:  # an example truncated before its first target teaches nothing
                examples.append(ex)
            elif report is not None:
                report.dropped += 1
    return examples


def warn_reasoning_dropped(dropped: dict[str, int]) -> None:
    """The one warning line of a run that left reasoning out (`data.reasoning: drop`)."""
    if dropped:
        fields = ", ".join(f"{n} {name}" for name, n in dropped.items())
        warn(f"data.reasoning: drop: {fields} not trained: the chat template does not render reasoning")


def settle_record_reasoning(tokenizer, records: list, mode: str) -> dict[str, int]:
    """Reasoning in preference and unpaired records (their prompt / chosen / rejected / completion message
    lists), settled as SFT samples are: refused where the template cannot render it, or left out with
    `data.reasoning: drop` and warned about once."""
    convs = [
        Conversation(
            [
                m
                for f in ("prompt", "chosen", "rejected", "completion")
                if isinstance(getattr(r, f, None), list)
                for m in getattr(r, f)
            ],
            origin=r.origin,
        )
        for r in records
    ]
    dropped = settle_reasoning(tokenizer, convs, mode)
    warn_reasoning_dropped(dropped)
    return dropped


def prepare_data(
    cfg: DataConfig,
    tokenizer,
    max_length: int,
    seed: int,
    allowed: tuple[str, ...] | None,
    split_long: bool = False,
    progress: bool = False,
) -> tuple[list[Example], list[Example], DataReport]:
    if not cfg.train:
        raise DataError(
            "<recipe>", "no training data: set data.train to a file or a list of {path, weight}", field="data.train"
        )
    report = DataReport()
    train_samples, eval_samples = split_and_mix(
        cfg,
        lambda path, split, columns: load_samples(path, allowed, split, columns),
        seed,
        report.sources,
        require_train_part=True,
    )
    for src_report in report.sources[: len(cfg.train)]:  # the training sources; the eval file has no mix
        src_report["in_mix"] = sum(1 for s in train_samples if s.origin.startswith(f"{src_report['path']}, "))
    report.formats = dict(Counter(format_of(s) for s in train_samples))
    report.reasoning_dropped = settle_reasoning(tokenizer, train_samples + eval_samples, cfg.reasoning)
    warn_reasoning_dropped(report.reasoning_dropped)
    train = tokenize(tokenizer, train_samples, max_length, cfg.loss_on, split_long, report, progress)
    evals = tokenize(tokenizer, eval_samples, max_length, cfg.loss_on, split_long, None, progress)
    if not train:
        raise DataError(
            str(cfg.train[0].path), f"no example has a token to train on after tokenization (max_length {max_length})"
        )
    report.train_samples, report.eval_samples = len(train_samples), len(eval_samples)
    report.train_units, report.eval_units = len(train), len(evals)
    report.train_tokens = sum(len(e.input_ids) for e in train)
    report.train_target_tokens = sum(e.num_targets for e in train)
    return train, evals, report
