"""Active learning from the command line. `alignline annotate simulate`: would it have saved labels on these
labelled pairs? `alignline annotate prioritize NAME`: serve a project's unlabelled items in its order.

Registered under `alignline annotate` through `cli/annotate.py`'s `PLUGINS`, which calls `register_simulate(sub)` and
`register_prioritize(sub)`.
"""

from __future__ import annotations

from alignline.errors import ConfigError


def register_simulate(sub) -> None:
    from alignline.cli.annotate import add_db_flag

    p = sub.add_parser(
        "simulate",
        help="simulate active learning on labelled pairs: accuracy per label spent, "
        "random vs reward-model uncertainty vs DPO margin",
    )
    p.add_argument("--pairs", required=True, help="labelled preference pairs (prompt/chosen/rejected JSONL): the pool")
    p.add_argument(
        "--test", help="labelled pairs to measure accuracy on (default: a seeded --test-fraction of --pairs)"
    )
    p.add_argument("--test-fraction", type=float, default=0.25, help="share of --pairs held out when no --test")
    p.add_argument("--model", default=None, help="the frozen base model (default: the embedded smollm2-135m)")
    p.add_argument(
        "--strategy",
        default="random,uncertainty,margin",
        help="comma-separated: random, uncertainty, margin (default: all three)",
    )
    p.add_argument("--rounds", type=int, default=15, help="annotation rounds after the seed set (default 15)")
    p.add_argument("--batch", type=int, default=8, help="pairs annotated per round (default 8)")
    p.add_argument("--seed-size", type=int, default=None, help="random pairs labelled first (default: --batch)")
    p.add_argument("--seeds", type=int, default=5, help="repeats with different seed sets (default 5)")
    p.add_argument("--beta", type=float, default=0.1, help="DPO beta of the margin strategy (default 0.1)")
    p.add_argument("--l2", type=float, default=0.1, help="L2 strength of both learners' fits (default 0.1)")
    p.add_argument("--max-length", type=int, default=512, help="tokens per sequence (default 512)")
    p.add_argument(
        "--group-by",
        default="category",
        metavar="FIELD",
        help="a record field to break the results down by (default: category; '' for none)",
    )
    p.add_argument("--out", required=True, help="directory for active_learning.json and active_learning.html")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    add_db_flag(p)  # the contract: every annotate command takes --db (the simulation itself reads files only)
    p.set_defaults(func=_cmd_simulate)


def _cmd_simulate(args) -> int:
    from alignline.annotate.active import STRATEGIES

    strategies = [s.strip() for s in args.strategy.split(",") if s.strip()]
    unknown = [s for s in strategies if s not in STRATEGIES]
    if unknown or not strategies:
        raise ConfigError(f"--strategy {args.strategy}: expected a comma-separated list of {', '.join(STRATEGIES)}")
    for flag, value, low in (
        ("--rounds", args.rounds, 1),
        ("--batch", args.batch, 1),
        ("--seeds", args.seeds, 1),
        ("--max-length", args.max_length, 8),
    ):
        if value < low:
            raise ConfigError(f"{flag} {value}: must be at least {low}")
    if args.seed_size is not None and args.seed_size < 2:
        raise ConfigError(f"--seed-size {args.seed_size}: must be at least 2")
    if not 0 < args.test_fraction < 1:
        raise ConfigError(f"--test-fraction {args.test_fraction}: must be between 0 and 1")
    if args.beta <= 0 or args.l2 <= 0:
        raise ConfigError("--beta and --l2 must be positive")
    from alignline.annotate.active_report import run_active_simulation

    result = run_active_simulation(
        args.pairs,
        args.test,
        args.model,
        strategies,
        args.rounds,
        args.batch,
        args.seeds,
        args.out,
        args.seed_size,
        args.test_fraction,
        args.beta,
        args.l2,
        args.max_length,
        args.group_by,
        progress=not args.quiet,
    )
    for labels, per in result["at"].items():
        line = ", ".join(f"{s} {by['mean']:.3f}" for s, by in per["rm"].items())
        print(f"{labels} labels: reward-model accuracy {line}")
    print(f"wrote {args.out}/active_learning.json and active_learning.html")
    return 0


def register_prioritize(sub) -> None:
    from alignline.cli.annotate import add_db_flag

    p = sub.add_parser(
        "prioritize",
        help="serve a project's unlabelled pairwise items in active-learning order "
        "(reward-model uncertainty or DPO margin first)",
    )
    p.add_argument("name", help="the project")
    p.add_argument(
        "--strategy",
        required=True,
        choices=["uncertainty", "margin", "random"],
        help="uncertainty: a reward model's P(a > b) closest to 0.5 first; margin: a DPO policy's "
        "smallest |implicit-reward margin| first; random: a seeded shuffle",
    )
    p.add_argument("--model", help="the reward model (uncertainty) or the DPO policy (margin)")
    p.add_argument("--reference", help="margin: the policy's reference model (default: the base of an adapter)")
    p.add_argument("--beta", type=float, default=0.1, help="margin: DPO beta (default 0.1; the order ignores it)")
    p.add_argument("--seed", type=int, default=0, help="random: the shuffle's seed")
    p.add_argument("--max-length", type=int, default=2048, help="tokens per sequence (default 2048)")
    add_db_flag(p)
    p.set_defaults(func=_cmd_prioritize)


def _cmd_prioritize(args) -> int:
    from alignline.annotate.active import order_by, pool_from_items, reward_scores
    from alignline.cli.annotate import open_store

    if args.strategy != "random" and not args.model:
        raise ConfigError(f"--strategy {args.strategy} needs --model")
    store = open_store(args)
    items = [
        it for it in store.items(args.name) if not it["is_gold"] and it["labels"] == 0 and len(it["responses"]) == 2
    ]
    if not items:
        print(f"{args.name}: no unlabelled pairwise items to order")
        return 0
    pool = pool_from_items([(f"item {it['id']}", it) for it in items], f"project {args.name}")
    if args.strategy == "uncertainty":
        order = order_by("uncertainty", n=len(pool), scores=reward_scores(pool, args.model, args.max_length))
    elif args.strategy == "margin":
        from alignline.annotate.active import dpo_logps

        logps = dpo_logps(pool, args.model, args.reference, args.max_length)
        order = order_by("margin", n=len(pool), logps=logps, beta=args.beta)
    else:
        order = order_by("random", n=len(pool), seed=args.seed)
    ids = [items[i]["id"] for i in order]
    store.reorder(args.name, ids)
    print(
        f"{args.name}: {len(ids)} unlabelled items reordered by {args.strategy}; first: "
        + ", ".join(str(i) for i in ids[:5])
    )
    return 0
