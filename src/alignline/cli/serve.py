"""`alignline serve` (an OpenAI-compatible server with confidence routing) and `alignline serve calibrate`.

`--api-key KEY` (or the environment variable `ALIGNLINE_API_KEY`; the flag wins): every route then needs
`Authorization: Bearer KEY`. Without a key on a loopback address, only requests whose `Host` is a loopback
name (or an `--allowed-host`) are served: a web page rebinding its DNS name to 127.0.0.1 is refused.
`--docs` serves `/docs`, `/redoc` and `/openapi.json` (off by default).
The base model is listed under `--served-name`, or the model's name (the last part of its directory,
never the local path; the path as typed is still accepted as a model id).
`--backend vllm`: vLLM's engine in this process, stepped by the server's worker (`serve/vllm_backend.py`).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from alignline.errors import UserError


def model_name(model: str | None) -> str:
    """The id a model is served under by default: its name, not where it lies on this machine
    (`/home/me/runs/legal/final` -> `legal-final`); a name that is no local path (`smollm2-135m`, a Hub id)
    stays as it is."""
    if not model:
        return "smollm2-135m"
    path = Path(model).expanduser()
    if not path.exists():
        return model
    parts = path.resolve().parts[1:] or ("model",)
    name = parts[-1]
    # A checkpoint's own folder (`final`, `checkpoint-400`) says little without its run's.
    if len(parts) > 1 and (name in ("final", "best", "last") or name.startswith(("checkpoint", "step"))):
        name = f"{parts[-2]}-{name}"
    return name


LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")


def is_loopback(host: str) -> bool:
    import ipaddress

    try:
        return host == "localhost" or ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def allowed_hosts(host: str, api_key: str | None, extra: list[str]) -> list[str] | None:
    """The `Host` names served: loopback names (the address listened on, and `extra`) when listening on
    loopback without a key; None (any) otherwise: with a key a rebinding page cannot pass, and on 0.0.0.0
    the names are the user's own to know (`--allowed-host` still restricts them)."""
    if not extra and (api_key or not is_loopback(host)):
        return None
    return list(dict.fromkeys([*LOOPBACK_NAMES, host.strip("[]").lower(), *extra]))


def served_models(args) -> tuple[dict[str, str], str]:
    """({served id: engine adapter name}, the base's served id) for --model / --adapter / --served-name."""
    from alignline.models.named_adapters import parse_adapter_flags

    adapters = parse_adapter_flags(args.adapter)
    base_name = args.served_name or model_name(args.model)
    if base_name in adapters:
        raise UserError(f"--served-name {base_name!r}: an adapter has that name too")
    return {base_name: "base", **{n: n for n in adapters}}, base_name


def load(args):
    """The engine to serve: `load_engine`'s; a vLLM one is stepped by the server's worker, token by token."""
    from alignline.models.dtype import choose_dtype
    from alignline.models.named_adapters import parse_adapter_flags
    from alignline.rollout.engine import load_engine
    from alignline.serve.vllm_backend import serving_engine

    dtype = choose_dtype(args.dtype)
    print(
        f"serve: loading {args.model or 'smollm2-135m'} ({args.backend} backend, {dtype})"
        + (f" with adapters {', '.join(parse_adapter_flags(args.adapter))}" if args.adapter else ""),
        file=sys.stderr,
        flush=True,
    )
    if args.backend != "hf":
        # VLLMEngine.load puts vLLM's engine core in this process (rollout/vllm.py, prepare_environment); the
        # server's worker thread steps it (serve/vllm_backend.py). Serving wants a larger KV cache than its 1 GiB
        # default for rollouts (vLLM on a CPU would otherwise reserve 92 % of the machine's memory): 2 GiB, ~20k
        # tokens of a small model, unless the user says.
        os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "2")
    engine = load_engine(
        args.model,
        backend=args.backend,
        dtype=dtype,
        batch_size=args.max_batch,
        adapters=parse_adapter_flags(args.adapter) or None,
    )
    return serving_engine(engine)


