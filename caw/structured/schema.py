"""``output=``: a type or a JSON schema -> the schema the CLI gets and the validator its answer meets.

``output_spec(output)`` takes a pydantic model class, a dataclass, a TypedDict (or any type pydantic's
``TypeAdapter`` accepts) or a JSON schema dict. The ``OutputSpec`` it returns holds:

* ``schema``: the JSON schema, always with an object at its root (the CLIs' schema flags and tools take
  objects only): a type whose schema is not an object (``list[int]``) travels wrapped as
  ``{"value": ...}`` and is unwrapped on parse;
* ``parse(data)``: the validated object (a model instance for a model class, a dataclass instance, a dict
  for a TypedDict or a schema dict) or ``ValueError`` listing what is wrong, one line per error;
* ``extract(text)``: the JSON value in a reply (the whole text, a fenced block, or the outermost ``{...}``);
* ``instruction()`` and ``repair_prompt(errors)``: what caw asks when a CLI has no schema flag, and the one
  repair turn after an invalid answer.

A JSON schema dict is checked by caw's own small validator (``check``): types, ``properties``/``required``/
``additionalProperties``, ``items``, ``enum``/``const``, ``anyOf``/``oneOf``/``allOf``, ``$ref`` to ``$defs``,
string lengths, number bounds and array lengths. Other keywords are accepted and not checked.
"""

from __future__ import annotations

import dataclasses
import json
import re
from dataclasses import dataclass, field
from typing import Any

from caw.errors import ConfigurationError

#: the key a non-object answer travels under
WRAP_KEY = "value"


@dataclass(frozen=True)
class OutputSpec:
    """What ``output=`` resolved to (see the module doc). Build it with ``output_spec``."""

    #: the schema on the wire (object root)
    schema: dict[str, Any]
    #: a short name for messages: the class name, or the schema's title
    name: str = "output"
    #: the answer travels as ``{"value": <answer>}`` (the user's schema is not an object)
    wrapped: bool = False
    #: the user's type (None for a schema dict)
    target: Any = field(default=None, compare=False, repr=False)

    def parse(self, data: Any) -> Any:
        """The validated answer, or ``ValueError`` whose ``args[1]`` is the list of error lines."""
        if self.wrapped:
            if not isinstance(data, dict) or WRAP_KEY not in data:
                raise _invalid([f"expected an object with the key {WRAP_KEY!r}"])
            data = data[WRAP_KEY]
        if self.target is None:
            errors = check(data, self.user_schema)
            if errors:
                raise _invalid(errors)
            return data
        from pydantic import ValidationError

        try:
            if _is_model(self.target):
                return self.target.model_validate(data)
            return _adapter(self.target).validate_python(data)
        except ValidationError as exc:
            raise _invalid([_pydantic_line(e) for e in exc.errors()]) from None

    @property
    def user_schema(self) -> dict[str, Any]:
        """The schema of the answer itself (unwrapped)."""
        if self.wrapped:
            inner: dict[str, Any] = dict(self.schema["properties"][WRAP_KEY])
            if "$defs" in self.schema:
                inner["$defs"] = self.schema["$defs"]
            return inner
        return self.schema

    def extract(self, text: str) -> Any:
        """The JSON value in ``text`` (``ValueError`` when there is none)."""
        return extract_json(text)

    def dump(self, value: Any) -> Any:
        """``value`` as JSON data (a model instance dumped in JSON mode)."""
        return to_jsonable(value)

    def instruction(self) -> str:
        """What to append to the prompt when the CLI has no schema flag."""
        return (
            "\n\nReply with a single JSON value and nothing else: no prose, no code fence. "
            f"It must validate against this JSON schema:\n{json.dumps(self.schema, ensure_ascii=False)}"
        )

    def repair_prompt(self, errors: list[str]) -> str:
        """The one repair turn's message: what was wrong, and the schema again."""
        listed = "\n".join(f"- {e}" for e in errors[:20])
        return (
            "Your previous reply did not match the required JSON schema. The problems:\n"
            f"{listed}\n"
            "Reply again with only the corrected JSON value (no prose, no code fence), valid against:\n"
            f"{json.dumps(self.schema, ensure_ascii=False)}"
        )


