"""The one training loop, shared by every method. Read it top to bottom: `train(config)`.

It runs on accelerate, so the same code trains on a CPU, one GPU, or many GPUs with FSDP or
DeepSpeed picked by `accelerate launch --config_file ...`; alignline does no distribution of its own.
The loop owns what methods must not drift apart on: the data plan, gradient accumulation with
token-level normalization across micro-batches and processes, clipping, the LR schedule, evaluation,
early stopping, checkpoints, resume and logging. A method only turns a micro-batch into a loss.

What a run adds from the layers above the loop (the in-training eval suites, the run report and the
model card) comes in through `RunHooks`; `alignline.evals.training.train` is the loop with them wired,
the entry point of `alignline train`. `train` here runs the loop alone (`BareRun`).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import torch
from tqdm.auto import tqdm

from alignline.config import RunConfig, report_targets, to_dict
from alignline.data.packing import BatchPlan
from alignline.data.quality import GatesFailed, failure_summary, gate_reading, gate_training_data
from alignline.errors import ConfigError, UserError
from alignline.io import append_jsonl, atomic_path
from alignline.methods import get_method
from alignline.methods.base import Experience, add_sums
from alignline.models.adapters import (
    apply_adapter,
    check_qlora_supported,
    parameter_counts,
    qlora_quantization_config,
)
from alignline.models.fast.decision import fast_path_record
from alignline.models.loading import load_model, load_tokenizer_for, name_base_by_hub_id
from alignline.train.checkpoint import (
    TrainerState,
    list_checkpoints,
    load_checkpoint,
    load_method_state,
    method_state,
    save_checkpoint,
    save_model,
)
from alignline.train.guards import check_finite, check_trainable, saving
from alignline.train.metrics import MetricsLog, truncate_after
from alignline.train.plan import StepPlan, step_plan
from alignline.train.resume_check import RESUME_FILE, check_resume, run_fingerprint
from alignline.train.run_info import environment, git_commit, package_versions
from alignline.train.run_record import RunOutcome, RunRecord, RunStart, guarded_run
from alignline.train.step import global_sum, global_sums, optimizer_step
from alignline.train.tracking import start_mlflow

SuiteMetrics = Callable[[Any, Any, int], dict[str, float]]
"""`(model, tokenizer, step) -> {"suite/<suite>/<metric>": value}`: the eval suites run at each evaluation."""


class RunHooks(Protocol):
    """What the layers above the loop add to a run (`alignline.evals.training.FullRun` is the default)."""

    tags: dict[str, str]
    """Tags for the tracking store (`report_to: [mlflow]`): the alignline run id, the git commit."""

    def suites(self, cfg: RunConfig, num_processes: int) -> SuiteMetrics | None:
        """`training.eval_suites`, read when the run starts (a bad suite stops it before training)."""
        ...

    def after_run(self, run_dir: Path) -> None:
        """Main process, once run.json says `completed`: the run report and the model card. A UserError
        (a full disk) marks the run `failed`."""
        ...


class BareRun:
    """The loop alone: no suites, no reports. It refuses `training.eval_suites` rather than skip them."""

    tags: dict[str, str] = {}

    def suites(self, cfg: RunConfig, num_processes: int) -> SuiteMetrics | None:
        if cfg.training.eval_suites:
            raise ConfigError(
                "config key 'training.eval_suites': alignline.train.loop.train runs no suites; "
                "train with alignline.evals.training.train (what `alignline train` runs)"
            )
        return None

    def after_run(self, run_dir: Path) -> None:
        pass


def _resume_dir(cfg: RunConfig, run_dir: Path) -> Path | None:
    if cfg.resume == "never":
        return None
    if cfg.resume == "auto":
        found = list_checkpoints(run_dir / "checkpoints")
        return found[-1] if found else None
    path = Path(cfg.resume)
    if not (path / "trainer_state.json").is_file():
        raise ConfigError(f"config key 'resume': {path} is not a checkpoint directory (no trainer_state.json)")
    return path


def _to(batch: dict[str, torch.Tensor], device) -> dict[str, torch.Tensor]:
    return {k: v.to(device) for k, v in batch.items()}


@torch.no_grad()
def evaluate(
    model, method, units: list, plan: BatchPlan | None, pad_id: int, accelerator, max_batches: int | None = None
) -> dict[str, float]:
    """The method's metrics on the held-out units, prefixed `eval_` (each process takes every n-th batch)."""
    if plan is None:
        return {}
    model.eval()
    sums: dict[str, float] = {}
    batches = plan.epoch(0)[: max_batches or None]
    for rows in batches[accelerator.process_index :: accelerator.num_processes]:
        batch = _to(method.collate(units, rows, pad_id), accelerator.device)
        _, metrics = method.loss(model, batch, max(method.count(batch), 1.0))
        add_sums(sums, metrics)
    model.train()
    return {f"eval_{k}": v for k, v in method.summarize(global_sums(accelerator, sums)).items()}


