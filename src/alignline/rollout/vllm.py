"""vLLM behind the `Engine` interface, for CUDA machines where vLLM is installed (imported only here).

Adapters are served as vLLM LoRA requests (one base, several adapters switched per request, as its
multi-LoRA server does). Log-probs are vLLM's sampled-token log-probs; an RL loss recomputes them with
the training model anyway and logs the mismatch.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from alignline.models.loading import load_tokenizer_for, resolve
from alignline.models.named_adapters import BASE, check_adapter_name
from alignline.rollout.types import Completion, Prompt, SamplingParams, TokenIds, cut_at_stop, render_prompt


@dataclass
class VLLMEngine:
    llm: object
    tokenizer: object
    name: str = "vllm"
    adapters: dict[str, str] = field(default_factory=dict)
    active: str | None = None

    @classmethod
    def load(
        cls,
        model: str | None,
        dtype: str = "bfloat16",
        adapters: dict[str, str] | None = None,
        gpu_memory_utilization: float = 0.5,
    ) -> VLLMEngine:
        from vllm import LLM

        base, adapter = resolve(model)
        adapters = dict(adapters or {})
        if adapter:
            adapters.setdefault("default", adapter)
        llm = LLM(model=base, dtype=dtype, enable_lora=bool(adapters), gpu_memory_utilization=gpu_memory_utilization)
        return cls(llm, load_tokenizer_for(model), adapters=adapters, active=next(iter(adapters), None))

    def use(self, name: str) -> None:
        """Answer with adapter `name` from now on ('base': the base alone)."""
        self.active = None if check_adapter_name(name, list(self.adapters)) == BASE else name

    def generate(self, prompts: Sequence[Prompt], params: SamplingParams) -> list[list[Completion]]:
        from vllm import SamplingParams as VSampling

        lora = None
        if self.active:
            from vllm.lora.request import LoRARequest

            lora = LoRARequest(self.active, list(self.adapters).index(self.active) + 1, self.adapters[self.active])
        sampling = VSampling(
            n=params.n,
            temperature=params.temperature,
            top_p=params.top_p,
            top_k=params.top_k or -1,
            max_tokens=params.max_new_tokens,
            seed=params.seed,
            stop=list(params.stop) or None,
            logprobs=0 if params.logprobs else None,
        )
        texts = [
            {"prompt_token_ids": list(p)} if isinstance(p, TokenIds) else render_prompt(self.tokenizer, p)
            for p in prompts
        ]
        results = self.llm.generate(texts, sampling, lora_request=lora, use_tqdm=False)
        out = []
        for r in results:
            group = []
            for c in r.outputs:
                text, _ = cut_at_stop(c.text, params.stop)
                logps = [next(iter(d.values())).logprob for d in c.logprobs] if params.logprobs and c.logprobs else None
                group.append(
                    Completion(
                        text=text,
                        token_ids=list(c.token_ids),
                        finish_reason="length" if c.finish_reason == "length" else "stop",
                        logprobs=logps,
                        prompt_tokens=len(r.prompt_token_ids),
                    )
                )
            out.append(group)
        return out
