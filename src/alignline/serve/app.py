"""The OpenAI-compatible HTTP API over one engine worker (fastapi is imported by this module only).

`/v1/models` lists the base model (under its served name; `base` is accepted too) and every adapter;
`/v1/chat/completions` answers with the one the request's `model` names, as multi-LoRA servers do.
Honoured: `messages`, `n`, `max_tokens` / `max_completion_tokens`, `temperature`, `top_p`, `seed`, `stop`,
`stream` (with `stream_options.include_usage`); other OpenAI fields are accepted and ignored.

One worker thread owns the engine. Requests wait in a bounded queue (`max_queue`; beyond it, 503);
the worker takes the first waiting request plus whatever else waits (up to `max_batch`, after at most
`batch_wait_s`) and answers requests that share a model and sampling settings in one engine call
(simple dynamic batching). Sampled requests with a `seed` run alone, so a seeded answer does not depend
on what else was waiting.

Streaming (`serve/streaming.py`) is token by token wherever nothing can be held (no routing, or routing
that only flags; the confidence and review id come in the last chunk). With `--on-low hold` (or a policy
that holds) it sends the answer once it is decided, in word-sized chunks: the confidence score and the
policy rules need the whole answer before any of it may leave, since a held answer cannot be unsent.

The request and response shapes (`ChatRequest`, `Answer`, the response body) are `serve/protocol.py`'s.
Every answer carries `choices[i].confidence` and an `alignline` object (`confidence`, `routed`,
`action`, `reasons`, `review_id`, `request_id`); extra fields the official client keeps as they are.

Hardening (issue 17): an API key guards every route when set, bodies must be JSON (`serve/guard.py`);
each request is parsed (`serve/body.py`) and tokenized (`serve/encoding.py`) in its handler, so a bad one
is a 400 of its own and never reaches a batch; should an engine call fail anyway, its requests are retried
one by one so only the one that fails does. A streamed request whose client leaves stops generating.
A full queue is a 503 with `Retry-After`. `/docs`, `/redoc` and `/openapi.json` exist only with `docs`.
"""

# No `from __future__ import annotations` here: FastAPI reads the `request: Request` annotation at run time,
# and Request is imported inside create_app (fastapi stays a lazy import).

import asyncio
import queue
import random
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace

from alignline.rollout.types import Completion, SamplingParams
from alignline.serve.body import content_text, parse_json_body
from alignline.serve.confidence import Confidence, ConfidenceSpec
from alignline.serve.encoding import PromptEncoder
from alignline.serve.errors import RequestError
from alignline.serve.guard import Guard
from alignline.serve.protocol import Answer, ChatRequest, completion_body
from alignline.serve.routing import Reviews, Router
from alignline.serve.streaming import LiveRows, buffered_events, live_events, live_streaming, queue_sink

ROLES = ("system", "developer", "user", "assistant", "tool")
MAX_N = 16


RETRY_AFTER_S = 1
"""The `Retry-After` of a 503 (queue full): a batch of the tiny-to-small models served here takes about that."""


@dataclass
class ServeSettings:
    served_name: str
    """The base model's id in /v1/models (`base` is accepted as well)."""
    adapters: list[str] = field(default_factory=list)
    """Adapter names, each served under its own id."""
    router: Router = field(default_factory=Router)
    reviews: Reviews = field(default_factory=Reviews)
    confidence: Confidence = field(default_factory=lambda: Confidence(ConfidenceSpec("mean")))
    max_queue: int = 64
    max_batch: int = 16
    batch_wait_s: float = 0.005
    engine_calls: int = 4
    """Engine calls at once, for an engine that batches across calls (`concurrent_calls`: vLLM); others: one."""
    default_max_tokens: int = 256
    max_tokens_limit: int = 2048
    api_key: str | None = None
    """When set, every route needs `Authorization: Bearer <api_key>` (else 401)."""
    docs: bool = False
    """Serve `/docs`, `/redoc` and `/openapi.json` (off: they describe the server to anyone who asks)."""
    allowed_hosts: list[str] | None = None
    """When set, the `Host` header must name one of these (a DNS-rebinding page is refused; see serve/guard.py)."""
    aliases: list[str] = field(default_factory=list)
    """Other ids accepted for the base model, never listed (`--model` as typed, which may be a local path)."""


