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

import threading
import time
import uuid
from collections.abc import Callable, Sequence

from alignline.models.named_adapters import BASE, check_adapter_name
from alignline.rollout.types import Completion, Prompt, SamplingParams, TokenIds, cut_at_stop, render_prompt


class Call:
    """One `generate` call's requests in vLLM's engine and what has come back for them (filled by whichever
    thread steps the engine)."""

    def __init__(self, ids: list[str], n: int, logprobs: bool, on_token):
        self.index = {rid: k for k, rid in enumerate(ids)}
        self.n, self.logprobs, self.on_token = n, logprobs, on_token
        self.tokens: list[list[int]] = [[] for _ in range(len(ids) * n)]
        self.logps: list[list[float]] = [[] for _ in self.tokens]
        self.finish: list[str | None] = [None] * len(self.tokens)
        self.prompt_tokens = [0] * len(ids)
        self.open = set(ids)
        self.aborted: set[str] = set()
        self.error: BaseException | None = None

    def take(self, out, engine) -> None:
        """One step's output for one of this call's requests; a row whose client left is aborted in `engine`."""
        k = self.index[out.request_id]
        if out.prompt_token_ids:  # in the first delta only
            self.prompt_tokens[k] = len(out.prompt_token_ids)
        for c in out.outputs:
            row = k * self.n + c.index
            new = list(c.token_ids)
            self.tokens[row] += new
            if self.logprobs and c.logprobs:
                self.logps[row] += [next(iter(d.values())).logprob for d in c.logprobs]
            if c.finish_reason:
                self.finish[row] = c.finish_reason
            if self.on_token is None or out.request_id in self.aborted:
                continue
            for t in new:
                try:
                    dropped = self.on_token(row, t)
                except BaseException as e:  # noqa: BLE001 - this call's own failure: it stops, the others go on
                    self.error = e
                    engine.abort_request(list(self.open))
                    self.open.clear()
                    return
                if dropped:
                    self.aborted.add(out.request_id)
                    engine.abort_request([out.request_id])
                    break
        if out.finished or out.request_id in self.aborted:
            self.open.discard(out.request_id)

    def completions(self, tokenizer, stop: tuple[str, ...]) -> list[list[Completion]]:
        out: list[list[Completion]] = []
        for k in range(len(self.index)):
            group = []
            for j in range(self.n):
                row = k * self.n + j
                text, found = cut_at_stop(tokenizer.decode(self.tokens[row], skip_special_tokens=True), stop)
                group.append(
                    Completion(
                        text=text,
                        token_ids=self.tokens[row],
                        finish_reason="length" if self.finish[row] == "length" and not found else "stop",
                        logprobs=self.logps[row] if self.logprobs else None,
                        prompt_tokens=self.prompt_tokens[k],
                    )
                )
            out.append(group)
        return out


