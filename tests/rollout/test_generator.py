"""`alignline generate` loads a trained adapter, a checkpoint or a plain model directory and answers."""

from alignline.cli import main
from alignline.config import load_config
from alignline.train.loop import train

from support import write_jsonl


def test_generate_from_final_checkpoint_and_base(sft_recipe, tiny_model_dir, tmp_path, capsys):
    recipe, out = sft_recipe
    train(load_config(recipe), progress=False)
    prompts = write_jsonl(tmp_path / "p.jsonl", [{"messages": [{"role": "user", "content": "hi"},
                                                               {"role": "assistant", "content": "dropped"}]}])
    for model in (out / "final", out / "checkpoints" / "step-2", tiny_model_dir):
        assert main(["generate", "--model", str(model), "--prompt", "What is 2 plus 2?", "--prompts", str(prompts),
                     "--max-new-tokens", "5"]) == 0
    printed = capsys.readouterr().out
    assert printed.count("### prompt") == 6 and "dropped" not in printed


def test_generate_compare_side_by_side(sft_recipe, tiny_model_dir, capsys):
    recipe, out = sft_recipe
    train(load_config(recipe, ["training.max_steps=1"]), progress=False)
    assert main(["generate", "--model", str(tiny_model_dir), "--compare", str(out / "final"), "--prompt", "hi",
                 "--max-new-tokens", "3"]) == 0
    printed = capsys.readouterr().out
    assert f"--- {tiny_model_dir}" in printed and f"--- {out / 'final'}" in printed


def test_missing_model_is_a_clear_error(capsys, tmp_path):
    assert main(["generate", "--model", str(tmp_path / "nope"), "--prompt", "x"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no such directory" in err[0]


def test_unreachable_hub_id_is_a_clear_error(capsys):
    assert main(["generate", "--model", "someone/not-a-model", "--prompt", "x"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "Hugging Face Hub" in err[0]
