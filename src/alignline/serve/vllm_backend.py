"""`alignline serve --backend vllm`: vLLM's engine behind the server's one engine worker, token by token.

The worker calls `generate(prompts, params, on_token)` as it calls `HFEngine`'s; here the prompts are added to
vLLM's engine (continuous batching, its paged KV cache) and the worker thread steps the engine
itself, each step's new tokens (`RequestOutputKind.DELTA`) going to `on_token(row, token_id)` at once: a live
stream leaves as vLLM samples, not once the batch ends. A row whose client left (`on_token` answers True) is
aborted in vLLM. Texts are decoded here with the model's tokenizer exactly as `HFEngine` decodes (and as the
stream's `TextStream` does), so a stream's deltas join to the answer's text; the token log-probs are vLLM's,
and the confidence is the same function of them as on the Hugging Face engine (`serve/confidence.py`).

Adapters: each named adapter is a `LoRARequest` with its own id (1, 2, ... in `--adapter` order), picked per
request by the `model` the client names, as vLLM's own multi-LoRA server does.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from alignline.models.named_adapters import BASE, check_adapter_name
from alignline.rollout.types import Completion, Prompt, SamplingParams, TokenIds, cut_at_stop, render_prompt


@dataclass
class StreamingVLLM:
    llm: object
    """A `vllm.LLM` run in this process (`VLLM_ENABLE_V1_MULTIPROCESSING=0`), stepped by the calling thread."""
    tokenizer: object
    adapters: dict[str, str] = field(default_factory=dict)
    active: str | None = None
    name: str = "vllm"
    streams_tokens: bool = True
    lora_ids: dict[str, int] = field(default_factory=dict)

    def __post_init__(self):
        for name in self.adapters:
            self.lora_ids.setdefault(name, list(self.adapters).index(name) + 1)

    @classmethod
    def wrap(cls, engine) -> StreamingVLLM:
        """The streaming twin of a `VLLMEngine` (`load_engine(..., backend="vllm")`): its `llm`, tokenizer and
        adapters, the adapter answering kept."""
        return cls(
            engine.llm,
            engine.tokenizer,
            dict(engine.adapters),
            getattr(engine, "active", None),
            lora_ids=dict(getattr(engine, "lora_ids", None) or {}),  # the ids its adapters were loaded under
        )

    def use(self, name: str) -> None:
        """Answer with adapter `name` from now on (`base`: the base alone)."""
        self.active = None if check_adapter_name(name, list(self.adapters)) == BASE else name

    def lora_request(self):
        if not self.active:
            return None
        from vllm.lora.request import LoRARequest  # lazy: vllm is optional

        return LoRARequest(self.active, self.lora_ids[self.active], self.adapters[self.active])

    def sampling(self, params: SamplingParams):
        from vllm import SamplingParams as VSampling  # lazy: vllm is optional
        from vllm.sampling_params import RequestOutputKind

        return VSampling(
            n=params.n,
            temperature=params.temperature,
            top_p=params.top_p,
            top_k=params.top_k,
            max_tokens=params.max_new_tokens,
            seed=params.seed if params.temperature > 0 else None,
            stop=list(params.stop) or None,
            logprobs=0 if params.logprobs else None,
            output_kind=RequestOutputKind.DELTA,
        )

    def generate(
        self,
        prompts: Sequence[Prompt],
        params: SamplingParams,
        on_token: Callable[[int, int], bool | None] | None = None,
    ) -> list[list[Completion]]:
        """`params.n` completions per prompt; `on_token(row, token_id)` (row = prompt x n + choice) as vLLM samples."""
        if not prompts:
            return []
        tok, n = self.tokenizer, params.n
        inputs = [{"prompt_token_ids": list(p)} if isinstance(p, TokenIds) else render_prompt(tok, p) for p in prompts]
        engine = self.llm.llm_engine
        # Straight into the engine (`LLM.enqueue` would make every request FINAL_ONLY: no stream), under our own
        # ids, which are what its outputs carry and what `abort_request` takes.
        call = uuid.uuid4().hex[:12]
        ids = [f"serve-{call}-{k}" for k in range(len(inputs))]
        sampling, lora = self.sampling(params), self.lora_request()
        try:
            for rid, prompt in zip(ids, inputs):
                engine.add_request(rid, prompt, sampling, lora_request=lora)
        except BaseException:
            engine.abort_request(ids)
            raise
        index = {rid: k for k, rid in enumerate(ids)}
        tokens: list[list[int]] = [[] for _ in range(len(ids) * n)]
        logps: list[list[float]] = [[] for _ in tokens]
        finish: list[str | None] = [None] * len(tokens)
        prompt_tokens = [0] * len(ids)
        open_ids, aborted = set(ids), set()
        try:
            while open_ids and engine.has_unfinished_requests():
                for out in engine.step():
                    k = index.get(out.request_id)
                    if k is None:
                        continue
                    if out.prompt_token_ids:  # in the first delta only
                        prompt_tokens[k] = len(out.prompt_token_ids)
                    for c in out.outputs:
                        row = k * n + c.index
                        new = list(c.token_ids)
                        tokens[row] += new
                        if params.logprobs and c.logprobs:
                            logps[row] += [next(iter(d.values())).logprob for d in c.logprobs]
                        if c.finish_reason:
                            finish[row] = c.finish_reason
                        if on_token is not None and out.request_id not in aborted:
                            for t in new:
                                if on_token(row, t):
                                    aborted.add(out.request_id)
                                    engine.abort_request([out.request_id])
                                    break
                    if out.finished or out.request_id in aborted:
                        open_ids.discard(out.request_id)
        except BaseException:
            engine.abort_request(list(open_ids))  # nothing of ours may keep running in a shared engine
            raise
        out_rows: list[list[Completion]] = []
        for k in range(len(ids)):
            group = []
            for j in range(n):
                row = k * n + j
                text, found = cut_at_stop(tok.decode(tokens[row], skip_special_tokens=True), params.stop)
                group.append(
                    Completion(
                        text=text,
                        token_ids=tokens[row],
                        finish_reason="length" if finish[row] == "length" and not found else "stop",
                        logprobs=logps[row] if params.logprobs else None,
                        prompt_tokens=prompt_tokens[k],
                    )
                )
            out_rows.append(group)
        return out_rows


def serving_engine(engine):
    """The engine the server's worker runs: a vLLM engine (`load_engine(..., backend="vllm")`, holding a `vllm.LLM`)
    stepped token by token; any other engine as it is."""
    if getattr(engine, "name", None) == "vllm" and hasattr(getattr(engine, "llm", None), "llm_engine"):
        return StreamingVLLM.wrap(engine)
    return engine
