"""Every static check of a recipe, in one place: what `load_config` refuses, and why, naming the key.

`load_config` (config.py) parses a recipe into `RunConfig`, and `validate` below runs every check here, whatever
sections the recipe has: the same recipe is accepted or refused the same way with or without `adapter:`, in
`alignline config show`, `train --dry-run` and `train`. A check here reads the config and pure facts only: it never
builds a method or a model and never imports user code (a reward `file.py:function` is read as text: the file must
exist and define the function; it runs at training time). The one heavy import is peft, and only for
`adapter.type: peft`, whose `peft_config` only peft itself can judge.

Following a key: `grpo.num_generations` is declared in config.py (`GRPOConfig`), checked in `check_grpo_config`
here, and used in methods/grpo.py (the group size of `SamplingParams(n=...)`).
"""

from __future__ import annotations

import ast
import dataclasses
import math
import re
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

from alignline.errors import ConfigError

if TYPE_CHECKING:  # annotations only: config.py imports this module to run its checks
    from alignline.config import AdapterConfig, DataConfig, GRPOConfig, PPOConfig, RewardSpec, RunConfig

# --------------------------------------------------------------------------------------------------
# Pure facts the checks need (each kept equal to its implementation by a test).

BOTTLENECK_NON_LINEARITIES = ("relu", "gelu", "silu", "swish", "tanh", "leaky_relu", "sigmoid", "identity")
"""The names `models/bottleneck.py`'s NON_LINEARITIES implements."""
KTO_LOSSES_WITH_KL = ("kto",)
"""`kto.loss_type`s that estimate a KL reference point from mismatched pairs (`losses/kto.py` uses_kl)."""
VIRTUAL_TOKEN_ADAPTERS = ("prompt", "prefix")
"""`adapter.type`s that learn virtual tokens instead of weights (nothing to merge)."""
REF = re.compile(r"^(?P<info>.+\.json)#(?P<name>[^#/\\]+)$", re.IGNORECASE)
"""A LLaMA-Factory entry as it travels through the config: `PATH/dataset_info.json#NAME`."""


# --------------------------------------------------------------------------------------------------
# LLaMA-Factory entry references in `data.train` / `data.eval` (read by data/dataset_info.py).


def ref_string(dataset_info: str, name: str) -> str:
    """How a recipe's `{dataset_info, name}` travels through the config: `PATH#NAME`."""
    return f"{dataset_info}#{name}"


def parse_ref(path: str) -> tuple[Path, str] | None:
    """`(dataset_info path, entry name)` when `path` is a `PATH.json#NAME` reference (and not itself a file)."""
    m = REF.match(str(path))
    if m is None or Path(path).exists():
        return None
    return Path(m["info"]), m["name"]


def normalize_source(value: dict, key: str) -> dict:
    """A recipe's `{dataset_info, name, weight?}` -> `{path: PATH#NAME, weight?}`; bad keys are a ConfigError."""
    if "path" in value:
        raise ConfigError(f"config key '{key}': give either path or dataset_info (with name), not both")
    if not isinstance(value.get("dataset_info"), str) or not isinstance(value.get("name"), str):
        raise ConfigError(
            f"config key '{key}': a LLaMA-Factory entry is {{dataset_info: PATH/dataset_info.json, "
            f"name: ENTRY}}, both strings; got {value!r}"
        )
    if not REF.match(ref_string(value["dataset_info"], value["name"])):
        raise ConfigError(
            f"config key '{key}.name': {value['name']!r}: an entry name has no '#', '/' or '\\', and "
            "dataset_info names a .json file"
        )
    out = {k: v for k, v in value.items() if k not in ("dataset_info", "name")}
    out["path"] = ref_string(value["dataset_info"], value["name"])
    return out


# --------------------------------------------------------------------------------------------------
# The whole recipe.


def validate(config: RunConfig) -> None:
    """Every check of a recipe the types cannot express (run by `load_config`)."""
    check_finite(config)
    check_training(config)
    check_data(config)
    check_dpo_config(config)
    if config.env.name is not None and config.method != "grpo":
        raise ConfigError(f"config key 'env.name': environments train with method: grpo, not {config.method}")
    if config.method == "grpo":
        check_grpo_config(config.grpo)
        if config.env.name is not None:
            check_env_config(config)
    if config.method == "ppo":
        check_ppo_config(config.ppo)
    if config.method == "kto":
        check_kto_config(config)
    check_rewards(config)
    check_adapter_config(config)
    check_save_merged(config)
    check_report_to(config)


