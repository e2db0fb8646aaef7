"""The pieces moved down a layer for issue 18 keep one implementation, reachable under their old names."""

from alignline.data import templates
from alignline.errors import warn
from alignline.rollout import types
from alignline.train import guards


def test_render_prompt_lives_in_data_and_rollout_reads_the_same():
    assert types.render_prompt is templates.render_prompt
    assert types.TokenIds is templates.TokenIds


def test_render_prompt_without_a_chat_template_joins_the_turns():
    class NoTemplate:
        chat_template = None

        def decode(self, ids):
            return "|".join(map(str, ids))

    tok = NoTemplate()
    assert (
        templates.render_prompt(tok, [{"role": "user", "content": "a"}, {"role": "user", "content": "b"}]) == "a\nb\n"
    )
    assert templates.render_prompt(tok, "as is") == "as is"
    assert templates.render_prompt(tok, templates.TokenIds([1, 2])) == "1|2"


def test_warn_is_one_line_on_stderr_and_guards_still_offers_it(capsys):
    assert guards.warn is warn
    warn("data.reasoning: drop: 2 reasoning not trained")
    assert capsys.readouterr().err == "alignline: warning: data.reasoning: drop: 2 reasoning not trained\n"


def test_gate_training_data_loads_the_gate_configs_tokenizer_with_the_callers_loader(tmp_path, tiny_model_dir):
    import pytest

    from alignline.data.quality import gate_training_data
    from alignline.models.loading import load_tokenizer_for
    from support import write_jsonl

    recs = [
        {"messages": [{"role": "user", "content": f"Hi {i}"}, {"role": "assistant", "content": f"Hello {i}."}]}
        for i in range(5)
    ]
    path = write_jsonl(tmp_path / "train.jsonl", recs)
    gates = tmp_path / "gates.yaml"
    gates.write_text(f"tokenizer: {tiny_model_dir}\n")
    asked = []

    def loader(name):
        asked.append(name)
        return load_tokenizer_for(name)

    report = gate_training_data([str(path)], None, tmp_path / "out", str(gates), progress=False, load_tokenizer=loader)
    assert asked == [str(tiny_model_dir)] and report["records"] == 5
    with pytest.raises(ValueError, match="load_tokenizer"):
        gate_training_data([str(path)], None, tmp_path / "out2", str(gates), progress=False)
