"""What a project's items, rubric and labels may look like, checked before anything reaches the database.

Pure functions, no database: the rubric (YAML), item records, the blinding shuffle, and each task kind's
`choice` (validated in the order the annotator saw, then mapped back to the original order).

Kinds and their `choice` (indices are positions as shown to the annotator):
- `pairwise`: 0 or 1 (the preferred response), or "tie"; exactly two responses.
- `ranking`: a permutation of the indices, best first; two or more responses.
- `best_worst`: {"best": i, "worst": j}, i != j; two or more responses.
- `rating`: no choice (None); `scores` carries the label: {criterion: [score per response]} (a bare number
  when there is one response), every criterion of the rubric, each within its scale.
"""

from __future__ import annotations

import random
from pathlib import Path

from alignline.annotate.models import KINDS
from alignline.errors import ConfigError, DataError, UserError

RUBRIC_KEYS = ("criteria", "instructions")
CRITERION_KEYS = ("name", "description", "scale")
DEFAULT_SCALE = [1, 5]
# The rubric of a project made without one: rating needs a criterion; the others need none.
DEFAULT_RATING_RUBRIC = {
    "criteria": [{"name": "quality", "description": "overall quality of the answer", "scale": DEFAULT_SCALE}],
    "instructions": "",
}
ROLES_IN_PROMPT = ("system", "user", "assistant", "tool")
MAX_TEXT = 200_000  # a rationale or an edit longer than this is a paste accident, not an answer


class InvalidLabel(UserError):
    """A choice, scores, rationale or edit that does not fit the project's kind or rubric (web: 422)."""


def parse_rubric(data, source: str = "rubric") -> dict:
    """A rubric dict, normalised: {"criteria": [{name, description, scale: [lo, hi]}], "instructions": str}."""
    if data is None:
        return {"criteria": [], "instructions": ""}
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: a rubric is a mapping with keys {', '.join(RUBRIC_KEYS)}")
    for key in data:
        if key not in RUBRIC_KEYS:
            raise ConfigError(f"{source}: unknown rubric key '{key}' (allowed: {', '.join(RUBRIC_KEYS)})")
    instructions = data.get("instructions") or ""
    if not isinstance(instructions, str):
        raise ConfigError(f"{source}: rubric key 'instructions' must be text")
    criteria = data.get("criteria") or []
    if not isinstance(criteria, list):
        raise ConfigError(f"{source}: rubric key 'criteria' must be a list of {{name, description, scale}}")
    out, seen = [], set()
    for i, c in enumerate(criteria):
        where = f"{source}: criteria[{i}]"
        if isinstance(c, str):
            c = {"name": c}
        if not isinstance(c, dict):
            raise ConfigError(f"{where} must be a mapping with keys {', '.join(CRITERION_KEYS)}")
        for key in c:
            if key not in CRITERION_KEYS:
                raise ConfigError(f"{where}: unknown rubric key '{key}' (allowed: {', '.join(CRITERION_KEYS)})")
        name = c.get("name")
        if not isinstance(name, str) or not name.strip():
            raise ConfigError(f"{where}: 'name' must be non-empty text")
        if name in seen:
            raise ConfigError(f"{where}: criterion '{name}' appears twice")
        seen.add(name)
        scale = c.get("scale", DEFAULT_SCALE)
        if not isinstance(scale, list) or len(scale) != 2 or not all(_is_int(v) for v in scale) or scale[0] >= scale[1]:
            raise ConfigError(f"{where}: 'scale' must be [low, high], two integers with low < high")
        description = c.get("description") or ""
        if not isinstance(description, str):
            raise ConfigError(f"{where}: 'description' must be text")
        out.append({"name": name, "description": description, "scale": [int(scale[0]), int(scale[1])]})
    return {"criteria": out, "instructions": instructions}


def load_rubric(path: str | Path) -> dict:
    import yaml

    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except OSError as e:
        raise ConfigError(f"{path}: cannot read the rubric ({e.strerror})") from None
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: not valid YAML ({str(e).splitlines()[0]})") from None
    return parse_rubric(data, str(path))


