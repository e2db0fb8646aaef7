"""OpenAI tool use, read as OpenAI means it: tool calls are rendered (by the template's own tool support,
or the documented fallback text) and their tokens are trained; `developer` maps to `system` where the
template lacks it. Each test decodes exactly the trained tokens."""

import json

import pytest

from alignline.data.dataset import load_samples
from alignline.data.formats import to_sample
from alignline.data.show import trained_text
from alignline.data.templates import build_examples, template_traits, tokenize_sample
from alignline.errors import DataError
from support import tiny_tokenizer, write_jsonl

# Modeled on Qwen2.5's template: tools in the system turn, tool calls as <tool_call> JSON, tool results
# grouped in a user turn as <tool_response>.
QWEN_LIKE = (
    "{%- if tools %}{{- '<|im_start|>system\\n' }}"
    "{%- if messages[0]['role'] == 'system' %}{{- messages[0]['content'] }}"
    "{%- else %}{{- 'You are helpful.' }}{%- endif %}"
    "{{- '\\n\\n# Tools\\n<tools>' }}{%- for tool in tools %}{{- '\\n' }}{{- tool | tojson }}{%- endfor %}"
    "{{- '\\n</tools><|im_end|>\\n' }}"
    "{%- elif messages[0]['role'] == 'system' %}"
    "{{- '<|im_start|>system\\n' + messages[0]['content'] + '<|im_end|>\\n' }}"
    "{%- else %}{{- '<|im_start|>system\\nYou are helpful.<|im_end|>\\n' }}{%- endif %}"
    "{%- for message in messages %}"
    "{%- if message.role == 'user' or (message.role == 'system' and not loop.first) or "
    "(message.role == 'assistant' and not message.tool_calls) %}"
    "{{- '<|im_start|>' + message.role + '\\n' + message.content + '<|im_end|>\\n' }}"
    "{%- elif message.role == 'assistant' %}{{- '<|im_start|>' + message.role }}"
    "{%- if message.content %}{{- '\\n' + message.content }}{%- endif %}"
    "{%- for tool_call in message.tool_calls %}{%- if tool_call.function is defined %}"
    "{%- set tool_call = tool_call.function %}{%- endif %}"
    '{{- \'\\n<tool_call>\\n{"name": "\' }}{{- tool_call.name }}{{- \'", "arguments": \' }}'
    "{{- tool_call.arguments | tojson }}{{- '}\\n</tool_call>' }}{%- endfor %}{{- '<|im_end|>\\n' }}"
    "{%- elif message.role == 'tool' %}"
    "{%- if loop.index0 == 0 or messages[loop.index0 - 1].role != 'tool' %}{{- '<|im_start|>user' }}{%- endif %}"
    "{{- '\\n<tool_response>\\n' + message.content + '\\n</tool_response>' }}"
    "{%- if loop.last or messages[loop.index0 + 1].role != 'tool' %}{{- '<|im_end|>\\n' }}{%- endif %}"
    "{%- endif %}{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}"
)

WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    },
}


