"""`alignline generate` and `alignline chat`: try a model, checkpoint or adapter on prompts, or talk to it."""

from __future__ import annotations

import sys


def run(args) -> int:
    from alignline.errors import UserError
    from alignline.models.named_adapters import parse_adapter_flags
    from alignline.rollout.generator import Generator, prompts_from_file

    conversations = [[{"role": "user", "content": p}] for p in args.prompt]
    if args.prompts:
        conversations += prompts_from_file(args.prompts)
    named = parse_adapter_flags(args.adapter)
    first = Generator(args.model, args.dtype, adapters=named, use=args.use, backend=args.backend)
    # (label, generator, adapter): with several adapters and no --use, each answers in turn
    answerers = (
        [(name, first, name) for name in (named if args.use is None else [args.use])]
        if named
        else [(args.model or "smollm2-135m", first, None)]
    )
    if args.compare:
        answerers.append((args.compare, Generator(args.compare, args.dtype, backend=args.backend), None))
    opts = dict(max_new_tokens=args.max_new_tokens, temperature=args.temperature, top_p=args.top_p)
    if not conversations:  # interactive chat
        history: list[dict] = []
        print("chat with the model; an empty line or Ctrl-D ends", file=sys.stderr)
        for line in sys.stdin:
            if not line.strip():
                break
            if named and line.startswith("/use "):  # switch adapters mid-conversation
                try:
                    first.use(line[len("/use ") :].strip())
                    print(f"using {first.active}", file=sys.stderr)
                except UserError as e:
                    print(e, file=sys.stderr)
                continue
            history.append({"role": "user", "content": line.rstrip("\n")})
            reply = first(history, **opts)
            history.append({"role": "assistant", "content": reply})
            print(f"assistant: {reply}", flush=True)
        return 0
    for messages in conversations:
        print(f"### prompt\n{messages[-1]['content']}")
        for label, gen, adapter in answerers:
            print(f"--- {label}\n{gen(messages, adapter=adapter, **opts)}", flush=True)
        print()
    return 0


HELP = {
    "generate": (
        "answer prompts with a model, checkpoint or adapter (--prompt, --prompts FILE; --compare for two "
        "models side by side)",
        "Answer each --prompt (or each record of --prompts FILE) with the model, and with --compare's model "
        "beside it. Without prompts it reads a conversation from standard input, like `alignline chat`.",
    ),
    "chat": (
        "talk to a model, checkpoint or adapter interactively (an empty line ends)",
        "An interactive conversation with the model: each line you type is a user turn, and the history is "
        "kept. With several --adapter, `/use NAME` switches adapter mid-conversation.",
    ),
}


def register(sub) -> None:
    for name, (short, long) in HELP.items():
        p = sub.add_parser(name, help=short, description=long)
        p.add_argument("--model", default=None, help="model dir, checkpoint, adapter, or smollm2-135m (default)")
        if name == "generate":
            p.add_argument("--compare", default=None, help="a second model to answer the same prompts, side by side")
        p.add_argument(
            "--adapter",
            action="append",
            default=[],
            metavar="NAME=PATH",
            help="an adapter trained on --model, loaded under NAME (repeatable: several on one base)",
        )
        p.add_argument(
            "--use",
            default=None,
            metavar="NAME",
            help="the adapter to answer with ('base': none; default: each in turn; chat: /use NAME)",
        )
        if name == "generate":
            p.add_argument("--prompt", action="append", default=[], help="a user prompt (repeatable)")
            p.add_argument("--prompts", default=None, help="a JSONL file of prompts (messages/prompt/text records)")
        p.add_argument("--max-new-tokens", type=int, default=128, help="the most tokens each answer may have")
        p.add_argument("--temperature", type=float, default=0.0, help="0: greedy")
        p.add_argument("--top-p", type=float, default=1.0, help="nucleus sampling (with --temperature > 0)")
        p.add_argument(
            "--dtype",
            default="auto",
            choices=["auto", "float32", "bfloat16"],
            help="weights dtype (auto: bfloat16 where the GPU or CPU has it, else float32)",
        )
        p.add_argument(
            "--backend",
            default="auto" if name == "generate" else "hf",
            choices=["auto", "hf", "vllm"],
            help="generation engine (auto: vLLM where installed, else Hugging Face; chat: hf, which starts faster)",
        )
        if name == "chat":
            p.set_defaults(compare=None, prompt=[], prompts=None)
        p.set_defaults(func=run)
