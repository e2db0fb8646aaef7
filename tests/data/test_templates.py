"""Loss masks, token by token, on a multi-turn conversation with a system turn."""

from alignline.data.formats import Conversation, Message, PlainText
from alignline.data.templates import IGNORE, build_examples, shift_targets, tokenize_sample


def _segments(tokenizer, ids, mask):
    """Decode consecutive runs of trained / untrained tokens: the mask, made readable."""
    runs, current, flag = [], [], None
    for tok, m in zip(ids, mask):
        if flag is not None and m != flag:
            runs.append((flag, tokenizer.decode(current)))
            current = []
        current.append(tok)
        flag = m
    runs.append((flag, tokenizer.decode(current)))
    return runs


def test_multi_turn_mask_with_system_turn(tokenizer):
    conv = Conversation(
        [
            Message("system", "Be brief."),
            Message("user", "Hi"),
            Message("assistant", "Hello."),
            Message("user", "2+2?"),
            Message("assistant", "Four."),
        ]
    )
    ids, mask = tokenize_sample(tokenizer, conv)
    assert _segments(tokenizer, ids, mask) == [
        (False, "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"),
        (True, "Hello.<|im_end|>"),
        (False, "\n<|im_start|>user\n2+2?<|im_end|>\n<|im_start|>assistant\n"),
        (True, "Four.<|im_end|>"),
        (False, "\n"),
    ]
    # Token by token: every trained token is an assistant content token or the end-of-turn token,
    # and each assistant turn's last trained token is EOS.
    eos = tokenizer.eos_token_id
    trained = [t for t, m in zip(ids, mask) if m]
    assert trained.count(eos) == 2 and trained[-1] == eos
    assert tokenizer.decode(trained) == "Hello.<|im_end|>Four.<|im_end|>"


def test_default_system_prompt_is_context(tokenizer):
    ids, mask = tokenize_sample(tokenizer, Conversation([Message("user", "Hi"), Message("assistant", "Yo")]))
    assert _segments(tokenizer, ids, mask)[1] == (True, "Yo<|im_end|>")
    assert "You are a helpful assistant." in _segments(tokenizer, ids, mask)[0][1]


def test_weight_zero_turn_is_not_trained(tokenizer):
    conv = Conversation(
        [
            Message("user", "a"),
            Message("assistant", "bad", train=False),
            Message("user", "c"),
            Message("assistant", "good"),
        ]
    )
    ids, mask = tokenize_sample(tokenizer, conv)
    assert tokenizer.decode([t for t, m in zip(ids, mask) if m]) == "good<|im_end|>"


def test_loss_on_all(tokenizer):
    ids, mask = tokenize_sample(tokenizer, Conversation([Message("user", "a"), Message("assistant", "b")]), "all")
    assert all(mask)


def test_eos_added_when_template_has_none(tokenizer):
    tok = tokenizer  # the session's tokenizer, its template swapped for this test and restored
    saved = tok.chat_template
    tok.chat_template = (
        "{% for m in messages %}{{ m['role'] + ': ' + m['content'] + '\n' }}{% endfor %}"
        "{% if add_generation_prompt %}{{ 'assistant: ' }}{% endif %}"
    )
    try:
        ids, mask = tokenize_sample(
            tok,
            Conversation(
                [Message("user", "hi"), Message("assistant", "yo"), Message("user", "x"), Message("assistant", "z")]
            ),
        )
    finally:
        tok.chat_template = saved
    trained = [t for t, m in zip(ids, mask) if m]
    assert tok.decode(trained) == "yo<|im_end|>z<|im_end|>"


def test_plain_prompt_completion_and_text(tokenizer):
    ids, mask = tokenize_sample(tokenizer, PlainText("Q: 2+2? A:", " 4"))
    assert tokenizer.decode([t for t, m in zip(ids, mask) if m]) == " 4<|im_end|>"
    ids, mask = tokenize_sample(tokenizer, PlainText("", "domain text"))
    assert all(mask) and ids[-1] == tokenizer.eos_token_id


def test_targets_are_shifted_per_example():
    assert shift_targets([10, 11, 12, 13], [False, False, True, True]) == [IGNORE, 12, 13, IGNORE]


def test_truncation_is_counted_and_cpt_is_split(tokenizer):
    long = PlainText("", "word " * 200)
    (ex,) = build_examples(tokenizer, Conversation([Message("user", "hi"), Message("assistant", "yo " * 100)]), 32)
    assert len(ex.input_ids) == 32 and ex.truncated > 0
    parts = build_examples(tokenizer, long, 64, split_long=True)
    total = len(tokenize_sample(tokenizer, long)[0])
    assert len(parts) == -(-total // 64) and sum(len(p.input_ids) for p in parts) == total
    assert all(p.truncated == 0 for p in parts)
