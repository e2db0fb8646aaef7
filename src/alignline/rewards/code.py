"""`unit_tests` grader: the completion's code run against the record's `tests` in the sandbox.

The code is the last ```python fenced block of the completion (else the whole completion). The record's
`tests` (plain `assert` lines, and/or `def test_*()` functions, which a tiny harness calls) are appended
and the program is run by `rewards.sandbox.run_code`. Score: 1.0 when it exits 0 and the harness's
end marker (with a per-run nonce) is printed, else 0.0; a timeout or crash is 0.0. With `partial=True`,
the fraction of `test_*` functions that passed (top-level asserts must all pass first).
A record without `tests` gets None.

Not guarded: a completion written to attack the harness (reading its own source for the nonce, patching
`print`) can fake a pass; this grader is for honest mistakes and ordinary reward hacking (exiting early).
"""

from __future__ import annotations

import re
import secrets
from concurrent.futures import ThreadPoolExecutor

from alignline.rewards.sandbox import run_code

_FENCE = re.compile(r"```(?:python|py)?[ \t]*\n(.*?)```", re.S)

_HARNESS = """

# --- alignline unit_tests harness ---
def _alignline_run_tests():
    import sys
    fns = [v for k, v in list(globals().items()) if k.startswith("test_") and callable(v)]
    passed = 0
    for fn in fns:
        try:
            fn()
            passed += 1
        except Exception as e:
            print(f"FAIL {{fn.__name__}}: {{type(e).__name__}}: {{e}}", file=sys.stderr)
    print(f"{marker} {{passed}}/{{len(fns)}}")
_alignline_run_tests()
"""


def extract_code(completion) -> str:
    """The last ```python fenced block of a completion, else the completion itself.

    >>> extract_code("Here:\\n```python\\nx = 1\\n```")
    'x = 1\\n'
    """
    if isinstance(completion, list):  # TRL's conversational form
        completion = "\n".join(str(m.get("content", "")) for m in completion if isinstance(m, dict))
    blocks = _FENCE.findall(str(completion))
    return blocks[-1] if blocks else str(completion)


def score_one(
    code: str, tests: str, partial: bool = False, timeout_s: float = 10, memory_mb: int = 512, mode: str = "auto"
) -> float:
    """One program's score (see the module docstring)."""
    marker = "__ALIGNLINE_TESTS_" + secrets.token_hex(8)
    program = f"{code}\n\n{tests}\n" + _HARNESS.format(marker=marker)
    r = run_code(program, timeout_s=timeout_s, memory_mb=memory_mb, mode=mode)
    if r.timed_out or r.returncode != 0:
        return 0.0
    m = re.search(re.escape(marker) + r" (\d+)/(\d+)", r.stdout)
    if m is None:
        return 0.0
    passed, total = int(m.group(1)), int(m.group(2))
    if not partial or total == 0:
        return float(passed == total)
    return passed / total


def unit_tests(
    prompts: list,
    completions: list,
    tests: list | None = None,
    partial: bool = False,
    timeout_s: float = 10,
    memory_mb: int = 512,
    workers: int = 2,
    mode: str = "auto",
    **columns,
) -> list[float | None]:
    """Run each completion's code against its record's `tests` in the sandbox, `workers` at a time."""
    tests = tests if tests is not None else [None] * len(completions)

    def one(pair):
        completion, t = pair
        if t is None:
            return None
        return score_one(extract_code(completion), str(t), partial, timeout_s, memory_mb, mode)

    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        return list(pool.map(one, zip(completions, tests)))