def _inner_state(state_dict: dict) -> dict:
    """The wrapped HF model's own state dict: wrappers keep it at `.model` (other views of the same
    weights, such as DPO's `.policy`, are dropped)."""
    return {k[len("model.") :]: v for k, v in state_dict.items() if k.startswith("model.")}


def run_data_gates(cfg: RunConfig, tokenizer, run_dir: Path, accelerator) -> dict | None:
    """The data gates, before any model is loaded; the report goes to the run directory. A failing
    gate stops the run (exit 1) unless `proceed_on_gate_failure`."""
    report = None
    if accelerator.is_main_process:
        report = gate_training_data(
            [s.path for s in cfg.data.train],
            cfg.data.eval,
            run_dir,
            cfg.data_gates_config,
            tokenizer=tokenizer,
            max_length=cfg.training.max_length,
            progress=False,
            **gate_reading(cfg.data),
        )
    accelerator.wait_for_everyone()
    passed = report["passed"] if report is not None else True
    if accelerator.num_processes > 1:
        passed = bool(global_sum(accelerator, float(not passed)) == 0)
    if not passed and not cfg.proceed_on_gate_failure:
        summary = failure_summary(report) if report else "see data_report.json"
        raise GatesFailed(
            f"data gates failed: {summary}; report: {run_dir / 'data_report.html'} "
            "(fix the data, or pass --proceed to train anyway)"
        )
    return {"passed": report["passed"], "gates": report["gates"]} if report else None


def _improved(value: float, best: float | None, mode: str, threshold: float = 0.0) -> bool:
    return best is None or (value < best - threshold if mode == "min" else value > best + threshold)


def _save_final(cfg: RunConfig, run_dir: Path, model, tokenizer, state_dict, merged_final: bool) -> Path:
    """`final/`: the adapter (PEFT layout) or the full model, with the tokenizer. Reward models are
    merged into `final/` (adapter kept in `final/adapter/`) so AutoModelForSequenceClassification
    loads them as they are. `merged/`: the adapter merged into a full model, on request."""
    import json

    def publish(target: Path, write) -> None:
        with saving(target), atomic_path(target, directory=True) as tmp:
            write(tmp)
            name_base_by_hub_id(tmp)
            tokenizer.save_pretrained(tmp)
            (tmp / "alignline_model.json").write_text(
                json.dumps(
                    {
                        "base_model": cfg.model,
                        "method": cfg.method,
                        "adapter": cfg.adapter.type if cfg.adapter else None,
                    }
                )
            )

    final = run_dir / "final"
    has_adapter = cfg.adapter is not None
    if merged_final and has_adapter:

        def write_merged_with_adapter(tmp: Path) -> None:
            save_model(model, tmp / "adapter", state_dict)
            model.merge_and_unload().save_pretrained(tmp, safe_serialization=True)

        publish(final, write_merged_with_adapter)
        return final
    publish(final, lambda tmp: save_model(model, tmp, state_dict))
    if cfg.save_merged and has_adapter:
        publish(run_dir / "merged", lambda tmp: model.merge_and_unload().save_pretrained(tmp, safe_serialization=True))
    return final


