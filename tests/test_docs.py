"""The docs name real things: every source, recipe, script and test path in README.md, CONTRIBUTING.md and
docs/*.md exists, and every `alignline <command>` they show is a command of the CLI (subcommands too).

`mkdocs build --strict` (in `.ci/run`) checks the links between pages; this test checks the references
to code, which mkdocs cannot see, so a renamed module or command fails here and not in a reader's shell.
"""

from __future__ import annotations

import argparse
import functools
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "src" / "alignline"
DOCS = [ROOT / "README.md", ROOT / "CONTRIBUTING.md", *sorted((ROOT / "docs").glob("*.md"))]

# A path starts a word (not the tail of a longer path) and ends at a word character.
_START = r"(?<![\w/.-])"
_ROOTED = re.compile(_START + r"((?:src/alignline|recipes|scripts|tests)/[\w/.-]*\w)")
_PACKAGES = sorted(p.name for p in PACKAGE.iterdir() if p.is_dir() and any(p.glob("*.py")))
# `methods/grpo.py`: a module named from inside the package, as the docs often do.
_IN_PACKAGE = re.compile(_START + r"((?:" + "|".join(map(re.escape, _PACKAGES)) + r")/[\w/]*\w\.py)\b")
_FENCE = re.compile(r"^```.*?^```", re.M | re.S)
_INLINE = re.compile(r"`([^`\n]+)`")
# `alignline data check ...`, `.venv/bin/alignline train ...`; not `alignline.cli`, not `alignline:`.
_COMMAND = re.compile(r"(?:^|(?<=[\s/(\"']))alignline((?:[ \t]+[a-z][\w-]*)+)", re.M)
_LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")


def _doc_id(path: Path) -> str:
    return str(path.relative_to(ROOT))


def _texts() -> list[tuple[Path, str]]:
    return [(p, p.read_text(encoding="utf-8")) for p in DOCS if p.exists()]


def _code(text: str) -> list[str]:
    """The code a page shows: fenced blocks and inline spans (commands in prose are not commands)."""
    blocks = _FENCE.findall(text)
    rest = _FENCE.sub("", text)
    return blocks + _INLINE.findall(rest)


def _subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:  # argparse keeps its subparsers only here
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


@functools.cache
def _parser() -> argparse.ArgumentParser:
    from alignline.cli import build_parser

    return build_parser()


def _unknown_command(words: list[str]) -> str | None:
    """The first word of `alignline w1 w2 ...` that is not a (sub)command where one is expected, or None."""
    parser = _parser()
    for depth, word in enumerate(words):
        choices = _subcommands(parser)
        if not choices:
            return None  # the command takes arguments from here on
        if word not in choices:
            # a command with optional subcommands (`alignline serve --model`) never reaches here: words are bare
            return word if depth == 0 or not _optional_subcommand(parser) else None
        parser = choices[word]
    return None


def _optional_subcommand(parser: argparse.ArgumentParser) -> bool:
    return any(isinstance(a, argparse._SubParsersAction) and not a.required for a in parser._actions)


def _paths(pattern: re.Pattern, text: str) -> set[str]:
    """The paths `pattern` finds, less templates such as `tests/methods/test_<name>.py`."""
    return {m.group(1) for m in pattern.finditer(text) if not text.startswith("<", m.end())}


def test_the_docs_exist():
    assert (ROOT / "README.md").exists() and (ROOT / "CONTRIBUTING.md").exists()
    assert (ROOT / "docs" / "architecture.md").exists()


@pytest.mark.parametrize("doc", DOCS, ids=_doc_id)
def test_every_path_named_exists(doc: Path):
    text = doc.read_text(encoding="utf-8")
    rooted = _paths(_ROOTED, text)
    in_package = _paths(_IN_PACKAGE, text)
    missing = sorted(p for p in rooted if not (ROOT / p).exists())
    missing += sorted(p for p in in_package if not (PACKAGE / p).exists())
    assert not missing, f"{_doc_id(doc)} names paths that do not exist: {missing}"


@pytest.mark.parametrize("doc", DOCS, ids=_doc_id)
def test_every_command_shown_exists(doc: Path):
    unknown = set()
    for code in _code(doc.read_text(encoding="utf-8")):
        for match in _COMMAND.finditer(code):
            words = match.group(1).split()
            bad = _unknown_command(words)
            if bad is not None:
                unknown.add(f"alignline {' '.join(words[: words.index(bad) + 1])}")
    assert not unknown, f"{_doc_id(doc)} shows commands the CLI does not have: {sorted(unknown)}"


@pytest.mark.parametrize("doc", [ROOT / "README.md", ROOT / "CONTRIBUTING.md"], ids=_doc_id)
def test_relative_links_of_root_pages_resolve(doc: Path):
    """docs/ links are mkdocs' to check; the two pages outside it are checked here."""
    targets = _LINK.findall(doc.read_text(encoding="utf-8"))
    links = [t for t in targets if "://" not in t and not t.startswith("mailto:")]
    missing = sorted(t for t in links if not (doc.parent / t).exists())
    assert not missing, f"{_doc_id(doc)} links to files that do not exist: {missing}"


def test_the_checker_reads_what_it_should():
    """The patterns on a made-up page: a path, a package-relative module, commands in code and in prose."""
    text = (
        "See `recipes/sft-lora.yaml` and methods/grpo.py, not tests/recipes/x.yaml's inner part.\n"
        "```bash\n.venv/bin/alignline data check x.jsonl\nalignline train r.yaml\n```\n"
        "alignline reads local files; `python -m alignline.cli train`.\n"
    )
    assert _ROOTED.findall(text) == ["recipes/sft-lora.yaml", "tests/recipes/x.yaml"]
    assert _paths(_ROOTED, "see tests/methods/test_<name>.py") == set()
    assert _IN_PACKAGE.findall(text) == ["methods/grpo.py"]
    commands = [m.group(1).split() for code in _code(text) for m in _COMMAND.finditer(code)]
    assert commands == [["data", "check", "x"], ["train", "r"]]
    assert _unknown_command(["data", "check"]) is None
    assert _unknown_command(["serve", "calibrate"]) is None
    assert _unknown_command(["dat"]) == "dat"
    assert _unknown_command(["data", "chek"]) == "chek"
