"""`alignline serve`: an OpenAI-compatible server over the generation engine, with confidence routing.

- `app.py`: the HTTP API (`/v1/models`, `/v1/chat/completions`, streaming too) and the one engine worker
  that batches waiting requests (fastapi is imported there only);
- `confidence.py`: a confidence score for every answer (token probabilities, or a reward model);
- `routing.py`: what goes to a human (below the calibrated threshold, or matched by a policy rule) and the
  review queues it goes to (the annotation store, or a JSONL file);
- `calibrate.py`: `alignline serve calibrate`, the check a threshold needs before it may route anything.
"""