@dataclass
class Run:
    """Everything one training run holds between its start and its end."""

    cfg: RunConfig
    run_dir: Path
    accelerator: Any
    method: Any
    tokenizer: Any
    data: Any
    model: Any
    """The (PEFT-wrapped) model itself."""
    wrapped: torch.nn.Module
    """What the method computes its loss through, prepared by accelerate."""
    plan: BatchPlan
    eval_plan: BatchPlan | None
    steps: StepPlan
    params: list
    optimizer: Any
    scheduler: Any
    state: TrainerState
    log: MetricsLog
    record: RunRecord
    """What run.json says."""
    progress: bool
    started: float
    """time.time() when the run began (before the data was read)."""
    fingerprint: str
    """What defines this run's model and data (train/resume_check.py), saved with every checkpoint."""
    hooks: RunHooks
    suites: SuiteMetrics | None
    """`training.eval_suites`, read at the start (`hooks.suites`)."""

    @property
    def main(self) -> bool:
        return self.accelerator.is_main_process


def train(cfg: RunConfig, progress: bool = True, hooks: RunHooks | None = None) -> Path:
    """Train as the recipe says; return the run directory. Resumes from a checkpoint when one applies.
    The output directory is locked for the run, and run.json says `failed` and why if it fails.
    `hooks` add the suites and reports (`alignline.evals.training.train` passes them); none: the loop alone."""
    with guarded_run(cfg):
        run = start_run(cfg, progress, hooks or BareRun())
        try:
            run_steps(run)
            return finish_run(run)
        except BaseException:
            run.log.close(failed=True)  # the MLflow run ends FAILED (closing twice is closing once)
            raise