def check_report_to(config: RunConfig) -> None:
    """`report_to` is the whole list when set; `training.tensorboard: false` beside a list naming tensorboard says
    two things at once."""
    if config.report_to is not None and "tensorboard" in config.report_to and not config.training.tensorboard:
        raise ConfigError(
            "config keys 'report_to' and 'training.tensorboard' contradict each other: report_to lists tensorboard "
            "and training.tensorboard is false; drop one (report_to, when set, is the whole list)"
        )


def check_finite(node: Any, prefix: str = "") -> None:
    """NaN and infinity pass every `<= 0` check and train to NaN weights: refuse them everywhere."""
    for f in dataclasses.fields(node):
        value, key = getattr(node, f.name), f"{prefix}{f.name}"
        if dataclasses.is_dataclass(value):
            check_finite(value, key + ".")
        elif isinstance(value, float) and not math.isfinite(value):
            raise ConfigError(f"config key '{key}': must be a finite number, got {value}")


def check_training(config: RunConfig) -> None:
    t = config.training
    positives = {
        "training.lr": t.lr,
        "training.batch_size": t.batch_size,
        "training.grad_accum": t.grad_accum,
        "training.max_length": t.max_length,
        "training.eval_every": t.eval_every,
        "training.save_every": t.save_every,
        "training.log_every": t.log_every,
        "training.keep_checkpoints": t.keep_checkpoints,
        "training.epochs": t.epochs,
        "training.max_steps": t.max_steps,
        "training.threads": t.threads,
        "training.early_stopping_patience": t.early_stopping_patience,
        "training.eval_max_batches": t.eval_max_batches,
        "data.mix_size": config.data.mix_size,
    }
    if config.adapter is not None:
        positives.update(
            {
                "adapter.r": config.adapter.r,
                "adapter.alpha": config.adapter.alpha,
                "adapter.num_virtual_tokens": config.adapter.num_virtual_tokens,
            }
        )
    for key, value in positives.items():
        if value is not None and value <= 0:
            raise ConfigError(f"config key '{key}': must be > 0, got {value}")
    non_negatives = {
        "training.warmup_steps": t.warmup_steps,
        "training.freeze_layers": t.freeze_layers,
        "training.max_grad_norm": t.max_grad_norm,
        "training.weight_decay": t.weight_decay,
        "training.early_stopping_threshold": t.early_stopping_threshold,
    }
    for key, value in non_negatives.items():
        if value < 0:
            raise ConfigError(f"config key '{key}': must be >= 0, got {value}")
    if t.max_steps is not None and t.epochs is not None:
        raise ConfigError(
            f"config keys 'training.max_steps' ({t.max_steps}) and 'training.epochs' ({t.epochs}) are "
            "both set; set one (e.g. training.epochs=null to train by steps)"
        )
    if config.adapter is not None and not 0.0 <= config.adapter.dropout < 1.0:
        raise ConfigError(f"config key 'adapter.dropout': must be in [0, 1), got {config.adapter.dropout}")
    if (
        t.early_stopping_patience is not None
        and config.data.eval is None
        and config.data.eval_fraction == 0
        and not t.eval_suites
    ):
        raise ConfigError(
            "config key 'training.early_stopping_patience': early stopping needs evaluation data; "
            "set data.eval or data.eval_fraction"
        )
    if not 0.0 <= t.warmup_ratio < 1.0:
        raise ConfigError(f"config key 'training.warmup_ratio': must be in [0, 1), got {t.warmup_ratio}")


def check_data(config: RunConfig) -> None:
    if not 0.0 <= config.data.eval_fraction < 1.0:
        raise ConfigError(f"config key 'data.eval_fraction': must be in [0, 1), got {config.data.eval_fraction}")
    for i, src in enumerate(config.data.train):
        if src.weight <= 0:
            raise ConfigError(f"config key 'data.train[{i}].weight': must be > 0, got {src.weight}")
    check_columns_apply(config.data)


def check_columns_apply(data: DataConfig) -> None:
    """`data.columns` renames plain files' fields; an entry's fields are mapped by the entry itself."""
    entries = [p for p in [*(s.path for s in data.train), data.eval] if p is not None and parse_ref(p)]
    if data.columns and entries:
        raise ConfigError(
            f"config key 'data.columns': renames fields of plain files; {entries[0]} is a LLaMA-Factory "
            "dataset_info entry, which maps its fields with its own `columns`"
        )