def output_spec(output: Any) -> OutputSpec:
    """The ``OutputSpec`` for ``output=`` (``ConfigurationError`` for something that is not a schema or a type).

    >>> output_spec({"type": "object", "properties": {"n": {"type": "integer"}}}).parse({"n": 1})
    {'n': 1}
    >>> output_spec(list[int]).schema["properties"]
    {'value': {'items': {'type': 'integer'}, 'type': 'array'}}
    """
    if isinstance(output, OutputSpec):
        return output
    if isinstance(output, dict):
        schema = json.loads(json.dumps(output))  # a copy, and a check that it is JSON
        if not isinstance(schema, dict):  # pragma: no cover - json round trip of a dict
            raise ConfigurationError("output= schema must be a JSON object")
        name = str(schema.get("title") or "output")
        return _wrap(schema, name, None)
    if isinstance(output, str | bytes | int | float | bool) or output is None:
        raise ConfigurationError(
            f"output= takes a pydantic model class, a dataclass, a TypedDict or a JSON schema dict, not {output!r}"
        )
    from pydantic import PydanticSchemaGenerationError, PydanticUserError

    try:
        schema = output.model_json_schema() if _is_model(output) else _adapter(output).json_schema()
    except (PydanticSchemaGenerationError, PydanticUserError, TypeError, ValueError) as exc:
        raise ConfigurationError(f"output={output!r} has no JSON schema: {exc}") from None
    return _wrap(schema, getattr(output, "__name__", None) or str(output), output)


def _wrap(schema: dict[str, Any], name: str, target: Any) -> OutputSpec:
    if schema.get("type") == "object" or ("properties" in schema and "type" not in schema):
        return OutputSpec(schema=schema, name=name, target=target)
    defs = {k: schema.pop(k) for k in ("$defs",) if k in schema}
    wrapped = {
        "type": "object",
        "properties": {WRAP_KEY: schema},
        "required": [WRAP_KEY],
        "additionalProperties": False,
        **defs,
    }
    return OutputSpec(schema=wrapped, name=name, wrapped=True, target=target)


def _is_model(tp: Any) -> bool:
    from pydantic import BaseModel

    return isinstance(tp, type) and issubclass(tp, BaseModel)


_ADAPTERS: dict[Any, Any] = {}


def _adapter(tp: Any) -> Any:
    from pydantic import TypeAdapter

    try:
        found = _ADAPTERS.get(tp)
    except TypeError:  # unhashable
        return TypeAdapter(tp)
    if found is None:
        found = _ADAPTERS[tp] = TypeAdapter(tp)
    return found


def _pydantic_line(err: Any) -> str:
    where = ".".join(str(p) for p in err.get("loc") or ()) or "(root)"
    return f"{where}: {err.get('msg', 'invalid')}"


def _invalid(errors: list[str]) -> ValueError:
    return ValueError("the answer does not match the schema", errors)


def to_jsonable(value: Any) -> Any:
    """A model instance, dataclass or plain value as JSON data."""
    from pydantic import BaseModel, TypeAdapter

    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return TypeAdapter(type(value)).dump_python(value, mode="json")
    return json.loads(json.dumps(value, default=str))


_FENCE = re.compile(r"```(?:json|JSON)?\s*\n(.*?)\n\s*```", re.DOTALL)


def extract_json(text: str) -> Any:
    """The JSON value a reply holds: the whole text, else a fenced block, else the outermost ``{...}``/``[...]``.

    >>> extract_json('Here it is:\\n```json\\n{"a": 1}\\n```')
    {'a': 1}
    >>> extract_json('Sure! {"a": [1, 2]} Done.')
    {'a': [1, 2]}
    """
    stripped = text.strip()
    candidates = [stripped, *(m.group(1) for m in _FENCE.finditer(text))]
    for opener, closer in (("{", "}"), ("[", "]")):
        start, end = stripped.find(opener), stripped.rfind(closer)
        if 0 <= start < end:
            candidates.append(stripped[start : end + 1])
    for candidate in candidates:
        try:
            return json.loads(candidate)
        except ValueError:
            continue
    last = _last_value(stripped)
    if last is not None:
        return last
    raise ValueError("the reply holds no JSON value", [f"not JSON: {_clip(stripped)}"])


def _last_value(text: str) -> Any:
    """The last JSON object or array embedded in ``text`` (``'{"a": 1} then {"a": 2}'`` -> ``{"a": 2}``)."""
    decoder = json.JSONDecoder()
    found: Any = None
    i = 0
    while i < len(text):
        if text[i] in "{[":
            try:
                value, end = decoder.raw_decode(text, i)
            except ValueError:
                i += 1
                continue
            found, i = value, end
        else:
            i += 1
    return found


def _clip(text: str, limit: int = 200) -> str:
    one = " ".join(text.split())
    return one if len(one) <= limit else one[: limit - 1] + "…"