def start_run(cfg: RunConfig, progress: bool, hooks: RunHooks) -> Run:
    """Data, gates, model, optimizer, resume: everything before the first step."""
    from accelerate import Accelerator
    from accelerate.utils import set_seed
    from transformers import get_scheduler

    t = cfg.training
    if t.threads:
        torch.set_num_threads(t.threads)
    # accelerate turns on multi-process CPU training (gloo) only when told it runs on the CPU
    no_accelerator = not torch.cuda.is_available() and not torch.backends.mps.is_available()
    accelerator = Accelerator(cpu=no_accelerator)
    set_seed(t.seed)
    run_dir = Path(cfg.output_dir)
    method = get_method(cfg)
    started = time.time()

    # 1. Data first: a bad record should stop the run before a large model is loaded. QLoRA is
    # checked before anything slow happens.
    quantization = None
    if cfg.adapter is not None and cfg.adapter.type == "qlora":
        check_qlora_supported()
        quantization = qlora_quantization_config()
    tokenizer = load_tokenizer_for(cfg.model)
    data = method.prepare(cfg, tokenizer, progress and accelerator.is_main_process)
    resume_from = _resume_dir(cfg, run_dir)
    suites = hooks.suites(cfg, accelerator.num_processes)
    fingerprint = run_fingerprint(cfg, data.report)
    check_resume(resume_from, fingerprint, cfg, verbose=accelerator.is_main_process)
    gates = run_data_gates(cfg, tokenizer, run_dir, accelerator) if cfg.data_gates and resume_from is None else None
    model = load_model(
        cfg.model,
        t.dtype,
        trainable_adapter=True,
        quantization_config=quantization,
        kind=method.model_kind,
        pad_token_id=tokenizer.pad_token_id,
    )
    model = apply_adapter(model, cfg.adapter, t, task_type="SEQ_CLS" if method.model_kind == "reward" else "CAUSAL_LM")
    wrapped = method.wrap(model, cfg)

    # 2. The plan: which rows form micro-batch k, for every k, fixed by the seed.
    plan = method.plan(data.train, cfg, t.seed)
    eval_plan = method.plan(data.eval, cfg, None)
    steps = step_plan(t, plan.batches_per_epoch, accelerator.num_processes)
    params = [p for p in wrapped.parameters() if p.requires_grad]
    check_trainable(params, cfg)
    optimizer = torch.optim.AdamW(params, lr=t.lr, weight_decay=t.weight_decay)
    # An online method takes `passes` optimizer steps per collection; the schedule counts every one.
    scheduler = get_scheduler(
        t.lr_scheduler,
        optimizer,
        num_warmup_steps=steps.warmup_steps * method.passes,
        num_training_steps=steps.total_steps * method.passes,
    )
    wrapped, optimizer = accelerator.prepare(wrapped, optimizer)

    # 3. Resume: weights, optimizer, scheduler, RNG and the step (hence the data position).
    state = TrainerState()
    if resume_from is not None:
        state = load_checkpoint(resume_from, accelerator.unwrap_model(wrapped).model, optimizer, scheduler)
        load_method_state(resume_from, accelerator.unwrap_model(wrapped), method.checkpoint_extras)
        if accelerator.is_main_process:  # records logged after the checkpoint will be logged again
            for log in ("completions.jsonl", "eval_episodes.jsonl"):  # eval_episodes: methods/rft.py
                truncate_after(run_dir / log, state.step)
    method.setup(accelerator.unwrap_model(wrapped), data, tokenizer.pad_token_id, accelerator.device)
    main = accelerator.is_main_process
    record = RunRecord(
        "running",
        to_dict(cfg),
        RunStart(
            data=data.report.as_json(),
            model={"spec": cfg.model, "parameters": parameter_counts(model)},
            plan={
                "total_steps": steps.total_steps,
                "rows": len(plan.rows),
                "batches_per_epoch": plan.batches_per_epoch,
            },
            fast_path=fast_path_record(wrapped),
            data_gates=gates,
            resumed_from=str(resume_from) if resume_from else None,
            packages=package_versions(),
            git_commit=git_commit(),
            environment=environment(),
            generation=method.generation_record(),
        ),
    )
    if main:
        run_dir.mkdir(parents=True, exist_ok=True)
        with saving(run_dir / "run.json"):
            record.write(run_dir / "run.json")
    targets = report_targets(cfg)
    tracker = start_mlflow(run_dir, to_dict(cfg), hooks.tags, state.step) if main and "mlflow" in targets else None
    log = MetricsLog(run_dir, state.step, "tensorboard" in targets, enabled=main, tracker=tracker)
    return Run(
        cfg,
        run_dir,
        accelerator,
        method,
        tokenizer,
        data,
        model,
        wrapped,
        plan,
        eval_plan,
        steps,
        params,
        optimizer,
        scheduler,
        state,
        log,
        record,
        progress,
        started,
        fingerprint,
        hooks,
        suites,
    )


def evaluate_run(run: Run) -> dict[str, float]:
    """Held-out metrics of the method, plus its extra evaluation (main process), prefixed `eval_`."""
    pad_id = run.tokenizer.pad_token_id
    # An online method has no held-out loss: only its own evaluation (e.g. rewards on held-out prompts).
    online = run.method.online
    result = (
        {}
        if online
        else evaluate(
            run.wrapped,
            run.method,
            run.data.eval,
            run.eval_plan,
            pad_id,
            run.accelerator,
            run.cfg.training.eval_max_batches,
        )
    )
    if run.main and (result or (online and run.data.eval)):
        extra = run.method.extra_eval(
            run.accelerator.unwrap_model(run.wrapped),
            run.data,
            pad_id,
            run.accelerator.device,
            run.tokenizer,
            run.state.step,
        )
        result.update({f"eval_{k}": v for k, v in extra.items()})
    return with_suites(run, result)


