"""LLaMA-Factory `dataset_info.json` entries used as written: the five kinds LLaMA-Factory ships (alpaca SFT with
columns, sharegpt with tags, alpaca ranking, sharegpt ranking, KTO with kto_tag), each on invented records of the
exact published shape (`data/README.md`), with the trained tokens asserted; and each refusal in one line."""

from __future__ import annotations

import json

import pytest

from alignline.config import load_config
from alignline.data.dataset import load_samples
from alignline.data.dataset_info import load_entry, translate
from alignline.data.preference import load_pairs, pair_sample
from alignline.data.quality.check import run_checks
from alignline.data.quality.gates import load_gate_config
from alignline.data.show import trained_text
from alignline.data.sources import file_sha256, read_records
from alignline.data.templates import tokenize_sample
from alignline.data.unpaired import load_unpaired, tokenize_unpaired
from alignline.errors import ConfigError, DataError
from support import write_recipe

ENTRIES = {
    # README "Alpaca Format / Supervised Fine-Tuning Dataset", every column named
    "alpaca_sft": {
        "file_name": "alpaca_sft.json",
        "columns": {
            "prompt": "instruction",
            "query": "input",
            "response": "output",
            "system": "system",
            "history": "history",
        },
    },
    # README "OpenAI Format": sharegpt with role/content tags (kto_en_demo's and mllm_demo's tags)
    "chat_tags": {
        "file_name": "chat.json",
        "formatting": "sharegpt",
        "columns": {"messages": "messages"},
        "tags": {
            "role_tag": "role",
            "content_tag": "content",
            "user_tag": "user",
            "assistant_tag": "assistant",
            "system_tag": "system",
        },
    },
    # README "Alpaca Format / Preference Dataset"
    "alpaca_pref": {
        "file_name": "alpaca_pref.json",
        "ranking": True,
        "columns": {"prompt": "instruction", "query": "input", "chosen": "chosen", "rejected": "rejected"},
    },
    # data/dataset_info.json "dpo_en_demo"
    "sharegpt_pref": {
        "file_name": "sharegpt_pref.json",
        "ranking": True,
        "formatting": "sharegpt",
        "columns": {"messages": "conversations", "chosen": "chosen", "rejected": "rejected"},
    },
    # data/dataset_info.json "kto_en_demo"
    "kto": {
        "file_name": "kto.json",
        "formatting": "sharegpt",
        "columns": {"messages": "messages", "kto_tag": "label"},
        "tags": {"role_tag": "role", "content_tag": "content", "user_tag": "user", "assistant_tag": "assistant"},
    },
    # data/dataset_info.json "c4_demo" (pre-training) and "glaive_toolcall_en_demo"
    "c4": {"file_name": "c4.jsonl", "columns": {"prompt": "text"}},
    "glaive": {
        "file_name": "glaive.json",
        "formatting": "sharegpt",
        "columns": {"messages": "conversations", "tools": "tools"},
    },
}

FILES = {
    "alpaca_sft.json": [
        {
            "instruction": "Name a colour.",
            "input": "Of the sky.",
            "output": "Blue.",
            "system": "Be brief.",
            "history": [["Hello.", "Hi there."]],
        }
    ],
    "chat.json": [
        {
            "messages": [
                {"role": "system", "content": "Be kind."},
                {"role": "user", "content": "Hello."},
                {"role": "assistant", "content": "Hi."},
                {"role": "user", "content": "Thanks."},
                {"role": "assistant", "content": "Welcome."},
            ]
        }
    ],
    "alpaca_pref.json": [
        {"instruction": "Add the numbers.", "input": "2 and 2", "chosen": "Four.", "rejected": "Five."}
    ],
    "sharegpt_pref.json": [
        {
            "conversations": [
                {"from": "human", "value": "Hello."},
                {"from": "gpt", "value": "Hi."},
                {"from": "human", "value": "Capital of France?"},
            ],
            "chosen": {"from": "gpt", "value": "Paris."},
            "rejected": {"from": "gpt", "value": "Lyon."},
        }
    ],
    "kto.json": [
        {
            "messages": [
                {"role": "user", "content": "Hello."},
                {"role": "assistant", "content": "Hi."},
                {"role": "user", "content": "Capital of France?"},
                {"role": "assistant", "content": "Paris."},
            ],
            "label": True,
        },
        {
            "messages": [{"role": "user", "content": "Capital of France?"}, {"role": "assistant", "content": "Lyon."}],
            "label": False,
        },
    ],
    "glaive.json": [
        {
            "conversations": [
                {"from": "human", "value": "Weather in Paris?"},
                {"from": "function_call", "value": '{"name": "weather", "arguments": {"city": "Paris"}}'},
                {"from": "observation", "value": '{"sky": "clear"}'},
                {"from": "gpt", "value": "Clear skies."},
            ],
            "tools": json.dumps(
                [
                    {
                        "name": "weather",
                        "description": "Weather now",
                        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
                    }
                ]
            ),
        }
    ],  # a JSON string, as shipped
}