def check_dpo_config(config: RunConfig) -> None:
    if not 0.0 <= config.dpo.label_smoothing < 0.5:
        raise ConfigError(f"config key 'dpo.label_smoothing': must be in [0, 0.5), got {config.dpo.label_smoothing}")
    if config.dpo.max_kl is not None:
        if not config.dpo.max_kl > 0:
            raise ConfigError(f"config key 'dpo.max_kl': must be > 0, got {config.dpo.max_kl}")
        if config.dpo.kl_prompts <= 0 or (config.data.eval is None and config.data.eval_fraction == 0):
            raise ConfigError(
                "config key 'dpo.max_kl': the KL is estimated on held-out prompts; set data.eval or "
                "data.eval_fraction, and dpo.kl_prompts > 0"
            )
    if config.dpo.beta <= 0:
        raise ConfigError(f"config key 'dpo.beta': must be > 0, got {config.dpo.beta}")


# --------------------------------------------------------------------------------------------------
# The sections of the online and unpaired methods.


def check_grpo_config(g: GRPOConfig) -> None:
    for key in ("num_generations", "max_new_tokens", "num_iterations"):
        if getattr(g, key) < 1:
            raise ConfigError(f"config key 'grpo.{key}': must be >= 1, got {getattr(g, key)}")
    if g.num_generations < 2:
        raise ConfigError("config key 'grpo.num_generations': a group needs at least 2 completions")
    if g.temperature < 0 or not 0 < g.top_p <= 1 or g.epsilon <= 0 or g.beta < 0:
        raise ConfigError("config key 'grpo': temperature >= 0, 0 < top_p <= 1, epsilon > 0 and beta >= 0")
    if g.importance_sampling_cap <= 0:
        raise ConfigError(f"config key 'grpo.importance_sampling_cap': must be > 0, got {g.importance_sampling_cap}")


def check_ppo_config(p: PPOConfig) -> None:
    """Ranges the types cannot express; each error names its key."""
    checks = [
        ("num_generations", p.num_generations >= 1, ">= 1"),
        ("max_new_tokens", p.max_new_tokens >= 1, ">= 1"),
        ("num_ppo_epochs", p.num_ppo_epochs >= 1, ">= 1"),
        ("temperature", p.temperature >= 0, ">= 0"),
        ("top_p", 0 < p.top_p <= 1, "in (0, 1]"),
        ("top_k", p.top_k >= 0, ">= 0"),
        ("cliprange", p.cliprange > 0, "> 0"),
        ("cliprange_value", p.cliprange_value > 0, "> 0"),
        ("vf_coef", p.vf_coef >= 0, ">= 0"),
        ("gamma", 0 <= p.gamma <= 1, "in [0, 1]"),
        ("lam", 0 <= p.lam <= 1, "in [0, 1]"),
        ("kl_coef", p.kl_coef >= 0, ">= 0"),
        ("target_kl", p.target_kl > 0, "> 0"),
        ("horizon", p.horizon > 0, "> 0"),
        ("reward_clip", p.reward_clip is None or p.reward_clip > 0, "> 0"),
        ("log_completions_every", p.log_completions_every >= 0, ">= 0"),
        ("eval_prompts", p.eval_prompts >= 0, ">= 0"),
        ("importance_sampling_cap", p.importance_sampling_cap > 0, "> 0"),
    ]
    for key, ok, rule in checks:
        if not ok:
            raise ConfigError(f"config key 'ppo.{key}': must be {rule}, got {getattr(p, key)}")
    if p.adaptive_kl and p.kl_coef == 0:
        raise ConfigError(
            "config key 'ppo.kl_coef': the adaptive controller scales it, so it must be > 0 "
            "(or set ppo.adaptive_kl: false)"
        )


def check_kto_config(cfg: RunConfig) -> None:
    k = cfg.kto
    if k.beta <= 0:
        raise ConfigError(f"config key 'kto.beta': must be > 0, got {k.beta}")
    for key in ("desirable_weight", "undesirable_weight"):
        if getattr(k, key) < 0:
            raise ConfigError(f"config key 'kto.{key}': must be >= 0, got {getattr(k, key)}")
    if k.loss_type in KTO_LOSSES_WITH_KL and cfg.training.batch_size < 2:
        raise ConfigError(
            f"config key 'training.batch_size': kto.loss_type 'kto' estimates its KL reference point "
            f"from mismatched pairs within a micro-batch, so it needs batch_size >= 2, got "
            f"{cfg.training.batch_size} (or use kto.loss_type=apo_zero_unpaired)"
        )


def check_env_config(cfg: RunConfig) -> None:
    """The `env:` section's shape. Whether `env.name` and `env.options` make an environment is known only by
    building it, which imports its class: methods/rft.py does that when the run starts."""
    e = cfg.env
    if e.max_turns < 1:
        raise ConfigError(f"config key 'env.max_turns': must be >= 1, got {e.max_turns}")
    for i, m in enumerate(e.prefix):
        if set(m) != {"role", "content"} or not all(isinstance(v, str) for v in m.values()):
            raise ConfigError(f"config key 'env.prefix[{i}]': expected a {{role, content}} message, got {m}")