def with_suites(run: Run, result: dict[str, float]) -> dict[str, float]:
    """The evaluation plus the training suites' metrics (main process)."""
    if run.suites and run.main:
        model = run.accelerator.unwrap_model(run.wrapped).model
        result = {**result, **run.suites(model, run.tokenizer, run.state.step)}
    return result


def note_eval(run: Run, result: dict[str, float]) -> None:
    """Record an evaluation and update early stopping on the method's watched metric."""
    t, state = run.cfg.training, run.state
    state.history.append({"step": state.step, **result})
    watched, mode = (
        (t.early_stopping_metric, t.early_stopping_mode) if t.early_stopping_metric else run.method.early_stopping
    )
    if watched not in result:
        raise ConfigError(
            f"config key 'training.early_stopping_metric': {watched!r} is not among the evaluation's "
            f"metrics ({', '.join(sorted(result))})"
        )
    if _improved(result[watched], state.best_eval, mode, t.early_stopping_threshold):
        state.best_eval, state.evals_without_improvement = result[watched], 0
    else:
        state.evals_without_improvement += 1
    if t.early_stopping_patience and state.evals_without_improvement >= t.early_stopping_patience:
        state.stopped_early = True
        state.stop_reason = f"{watched} did not improve in {state.evals_without_improvement} evaluations"
    reason = run.method.stop_reason(result)
    if reason:
        state.stopped_early, state.stop_reason = True, reason
        print(f"alignline: stopping at step {state.step}: {reason}", file=sys.stderr)


def save_run_checkpoint(run: Run) -> None:
    run.accelerator.wait_for_everyone()
    state_dict = run.accelerator.get_state_dict(run.wrapped)
    if run.main:
        inner = run.accelerator.unwrap_model(run.wrapped).model
        saved = save_checkpoint(
            run.run_dir / "checkpoints",
            run.state.step,
            inner,
            run.optimizer,
            run.scheduler,
            run.state,
            tokenizer=run.tokenizer,
            keep=run.cfg.training.keep_checkpoints,
            state_dict=_inner_state(state_dict),
            extra_files={RESUME_FILE: run.fingerprint},
            method_tensors=method_state(state_dict, run.method.checkpoint_extras),
        )
        name_base_by_hub_id(saved)


def step_batches(run: Run) -> Experience:
    """This step's micro-batches: collated from the plan (offline), or collected by the method (online)."""
    accelerator, method, state = run.accelerator, run.method, run.state
    micro_per_step, pad_id = run.steps.micro_per_step, run.tokenizer.pad_token_id
    first = state.step * micro_per_step + accelerator.process_index
    ks = range(first, first + micro_per_step, accelerator.num_processes)
    if method.online:
        return method.collect(
            run.wrapped, run.data.train, [run.plan.batch(k) for k in ks], state.step, accelerator.device
        )
    return Experience(
        [_to(method.collate(run.data.train, run.plan.batch(k), pad_id), accelerator.device) for k in ks], {}, []
    )


