"""The graders registry and the text, numeric, JSON and length built-ins, on literal strings."""

from __future__ import annotations

import math
import textwrap

import pytest

from alignline.errors import ConfigError
from alignline.rewards import structured
from alignline.rewards.numeric import extract_number, find_numbers, parse_number
from alignline.rewards.registry import GRADERS, check_scores, get_grader, grade
from alignline.rewards.text import f1_score, normalize_text
from alignline.text import completion_text


def chat(text: str) -> list[dict]:
    return [{"role": "assistant", "content": text}]


# --- TRL compatibility ------------------------------------------------------------------------------

TRL_STYLE = textwrap.dedent("""
    import re

    def reward_len(completions, **kwargs):
        return [-abs(20 - len(completion)) for completion in completions]

    def format_reward_func(completions, **kwargs):
        pattern = r"^<think>.*?</think><answer>.*?</answer>$"
        completion_contents = [completion[0]["content"] for completion in completions]
        matches = [re.match(pattern, content) for content in completion_contents]
        return [1.0 if match else 0.0 for match in matches]

    def reward_func(prompts, completions, ground_truth, **kwargs):
        return [1.0 if c == gt else 0.0 for c, gt in zip(completions, ground_truth)]

    def with_option(completions, target=3, **kwargs):
        return [float(len(c) == target) for c in completions]

    broken = 1
""")


@pytest.fixture
def trl_file(tmp_path):
    path = tmp_path / "my_rewards.py"
    path.write_text(TRL_STYLE)
    return path


def test_trl_reward_functions_work_as_written(trl_file):
    """Functions exactly as TRL's docs write them, called as TRL calls them (keywords, extra columns)."""
    n = lambda f: get_grader(f"{trl_file}:{f}")  # noqa: E731
    assert grade("len", n("reward_len"), ["p", "p"], ["x" * 20, "x" * 15], {"extra": [1, 2]}) == [0.0, -5.0]
    assert grade(
        "fmt",
        n("format_reward_func"),
        [[{"role": "user", "content": "q"}]] * 2,
        [chat("<think>a</think><answer>b</answer>"), chat("b")],
        {},
    ) == [1.0, 0.0]
    assert grade(
        "gt", n("reward_func"), ["p", "p"], ["a", "b"], {"ground_truth": ["a", "a"]}, completion_ids=[[1], [2]]
    ) == [1.0, 0.0]
    assert grade("opt", get_grader(f"{trl_file}:with_option", target=2), ["p"], ["ab"], {}) == [1.0]


def test_builtins_take_trl_keyword_call():
    """TRL passes prompts=, completions=, completion_ids= and trainer_state/log_extra/log_metric beside the columns."""
    kwargs = dict(
        prompts=["q", "q"],
        completions=[chat(" Paris "), chat("Lyon")],
        completion_ids=[[1], [2]],
        answer=["Paris", "Paris"],
        trainer_state=object(),
        log_extra=lambda *a: None,
        log_metric=lambda *a: None,
    )
    for name in ("exact_match", "normalized_match", "contains", "token_f1", "numeric_match", "math_answer"):
        out = GRADERS[name](**kwargs)
        assert len(out) == 2, name
    assert GRADERS["exact_match"](**kwargs) == [1.0, 0.0]


def test_completion_text_forms():
    assert completion_text("a") == "a"
    assert completion_text(chat("b")) == "b"
    assert completion_text([{"role": "user", "content": "q"}, {"role": "assistant", "content": "c"}]) == "c"
    assert completion_text({"role": "assistant", "content": "d"}) == "d"
    assert completion_text(None) == ""


# --- Registry, options, errors -------------------------------------------------------------------------


def test_options_as_keywords_or_spec_dict():
    by_kw = get_grader("regex", pattern="^Answer:")
    by_dict = get_grader({"function": "regex", "pattern": "^Answer:", "name": "starts"})
    texts = ["Answer: 4", "4"]
    assert by_kw(None, texts) == by_dict(None, texts) == [1.0, 0.0]
    assert by_dict.__name__ == "starts" and by_kw.__name__ == "regex"
    assert get_grader("exact_match") is GRADERS["exact_match"]  # no options: the plain function