class StreamingVLLM:
    """vLLM's engine stepped by the threads that call `generate`: several calls may run at once (the server's
    worker runs up to `ServeSettings.engine_calls`), their requests batched together by vLLM, each step's
    outputs going to the call that owns them whichever thread stepped. The adapter answering (`use`) is the
    calling thread's own."""

    name = "vllm"
    streams_tokens = True
    concurrent_calls = True
    """`generate` may be called from several threads at once (the server's worker then runs calls side by side)."""

    def __init__(
        self,
        llm,
        tokenizer,
        adapters: dict[str, str] | None = None,
        active: str | None = None,
        lora_ids: dict[str, int] | None = None,
        mix_adapters: bool | None = None,
    ):
        self.llm, self.tokenizer = llm, tokenizer
        """`llm`: a `vllm.LLM` run in this process (`VLLM_ENABLE_V1_MULTIPROCESSING=0`)."""
        self.adapters = dict(adapters or {})
        self.lora_ids = dict(lora_ids or {})
        for k, name in enumerate(self.adapters):
            self.lora_ids.setdefault(name, k + 1)
        self.default_active = active
        self.local = threading.local()
        self.lock = threading.Lock()
        """Held while adding, stepping or aborting: vLLM's engine is not thread-safe."""
        self.turn = threading.Condition(self.lock)
        self.calls: dict[str, Call] = {}
        """Request id -> the call it belongs to, for the requests in the engine."""
        self.mix_adapters = mix_adapters if mix_adapters is not None else on_gpu()
        """Whether calls with different adapters (or none) may share the engine. vLLM's CPU build answered base
        requests batched beside a LoRA request with the adapter's weights (vLLM 0.32, tested here): on a CPU one
        adapter at a time is in the engine, calls with another waiting for it to drain."""
        self.running: tuple[str | None, int] = (None, 0)
        """(the adapter of the calls in the engine, how many calls)."""

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

    @property
    def active(self) -> str | None:
        return getattr(self.local, "active", self.default_active)

    def use(self, name: str) -> None:
        """Answer with adapter `name` from now on, in this thread (`base`: the base alone)."""
        self.local.active = None if check_adapter_name(name, list(self.adapters)) == BASE else name

    def lora_request(self):
        active = self.active
        if not active:
            return None
        from vllm.lora.request import LoRARequest  # lazy: vllm is optional

        return LoRARequest(active, self.lora_ids[active], self.adapters[active])

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
        """`params.n` completions per prompt; `on_token(row, token_id)` (row = prompt x n + choice) as vLLM samples
        (from whichever thread stepped the engine)."""
        if not prompts:
            return []
        tok = self.tokenizer
        inputs = [{"prompt_token_ids": list(p)} if isinstance(p, TokenIds) else render_prompt(tok, p) for p in prompts]
        engine = self.llm.llm_engine
        # Straight into the engine (`LLM.enqueue` would make every request FINAL_ONLY: no stream), under our own
        # ids, which are what its outputs carry and what `abort_request` takes.
        ids = [f"serve-{uuid.uuid4().hex[:12]}-{k}" for k in range(len(inputs))]
        call = Call(ids, params.n, params.logprobs, on_token)
        sampling, lora = self.sampling(params), self.lora_request()
        adapter = self.active
        with self.turn:
            if not self.mix_adapters:
                self.turn.wait_for(lambda: self.running[1] == 0 or self.running[0] == adapter)
            self.running = (adapter, self.running[1] + 1)
            try:
                for rid, prompt in zip(ids, inputs):
                    engine.add_request(rid, prompt, sampling, lora_request=lora)
                    self.calls[rid] = call
            except BaseException:
                self.drop(engine, call)
                self.leave()
                raise
        try:
            while True:
                with self.lock:
                    if not call.open or not engine.has_unfinished_requests():
                        break
                    for out in engine.step():
                        owner = self.calls.get(out.request_id)
                        if owner is None:
                            continue
                        owner.take(out, engine)
                        if out.request_id not in owner.open:
                            self.calls.pop(out.request_id, None)
                time.sleep(0)  # let a thread whose call has ended take the lock and return
        except BaseException:
            with self.lock:
                self.drop(engine, call)  # nothing of this call may keep running in a shared engine
                self.leave()
            raise
        with self.lock:
            self.drop(engine, call)  # an error in `on_token` left its requests aborted: forget them
            self.leave()
        if call.error is not None:
            raise call.error
        return call.completions(tok, params.stop)

    def leave(self) -> None:
        """A call has left the engine (the lock held): the next adapter may come in once none is left."""
        adapter, count = self.running
        self.running = (adapter if count > 1 else None, count - 1)
        self.turn.notify_all()

    def drop(self, engine, call: Call) -> None:
        """Abort whatever of `call` is still in the engine and forget its requests (the lock held)."""
        if call.open:
            engine.abort_request(list(call.open))
            call.open.clear()
        for rid in call.index:
            self.calls.pop(rid, None)


def on_gpu() -> bool:
    import torch  # lazy: only the vLLM backend asks

    return torch.cuda.is_available()


def serving_engine(engine):
    """The engine the server's worker runs: a vLLM engine (`load_engine(..., backend="vllm")`, holding a `vllm.LLM`)
    stepped token by token; any other engine as it is."""
    if getattr(engine, "name", None) == "vllm" and hasattr(getattr(engine, "llm", None), "llm_engine"):
        return StreamingVLLM.wrap(engine)
    return engine