def run_steps(run: Run) -> None:
    """The one loop: each step's micro-batches (from the plan, or collected by an online method), the
    shared optimizer step over them (`method.passes` times), eval, log, save."""
    t, state, accelerator, method = run.cfg.training, run.state, run.accelerator, run.method
    total_steps = run.steps.total_steps
    run.wrapped.train()
    bar = tqdm(
        total=total_steps,
        initial=state.step,
        desc=f"{run.cfg.method}",
        dynamic_ncols=True,
        disable=not (run.progress and run.main),
    )
    if t.eval_at_start and state.step == 0 and run.data.eval:
        before = evaluate_run(run)
        state.history.append({"step": 0, **before})
        run.log.log({"step": 0, **before})
    window_start, window_tokens, paused = time.time(), 0, 0.0  # paused: eval and checkpoint time, not training
    while state.step < total_steps:
        step_started = time.time()
        experience = step_batches(run)
        for p in range(method.passes):
            last = p == method.passes - 1
            outcome = optimizer_step(
                accelerator,
                run.wrapped,
                method,
                experience.micro_batches,
                run.params,
                run.optimizer,
                run.scheduler,
                t.max_grad_norm,
                extra_sums=experience.metrics if last else None,
            )
        state.step += 1
        state.tokens_seen += outcome.tokens
        window_tokens += outcome.tokens

        record = {
            "step": state.step,
            **outcome.metrics,
            "lr": run.scheduler.get_last_lr()[0],
            "tokens": outcome.tokens,
            "padding": round(outcome.padding, 4),
        }
        if outcome.grad_norm is not None:
            record["grad_norm"] = outcome.grad_norm
        record["step_seconds"] = time.time() - step_started
        check_finite(record)
        alarms = method.alarms(record)
        if alarms:
            record["alarms"] = alarms
            for line in alarms:
                print(f"alignline: alarm at step {state.step}: {line}", file=sys.stderr)
        if experience.samples and run.main:
            with saving(run.run_dir / "completions.jsonl"):
                append_jsonl(run.run_dir / "completions.jsonl", experience.samples)
        result = {}
        if state.step % t.eval_every == 0 or state.step == total_steps:
            eval_started = time.time()
            result = evaluate_run(run)
            if result:
                record.update(result)
                note_eval(run, result)
            paused += time.time() - eval_started
        if state.step % t.log_every == 0 or state.step == total_steps or result:
            elapsed = time.time() - window_start - paused
            record["tokens_per_s"] = window_tokens / elapsed if elapsed > 0 else 0.0
            window_start, window_tokens, paused = time.time(), 0, 0.0
            with saving(run.log.path):
                run.log.log(record)
            bar.set_postfix(loss=f"{record['loss']:.4f}", tok_s=f"{record['tokens_per_s']:.0f}")
        bar.update(1)
        if state.step % t.save_every == 0 or state.step == total_steps or state.stopped_early:
            saving_started = time.time()
            save_run_checkpoint(run)
            paused += time.time() - saving_started
        if state.stopped_early:
            break
    bar.close()


def finish_run(run: Run) -> Path:
    """The result, in Hugging Face layout, and the run record."""
    run.accelerator.wait_for_everyone()
    state_dict = run.accelerator.get_state_dict(run.wrapped)
    if run.main:
        inner = run.accelerator.unwrap_model(run.wrapped).model
        final = _save_final(
            run.cfg,
            run.run_dir,
            inner,
            run.tokenizer,
            _inner_state(state_dict),
            merged_final=run.method.model_kind == "reward",
        )
        state = run.state
        run.record.completed(
            RunOutcome(
                steps=state.step,
                stopped_early=state.stopped_early,
                stop_reason=state.stop_reason,
                tokens_seen=state.tokens_seen,
                best_eval={run.method.early_stopping[0]: state.best_eval},
                evals=state.history,
                final=str(final),
                seconds=time.time() - run.started,
            )
        )
        with saving(run.run_dir / "run.json"):
            run.record.write(run.run_dir / "run.json")
        write_reports(run)
        run.log.close()  # after the reports: the tracker logs the model card and report with run.json
    return run.run_dir


def write_reports(run: Run) -> None:
    """The hooks' reports (the model card, the run report), written after run.json says `completed`: a full
    disk here still leaves run.json `failed` (guarded_run leaves a completed record alone, so this says it itself)."""
    try:
        run.hooks.after_run(run.run_dir)
    except UserError as e:
        run.record.failed(str(e))
        try:
            run.record.write(run.run_dir / "run.json")
        except OSError:  # the disk that failed: the one-line error still reaches the user
            pass
        raise
