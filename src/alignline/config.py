"""Typed recipe configs: defaults live here, YAML holds only what differs, `key=value` overrides on top.

One recipe shape serves every method, so a recipe moves between methods by changing `method:`.
Unknown keys and wrongly typed values raise `ConfigError` naming the dotted key and what is allowed; every check
the types cannot express (ranges, sections of grpo/ppo/kto/env/adapter, save_merged, reward files) is in
`config_checks.py`, run by `load_config`. This module is a leaf: it imports no method, model or user code.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Union

import yaml

from alignline.config_checks import normalize_source, validate
from alignline.errors import ConfigError, missing_reason


@dataclass
class DataSource:
    """One training file (or `datasets` directory) and its share of the mix. A LLaMA-Factory `dataset_info.json`
    entry is named as `{dataset_info: PATH/dataset_info.json, name: ENTRY, weight?}` and kept as `path:
    PATH/dataset_info.json#ENTRY` (`data/dataset_info.py`)."""

    path: str
    weight: float = 1.0
    """Relative share of the training mix, e.g. 0.8 domain and 0.2 general replay against forgetting."""


@dataclass
class DataConfig:
    train: list[DataSource] = field(default_factory=list)
    """A path, or a list of {path, weight}; a LLaMA-Factory entry as {dataset_info: PATH/dataset_info.json,
    name: ENTRY} (alone or as an item of the list, with weight)."""
    eval: str | None = None
    """A held-out file (or {dataset_info, name}); or leave empty and set eval_fraction."""
    eval_fraction: float = 0.0
    """Share of the training records held out (seeded) when no eval file is given."""
    loss_on: Literal["assistant", "all"] = "assistant"
    """Chat data: train on assistant turns only (default) or on every token."""
    reasoning: Literal["keep", "drop"] = "keep"
    """Assistant reasoning (`reasoning_content`, `thinking`, `reasoning` parts) the chat template cannot render:
    `keep` refuses the data (nothing is dropped silently), `drop` trains without it and warns once with the count."""
    mix_size: int | None = None
    """Records in the weighted mix; default: the total of all sources."""
    split: str = "train"
    """The split read from a `datasets` directory or a hub dataset (e.g. `train_prefs`); the data gates read the
    same split."""
    eval_split: str | None = None
    """The split read for `data.eval` when it is a `datasets` directory or hub id (e.g. `test_prefs`);
    default: `data.split`."""
    columns: dict[str, str] | None = None
    """Field renames applied to every record of every plain file before its format is detected, `{alignline's
    name: the file's field}`, e.g. `{prompt: question, completion: answer}`. The data gates read the files
    renamed the same way. These are alignline's names, not LLaMA-Factory's: for a LLaMA-Factory `columns`
    mapping (`{prompt: instruction, query: input, response: output}`), name its dataset_info.json entry in
    `train`/`eval` instead."""


@dataclass
class AdapterConfig:
    type: Literal["lora", "qlora", "prompt", "prefix", "bottleneck", "peft"] = "lora"
    """lora | qlora | prompt | prefix | bottleneck (Houlsby/Pfeiffer adapters, `models/bottleneck.py`) |
    peft (any peft config, given in `peft_config`)."""
    r: int = 16
    alpha: int = 32
    dropout: float = 0.05
    """LoRA's dropout."""
    target_modules: str | list[str] = "all-linear"
    use_dora: bool = False
    use_rslora: bool = False
    num_virtual_tokens: int = 20
    """Prompt and prefix tuning: the number of learned virtual tokens."""
    bottleneck_size: int | None = None
    """Bottleneck: the adapter's inner width; give this or `reduction_factor`, not both."""
    reduction_factor: float | None = None
    """Bottleneck: inner width = hidden size / reduction_factor (AdapterHub's name; 16 is common)."""
    placement: Literal["houlsby", "pfeiffer"] = "pfeiffer"
    """Bottleneck: `houlsby` after each layer's attention and feed-forward block, `pfeiffer` after the
    feed-forward block only."""
    non_linearity: str = "relu"
    """Bottleneck: relu | gelu | silu | swish | tanh | leaky_relu | sigmoid | identity."""
    peft_config: Any = None
    """peft: a mapping with `peft_type` (LOHA, LOKR, IA3, OFT, VERA, ADALORA, ...) choosing peft's config
    class and the rest its keyword arguments; `task_type` is set by the method. (AdaLoRA trains at its
    initial rank: the loop does not run its budget schedule.)"""


