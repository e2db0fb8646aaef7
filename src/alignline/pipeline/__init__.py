"""`alignline pipeline`: a line of training stages with gates between them, and a release with its lineage.

- `config.py`: the pipeline file (`PipelineConfig`), checked whole before anything runs;
- `plan.py`: each stage's resolved recipe and input hash, and what would run and why (`alignline pipeline status`);
- `run.py`: running the line: data gates and training (`evals.training.train`), then the stage's suites and gates;
- `release.py`: `release/`: the merged model (or the adapter), the tokenizer, `lineage.json` and the model card.
"""
