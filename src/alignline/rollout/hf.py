"""`HFEngine`: the generation engine on a Hugging Face model in this process (batched, left-padded, KV
cache, stop strings), for eval, RL rollouts, annotation candidates, serving and `alignline generate`.

Log-probs of generated tokens (`params.logprobs`) are the model's own distribution at the sampling
temperature, log softmax(logits / T) (T = 1 when greedy), before top-p/top-k truncation: what an RL
loss recomputes in training, so generator and trainer can be compared token by token.

Seeds: every `generate` call draws from its own generator seeded with `params.seed`, without touching
the global RNG (a training run's RNG state, checkpointed for exact resume, is left as it was). The
same prompts, settings and seed give the same completions.

Streaming: `HFEngine.generate(..., on_token=f)` calls `f(row, token_id)` as each token is decoded
(`row` = prompt index x n + completion index; `f` returning True drops that row, e.g. its client left),
and `types.TextStream` turns one row's tokens into text deltas. Engines without `streams_tokens`
(vLLM's offline `LLM`, scripted test engines) take no `on_token`; callers fall back to the finished
completions.
"""

from __future__ import annotations

import contextlib
import inspect
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch

from alignline.models.loading import load_causal_lm
from alignline.models.named_adapters import check_adapter_name, load_named_adapters, using
from alignline.models.peft_unwrap import unwrap
from alignline.rollout.types import Completion, Prompt, SamplingParams, TokenIds, cut_at_stop, render_prompt


