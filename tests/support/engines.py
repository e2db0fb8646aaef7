"""Scripted generation engines: deterministic replies where a tiny random model's outputs are noise."""

from __future__ import annotations


class ScriptedEngine:
    """An engine whose answers a function of the prompt's last user text decides (deterministic numbers
    for eval tests, where a tiny random model's outputs are noise). `Engine` interface."""

    def __init__(self, answer, name: str = "scripted"):
        self.answer, self.name, self.tokenizer = answer, name, None
        self.calls = 0

    def generate(self, prompts, params):
        from alignline.rollout.types import Completion

        out = []
        for p in prompts:
            self.calls += 1
            text = p if isinstance(p, str) else p[-1]["content"]
            reply = self.answer(text)
            out.append(
                [
                    Completion(
                        text=reply,
                        token_ids=list(range(len(reply.split()))),
                        finish_reason="stop",
                        logprobs=[-0.1] * len(reply.split()) if params.logprobs else None,
                    )
                ]
            )
        return out


class ScriptedTokenEngine:
    """A fake generation engine (`rollout/engine.py:Engine`) whose replies are scripted, for episode tests.

    `script(prompt, call) -> str` gives the reply to a rendered prompt in the `call`-th `generate` call
    (or `script` is a list, one list of replies per call, in prompt order). Each reply's `token_ids` are
    its canonical tokens plus the end-of-turn token (`tokenize(text)` overrides the tokens), its
    log-probs `logprob` each. Every call's prompts are kept in `calls`.
    """

    name = "scripted"

    def __init__(self, tokenizer, script, logprob: float = -0.5, tokenize=None):
        self.tokenizer, self.script, self.logprob, self.tokenize = tokenizer, script, logprob, tokenize
        self.calls: list[list[str]] = []

    def generate(self, prompts, params):
        from alignline.rollout.types import Completion, render_prompt

        texts = [render_prompt(self.tokenizer, p) for p in prompts]
        call = len(self.calls)
        self.calls.append(texts)
        out = []
        for i, text in enumerate(texts):
            group = []
            for _ in range(params.n):
                reply = self.script[call][i] if isinstance(self.script, list) else self.script(text, call)
                ids = (
                    self.tokenize(reply)
                    if self.tokenize
                    else self.tokenizer(reply, add_special_tokens=False)["input_ids"]
                ) + [self.tokenizer.eos_token_id]
                group.append(
                    Completion(
                        text=reply,
                        token_ids=list(ids),
                        finish_reason="stop",
                        logprobs=[self.logprob] * len(ids) if params.logprobs else None,
                        prompt_tokens=len(self.tokenizer(text, add_special_tokens=False)["input_ids"]),
                    )
                )
            out.append(group)
        return out