@dataclass
class TrainingConfig:
    lr: float = 2.0e-4
    batch_size: int = 8
    """Units per micro-batch, by method: sequences for SFT/CPT (packed rows when packing is on), pairs for
    DPO/RM, records for KTO, prompts for GRPO/PPO (each gives `num_generations` sequences, so a micro-batch holds
    batch_size x num_generations of them), tasks for GRPO on an environment (each gives `num_generations`
    episodes)."""
    grad_accum: int = 1
    max_steps: int | None = None
    """Optimizer steps; when unset, `epochs` decides. Set one of the two, not both."""
    epochs: float | None = None
    """Passes over the training data (fractions allowed); None: one epoch, unless max_steps is set."""
    max_length: int = 512
    packing: bool = True
    seed: int = 0
    eval_every: int = 50
    save_every: int = 50
    keep_checkpoints: int = 2
    """How many of the newest checkpoints to keep on disk."""
    log_every: int = 1
    warmup_steps: int = 0
    warmup_ratio: float = 0.0
    lr_scheduler: Literal["linear", "cosine", "constant", "constant_with_warmup"] = "cosine"
    weight_decay: float = 0.0
    max_grad_norm: float = 1.0
    early_stopping_patience: int | None = None
    """Stop after this many evaluations without improvement of the method's watched metric
    (eval loss for SFT/CPT, held-out preference accuracy for DPO/RM)."""
    early_stopping_threshold: float = 0.0
    """How much the watched metric must improve to count (transformers' EarlyStoppingCallback name)."""
    early_stopping_metric: str | None = None
    """Watch this logged eval metric instead of the method's own, e.g. `suite/arithmetic/accuracy`."""
    early_stopping_mode: Literal["min", "max"] = "max"
    """With early_stopping_metric: whether lower or higher is better."""
    eval_suites: list[str] = field(default_factory=list)
    """`alignline eval` suites (files or `starter/<name>`) run at every evaluation on the model being trained,
    logged as `suite/<suite>/<metric>` (one process only)."""
    dtype: Literal["float32", "bfloat16"] = "float32"
    gradient_checkpointing: bool = False
    freeze_layers: int = 0
    """Freeze the embeddings and the first N decoder layers; with LoRA, no adapters there."""
    eval_at_start: bool = False
    """Also evaluate before the first step (logged as step 0): the 'before' of a before/after."""
    eval_max_batches: int | None = None
    """Cap on eval micro-batches per evaluation (None: the whole eval split)."""
    threads: int | None = None
    """CPU threads for torch (None: torch's default)."""
    tensorboard: bool = True
    fast_path: Literal["auto", "off"] | bool = "auto"
    """auto: the exact fast path (fused log-prob head, per-example packed attention, fused layers, fast
    LoRA) where the architecture is on the allow-list or passes a one-batch self-check against its own
    forward; off: the model's own forward throughout, nothing patched (run.json `fast_path` says which).
    YAML reads a bare `off` as false and `on` as true: false means off, true auto."""