@pytest.fixture
def info(tmp_path):
    for name, records in FILES.items():
        text = json.dumps(records, indent=2)
        (tmp_path / name).write_text(text)
    (tmp_path / "c4.jsonl").write_text('{"text": "The quick brown fox."}\n{"text": "Jumps over the lazy dog."}\n')
    path = tmp_path / "dataset_info.json"
    path.write_text(json.dumps(ENTRIES, indent=2))
    return path


def _ref(info, name):
    return f"{info}#{name}"


def _roles(messages):
    return [(m.role, m.content) for m in messages]


def _trained(tokenizer, sample):
    ids, mask = tokenize_sample(tokenizer, sample)
    return tokenizer.decode(ids), trained_text(tokenizer, ids, mask)


def test_alpaca_sft_entry_with_columns(info, tokenizer):
    (sample,) = load_samples(_ref(info, "alpaca_sft"))
    assert _roles(sample.messages) == [
        ("system", "Be brief."),
        ("user", "Hello."),
        ("assistant", "Hi there."),
        ("user", "Name a colour.\nOf the sky."),
        ("assistant", "Blue."),
    ]
    full, trained = _trained(tokenizer, sample)
    assert full.startswith("<|im_start|>system\nBe brief.<|im_end|>")
    assert trained == "Hi there.<|im_end|>Blue.<|im_end|>"  # history responses train, as in LLaMA-Factory


def test_sharegpt_entry_with_tags(info, tokenizer):
    (sample,) = load_samples(_ref(info, "chat_tags"))
    assert _roles(sample.messages) == [
        ("system", "Be kind."),
        ("user", "Hello."),
        ("assistant", "Hi."),
        ("user", "Thanks."),
        ("assistant", "Welcome."),
    ]
    assert _trained(tokenizer, sample)[1] == "Hi.<|im_end|>Welcome.<|im_end|>"


def test_alpaca_ranking_entry(info, tokenizer):
    (pair,) = load_pairs(_ref(info, "alpaca_pref"))
    assert _roles(pair.prompt) == [("user", "Add the numbers.\n2 and 2")]  # the input is kept
    chosen = _trained(tokenizer, pair_sample(pair.prompt, pair.chosen))
    rejected = _trained(tokenizer, pair_sample(pair.prompt, pair.rejected))
    assert chosen[1] == "Four.<|im_end|>" and rejected[1] == "Five.<|im_end|>"
    assert "Add the numbers.\n2 and 2<|im_end|>" in chosen[0]


def test_sharegpt_ranking_entry(info, tokenizer):
    (pair,) = load_pairs(_ref(info, "sharegpt_pref"))
    assert _roles(pair.prompt) == [("user", "Hello."), ("assistant", "Hi."), ("user", "Capital of France?")]
    chosen = _trained(tokenizer, pair_sample(pair.prompt, pair.chosen))
    rejected = _trained(tokenizer, pair_sample(pair.prompt, pair.rejected))
    assert (chosen[1], rejected[1]) == ("Paris.<|im_end|>", "Lyon.<|im_end|>")  # earlier turns are context


