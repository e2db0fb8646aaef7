"""Structured-output graders: is the completion valid JSON, and does it follow a JSON Schema.

The completion may be bare JSON or JSON inside one Markdown code fence (```json ... ```), as chat
models write it; `allow_fence=False` asks for bare JSON only.

Schema validation uses the `jsonschema` package when it is installed (`pip install alignline[graders]`),
the full standard. Without it, a small built-in validator handles the keywords structured-output tasks
use: `type` (one or a list; `integer` excludes floats with a fraction and booleans are never numbers),
`enum`, `const`, `properties`, `required`, `additionalProperties` (true/false or a schema), `items`
(one schema), `minItems`, `maxItems`, `uniqueItems`, `minLength`, `maxLength`, `pattern` (`re.search`),
`minimum`, `maximum`, `exclusiveMinimum`, `exclusiveMaximum` (numbers), `anyOf`, `allOf`, `oneOf`, `not`.
Annotations (`title`, `description`, `default`, `examples`, `$schema`, `$id`, `$comment`, `format`) are
ignored, as jsonschema does by default. Any other keyword (`$ref`, `patternProperties`, ...) is an error
naming it rather than a silent pass: install jsonschema for those.
"""

from __future__ import annotations

import json
import re

from alignline.errors import ConfigError
from alignline.rewards.columns import per_record
from alignline.text import completion_text

_FENCE = re.compile(r"^\s*```[A-Za-z0-9_-]*\s*\n(.*?)\n?\s*```\s*$", re.S)
_MISSING = object()


def parse_json(text: str, allow_fence: bool = True):
    """The JSON value of a completion (the inside of one code fence if `allow_fence`); ValueError if not JSON."""
    m = _FENCE.match(text) if allow_fence else None
    return json.loads(m.group(1) if m else text)


def _loads(text: str, allow_fence: bool):
    try:
        return parse_json(text, allow_fence)
    except ValueError:
        return _MISSING


def json_valid(prompts=None, completions=(), allow_fence: bool = True, **columns) -> list[float]:
    """1.0 where the completion parses as JSON (bare, or in one ```json code fence unless `allow_fence=False`).

    >>> json_valid(None, ['{"a": 1}', "```json\\n[1, 2]\\n```", "{a: 1}"])
    [1.0, 1.0, 0.0]
    """
    return [float(_loads(completion_text(c), allow_fence) is not _MISSING) for c in completions]


_TYPES = {"object": dict, "array": list, "string": str, "boolean": bool, "null": type(None)}
_ANNOTATIONS = {
    "title",
    "description",
    "default",
    "examples",
    "$schema",
    "$id",
    "$comment",
    "format",
    "readOnly",
    "writeOnly",
    "deprecated",
}
_HANDLED = {
    "type",
    "enum",
    "const",
    "properties",
    "required",
    "additionalProperties",
    "items",
    "minItems",
    "maxItems",
    "uniqueItems",
    "minLength",
    "maxLength",
    "pattern",
    "minimum",
    "maximum",
    "exclusiveMinimum",
    "exclusiveMaximum",
    "anyOf",
    "allOf",
    "oneOf",
    "not",
}


def _is_type(value, name: str) -> bool:
    if name in ("number", "integer"):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return False
        return name == "number" or float(value).is_integer()
    if name not in _TYPES:
        raise ConfigError(f"JSON schema: unknown type {name!r}")
    return isinstance(value, _TYPES[name]) and not (name != "boolean" and isinstance(value, bool))


def _same(a, b) -> bool:
    """JSON equality: 1 == 1.0, but true != 1."""
    return (
        json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)
        if isinstance(a, (dict, list))
        else (a == b and isinstance(a, bool) == isinstance(b, bool))
    )