@dataclass
class DPOConfig:
    """The DPO family (`method: dpo`); names follow TRL's DPOConfig where one exists."""

    beta: float = 0.1
    loss_type: Literal["sigmoid", "ipo", "robust", "hinge", "simpo"] = "sigmoid"
    """sigmoid: DPO; ipo: IPO; robust: robust DPO for flipped labels; hinge: SLiC; simpo: reference-free,
    length-normalized (SimPO)."""
    label_smoothing: float = 0.0
    """Assumed share of flipped labels: conservative DPO (sigmoid) or robust DPO (robust)."""
    rpo_alpha: float = 0.0
    """Weight of an NLL term on the chosen answers (RPO); 0 turns it off."""
    simpo_gamma: float = 0.5
    use_weights: bool = True
    """Weight each pair by its `weight` / `confidence` field (annotator agreement)."""
    ref_model: str | None = None
    """Reference model: default a frozen copy of the starting policy (LoRA: the base, adapters off)."""
    precompute_ref_logps: bool = False
    """Compute the reference log-probs once before training and reuse them (no reference in memory after)."""
    kl_prompts: int = 8
    """Held-out prompts sampled from the policy at each evaluation to estimate KL(policy || reference)."""
    kl_max_new_tokens: int = 32
    max_kl: float | None = None
    """Stop training when the held-out KL(policy || reference) estimate (`eval_kl`) exceeds this many nats,
    before DPO drifts further from the reference (needs eval data and kl_prompts > 0)."""


@dataclass
class KTOConfig:
    """Unpaired feedback (`method: kto`): names follow TRL's KTOConfig."""

    beta: float = 0.1
    loss_type: Literal["kto", "apo_zero_unpaired"] = "kto"
    """kto: KTO (reference point from mismatched pairs); apo_zero_unpaired: unpaired APO-zero (no reference point)."""
    desirable_weight: float = 1.0
    """Weight of the desirable completions' losses, to balance unequal numbers of each kind."""
    undesirable_weight: float = 1.0


@dataclass
class RewardConfig:
    """Reward models (`method: rm`): Bradley-Terry on a scalar head at the last token."""

    center_rewards_coefficient: float | None = None
    """As TRL's RewardConfig: pulls rewards towards zero mean."""
    use_margin: bool = True
    """Subtract a record's `margin` field inside the sigmoid (as Llama 2's reward models)."""
    use_weights: bool = True


@dataclass
class RewardSpec:
    """One reward component of an online method (`rewards:` list): a grader with a weight."""

    name: str
    """How the component is logged: `reward/<name>` in metrics.jsonl."""
    function: str
    """A registered grader (`math_answer`, `exact_match`, ...), `file.py:function` or `module:function`, with
    TRL's reward signature f(prompts, completions, **columns) -> list[float | None]."""
    weight: float = 1.0
    options: dict[str, Any] = field(default_factory=dict)
    """Keyword options for the grader (e.g. `pattern:` for `regex`)."""
    only_if: str | None = None
    """The name of another component: this one pays only where that one is positive (a format reward gated on
    `accuracy` cannot be earned by shape alone); elsewhere it counts 0."""