def number(body: dict, key: str, default, low: float, high: float, integer: bool = False):
    value = body.get(key)
    if value is None:
        return default
    ok = isinstance(value, int) if integer else isinstance(value, (int, float))
    if isinstance(value, bool) or not ok or not low <= value <= high:
        kind = "an integer" if integer else "a number"
        raise RequestError(400, f"'{key}' must be {kind} from {low:g} to {high:g}, got {value!r}", key)
    return value


def parse_request(body, settings: ServeSettings) -> ChatRequest:
    """A chat-completions body -> ChatRequest; anything malformed -> RequestError naming the parameter."""
    if not isinstance(body, dict):
        raise RequestError(400, "the request body must be a JSON object")
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise RequestError(400, "'model' is required (see /v1/models)", "model")
    if model in (settings.served_name, "base", *settings.aliases):
        engine_model = "base"
    elif model in settings.adapters:
        engine_model = model
    else:
        served = ", ".join([settings.served_name, *settings.adapters])
        raise RequestError(404, f"The model '{model}' does not exist; served: {served}", "model", "model_not_found")
    raw = body.get("messages")
    if not isinstance(raw, list) or not raw:
        raise RequestError(400, "'messages' must be a non-empty list of {role, content} objects", "messages")
    messages = []
    for i, m in enumerate(raw):
        if not isinstance(m, dict) or m.get("role") not in ROLES:
            raise RequestError(
                400, f"messages[{i}]: expected an object with a role ({', '.join(ROLES)})", f"messages[{i}]"
            )
        role = "system" if m["role"] == "developer" else m["role"]
        messages.append({"role": role, "content": content_text(m.get("content"), f"messages[{i}].content")})
    max_tokens = body.get("max_completion_tokens", body.get("max_tokens"))
    key = "max_completion_tokens" if "max_completion_tokens" in body else "max_tokens"
    max_tokens = number({key: max_tokens}, key, settings.default_max_tokens, 1, settings.max_tokens_limit, True)
    stop = body.get("stop")
    if stop is None:
        stop = ()
    elif isinstance(stop, str):
        stop = (stop,)
    elif isinstance(stop, list) and len(stop) <= 4 and all(isinstance(s, str) for s in stop):
        stop = tuple(s for s in stop if s)
    else:
        raise RequestError(400, "'stop' must be a string or a list of up to 4 strings", "stop")
    stream = body.get("stream", False)
    if not isinstance(stream, bool):
        raise RequestError(400, "'stream' must be true or false", "stream")
    options = body.get("stream_options") or {}
    if not isinstance(options, dict):
        raise RequestError(400, "'stream_options' must be an object", "stream_options")
    seed = number(body, "seed", None, -(2**63), 2**63 - 1, True)
    params = SamplingParams(
        max_new_tokens=max_tokens,
        temperature=float(number(body, "temperature", 1.0, 0, 2)),
        top_p=float(number(body, "top_p", 1.0, 0, 1)),
        n=number(body, "n", 1, 1, MAX_N, True),
        stop=stop,
        seed=seed % 2**63 if seed is not None else 0,
        logprobs=settings.confidence.needs_logprobs,
    )
    if params.top_p <= 0:
        raise RequestError(400, "'top_p' must be above 0", "top_p")
    rid = f"chatcmpl-{uuid.uuid4().hex[:24]}"
    return ChatRequest(
        rid,
        model,
        engine_model,
        messages,
        params,
        stream,
        bool(options.get("include_usage")),
        seeded=seed is not None,
        explicit_max_tokens=body.get(key) is not None,
    )


def encode_request(request: ChatRequest, encoder: PromptEncoder) -> None:
    """Tokenize the prompt and fit the answer's budget to the context (RequestError if it cannot fit)."""
    if not encoder.active:
        return
    request.prompt = encoder.encode(request.messages)
    budget = encoder.fit(request.prompt, request.params.max_new_tokens, request.explicit_max_tokens)
    if budget != request.params.max_new_tokens:
        request.params = replace(request.params, max_new_tokens=budget)


class Busy(Exception):
    """The queue is full."""


class Cancelled(Exception):
    """The client left before its request ran."""