def schema_errors(value, schema, path: str = "$") -> list[str]:
    """What is wrong with `value` against `schema` in the built-in subset (empty: valid).

    >>> schema_errors({"n": "x"}, {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n", "m"]})
    ["$: missing required property 'm'", '$.n: expected integer']
    """
    if schema is True or schema == {}:
        return []
    if schema is False:
        return [f"{path}: no value allowed"]
    if not isinstance(schema, dict):
        raise ConfigError(f"JSON schema at {path}: expected an object or a boolean, got {type(schema).__name__}")
    unknown = set(schema) - _HANDLED - _ANNOTATIONS
    if unknown:
        raise ConfigError(
            f"JSON schema keyword '{sorted(unknown)[0]}' is not handled by the built-in validator; "
            "pip install jsonschema for the full standard"
        )
    errors: list[str] = []
    if "type" in schema:
        types = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
        if not any(_is_type(value, t) for t in types):
            return [f"{path}: expected {' or '.join(types)}"]
    if "enum" in schema and not any(_same(value, e) for e in schema["enum"]):
        errors.append(f"{path}: not one of {schema['enum']}")
    if "const" in schema and not _same(value, schema["const"]):
        errors.append(f"{path}: expected {schema['const']!r}")
    if isinstance(value, dict):
        props = schema.get("properties", {})
        errors += [f"{path}: missing required property '{k}'" for k in schema.get("required", []) if k not in value]
        for k, v in value.items():
            if k in props:
                errors += schema_errors(v, props[k], f"{path}.{k}")
            elif schema.get("additionalProperties", True) is False:
                errors.append(f"{path}: property '{k}' is not allowed")
            elif isinstance(schema.get("additionalProperties"), dict):
                errors += schema_errors(v, schema["additionalProperties"], f"{path}.{k}")
    if isinstance(value, list):
        if "items" in schema:
            for i, v in enumerate(value):
                errors += schema_errors(v, schema["items"], f"{path}[{i}]")
        if len(value) < schema.get("minItems", 0) or len(value) > schema.get("maxItems", len(value)):
            errors.append(
                f"{path}: {len(value)} items, outside [{schema.get('minItems', 0)}, {schema.get('maxItems', 'any')}]"
            )
        if schema.get("uniqueItems") and len({json.dumps(v, sort_keys=True) for v in value}) < len(value):
            errors.append(f"{path}: items are not unique")
    if isinstance(value, str):
        if len(value) < schema.get("minLength", 0) or len(value) > schema.get("maxLength", len(value)):
            errors.append(
                f"{path}: length {len(value)} outside [{schema.get('minLength', 0)}, {schema.get('maxLength', 'any')}]"
            )
        if "pattern" in schema and not re.search(schema["pattern"], value):
            errors.append(f"{path}: does not match {schema['pattern']!r}")
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        for key, bad in (
            ("minimum", lambda b: value < b),
            ("maximum", lambda b: value > b),
            ("exclusiveMinimum", lambda b: value <= b),
            ("exclusiveMaximum", lambda b: value >= b),
        ):
            if key in schema and bad(schema[key]):
                errors.append(f"{path}: {value} violates {key} {schema[key]}")
    if "allOf" in schema:
        for sub in schema["allOf"]:
            errors += schema_errors(value, sub, path)
    if "anyOf" in schema and not any(not schema_errors(value, s, path) for s in schema["anyOf"]):
        errors.append(f"{path}: matches none of anyOf")
    if "oneOf" in schema and sum(not schema_errors(value, s, path) for s in schema["oneOf"]) != 1:
        errors.append(f"{path}: does not match exactly one of oneOf")
    if "not" in schema and not schema_errors(value, schema["not"], path):
        errors.append(f"{path}: matches the 'not' schema")
    return errors


def validator_for(schema, backend: str = "auto"):
    """A function value -> valid?, from `jsonschema` (backend `auto` when installed, or `jsonschema`) or the
    built-in subset (`builtin`). A schema that is itself invalid is a ConfigError."""
    if backend not in ("auto", "jsonschema", "builtin"):
        raise ConfigError(f"grader 'json_schema': validator {backend!r} is not one of auto, jsonschema, builtin")
    if backend != "builtin":
        try:
            import jsonschema
        except ImportError:
            if backend == "jsonschema":
                raise ConfigError(
                    "grader 'json_schema': validator 'jsonschema' needs `pip install jsonschema`"
                ) from None
        else:
            cls = jsonschema.validators.validator_for(schema)
            try:
                cls.check_schema(schema)
            except jsonschema.SchemaError as e:
                raise ConfigError(f"grader 'json_schema': the schema is invalid ({e.message})") from None
            return cls(schema).is_valid
    schema_errors(None, schema)  # unknown keywords raise now, not on the first completion that reaches them
    return lambda value: not schema_errors(value, schema)


def _schema(value, grader: str):
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            raise ConfigError(f"grader '{grader}': the schema is not valid JSON text") from None
    return value


def json_schema(
    prompts=None, completions=(), schema=None, allow_fence: bool = True, validator: str = "auto", **columns
) -> list[float | None]:
    """1.0 where the completion is JSON that validates against the schema (an option, or each record's
    `schema` field: an object or its JSON text); 0.0 where it is not JSON or does not validate; None where a
    record has no schema. `validator`: `auto` (jsonschema when installed), `jsonschema` or `builtin`.

    >>> s = {"type": "object", "properties": {"age": {"type": "integer", "minimum": 0}}, "required": ["age"]}
    >>> json_schema(None, ['{"age": 3}', '{"age": -1}', "{}", "nope"], schema=s, validator="builtin")
    [1.0, 0.0, 0.0, 0.0]
    """
    schemas = per_record(
        schema if not isinstance(schema, (dict, bool)) else [schema] * len(completions),
        len(completions),
        "schema",
        "json_schema",
    )
    validators: dict[str, object] = {}
    out = []
    for c, s in zip(completions, schemas):
        if s is None:
            out.append(None)
            continue
        s = _schema(s, "json_schema")
        key = json.dumps(s, sort_keys=True)
        if key not in validators:
            validators[key] = validator_for(s, validator)
        value = _loads(completion_text(c), allow_fence)
        out.append(0.0 if value is _MISSING else float(validators[key](value)))
    return out
