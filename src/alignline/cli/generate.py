"""`alignline generate` and `alignline chat`: try a model, checkpoint or adapter on prompts, or talk to it."""

from __future__ import annotations

import sys


def run(args) -> int:
    from alignline.rollout.generator import Generator, prompts_from_file

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


def register(sub) -> None:
    for name in ("generate", "chat"):
        p = sub.add_parser(name, help="try a model, checkpoint or adapter (no prompt: interactive chat)")
        p.add_argument("--model", default=None, help="model dir, checkpoint, adapter, or smollm2-135m (default)")
        p.add_argument("--compare", default=None, help="a second model to answer the same prompts, side by side")
        p.add_argument("--prompt", action="append", default=[], help="a user prompt (repeatable)")
        p.add_argument("--prompts", default=None, help="a JSONL file of prompts (messages/prompt/text records)")
        p.add_argument("--max-new-tokens", type=int, default=128, help="the most tokens each answer may have")
        p.add_argument("--temperature", type=float, default=0.0, help="0: greedy")
        p.add_argument("--top-p", type=float, default=1.0, help="nucleus sampling (with --temperature > 0)")
        p.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"], help="weights dtype")
        p.set_defaults(func=run)