@dataclass
class Job:
    request: ChatRequest
    future: Future


class Worker:
    """The one thread that runs the engine: takes waiting jobs, batches those that can share an engine call."""

    def __init__(
        self,
        handle: Callable[[list[ChatRequest]], list[list[Answer]]],
        max_queue: int,
        max_batch: int,
        batch_wait_s: float,
        calls: int = 1,
    ):
        self.handle, self.max_queue, self.max_batch, self.batch_wait_s = handle, max_queue, max_batch, batch_wait_s
        # calls > 1 (an engine that batches across calls, vLLM): up to `calls` engine calls at once, so requests
        # that arrive while one runs join the engine now instead of after it.
        self.slots = threading.BoundedSemaphore(calls) if calls > 1 else None
        self.pool = ThreadPoolExecutor(calls, thread_name_prefix="alignline-engine-call") if calls > 1 else None
        self.jobs: queue.Queue = queue.Queue()
        self.lock = threading.Lock()
        self.waiting = 0
        self.thread = threading.Thread(target=self.loop, name="alignline-engine", daemon=True)
        self.batches: list[int] = []
        """Requests per engine call, for the load test's report."""

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.jobs.put(None)
        self.thread.join(timeout=30)
        if self.pool is not None:
            self.pool.shutdown(wait=True)

    def submit(self, request: ChatRequest) -> Future:
        with self.lock:
            if self.waiting >= self.max_queue:
                raise Busy
            self.waiting += 1
        future: Future = Future()
        self.jobs.put(Job(request, future))
        return future

    def loop(self) -> None:
        while True:
            first = self.jobs.get()
            if first is None:
                return
            batch = [first]
            deadline = time.monotonic() + self.batch_wait_s
            while len(batch) < self.max_batch:
                try:
                    job = self.jobs.get(timeout=max(0.0, deadline - time.monotonic()))
                except queue.Empty:
                    break
                if job is None:
                    self.jobs.put(None)  # stop after this batch
                    break
                batch.append(job)
            with self.lock:
                self.waiting -= len(batch)
            for j in batch:
                if j.request.cancelled:
                    j.future.set_exception(Cancelled())
            batch = [j for j in batch if not j.request.cancelled]
            for group in batch_groups(batch):
                self.dispatch(group)

    def dispatch(self, group: list[Job]) -> None:
        """Run `group` here, or (several calls at once) in a free call slot, waiting for one if all are busy."""
        if self.pool is None:
            self.run_group(group)
            return
        self.slots.acquire()

        def run() -> None:
            try:
                self.run_group(group)
            finally:
                self.slots.release()

        self.pool.submit(run)

    def run_group(self, group: list[Job]) -> None:
        self.batches.append(len(group))
        try:
            answers = self.handle([j.request for j in group])
        except Exception as e:  # noqa: BLE001 - the engine failed: a 500, the server lives on
            if len(group) == 1:
                group[0].future.set_exception(e)
                return
            # One request may have failed the whole call: each runs again alone, so only that one fails.
            # A live stream that has sent text cannot start over: it fails (an error event).
            for j in group:
                if j.request.streamed or j.request.cancelled:
                    j.future.set_exception(e)
                else:
                    self.run_group([j])
            return
        for j, a in zip(group, answers):
            j.future.set_result(a)


def batch_groups(jobs: list[Job]) -> list[list[Job]]:
    """Jobs that may share one engine call: same model and sampling settings; a seeded sampled request alone."""
    groups: dict = {}
    for k, j in enumerate(jobs):
        p = j.request.params
        alone = p.temperature > 0 and j.request.seeded
        key = (k,) if alone else (j.request.engine_model, p)
        groups.setdefault(key, []).append(j)
    return list(groups.values())


