"""The `alignline` command. Errors a user can cause print one line and exit 2, with no traceback."""

from __future__ import annotations

import argparse
import os
import sys

from alignline.errors import UserError


def _cmd_train(args) -> int:
    from alignline.config import load_config
    from alignline.train.loop import train

    cfg = load_config(args.config, args.overrides + (["proceed_on_gate_failure=true"] if args.proceed else []))
    run_dir = train(cfg, progress=not args.quiet)
    if os.environ.get("RANK", "0") == "0":  # one line, not one per process
        print(f"done: {run_dir / 'final'}")
    return 0


def _cmd_generate(args) -> int:
    from alignline.generate import Generator, prompts_from_file

    conversations = [[{"role": "user", "content": p}] for p in args.prompt]
    if args.prompts:
        conversations += prompts_from_file(args.prompts)
    models = [args.model] + ([args.compare] if args.compare else [])
    generators = [Generator(m, args.dtype) for m in models]
    opts = dict(max_new_tokens=args.max_new_tokens, temperature=args.temperature, top_p=args.top_p)
    if not conversations:  # interactive chat
        history: list[dict] = []
        print("chat with the model; an empty line or Ctrl-D ends", file=sys.stderr)
        for line in sys.stdin:
            if not line.strip():
                break
            history.append({"role": "user", "content": line.rstrip("\n")})
            reply = generators[0](history, **opts)
            history.append({"role": "assistant", "content": reply})
            print(f"assistant: {reply}", flush=True)
        return 0
    for messages in conversations:
        print(f"### prompt\n{messages[-1]['content']}")
        for name, gen in zip(models, generators):
            label = name or "smollm2-135m"
            print(f"--- {label}\n{gen(messages, **opts)}", flush=True)
        print()
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="alignline", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("train", help="train a model from a recipe: alignline train recipe.yaml key=value ...")
    p.add_argument("config", help="recipe YAML")
    p.add_argument("overrides", nargs="*", help="key=value overrides, e.g. lr=1e-4 lora.r=32 training.max_steps=10")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--proceed", action="store_true", help="train even when a data gate fails")
    p.set_defaults(func=_cmd_train)

    for name in ("generate", "chat"):
        p = sub.add_parser(name, help="try a model, checkpoint or adapter (no prompt: interactive chat)")
        p.add_argument("--model", default=None, help="model dir, checkpoint, adapter, or smollm2-135m (default)")
        p.add_argument("--compare", default=None, help="a second model to answer the same prompts, side by side")
        p.add_argument("--prompt", action="append", default=[], help="a user prompt (repeatable)")
        p.add_argument("--prompts", default=None, help="a JSONL file of prompts (messages/prompt/text records)")
        p.add_argument("--max-new-tokens", type=int, default=128)
        p.add_argument("--temperature", type=float, default=0.0, help="0: greedy")
        p.add_argument("--top-p", type=float, default=1.0)
        p.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"])
        p.set_defaults(func=_cmd_generate)

    from alignline import cli_extensions

    cli_extensions.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    # `alignline train r.yaml --quiet lr=1e-4`: overrides may follow flags
    if extra and getattr(args, "overrides", None) is not None and all("=" in e and not e.startswith("-") for e in extra):
        args.overrides += extra
    elif extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    try:
        return args.func(args) or 0
    except UserError as e:
        print(f"alignline: error: {e}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print("alignline: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
