"""Suite files: every starter loads; a bad suite is one line naming the file, the record and the field."""

from __future__ import annotations

import pytest
import yaml

from alignline.errors import DataError
from alignline.evals.suites import STARTER_DIR, load_suite
from support import write_jsonl


def write(tmp_path, body: dict, records: list | None = None, name: str = "suite.yaml"):
    if records is not None:
        write_jsonl(tmp_path / "data.jsonl", records)
        body = {**body, "data": "data.jsonl"}  # relative to the suite file
    path = tmp_path / name
    path.write_text(yaml.safe_dump(body))
    return str(path)


@pytest.mark.parametrize("name", sorted(p.stem for p in STARTER_DIR.glob("*.yaml")))
def test_every_starter_suite_loads_and_is_marked(name):
    suite = load_suite(f"starter/{name}")
    assert suite.settings["starter"] is True and suite.records
    assert "STARTER" in (STARTER_DIR / f"{name}.yaml").read_text()


def test_starter_sizes_and_the_over_refused_prompt():
    refusal = load_suite("starter/refusal")
    labels = [r.data["label"] for r in refusal.records]
    assert labels.count("harmful") >= 30 and labels.count("benign") >= 30
    assert len({r.data["category"] for r in refusal.records if r.data["label"] == "benign"}) >= 5
    assert any("Soften the tone of this: 'Your email makes no sense.'" in r.data["prompt"] for r in refusal.records)
    assert len(load_suite("starter/arithmetic").records) >= 40 and len(load_suite("starter/general").records) >= 40
    assert len(load_suite("starter/paraphrase").records) >= 15
    jb = load_suite("starter/jailbreak")
    assert len(jb.settings["templates"]) >= 5


def test_limit_and_inline_records(tmp_path):
    path = write(
        tmp_path,
        {
            "name": "x",
            "kind": "accuracy",
            "limit": 2,
            "records": [{"prompt": "a", "answer": "a"}, {"prompt": "b", "answer": "b"}, {"prompt": "c", "answer": "c"}],
        },
    )
    suite = load_suite(path)
    assert [r.id for r in suite.records] == ["1", "2"]


@pytest.mark.parametrize(
    "body, records, expected",
    [
        ({"kind": "accuracy"}, [], "suite.yaml, field 'name': is missing"),
        ({"name": "x", "kind": "wizardry"}, [], "suite.yaml, field 'kind': unknown kind 'wizardry'"),
        (
            {"name": "x", "kind": "accuracy", "gradr": "exact_match"},
            [{"prompt": "a"}],
            "suite.yaml, field 'gradr': unknown setting",
        ),
        (
            {"name": "x", "kind": "accuracy", "max_new_tokens": "many"},
            [{"prompt": "a"}],
            "suite.yaml, field 'max_new_tokens': expected int, got str",
        ),
        ({"name": "x", "kind": "accuracy", "grader": "nonesuch"}, [{"prompt": "a"}], "grader 'nonesuch'"),
        (
            {"name": "x", "kind": "refusal"},
            [{"prompt": "a", "label": "harmful"}, {"prompt": "b"}],
            "data.jsonl, line 2, field 'label': is missing",
        ),
        (
            {"name": "x", "kind": "refusal"},
            [{"prompt": "a", "label": "evil"}],
            "data.jsonl, line 1, field 'label': unknown label 'evil'",
        ),
        (
            {"name": "x", "kind": "accuracy"},
            [{"id": 1, "prompt": "a"}, {"id": 1, "prompt": "b"}],
            "data.jsonl, line 2, field 'id': duplicate id '1'",
        ),
        ({"name": "x", "kind": "accuracy"}, [{"prompt": 3}], "data.jsonl, line 1, field 'prompt'"),
        (
            {"name": "x", "kind": "jailbreak", "templates": ["no placeholder"]},
            [{"prompt": "a"}],
            "suite.yaml, field 'templates[0]': every template is a string containing {prompt}",
        ),
        (
            {"name": "x", "kind": "canary", "canaries": "missing.jsonl"},
            None,
            "suite.yaml, field 'canaries': no such file",
        ),
        ({"name": "x", "kind": "win_rate"}, [{"prompt": "a"}], "suite.yaml, field 'judge'"),
        ({"name": "x", "kind": "accuracy"}, None, "suite.yaml, field 'data': no records"),
    ],
)
def test_bad_suites_name_file_record_and_field(tmp_path, body, records, expected):
    path = write(tmp_path, body, records)
    with pytest.raises(DataError) as e:
        load_suite(path)
    assert expected in str(e.value) and "\n" not in str(e.value)


def test_unknown_starter_lists_the_available_ones():
    with pytest.raises(DataError, match="available: starter/arithmetic"):
        load_suite("starter/nonesuch")
