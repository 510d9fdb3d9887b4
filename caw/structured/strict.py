"""OpenAI strict-mode schemas (codex ``--output-schema``), and undoing the transform on the answer.

Strict mode (the Responses API's ``text.format: {type: json_schema, strict: true}``, which codex sends)
accepts only schemas where every object has ``additionalProperties: false`` and lists **every** property in
``required``; ``{}`` (anything) and free-form maps are rejected with 400 ``invalid_json_schema``.

``to_strict`` makes the equivalent strict schema: each optional property becomes required-and-nullable
(``anyOf: [<its schema>, {"type": "null"}]``), ``default`` is dropped (strict mode has no defaults), ``oneOf``
becomes ``anyOf``, a ``$ref`` with siblings is unwrapped, and the keywords strict mode does not take
(``minLength``, ``maxLength``, ``uniqueItems``, ...) are left to caw's own validation of the answer.
``restore_optional`` undoes it on the parsed answer: a ``null`` for a property the original schema did not
require is removed, so the user's validator fills in its default. (A property that is optional *and*
nullable, answered ``null``, gets its default too, which for ``x: int | None = None`` is the same thing.)
What has no strict equivalent (a map with free keys, an ``{}`` schema) raises ``StrictSchemaError``, a
``ConfigurationError``, before any turn runs.

Standard library only.

>>> to_strict({"type": "object", "properties": {"a": {"type": "integer", "default": 1}}})
{'type': 'object', 'properties': {'a': {'anyOf': [{'type': 'integer'}, {'type': 'null'}]}}, 'required': ['a'], \
'additionalProperties': False}
>>> restore_optional({"a": None}, {"type": "object", "properties": {"a": {"type": "integer", "default": 1}}})
{}
"""

from __future__ import annotations

import copy
from typing import Any

from caw.errors import ConfigurationError

#: keywords strict mode refuses or ignores; they stay in the original schema, which caw validates the answer
#: against (a violated one gets the repair turn like any other error)
_DROPPED = (
    "default",
    "discriminator",
    "examples",
    "minLength",
    "maxLength",
    "minProperties",
    "maxProperties",
    "uniqueItems",
    "contentEncoding",
    "contentMediaType",
)


class StrictSchemaError(ConfigurationError):
    """The schema has a part with no strict-mode equivalent (codex would refuse it). ``path`` says where."""

    def __init__(self, message: str, *, path: str) -> None:
        super().__init__(f"{message} at {path or 'the root'} (OpenAI strict mode, which codex uses, has no equivalent)")
        self.path = path


def to_strict(schema: dict[str, Any]) -> dict[str, Any]:
    """The strict-mode equivalent of ``schema`` (a new dict; ``schema`` is not changed)."""
    out: dict[str, Any] = _strict(copy.deepcopy(schema), "", _defs(schema))
    return out


def _defs(schema: dict[str, Any]) -> dict[str, Any]:
    defs: dict[str, Any] = {}
    for key in ("$defs", "definitions"):
        found = schema.get(key)
        if isinstance(found, dict):
            defs.update({f"#/{key}/{name}": sub for name, sub in found.items()})
    return defs


