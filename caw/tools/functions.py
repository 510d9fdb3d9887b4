"""``@caw.tool``: a Python function (sync or async) becomes an MCP tool the CLIs can call.

The tool's name is the function's (or ``name=``), its description the docstring's (or ``description=``), its
input schema comes from the type hints through pydantic: ``Annotated[int, "what it is"]`` (or a pydantic
``Field``) describes a parameter, defaults make it optional, ``X | None`` is nullable, pydantic models and
dataclasses nest. The return value is the result: a ``str`` as it is, a pydantic model as its JSON, anything
else as JSON (``default=str`` for what JSON does not know), ``None`` as an empty result.

    >>> @tool
    ... def add(a: int, b: Annotated[int, "the second number"] = 1) -> int:
    ...     '''Add two numbers.'''
    ...     return a + b
    >>> spec = function_tool(add)
    >>> spec.name, spec.description, spec.input_schema["required"]
    ('add', 'Add two numbers.', ['a'])
    >>> spec.input_schema["properties"]["b"]["description"]
    'the second number'
    >>> add(2, 3)
    5

The decorator leaves the function as it was (callable as before); it only marks it. ``function_tool(fn)``
builds the ``FunctionTool`` for a marked or a plain function, ``bound`` to an instance for a method.
"""

from __future__ import annotations

import inspect
import json
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Annotated, Any, TypeVar, overload

from caw.errors import ConfigurationError

_F = TypeVar("_F", bound=Callable[..., Any])

#: the attribute ``@tool`` sets on a function: ``(name or None, description or None)``
MARK = "__caw_tool__"
#: a tool name every CLI accepts (claude and codex prefix it with ``mcp__<server>__``, opencode ``<server>_``)
_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-")


@overload
def tool(fn: _F, /) -> _F: ...
@overload
def tool(*, name: str | None = None, description: str | None = None) -> Callable[[_F], _F]: ...


def tool(
    fn: _F | None = None, /, *, name: str | None = None, description: str | None = None
) -> _F | Callable[[_F], _F]:
    """Mark a function (or a ``ToolKit`` method) as a tool: bare ``@tool`` or ``@tool(name=..., description=...)``."""

    def mark(f: _F) -> _F:
        if not callable(f):
            raise ConfigurationError(f"@caw.tool decorates a function, not {f!r}")
        if name is not None:
            check_name(name)
        setattr(f, MARK, (name, description))
        return f

    return mark(fn) if fn is not None else mark


def is_tool(obj: object) -> bool:
    """Whether ``obj`` was marked with ``@tool``."""
    return hasattr(obj, MARK)


def check_name(name: str) -> str:
    """``name`` if it is a usable tool name (1-64 letters, digits, ``_`` or ``-``), else ConfigurationError."""
    if not name or len(name) > 64 or not set(name) <= _NAME_CHARS:
        raise ConfigurationError(
            f"a tool name is 1-64 letters, digits, '_' or '-' (the CLIs' own rule for tool names), not {name!r}"
        )
    return name


@dataclass(frozen=True)
class FunctionTool:
    """A Python callable served as a tool: its name, description, JSON input schema and how to validate.

    ``validate(arguments)`` returns the keyword arguments for the callable (pydantic-validated, so ``"3"``
    becomes ``3`` for an ``int``), or raises ``ValueError`` with a message for the model.
    """

    name: str
    description: str
    input_schema: Mapping[str, Any]
    fn: Callable[..., Any]
    model: Any  # a pydantic model class over the parameters
    is_async: bool

    def validate(self, arguments: Mapping[str, Any]) -> dict[str, Any]:
        from pydantic import ValidationError

        try:
            parsed = self.model.model_validate(dict(arguments))
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in e['loc']) or 'arguments'}: {e['msg']}" for e in exc.errors()
            )
            raise ValueError(f"invalid arguments for {self.name}: {problems}") from None
        return {field: getattr(parsed, field) for field in type(parsed).model_fields}