def run_serve(args) -> int:
    from alignline.models.named_adapters import parse_adapter_flags
    from alignline.serve.calibrate import check_calibration, identity
    from alignline.serve.confidence import Confidence, parse_confidence
    from alignline.serve.routing import HOLD_MESSAGE, Router, load_policy, open_reviews

    for flag, value, low in (
        ("--max-queue", args.max_queue, 1),
        ("--max-batch", args.max_batch, 1),
        ("--port", args.port, 0),
        ("--default-max-tokens", args.default_max_tokens, 1),
    ):
        if value < low:
            raise UserError(f"{flag} {value}: must be at least {low}")
    served, base_name = served_models(args)
    spec = parse_confidence(args.confidence)
    policy = load_policy(args.policy) if args.policy else None
    threshold, fits = None, {}
    if args.route_below is not None:
        if not 0 < args.route_below < 1:
            raise UserError(f"--route-below {args.route_below}: a confidence threshold between 0 and 1")
        if not args.calibration:
            raise UserError(
                "--route-below needs --calibration FILE, made by `alignline serve calibrate ... "
                f"--threshold {args.route_below:g}`: a threshold is enabled only on a calibrated score"
            )
        cal = check_calibration(
            args.calibration,
            identity(args.model, parse_adapter_flags(args.adapter)),
            list(served.values()),
            args.route_below,
            spec.label,
        )
        threshold = args.route_below
        fits = {name: m["fit"] for name, m in cal["models"].items() if m.get("fit")}
    elif args.calibration:
        raise UserError("--calibration is given without --route-below T (the threshold it was made for)")
    if (threshold is not None or policy) and not (args.review_db or args.review_file):
        raise UserError("routing needs a review queue: --review-db URL --review-project NAME, or --review-file F")
    reviews = open_reviews(args.review_db, args.review_project, args.review_file)
    router = Router(threshold, args.on_low, policy, args.hold_message or HOLD_MESSAGE)
    engine = load(args)
    from alignline.serve.app import ServeSettings, create_app

    api_key = args.api_key or os.environ.get("ALIGNLINE_API_KEY") or None
    aliases = [args.model] if args.model and args.model not in served else []
    settings = ServeSettings(
        base_name,
        [n for n in served if n != base_name],
        router,
        reviews,
        Confidence(spec, fits),
        max_queue=args.max_queue,
        max_batch=args.max_batch,
        default_max_tokens=args.default_max_tokens,
        api_key=api_key,
        docs=args.docs,
        aliases=aliases,
        allowed_hosts=allowed_hosts(args.host, api_key, args.allowed_host),
    )
    import uvicorn

    routing = (
        f"routing below {threshold:g} ({args.on_low}{', Platt-scaled' if fits else ''})"
        if threshold is not None
        else "no threshold"
    ) + (f", policy {args.policy}" if policy else "")
    from alignline.serve.streaming import live_streaming

    streaming = (
        "token by token"
        if live_streaming(engine, router)
        else (
            "buffered (an answer may be held)" if router.may_hold else "buffered (this engine does not stream tokens)"
        )
    )
    print(
        f"serve: http://{args.host}:{args.port}/v1 models {', '.join(served)}; confidence {spec.label}; {routing}; "
        f"streaming {streaming}; {'API key required' if api_key else 'no API key (anyone who can connect may ask)'}",
        file=sys.stderr,
        flush=True,
    )
    uvicorn.run(create_app(engine, settings), host=args.host, port=args.port, log_level=args.log_level)
    return 0


def run_calibrate(args) -> int:
    from alignline.models.named_adapters import parse_adapter_flags
    from alignline.rewards.registry import get_grader
    from alignline.serve.calibrate import describe, identity, load_labelled, run_calibration, write_calibration
    from alignline.serve.confidence import Confidence, parse_confidence

    if not 0 < args.threshold < 1:
        raise UserError(f"--threshold {args.threshold}: a confidence threshold between 0 and 1")
    if not 0 < args.max_ece <= 1:
        raise UserError(f"--max-ece {args.max_ece}: must be in (0, 1]")
    if args.bins < 1 or args.max_tokens < 1:
        raise UserError("--bins and --max-tokens must be at least 1")
    served, _ = served_models(args)
    spec = parse_confidence(args.confidence)
    records = load_labelled(args.labelled)
    get_grader(args.grader)  # an unknown grader fails before the model loads
    ident = identity(args.model, parse_adapter_flags(args.adapter))
    engine = load(args)
    from tqdm import tqdm

    bar = tqdm(total=len(records) * len(served), desc="calibrate", unit="answer", file=sys.stderr)
    seen: dict[str, int] = {}

    def progress(name: str, done: int, total: int) -> None:
        bar.update(done - seen.get(name, 0))
        seen[name] = done

    cal = run_calibration(
        engine,
        served,
        records,
        args.grader,
        Confidence(spec),
        args.threshold,
        args.max_ece,
        args.bins,
        args.max_tokens,
        args.max_batch,
        progress,
        args.fit,
    )
    bar.close()
    cal["identity"] = ident
    json_path, html_path = write_calibration(args.out, cal)
    for name, m in cal["models"].items():
        print(f"{'pass' if m['passed'] else 'FAIL'}  {describe(name, m, args.threshold, args.max_ece)}")
    print(
        f"calibration: {'routing allowed' if cal['passed'] else 'routing refused (ECE above its maximum)'}; "
        f"wrote {json_path} and {html_path}"
    )
    return 0 if cal["passed"] else 1