def _strict(node: Any, path: str, defs: dict[str, Any]) -> Any:
    if node is True or node == {}:
        raise StrictSchemaError("a schema that accepts anything", path=path)
    if not isinstance(node, dict):
        return node
    for key in _DROPPED:
        node.pop(key, None)
    if "oneOf" in node:
        node["anyOf"] = node.pop("oneOf")
    if "$ref" in node and len(node) > 1:
        # strict mode wants a bare $ref: keep the description, fold anything else into an allOf-free copy
        ref = node.pop("$ref")
        node = {"anyOf": [{"$ref": ref}]} if not node.keys() - {"description", "title"} else {**node, "$ref": ref}
    for key in ("$defs", "definitions"):
        if isinstance(node.get(key), dict):
            node[key] = {name: _strict(sub, f"{path}/{key}/{name}", defs) for name, sub in node[key].items()}
    if "allOf" in node and isinstance(node["allOf"], list) and len(node["allOf"]) == 1:
        only = node.pop("allOf")[0]
        node = {**only, **node} if isinstance(only, dict) else node
    for key in ("anyOf", "allOf"):
        if isinstance(node.get(key), list):
            node[key] = [_strict(sub, f"{path}/{key}/{i}", defs) for i, sub in enumerate(node[key])]
    if "items" in node:
        node["items"] = _strict(node["items"], f"{path}/items", defs)
    if "prefixItems" in node:
        raise StrictSchemaError("a tuple (prefixItems)", path=path)
    types = node.get("type")
    is_object = types == "object" or (isinstance(types, list) and "object" in types) or "properties" in node
    if is_object:
        extra = node.get("additionalProperties")
        if extra not in (None, False) or "patternProperties" in node:
            raise StrictSchemaError("a map with free keys (additionalProperties)", path=path)
        props: dict[str, Any] = node.get("properties") or {}
        required = set(node.get("required") or ())
        out: dict[str, Any] = {}
        for name, sub in props.items():
            strict_sub = _strict(sub, f"{path}/properties/{name}", defs)
            out[name] = strict_sub if name in required or _nullable(strict_sub, defs) else _or_null(strict_sub)
        node["properties"] = out
        node["required"] = list(out)
        node["additionalProperties"] = False
    return node


def _nullable(node: Any, defs: dict[str, Any]) -> bool:
    if not isinstance(node, dict):
        return False
    types = node.get("type")
    if types == "null" or (isinstance(types, list) and "null" in types):
        return True
    return any(isinstance(b, dict) and b.get("type") == "null" for b in node.get("anyOf") or ())


def _or_null(node: dict[str, Any]) -> dict[str, Any]:
    if isinstance(node.get("anyOf"), list) and len(node) == 1:
        return {"anyOf": [*node["anyOf"], {"type": "null"}]}
    keep: dict[str, Any] = {k: node[k] for k in ("description", "title") if k in node and "$ref" not in node}
    inner = {k: v for k, v in node.items() if k not in keep}
    return {**keep, "anyOf": [inner, {"type": "null"}]}


def restore_optional(data: Any, schema: dict[str, Any]) -> Any:
    """``data`` (an answer to ``to_strict(schema)``) with the nulls strict mode forced on optional properties
    removed, so that validating against ``schema`` restores their defaults. ``data`` is not changed."""
    return _restore(data, schema, _defs(schema), 0)


def _resolve(node: Any, defs: dict[str, Any]) -> Any:
    seen = 0
    while isinstance(node, dict) and "$ref" in node and seen < 32:
        node = defs.get(node["$ref"], {})
        seen += 1
    return node


def _restore(data: Any, node: Any, defs: dict[str, Any], depth: int) -> Any:
    node = _resolve(node, defs)
    if depth > 64 or not isinstance(node, dict):
        return data
    if isinstance(data, dict):
        branches = [_resolve(b, defs) for b in (node.get("anyOf") or node.get("oneOf") or node.get("allOf") or ())]
        objects = [b for b in branches if isinstance(b, dict) and "properties" in b]
        if objects:
            node = _best_branch(data, objects)
        props: dict[str, Any] = node.get("properties") or {}
        required = set(node.get("required") or ())
        out: dict[str, Any] = {}
        for key, value in data.items():
            if value is None and key in props and key not in required:
                continue
            out[key] = _restore(value, props[key], defs, depth + 1) if key in props else value
        return out
    if isinstance(data, list):
        items = node.get("items")
        if items is None:
            arrays = [_resolve(b, defs) for b in node.get("anyOf") or ()]
            items = next((b.get("items") for b in arrays if isinstance(b, dict) and "items" in b), None)
        return [_restore(v, items, defs, depth + 1) for v in data] if items is not None else list(data)
    return data


def _best_branch(data: dict[str, Any], branches: list[dict[str, Any]]) -> dict[str, Any]:
    """The object branch of a union that ``data``'s keys fit best (all its required keys, fewest unknown)."""

    def score(branch: dict[str, Any]) -> tuple[int, int]:
        props = set(branch.get("properties") or {})
        required = set(branch.get("required") or ())
        return (int(required <= set(data)), -len(set(data) - props))

    return max(branches, key=score)


__all__ = ["StrictSchemaError", "restore_optional", "to_strict"]