def tool_record(arguments='{"city": "Paris"}', content=None):
    """OpenAI chat-completions shape: developer turn, a tool call with no content, the tool's answer."""
    call = {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": arguments}}
    assistant = {"role": "assistant", "tool_calls": [call]}
    if content != "absent":
        assistant["content"] = content
    return {
        "tools": [WEATHER],
        "messages": [
            {"role": "developer", "content": "Be brief."},
            {"role": "user", "content": "Weather in Paris?"},
            assistant,
            {"role": "tool", "tool_call_id": "call_1", "content": "18C"},
            {"role": "assistant", "content": "18C in Paris."},
        ],
    }


@pytest.fixture(scope="module")
def qwen_tokenizer():
    tok = tiny_tokenizer()
    tok.chat_template = QWEN_LIKE
    return tok


def test_traits_are_read_from_the_template(tokenizer, qwen_tokenizer):
    assert template_traits(qwen_tokenizer).tool_calls and template_traits(qwen_tokenizer).tools
    assert not template_traits(qwen_tokenizer).developer
    t = template_traits(tokenizer)
    assert not (t.tool_calls or t.tools or t.developer)


@pytest.mark.parametrize("content", [None, "absent"])
def test_template_with_tool_support_renders_and_trains_the_call(qwen_tokenizer, content):
    sample = to_sample(tool_record(content=content), "f.jsonl", "line 1")
    ids, mask = tokenize_sample(qwen_tokenizer, sample)
    full = qwen_tokenizer.decode(ids)
    # the template's own tools block, with developer mapped to system
    assert full.startswith(
        '<|im_start|>system\nBe brief.\n\n# Tools\n<tools>\n{"type": "function", "function": {"name": "get_weather"'
    )
    assert "<|im_start|>user\n<tool_response>\n18C\n</tool_response><|im_end|>" in full
    assert trained_text(qwen_tokenizer, ids, mask) == (
        '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n</tool_call><|im_end|>'
        "18C in Paris.<|im_end|>"
    )


def test_arguments_as_an_object_render_the_same(qwen_tokenizer):
    as_text = tokenize_sample(qwen_tokenizer, to_sample(tool_record(), "f", "line 1"))
    as_object = tokenize_sample(qwen_tokenizer, to_sample(tool_record(arguments={"city": "Paris"}), "f", "line 1"))
    assert as_text == as_object


def test_template_without_tool_support_uses_the_fallback_text(tokenizer):
    sample = to_sample(tool_record(), "f.jsonl", "line 1")
    ids, mask = tokenize_sample(tokenizer, sample)
    full = tokenizer.decode(ids)
    assert full.startswith("<|im_start|>system\nBe brief.\n\n# Tools\n\nYou may call these functions")
    assert '<tools>\n{"type": "function", "function": {"name": "get_weather", "description": "Current weather"' in full
    assert "<|im_start|>tool\n<tool_response>\n18C\n</tool_response><|im_end|>" in full
    assert trained_text(tokenizer, ids, mask) == (
        '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n</tool_call><|im_end|>'
        "18C in Paris.<|im_end|>"
    )
    # the shifted targets of the training example teach exactly the same tokens
    (ex,) = build_examples(tokenizer, sample, 4096)
    assert tokenizer.decode([t for t in ex.targets if t != -100]) == trained_text(tokenizer, ids, mask)


def test_tool_call_with_content_keeps_both(tokenizer):
    sample = to_sample(tool_record(content="Checking."), "f", "line 1")
    ids, mask = tokenize_sample(tokenizer, sample)
    assert trained_text(tokenizer, ids, mask).startswith('Checking.\n<tool_call>\n{"name": "get_weather"')


def test_developer_role_stays_where_the_template_knows_it():
    tok = tiny_tokenizer()
    tok.chat_template = tok.chat_template.replace("message['role']", "message['role']") + "{# developer #}"
    sample = to_sample(
        {
            "messages": [
                {"role": "developer", "content": "D"},
                {"role": "user", "content": "u"},
                {"role": "assistant", "content": "a"},
            ]
        },
        "f",
        "line 1",
    )
    ids, mask = tokenize_sample(tok, sample)
    assert tok.decode(ids).startswith(
        "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>developer\nD<|im_end|>"
    )
    assert trained_text(tok, ids, mask) == "a<|im_end|>"


def test_content_parts_are_joined_and_images_refused(tmp_path, tokenizer):
    rec = {
        "messages": [
            {
                "role": "user",
                "content": [{"type": "text", "text": "Hello, "}, {"type": "text", "text": "how are you?"}],
            },
            {"role": "assistant", "content": [{"type": "text", "text": "Fine."}]},
        ]
    }
    (s,) = load_samples(str(write_jsonl(tmp_path / "p.jsonl", [rec])))
    assert [m.content for m in s.messages] == ["Hello, how are you?", "Fine."]
    ids, mask = tokenize_sample(tokenizer, s)
    assert trained_text(tokenizer, ids, mask) == "Fine.<|im_end|>"
    rec["messages"][0]["content"].append({"type": "image_url", "image_url": {"url": "x.png"}})
    with pytest.raises(DataError, match=r"line 1, field 'messages\[0\].content\[2\].type': a 'image_url' part"):
        load_samples(str(write_jsonl(tmp_path / "i.jsonl", [rec])))


@pytest.mark.parametrize(
    "mutate, fld, needle",
    [
        (
            lambda r: r["messages"][2]["tool_calls"][0]["function"].update(arguments="{city: Paris"),
            "messages[2].tool_calls[0].function.arguments",
            "not valid JSON",
        ),
        (
            lambda r: r["messages"][2]["tool_calls"][0]["function"].pop("name"),
            "messages[2].tool_calls[0].function.name",
            "missing",
        ),
        (lambda r: r.update(tools="nope"), "tools", "not valid JSON"),
        (lambda r: r["messages"][1].update(weight=True), "messages[1].weight", "must be 0 or 1, got true"),
    ],
)
def test_bad_tool_fields_name_the_field(tmp_path, mutate, fld, needle):
    rec = tool_record()
    mutate(rec)
    with pytest.raises(DataError) as e:
        load_samples(str(write_jsonl(tmp_path / "t.jsonl", [rec])))
    assert f"field '{fld}'" in str(e.value) and needle in str(e.value)


def test_sharegpt_function_call_and_observation(tokenizer, qwen_tokenizer):
    """LLaMA-Factory's tool format: function_call turns hold {name, arguments} JSON, tools a JSON string."""
    rec = {
        "conversations": [
            {"from": "human", "value": "Weather in Paris?"},
            {"from": "function_call", "value": json.dumps({"name": "get_weather", "arguments": {"city": "Paris"}})},
            {"from": "observation", "value": "18C"},
            {"from": "gpt", "value": "18C in Paris."},
        ],
        "tools": json.dumps([WEATHER["function"]]),
    }
    sample = to_sample(rec, "f", "line 1")
    assert sample.tools == [WEATHER] and sample.messages[1].tool_calls[0]["function"]["name"] == "get_weather"
    ids, mask = tokenize_sample(qwen_tokenizer, sample)
    assert trained_text(qwen_tokenizer, ids, mask) == (
        '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n</tool_call><|im_end|>'
        "18C in Paris.<|im_end|>"
    )


def test_fallback_tools_turn_without_a_system_turn_keeps_the_mask(tokenizer):
    rec = tool_record()
    rec["messages"] = rec["messages"][1:]  # no developer/system turn: the tools turn is put first
    ids, mask = tokenize_sample(tokenizer, to_sample(rec, "f", "line 1"))
    assert tokenizer.decode(ids).startswith("<|im_start|>system\n# Tools\n\nYou may call these functions")
    assert trained_text(tokenizer, ids, mask) == (
        '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n</tool_call><|im_end|>'
        "18C in Paris.<|im_end|>"
    )
