"""The exact fast path of `TokenLogprobModel` and `RewardModel`: what is on is decided once, in
`decision.py` (an allow-list, else a one-batch self-check against the model's own forward); the parts are
`head.py` (what each architecture applies to its logits), `packed_attention.py`, `fused_layers.py` and
`fast_lora.py`, installed and removed through `patching.py`; `training.fast_path: off` turns it all off."""
