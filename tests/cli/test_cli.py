"""The command line as a TRL or LLaMA-Factory user meets it: version, help on every flag, the recipe keys,
`config show`, and `train --dry-run`."""

from __future__ import annotations

import argparse

import pytest
import yaml

from alignline import __version__
from alignline.cli import build_parser, main


def _walk(parser: argparse.ArgumentParser, path: str = "alignline"):
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _walk(sub, f"{path} {name}")


def test_version(capsys):
    with pytest.raises(SystemExit) as e:
        main(["--version"])
    assert e.value.code == 0 and capsys.readouterr().out.strip() == f"alignline {__version__}"


def test_every_flag_and_command_has_help():
    missing = []
    for path, parser in _walk(build_parser()):
        for action in parser._actions:
            if isinstance(action, (argparse._HelpAction, argparse._VersionAction, argparse._SubParsersAction)):
                continue
            if not action.help:
                missing.append(f"{path} {'/'.join(action.option_strings) or action.dest}")
    assert not missing, f"flags without help: {missing}"


def test_train_help_lists_recipe_keys(capsys):
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    out = capsys.readouterr().out
    for key in ("lr = 0.0002", "max_length = 512", "beta = 0.1", "alignline config show"):
        assert key in out, key


def test_config_show_resolves_overrides(tmp_path, capsys, sft_recipe):
    recipe, _ = sft_recipe
    assert main(["config", "show", str(recipe), "lr=5e-5", "training.max_steps=7"]) == 0
    shown = yaml.safe_load(capsys.readouterr().out)
    assert shown["training"]["lr"] == 5e-5 and shown["training"]["max_steps"] == 7
    assert shown["dpo"]["beta"] == 0.1  # defaults filled in
    assert main(["config", "show", str(recipe), "nonsense=1"]) == 2
    assert "unknown override key 'nonsense'" in capsys.readouterr().err


def test_dry_run_prints_the_plan_and_writes_nothing(sft_recipe, capsys):
    recipe, out = sft_recipe
    assert main(["train", str(recipe), "--dry-run", "data_gates=true"]) == 0
    text = capsys.readouterr().out
    assert "plan: 4 steps" in text and "trainable of" in text and "memory (rough)" in text
    assert "data gates: passed" in text and "nothing written" in text
    assert not out.exists()