def test_kto_entry_judges_the_last_assistant_turn(info, tokenizer):
    good, bad = load_unpaired(_ref(info, "kto"))
    assert (good.label, bad.label) == (True, False)
    assert _roles(good.prompt) == [("user", "Hello."), ("assistant", "Hi."), ("user", "Capital of France?")]
    assert _roles(good.completion) == [("assistant", "Paris.")]
    ex = tokenize_unpaired(tokenizer, good, 256).example
    trained = tokenizer.decode([t for t in ex.targets if t != -100])
    assert trained == "Paris.<|im_end|>"


def test_pretraining_entry_is_text(info):
    samples = load_samples(_ref(info, "c4"), allowed=("text",))
    assert [s.completion for s in samples] == ["The quick brown fox.", "Jumps over the lazy dog."]


def test_function_call_and_observation_turns(info):
    entry = load_entry(info, "glaive")
    record = translate(entry, FILES["glaive.json"][0], "record 1")
    assert [m["role"] for m in record["messages"]] == ["user", "assistant", "tool", "assistant"]
    assert record["messages"][1]["tool_calls"] == [
        {"type": "function", "function": {"name": "weather", "arguments": {"city": "Paris"}}}
    ]
    (sample,) = load_samples(_ref(info, "glaive"))
    assert sample.tools[0]["function"]["name"] == "weather"


def test_recipe_names_entries_alone_in_a_list_and_as_eval(info, tmp_path):
    one = write_recipe(tmp_path / "a.yaml", data={"train": {"dataset_info": str(info), "name": "alpaca_sft"}})
    assert [s.path for s in load_config(one).data.train] == [_ref(info, "alpaca_sft")]
    mix = write_recipe(
        tmp_path / "b.yaml",
        data={
            "train": [{"dataset_info": str(info), "name": "alpaca_sft", "weight": 0.25}, str(tmp_path / "x.jsonl")],
            "eval": {"dataset_info": str(info), "name": "chat_tags"},
        },
    )
    cfg = load_config(mix)
    assert [(s.path, s.weight) for s in cfg.data.train] == [
        (_ref(info, "alpaca_sft"), 0.25),
        (str(tmp_path / "x.jsonl"), 1.0),
    ]
    assert cfg.data.eval == _ref(info, "chat_tags")
    both = write_recipe(
        tmp_path / "c.yaml", data={"train": [{"dataset_info": str(info), "name": "c4", "path": "x.jsonl"}]}
    )
    with pytest.raises(ConfigError, match=r"data.train\[0\].*not both"):
        load_config(both)
    cols = write_recipe(
        tmp_path / "d.yaml",
        data={"train": {"dataset_info": str(info), "name": "c4"}, "columns": {"prompt": "question"}},
    )
    with pytest.raises(ConfigError, match="data.columns.*own `columns`"):
        load_config(cols)


def test_gates_read_the_entry_as_training_does(info):
    report = run_checks(
        [_ref(info, "alpaca_sft"), _ref(info, "chat_tags")],
        _ref(info, "sharegpt_pref"),
        load_gate_config(),
        progress=False,
    )
    assert report["records"] == 2 and report["format"]["invalid_share"] == 0
    assert report["inputs"]["train"][0]["sha256"] == file_sha256(_ref(info, "alpaca_sft"))


def _entry_error(info, entry: dict, record: dict | None = None, name: str = "e") -> str:
    data = json.loads(info.read_text())
    data[name] = entry
    info.write_text(json.dumps(data))
    if record is not None:
        (info.parent / "e.json").write_text(json.dumps([record]))
    with pytest.raises(DataError) as e:
        list(read_records(_ref(info, name)))
    assert "\n" not in str(e.value)
    return str(e.value)


def test_refusals_name_the_entry_and_the_key(info):
    hub = _entry_error(info, {"hf_hub_url": "llamafactory/alpaca_en"})
    assert "entry 'e', field 'hf_hub_url'" in hub and "alignline reads local files" in hub and "file_name" in hub
    assert "field 'file_nam'" in _entry_error(info, {"file_nam": "e.json"})
    assert "unknown column 'answer'" in _entry_error(info, {"file_name": "e.json", "columns": {"answer": "a"}})
    assert "unknown tag 'bot_tag'" in _entry_error(info, {"file_name": "e.json", "tags": {"bot_tag": "bot"}})
    assert "cannot read images" in _entry_error(
        info, {"file_name": "e.json", "formatting": "sharegpt", "columns": {"messages": "messages", "images": "images"}}
    )
    assert "weight" in _entry_error(info, {"file_name": "e.json", "num_samples": 10})
    with pytest.raises(DataError, match="no entry 'nope'; it has alpaca_sft, chat_tags"):
        list(read_records(_ref(info, "nope")))
    missing = _entry_error(info, {"file_name": "gone.json"})
    assert "gone.json" in missing and "file_name of entry 'e'" in missing


