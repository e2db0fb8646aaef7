"""Published conversation formats read as their authors mean them (issue 17, section 1, SFT side): axolotl's
training flags inside records, reasoning fields, LLaMA-Factory v1 content parts, OpenAI's legacy function
calling, plain-text corpora. Each test takes a record of the published shape (field names and nesting kept,
content invented) and asserts the trained tokens: the runs of tokens whose loss mask is on, decoded."""

import json

import pytest

from alignline.config import DataConfig, DataSource
from alignline.data.dataset import load_samples, prepare_data
from alignline.data.formats import to_sample
from alignline.data.show import segments
from alignline.data.templates import reasoning_key, tokenize_sample
from alignline.errors import DataError
from support import tiny_tokenizer, write_jsonl

EOT = "<|im_end|>"

# Modeled on Qwen3's template: reasoning_content rendered in <think></think>, its outer newlines stripped.
QWEN3_LIKE = (
    "{%- for message in messages %}"
    "{%- if message.role == 'assistant' %}{{- '<|im_start|>assistant\\n' }}"
    "{%- if message.reasoning_content %}"
    "{{- '<think>\\n' + message.reasoning_content.strip('\\n') + '\\n</think>\\n\\n' }}{%- endif %}"
    "{{- message.content.lstrip('\\n') + '<|im_end|>\\n' }}"
    "{%- else %}{{- '<|im_start|>' + message.role + '\\n' + message.content + '<|im_end|>\\n' }}{%- endif %}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}"
)
# Modeled on gpt-oss's Harmony template: the assistant's `thinking` goes in the analysis channel.
HARMONY_LIKE = (
    "{%- for message in messages %}"
    "{%- if message.role == 'assistant' %}{{- '<|im_start|>assistant\\n' }}"
    "{%- if message.thinking %}{{- '<|channel|>analysis<|message|>' + message.thinking + '<|end|>' }}{%- endif %}"
    "{{- message.content + '<|im_end|>\\n' }}"
    "{%- else %}{{- '<|im_start|>' + message.role + '\\n' + message.content + '<|im_end|>\\n' }}{%- endif %}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}"
)
# Names reasoning_content (in a comment) but never renders it: only rendering can tell.
SILENT = "{# reasoning_content is ignored #}" + tiny_tokenizer().chat_template


@pytest.fixture(scope="module")
def tok():
    return tiny_tokenizer()


def with_template(template):
    t = tiny_tokenizer()
    t.chat_template = template
    return t


def trained_runs(tokenizer, record, loss_on="assistant"):
    sample = to_sample(record, "d.jsonl", "line 1")
    ids, mask = tokenize_sample(tokenizer, sample, loss_on)
    return [text for trained, text in segments(tokenizer, ids, mask) if trained]


# --- axolotl: per-turn train, train_detail, per-part train / weight ------------------------------------------

AXOLOTL_DOC = {  # docs/dataset-formats/conversation.qmd, "fine-grained control over token masking"
    "conversations": [
        {"from": "system", "value": "You are an AI assistant.", "train": False},
        {"from": "human", "value": "Hello", "train": False},
        {"from": "assistant", "value": "Hello", "train": True},
        {"from": "human", "value": "How are you?", "train": True},
        {
            "from": "assistant",
            "value": "I'm doing very well, thank you!",
            "train_detail": [
                {"begin_offset": 0, "end_offset": 8, "train": False},
                {"begin_offset": 9, "end_offset": 18, "train": True},
                {"begin_offset": 19, "end_offset": 30, "train": False},
            ],
        },
        {"from": "human", "value": "I'm doing very well, thank you!", "train": True},
        {"from": "assistant", "value": "Hi there!", "train": True},
    ]
}


def test_axolotl_turn_flags_and_train_detail(tok):
    # a human turn with train: true is trained (its text and end-of-turn token); train_detail offsets are
    # inclusive, so 9..18 is " very well"; the detailed turn keeps its end-of-turn token, as axolotl's
    # train_on_eos: turn does
    assert trained_runs(tok, AXOLOTL_DOC) == [
        f"Hello{EOT}",
        f"How are you?{EOT}",
        " very well",
        EOT,
        f"I'm doing very well, thank you!{EOT}",
        f"Hi there!{EOT}",
    ]