def check_kind(kind: str) -> str:
    if kind not in KINDS:
        raise UserError(f"unknown project kind {kind!r} (one of {', '.join(KINDS)})")
    return kind


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def check_prompt(prompt, source: str, record: str):
    if isinstance(prompt, str):
        if not prompt.strip():
            raise DataError(source, "is empty", record, "prompt")
        return prompt
    if isinstance(prompt, list) and prompt:
        for j, m in enumerate(prompt):
            if not isinstance(m, dict) or m.get("role") not in ROLES_IN_PROMPT or not isinstance(m.get("content"), str):
                raise DataError(
                    source,
                    "expected messages {role: system|user|assistant|tool, content: text}",
                    record,
                    f"prompt[{j}]",
                )
        return [{"role": m["role"], "content": m["content"]} for m in prompt]
    raise DataError(source, "expected text or a non-empty list of messages", record, "prompt")


def check_items(
    records: list, kind: str, source: str = "items", gold: bool = False, locations: list[str] | None = None
) -> list[dict]:
    """Item records -> [{external_id, prompt, responses, models, fields, gold}], every problem a `DataError`.

    A record is {"id"?, "prompt", "responses": [...], "models"?: [...]} plus any fields (kept, hidden);
    a gold record also carries "answer" (the correct choice, in the file's own response order).
    `locations` name the records in messages (`line 3`); by default `record N`.
    """
    check_kind(kind)
    out, seen = [], set()
    for i, r in enumerate(records):
        record = locations[i] if locations else f"record {i + 1}"
        if not isinstance(r, dict):
            raise DataError(source, "expected an object {prompt, responses}", record)
        if "prompt" not in r:
            raise DataError(source, "is missing", record, "prompt")
        prompt = check_prompt(r["prompt"], source, record)
        responses = r.get("responses")
        if responses is None:
            raise DataError(source, "is missing", record, "responses")
        if not isinstance(responses, list) or not all(isinstance(x, str) for x in responses):
            raise DataError(source, "expected a list of response texts", record, "responses")
        n = len(responses)
        if kind == "pairwise" and n != 2:
            raise DataError(source, f"a pairwise item needs exactly 2 responses, got {n}", record, "responses")
        if kind in ("ranking", "best_worst") and n < 2:
            raise DataError(source, f"a {kind} item needs at least 2 responses, got {n}", record, "responses")
        if kind == "rating" and n < 1:
            raise DataError(source, "a rating item needs at least 1 response", record, "responses")
        models = r.get("models")
        if models is not None and (
            not isinstance(models, list) or len(models) != n or not all(isinstance(m, str) for m in models)
        ):
            raise DataError(source, "expected one model name per response", record, "models")
        ext = r.get("id")
        if ext is not None:
            if not isinstance(ext, (str, int)) or isinstance(ext, bool):
                raise DataError(source, "expected text or an integer", record, "id")
            ext = str(ext)
            if "\x00" in ext:
                raise DataError(source, "contains a NUL character", record, "id")
            if ext in seen:
                raise DataError(source, f"duplicate id {ext!r}", record, "id")
            seen.add(ext)
        answer = None
        if gold:
            key = "answer" if "answer" in r else "gold" if "gold" in r else None
            if key is None:
                raise DataError(source, "is missing (a gold item needs its known answer)", record, "answer")
            try:
                answer = check_choice(kind, r[key], n)
            except InvalidLabel as e:
                raise DataError(source, str(e), record, key) from None
            if answer is None:
                raise DataError(source, "a rating project's gold items are not supported (no choice)", record, key)
        hidden = (
            {"id", "prompt", "responses", "models", "answer", "gold"}
            if gold
            else {"id", "prompt", "responses", "models"}
        )
        out.append(
            {
                "external_id": ext,
                "prompt": prompt,
                "responses": list(responses),
                "models": models,
                "fields": {k: v for k, v in r.items() if k not in hidden},
                "gold": answer,
            }
        )
    return out


def shuffle_order(n: int, seed: str) -> list[int]:
    """The blinding: `order[d]` is the original index of the response shown at position d, seeded by text.
    The store passes a secret seed: one an annotator could know would let them undo the blinding."""
    order = list(range(n))
    random.Random(seed).shuffle(order)
    return order