def test_record_problems_name_the_file_record_and_field(info):
    sharegpt = {"file_name": "e.json", "formatting": "sharegpt"}
    order = _entry_error(info, sharegpt, {"conversations": [{"from": "gpt", "value": "Hi."}]})
    assert "e.json (entry 'e'" in order and "record 1, field 'conversations[0].from'" in order
    odd = _entry_error(info, sharegpt, {"conversations": [{"from": "human", "value": "Hi."}]})
    assert "end with an assistant turn" in odd
    alpaca = _entry_error(
        info, {"file_name": "e.json", "columns": {"response": "answer"}}, {"instruction": "Hi.", "output": "Hello."}
    )
    assert "field 'answer': is missing (entry 'e' maps response to it)" in alpaca


def test_data_columns_do_not_apply_to_an_entry(info):
    with pytest.raises(DataError, match="dataset_info entry maps its fields"):
        list(read_records(_ref(info, "c4"), columns={"text": "body"}))


@pytest.mark.parametrize(
    "method,entry,units", [("sft", "chat_tags", 1), ("dpo", "sharegpt_pref", 1), ("kto", "kto", 2)]
)
def test_methods_train_from_an_entry_with_the_gates_on(info, tmp_path, tiny_model_dir, method, entry, units):
    from alignline.train.dry_run import dry_run

    recipe = write_recipe(
        tmp_path / "r.yaml",
        method=method,
        model=str(tiny_model_dir),
        output_dir=str(tmp_path / "o"),
        data_gates=True,
        data={"train": [{"dataset_info": str(info), "name": entry, "weight": 1.0}]},
        training={"max_steps": 1, "batch_size": 2, "max_length": 128, "tensorboard": False},
    )
    plan = dry_run(load_config(recipe))
    assert plan["train_units"] == units
    assert "format_invalid_share" not in plan["data_gates"]["failed"], plan["data_gates"]  # the gates read the entry
    sources = plan["data"]["sources"] if method == "sft" else plan["data"].get("sources", [])
    assert all(s["path"] == _ref(info, entry) for s in sources)


def test_sparse_optional_columns_and_mapping_typos(info):
    entry = {"file_name": "e.json", "columns": {"prompt": "instruction", "response": "output", "system": "system"}}
    data = json.loads(info.read_text())
    data["e"] = entry
    info.write_text(json.dumps(data))
    (info.parent / "e.json").write_text(
        json.dumps(
            [
                {"instruction": "Hi.", "output": "Hello.", "system": "Be brief."},
                {"instruction": "Bye.", "output": "Goodbye."},
            ]
        )
    )
    first, second = load_samples(_ref(info, "e"))  # a field some records lack reads as empty, as in LLaMA-Factory
    assert _roles(first.messages)[0] == ("system", "Be brief.") and _roles(second.messages)[0] == ("user", "Bye.")
    entry["columns"]["system"] = "sytem"  # ... but a field no record has is a typo in the entry
    typo = _entry_error(info, entry, {"instruction": "Hi.", "output": "Hello.", "system": "Be brief."})
    assert "entry 'e', field 'columns.system': maps system to 'sytem', a field no record" in typo
    empty = _entry_error(info, {"file_name": "e.json"}, {"instruction": "", "input": "", "output": "Hello."})
    assert "field 'instruction': the user turn would be empty" in empty


def test_an_alpaca_record_without_its_output_is_not_read_as_text(info):
    message = _entry_error(info, {"file_name": "e.json"}, {"instruction": "Hi.", "input": ""})
    assert "record 1, field 'output': is missing (entry 'e' maps response to it, LLaMA-Factory's default)" in message