def test_option_wins_over_column_of_the_same_name():
    g = get_grader("regex", pattern="^A")
    assert grade("regex", g, None, ["A1", "B1"], {"pattern": ["^B", "^B"]}) == [1.0, 0.0]
    assert grade("regex", GRADERS["regex"], None, ["A1", "B1"], {"pattern": ["^B", "^B"]}) == [0.0, 1.0]


@pytest.mark.parametrize(
    "spec, options, message",
    [
        ("no_such", {}, "grader 'no_such': not a registered grader"),
        ("regex", {"patern": "x"}, "grader 'regex': unknown option 'patern'; options: pattern, flags, fullmatch"),
        ("regex", {"pattern": "("}, "grader 'regex': pattern '(' is not a valid regular expression"),
        ("regex", {"pattern": "x", "flags": "q"}, "grader 'regex': flag 'q' is not one of i, m, s"),
        ("length", {"unit": "pages"}, "grader 'length': unit 'pages' is not one of chars, words, tokens"),
        ("length", {"min": 5, "max": 2}, "grader 'length': min 5 is above max 2"),
        ("numeric_match", {"abs_tol": -1}, "grader 'numeric_match': option 'abs_tol' must be a number >= 0"),
        ("pii_leak", {"types": ["ssn", "dna"]}, "grader 'pii_leak': unknown PII type 'dna'"),
        ("reward_model", {}, "grader 'reward_model': missing a required argument: 'model'"),
        ("pairwise_judge", {}, "grader 'pairwise_judge': needs a 'model' option"),
        ({"pattern": "x"}, {}, "a grader given as a mapping needs a 'function' key"),
        ("missing.py:f", {}, "grader 'missing.py:f': no such file missing.py"),
        ("no_such_module_xyz:f", {}, "grader 'no_such_module_xyz:f': importing no_such_module_xyz failed"),
    ],
)
def test_build_errors_are_one_config_line(spec, options, message):
    with pytest.raises(ConfigError) as e:
        get_grader(spec, **options)
    assert message in str(e.value) and "\n" not in str(e.value)


def test_user_file_errors(tmp_path, trl_file):
    bad = tmp_path / "bad.py"
    bad.write_text("import no_such_package_xyz\n")
    with pytest.raises(ConfigError, match=r"grader '.*bad.py:f': importing .*bad.py failed \(ModuleNotFoundError"):
        get_grader(f"{bad}:f")
    with pytest.raises(ConfigError, match="has no function 'broken'"):
        get_grader(f"{trl_file}:broken")
    with pytest.raises(ConfigError, match="unknown option 'targt'; options: target"):
        get_grader(f"{trl_file}:with_option", targt=2)


def test_call_errors_name_the_grader(trl_file):
    with pytest.raises(ConfigError, match=r"grader 'gt': cannot be called .*ground_truth.*record fields here: answer"):
        grade("gt", get_grader(f"{trl_file}:reward_func"), ["p"], ["a"], {"answer": ["a"]})
    with pytest.raises(ConfigError, match="grader 'exact_match': needs a 'answer' field"):
        grade("exact_match", GRADERS["exact_match"], ["p"], ["a"], {})
    with pytest.raises(ConfigError, match="grader 'short': returned 1 scores for 2 completions"):
        grade("short", lambda prompts, completions, **kw: [1.0], ["p", "p"], ["a", "b"], {})
    with pytest.raises(ConfigError, match="grader 'nan': score 1 is nan"):
        grade("nan", lambda completions, **kw: [1.0, math.nan], ["p", "p"], ["a", "b"], {})


def test_check_scores():
    assert check_scores("g", [1, None, 0.5], 3) == [1.0, None, 0.5]
    for bad in ([True], ["1"], [math.inf]):
        with pytest.raises(ConfigError, match="grader 'g': score 0"):
            check_scores("g", bad, 1)
    with pytest.raises(ConfigError, match="returned dict"):
        check_scores("g", {}, 1)


def test_model_graders_built_once():
    a = get_grader("scripted_judge", rule="first")
    assert get_grader({"function": "scripted_judge", "rule": "first"}) is a
    assert get_grader("scripted_judge", rule="second") is not a


# --- Text graders ------------------------------------------------------------------------------------