@dataclass
class GRPOConfig:
    """GRPO / reinforcement fine-tuning (`method: grpo`); names and defaults follow TRL's GRPOConfig."""

    num_generations: int = 8
    """Completions sampled per prompt (the group)."""
    max_new_tokens: int = 128
    """The longest completion (TRL: max_completion_length)."""
    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = 0
    loss_type: Literal["dapo", "grpo", "dr_grpo"] = "dapo"
    """How token losses are averaged: dapo (over all completion tokens of the step), grpo (per sequence, then
    over sequences), dr_grpo (over sequences x max_new_tokens, a constant)."""
    advantage: Literal["grpo", "rloo"] = "grpo"
    """grpo: reward minus the group mean (scaled by scale_rewards); rloo: minus the mean of the other samples."""
    scale_rewards: Literal["group", "batch", "none"] = "group"
    """Divide advantages by the group's reward std, the batch's, or nothing (Dr. GRPO)."""
    epsilon: float = 0.2
    epsilon_high: float | None = None
    """Upper clip (DAPO's clip-higher, e.g. 0.28); default: epsilon."""
    beta: float = 0.0
    """KL penalty to the reference; 0 keeps no reference model (with LoRA the reference is free: adapters off)."""
    kl_estimator: Literal["k1", "k2", "k3"] = "k3"
    num_iterations: int = 1
    """Optimization passes over each batch of completions (TRL's mu)."""
    mask_truncated_completions: bool = False
    """Completions that hit max_new_tokens get no loss (DAPO's overlong filtering)."""
    overlong_penalty: float = 0.0
    """Reward subtracted from completions that hit max_new_tokens."""
    drop_zero_std_groups: bool = False
    """Groups whose rewards are all equal carry no signal: leave them out of the loss (dynamic sampling)."""
    resample_zero_std: int = 0
    """Re-sample a zero-variance group this many times (new seeds) before dropping it."""
    importance_sampling: Literal["tis", "none"] = "tis"
    """Correct the generator/trainer mismatch (vLLM samples, the trainer scores): tis multiplies each token's loss
    by the truncated ratio min(p_trainer / p_generator, importance_sampling_cap), as TRL does; none ignores it."""
    importance_sampling_cap: float = 2.0
    """Truncated importance sampling: the trainer/generator ratio is capped here."""
    log_completions_every: int = 10
    """Write sampled completions to completions.jsonl every N steps (0: never)."""
    max_kl: float | None = None
    """Alarm (and stop) when the per-token KL to the reference exceeds this."""
    eval_prompts: int = 32
    """Held-out prompts answered greedily at each evaluation (eval_reward and each component)."""


@dataclass
class PPOConfig:
    """PPO-RLHF (`method: ppo`): a value head, a reference and a reward model or graders; names and defaults
    follow TRL's PPOConfig (the adaptive KL controller's, its 0.11 PPOConfig)."""

    num_generations: int = 1
    """Completions sampled per prompt."""
    max_new_tokens: int = 128
    """The longest completion (TRL: response_length)."""
    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = 0
    num_ppo_epochs: int = 4
    """Optimizer steps over each collected batch (TRL's num_ppo_epochs)."""
    cliprange: float = 0.2
    """The policy's ratio clip."""
    cliprange_value: float = 0.2
    """The value head's clip around its rollout prediction."""
    vf_coef: float = 0.1
    """Weight of the value loss in the total loss."""
    gamma: float = 1.0
    lam: float = 0.95
    """GAE's discount and lambda."""
    kl_coef: float = 0.05
    """The KL penalty's coefficient (the start value when adaptive_kl)."""
    kl_estimator: Literal["k1", "k3"] = "k1"
    adaptive_kl: bool = True
    """Steer kl_coef towards target_kl (Ziegler et al. 2019); false keeps it fixed."""
    target_kl: float = 6.0
    """The adaptive controller's target: KL to the reference per completion (summed over its tokens)."""
    horizon: float = 10000.0
    """The adaptive controller's horizon (its gain is completions per step / horizon)."""
    whiten_rewards: bool = False
    """Scale the per-token rewards to unit variance over the step (mean kept)."""
    reward_clip: float | None = None
    """Clip the reward model's scores to [-reward_clip, reward_clip] (TRL's score_clip)."""
    missing_eos_penalty: float | None = None
    """Subtracted from the score of a completion cut at max_new_tokens without EOS."""
    importance_sampling: Literal["tis", "none"] = "tis"
    """As grpo.importance_sampling: with an external generator (vLLM, a server), each token's policy loss is
    weighted by min(p_rollout / p_generator, importance_sampling_cap), p_rollout the trainer's log-probs
    recomputed at collection (PPO's old log-probs); none ignores the mismatch."""
    importance_sampling_cap: float = 2.0
    log_completions_every: int = 10
    """Write sampled completions to completions.jsonl every N steps (0: never)."""
    max_kl: float | None = None
    """Alarm when the per-token KL to the reference exceeds this."""
    eval_prompts: int = 32
    """Held-out prompts answered greedily at each evaluation (eval_reward and each component)."""


