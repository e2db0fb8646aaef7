"""`alignline generate` and `demo` answer through the one generation engine: the prompt the model sees is
`render_prompt`'s, with or without a chat template, and the answer is the engine's completion, stripped."""

import pytest

from alignline.rollout.generator import Generator
from alignline.rollout.hf import HFEngine
from alignline.rollout.types import SamplingParams, render_prompt

MESSAGES = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "What is 2 plus 2?"}]


@pytest.fixture(scope="module")
def generator(tiny_model_dir):
    return Generator(str(tiny_model_dir))


def seen_prompts(engine: HFEngine, monkeypatch) -> list:
    seen = []
    real = engine.encode_left_padded

    def spy(texts):
        seen.extend(texts)
        return real(texts)

    monkeypatch.setattr(engine, "encode_left_padded", spy)
    return seen


@pytest.mark.parametrize("template", [True, False])
def test_the_prompt_is_the_engines_rendering(generator, monkeypatch, template):
    if not template:
        monkeypatch.setattr(generator.tokenizer, "chat_template", None)
    seen = seen_prompts(generator.engine, monkeypatch)
    generator(MESSAGES, max_new_tokens=4)
    assert seen == [render_prompt(generator.tokenizer, MESSAGES)]
    if not template:  # the engine's plain rendering: one line per message, ending in a newline
        assert seen == ["Be brief.\nWhat is 2 plus 2?\n"]
    else:
        assert seen[0].startswith("<|im_start|>system\nBe brief.<|im_end|>\n")


def test_the_answer_is_the_engines_completion_stripped(generator):
    params = SamplingParams(max_new_tokens=6, temperature=0.8, top_p=0.9, seed=5)
    want = generator.engine.generate([MESSAGES], params)[0][0].text.strip()
    assert generator(MESSAGES, max_new_tokens=6, temperature=0.8, top_p=0.9, seed=5) == want
