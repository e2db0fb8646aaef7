"""`alignline score`: score responses or preference pairs with one or more reward models."""

from __future__ import annotations

from alignline.errors import ConfigError
from alignline.rewards.reward_models import parse_named, run_score


def register(subparsers) -> None:
    p = subparsers.add_parser("score", help="score responses (or preference pairs) with one or more reward models")
    p.add_argument(
        "--model", action="append", required=True, help="a reward model dir, or name=dir; repeat for several objectives"
    )
    p.add_argument("--weight", action="append", default=[], help="name=weight for combining objectives (default 1)")
    p.add_argument("--input", help="JSONL of prompt/response or prompt/chosen/rejected records")
    p.add_argument("--prompt", help="one prompt to score a response to (with --response)")
    p.add_argument("--response", help="the response to --prompt")
    p.set_defaults(func=_cmd_score)


def _cmd_score(args) -> int:
    if args.input is None and (args.prompt is None or args.response is None):
        raise ConfigError("alignline score: give --input FILE, or both --prompt and --response")
    weights = {}
    for name, value in parse_named(args.weight, "--weight").items():
        try:
            weights[name] = float(value)
        except ValueError:
            raise ConfigError(f"--weight {name}={value}: not a number") from None
    run_score(parse_named(args.model, "--model"), weights, args.input, args.prompt, args.response)
    return 0