@dataclass
class EnvConfig:
    """Multi-step episodes for `method: grpo` (reinforcement fine-tuning on an environment, as SkyRL's
    `environment.env_class` and verl's multi-turn rollout): each prompt record is a task, each of the
    `grpo.num_generations` samples a whole episode (`rollout/episodes.py`), trained on the policy's tokens only."""

    name: str | None = None
    """A registered environment (`calculator`) or a user class `file.py:Class` / `module:Class`; None: one turn."""
    max_turns: int = 3
    """Policy turns per episode at most (then the episode is truncated)."""
    options: dict[str, Any] = field(default_factory=dict)
    """Keyword arguments of the environment's class (calculator: tool_call_reward, format_reward, require_tool,
    shaping_only_if_correct)."""
    prefix: list[dict[str, str]] = field(default_factory=list)
    """Messages put before every task's prompt ({role, content}): a system message saying how to call the tool,
    a worked example (a user turn, the assistant's call, the `tool` result, the answer). Context, never trained."""


@dataclass
class GenerationConfig:
    """How text is generated (evaluation, rollouts, annotation candidates, serving): `rollout/engine.py`."""

    backend: Literal["auto", "hf", "vllm"] = "auto"
    """auto: vLLM where it is installed and can serve the model, else Hugging Face; hf: our reference engine on
    transformers; vllm: vLLM (fails in one line when it cannot load)."""
    server: str | None = None
    """URL of a vLLM server (`alignline rollout-server`); null: generate in this process."""
    dtype: Literal["auto", "float32", "bfloat16"] = "auto"
    """auto: bfloat16 where the hardware has it (a CUDA GPU, or a CPU with avx512_bf16 or AMX), else float32."""
    lora_sync: Literal["auto", "adapter", "merged"] = "auto"
    """How an RL run's LoRA policy reaches an in-process vLLM engine before each step's rollouts. adapter: saved
    and hot-loaded under a new LoRA id (vLLM's LoRA kernels); merged: each adapted layer's weight plus the
    adapter's delta written into the engine's base model (its base kernels; the trainer keeps the adapter);
    auto: merged on a CPU, where vLLM 0.32's LoRA kernels generate 3-5x slower than its base ones
    (docs/performance.md), adapter on a GPU and against a server (a server is sent adapters, not weights)."""


MethodName = Literal["sft", "cpt", "dpo", "rm", "kto", "grpo", "ppo"]
"""The methods a recipe can name; `alignline.methods` maps each to its implementation (a test keeps the two equal)."""


@dataclass
class RunConfig:
    method: MethodName = "sft"
    """sft | cpt | dpo | rm | kto | grpo | ppo (grpo with `env.name`: episodes of an environment)."""
    model: str = "smollm2-135m"
    """`smollm2-135m` (the embedded default), a local model directory, or a hub id where the hub is reachable."""
    data: DataConfig = field(default_factory=DataConfig)
    adapter: AdapterConfig | None = None
    """Omit for full fine-tuning."""
    training: TrainingConfig = field(default_factory=TrainingConfig)
    dpo: DPOConfig = field(default_factory=DPOConfig)
    rm: RewardConfig = field(default_factory=RewardConfig)
    kto: KTOConfig = field(default_factory=KTOConfig)
    grpo: GRPOConfig = field(default_factory=GRPOConfig)
    ppo: PPOConfig = field(default_factory=PPOConfig)
    rewards: list[RewardSpec] = field(default_factory=list)
    """Online methods: the reward components, summed with their weights."""
    generation: GenerationConfig = field(default_factory=GenerationConfig)
    """The generation engine for rollouts and in-training evaluation."""
    env: EnvConfig = field(default_factory=EnvConfig)
    """`method: grpo` on episodes of an environment (`methods/rft.py`); `env.name` unset: single-turn GRPO."""
    sandbox: Literal["auto", "bwrap", "unsafe_local"] = "auto"
    """How code rewards (`unit_tests`) run: auto/bwrap need bubblewrap (no network, read-only filesystem) and
    refuse without it; unsafe_local falls back to a plain subprocess with resource limits only, with a warning."""
    output_dir: str = "runs/run"
    resume: str = "auto"
    """auto (the newest checkpoint in output_dir, if any) | never | a checkpoint path."""
    save_merged: bool = False
    """Also write the adapter merged into the base as a full model in `merged/`."""
    data_gates: bool = True
    """Run the data quality gates (`alignline data check`) before training; a failing gate stops the run."""
    data_gates_config: str | None = None
    """A gates YAML (see recipes/gates.yaml); default: the built-in thresholds."""
    proceed_on_gate_failure: bool = False
    """Train anyway when a gate fails (the report is still written); the CLI's --proceed."""
    report_to: list[Literal["tensorboard", "mlflow"]] | None = None
    """Where each logged step goes besides metrics.jsonl: tensorboard (output_dir/tensorboard/), mlflow (MLflow
    tracking: $MLFLOW_TRACKING_URI, else ./mlflow.db; `pip install 'alignline[tracking]'`). Unset: [tensorboard],
    or [] when training.tensorboard is false; [] for neither. Listing tensorboard with training.tensorboard: false
    is a contradiction (an error naming both keys)."""


