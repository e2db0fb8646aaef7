"""The bundled environments, one module each; each is named by one line of `rollout/env.py:ENVIRONMENTS`."""
