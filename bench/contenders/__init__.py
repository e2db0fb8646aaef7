"""One module per contender, each with `run(spec) -> Result`; `bench/worker.py` runs one per process."""
