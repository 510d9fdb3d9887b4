"""The OpenAI strict-mode transform (codex ``--output-schema``), over generated pydantic models (issue 16).

For any model built from scalars, lists, optional fields, defaults and nested models: the strict schema meets
strict mode's rules (every object closed, every property required, no defaults), and an answer in strict form
(every optional field present, ``null`` when unset) restores to the same instance the user's model validates.
"""

from __future__ import annotations

import itertools
from typing import Any, Optional

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, create_model

from caw.errors import ConfigurationError
from caw.structured.schema import check, output_spec
from caw.structured.strict import StrictSchemaError, restore_optional, to_strict

_names = itertools.count()

SCALARS: list[tuple[Any, st.SearchStrategy[Any]]] = [
    (int, st.integers(-1000, 1000)),
    (str, st.text(max_size=8)),
    (bool, st.booleans()),
    (float, st.floats(-1e6, 1e6, allow_nan=False)),
]


@st.composite
def field_types(draw: st.DrawFn, depth: int = 0) -> tuple[Any, st.SearchStrategy[Any]]:
    """A field type and a strategy for its values."""
    kinds = ["scalar", "list"] + (["model"] if depth < 2 else [])
    kind = draw(st.sampled_from(kinds))
    if kind == "scalar":
        return draw(st.sampled_from(SCALARS))
    if kind == "list":
        tp, values = draw(st.sampled_from(SCALARS))
        return list[tp], st.lists(values, max_size=3)  # type: ignore[valid-type]
    model, values = draw(models(depth + 1))
    return model, values


@st.composite
def models(draw: st.DrawFn, depth: int = 0) -> tuple[type[BaseModel], st.SearchStrategy[Any]]:
    """A generated pydantic model (required, optional-with-default and Optional fields) and its instances."""
    count = draw(st.integers(1, 4))
    fields: dict[str, Any] = {}
    values: dict[str, st.SearchStrategy[Any]] = {}
    for i in range(count):
        tp, strategy = draw(field_types(depth))
        shape = draw(st.sampled_from(["required", "default", "optional_none", "optional_default"]))
        name = f"f{i}"
        if shape == "required":
            fields[name] = (tp, ...)
            values[name] = strategy
        elif shape == "default":
            default = draw(strategy)
            fields[name] = (tp, default)
            values[name] = st.one_of(st.just(_Missing), strategy)
        elif shape == "optional_none":
            fields[name] = (Optional[tp], None)
            values[name] = st.one_of(st.just(_Missing), st.none(), strategy)
        else:
            default = draw(strategy)
            fields[name] = (Optional[tp], default)
            values[name] = st.one_of(st.just(_Missing), strategy)
    model = create_model(f"M{next(_names)}", **fields)

    @st.composite
    def instances(d: st.DrawFn) -> BaseModel:
        data = {k: d(v) for k, v in values.items()}
        return model(**{k: v for k, v in data.items() if v is not _Missing})

    return model, instances()


class _MissingType:
    pass


_Missing = _MissingType()


def _strict_answer(value: Any, schema: dict[str, Any], defs: dict[str, Any]) -> Any:
    """What a strict-mode model sends for ``value``: every property present, unset optional ones ``null``."""
    if isinstance(value, BaseModel):
        value = value.model_dump(mode="json", exclude_unset=True)
        return _strict_answer(value, schema, defs)
    while "$ref" in schema:
        schema = defs[schema["$ref"].rsplit("/", 1)[-1]]
    if isinstance(value, dict):
        props = schema.get("properties") or {}
        out = {}
        for key, sub in props.items():
            if key in value:
                out[key] = _strict_answer(value[key], _branch(sub), defs)
            else:
                out[key] = None
        return out
    if isinstance(value, list):
        return [_strict_answer(v, _branch(schema.get("items") or {}), defs) for v in value]
    return value


def _branch(schema: dict[str, Any]) -> dict[str, Any]:
    for sub in schema.get("anyOf") or ():
        if sub.get("type") != "null":
            return _branch(sub)
    return schema


def _walk(node: Any) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    if isinstance(node, dict):
        found.append(node)
        for value in node.values():
            found += _walk(value)
    elif isinstance(node, list):
        for value in node:
            found += _walk(value)
    return found


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_strict_schema_of_any_model_meets_strict_mode(data: st.DataObject) -> None:
    model, _ = data.draw(models())
    strict = to_strict(model.model_json_schema())
    for node in _walk(strict):
        assert "default" not in node
        if "properties" in node:
            assert node["additionalProperties"] is False
            assert set(node["required"]) == set(node["properties"])
    assert "oneOf" not in str(strict)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_strict_answer_restores_to_the_users_instance(data: st.DataObject) -> None:
    model, instances = data.draw(models())
    instance = data.draw(instances)
    original = model.model_json_schema()
    strict = to_strict(original)
    answer = _strict_answer(instance, original, original.get("$defs", {}))
    assert check(answer, strict) == [], (answer, strict)  # the strict answer is valid for codex's schema
    restored = restore_optional(answer, original)
    assert model.model_validate(restored) == instance


def test_optional_field_becomes_required_and_nullable() -> None:
    class Address(BaseModel):
        city: str
        zip_code: str | None = None

    class Person(BaseModel):
        name: str
        nickname: str = "none"
        address: Address | None = None

    strict = to_strict(Person.model_json_schema())
    assert strict["required"] == ["name", "nickname", "address"]
    assert strict["properties"]["nickname"]["anyOf"][1] == {"type": "null"}
    assert strict["$defs"]["Address"]["required"] == ["city", "zip_code"]
    restored = restore_optional({"name": "a", "nickname": None, "address": {"city": "x", "zip_code": None}},
                                Person.model_json_schema())  # fmt: skip
    assert Person.model_validate(restored) == Person(name="a", address=Address(city="x"))


def test_a_free_form_map_has_no_strict_equivalent() -> None:
    class Bag(BaseModel):
        counts: dict[str, int]

    with pytest.raises(StrictSchemaError) as info:
        to_strict(Bag.model_json_schema())
    assert isinstance(info.value, ConfigurationError)
    assert info.value.path == "/properties/counts"
    with pytest.raises(StrictSchemaError):
        to_strict({"type": "object", "properties": {"x": {}}})


def test_a_non_object_answer_travels_wrapped() -> None:
    spec = output_spec(list[int])
    assert spec.wrapped and spec.schema["required"] == ["value"]
    assert spec.parse({"value": [1, 2]}) == [1, 2]
    strict = to_strict(spec.schema)
    assert strict["additionalProperties"] is False


def test_keywords_strict_mode_does_not_take_are_left_to_caws_validation() -> None:
    from pydantic import Field as PydanticField

    class Tagged(BaseModel):
        tag: str = PydanticField(min_length=2, max_length=5)
        ids: set[int]

    strict = to_strict(Tagged.model_json_schema())
    assert "minLength" not in strict["properties"]["tag"] and "uniqueItems" not in strict["properties"]["ids"]
    spec = output_spec(Tagged)
    with pytest.raises(ValueError) as info:
        spec.parse({"tag": "x", "ids": [1]})
    assert any("tag" in line for line in info.value.args[1])