def test_axolotl_train_flag_on_openai_messages(tok):
    record = {
        "messages": [
            {"role": "user", "content": "Say hi."},
            {"role": "assistant", "content": "Bad answer.", "train": False},
            {"role": "user", "content": "Again."},
            {"role": "assistant", "content": "Hi!"},
        ]
    }
    assert trained_runs(tok, record) == [f"Hi!{EOT}"]


def test_axolotl_content_parts_with_train_and_weight(tok):
    record = {
        "messages": [  # docs: "Content parts with per-part training control"
            {"role": "user", "content": [{"type": "text", "text": "What is 2+2?"}]},
            {
                "role": "assistant",
                "content": [
                    {"type": "text", "text": "Let me think step by step...", "train": False},
                    {"type": "text", "text": " The answer is 4.", "train": True},
                ],
            },
        ]
    }
    assert trained_runs(tok, record) == [f" The answer is 4.{EOT}"]
    record["messages"][1]["content"] = [
        {"type": "text", "text": "Let me think step by step...", "weight": 0},
        {"type": "text", "text": " The answer is 4."},
    ]  # unflagged: follows the turn
    assert trained_runs(tok, record) == [f" The answer is 4.{EOT}"]


def test_a_flagged_part_trains_a_user_turn(tok):
    # a part flag is a training detail: the turn is trained where flagged, as axolotl reads it
    record = {
        "messages": [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "Context: ", "train": False},
                    {"type": "text", "text": "Paris is the capital of France.", "train": True},
                ],
            },
            {"role": "assistant", "content": "Noted."},
        ]
    }
    assert trained_runs(tok, record) == [f"Paris is the capital of France.{EOT}", f"Noted.{EOT}"]


def test_a_token_straddling_a_part_boundary_is_masked(tok):
    # axolotl's rule: a token holding masked and trained characters is masked; "The" is one token here
    assert "The" in tok.tokenize("Let me think. The answer")
    record = {
        "messages": [
            {"role": "user", "content": "Q"},
            {
                "role": "assistant",
                "content": [
                    {"type": "text", "text": "Let me think. Th", "train": False},
                    {"type": "text", "text": "e answer is 4."},
                ],
            },
        ]
    }
    assert trained_runs(tok, record) == [f" answer is 4.{EOT}"]


def test_axolotl_reasoning_content_parts_qwen3():
    record = {
        "messages": [  # docs: "Per-part training on reasoning_content"
            {"role": "user", "content": [{"type": "text", "text": "What is 2+2?"}]},
            {
                "role": "assistant",
                "reasoning_content": [
                    {"type": "text", "text": "Hmm maybe 2+2=5.", "train": False},
                    {"type": "text", "text": " Wait no, 2+2=4.", "train": True},
                ],
                "content": [{"type": "text", "text": "The answer is 4.", "train": True}],
            },
        ]
    }
    assert trained_runs(with_template(QWEN3_LIKE), record) == [
        "<think>\n",
        f" Wait no, 2+2=4.\n</think>\n\nThe answer is 4.{EOT}",
    ]


def test_loss_on_all_trains_everything_flags_or_not(tok):
    runs = trained_runs(tok, AXOLOTL_DOC, loss_on="all")
    assert len(runs) == 1 and runs[0].startswith("<|im_start|>system\nYou are an AI assistant.")


@pytest.mark.parametrize(
    "mutate, fld, needle",
    [
        (
            lambda r: r["conversations"][4]["train_detail"][2].update(end_offset=31),
            "conversations[4].train_detail[2]",
            "outside the content's 31 characters",
        ),
        (lambda r: r["conversations"][2].update(train="yes"), "conversations[2].train", "must be true or false"),
        (lambda r: r["conversations"][2].update(weight=0), "conversations[2].train", "contradict"),
        (
            lambda r: r["conversations"][4]["train_detail"][0].pop("begin_offset"),
            "conversations[4].train_detail[0].begin_offset",
            "expected a character offset",
        ),
    ],
)
def test_bad_training_flags_name_the_field(mutate, fld, needle):
    record = json.loads(json.dumps(AXOLOTL_DOC))
    mutate(record)
    with pytest.raises(DataError) as e:
        to_sample(record, "d.jsonl", "line 1")
    assert f"field '{fld}'" in str(e.value) and needle in str(e.value)


# --- reasoning ---------------------------------------------------------------------------------------------------


def reasoning_record(key="reasoning_content"):
    return {
        "messages": [
            {"role": "user", "content": "What is 2+2?"},
            {"role": "assistant", key: "Two and two make four.", "content": "4"},
        ]
    }