def check_rewards(cfg: RunConfig) -> None:
    """Reward components: a `file.py:function` must name a file that defines the function. The file is parsed, not
    run: it is user code, and it runs only when training (or `train --dry-run`) builds the rewards. (The rewards'
    own options are checked when `rewards/combine.py`'s RewardSet builds the graders.)"""
    if not cfg.rewards and (cfg.method == "ppo" or (cfg.method == "grpo" and cfg.env.name is None)):
        raise ConfigError(
            "config key 'rewards': an online method needs at least one reward, e.g. "
            "rewards: [{name: accuracy, function: math_answer}]"
        )
    names = [s.name for s in cfg.rewards]
    if len(set(names)) != len(names):
        raise ConfigError(f"config key 'rewards': names must be unique, got {names}")
    for i, spec in enumerate(cfg.rewards):
        if not math.isfinite(spec.weight):
            raise ConfigError(f"config key 'rewards[{i}].weight': must be a finite number, got {spec.weight}")
        target, sep, attr = spec.function.rpartition(":")
        if sep and target.endswith(".py") and attr:
            problem = reward_file_problem(Path(target), attr)
            if problem:
                raise ConfigError(
                    f"config key 'rewards[{i}]' (reward '{spec.name}'): grader '{spec.function}': {problem}"
                )
    gate_order(cfg.rewards)


def gate_order(specs: list[RewardSpec]) -> list[RewardSpec]:
    """The gated specs, each after its gate (so chains compose); a ConfigError naming `rewards[i].only_if`
    for a gate that is not another component, or a cycle."""
    index = {s.name: i for i, s in enumerate(specs)}
    for i, spec in enumerate(specs):
        if spec.only_if is None:
            continue
        if spec.only_if == spec.name:
            raise ConfigError(f"config key 'rewards[{i}].only_if': reward '{spec.name}' cannot be gated on itself")
        if spec.only_if not in index:
            raise ConfigError(
                f"config key 'rewards[{i}].only_if': no reward named '{spec.only_if}'; rewards: {', '.join(index)}"
            )
    ordered: list[RewardSpec] = []
    state: dict[str, str] = {}  # name -> "visiting" | "done"

    def visit(spec: RewardSpec, path: list[str]) -> None:
        if state.get(spec.name) == "done":
            return
        if state.get(spec.name) == "visiting":
            cycle = " -> ".join([*path[path.index(spec.name) :], spec.name])
            raise ConfigError(f"config key 'rewards[{index[spec.name]}].only_if': the gates form a cycle: {cycle}")
        state[spec.name] = "visiting"
        if spec.only_if is not None:
            visit(specs[index[spec.only_if]], [*path, spec.name])
            ordered.append(spec)
        state[spec.name] = "done"

    for spec in specs:
        visit(spec, [])
    return ordered


def reward_file_problem(path: Path, name: str) -> str | None:
    """Why `path` cannot give the function `name`, read without running it; None when it can (as far as text says)."""
    if not path.is_file():
        return f"no such file {path}"
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    except (OSError, UnicodeDecodeError, SyntaxError, ValueError) as e:
        return f"importing {path} would fail: it is not valid Python ({type(e).__name__}: {e})"
    if name in top_level_names(tree):
        return None
    return f"{path} has no function '{name}'"


def top_level_names(tree: ast.Module) -> set[str]:
    """Names a module binds at its top level (def, class, assignment, import, also under if/try/with): any may
    hold the function."""
    names: set[str] = set()
    pending = list(tree.body)
    while pending:
        node = pending.pop()
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Assign | ast.AnnAssign | ast.AugAssign):
            for target in node.targets if isinstance(node, ast.Assign) else [node.target]:
                names.update(n.id for n in ast.walk(target) if isinstance(n, ast.Name))
        elif isinstance(node, ast.Import | ast.ImportFrom):
            names.update((a.asname or a.name).split(".")[0] for a in node.names)
        elif isinstance(node, ast.If | ast.Try | ast.With):
            for block in ("body", "orelse", "finalbody"):
                pending.extend(getattr(node, block, []))
            pending.extend(s for h in getattr(node, "handlers", []) for s in h.body)
    return names


# --------------------------------------------------------------------------------------------------
# adapter: and save_merged.


