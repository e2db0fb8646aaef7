"""Trying a model quickly: any model directory, checkpoint or adapter, or the embedded default; or one
base with several named adapters, switched per call (what serving builds on)."""

from __future__ import annotations

from alignline.data.sources import read_records
from alignline.errors import DataError, UserError
from alignline.models.named_adapters import check_adapter_name
from alignline.rollout.engine import load_engine
from alignline.rollout.types import SamplingParams


def prompts_from_file(path: str) -> list[list[dict]]:
    """Held-out prompts: `messages` (the trailing assistant turn, if any, dropped), `prompt`, or `text`."""
    out = []
    for location, record in read_records(path):
        if isinstance(record.get("messages"), list):
            msgs = [m for m in record["messages"] if isinstance(m, dict)]
            while msgs and msgs[-1].get("role") == "assistant":
                msgs.pop()
            out.append([{"role": m["role"], "content": m["content"]} for m in msgs])
        elif isinstance(record.get("prompt"), (str, list)):
            p = record["prompt"]
            out.append([{"role": "user", "content": p}] if isinstance(p, str) else p)
        elif isinstance(record.get("text"), str):
            out.append([{"role": "user", "content": record["text"]}])
        else:
            raise DataError(path, "expected a 'messages', 'prompt' or 'text' field", record=location)
    return out


class Generator:
    """Answers prompts one at a time with one model; or with one base holding several named adapters
    (`adapters`: {name: path}), one of them used per call: `use(name)`, or `adapter=` on a call ('base':
    none). A thin front of an engine (`load_engine`; the HF engine unless `backend` says otherwise), so
    `alignline generate` and `demo` render prompts and decode exactly as eval, rollouts and serving do."""

    def __init__(
        self,
        model: str | None,
        dtype: str = "float32",
        adapters: dict[str, str] | None = None,
        use: str | None = None,
        backend: str = "hf",
    ):
        if not adapters and use is not None:
            raise UserError(f"--use {use}: no adapters loaded (give them with --adapter NAME=PATH)")
        if adapters and use is not None:
            check_adapter_name(use, list(adapters))  # before loading: a typo is its one line, not after a fallback
        self.engine = load_engine(model, backend, dtype, batch_size=1, adapters=adapters)
        self.tokenizer, self.model = self.engine.tokenizer, getattr(self.engine, "model", None)
        self.adapters = list(self.engine.adapters)
        if self.adapters:
            self.use(use or self.adapters[0])

    @property
    def active(self) -> str | None:
        return self.engine.active

    def use(self, name: str) -> None:
        """Answer with adapter `name` from now on ('base': the base alone)."""
        self.engine.use(name)

    def __call__(
        self,
        messages: list[dict],
        max_new_tokens: int = 128,
        temperature: float = 0.0,
        top_p: float = 1.0,
        seed: int = 0,
        adapter: str | None = None,
    ) -> str:
        params = SamplingParams(max_new_tokens=max_new_tokens, temperature=temperature, top_p=top_p, seed=seed)
        before = self.engine.active
        if adapter is not None:
            self.engine.use(adapter)
        try:
            return self.engine.generate([messages], params)[0][0].text.strip()
        finally:
            self.engine.active = before
