"""What every suite kind uses: a model handle (engine loaded on first use, content hash), the run
context (cache, the baseline, other models a suite names), cached generation and cached teacher-forced
log-probs, and the `Metric` / `Outcome` a kind returns.

A metric keeps its per-record arrays and the name of its statistic (`stats.STATS`), so the paired
candidate-minus-baseline interval can be computed later from the results alone.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from alignline.data.templates import IGNORE
from alignline.errors import ConfigError
from alignline.evals.cache import RecordCache, model_hash, stable_hash
from alignline.evals.suites import Suite
from alignline.losses.token_logprobs import token_logprobs_reference
from alignline.models.dtype import choose_dtype
from alignline.models.loading import load_causal_lm, load_tokenizer_for
from alignline.rollout.engine import load_engine
from alignline.rollout.types import SamplingParams, render_prompt


@dataclass
class Metric:
    value: float
    stat: str
    ids: list[str]
    arrays: dict[str, list[float]]
    """Per-record inputs of the statistic, aligned with `ids`."""
    params: dict = field(default_factory=dict)
    binary: bool = False
    """0/1 per record (`arrays['x']`): the paired test is McNemar's."""
    interval: tuple[float, float] | None = None
    """The metric's own 95 % interval where it has one (win rate)."""
    relative: bool = False
    """Already a comparison with the baseline (win rate): no candidate-minus-baseline delta."""

    def to_json(self) -> dict:
        return {
            "value": self.value,
            "stat": self.stat,
            "ids": self.ids,
            "arrays": self.arrays,
            "params": self.params,
            "binary": self.binary,
            "interval": self.interval,
            "relative": self.relative,
        }

    @classmethod
    def from_json(cls, d: dict) -> Metric:
        return cls(**{**d, "interval": tuple(d["interval"]) if d.get("interval") else None})


def mean_metric(values: dict[str, float | None], binary: bool = False) -> Metric | None:
    """The mean of per-record values (None values left out); None when no record applies."""
    kept = {k: float(v) for k, v in values.items() if v is not None}
    if not kept:
        return None
    xs = list(kept.values())
    return Metric(sum(xs) / len(xs), "mean", list(kept), {"x": xs}, binary=binary)


@dataclass
class Outcome:
    metrics: dict[str, Metric]
    examples: list[dict] = field(default_factory=list)
    """Per record: id, category, prompt, output, failed (bool), why: the error analysis in the report."""
    details: dict = field(default_factory=dict)
    """Breakdowns: per category, reliability bins, per template."""


class ModelHandle:
    """A model by spec; the engine and weights load on first use (a fully cached eval loads nothing)."""

    def __init__(
        self,
        name: str,
        spec: str | None,
        engine=None,
        content_hash: str | None = None,
        backend: str = "auto",
        dtype: str = "float32",
        batch_size: int = 16,
        server: str | None = None,
    ):
        self.name, self.spec = name, spec
        self._engine = engine
        self._hash = content_hash
        self.backend, self.batch_size, self.server = backend, batch_size, server
        self.dtype = choose_dtype(dtype)  # `auto` resolved once: the cache key and the results record it
        self._lm = None
        self._tok = None

    @property
    def hash(self) -> str:
        if self._hash is None:
            self._hash = model_hash(self.spec)
        return self._hash

    def engine(self):
        if self._engine is None:
            self._engine = load_engine(self.spec, self.backend, self.dtype, self.batch_size, server=self.server)
        return self._engine

    def engine_record(self) -> dict:
        """How this model generated, for results.json: the engine's name and dtype once loaded (`hf`, `vllm`,
        a server), else what was asked (a fully cached run loads no engine)."""
        if self._engine is None:
            return {"backend": self.backend, "dtype": self.dtype, "loaded": False}
        return {
            "backend": getattr(self._engine, "name", type(self._engine).__name__),
            "dtype": getattr(self._engine, "dtype", self.dtype),
            "loaded": True,
        }

    def tokenizer(self):
        """The tokenizer alone (loading no weights, so a fully cached perplexity eval stays cheap)."""
        if self._engine is not None:
            return self._engine.tokenizer
        if self._tok is None:
            self._tok = load_tokenizer_for(self.spec)
        return self._tok

    def lm(self):
        """(tokenizer, causal LM) for teacher-forced log-probs: the engine's own where it is Hugging Face."""
        if self._lm is None:
            engine = self.engine()
            if hasattr(getattr(engine, "model", None), "forward"):
                self._lm = (engine.tokenizer, engine.model)
            elif self.spec:
                tok, model = load_causal_lm(self.spec, self.dtype)
                self._lm = (tok, model.eval())
            else:
                raise ConfigError(f"model '{self.name}': this engine has no weights to score text with")
        return self._lm