@dataclass
class HFEngine:
    """Hugging Face `generate` over batches of prompts (left padding, KV cache)."""

    model: torch.nn.Module
    tokenizer: object
    batch_size: int = 16
    name: str = "hf"
    adapters: dict[str, str] = field(default_factory=dict)
    own_loop: bool = True
    """Decode with `decode_batch` (finished rows leave the batch); False: transformers' `generate`."""
    active: str | None = None
    """The named adapter answering (`models/named_adapters.py`); None: the model as loaded."""
    dtype: str = "float32"
    """The weights dtype, recorded with results (`load` sets it; whoever wraps a live model passes it)."""

    @classmethod
    def load(
        cls, model: str | None, dtype: str = "float32", batch_size: int = 16, adapters: dict[str, str] | None = None
    ) -> HFEngine:
        """A model directory, checkpoint, adapter or `smollm2-135m`, in eval mode; with `adapters`
        ({name: path}) one base holding them all, the first one answering."""
        tokenizer, loaded = load_named_adapters(model, adapters, dtype) if adapters else load_causal_lm(model, dtype)
        loaded.eval()
        return cls(
            loaded,
            tokenizer,
            batch_size=batch_size,
            adapters=dict(adapters or {}),
            active=next(iter(adapters or {}), None),
            dtype=dtype,
        )

    @property
    def streams_tokens(self) -> bool:
        """`on_token` is called as tokens are decoded (the own loop); with `generate`, only once it returns."""
        return self.own_loop

    def use(self, name: str) -> None:
        """Answer with adapter `name` of `adapters` from now on ('base': the base alone)."""
        self.active = check_adapter_name(name, list(self.adapters))

    @torch.no_grad()
    def generate(
        self,
        prompts: Sequence[Prompt],
        params: SamplingParams,
        on_token: Callable[[int, int], bool | None] | None = None,
    ) -> list[list[Completion]]:
        """`on_token(row, token_id)`, if given, gets every generated token of completion `row` (prompt index
        x n + completion index) in order, including the EOS, from inside the decoding loop."""
        with using(self.model, self.active) if self.active else contextlib.nullcontext():
            return self._generate(prompts, params, on_token)

    def _generate(
        self,
        prompts: Sequence[Prompt],
        params: SamplingParams,
        on_token: Callable[[int, int], bool | None] | None = None,
    ) -> list[list[Completion]]:
        tok = self.tokenizer
        texts = [p if isinstance(p, TokenIds) else render_prompt(tok, p) for p in prompts]
        out: list[list[Completion]] = [[] for _ in texts]
        gen = torch.Generator(device="cpu").manual_seed(params.seed)
        # Each prompt repeated n times, batched; sorting by length keeps padding small (a stable sort keeps
        # a prompt's copies in order, so copy c lands at out[i][c], row i * n + c).
        jobs = sorted(
            ((i * params.n + c, i, t) for i, t in enumerate(texts) for c in range(params.n)), key=lambda j: len(j[2])
        )
        for start in range(0, len(jobs), self.batch_size):
            chunk = jobs[start : start + self.batch_size]
            rows = [r for r, _, _ in chunk]
            report = (lambda k, t, rows=rows: on_token(rows[k], t)) if on_token else None
            if self.own_loop:
                done = self.decode_batch([t for _, _, t in chunk], params, gen, report)
            else:
                done = self.generate_batch([t for _, _, t in chunk], params, gen)
                for k, c in enumerate(done if report else ()):
                    for t in c.token_ids:
                        report(k, t)
            for (_, i, _), completion in zip(chunk, done):
                out[i].append(completion)
        return out

    def encode_left_padded(self, texts: list[str | TokenIds]) -> tuple[torch.Tensor, torch.Tensor]:
        tok = self.tokenizer
        side = tok.padding_side
        tok.padding_side = "left"  # generation continues from the right edge of every row
        try:
            if all(isinstance(t, str) for t in texts):
                enc = tok(texts, add_special_tokens=False, return_tensors="pt", padding=True)
            else:
                ids = [t if isinstance(t, TokenIds) else tok(t, add_special_tokens=False).input_ids for t in texts]
                enc = tok.pad({"input_ids": ids}, return_tensors="pt", padding=True)
        finally:
            tok.padding_side = side
        device = next(self.model.parameters()).device
        return enc.input_ids.to(device), enc.attention_mask.to(device)

    def decode_batch(
        self,
        texts: list[str],
        params: SamplingParams,
        gen: torch.Generator,
        on_token: Callable[[int, int], bool | None] | None = None,
    ) -> list[Completion]:
        """Our own decoding loop: prefill, then one token per step for the rows still running.

        A row that ends (EOS, or a stop string in its text) leaves the batch and its KV cache rows are
        dropped, so the batch shrinks instead of computing padding for finished answers until the
        longest one ends, which is what `generate` does. Same math as `generate` (greedy outputs are
        identical, tested); sampling draws from our own generator. `on_token(row, token_id)` sees each
        token as it is chosen (streaming); when it returns True the row leaves the batch there (its client
        has gone: the server stops generating for nobody).
        """
        from transformers import DynamicCache  # lazy: transformers is heavy; only generation needs it

        tok, model = self.tokenizer, self.model
        ids, mask = self.encode_left_padded(texts)
        b = ids.shape[0]
        cache = DynamicCache(config=model.config)
        position = (mask.long().cumsum(-1) - 1).clamp(min=0)
        running = torch.arange(b, device=ids.device)  # original row of each row still in the batch
        tokens: list[list[int]] = [[] for _ in range(b)]
        logps: list[list[float]] = [[] for _ in range(b)]
        done = [False] * b
        stopped = [False] * b
        step_ids, step_pos = ids, position
        for _ in range(params.max_new_tokens):
            logits = (
                model(
                    input_ids=step_ids,
                    attention_mask=mask,
                    position_ids=step_pos,
                    use_cache=True,
                    logits_to_keep=1,
                    **{cache_kwarg(model): cache},
                )
                .logits[:, -1]
                .float()
            )  # (R, V)
            chosen, chosen_logp = sample_next(logits, params, gen)
            keep = []
            chosen_list = chosen.tolist()  # one copy out per step, not one tensor index per row
            logp_list = chosen_logp.tolist() if params.logprobs else None
            for k, row in enumerate(running.tolist()):
                t = chosen_list[k]
                tokens[row].append(t)
                dropped = bool(on_token(row, t)) if on_token else False
                if logp_list is not None:
                    logps[row].append(logp_list[k])
                if t == tok.eos_token_id or dropped:
                    done[row] = True
                elif (
                    params.stop and cut_at_stop(tok.decode(tokens[row][-16:], skip_special_tokens=True), params.stop)[1]
                ):
                    done[row] = stopped[row] = True
                else:
                    keep.append(k)
            if not keep:
                break
            keep_t = torch.tensor(keep, device=ids.device)
            if len(keep) < len(running):
                cache.batch_select_indices(keep_t)
                running, mask, step_pos = running[keep_t], mask[keep_t], step_pos[keep_t]
                chosen = chosen[keep_t]
            mask = torch.cat([mask, mask.new_ones(len(keep), 1)], dim=1)
            step_pos = step_pos[:, -1:] + 1
            step_ids = chosen[:, None]
        out = []
        for row in range(b):
            text, found = cut_at_stop(tok.decode(tokens[row], skip_special_tokens=True), params.stop)
            out.append(
                Completion(
                    text=text,
                    token_ids=tokens[row],
                    finish_reason="stop" if done[row] or found else "length",
                    logprobs=logps[row] if params.logprobs else None,
                    prompt_tokens=int((ids[row] != tok.pad_token_id).sum()) if tok.pad_token_id is not None else 0,
                )
            )
        return out

    def generate_batch(self, texts: list[str], params: SamplingParams, gen: torch.Generator) -> list[Completion]:
        """The same, through transformers' `generate` (kept as the reference the own loop is tested against)."""
        tok, model = self.tokenizer, self.model
        ids, mask = self.encode_left_padded(texts)
        device = ids.device
        sample = params.temperature > 0
        kwargs = dict(
            do_sample=sample,
            temperature=params.temperature if sample else None,
            top_p=params.top_p if sample else None,
            top_k=params.top_k if sample and params.top_k else None,
            max_new_tokens=params.max_new_tokens,
            pad_token_id=tok.pad_token_id,
            eos_token_id=tok.eos_token_id,
            use_cache=True,
            return_dict_in_generate=True,
            output_logits=params.logprobs,
        )
        if params.stop:
            kwargs.update(stop_strings=list(params.stop), tokenizer=tok)
        # generate samples from the global RNG: draw its seed from our generator and restore the state after.
        with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
            torch.manual_seed(int(torch.randint(0, 2**62, (1,), generator=gen)))
            result = model.generate(input_ids=ids, attention_mask=mask, **kwargs)
        new = result.sequences[:, ids.shape[1] :]
        logps = None
        if params.logprobs:
            logits = torch.stack(result.logits, dim=1).float()  # (B, new, V)
            scale = params.temperature if sample else 1.0
            logps = torch.log_softmax(logits / scale, dim=-1).gather(-1, new.unsqueeze(-1)).squeeze(-1)
        completions = []
        for row in range(new.shape[0]):
            tokens = new[row].tolist()
            # Rows that finished early are padded after their EOS (or stop string): cut there.
            length = tokens.index(tok.eos_token_id) + 1 if tok.eos_token_id in tokens else len(tokens)
            while length and tokens[length - 1] == tok.pad_token_id != tok.eos_token_id:
                length -= 1
            tokens = tokens[:length]
            text, stopped = cut_at_stop(tok.decode(tokens, skip_special_tokens=True), params.stop)
            finished = stopped or (bool(tokens) and tokens[-1] == tok.eos_token_id) or length < params.max_new_tokens
            completions.append(
                Completion(
                    text=text,
                    token_ids=tokens,
                    finish_reason="stop" if finished else "length",
                    logprobs=logps[row, :length].tolist() if logps is not None else None,
                    prompt_tokens=int(mask[row].sum()),
                )
            )
        return completions