def test_the_template_is_asked_whether_it_renders_reasoning(tok):
    assert reasoning_key(with_template(QWEN3_LIKE)) == "reasoning_content"
    assert reasoning_key(with_template(HARMONY_LIKE)) == "thinking"
    assert reasoning_key(tok) is None and reasoning_key(with_template(SILENT)) is None


def test_reasoning_content_is_rendered_and_trained_qwen3():
    assert trained_runs(with_template(QWEN3_LIKE), reasoning_record()) == [
        f"<think>\nTwo and two make four.\n</think>\n\n4{EOT}"
    ]


def test_harmony_thinking_is_rendered_and_trained():
    assert trained_runs(with_template(HARMONY_LIKE), reasoning_record("thinking")) == [
        f"<|channel|>analysis<|message|>Two and two make four.<|end|>4{EOT}"
    ]


def test_a_template_that_cannot_render_reasoning_refuses_it(tok):
    for template in (tok, with_template(SILENT)):
        with pytest.raises(DataError) as e:
            trained_runs(template, reasoning_record())
        assert "field 'messages[1].reasoning_content'" in str(e.value) and "data.reasoning: drop" in str(e.value)


def test_data_reasoning_keep_refuses_drop_warns_once(tmp_path, tok, capsys):
    path = write_jsonl(tmp_path / "r.jsonl", [reasoning_record(), reasoning_record(), reasoning_record("thinking")])
    with pytest.raises(DataError) as e:
        prepare_data(DataConfig(train=[DataSource(str(path))]), tiny_tokenizer(), 256, 0, None)
    assert "r.jsonl, line 1, field 'messages[1].reasoning_content': 3 assistant turns carry reasoning" in str(e.value)
    train, _, report = prepare_data(
        DataConfig(train=[DataSource(str(path))], reasoning="drop"), tiny_tokenizer(), 256, 0, None
    )
    assert report.reasoning_dropped == {"reasoning_content": 2, "thinking": 1}
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        "alignline: warning: data.reasoning: drop: 2 reasoning_content, 1 thinking not trained: "
        "the chat template does not render reasoning"
    ]
    ex = train[0]
    assert tok.decode([t for t in ex.targets if t != -100]) == f"4{EOT}"  # no empty <think></think>, no reasoning


def test_dropped_reasoning_never_trains_an_empty_think_block(tmp_path, tok):
    # a template that writes <think></think> itself but never renders the reasoning it is given
    template = QWEN3_LIKE.replace("{%- if message.reasoning_content %}", "{%- if true %}").replace(
        "message.reasoning_content.strip('\\n')", "''"
    )
    assert reasoning_key(with_template(template)) is None
    path = write_jsonl(tmp_path / "r.jsonl", [reasoning_record()])
    train, _, _ = prepare_data(
        DataConfig(train=[DataSource(str(path))], reasoning="drop"), with_template(template), 256, 0, None
    )
    ex = train[0]
    assert "<think>" in tok.decode(ex.input_ids)
    assert tok.decode([t for t in ex.targets if t != -100]) == f"4{EOT}"


def test_reasoning_on_a_user_turn_or_twice_is_refused():
    with pytest.raises(DataError, match=r"messages\[0\].reasoning_content'.*only read on assistant turns"):
        to_sample(
            {
                "messages": [
                    {"role": "user", "content": "q", "reasoning_content": "r"},
                    {"role": "assistant", "content": "a"},
                ]
            },
            "d.jsonl",
            "line 1",
        )
    record = reasoning_record()
    record["messages"][1]["thinking"] = "other"
    with pytest.raises(DataError, match="reasoning given twice"):
        to_sample(record, "d.jsonl", "line 1")


# --- LLaMA-Factory v1 content parts ----------------------------------------------------------------------------

V1_TOOLS = json.dumps(
    [
        {
            "type": "function",
            "function": {
                "name": "get_movie_details",
                "description": "Movie facts",
                "parameters": {"type": "object", "properties": {"title": {"type": "string"}}},
            },
        }
    ]
)