def add_model_flags(p) -> None:
    p.add_argument("--model", default=None, help="base model dir, checkpoint or smollm2-135m (default)")
    p.add_argument(
        "--adapter",
        action="append",
        default=[],
        metavar="NAME=PATH",
        help="an adapter trained on --model, served as model NAME (repeatable)",
    )
    p.add_argument("--served-name", default=None, help="the base model's id in /v1/models (default: --model)")
    p.add_argument(
        "--confidence",
        default="mean",
        metavar="KIND",
        help="mean (geometric-mean token probability, default), min (least likely token), or "
        "reward:PATH (sigmoid of a reward model's score)",
    )
    p.add_argument(
        "--backend",
        default="auto",
        choices=["auto", "hf", "vllm"],
        help="generation engine (auto: vLLM where installed, else Hugging Face; vllm streams token by token too)",
    )
    p.add_argument(
        "--dtype",
        default="auto",
        choices=["auto", "float32", "bfloat16"],
        help="weights dtype (auto: bfloat16 on a GPU or a CPU with avx512_bf16/AMX, else float32)",
    )
    p.add_argument("--max-batch", type=int, default=16, help="requests (or prompts) per engine call")


def register(sub) -> None:
    p = sub.add_parser(
        "serve",
        help="an OpenAI-compatible server (base + adapters) with confidence routing to review",
        description="Serve /v1/chat/completions and /v1/models. Every answer carries a confidence; "
        "below a calibrated threshold, or on a policy rule, it is held or flagged and "
        "queued for review. `alignline serve calibrate` makes the calibration file.",
    )
    add_model_flags(p)
    p.add_argument("--host", default="127.0.0.1", help="address to listen on")
    p.add_argument("--port", type=int, default=8000, help="port to listen on")
    p.add_argument("--max-queue", type=int, default=64, help="requests that may wait; beyond, 503")
    p.add_argument("--default-max-tokens", type=int, default=256, help="max_tokens when a request sets none")
    p.add_argument(
        "--route-below",
        type=float,
        default=None,
        metavar="T",
        help="route answers with confidence below T to review (needs --calibration)",
    )
    p.add_argument("--calibration", default=None, help="the file `alignline serve calibrate` wrote for T")
    p.add_argument(
        "--on-low",
        default="hold",
        choices=["hold", "flag"],
        help="hold: answer with a holding message; flag: answer and mark it (both: queued)",
    )
    p.add_argument("--hold-message", default=None, help="the holding message ({request_id} is filled in)")
    p.add_argument("--policy", default=None, help="rules YAML (topics, pii, action) that route whatever the confidence")
    p.add_argument("--review-db", default=None, metavar="URL", help="the annotation database to queue reviews in")
    p.add_argument("--review-project", default=None, metavar="NAME", help="its project for the review queue")
    p.add_argument("--review-file", default=None, metavar="F", help="a JSONL review queue (no database needed)")
    p.add_argument(
        "--api-key",
        default=None,
        metavar="KEY",
        help="require 'Authorization: Bearer KEY' on every route (default: $ALIGNLINE_API_KEY, "
        "which other users' `ps` does not show; unset: no key)",
    )
    p.add_argument(
        "--allowed-host",
        action="append",
        default=[],
        metavar="NAME",
        help="a Host header name to serve besides loopback names (repeatable; e.g. behind a proxy "
        "that passes its own Host)",
    )
    p.add_argument("--docs", action="store_true", help="serve /docs, /redoc and /openapi.json (off by default)")
    p.add_argument(
        "--log-level",
        default="info",
        choices=["critical", "error", "warning", "info", "debug"],
        help="the server log's level",
    )
    p.set_defaults(func=run_serve)
    actions = p.add_subparsers(
        dest="serve_action",
        metavar="calibrate",
        required=False,
        help="optional: `alignline serve calibrate ...` makes the calibration file",
    )
    c = actions.add_parser(
        "calibrate",
        help="measure confidence against correctness on labelled prompts",
        description="Answer labelled prompts with every served model; write the ECE, accuracy "
        "above the threshold and share routed (JSON and an HTML report with the "
        "reliability chart). Exit 0 if routing at T is allowed, 1 if refused.",
    )
    add_model_flags(c)
    c.add_argument("--labelled", required=True, help="JSONL of {prompt or messages, answer, ...}")
    c.add_argument("--threshold", type=float, required=True, help="the threshold to enable (0-1)")
    c.add_argument("--out", required=True, help="calibration.json (the HTML report goes beside it)")
    c.add_argument("--max-ece", type=float, default=0.1, help="the largest ECE that may route (default 0.1)")
    c.add_argument(
        "--grader",
        default="exact_match",
        help="scores answers against `answer` (a grader name, file.py:function or module:function)",
    )
    c.add_argument(
        "--fit",
        default="none",
        choices=["none", "platt"],
        help="platt: map the score to P(correct) by Platt scaling, fitted here and applied by the "
        "server (figures measured out of fold)",
    )
    c.add_argument("--bins", type=int, default=10, help="equal-width confidence bins for ECE")
    c.add_argument("--max-tokens", type=int, default=64, help="the most tokens per answer")
    c.set_defaults(func=run_calibrate)