def cache_kwarg(model) -> str:
    """transformers renamed `past_key_values` to `cache` (5.2x); use whichever this version's forward takes."""
    base = unwrap(model)  # wrappers take **kwargs
    return "cache" if "cache" in inspect.signature(base.forward).parameters else "past_key_values"


def sample_next(
    logits: torch.Tensor, params: SamplingParams, gen: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """(R, V) next-token logits -> chosen ids (R,) and their log-probs (R,) under softmax(logits / T)
    (T = 1 when greedy), before top-k/top-p truncation (see the module docstring)."""
    if params.temperature <= 0:
        chosen = logits.argmax(-1)
        return chosen, torch.log_softmax(logits, -1).gather(-1, chosen[:, None]).squeeze(-1)
    scaled = logits / params.temperature
    logp = torch.log_softmax(scaled, -1)
    filtered = scaled.clone()
    if params.top_k and params.top_k < filtered.shape[-1]:
        kth = filtered.topk(params.top_k, dim=-1).values[:, -1:]
        filtered[filtered < kth] = float("-inf")
    if params.top_p < 1.0:
        order = filtered.sort(dim=-1, descending=True)
        cumulative = order.values.softmax(-1).cumsum(-1)
        cut = cumulative - order.values.softmax(-1) > params.top_p  # keep the smallest set reaching top_p
        filtered.scatter_(-1, order.indices, order.values.masked_fill(cut, float("-inf")))
    probs = filtered.softmax(-1)
    chosen = torch.multinomial(probs.cpu(), 1, generator=gen).squeeze(-1).to(logits.device)
    return chosen, logp.gather(-1, chosen[:, None]).squeeze(-1)