# --------------------------------------------------------------------------------------------------
# Building dataclasses from plain dicts, with errors that name the key.


def _type_name(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin is Literal:
        return " | ".join(repr(a) for a in typing.get_args(tp))
    if origin in (Union, types.UnionType):
        return " | ".join(_type_name(a) for a in typing.get_args(tp))
    if origin is list:
        return f"list of {_type_name(typing.get_args(tp)[0])}"
    if dataclasses.is_dataclass(tp):
        return "a mapping"
    return getattr(tp, "__name__", str(tp))


def _coerce(value: Any, tp: Any, key: str) -> Any:
    """Check `value` against the annotation `tp`, converting only where YAML is loose (int for float)."""
    origin = typing.get_origin(tp)
    if tp is Any:
        return value
    if origin in (Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        real = [a for a in args if a is not type(None)]
        if len(real) == 1:  # Optional[X]: X's own error is the helpful one
            return _coerce(value, real[0], key)
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(value, arg, key)
            except ConfigError:
                continue
        raise ConfigError(f"config key '{key}': {value!r} is not {_type_name(tp)}")
    if origin is Literal:
        if value in typing.get_args(tp):
            return value
        raise ConfigError(f"config key '{key}': {value!r} is not allowed; choose one of {_type_name(tp)}")
    if origin is dict:
        key_tp, val_tp = typing.get_args(tp)
        if not isinstance(value, dict):
            raise ConfigError(f"config key '{key}': expected a mapping, got {value!r}")
        return {_coerce(k, key_tp, key): _coerce(v, val_tp, f"{key}.{k}") for k, v in value.items()}
    if origin is list:
        (item_tp,) = typing.get_args(tp)
        if not isinstance(value, list):
            raise ConfigError(f"config key '{key}': expected {_type_name(tp)}, got {value!r}")
        return [_coerce(v, item_tp, f"{key}[{i}]") for i, v in enumerate(value)]
    if dataclasses.is_dataclass(tp):
        return from_dict(tp, value, key)
    if tp is float and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if tp is float and isinstance(value, str):
        try:  # YAML reads 2e-4 (no dot) as a string
            return float(value)
        except ValueError:
            pass
    if tp is bool and isinstance(value, bool):
        return value
    if tp in (int, str) and isinstance(value, tp) and not isinstance(value, bool):
        return value
    raise ConfigError(f"config key '{key}': expected {_type_name(tp)}, got {value!r}")


def from_dict(cls: type, data: Any, prefix: str = "") -> Any:
    """Build dataclass `cls` from a mapping; unknown keys and bad values name the dotted key."""
    if not isinstance(data, dict):
        raise ConfigError(f"config key '{prefix or '<root>'}': expected a mapping, got {data!r}")
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    kwargs = {}
    for key, value in data.items():
        dotted = f"{prefix}.{key}" if prefix else str(key)
        if key not in names:
            raise ConfigError(f"unknown config key '{dotted}'; allowed here: {', '.join(names)}")
        kwargs[key] = _coerce(value, hints[key], dotted)
    try:
        return cls(**kwargs)
    except TypeError as e:  # a required field without a default
        raise ConfigError(f"config '{prefix or '<root>'}': {e}") from None


def _normalize(raw: dict) -> dict:
    """Accept the recipe's short forms: `data.train` as one path, sources as plain strings, `env` as a name."""
    raw = dict(raw)
    data = raw.get("data")
    if isinstance(data, dict):
        data = dict(data)
        train = data.get("train")
        if isinstance(train, str):
            train = [train]
        if isinstance(train, dict) and "dataset_info" in train:  # one LLaMA-Factory entry
            train = [train]
        if isinstance(train, list):
            data["train"] = [
                {"path": t} if isinstance(t, str) else _entry_source(t, f"data.train[{i}]") for i, t in enumerate(train)
            ]
        if isinstance(data.get("eval"), dict) and "dataset_info" in data["eval"]:
            data["eval"] = _entry_source(data["eval"], "data.eval")["path"]
        raw["data"] = data
    if isinstance(raw.get("env"), str):  # `env: calculator`
        raw["env"] = {"name": raw["env"]}
    if isinstance(raw.get("report_to"), str):  # `report_to: mlflow`
        raw["report_to"] = [raw["report_to"]]
    return raw


def _entry_source(item: Any, key: str) -> Any:
    """`{dataset_info, name, weight?}` -> `{path: PATH#NAME, weight?}`; anything else is left to the type checks."""
    if not isinstance(item, dict) or "dataset_info" not in item:
        return item
    return normalize_source(item, key)


# --------------------------------------------------------------------------------------------------
# Overrides: `training.lr=1e-4`, or the short forms `lr=1e-4` and `lora.r=32`.

_SECTION_ALIASES = {"lora": "adapter"}


def _leaf_paths(cls: type, prefix: str = "") -> list[str]:
    out = []
    for f in dataclasses.fields(cls):
        tp = typing.get_type_hints(cls)[f.name]
        # Descend into sections (X or Optional[X]); a list of dataclasses (data.train) is one leaf.
        inner = (
            [tp]
            if dataclasses.is_dataclass(tp)
            else [
                a
                for a in typing.get_args(tp)
                if typing.get_origin(tp) in (Union, types.UnionType) and dataclasses.is_dataclass(a)
            ]
        )
        path = f"{prefix}{f.name}"
        out.extend(_leaf_paths(inner[0], path + ".") if inner else [path])
    return out


def resolve_override_key(key: str) -> str:
    """Map a user's override key to its full dotted path; unknown or ambiguous keys are errors."""
    head, _, rest = key.partition(".")
    if rest and head in _SECTION_ALIASES:
        key = f"{_SECTION_ALIASES[head]}.{rest}"
    leaves = _leaf_paths(RunConfig)
    if key in leaves:
        return key
    matches = [p for p in leaves if p.endswith("." + key)]
    if len(matches) == 1:
        return matches[0]
    if len(matches) > 1:
        raise ConfigError(f"override key '{key}' is ambiguous: {', '.join(matches)}")
    raise ConfigError(f"unknown override key '{key}'; known keys: {', '.join(leaves)}")


# Sections that are absent on purpose (no `adapter:` means full fine-tuning): an override of one of
# their leaves must not create them silently; only their discriminating key may.
_OPTIONAL_SECTIONS = {"adapter": "adapter.type"}


def _check_optional_sections(raw: dict, items: list[tuple[str, str]]) -> None:
    paths = {path for _, path in items}
    for item, path in items:
        section = path.partition(".")[0]
        creator = _OPTIONAL_SECTIONS.get(section)
        if creator is None or isinstance(raw.get(section), dict) or creator in paths:
            continue
        raise ConfigError(
            f"override '{item}': config key '{path}' is in the '{section}:' section, and the recipe "
            f"has no '{section}:' section (full fine-tuning); pass {creator}=lora explicitly to add one"
        )


def apply_overrides(raw: dict, overrides: list[str]) -> dict:
    """Apply `key=value` strings to a raw recipe dict; values are parsed as YAML scalars."""
    raw = dict(raw)
    parsed = []
    for item in overrides:
        key, sep, text = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"override '{item}' is not of the form key=value")
        parsed.append((item, resolve_override_key(key.strip())))
    _check_optional_sections(raw, parsed)
    for item, path in parsed:
        text = item.partition("=")[2]
        value = yaml.safe_load(text) if text.strip() else None
        node = raw
        parts = path.split(".")
        for part in parts[:-1]:
            child = node.get(part)
            node[part] = dict(child) if isinstance(child, dict) else {}
            node = node[part]
        if path == "data.train" and isinstance(value, str):
            value = [value]
        node[parts[-1]] = value
    return raw


def read_yaml_mapping(path: str | Path, what: str = "recipe") -> dict:
    """A YAML file that must hold a mapping; every problem is one ConfigError line naming the file."""
    p = Path(path)
    if not p.is_file():
        if p.is_symlink():  # a loop or a broken link: say so, not "not found"
            raise ConfigError(f"{p}: {what} file is {missing_reason(p)}")
        raise ConfigError(f"{p}: {what} file not found")
    try:
        raw = yaml.safe_load(p.read_text(encoding="utf-8")) or {}
    except PermissionError:
        raise ConfigError(f"{p}: permission denied reading the {what} file") from None
    except OSError as e:
        raise ConfigError(f"{p}: cannot read the {what} file ({e.strerror or type(e).__name__})") from None
    except RecursionError:
        raise ConfigError(f"{p}: not valid YAML (nested too deeply)") from None
    except (yaml.YAMLError, UnicodeDecodeError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ConfigError(f"{p}: not valid YAML ({first})") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{p}: a {what} must be a mapping of keys to values")
    return raw


def load_config(path: str | Path | None, overrides: list[str] | None = None) -> RunConfig:
    """Read a recipe YAML (or nothing: all defaults), apply overrides, return the typed config."""
    raw: dict = read_yaml_mapping(path) if path is not None else {}
    raw = apply_overrides(_normalize(raw), overrides or [])
    config = from_dict(RunConfig, _normalize(raw))
    validate(config)
    return config


def defaults_by_key(cls: type, prefix: str = "") -> dict[str, Any]:
    """{dotted key: default} for every leaf key of a config dataclass (optional sections included)."""
    out: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        tp = typing.get_type_hints(cls)[f.name]
        inner = (
            [tp]
            if dataclasses.is_dataclass(tp)
            else [
                a
                for a in typing.get_args(tp)
                if typing.get_origin(tp) in (Union, types.UnionType) and dataclasses.is_dataclass(a)
            ]
        )
        if inner:
            out.update(defaults_by_key(inner[0], f"{prefix}{f.name}."))
        elif f.default is not dataclasses.MISSING:
            out[f"{prefix}{f.name}"] = f.default
        elif f.default_factory is not dataclasses.MISSING:
            out[f"{prefix}{f.name}"] = f.default_factory()
        else:
            out[f"{prefix}{f.name}"] = None
    return out


def to_dict(config: Any) -> dict:
    return dataclasses.asdict(config)


def report_targets(config: RunConfig) -> list[str]:
    """Where a run's metrics go besides metrics.jsonl: `report_to`, else tensorboard as `training.tensorboard` says
    (the contradiction of both is refused by `config_checks.check_report_to`)."""
    if config.report_to is None:
        return ["tensorboard"] if config.training.tensorboard else []
    return list(dict.fromkeys(config.report_to))