# ---- a small JSON schema validator (for output= given as a dict) ------------------------------------------
_TYPES: dict[str, Any] = {
    "object": dict,
    "array": list,
    "string": str,
    "boolean": bool,
    "null": type(None),
}


def check(data: Any, schema: dict[str, Any]) -> list[str]:
    """The ways ``data`` fails ``schema`` (empty: valid), one ``path: problem`` line each.

    >>> check({"a": "x"}, {"type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a", "b"]})
    ['(root): missing required property b', 'a: expected integer, got string']
    """
    errors: list[str] = []
    _check(data, schema, "", schema, errors, 0)
    return errors


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    for name, tp in _TYPES.items():
        if isinstance(value, tp):
            return name
    return type(value).__name__


def _type_ok(value: Any, name: str) -> bool:
    kind = _kind(value)
    if name == "number":
        return kind in ("integer", "number")
    if name == "integer":
        return kind == "integer" or (kind == "number" and float(value).is_integer())
    return kind == name


def _check(data: Any, node: Any, path: str, root: dict[str, Any], errors: list[str], depth: int) -> None:
    where = path or "(root)"
    if node is True or not isinstance(node, dict) or depth > 64:
        if node is False:
            errors.append(f"{where}: no value is allowed here")
        return
    ref = node.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/"):
        target: Any = root
        for part in ref[2:].split("/"):
            target = target.get(part, {}) if isinstance(target, dict) else {}
        _check(data, target, path, root, errors, depth + 1)
    types = node.get("type")
    if types is not None:
        names = types if isinstance(types, list) else [types]
        if not any(_type_ok(data, str(t)) for t in names):
            errors.append(f"{where}: expected {' or '.join(map(str, names))}, got {_kind(data)}")
            return
    if "enum" in node and data not in node["enum"]:
        errors.append(f"{where}: {data!r} is not one of {node['enum']!r}")
    if "const" in node and data != node["const"]:
        errors.append(f"{where}: expected {node['const']!r}")
    for key in ("anyOf", "oneOf"):
        branches = node.get(key)
        if isinstance(branches, list) and branches and all(_sub_errors(data, b, path, root, depth) for b in branches):
            errors.append(f"{where}: matches none of the allowed shapes ({key})")
    for sub in node.get("allOf") or ():
        _check(data, sub, path, root, errors, depth + 1)
    if isinstance(data, dict):
        props: dict[str, Any] = node.get("properties") or {}
        for name in node.get("required") or ():
            if name not in data:
                errors.append(f"{where}: missing required property {name}")
        extra = node.get("additionalProperties", True)
        for key, value in data.items():
            sub_path = f"{path}.{key}" if path else str(key)
            if key in props:
                _check(value, props[key], sub_path, root, errors, depth + 1)
            elif extra is False:
                errors.append(f"{where}: unexpected property {key}")
            elif isinstance(extra, dict):
                _check(value, extra, sub_path, root, errors, depth + 1)
    elif isinstance(data, list):
        items = node.get("items")
        for i, value in enumerate(data):
            if isinstance(items, dict):
                _check(value, items, f"{path}[{i}]" if path else f"[{i}]", root, errors, depth + 1)
        if "minItems" in node and len(data) < node["minItems"]:
            errors.append(f"{where}: fewer than {node['minItems']} items")
        if "maxItems" in node and len(data) > node["maxItems"]:
            errors.append(f"{where}: more than {node['maxItems']} items")
    elif isinstance(data, str):
        if "minLength" in node and len(data) < node["minLength"]:
            errors.append(f"{where}: shorter than {node['minLength']} characters")
        if "maxLength" in node and len(data) > node["maxLength"]:
            errors.append(f"{where}: longer than {node['maxLength']} characters")
    elif _kind(data) in ("integer", "number"):
        for key in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
            bound = node.get(key)
            if isinstance(bound, int | float) and not isinstance(bound, bool) and not _within(key, data, bound):
                errors.append(f"{where}: {data} breaks {key} {bound}")


def _within(key: str, value: float, bound: float) -> bool:
    if key == "minimum":
        return value >= bound
    if key == "maximum":
        return value <= bound
    if key == "exclusiveMinimum":
        return value > bound
    return value < bound


def _sub_errors(data: Any, node: Any, path: str, root: dict[str, Any], depth: int) -> list[str]:
    errs: list[str] = []
    _check(data, node, path, root, errs, depth + 1)
    return errs


__all__ = ["WRAP_KEY", "OutputSpec", "check", "extract_json", "output_spec", "to_jsonable"]