def check_choice(kind: str, choice, n: int):
    """The choice, validated for `kind` with `n` responses (positions as given); InvalidLabel otherwise."""
    if kind == "pairwise":
        if choice == "tie" or (_is_int(choice) and choice in (0, 1)):
            return choice
        raise InvalidLabel('a pairwise choice is 0 or 1 (the preferred response) or "tie"')
    if kind == "ranking":
        if isinstance(choice, list) and all(_is_int(c) for c in choice) and sorted(choice) == list(range(n)):
            return list(choice)
        raise InvalidLabel(f"a ranking is a list of all {n} response indices, best first (a permutation of 0..{n - 1})")
    if kind == "best_worst":
        if (
            isinstance(choice, dict)
            and set(choice) == {"best", "worst"}
            and all(_is_int(choice[k]) and 0 <= choice[k] < n for k in ("best", "worst"))
            and choice["best"] != choice["worst"]
        ):
            return {"best": choice["best"], "worst": choice["worst"]}
        raise InvalidLabel(f'a best-worst choice is {{"best": i, "worst": j}} with i != j in 0..{n - 1}')
    if choice not in (None, "", {}):
        raise InvalidLabel("a rating label has no choice: send scores {criterion: score} instead")
    return None


def check_scores(scores, rubric: dict, n: int, required: bool) -> dict | None:
    """{criterion: [score per response]} (a bare number for one response), within each criterion's scale."""
    criteria = {c["name"]: c for c in (rubric or {}).get("criteria", [])}
    if scores in (None, {}):
        if required:
            raise InvalidLabel(f"a rating label needs scores for {', '.join(criteria) or 'its criteria'}")
        return None
    if not isinstance(scores, dict):
        raise InvalidLabel("scores must be an object {criterion: [score per response]}")
    if not criteria:
        raise InvalidLabel("this project's rubric has no criteria to score")
    out = {}
    for name, value in scores.items():
        if name not in criteria:
            raise InvalidLabel(f"unknown criterion {name!r} (the rubric has {', '.join(criteria)})")
        values = [value] if (n == 1 and not isinstance(value, list)) else value
        if not isinstance(values, list) or len(values) != n:
            raise InvalidLabel(f"criterion {name!r}: expected {n} scores, one per response")
        lo, hi = criteria[name]["scale"]
        for v in values:
            if not (isinstance(v, (int, float)) and not isinstance(v, bool) and lo <= v <= hi):
                raise InvalidLabel(f"criterion {name!r}: a score is a number from {lo} to {hi}, got {v!r}")
        out[name] = list(values)
    if required and set(out) != set(criteria):
        missing = [c for c in criteria if c not in out]
        raise InvalidLabel(f"a rating label needs every criterion; missing {', '.join(missing)}")
    return out


def check_text(value, field: str) -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise InvalidLabel(f"{field} must be text")
    if len(value) > MAX_TEXT:
        raise InvalidLabel(f"{field} is longer than {MAX_TEXT} characters")
    if "\x00" in value:  # PostgreSQL text refuses it: a 500 otherwise
        raise InvalidLabel(f"{field} contains a NUL character")
    return value


def choice_to_original(kind: str, choice, order: list[int]):
    """Shown positions -> original indices (what is stored)."""
    if choice is None or choice == "tie":
        return choice
    if kind == "pairwise":
        return order[choice]
    if kind == "ranking":
        return [order[c] for c in choice]
    if kind == "best_worst":
        return {"best": order[choice["best"]], "worst": order[choice["worst"]]}
    return choice


def choice_to_shown(kind: str, choice, order: list[int]):
    """Original indices -> the positions this item shows (for displaying a stored label)."""
    if choice is None or choice == "tie":
        return choice
    back = {o: d for d, o in enumerate(order)}
    if kind == "pairwise":
        return back[choice]
    if kind == "ranking":
        return [back[c] for c in choice]
    if kind == "best_worst":
        return {"best": back[choice["best"]], "worst": back[choice["worst"]]}
    return choice


def scores_to_original(scores: dict | None, order: list[int]) -> dict | None:
    if scores is None:
        return None
    out = {}
    for name, values in scores.items():
        orig = [None] * len(order)
        for d, v in enumerate(values):
            orig[order[d]] = v
        out[name] = orig
    return out


def scores_to_shown(scores: dict | None, order: list[int]) -> dict | None:
    if scores is None:
        return None
    return {name: [values[o] for o in order] for name, values in scores.items()}