def check_adapter_config(config: RunConfig) -> None:
    """`adapter:` checks that need more than types and no model. A reward model (`method: rm`) is saved merged."""
    a = config.adapter
    if a is None:
        return
    for key in ("bottleneck_size", "reduction_factor"):
        if a.type != "bottleneck" and getattr(a, key) is not None:
            raise ConfigError(f"config key 'adapter.{key}': only for adapter.type bottleneck, not {a.type}")
    if a.type != "peft" and a.peft_config is not None:
        raise ConfigError(f"config key 'adapter.peft_config': only for adapter.type peft, not {a.type}")
    reward = config.method == "rm"
    if a.type == "bottleneck":
        check_bottleneck(config, reward)
    if a.type == "peft":
        if config.training.freeze_layers:
            raise ConfigError(
                "config key 'training.freeze_layers': not applied with adapter.type peft; give "
                "layers_to_transform in adapter.peft_config where the method has it"
            )
        peft_config_from(a.peft_config, "SEQ_CLS" if reward else "CAUSAL_LM")


def check_bottleneck(config: RunConfig, reward: bool) -> None:
    a = config.adapter
    if (a.bottleneck_size is None) == (a.reduction_factor is None):
        raise ConfigError(
            "config key 'adapter.bottleneck_size': give exactly one of adapter.bottleneck_size "
            "and adapter.reduction_factor" + (", not both" if a.bottleneck_size else "")
        )
    for key in ("bottleneck_size", "reduction_factor"):
        if getattr(a, key) is not None and getattr(a, key) <= 0:
            raise ConfigError(f"config key 'adapter.{key}': must be > 0, got {getattr(a, key)}")
    if a.non_linearity not in BOTTLENECK_NON_LINEARITIES:
        raise ConfigError(
            f"config key 'adapter.non_linearity': {a.non_linearity!r} is not allowed; choose one "
            f"of {', '.join(BOTTLENECK_NON_LINEARITIES)}"
        )
    if config.save_merged:
        raise ConfigError(
            "config key 'save_merged': bottleneck adapters add layers and cannot be merged into "
            "the base weights; leave save_merged off (or use lora)"
        )
    if reward:
        raise ConfigError(
            "config key 'adapter.type': reward models are saved merged, and bottleneck adapters "
            "cannot be merged; use lora or peft for method rm"
        )


def check_save_merged(config: RunConfig) -> None:
    if config.save_merged and uses_virtual_tokens(config.adapter):
        raise ConfigError("config key 'save_merged': prompt and prefix tuning have no weights to merge")


def uses_virtual_tokens(adapter: AdapterConfig | None) -> bool:
    """Prompt and prefix tuning change the model's inputs, so they take the standard forward path."""
    if adapter is not None and adapter.type == "peft":
        import peft  # lazy: heavy (torch), and only a `type: peft` recipe needs it

        return issubclass(peft_config_class(adapter.peft_config), peft.PromptLearningConfig)
    return adapter is not None and adapter.type in VIRTUAL_TOKEN_ADAPTERS


def _first_line(error: Exception) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def peft_config_class(options: Any) -> type:
    """peft's config class for `options['peft_type']` (LOHA, IA3, ...), any case."""
    import peft  # lazy: heavy (torch), and only a `type: peft` recipe needs it

    if not isinstance(options, dict):
        raise ConfigError(f"config key 'adapter.peft_config': expected a mapping with 'peft_type', got {options!r}")
    name = str(options.get("peft_type", "")).upper()
    known = {str(k.value): cls for k, cls in peft.PEFT_TYPE_TO_CONFIG_MAPPING.items()}
    if name not in known:
        raise ConfigError(
            f"config key 'adapter.peft_config.peft_type': {options.get('peft_type')!r} is not a peft "
            f"method; choose one of {', '.join(sorted(known))}"
        )
    return known[name]


def peft_config_from(options: Any, task_type: str) -> Any:
    """A peft config object from `adapter.peft_config`; peft's complaints become one ConfigError line. Building it
    is peft's own check of the options (no model involved)."""
    cls = peft_config_class(options)
    kwargs = {k: v for k, v in options.items() if k != "peft_type"}
    given = kwargs.pop("task_type", None)
    if given is not None and str(given).upper() != task_type:
        raise ConfigError(
            f"config key 'adapter.peft_config.task_type': the method sets it ({task_type}); leave it out, got {given!r}"
        )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return cls(task_type=task_type, **kwargs)
    except (TypeError, ValueError, KeyError) as e:
        raise ConfigError(
            f"config key 'adapter.peft_config': peft's {cls.__name__} rejected it: {_first_line(e)}"
        ) from None