def test_exact_normalized_contains():
    assert GRADERS["exact_match"](None, ["Paris", "paris", "x"], answer=["Paris", "Paris", None]) == [1.0, 0.0, None]
    assert GRADERS["normalized_match"](None, ["The Paris!", "Lyon"], answer=["paris", ["Lyons", "lyon"]]) == [1.0, 1.0]
    assert GRADERS["contains"](None, ["in PARIS", "in Paris"], answer=["Paris", "Paris"]) == [0.0, 1.0]
    assert get_grader("contains", answer="paris", ignore_case=True)(None, ["in PARIS"]) == [1.0]


def test_normalize_and_f1():
    assert normalize_text("An  apple, the PEAR.") == "apple pear"
    # pred [cat, sat] vs gold [cat, sat, down]: overlap 2, P = 1, R = 2/3, F1 = 2PR/(P+R) = 0.8
    assert f1_score("The cat sat", "a cat sat down") == pytest.approx(0.8)
    # repeated tokens count once per occurrence: pred [a1, a1] vs [a1]: overlap 1, P = 1/2, R = 1, F1 = 2/3
    assert f1_score("x x", "x") == pytest.approx(2 / 3)
    assert f1_score("", "") == 1.0 and f1_score("a cat", "") == 0.0
    assert GRADERS["token_f1"](None, ["cat sat"], answer=[["dog", "the cat sat"]]) == [1.0]


def test_regex_per_record_and_fullmatch():
    assert GRADERS["regex"](None, ["Answer: 4", "ok"], pattern=[r"\d", None]) == [1.0, None]
    g = get_grader("regex", pattern=r"\d+", fullmatch=True)
    assert g(None, [" 42 ", "42 apples"]) == [1.0, 0.0]
    assert get_grader("regex", pattern="^yes", flags="i")(None, ["YES"]) == [1.0]


def test_length():
    assert GRADERS["length"](None, ["abc", chat("hello world")]) == [3.0, 11.0]
    assert get_grader("length", unit="words", min=2)(None, ["one", "one two"]) == [0.0, 1.0]
    assert get_grader("length", unit="tokens", max=2)(None, ["a", "b"], completion_ids=[[1, 2], [1, 2, 3]]) == [
        1.0,
        0.0,
    ]
    with pytest.raises(ConfigError, match="needs a 'tokenizer' option"):
        get_grader("length", unit="tokens")(None, ["a"])


def test_length_tokens_with_tokenizer(tiny_model_dir, tokenizer):
    n = len(tokenizer("Hello, how are you", add_special_tokens=False)["input_ids"])
    assert get_grader("length", unit="tokens", tokenizer=str(tiny_model_dir))(None, ["Hello, how are you"]) == [n]


# --- Numbers ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, value",
    [
        ("1,234", 1234.0),
        ("-3.5", -3.5),
        ("1/2", 0.5),
        ("50%", 50.0),
        ("$1,234.50", 1234.5),
        ("+7", 7.0),
        ("\u22122", -2.0),
        (".5", 0.5),
        ("1e-3", 0.001),
        (r"\frac{3}{4}", 0.75),
        (r"\dfrac{1}{8}", 0.125),
        ("1{,}000", 1000.0),
        (12, 12.0),
        ("twelve", None),
        ("1/0", None),
        (True, None),
    ],
)
def test_parse_number(text, value):
    assert parse_number(text) == value


def test_find_and_extract():
    assert find_numbers("from 10-20 items, list 1,2,3") == [10.0, 20.0, 1.0, 2.0, 3.0]
    assert extract_number(r"first 3 then \boxed{42} then 7") == 42.0
    assert extract_number(r"\boxed{x = \frac{1}{2}}") == 0.5
    assert extract_number("reasoning 5 + 3\n#### 8\nthanks 2") == 8.0
    assert extract_number("The answer is 1,234.") == 1234.0
    assert extract_number("no numbers") is None


def test_numeric_match():
    f = GRADERS["numeric_match"]
    assert f(None, ["x is 1/2", "42", "0.333", "none", "5"], answer=[0.5, "#### 42", "1/3", "3", None]) == [
        1.0,
        1.0,
        0.0,
        0.0,
        None,
    ]
    # |0.333 - 1/3| = 3.33e-4: above the default max(1e-6, 1e-6 / 3); within rel_tol 2e-3 * 1/3 = 6.67e-4.
    assert get_grader("numeric_match", rel_tol=2e-3)(None, ["0.333"], answer=["1/3"]) == [1.0]
    assert get_grader("numeric_match", abs_tol=0.5)(None, ["about 9.6"], answer=["10"]) == [1.0]
    assert f(None, ["12"], answer=["unknown"]) == [None]