def test_llamafactory_v1_value_parts(tok):
    record = {
        "messages": [
            {"role": "system", "content": [{"type": "text", "value": "Be brief."}], "loss_weight": 0.0},
            {"role": "user", "content": [{"type": "text", "value": "Capital of France?"}], "loss_weight": 0.0},
            {"role": "assistant", "content": [{"type": "text", "value": "Paris."}], "loss_weight": 1.0},
        ]
    }
    assert trained_runs(tok, record) == [f"Paris.{EOT}"]
    record["messages"][2]["loss_weight"] = 0.0
    record["messages"] += [
        {"role": "user", "content": [{"type": "text", "value": "And Spain?"}]},
        {"role": "assistant", "content": [{"type": "text", "value": "Madrid."}]},
    ]
    assert trained_runs(tok, record) == [f"Madrid.{EOT}"]


def test_llamafactory_v1_reasoning_and_tool_call_parts():
    record = {
        "messages": [  # data/reason_tool_use_demo_50.jsonl
            {"role": "system", "content": [{"type": "text", "value": "Use the tools."}]},
            {"role": "user", "content": [{"type": "text", "value": "Tell me about Inception."}]},
            {
                "role": "assistant",
                "content": [
                    {"type": "reasoning", "value": "I should look it up."},
                    {
                        "type": "tool_call",
                        "value": '{"name": "get_movie_details", "arguments": {"title": "Inception"}}',
                    },
                ],
            },
            {"role": "tool", "content": [{"type": "text", "value": '{"director": "Nolan"}'}]},
            {
                "role": "assistant",
                "content": [
                    {"type": "reasoning", "value": "Summarize."},
                    {"type": "text", "value": "Nolan directed it."},
                ],
            },
        ],
        "tools": V1_TOOLS,
    }
    sample = to_sample(record, "d.jsonl", "line 1")
    assert sample.messages[2].tool_calls == [
        {"type": "function", "function": {"name": "get_movie_details", "arguments": {"title": "Inception"}}}
    ]
    call = '<tool_call>\n{"name": "get_movie_details", "arguments": {"title": "Inception"}}\n</tool_call>'
    assert trained_runs(with_template(QWEN3_LIKE), record) == [
        f"<think>\nI should look it up.\n</think>\n\n{call}{EOT}",
        f"<think>\nSummarize.\n</think>\n\nNolan directed it.{EOT}",
    ]


# --- OpenAI legacy function calling ----------------------------------------------------------------------------


def test_openai_legacy_function_call(tok):
    record = {
        "functions": [
            {
                "name": "get_weather",
                "description": "Current weather",
                "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
            }
        ],
        "messages": [
            {"role": "user", "content": "Weather in Paris?"},
            {
                "role": "assistant",
                "content": None,
                "function_call": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
            },
            {"role": "function", "name": "get_weather", "content": "18C"},
            {"role": "assistant", "content": "18C in Paris."},
        ],
    }
    sample = to_sample(record, "d.jsonl", "line 1")
    assert [m.role for m in sample.messages] == ["user", "assistant", "tool", "assistant"]
    assert sample.messages[2].name == "get_weather" and sample.tools[0]["function"]["name"] == "get_weather"
    assert trained_runs(tok, record) == [
        f'<tool_call>\n{{"name": "get_weather", "arguments": {{"city": "Paris"}}}}\n</tool_call>{EOT}',
        f"18C in Paris.{EOT}",
    ]
    ids, _ = tokenize_sample(tok, sample)
    full = tok.decode(ids)
    assert '"name": "get_weather"' in full.split("<|im_start|>user")[0]  # the schema, in the system turn
    assert "<|im_start|>tool\n<tool_response>\n18C\n</tool_response>" in full


def test_openai_legacy_and_current_together_are_refused():
    record = {
        "tools": [{"type": "function", "function": {"name": "f"}}],
        "functions": [{"name": "f"}],
        "messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}],
    }
    with pytest.raises(DataError, match="field 'functions': a record has tools or the legacy functions, not both"):
        to_sample(record, "d.jsonl", "line 1")


# --- plain-text corpora ----------------------------------------------------------------------------------------


def test_txt_one_document_a_line_as_the_datasets_text_loader(tmp_path, tok):
    path = tmp_path / "corpus.txt"
    path.write_bytes("\ufeffThe first document.\n\nSecond  line, spaces kept \r\nThird\rFourth\n".encode())
    samples = load_samples(str(path), ("text",))
    assert [s.completion for s in samples] == ["The first document.", "Second  line, spaces kept ", "Third", "Fourth"]
    assert [s.origin for s in samples] == [f"{path}, line 1", f"{path}, line 3", f"{path}, line 4", f"{path}, line 4"]
    ids, mask = tokenize_sample(tok, samples[0])
    assert all(mask) and tok.decode(ids) == f"The first document.{EOT}"  # CPT: every token, the EOS included


