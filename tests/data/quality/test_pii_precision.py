"""Sensitive-PII precision and recall on literal strings: card numbers need the Luhn check and a card's
grouping or a card word (not arithmetic operands); secrets need a known format or a key name, and an example
or generated password is not one. The false flags come from LLaMA-Factory's demo sets (alpaca_en_demo,
dpo_en_demo, glaive_toolcall_en_demo), rewritten with invented content in the same shape."""

from __future__ import annotations

import pytest

from alignline.data.quality.check import run_checks
from alignline.data.quality.gates import load_gate_config
from alignline.data.quality.pii import card_like, find_pii, operand
from support import write_jsonl


def found(text: str) -> list[tuple[str, str]]:
    return [(m.type, m.value) for m in find_pii(text)]


@pytest.mark.parametrize(
    "text, expected",
    [
        # cards: Luhn-valid, issuer prefix, and grouped, a 15-16 digit run, or a card word nearby
        ("Card: 4111 1111 1111 1111", [("card", "4111 1111 1111 1111")]),
        ("charge 5500-0000-0000-0004 tomorrow", [("card", "5500-0000-0000-0004")]),
        ("Amex 3782 822463 10005", [("card", "3782 822463 10005")]),
        ("pay with 4242424242424242 now", [("card", "4242424242424242")]),
        ("visa 4222222222222", [("card", "4222222222222")]),  # 13 digits: the word says card
        ("my credit card 4242424242424242 + the cvv", [("card", "4242424242424242")]),  # an operator, but a card word
        # emails, phones
        (
            "write to maria.lopez@gmail.com or call (415) 555-0132",
            [("email", "maria.lopez@gmail.com"), ("phone", "(415) 555-0132")],
        ),
        # secrets: known formats, whatever surrounds them
        ("Use sk-proj-Ab3dEf6hIj9kLm2nOp5qRs8t", [("secret", "sk-proj-Ab3dEf6hIj9kLm2nOp5qRs8t")]),
        ("key AKIAZ7Q2M4N6P8R3T5V1 leaked", [("secret", "AKIAZ7Q2M4N6P8R3T5V1")]),
        ("token ghp_aB3dEf6hIj9kLm2nOp5qRs8tUv1wXy4zAb7c", [("secret", "ghp_aB3dEf6hIj9kLm2nOp5qRs8tUv1wXy4zAb7c")]),
        # secrets: a key name, then a value mixing letters and digits
        ("DB_PASSWORD=Zq8kLm2pX9", [("secret", "Zq8kLm2pX9")]),
        ('{"password": "Zq8#kLm2pX"}', [("secret", "Zq8#kLm2pX")]),
        ("my password is hunter2024, keep it", [("secret", "hunter2024")]),
        (
            "aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYzQ1xKEY9",
            [("secret", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYzQ1xKEY9")],
        ),
        ("login with pwd=Xk29fhQ7zp; then", [("secret", "Xk29fhQ7zp")]),  # trailing punctuation is not the value
    ],
)
def test_planted_pii_is_found_exactly(text, expected):
    assert found(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        # arithmetic operands and results (dpo_en_demo's shape), and a bare 13-digit number
        "Provide a step-by-step calculation for 355909190063-746. equations/math only, no commentary.",
        "256626720691 + 1646615806005 =\n\nThe result is:\n\n4212883012996",
        "4242424242424242 + 1 = 4242424242424243",
        "the number 4222222222222 is prime?",
        # example and generated passwords (alpaca_en_demo, glaive_toolcall_en_demo)
        "Here is a randomly generated 8-character password: rT8$jLpZ.\n\nPlease use a password manager.",
        '{"name": "generate_random_password", "arguments": {"length": 12}}\n{"password": "a9B7$#fG3&Z1"}\n'
        "Here is your new password: a9B7$#fG3&Z1. Please make sure to save it in a secure place.",
        "Pick a strong password like Tr0ub4dor&3 or a long passphrase.",
        "For example, api_key=Ab12Cd34Ef56 goes in the header.",
        # placeholders
        "password: password123",
        'EMAIL_PASSWORD = "your_email_password"',
        "password: ${DB_PASS1}",
        "api_key = <your_key_1>",
        "The password is stored in vault2024 securely",
    ],
)
def test_examples_sums_and_placeholders_are_not_sensitive(text):
    assert found(text) == []


def test_card_grouping_and_operands():
    assert card_like("4111 1111 1111 1111") and card_like("3782-822463-10005") and card_like("4242424242424242")
    assert not card_like("4111 1111-1111 1111")  # two separator kinds
    assert not card_like("355909190063-746") and not card_like("4222222222222")
    text = "12 + 4242424242424242"
    assert operand(text, 5, len(text)) and not operand("pay 4242424242424242 now", 4, 20)


def test_llamafactory_shaped_demo_records_pass_the_sensitive_gate(tmp_path):
    """Alpaca records (`instruction`, `input`, `output`) like those that failed the gate: an example password
    and an arithmetic result; one record with a real-looking card still fails it."""
    records = [
        {
            "instruction": "Generate a random password of 8 characters.",
            "input": "",
            "output": "Here is a randomly generated 8-character password: rT8$jLpZ.\n\nKeep it somewhere safe.",
        },
        {
            "instruction": "Compute 256626720691 + 1646615806005.",
            "input": "",
            "output": "256626720691 + 1646615806005 =\n\nThe result is:\n\n4212883012996",
        },
        {"instruction": "Summarize the note.", "input": "The meeting moved to Tuesday.", "output": "Moved to Tuesday."},
    ]
    clean = run_checks([str(write_jsonl(tmp_path / "alpaca.jsonl", records))], None, load_gate_config(), progress=False)
    assert clean["pii"]["sensitive_records"] == 0 and clean["pii"]["records_with_pii"] == 0
    planted = records + [{"instruction": "Store my card.", "input": "4111 1111 1111 1111", "output": "Stored."}]
    report = run_checks(
        [str(write_jsonl(tmp_path / "planted.jsonl", planted))], None, load_gate_config(), progress=False
    )
    assert report["pii"]["sensitive_records"] == 1 and report["pii"]["by_type"]["card"]["records"] == 1
    assert "pii_sensitive_records" in {g["name"] for g in report["gates"] if not g["passed"]}


def test_long_name_runs_stay_linear():
    """Key names are matched with at most 4 parts around the key word: unbounded, this took 90 s."""
    import time

    started = time.perf_counter()
    assert found("password " + "ab1-" * 20000) == []
    assert time.perf_counter() - started < 5.0
