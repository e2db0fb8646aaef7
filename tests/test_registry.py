"""The one registry style (`alignline/registry.py`): name -> "module:object" tables, imported on first lookup."""

from __future__ import annotations

import subprocess
import sys

import pytest

from alignline.cli import COMMANDS
from alignline.cli.annotate import PLUGINS
from alignline.data.formats import Message
from alignline.errors import ConfigError
from alignline.evals.suites import KINDS
from alignline.methods import EPISODES, METHODS
from alignline.registry import LazyTable, load_user_object
from alignline.rewards.registry import GRADERS, VALIDATORS
from alignline.rollout.env import ENVIRONMENTS
from alignline.text import last_user_turn

TABLES = {
    "METHODS": METHODS,
    "EPISODES": EPISODES,
    "GRADERS": GRADERS,
    "VALIDATORS": VALIDATORS,
    "KINDS": KINDS,
    "ENVIRONMENTS": ENVIRONMENTS,
    "COMMANDS": COMMANDS,
    "PLUGINS": PLUGINS,
}


@pytest.mark.parametrize("table", TABLES)
def test_every_table_line_names_a_callable(table):
    entries = TABLES[table]
    assert isinstance(entries, LazyTable) and len(entries) > 0
    for name in entries:
        assert callable(entries[name]) or table == "KINDS", f"{table}[{name!r}] -> {entries.targets[name]}"
    if table == "KINDS":
        assert all(entries[name].name == name for name in entries)


def test_names_are_read_without_importing_the_entries():
    code = (
        "import sys; from alignline.rewards.registry import GRADERS; from alignline.methods import METHODS; "
        "assert 'exact_match' in GRADERS and 'grpo' in METHODS and 'nope' not in GRADERS; "
        "print(sorted(m for m in sys.modules if m.startswith(('alignline.rewards.', 'alignline.methods.'))), "
        "'torch' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["['alignline.rewards.registry']", "False"]


def test_a_lookup_imports_once_and_keeps_the_object():
    table = LazyTable({"join": "os.path:join"})
    assert "join" in table and "split" not in table and list(table) == ["join"]
    import os.path

    assert table["join"] is os.path.join is table["join"]
    table.add("split", "os.path:split")
    assert sorted(table) == ["join", "split"] and table["split"] is os.path.split
    with pytest.raises(KeyError):
        table["nope"]


def test_a_user_object_from_a_file_or_module_and_its_errors(tmp_path):
    f = tmp_path / "mine.py"
    f.write_text("def score(prompts, completions, **kw):\n    return [1.0] * len(completions)\n")
    assert load_user_object(f"{f}:score", "grader")(None, ["a"]) == [1.0]
    assert load_user_object("os.path:join", "grader") is __import__("os").path.join
    with pytest.raises(
        ConfigError,
        match=r"^grader 'x': not a registered grader \(a, b\) and not of the "
        r"form file.py:function or module:function$",
    ):
        load_user_object("x", "grader", known={"b": 1, "a": 2})
    with pytest.raises(ConfigError, match=r"has no class 'nope'$"):
        load_user_object(f"{f}:nope", "environment", "class")
    with pytest.raises(ConfigError, match=r"no such file"):
        load_user_object(f"{tmp_path / 'missing.py'}:f", "grader")


def test_last_user_turn_of_strings_dicts_and_messages():
    assert last_user_turn("Hi") == "Hi"
    assert (
        last_user_turn(
            [
                {"role": "system", "content": "s"},
                {"role": "user", "content": "q1"},
                {"role": "assistant", "content": "a"},
                {"role": "user", "content": "q2"},
            ]
        )
        == "q2"
    )
    assert last_user_turn([Message("system", "s"), Message("user", "q")]) == "q"
    assert last_user_turn([{"role": "system", "content": "s"}]) == ""
