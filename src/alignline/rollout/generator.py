"""Trying a model quickly: any model directory, checkpoint or adapter, or the embedded default; or one
base with several named adapters, switched per call (what serving builds on)."""

from __future__ import annotations

import contextlib

import torch

from alignline.data.sources import read_records
from alignline.errors import DataError, UserError
from alignline.models.loading import load_causal_lm
from alignline.models.named_adapters import check_adapter_name, load_named_adapters, using


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
    """Answers prompts with one model; or with one base holding several named adapters (`adapters`:
    {name: path}), one of them used per call: `use(name)`, or `adapter=` on a call ('base': none)."""

    def __init__(self, model: str | None, dtype: str = "float32", adapters: dict[str, str] | None = None,
                 use: str | None = None):
        self.adapters = list(adapters or {})
        if self.adapters:
            self.tokenizer, self.model = load_named_adapters(model, adapters, dtype)
        else:
            if use is not None:
                raise UserError(f"--use {use}: no adapters loaded (give them with --adapter NAME=PATH)")
            self.tokenizer, self.model = load_causal_lm(model, dtype)
        self.model.eval()
        self.active: str | None = None
        if self.adapters:
            self.use(use or self.adapters[0])

    def use(self, name: str) -> None:
        """Answer with adapter `name` from now on ('base': the base alone)."""
        self.active = check_adapter_name(name, self.adapters)

    @torch.no_grad()
    def __call__(self, messages: list[dict], max_new_tokens: int = 128, temperature: float = 0.0,
                 top_p: float = 1.0, seed: int = 0, adapter: str | None = None) -> str:
        name = self.active if adapter is None else check_adapter_name(adapter, self.adapters)
        with using(self.model, name) if name is not None else contextlib.nullcontext():
            return self._generate(messages, max_new_tokens, temperature, top_p, seed)

    def _generate(self, messages: list[dict], max_new_tokens: int, temperature: float, top_p: float,
                  seed: int) -> str:
        tok = self.tokenizer
        if tok.chat_template:
            text = tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        else:
            text = "\n".join(m["content"] for m in messages)
        ids = tok(text, add_special_tokens=False, return_tensors="pt").input_ids.to(self.model.device)
        torch.manual_seed(seed)
        sample = temperature > 0
        out = self.model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=max_new_tokens,
                                  do_sample=sample, temperature=temperature if sample else None,
                                  top_p=top_p if sample else None, top_k=None,
                                  pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id)
        return tok.decode(out[0, ids.shape[1]:], skip_special_tokens=True).strip()
