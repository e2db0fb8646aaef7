"""Model helpers for tests: random adapters, a spy on the model the training loop builds, the weights
of a saved folder. The tiny model builders themselves are `alignline.testing` (bench/ uses them too)."""

from __future__ import annotations

from pathlib import Path


def save_random_adapter(
    base_dir: str | Path, out_dir: str | Path, kind: str = "bottleneck", seed: int = 0, placement: str = "houlsby"
) -> Path:
    """An adapter on the model in `base_dir` with random (not identity) weights, saved to `out_dir`:
    `bottleneck` (ours) or `lora` (peft). Cheaper than training one, and far from the base."""
    import torch

    from alignline.models.bottleneck import BottleneckModel, BottleneckSpec
    from alignline.models.loading import load_model

    base = load_model(str(base_dir))
    torch.manual_seed(seed)
    if kind == "bottleneck":
        model = BottleneckModel(base.requires_grad_(False))
        model.add_adapter("default", BottleneckSpec(bottleneck_size=8, placement=placement))
        marker = ".up."
    else:
        import peft

        model = peft.get_peft_model(
            base, peft.LoraConfig(r=4, lora_alpha=8, target_modules="all-linear", task_type="CAUSAL_LM")
        )
        marker = "lora_B"
    with torch.no_grad():
        for name, p in model.named_parameters():
            if marker in name:
                p.normal_(0, 0.5)
    model.save_pretrained(out_dir, safe_serialization=True)
    return Path(out_dir)


def spy_on_adapted_model(monkeypatch) -> dict:
    """Record the model the training loop builds (after `apply_adapter`), its base weights and its
    trainable weights at the start: `spy['model']`, `spy['frozen']`, `spy['trainable']` (clones)."""
    import alignline.train.loop as loop

    spy: dict = {}
    original = loop.apply_adapter

    def recording(*args, **kwargs):
        model = original(*args, **kwargs)
        spy["model"] = model
        spy["frozen"] = {n: p.detach().clone() for n, p in model.named_parameters() if not p.requires_grad}
        spy["trainable"] = {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}
        return model

    monkeypatch.setattr(loop, "apply_adapter", recording)
    return spy


def safetensors_weights(directory: str | Path) -> dict:
    """Every tensor of every `*.safetensors` file in `directory` (an adapter or a model folder)."""
    from safetensors.torch import load_file

    state = {}
    for f in sorted(Path(directory).glob("*.safetensors")):
        state.update(load_file(f))
    return state
