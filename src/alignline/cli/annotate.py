"""`alignline annotate`: the annotation database from the command line (users, projects, export, import,
agreement, candidate generation). The web app adds `annotate serve` through `PLUGINS`.

Every subcommand takes `--db URL` (default $ALIGNLINE_DB, else ./alignline-annotate.db). `export NAME --out
pairs.jsonl` writes the preference pairs there and the SFT records made from edited answers beside it,
in `pairs.sft.jsonl` (always written, empty when nobody edited). `export NAME --labels --out labels.jsonl`
writes every label instead, one row each ({item_id, external_id, annotator, answer, scores, rationale, edit,
time, gold, adjudication, prompt, responses, ...}; see `annotate.results.label_rows`), for teams that aggregate
themselves. Every file is written to a temporary name and renamed into place.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from alignline.annotate.db import add_db_flag  # shared with `annotate serve` (annotate/web/cli.py)
from alignline.errors import DataError, UserError
from alignline.registry import LazyTable

KINDS = ("pairwise", "ranking", "best_worst", "rating")  # = models.KINDS, without importing SQLAlchemy to parse
# `alignline annotate` subcommands defined elsewhere: name -> "module:function" (`alignline/registry.py`),
# the function taking the subparsers object (like `register` below) and calling `add_db_flag` on its parser.
PLUGINS = LazyTable(
    {
        "serve": "alignline.annotate.web.cli:register",  # the web app
        "simulate": "alignline.cli.annotate_simulate:register_simulate",  # active learning
        "prioritize": "alignline.cli.annotate_simulate:register_prioritize",
    }
)


def open_store(args):
    from alignline.annotate.store import Store, resolve_db_url

    return Store(resolve_db_url(args.db))


def read_file_records(path: str) -> tuple[list, list[str]]:
    from alignline.data.sources import read_records

    located = list(read_records(path))
    if not located:
        raise DataError(path, "has no records")
    return [r for _, r in located], [loc for loc, _ in located]


def read_password(path: str) -> str:
    try:
        return Path(path).read_text(encoding="utf-8").rstrip("\r\n")
    except (OSError, UnicodeDecodeError) as e:
        reason = getattr(e, "strerror", None) or "not UTF-8 text"
        raise UserError(f"{path}: cannot read the password file ({reason})") from None


def cmd_user_add(args) -> int:
    user = open_store(args).add_user(args.name, args.role, read_password(args.password_file))
    print(f"added {user['role']} {user['name']} (id {user['id']})")
    return 0


def cmd_user_list(args) -> int:
    for u in open_store(args).users():
        print(f"{u['id']}\t{u['name']}\t{u['role']}" + ("\tdisabled" if u.get("disabled") else ""))
    return 0


def cmd_user_disable(args) -> int:
    ended = open_store(args).disable_user(args.name)
    print(f"disabled {args.name}: no login; {ended} session(s) ended")
    return 0


def cmd_user_enable(args) -> int:
    open_store(args).enable_user(args.name)
    print(f"enabled {args.name}")
    return 0


def cmd_user_password(args) -> int:
    password = read_password(args.password_file)  # read before the database is opened: a bad file changes nothing
    ended = open_store(args).set_password(args.name, password)
    print(f"changed the password of {args.name}; {ended} session(s) ended")
    return 0


def cmd_project_create(args) -> int:
    from alignline.annotate.tasks import check_items, load_rubric

    rubric = load_rubric(args.rubric) if args.rubric else None
    records, where = read_file_records(args.items)
    check_items(records, args.kind, args.items, locations=where)  # errors name the file's own lines
    gold = []
    if args.gold:
        gold, gold_where = read_file_records(args.gold)
        check_items(gold, args.kind, args.gold, gold=True, locations=gold_where)
    p = open_store(args).create_project(
        args.name,
        records,
        kind=args.kind,
        rubric=rubric,
        assign=args.assign,
        gold=gold,
        min_annotations=args.min_annotations,
        source=args.items,
        gold_source=args.gold or "gold",
    )
    assigned = f", assigned to {', '.join(args.assign)}" if args.assign else " (admins only: --assign USER ...)"
    print(
        f"created {p['kind']} project {p['name']}: {p['items']} items ({len(gold)} gold), "
        f"{p['min_annotations']} annotation(s) each{assigned}"
    )
    return 0


def cmd_project_list(args) -> int:
    for p in open_store(args).project_summaries():
        print(f"{p['name']}\t{p['kind']}\t{p['items']} items\t{p['labels']} labels\t{p['complete']} complete")
    return 0


def cmd_project_assign(args) -> int:
    open_store(args).assign(args.name, args.users)
    print(f"assigned {', '.join(args.users)} to {args.name}")
    return 0


def sft_path(out: str) -> Path:
    p = Path(out)
    return p.with_name(f"{p.name[: -len(p.suffix)] if p.suffix else p.name}.sft.jsonl")


def cmd_export(args) -> int:
    from alignline.io import RECORD_FORMATS, write_records

    out = Path(args.out)
    if not args.out or out.suffix not in RECORD_FORMATS:  # checked before the database work, not after
        raise UserError(f"--out {args.out!r}: name a records file ({', '.join(RECORD_FORMATS)})")
    if out.is_dir():
        raise UserError(f"--out {args.out}: is a directory; name a file in it")
    if args.labels:
        return export_labels(args)
    records, counts = open_store(args).export_with_counts(args.name)
    strip = [{k: v for k, v in r.items() if k != "kind"} for r in records]
    pairs = [r for r, full in zip(strip, records) if full["kind"] == "preference"]
    sft = [r for r, full in zip(strip, records) if full["kind"] == "sft"]
    try:
        write_records(args.out, pairs)
        write_records(sft_path(args.out), sft)
    except OSError as e:
        raise UserError(f"--out {args.out}: cannot write ({e.strerror or e})") from None
    skipped = {k: v for k, v in counts.items() if k not in ("pairs", "sft", "corrections")}
    print(
        f"wrote {len(pairs)} preference pairs to {args.out} and {len(sft)} SFT records to {sft_path(args.out)}"
        + (f"; left out: {', '.join(f'{v} {k}' for k, v in sorted(skipped.items()))}" if skipped else "")
    )
    return 0


def export_labels(args) -> int:
    from alignline.io import write_records

    rows = open_store(args).label_rows(args.name)
    try:
        write_records(args.out, rows)  # a temporary file renamed into place: never half a file
    except OSError as e:
        raise UserError(f"--out {args.out}: cannot write ({e.strerror or e})") from None
    items = len({r["item_id"] for r in rows})
    print(f"wrote {len(rows)} labels of {items} items to {args.out}")
    return 0


def cmd_import(args) -> int:
    records, _ = read_file_records(args.pairs)
    n = open_store(args).import_pairs(args.name, records, source=args.pairs)
    print(f"imported {n} pairs from {args.pairs} into {args.name} (blinded, to be labelled)")
    return 0


def fmt(x, digits: int = 3) -> str:
    return "-" if x is None else f"{x:.{digits}f}"


def cmd_agreement(args) -> int:
    a = open_store(args).agreement(args.name)
    if args.json:
        print(json.dumps(a, indent=2, default=str))
        return 0
    print(
        f"project {a['project']} ({a['kind']}): {a['items']} items ({a['gold_items']} gold), {a['labels']} labels, "
        f"{a['complete']} with enough annotations"
    )
    print(
        f"krippendorff alpha {fmt(a['krippendorff'])}   fleiss kappa {fmt(a['fleiss'])} "
        f"({a['fleiss_items']} items)   cohen kappa {fmt(a['cohen'])} (mean of {len(a['cohen_pairs'])} pairs)"
    )
    print(
        f"gold accuracy {fmt(a['gold_accuracy'])} ({a['gold_labels']} gold labels)   "
        f"disagreements queued {a['disagreements']}   adjudicated {a['adjudicated']}"
    )
    if a["annotators"]:
        width = max(9, *(len(x["name"]) for x in a["annotators"]))
        print(f"{'annotator':<{width}}  labels  cohen   majority  gold")
        for x in a["annotators"]:
            gold = f"{fmt(x['gold_accuracy'], 2)} ({x['gold_items']})" if x["gold_items"] else "-"
            print(
                f"{x['name']:<{width}}  {x['labels']:>6}  {fmt(x['cohen']):>6}  {fmt(x['agrees_with_majority']):>8}"
                f"  {gold}"
            )
    return 0


def cmd_disagreements(args) -> int:
    queue = open_store(args).disagreements(args.name, min_share=args.min_share)
    if args.json:
        print(json.dumps(queue, indent=2, default=str))
        return 0
    for d in queue:
        votes = ", ".join(f"{lab['user']}={json.dumps(lab['choice'])}" for lab in d["labels"])
        print(f"item {d['id']}\tshare {d['share']:.2f}\t{votes}")
    print(f"{len(queue)} item(s) to adjudicate", file=sys.stderr)
    return 0


def cmd_generate(args) -> int:
    from alignline.annotate.candidates import candidate_items
    from alignline.io import write_records
    from alignline.models.named_adapters import BASE, parse_adapter_flags
    from alignline.rollout.engine import load_engine
    from alignline.rollout.generator import prompts_from_file
    from alignline.rollout.types import SamplingParams

    prompts = prompts_from_file(args.prompts)
    if not prompts:
        raise DataError(args.prompts, "has no prompts")
    adapters = parse_adapter_flags(args.adapter)
    sources = []
    for i, model in enumerate(args.model):
        engine = load_engine(model, backend=args.backend, dtype=args.dtype, adapters=adapters if i == 0 else None)
        sources.append((model, engine, BASE if (i == 0 and adapters) else None))
        if i == 0:
            sources += [(f"{model}+{name}", engine, name) for name in adapters]
    n = args.n if args.n is not None else (2 if len(sources) == 1 else 1)
    if n < 1:
        raise UserError(f"--n must be at least 1, got {n}")
    if len(sources) * n < 2:
        raise UserError("one model answering once gives one candidate: use --n 2 or another --model")
    params = SamplingParams(
        max_new_tokens=args.max_new_tokens, temperature=args.temperature, top_p=args.top_p, seed=args.seed
    )
    items, skipped = candidate_items(prompts, sources, n, params, seed=args.seed, progress=not args.quiet)
    write_records(args.out, items)
    print(
        f"wrote {len(items)} items with {len(sources) * n} candidates each (at most) to {args.out}"
        + (f"; {skipped} prompt(s) skipped: fewer than two distinct answers" if skipped else "")
    )
    return 0


def register(subparsers) -> None:
    top = subparsers.add_parser(
        "annotate",
        help="annotation projects: users, items, agreement, export, import",
        description="The annotation database behind `alignline annotate serve`: users, "
        "projects, gold items, agreement, export to preference/SFT data.",
    )
    sub = top.add_subparsers(dest="annotate_command", required=True, metavar="SUBCOMMAND")

    user = sub.add_parser("user", help="accounts: add, list, disable, enable, password")
    usub = user.add_subparsers(dest="user_command", required=True)
    p = usub.add_parser("add", help="add an annotator or admin")
    p.add_argument("name", help="the login name")
    p.add_argument("--role", required=True, choices=["annotator", "admin"], help="admins see every project")
    p.add_argument("--password-file", required=True, metavar="F", help="a file holding the password (8+ chars)")
    add_db_flag(p)
    p.set_defaults(func=cmd_user_add)
    p = usub.add_parser("list", help="list the accounts")
    add_db_flag(p)
    p.set_defaults(func=cmd_user_list)
    p = usub.add_parser("disable", help="no login, and every session of the account ends at once")
    p.add_argument("name", help="the login name")
    add_db_flag(p)
    p.set_defaults(func=cmd_user_disable)
    p = usub.add_parser("enable", help="allow a disabled account to sign in again")
    p.add_argument("name", help="the login name")
    add_db_flag(p)
    p.set_defaults(func=cmd_user_enable)
    p = usub.add_parser("password", help="set a new password; the account's sessions end")
    p.add_argument("name", help="the login name")
    p.add_argument("--password-file", required=True, metavar="F", help="a file holding the password (8+ chars)")
    add_db_flag(p)
    p.set_defaults(func=cmd_user_password)

    project = sub.add_parser("project", help="projects: create, list, assign")
    psub = project.add_subparsers(dest="project_command", required=True)
    p = psub.add_parser("create", help="a project from an items file (JSONL of {id?, prompt, responses, ...})")
    p.add_argument("name", help="the project's name")
    p.add_argument("--items", required=True, metavar="FILE.jsonl", help="{id?, prompt, responses: [a, b, ...]}")
    p.add_argument(
        "--rubric",
        default=None,
        metavar="R.yaml",
        help="criteria [{name, description, scale: [1, 5]}] and instructions",
    )
    p.add_argument("--kind", default="pairwise", choices=KINDS, help="the task (default: pairwise, with tie)")
    p.add_argument("--assign", nargs="+", action="extend", default=[], metavar="USER", help="annotators to assign")
    p.add_argument("--gold", default=None, metavar="FILE.jsonl", help="gold items: item records with an 'answer'")
    p.add_argument("--min-annotations", type=int, default=1, metavar="K", help="labels wanted per item")
    add_db_flag(p)
    p.set_defaults(func=cmd_project_create)
    p = psub.add_parser("list", help="projects with their progress")
    add_db_flag(p)
    p.set_defaults(func=cmd_project_list)
    p = psub.add_parser("assign", help="assign annotators to a project")
    p.add_argument("name", help="the project")
    p.add_argument("users", nargs="+", metavar="USER", help="annotators to assign")
    add_db_flag(p)
    p.set_defaults(func=cmd_project_assign)

    p = sub.add_parser("export", help="preference pairs (and SFT records from edits) with confidence and lineage")
    p.add_argument("name", help="the project")
    p.add_argument("--out", required=True, metavar="pairs.jsonl", help="pairs; SFT records go to <stem>.sft.jsonl")
    p.add_argument(
        "--labels",
        action="store_true",
        help="write every label instead, one row each (item, annotator, answer, time, rationale), "
        "for aggregating yourself",
    )
    add_db_flag(p)
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("import", help="existing preference pairs as pairwise items to label (blinded)")
    p.add_argument("name", help="the project")
    p.add_argument("--pairs", required=True, metavar="FILE.jsonl", help="chosen/rejected records, any known format")
    add_db_flag(p)
    p.set_defaults(func=cmd_import)

    p = sub.add_parser("agreement", help="Cohen/Fleiss/Krippendorff, per annotator, gold accuracy")
    p.add_argument("name", help="the project")
    p.add_argument("--json", action="store_true", help="the full report as JSON")
    add_db_flag(p)
    p.set_defaults(func=cmd_agreement)

    p = sub.add_parser("disagreements", help="items queued for adjudication")
    p.add_argument("name", help="the project")
    p.add_argument("--min-share", type=float, default=0.5, help="queued unless the top answer holds more than this")
    p.add_argument("--json", action="store_true", help="as JSON")
    add_db_flag(p)
    p.set_defaults(func=cmd_disagreements)

    p = sub.add_parser("generate", help="candidate items: each prompt answered by one or more models, shuffled")
    p.add_argument("--prompts", required=True, metavar="FILE", help="prompts (messages/prompt/text records)")
    p.add_argument("--model", required=True, action="append", metavar="M", help="a model (repeatable)")
    p.add_argument(
        "--adapter",
        action="append",
        default=[],
        metavar="NAME=PATH",
        help="an adapter on the first --model; each answers as one more candidate source",
    )
    p.add_argument("--out", required=True, metavar="items.jsonl", help="the items file to write")
    p.add_argument("--n", type=int, default=None, help="answers per model (default: 2 with one model, else 1)")
    p.add_argument("--max-new-tokens", type=int, default=256, help="longest answer, in tokens")
    p.add_argument("--temperature", type=float, default=0.8, help="sampling temperature (0: greedy)")
    p.add_argument("--top-p", type=float, default=0.95, help="nucleus sampling")
    p.add_argument("--seed", type=int, default=0, help="sampling seed")
    p.add_argument("--backend", default="auto", choices=["auto", "hf", "vllm"], help="generation engine")
    p.add_argument(
        "--dtype",
        default="auto",
        choices=["auto", "float32", "bfloat16"],
        help="model dtype (auto: bfloat16 where the GPU or CPU has it, else float32)",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    add_db_flag(p)
    p.set_defaults(func=cmd_generate)

    for name in PLUGINS:
        PLUGINS[name](sub)