def test_txt_errors_name_the_line(tmp_path):
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"fine\ncaf\xe9\n")
    with pytest.raises(DataError, match=r"bad\.txt, line 2: not UTF-8 text"):
        load_samples(str(bad))
    blank = tmp_path / "blank.txt"
    blank.write_text("\n\n")
    with pytest.raises(DataError, match="the file is empty"):
        load_samples(str(blank))


def test_a_prompt_stays_context_whatever_its_flags(tok):
    record = {
        "prompt": [{"role": "user", "content": "Say hi.", "train": True}],
        "completion": [{"role": "assistant", "content": "Hi!"}],
    }
    assert trained_runs(tok, record) == [f"Hi!{EOT}"]


def test_the_format_gate_measures_reasoning_it_cannot_render_without_refusing(tok):
    # data.reasoning decides at training time; the gate's length measure must not stop the run first
    from alignline.data.quality.formatcheck import FormatCheck
    from alignline.data.quality.items import to_item

    check = FormatCheck(tok, 256)
    check.add(to_item(reasoning_record(), "d.jsonl", "line 1", 0))
    assert check.total == 1 and check.invalid == 0 and len(check.lengths) == 1


def test_cpt_trains_on_a_txt_corpus_with_the_gates_on(tmp_path, tiny_model_dir):
    from alignline.cli import main
    from support import write_recipe

    corpus = tmp_path / "corpus.txt"
    corpus.write_text("".join(f"Document {i} says the fox is quick and brown.\n\n" for i in range(12)))
    recipe = write_recipe(
        tmp_path / "r.yaml",
        method="cpt",
        model=str(tiny_model_dir),
        output_dir=str(tmp_path / "run"),
        data={"train": str(corpus)},
        training={
            "max_steps": 2,
            "batch_size": 4,
            "max_length": 64,
            "tensorboard": False,
            "save_every": 1000,
            "eval_every": 1000,
        },
    )
    assert main(["train", str(recipe)]) == 0
    run = json.loads((tmp_path / "run" / "run.json").read_text())
    assert run["data"]["sources"][0]["records"] == 12


def test_the_gates_read_the_reasoning_they_train(tok):
    from alignline.data.quality.items import to_item

    record = reasoning_record()
    record["messages"][1]["reasoning_content"] = "The card on file is 4111 1111 1111 1111."
    assert "4111 1111 1111 1111" in to_item(record, "d.jsonl", "line 1", 0).text


def test_preference_and_unpaired_reasoning_follow_data_reasoning(tmp_path, tok, capsys):
    from alignline.data.dataset import settle_record_reasoning
    from alignline.data.preference import load_pairs, tokenize_pair
    from alignline.data.unpaired import load_unpaired

    prompt = [{"role": "user", "content": "What is 2+2?"}]
    think = {"role": "assistant", "reasoning_content": "Two and two make four.", "content": "4"}
    pairs_path = write_jsonl(
        tmp_path / "p.jsonl",
        [{"prompt": prompt, "chosen": [think], "rejected": [{"role": "assistant", "content": "5"}]}],
    )
    pairs = load_pairs(str(pairs_path))
    ex = tokenize_pair(with_template(QWEN3_LIKE), pairs[0], 256)  # rendered and trained where the template can
    assert (
        tok.decode([t for t in ex.chosen.targets if t != -100])
        == f"<think>\nTwo and two make four.\n</think>\n\n4{EOT}"
    )
    with pytest.raises(DataError, match="data.reasoning: drop"):
        settle_record_reasoning(tok, pairs, "keep")
    assert settle_record_reasoning(tok, pairs, "drop") == {"reasoning_content": 1}
    ex = tokenize_pair(tok, pairs[0], 256)
    assert tok.decode([t for t in ex.chosen.targets if t != -100]) == f"4{EOT}"
    kto_path = write_jsonl(tmp_path / "k.jsonl", [{"prompt": prompt, "completion": [think], "label": True}])
    assert settle_record_reasoning(tok, load_unpaired(str(kto_path)), "drop") == {"reasoning_content": 1}
    assert capsys.readouterr().err.count("alignline: warning: data.reasoning: drop: 1 reasoning_content") == 2
