"""The bundled environments; importing this package registers them in `rollout/env.py:ENVIRONMENTS`."""

from alignline.rollout.envs.calculator import CalculatorEnv  # noqa: F401