class Answerer:
    """Runs one batch through the engine, scores, routes and enqueues: the worker's `handle`."""

    def __init__(self, engine, settings: ServeSettings):
        self.engine, self.settings = engine, settings
        self.lock = threading.Lock()
        """Scoring, routing and the review queue, one call at a time (engine calls may run side by side)."""

    def __call__(self, requests: list[ChatRequest]) -> list[list[Answer]]:
        first = requests[0]
        if getattr(self.engine, "adapters", None):
            self.engine.use(first.engine_model)
        params = first.params
        if params.temperature > 0 and not first.seeded:  # unseeded sampling: a fresh draw each call, as OpenAI
            params = replace(params, seed=random.randrange(2**63))
        prompts = [r.prompt if r.prompt is not None else r.messages for r in requests]
        if any(r.sink for r in requests):  # live streams: deltas leave from inside the decoding loop
            rows = LiveRows(self.engine.tokenizer, requests, params.n, params.stop)
            results: list[list[Completion]] = self.engine.generate(prompts, params, on_token=rows.push)
            rows.flush(results)  # all of the text is out before the scoring and the review queue
        else:
            results = self.engine.generate(prompts, params)
        with self.lock:
            return self.decide(requests, results)

    def decide(self, requests: list[ChatRequest], results: list[list[Completion]]) -> list[list[Answer]]:
        flat = [(r, c) for r, group in zip(requests, results) for c in group]
        conf = self.settings.confidence
        scores = [
            conf.calibrated(r.engine_model, s)
            for (r, _), s in zip(flat, conf([r.messages for r, _ in flat], [c for _, c in flat]))
        ]
        out: list[list[Answer]] = [[] for _ in requests]
        index = {id(r): i for i, r in enumerate(requests)}
        for (r, c), score in zip(flat, scores):
            out[index[id(r)]].append(self.answer(r, c, score, len(out[index[id(r)]])))
        return out

    def answer(self, request: ChatRequest, c: Completion, confidence: float, choice: int) -> Answer:
        s = self.settings
        prompt = "\n".join(m["content"] for m in request.messages if m["role"] == "user")
        a = Answer(
            c.text,
            c.text,
            c.finish_reason,
            confidence,
            completion_tokens=len(c.token_ids),
            prompt_tokens=c.prompt_tokens,
        )
        if not s.router.active or request.cancelled:  # nobody reads a dropped stream's partial answer
            return a
        decision = s.router.decide(prompt, c.text, confidence)
        if not decision.routed:
            return a
        a.routed, a.action, a.reasons = True, decision.action, decision.reasons
        meta = {
            "request_id": request.id,
            "lineage_id": f"{request.id}#{choice}",
            "choice": choice,
            "model": request.model,
            "confidence": confidence,
            "threshold": s.router.threshold,
            "action": decision.action,
            "reasons": decision.reasons,
            "finish_reason": c.finish_reason,
            "created": request.created,
            "confidence_kind": s.confidence.spec.label,
            "params": {
                "temperature": request.params.temperature,
                "top_p": request.params.top_p,
                "max_tokens": request.params.max_new_tokens,
                "seed": request.params.seed,
            },
        }
        a.review_id = s.reviews.enqueue(request.messages, c.text, meta)
        if decision.action == "hold":
            a.text = s.router.hold_message.replace("{request_id}", request.id)
            a.finish_reason = "stop"  # OpenAI-valid: the holding message is a complete answer
        return a