def test_math_answer():
    f = GRADERS["math_answer"]
    assert f(
        None,
        [r"so \boxed{\dfrac{\pi}{2}}", r"\boxed{\frac{\pi}{3}}", r"\boxed{0.50}", "no answer"],
        answer=[r"\frac{\pi}{2}", r"\frac{\pi}{2}", r"solution ... \boxed{\frac{1}{2}}", "1"],
    ) == [1.0, 0.0, 1.0, 0.0]
    assert f(None, [r"\boxed{\text{the answer is } 12}"], answer=["12"]) == [1.0]
    assert f(None, ["x"], answer=[""]) == [None]


# --- JSON ---------------------------------------------------------------------------------------------

SCHEMA = {
    "type": "object",
    "required": ["name", "tags"],
    "additionalProperties": False,
    "properties": {
        "name": {"type": "string", "minLength": 1},
        "age": {"type": "integer", "minimum": 0},
        "tags": {"type": "array", "items": {"enum": ["a", "b"]}, "uniqueItems": True},
    },
}


def test_json_valid():
    assert GRADERS["json_valid"](None, ['{"a": 1}', '```json\n{"a": 1}\n```', "{'a': 1}", chat("[1]")]) == [
        1.0,
        1.0,
        0.0,
        1.0,
    ]
    assert get_grader("json_valid", allow_fence=False)(None, ["```\n{}\n```"]) == [0.0]


JSON_CASES = [
    ('{"name": "x", "tags": ["a"]}', True),
    ('{"name": "x", "tags": ["a"], "age": 3}', True),
    ('{"name": "x", "tags": ["a"], "age": 3.5}', False),  # not an integer
    ('{"name": "x", "tags": ["a"], "age": true}', False),  # booleans are not numbers
    ('{"name": "x", "tags": ["a"], "age": -1}', False),  # minimum
    ('{"name": "", "tags": []}', False),  # minLength
    ('{"name": "x", "tags": ["c"]}', False),  # enum
    ('{"name": "x", "tags": ["a", "a"]}', False),  # uniqueItems
    ('{"name": "x"}', False),  # required
    ('{"name": "x", "tags": [], "other": 1}', False),  # additionalProperties
    ("not json", False),
    ('{"name": "x", "tags": ["a"], "age": 3.0}', True),  # 3.0 is an integer in JSON Schema
]


@pytest.mark.parametrize("text, ok", JSON_CASES)
def test_json_schema_builtin(text, ok):
    g = get_grader("json_schema", schema=SCHEMA, validator="builtin")
    assert g(None, [text]) == [float(ok)]


def test_json_schema_from_column_and_errors():
    g = get_grader("json_schema", validator="builtin")
    assert g(None, ['{"a": 1}', "1", "1"], schema=['{"type": "object"}', {"type": "integer"}, None]) == [1.0, 1.0, None]
    assert structured.schema_errors([1, 2], {"anyOf": [{"type": "integer"}, {"items": {"type": "integer"}}]}) == []
    assert structured.schema_errors(5, {"oneOf": [{"type": "integer"}, {"type": "number"}]}) == [
        "$: does not match exactly one of oneOf"
    ]
    with pytest.raises(ConfigError, match=r"keyword '\$ref' is not handled by the built-in validator"):
        get_grader("json_schema", schema={"$ref": "#/x"}, validator="builtin")(None, ["{}"])


def test_json_schema_jsonschema_agrees():
    jsonschema = pytest.importorskip("jsonschema")
    assert jsonschema
    cases = [text for text, _ in JSON_CASES]
    a = get_grader("json_schema", schema=SCHEMA, validator="builtin")(None, cases)
    b = get_grader("json_schema", schema=SCHEMA, validator="jsonschema")(None, cases)
    assert a == b == [float(ok) for _, ok in JSON_CASES]


def test_math_answer_reads_the_answer_line_before_later_working():
    from alignline.rewards.registry import get_grader, grade

    completions = ["Answer: 42. Check: 17 + 25 = 32.", "6 * 7 = 42", "The answer is: 12, not 13"]
    assert grade("math_answer", get_grader("math_answer"), [None] * 3, completions, {"answer": ["42", "42", "12"]}) == [
        1.0,
        1.0,
        1.0,
    ]
