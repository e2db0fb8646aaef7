"""The import layering of `src/alignline`, read from the source with `ast` (nothing is imported).

Layers, lowest first; a module may import its own layer's packages or lower ones, never higher:

    0 errors, io, text,         5 methods
      registry, render
    1 config, config_checks     6 train
    2 data                      7 evals, report
    3 models, losses            8 serve, annotate, pipeline
    4 rollout, rewards          9 cli (and __main__, testing: nothing in src imports them)

Rules, each a test below:
- an import (module level or in a function) points down or across its layer, never up;
- an import under `if TYPE_CHECKING:` is for annotations only (it never runs) and is not counted;
- no cycle between packages through module-level imports (two packages of one layer may not import each other
  both ways);
- an internal import inside a function is for CLI start-up (`cli/`) only, or carries a `# lazy: reason` comment
  on its line: a function-level import may not dodge a cycle;
- heavy optional packages (vllm, bitsandbytes, playwright, ...) are imported where they are used, never at module
  level; the web stacks (fastapi, sqlalchemy, ...) only at module level inside `serve/` and `annotate/`; and the
  layers below `data` do not import torch, transformers or peft at module level (loading a recipe stays light).
Each failure lists one violation a line: `module:line imports X (layer a -> layer b)`.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "alignline"

LAYERS = {
    "errors": 0,
    "io": 0,
    "text": 0,
    "registry": 0,
    "render": 0,
    "config": 1,
    "config_checks": 1,
    "data": 2,
    "models": 3,
    "losses": 3,
    "rollout": 4,
    "rewards": 4,
    "methods": 5,
    "train": 6,
    "evals": 7,
    "report": 7,
    "runs": 7,
    "serve": 8,
    "annotate": 8,
    "pipeline": 8,
    "cli": 9,
    "__main__": 9,
    "testing": 9,
}
ROOT = "__init__"
"""`alignline/__init__.py` runs on every import of the package, so it may import only layer 0."""

LAZY_MARK = "# lazy:"
HEAVY_OPTIONAL = {
    "vllm",
    "bitsandbytes",
    "playwright",
    "deepspeed",
    "flash_attn",
    "liger_kernel",
    "lm_eval",
    "trl",
    "openai",
    "datasketch",
    "jsonschema",
}
"""Optional extras (or tools for a part of the line) that no module imports at load time."""
WEB_STACK_HOMES = {
    name: {"serve", "annotate"}
    for name in ("fastapi", "starlette", "uvicorn", "sqlalchemy", "alembic", "argon2", "jinja2", "multipart")
}
WEB_STACK_HOMES["sqlalchemy"] = {"serve", "annotate", "runs"}  # the run registry's store (runs/store.py)
"""The `annotate` / `serve` extras: imported at module level only inside the packages that need them."""
LIGHT_LAYER = 1
HEAVY_CORE = {"torch", "transformers", "peft", "accelerate", "datasets"}
"""Not imported at module level by layers up to LIGHT_LAYER: `load_config` and errors stay cheap."""


@dataclass(frozen=True)
class Import:
    module: str
    """The importing module, dotted (`alignline.train.loop`)."""
    line: int
    target: str
    """The imported module, dotted (`alignline.report.model_card`, `torch`)."""
    in_function: bool
    lazy_reason: bool
    """The statement carries a `# lazy:` comment."""

    @property
    def unit(self) -> str:
        return unit_of(self.module)

    @property
    def target_unit(self) -> str | None:
        return unit_of(self.target) if self.target.split(".")[0] == "alignline" else None

    def where(self) -> str:
        return f"{self.module}:{self.line} imports {self.target}"


def unit_of(dotted: str) -> str:
    """The top-level package or module of alignline a dotted name belongs to (`alignline.train.loop` -> train)."""
    parts = dotted.split(".")
    return parts[1] if len(parts) > 1 else ROOT


def module_name(path: Path) -> str:
    rel = path.relative_to(SRC.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__" and len(parts) > 1:
        parts = parts[:-1]
    return ".".join(parts)


def _absolute(node: ast.ImportFrom, module: str, is_package: bool) -> str:
    if not node.level:
        return node.module or ""
    base = module.split(".") if is_package else module.split(".")[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def imports_of(path: Path) -> list[Import]:
    return imports_in(path.read_text(encoding="utf-8"), module_name(path), path.name == "__init__.py")


def imports_in(source: str, module: str, is_package: bool = False) -> list[Import]:
    """Every import statement of `source` (the text of `module`), each imported name's module resolved."""
    lines = source.splitlines()
    out: list[Import] = []

    def visit(node: ast.AST, in_function: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if _is_type_checking_block(child):
                visit_orelse(child, in_function)
                continue
            nested = in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
            if isinstance(child, (ast.Import, ast.ImportFrom)):
                text = "\n".join(lines[child.lineno - 1 : child.end_lineno])
                lazy = LAZY_MARK in text
                if isinstance(child, ast.Import):
                    targets = [a.name for a in child.names]
                else:
                    base = _absolute(child, module, is_package)
                    # `from alignline import data` names a package: count it as that package.
                    targets = [f"{base}.{a.name}" for a in child.names] if base == "alignline" else [base]
                out.extend(Import(module, child.lineno, t, in_function, lazy) for t in targets)
            visit(child, nested)

    def visit_orelse(block: ast.If, in_function: bool) -> None:
        for child in block.orelse:  # `else:` of `if TYPE_CHECKING:` runs
            visit(ast.Module(body=[child], type_ignores=[]), in_function)

    visit(ast.parse(source), False)
    return out


def _is_type_checking_block(node: ast.AST) -> bool:
    """`if TYPE_CHECKING:` or `if typing.TYPE_CHECKING:`: imports for annotations only, never run."""
    if not isinstance(node, ast.If):
        return False
    test = node.test
    return (
        isinstance(test, ast.Name)
        and test.id == "TYPE_CHECKING"
        or isinstance(test, ast.Attribute)
        and test.attr == "TYPE_CHECKING"
    )


def all_imports() -> list[Import]:
    return [imp for path in sorted(SRC.rglob("*.py")) for imp in imports_of(path)]


def layer_of(unit: str) -> int:
    return 0 if unit == ROOT else LAYERS[unit]


def _report(violations: list[str], what: str) -> str:
    return f"{len(violations)} {what}:\n  " + "\n  ".join(violations)


def test_every_package_has_a_layer():
    units = {unit_of(module_name(p)) for p in SRC.rglob("*.py")} - {ROOT}
    missing = sorted(units - LAYERS.keys())
    assert not missing, f"packages without a layer (add them to LAYERS here and to docs/architecture.md): {missing}"


def layer_violations(imports: list[Import]) -> list[str]:
    out = []
    for imp in imports:
        target = imp.target_unit
        if target is None or target == imp.unit or imp.unit not in LAYERS and imp.unit != ROOT:
            continue
        if target not in LAYERS:
            continue  # reported by test_every_package_has_a_layer
        if imp.unit == ROOT and layer_of(target) > 0 or layer_of(target) > layer_of(imp.unit):
            out.append(f"{imp.where()} (layer {layer_of(imp.unit)} {imp.unit} -> layer {layer_of(target)} {target})")
    return out


def test_imports_point_down_the_layers():
    violations = layer_violations(all_imports())
    assert not violations, _report(violations, "imports point up the layers")


def package_cycles(imports: list[Import]) -> list[str]:
    """Strongly connected groups of packages through module-level imports. Each is reported by the imports in it
    that do not point down a layer (across or up): one of those closes the cycle, and the fix is there."""
    edges: dict[str, dict[str, list[Import]]] = defaultdict(lambda: defaultdict(list))
    for imp in imports:
        target = imp.target_unit
        if not imp.in_function and target is not None and target != imp.unit:
            edges[imp.unit][target].append(imp)
    out = []
    for group in _strongly_connected(edges):
        if len(group) < 2:
            continue
        inside = [
            imp
            for a in sorted(group)
            for b in sorted(group)
            for imp in edges[a].get(b, [])
            if layer_of(b) >= layer_of(a)
        ]
        for imp in inside:
            out.append(
                f"{imp.where()} (layer {layer_of(imp.unit)} {imp.unit} -> layer {layer_of(imp.target_unit)} "
                f"{imp.target_unit}; cycle {' <-> '.join(sorted(group))})"
            )
    return out


def _strongly_connected(edges: dict[str, dict[str, list]]) -> list[set[str]]:
    """Tarjan's algorithm on the package graph (a few dozen nodes: recursion is fine)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[set[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in edges.get(node, {}):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = set()
            while True:
                top = stack.pop()
                on_stack.discard(top)
                group.add(top)
                if top == node:
                    break
            groups.append(group)

    for node in list(edges):
        if node not in index:
            visit(node)
    return groups


def test_no_cycle_between_packages():
    violations = package_cycles(all_imports())
    assert not violations, _report(violations, "module-level imports close a cycle between packages")


def unexplained_function_imports(imports: list[Import]) -> list[str]:
    return [
        f"{imp.where()} inside a function without a '{LAZY_MARK} reason' comment "
        f"(layer {layer_of(imp.unit)} {imp.unit} -> layer {layer_of(imp.target_unit)} {imp.target_unit})"
        for imp in imports
        if imp.in_function and imp.target_unit is not None and imp.unit != "cli" and not imp.lazy_reason
    ]


def test_internal_imports_in_functions_say_why():
    violations = unexplained_function_imports(all_imports())
    assert not violations, _report(violations, "internal imports inside functions with no reason given")


def heavy_module_level_imports(imports: list[Import]) -> list[str]:
    out = []
    for imp in imports:
        if imp.in_function or imp.target_unit is not None:
            continue
        top = imp.target.split(".")[0]
        if top in HEAVY_OPTIONAL:
            out.append(
                f"{imp.where()} at module level (heavy optional package: import it where it is used, "
                f"with a '{LAZY_MARK} reason' comment)"
            )
        elif top in WEB_STACK_HOMES and imp.unit not in WEB_STACK_HOMES[top]:
            out.append(f"{imp.where()} at module level outside {' and '.join(sorted(WEB_STACK_HOMES[top]))}")
        elif top in HEAVY_CORE and layer_of(imp.unit) <= LIGHT_LAYER:
            out.append(
                f"{imp.where()} at module level (layer {layer_of(imp.unit)} {imp.unit} stays free of "
                f"{top}: loading a recipe must not load it)"
            )
    return out


def test_heavy_packages_load_lazily():
    violations = heavy_module_level_imports(all_imports())
    assert not violations, _report(violations, "heavy imports at module level")


def test_the_checks_see_what_they_should():
    """The rules on a module written for the purpose: an upward import, a lazy one with and without a reason,
    a relative import, a heavy optional package at module level."""
    found = imports_in(
        "import vllm\n"
        "from alignline.report.run import write_run_report\n"
        "from ..data import dataset\n"
        "from . import loop\n"
        "def f():\n"
        "    from alignline.methods import get_method\n"
        "    from alignline.evals.suites import load_suite  # lazy: the suites load a tokenizer\n",
        "alignline.train._layering_probe",
    )
    layer = layer_violations(found)
    assert layer == [
        "alignline.train._layering_probe:2 imports alignline.report.run (layer 6 train -> layer 7 report)",
        "alignline.train._layering_probe:7 imports alignline.evals.suites (layer 6 train -> layer 7 evals)",
    ]
    assert [i.target for i in found][2:4] == ["alignline.data", "alignline.train"]
    lazy = unexplained_function_imports(found)
    assert len(lazy) == 1 and lazy[0].startswith("alignline.train._layering_probe:6 imports alignline.methods")
    assert heavy_module_level_imports(found)[0].startswith("alignline.train._layering_probe:1 imports vllm")


def test_a_cycle_between_two_packages_is_found():
    """A cycle is reported by its imports that do not point down (the one to fix); the down import that
    it closes through (rewards -> data, allowed on its own) is not listed."""
    imports = [
        Import("alignline.data.canary", 3, "alignline.rewards.graders", False, False),
        Import("alignline.rewards.text", 9, "alignline.data.formats", False, False),
        Import("alignline.rewards.text", 12, "alignline.io", False, False),
    ]
    cycles = package_cycles(imports)
    assert cycles == [
        "alignline.data.canary:3 imports alignline.rewards.graders (layer 2 data -> layer 4 rewards; "
        "cycle data <-> rewards)"
    ]


def test_a_cycle_within_one_layer_lists_both_imports():
    imports = [
        Import("alignline.models.loading", 3, "alignline.losses.dpo", False, False),
        Import("alignline.losses.dpo", 9, "alignline.models.loading", False, False),
    ]
    assert package_cycles(imports) == [
        "alignline.losses.dpo:9 imports alignline.models.loading (layer 3 losses -> layer 3 models; "
        "cycle losses <-> models)",
        "alignline.models.loading:3 imports alignline.losses.dpo (layer 3 models -> layer 3 losses; "
        "cycle losses <-> models)",
    ]


def test_imports_for_annotations_only_are_not_counted():
    found = imports_in(
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n"
        "    from alignline.methods import Method\n"
        "else:\n"
        "    from alignline.train import loop\n"
        "import typing\n"
        "if typing.TYPE_CHECKING:\n"
        "    from alignline.evals import results\n",
        "alignline.config_probe",
    )
    assert [i.target for i in found] == ["typing", "alignline.train", "typing"]