def create_app(engine, settings: ServeSettings):
    """The FastAPI application; the engine worker starts and stops with it."""
    import contextlib

    from fastapi import FastAPI, Request
    from fastapi.responses import JSONResponse, StreamingResponse
    from starlette.exceptions import HTTPException

    calls = settings.engine_calls if getattr(engine, "concurrent_calls", False) else 1
    worker = Worker(Answerer(engine, settings), settings.max_queue, settings.max_batch, settings.batch_wait_s, calls)
    encoder = PromptEncoder(engine)
    # One thread tokenizes, off the event loop (a long prompt does not stall other clients) and never two
    # requests at once (the encoder's tokenizer is not shared across threads).
    encoding = ThreadPoolExecutor(1, thread_name_prefix="alignline-encode")

    @contextlib.asynccontextmanager
    async def lifespan(app):
        worker.start()
        yield
        await asyncio.get_running_loop().run_in_executor(None, worker.stop)
        encoding.shutdown(wait=False)

    docs = settings.docs
    app = FastAPI(
        title="alignline serve",
        lifespan=lifespan,
        docs_url="/docs" if docs else None,
        redoc_url="/redoc" if docs else None,
        openapi_url="/openapi.json" if docs else None,
    )
    app.add_middleware(Guard, api_key=settings.api_key, allowed_hosts=settings.allowed_hosts)
    app.state.worker, app.state.settings, app.state.encoder = worker, settings, encoder
    started = int(time.time())

    def error(e: RequestError) -> JSONResponse:
        return JSONResponse(e.body(), status_code=e.status, headers=e.headers)

    @app.exception_handler(HTTPException)
    async def http_error(request, e: HTTPException):  # unknown route, wrong method: OpenAI's shape too
        return error(RequestError(e.status_code, str(e.detail), code="not_found" if e.status_code == 404 else None))

    @app.exception_handler(Exception)
    async def internal_error(request, e: Exception):  # no internals (paths, tracebacks) to the client
        return error(RequestError(500, "the server failed on this request", code="internal_error", kind="server_error"))

    @app.get("/v1/models")
    async def models():
        data = [
            {
                "id": settings.served_name,
                "object": "model",
                "created": started,
                "owned_by": "alignline",
                "root": settings.served_name,
                "parent": None,
            }
        ]
        data += [
            {
                "id": name,
                "object": "model",
                "created": started,
                "owned_by": "alignline",
                "root": name,
                "parent": settings.served_name,
            }
            for name in settings.adapters
        ]
        return {"object": "list", "data": data}

    @app.get("/health")
    async def health():
        calls = worker.batches
        return {
            "status": "ok",
            "waiting": worker.waiting,
            "engine_calls": len(calls),
            "requests_per_call": round(sum(calls) / len(calls), 3) if calls else None,
        }

    @app.post("/v1/chat/completions")
    async def chat(request: Request):
        try:
            chat_request = parse_request(parse_json_body(await request.body()), settings)
            await asyncio.get_running_loop().run_in_executor(encoding, encode_request, chat_request, encoder)
            live = chat_request.stream and live_streaming(engine, settings.router)
            if live:
                loop, deltas = asyncio.get_running_loop(), asyncio.Queue()
                chat_request.sink = queue_sink(loop, deltas)
            try:
                future = worker.submit(chat_request)
            except Busy:
                raise RequestError(
                    503,
                    f"the server is busy ({settings.max_queue} requests waiting); retry shortly",
                    code="queue_full",
                    kind="server_error",
                    headers={"Retry-After": str(RETRY_AFTER_S)},
                ) from None
            if live:
                # Queued after every delta the worker sent (both go through call_soon_threadsafe, in order).
                future.add_done_callback(lambda _: loop.call_soon_threadsafe(deltas.put_nowait, None))
                return StreamingResponse(live_events(chat_request, deltas, future), media_type="text/event-stream")
            try:
                answers = await asyncio.wrap_future(future)
            except Exception as e:  # noqa: BLE001 - any engine failure is this request's 500, said in one line
                raise RequestError(
                    500, f"generation failed: {type(e).__name__}: {e}", code="engine_error", kind="server_error"
                ) from None
        except RequestError as e:
            return error(e)
        if chat_request.stream:
            return StreamingResponse(buffered_events(chat_request, answers), media_type="text/event-stream")
        return completion_body(chat_request, answers)

    return app


def wait_ready(base_url: str, proc=None, timeout: float = 300, api_key: str | None = None) -> None:
    """Wait until a server at `base_url` (…/v1) answers /v1/models; fail early if its process `proc` died."""
    import httpx

    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    deadline = time.monotonic() + timeout
    while True:
        try:
            if httpx.get(f"{base_url}/models", timeout=5, headers=headers).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"the server exited with status {proc.returncode} before it was ready")
        if time.monotonic() > deadline:
            raise RuntimeError(f"the server at {base_url} was not ready within {timeout:.0f} s")
        time.sleep(0.25)


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serve_in_thread(app, host: str = "127.0.0.1", port: int = 0):
    """Run `app` under uvicorn in a background thread (tests, the load test, the flywheel); returns
    (server, port) once it accepts connections. Stop it with `server.should_exit = True`."""
    import uvicorn

    server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, name="alignline-uvicorn", daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError(f"the server did not start on {host}:{port}")
        time.sleep(0.02)
    bound = server.servers[0].sockets[0].getsockname()[1]
    server.thread = thread
    return server, bound
