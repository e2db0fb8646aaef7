"""The small import cycles stay broken (issue 18): no module of evals, serve, the model wrappers and their
fast path, the generation engine or `io` is in an import cycle, counting imports inside functions too (a
call-time import only hides a cycle). Each was broken by pulling the shared piece into its own module:
`evals/metrics.py`, `models/fast/forward.py` (+ `fast/path.py`), `rollout/types.py` + `rollout/hf.py`,
`serve/protocol.py`; and `io` imports nothing of alignline."""

import ast
from pathlib import Path

import alignline

ROOT = Path(alignline.__file__).parent
COVERED = (
    "alignline.evals",
    "alignline.serve",
    "alignline.models.fast",
    "alignline.models.logprob_model",
    "alignline.models.reward_model",
    "alignline.models.peft_unwrap",
    "alignline.rollout.types",
    "alignline.rollout.hf",
    "alignline.rollout.engine",
    "alignline.rollout.vllm",
    "alignline.rollout.generator",
    "alignline.io",
)


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path, known: set[str]) -> set[str]:
    """alignline modules `path` imports anywhere in it (module level or inside a function)."""
    out = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").startswith("alignline"):
            out.add(node.module)
            out |= {f"{node.module}.{a.name}" for a in node.names}
        elif isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
    return out & known


def import_graph() -> dict[str, set[str]]:
    paths = {module_name(p): p for p in ROOT.rglob("*.py")}
    return {m: imports(p, set(paths)) - {m} for m, p in paths.items()}


def reachable(graph: dict[str, set[str]], start: str) -> set[str]:
    seen, todo = set(), list(graph[start])
    while todo:
        m = todo.pop()
        if m not in seen:
            seen.add(m)
            todo.extend(graph[m])
    return seen


def covered(module: str) -> bool:
    return any(module == c or module.startswith(c + ".") for c in COVERED)


def test_reachable_finds_a_cycle_on_a_hand_made_graph():
    graph = {"a": {"b"}, "b": {"a"}, "c": {"a"}}
    assert "a" in reachable(graph, "a") and "c" not in reachable(graph, "c")


def test_no_covered_module_is_in_an_import_cycle():
    graph = import_graph()
    in_cycle = sorted(m for m in graph if covered(m) and m in reachable(graph, m))
    assert in_cycle == []


def test_io_imports_nothing_of_alignline():
    assert import_graph()["alignline.io"] == set()
