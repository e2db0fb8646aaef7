"""Every module of the package imports on its own, whatever was imported before it.

A module that only imports when another one was imported first (a registry that imports its entries at the
bottom of its file, a cycle closed by import order) breaks a user's `from alignline.x import y` and a test
run in a different order. The check runs in a child interpreter: for each module, every `alignline` module
is dropped from `sys.modules` and the module is imported alone. Third-party packages (torch, transformers)
stay loaded between modules, so the whole package is checked in seconds rather than the minutes of one
interpreter per module; what this catches is exactly the import-order bugs between alignline's own modules.
One real fresh interpreter per listed module backs that up for the case that once failed.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import alignline

PACKAGE_DIR = Path(alignline.__file__).parent

# Not modules one imports: alembic runs the migration scripts itself (their file names start with digits),
# and `__main__` runs the command.
NOT_IMPORTABLE = ("alignline.annotate.migrations.env", "alignline.annotate.migrations.versions.")

CHILD = r"""
import importlib, json, sys, traceback
failures = {}
for name in json.loads(sys.argv[1]):
    for loaded in [m for m in sys.modules if m == "alignline" or m.startswith("alignline.")]:
        del sys.modules[loaded]
    try:
        importlib.import_module(name)
    except BaseException as e:  # noqa: BLE001  (any failure is the finding: report it, go on)
        failures[name] = "".join(traceback.format_exception_only(type(e), e)).strip()
print(json.dumps(failures))
"""


def package_modules() -> list[str]:
    """Every module of the package, by dotted name (packages as their `__init__`)."""
    names = []
    for path in sorted(PACKAGE_DIR.rglob("*.py")):
        parts = path.relative_to(PACKAGE_DIR.parent).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        name = ".".join(parts)
        if parts[-1] != "__main__" and not name.startswith(NOT_IMPORTABLE):
            names.append(name)
    return names


def test_the_walk_finds_the_package():
    names = package_modules()
    assert "alignline.rewards.text" in names and "alignline.cli" in names and len(names) > 100


def test_every_module_imports_on_its_own():
    names = package_modules()
    done = subprocess.run([sys.executable, "-c", CHILD, json.dumps(names)], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    failures = json.loads(done.stdout.strip().splitlines()[-1])
    assert failures == {}, "\n".join(f"{name}: {error}" for name, error in failures.items())


@pytest.mark.parametrize("name", ["alignline.rewards.text", "alignline.rollout.envs.calculator"])
def test_a_grader_or_environment_module_imports_first_in_a_fresh_interpreter(name):
    done = subprocess.run([sys.executable, "-c", f"import {name}"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]


def test_the_child_catches_an_import_order_bug(tmp_path):
    """The check itself: a module that imports only after its registry was imported is reported."""
    pkg = tmp_path / "alignline_probe"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "registry.py").write_text("TABLE = {}\nfrom alignline_probe.entry import ENTRY  # noqa: E402\n")
    (pkg / "entry.py").write_text("from alignline_probe.registry import TABLE\nENTRY = TABLE['x'] = 1\n")
    child = CHILD.replace('m == "alignline" or m.startswith("alignline.")', 'm.startswith("alignline_probe")')
    done = subprocess.run(
        [sys.executable, "-c", child, json.dumps(["alignline_probe.registry", "alignline_probe.entry"])],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=120,
    )
    failures = json.loads(done.stdout.strip().splitlines()[-1])
    assert list(failures) == ["alignline_probe.entry"] and "ImportError" in failures["alignline_probe.entry"]
