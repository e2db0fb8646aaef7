"""`RemoteEngine`: the `Engine` interface against a vLLM server on another machine (`generation.server: URL`,
started with `alignline rollout-server` or `vllm serve` with the flags in docs/serving.md).

Prompts are rendered and tokenized here, with the model's own tokenizer and chat template exactly as `HFEngine`
does, and sent as token ids to `/v1/completions` (one request per `generate` call: all prompts, `n` each); the
answer's token ids come back exact (`return_token_ids`, a vLLM extension) with each token's log-prob, and the text
is decoded here as `HFEngine` decodes it, so greedy outputs match the in-process engines.

Policy updates without merging: `load_lora(path)` asks the server to load the adapter directory under a new
name (`policy-v1`, `policy-v2`, ...; `/v1/load_lora_adapter`) and unloads the previous one. The server reads
`path` from its own disk: a shared filesystem, or a copy made there (docs/serving.md). Full fine-tuning cannot
push weights to a server (`load_weights` says so).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from alignline.errors import ConfigError, UserError
from alignline.models.loading import load_tokenizer_for, resolve
from alignline.models.named_adapters import BASE
from alignline.rollout.types import Completion, Prompt, SamplingParams, TokenIds, cut_at_stop, render_prompt

START_HINT = "start one with `alignline rollout-server MODEL`"
LORA_HINT = (
    "start it with `alignline rollout-server MODEL`, or run vLLM with --enable-lora and the environment variable "
    "VLLM_ALLOW_RUNTIME_LORA_UPDATING=True"
)
GENERATE_TIMEOUT_S = 3600.0
"""A whole batch of rollouts is one request: long, but a dead server still ends it."""


class ServerError(UserError):
    """The vLLM server is unreachable or refused a request: one line, with what to do."""


@dataclass
class RemoteEngine:
    url: str
    """The server's root (`http://host:8001`); requests go to `{url}/v1/...`."""
    served_model: str
    """The base model's id on the server."""
    tokenizer: object
    client: object
    """An `httpx.Client`."""
    name: str = "remote"
    adapters: dict[str, str] = field(default_factory=dict)
    """Adapter name -> path (on the server's disk) of the adapters loaded on the server."""
    active: str | None = None
    """The adapter answering; None: the base."""
    version: int = 0
    """Policy updates loaded by `load_lora` so far."""
    max_model_len: int | None = None

    @classmethod
    def connect(
        cls, url: str, model: str | None, adapters: dict[str, str] | None = None, api_key: str | None = None
    ) -> RemoteEngine:
        """A server at `url` serving `model`'s base; `adapters` ({name: path}, paths the server can read; with
        `model` an adapter directory, that one as `default`) are loaded on it, the first answering. The API key
        defaults to `ALIGNLINE_API_KEY`."""
        import httpx  # lazy: only a remote engine speaks HTTP

        api_key = api_key or os.environ.get("ALIGNLINE_API_KEY") or None
        root = url.rstrip("/")
        root = root[: -len("/v1")] if root.endswith("/v1") else root
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        client = httpx.Client(headers=headers, timeout=httpx.Timeout(GENERATE_TIMEOUT_S, connect=10.0))
        listed = get_json(client, root, "/v1/models")
        entries = listed.get("data") or []
        bases = [e for e in entries if not e.get("parent")]
        if not bases:
            raise ServerError(f"generation.server {root}: /v1/models lists no base model; {START_HINT}")
        base = bases[0]
        tokenizer = load_tokenizer_for(model)
        engine = cls(root, base["id"], tokenizer, client, max_model_len=base.get("max_model_len"))
        named = dict(adapters or {})
        _, adapter = resolve(model)
        if adapter:
            named.setdefault("default", adapter)
        loaded = {e["id"] for e in entries if e.get("parent")}
        for name, path in named.items():
            if name not in loaded:
                engine.post_adapter("/v1/load_lora_adapter", {"lora_name": name, "lora_path": str(path)})
            engine.adapters[name] = str(path)
        engine.active = next(iter(engine.adapters), None)
        return engine

    def use(self, name: str) -> None:
        """Answer with adapter `name` from now on (`base`: the base alone)."""
        if name != BASE and name not in self.adapters:
            raise ConfigError(f"adapter {name!r} is not loaded on {self.url}; loaded: {', '.join(self.adapters)}")
        self.active = None if name == BASE else name

    def load_lora(self, path: str | Path, name: str = "policy") -> int:
        """Load adapter directory `path` (as the server sees it) under `{name}-v{k}`, a new name each call (the
        server caches adapters by name), answer with it from now on, and unload the one it replaces; returns k."""
        new = f"{name}-v{self.version + 1}"
        self.post_adapter("/v1/load_lora_adapter", {"lora_name": new, "lora_path": str(path)})
        self.version += 1
        old = [n for n in self.adapters if n.startswith(f"{name}-v") and n != new]
        self.adapters[new] = str(path)
        self.active = new
        for n in old:
            self.post_adapter("/v1/unload_lora_adapter", {"lora_name": n})
            del self.adapters[n]
        return self.version

    def load_weights(self, named_tensors) -> None:
        raise ConfigError(
            "generation.server: full fine-tuning cannot push weights to a vLLM server; train with LoRA "
            "(adapters are hot-loaded on the server), or set generation.server: null to generate in this process"
        )

    def generate(self, prompts: Sequence[Prompt], params: SamplingParams) -> list[list[Completion]]:
        """`params.n` completions per prompt (one request; vLLM batches them continuously)."""
        if not prompts:
            return []
        tok = self.tokenizer
        ids = [
            list(p) if isinstance(p, TokenIds) else tok(render_prompt(tok, p), add_special_tokens=False).input_ids
            for p in prompts
        ]
        body = {
            "model": self.active or self.served_model,
            "prompt": ids,
            "n": params.n,
            "max_tokens": params.max_new_tokens,
            "temperature": params.temperature,
            "top_p": params.top_p,
            "top_k": params.top_k,  # 0: no truncation, as here
            "seed": params.seed,
            "stop": list(params.stop),
            "return_token_ids": True,
            "skip_special_tokens": True,
        }
        if params.logprobs:
            body["logprobs"] = 0  # the sampled token's log-prob only
        choices = self.post(self.url + "/v1/completions", body)["choices"]
        if len(choices) != len(ids) * params.n:
            raise ServerError(f"{self.url}: {len(choices)} completions for {len(ids)} prompts x n={params.n}")
        choices = sorted(choices, key=lambda c: c["index"])  # prompt-major: prompt i's k-th at i * n + k
        out: list[list[Completion]] = []
        for i, prompt_ids in enumerate(ids):
            group = []
            for c in choices[i * params.n : (i + 1) * params.n]:
                tokens = list(c.get("token_ids") or [])
                text, _ = cut_at_stop(tok.decode(tokens, skip_special_tokens=True), params.stop)
                logps = (c.get("logprobs") or {}).get("token_logprobs") if params.logprobs else None
                group.append(
                    Completion(
                        text=text,
                        token_ids=tokens,
                        finish_reason="length" if c.get("finish_reason") == "length" else "stop",
                        logprobs=[float(x) if x is not None else 0.0 for x in logps] if logps is not None else None,
                        prompt_tokens=len(prompt_ids),
                    )
                )
            out.append(group)
        return out

    def post_adapter(self, route: str, body: dict) -> None:
        import httpx  # lazy: only a remote engine speaks HTTP

        try:
            r = self.client.post(self.url + route, json=body)
        except httpx.HTTPError as e:
            raise unreachable(self.url, e) from None
        if r.status_code == 404:
            raise ServerError(f"{self.url} does not load adapters at run time ({route} is not served); {LORA_HINT}")
        if r.status_code != 200:
            raise ServerError(f"{self.url}{route} {body.get('lora_name')!r}: HTTP {r.status_code}: {error_text(r)}")

    def post(self, url: str, body: dict) -> dict:
        import httpx  # lazy: only a remote engine speaks HTTP

        try:
            r = self.client.post(url, json=body)
        except httpx.HTTPError as e:
            raise unreachable(self.url, e) from None
        if r.status_code != 200:
            raise ServerError(f"{url}: HTTP {r.status_code}: {error_text(r)}")
        return r.json()

    def close(self) -> None:
        self.client.close()


def get_json(client, root: str, route: str) -> dict:
    import httpx  # lazy: only a remote engine speaks HTTP

    try:
        r = client.get(root + route, timeout=10.0)
    except httpx.HTTPError as e:
        raise unreachable(root, e) from None
    if r.status_code == 401:
        raise ServerError(f"generation.server {root}: the API key was refused (HTTP 401)")
    if r.status_code != 200:
        raise ServerError(f"generation.server {root}{route}: HTTP {r.status_code}: {error_text(r)}; {START_HINT}")
    return r.json()


def unreachable(root: str, e: Exception) -> ServerError:
    reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
    return ServerError(f"generation.server {root} is unreachable ({reason}); {START_HINT}")


def error_text(r) -> str:
    """The server's error message (vLLM and OpenAI shapes), on one line."""
    try:
        body = r.json()
        message = body.get("error", {}).get("message") if isinstance(body.get("error"), dict) else body.get("message")
        text = str(message or body)
    except ValueError:
        text = r.text
    return " ".join(text.split())[:300]