def function_tool(fn: Callable[..., Any], *, name: str | None = None, description: str | None = None) -> FunctionTool:
    """The ``FunctionTool`` for ``fn`` (a function, a bound method, or anything ``@tool`` marked)."""
    marked = getattr(fn, MARK, None) or getattr(getattr(fn, "__func__", None), MARK, None) or (None, None)
    tool_name = check_name(name or marked[0] or getattr(fn, "__name__", "") or "")
    text = description or marked[1] or inspect.getdoc(fn) or ""
    model = parameters_model(fn, tool_name)
    schema = input_schema(model)
    is_async = inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(type(fn).__call__)
    return FunctionTool(tool_name, text.strip(), schema, fn, model, is_async)


def parameters_model(fn: Callable[..., Any], model_name: str) -> Any:
    """A pydantic model whose fields are ``fn``'s parameters (``self``/``cls`` of a bound method excluded)."""
    from pydantic import ConfigDict, Field, create_model

    try:
        signature = inspect.signature(fn)
    except (TypeError, ValueError) as exc:
        raise ConfigurationError(f"cannot read the parameters of {fn!r}: {exc}") from None
    try:
        hints = typing.get_type_hints(getattr(fn, "__func__", fn), include_extras=True)
    except Exception as exc:  # a forward reference that does not resolve
        raise ConfigurationError(f"cannot resolve the type hints of {model_name}: {exc}") from None
    fields: dict[str, Any] = {}
    for param in signature.parameters.values():
        if param.kind in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD):
            continue  # *args / **kwargs take nothing the model can name
        if param.kind is inspect.Parameter.POSITIONAL_ONLY:
            raise ConfigurationError(f"tool {model_name}: positional-only parameter {param.name!r} cannot be named")
        annotation = _described(hints.get(param.name, Any))
        default = ... if param.default is inspect.Parameter.empty else param.default
        fields[param.name] = (annotation, Field(default=default))
    try:
        return create_model(f"{model_name}_arguments", __config__=ConfigDict(arbitrary_types_allowed=False), **fields)
    except Exception as exc:  # pydantic cannot build a schema for a type
        raise ConfigurationError(f"tool {model_name}: its parameters have no JSON schema: {exc}") from None


def _described(annotation: Any) -> Any:
    """``Annotated[T, "text"]`` as pydantic understands it: the string becomes the field's description."""
    from pydantic import Field

    if typing.get_origin(annotation) is not Annotated:
        return annotation
    base, *extras = typing.get_args(annotation)
    kept = [Field(description=e) if isinstance(e, str) else e for e in extras]
    return Annotated[(base, *kept)] if kept else base


def input_schema(model: Any) -> dict[str, Any]:
    """The JSON schema of a parameters model, as an MCP ``inputSchema`` (an object, ``required`` listed)."""
    try:
        schema: dict[str, Any] = model.model_json_schema()
    except Exception as exc:
        raise ConfigurationError(f"{model.__name__}: no JSON schema for these parameters: {exc}") from None
    schema.pop("title", None)
    for prop in schema.get("properties", {}).values():
        if isinstance(prop, dict):
            prop.pop("title", None)
    schema.setdefault("properties", {})
    schema.setdefault("required", [])
    schema["type"] = "object"
    return schema


def result_text(value: Any) -> str:
    """A tool's return value as the text the model gets (str as is, pydantic as JSON, the rest as JSON)."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    dump = getattr(value, "model_dump_json", None)
    if callable(dump) and not isinstance(value, type):
        return str(dump())
    if isinstance(value, (bytes, bytearray)):
        return bytes(value).decode("utf-8", "replace")
    try:
        return json.dumps(value, ensure_ascii=False, default=_jsonable)
    except (TypeError, ValueError):
        return str(value)


def _jsonable(value: Any) -> Any:
    dump = getattr(value, "model_dump", None)
    if callable(dump) and not isinstance(value, type):
        return dump(mode="json")
    import dataclasses

    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    return str(value)


__all__ = ["MARK", "FunctionTool", "check_name", "function_tool", "input_schema", "is_tool", "result_text", "tool"]