@dataclass
class Context:
    baseline: ModelHandle | None = None
    cache_enabled: bool = True
    n_boot: int = 2000
    seed: int = 0
    batch_size: int = 16
    backend: str = "auto"
    dtype: str = "float32"
    server: str | None = None
    """`generation.server`: a vLLM server that generates for every model of the run."""
    models: dict[str, ModelHandle] = field(default_factory=dict)
    """Models suites name (`base:`, judges), by spec, loaded once."""

    def model(self, spec: str) -> ModelHandle:
        if spec not in self.models:
            self.models[spec] = ModelHandle(
                spec, spec, backend=self.backend, dtype=self.dtype, batch_size=self.batch_size, server=self.server
            )
        return self.models[spec]

    def reference(self, suite: Suite, key: str = "base") -> ModelHandle:
        """The model a suite compares against: its `base:` setting, else the run's baseline."""
        spec = suite.settings.get(key)
        if spec:
            if self.baseline is not None and spec == self.baseline.spec:
                return self.baseline
            return self.model(spec)
        if self.baseline is None:
            raise suite.error(
                f"a {suite.kind} suite compares with a base model: set {key}: MODEL in the suite or pass --baseline",
                key,
            )
        return self.baseline

    def cache(self, model: ModelHandle, suite: Suite, what: str, settings: dict) -> RecordCache:
        return RecordCache(
            {"model": model.hash, "suite": stable_hash(suite.definition()), "what": what, "settings": settings},
            enabled=self.cache_enabled,
        )

    def generate(
        self, model: ModelHandle, suite: Suite, prompts: dict[str, object], logprobs: bool = False, **overrides
    ) -> dict[str, dict]:
        """One completion per prompt (key -> prompt), cached per prompt: {text, tokens, finish, mean_logprob}."""
        s = suite.settings
        params = SamplingParams(
            max_new_tokens=overrides.get("max_new_tokens", s.get("max_new_tokens", 128)),
            temperature=overrides.get("temperature", s.get("temperature", 0.0)),
            seed=s.get("seed", 0),
            logprobs=logprobs,
        )
        settings = {
            "max_new_tokens": params.max_new_tokens,
            "temperature": params.temperature,
            "seed": params.seed,
            "logprobs": logprobs,
            "token_ids": overrides.get("token_ids", False),
            # greedy answers are equal across engines in float32 only: bfloat16 runs are cached apart
            "engine": {"backend": model.backend, "dtype": model.dtype},
        }
        cache = self.cache(model, suite, "generate", settings)
        keyed = {stable_hash(p): p for p in prompts.values()}

        def compute(keys: list[str]) -> list[dict]:
            out = []
            for (c,) in model.engine().generate([keyed[k] for k in keys], params):
                item = {"text": c.text, "tokens": len(c.token_ids), "finish": c.finish_reason}
                if c.logprobs:
                    item["mean_logprob"] = sum(c.logprobs) / len(c.logprobs)
                if settings["token_ids"]:
                    item["token_ids"] = list(c.token_ids)
                out.append(item)
            return out

        values = cache.memo(list(keyed), compute, self.batch_size)
        by_key = dict(zip(keyed, values))
        return {rid: by_key[stable_hash(p)] for rid, p in prompts.items()}

    def sequence_logprobs(
        self, model: ModelHandle, suite: Suite, items: dict[str, tuple[list[int], list[int]]], what: str = "logprob"
    ) -> dict[str, dict]:
        """Teacher-forced: for each key -> (input ids, targets (pre-shifted, -100 = not scored)), the sum of
        the scored tokens' log-probs and their count, cached per item: {logp, tokens}."""
        cache = self.cache(model, suite, what, {})
        keyed = {stable_hash(v): v for v in items.values()}

        def compute(keys: list[str]) -> list[dict]:
            return score_targets(model, [keyed[k] for k in keys])

        values = cache.memo(list(keyed), compute, self.batch_size)
        by_key = dict(zip(keyed, values))
        return {rid: by_key[stable_hash(v)] for rid, v in items.items()}


def score_targets(model: ModelHandle, batch: list[tuple[list[int], list[int]]]) -> list[dict]:
    """A plain forward pass per right-padded batch; log softmax at the scored positions."""
    import torch

    tok, lm = model.lm()
    device = next(lm.parameters()).device
    width = max(len(ids) for ids, _ in batch)
    pad = tok.pad_token_id if tok.pad_token_id is not None else 0
    ids = torch.full((len(batch), width), pad, dtype=torch.long)
    targets = torch.full((len(batch), width), IGNORE, dtype=torch.long)
    mask = torch.zeros((len(batch), width), dtype=torch.long)
    for i, (x, t) in enumerate(batch):
        ids[i, : len(x)] = torch.tensor(x)
        targets[i, : len(t)] = torch.tensor(t)
        mask[i, : len(x)] = 1
    with torch.no_grad():
        logits = lm(input_ids=ids.to(device), attention_mask=mask.to(device), use_cache=False).logits.float()
    out = []
    for i in range(len(batch)):
        keep = targets[i] != IGNORE
        logps = token_logprobs_reference(logits[i][keep.to(device)], targets[i][keep].to(device))
        out.append({"logp": float(logps.sum()), "tokens": int(keep.sum())})
    return out


def prompt_ids(tokenizer, prompt) -> list[int]:
    return list(tokenizer(render_prompt(tokenizer, prompt), add_special_tokens=False)["input_ids"])
