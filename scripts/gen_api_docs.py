#!/usr/bin/env python3
"""Write docs/api-reference.md from caw's docstrings: every name in ``caw.__all__`` and the types they use.

    .venv/bin/python scripts/gen_api_docs.py           # rewrite docs/api-reference.md
    .venv/bin/python scripts/gen_api_docs.py --check   # exit 1 when the committed page is stale

Classes get their docstring, constructor signature and public methods and properties (signatures with their
return annotations); pydantic models and dataclasses every field (type, default, and the field's
description: ``Field(description=...)``, else the ``#:`` comment above it, else the comment after it); enums
their members; errors their attributes (class attributes and what ``__init__`` sets). Types that appear in
those signatures and fields (``TurnError``, ``ProviderHealth``, the events of ``Event``) follow the public
names. Stdlib only: ``inspect`` for the objects, ``ast`` and ``tokenize`` for what only the source says.
``tests/unit/test_api_reference.py`` fails when the committed page differs from what this script writes.
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import enum
import inspect
import io
import re
import sys
import tokenize
import typing
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

#: annotation texts met while rendering, with the module whose names they use
Refs = set[tuple[str, str]]
REPO_ROOT = Path(__file__).resolve().parents[1]
OUTPUT = REPO_ROOT / "docs" / "api-reference.md"
sys.path.insert(0, str(REPO_ROOT))

from pydantic import BaseModel  # noqa: E402
from pydantic.fields import FieldInfo  # noqa: E402
from pydantic_core import PydanticUndefined  # noqa: E402

import caw  # noqa: E402

#: classes users get from a method, not by calling the class: no constructor signature is shown
MADE_BY = {
    "Session": "``Agent.start_session()``, ``Agent.resume_session()``, ``Session.load_trajectory()``",
    "TurnStream": "``Session.stream()``",
    "AsyncTurnStream": "``Session.astream()``",
    "InteractiveResult": "``Agent.interactive()``",
}
#: dunder methods worth listing (operators and protocols a user writes against)
DUNDERS = (
    "__add__",
    "__sub__",
    "__or__",
    "__and__",
    "__iter__",
    "__aiter__",
    "__anext__",
    "__enter__",
    "__exit__",
    "__aenter__",
    "__aexit__",
)
GROUPS = [
    ("Agent and sessions", lambda o: inspect.isclass(o) and o.__module__.startswith(("caw.agent", "caw.session"))),
    ("Errors", lambda o: inspect.isclass(o) and issubclass(o, BaseException)),
    ("Enums", lambda o: inspect.isclass(o) and issubclass(o, enum.Enum)),
    ("Data", lambda o: inspect.isclass(o)),
    ("Functions", inspect.isfunction),
    ("Types and constants", lambda o: True),
]


# ---- source facts: comments, annotations, attribute assignments -------------------------------------------
class Source:
    """What a module's source says that the objects do not: field annotations as written, and comments."""

    _cache: typing.ClassVar[dict[str, Source]] = {}

    def __init__(self, module: str) -> None:
        mod = sys.modules[module]
        self.text = inspect.getsource(mod)
        self.tree = ast.parse(self.text)
        self.comments: dict[int, str] = {}  # line -> comment text (without '#')
        for tok in tokenize.generate_tokens(io.StringIO(self.text).readline):
            if tok.type == tokenize.COMMENT:
                self.comments[tok.start[0]] = tok.string[1:].strip()
        self.lines = self.text.splitlines()
        self.classes = {n.name: n for n in ast.walk(self.tree) if isinstance(n, ast.ClassDef)}

    @classmethod
    def of(cls, module: str) -> Source:
        if module not in cls._cache:
            cls._cache[module] = Source(module)
        return cls._cache[module]

    def note(self, node: ast.stmt) -> str:
        """The ``#:`` lines right above a statement, else the comment at the end of its first line."""
        above: list[str] = []
        line = node.lineno - 1
        while line >= 1 and self.lines[line - 1].strip().startswith("#:"):
            above.insert(0, self.lines[line - 1].strip()[2:].strip())
            line -= 1
        if above:
            return " ".join(above)
        trailing = self.comments.get(node.lineno, "")
        code = self.lines[node.lineno - 1].split("#", 1)[0].strip()
        return trailing if code and not trailing.startswith(("type:", "noqa")) else ""

    def class_body(self, name: str) -> list[ast.stmt]:
        node = self.classes.get(name)
        return node.body if node is not None else []

    def segment(self, node: ast.AST) -> str:
        return ast.get_source_segment(self.text, node) or ""


def annotated_in_class(cls: type, name: str) -> tuple[str, str] | None:
    """The annotation text and note of attribute ``name`` where the MRO first declares it."""
    for klass in cls.__mro__:
        if not klass.__module__.startswith("caw"):
            continue
        src = Source.of(klass.__module__)
        for stmt in src.class_body(klass.__name__):
            if isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name) and stmt.target.id == name:
                return src.segment(stmt.annotation), src.note(stmt)
    return None


def class_attributes(cls: type) -> list[tuple[str, str, str]]:
    """(name, value as written, note) of public class attributes set in the class bodies along the MRO."""
    seen: dict[str, tuple[str, str, str]] = {}
    for klass in reversed(cls.__mro__):
        if not klass.__module__.startswith("caw"):
            continue
        src = Source.of(klass.__module__)
        for stmt in src.class_body(klass.__name__):
            target = value = None
            if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 and isinstance(stmt.targets[0], ast.Name):
                target, value = stmt.targets[0].id, stmt.value
            elif isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name) and stmt.value is not None:
                target, value = stmt.target.id, stmt.value
            if target is None or value is None or target.startswith("_"):
                continue
            old_note = seen.get(target, ("", "", ""))[2]
            seen[target] = (target, src.segment(value), src.note(stmt) or old_note)
    return list(seen.values())


def init_attributes(cls: type) -> list[tuple[str, str]]:
    """(name, note) of the public ``self.x = ...`` assignments in ``__init__`` along the MRO, in order."""
    found: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        if not klass.__module__.startswith("caw") or "__init__" not in klass.__dict__:
            continue
        src = Source.of(klass.__module__)
        for stmt in src.class_body(klass.__name__):
            if isinstance(stmt, ast.FunctionDef) and stmt.name == "__init__":
                for node in ast.walk(stmt):
                    targets = node.targets if isinstance(node, ast.Assign) else []
                    if isinstance(node, ast.AnnAssign):
                        targets = [node.target]
                    for t in targets:
                        if (
                            isinstance(t, ast.Attribute)
                            and isinstance(t.value, ast.Name)
                            and t.value.id == "self"
                            and not t.attr.startswith("_")
                        ):
                            found.setdefault(t.attr, src.note(node) if isinstance(node, ast.stmt) else "")
    return list(found.items())


# ---- rendering helpers --------------------------------------------------------------------------------------
def own_doc(obj: Any) -> str:
    raw = obj.__dict__.get("__doc__") if inspect.isclass(obj) else getattr(obj, "__doc__", None)
    return inspect.cleandoc(raw) if isinstance(raw, str) and raw.strip() else ""


def text_of(value: Any) -> str:
    """A default value as text; objects whose repr holds a memory address show their name."""
    if isinstance(value, enum.Enum):
        return f"{type(value).__name__}.{value.name}"
    text = repr(value)
    if " at 0x" in text or text.startswith("<"):
        name = getattr(value, "__qualname__", None) or getattr(value, "__name__", None)
        return name if name and name != "<lambda>" else "(a function)"
    return text


def ann_text(annotation: Any) -> str:
    if annotation is inspect.Parameter.empty:
        return ""
    if isinstance(annotation, str):
        return annotation
    return inspect.formatannotation(annotation).replace("typing.", "")


def signature(obj: Callable[..., Any], *, drop_self: bool = False) -> str:
    try:
        sig = inspect.signature(obj)
    except (TypeError, ValueError):
        return "(...)"
    params = list(sig.parameters.values())
    if drop_self and params and params[0].name in ("self", "cls"):
        params = params[1:]
    parts: list[str] = []
    star_done = False
    for p in params:
        if p.kind is p.KEYWORD_ONLY and not star_done:
            parts.append("*")
            star_done = True
        if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            star_done = star_done or p.kind is p.VAR_POSITIONAL
        prefix = {p.VAR_POSITIONAL: "*", p.VAR_KEYWORD: "**"}.get(p.kind, "")
        piece = prefix + p.name
        if p.annotation is not p.empty:
            piece += f": {ann_text(p.annotation)}"
        if p.default is not p.empty:
            piece += (" = " if p.annotation is not p.empty else "=") + text_of(p.default)
        parts.append(piece)
        if p.kind is p.POSITIONAL_ONLY and (
            params.index(p) + 1 == len(params) or params[params.index(p) + 1].kind is not p.POSITIONAL_ONLY
        ):
            parts.append("/")
    out = f"({', '.join(parts)})"
    if sig.return_annotation is not sig.empty:
        out += f" -> {ann_text(sig.return_annotation)}"
    return out


def cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def docblock(doc: str) -> list[str]:
    """A docstring as markdown: doctest lines become a code block, the rest stays prose."""
    if not doc:
        return []
    out: list[str] = []
    in_code = False
    for line in doc.splitlines():
        is_code = line.lstrip().startswith((">>>", "...")) or (in_code and line.strip() != "")
        if is_code and not in_code:
            out.append("```pycon")
            in_code = True
        elif not is_code and in_code:
            out.append("```")
            in_code = False
        out.append(line)
    if in_code:
        out.append("```")
    return [*out, ""]


def first_line(doc: str) -> str:
    return doc.split("\n\n", 1)[0].replace("\n", " ").strip()


# ---- what a class offers ------------------------------------------------------------------------------------
def members(cls: type) -> Iterator[tuple[str, Any, type]]:
    """Public methods and properties of ``cls`` defined by caw classes along its MRO (first definition wins)."""
    seen: set[str] = set()
    for klass in cls.__mro__:
        if not klass.__module__.startswith("caw"):
            continue
        for name, value in klass.__dict__.items():
            if name in seen or (name.startswith("_") and name not in DUNDERS):
                continue
            if isinstance(value, property | classmethod | staticmethod) or inspect.isfunction(value):
                seen.add(name)
                yield name, value, klass
            elif type(value).__name__ == "PydanticDescriptorProxy":  # @computed_field
                seen.add(name)
                yield name, value.wrapped, klass


def render_members(cls: type, skip: set[str], refs: Refs) -> list[str]:
    out: list[str] = []
    for name, value, klass in sorted(members(cls), key=lambda m: (m[0].startswith("_"), m[0])):
        if name in skip or (issubclass(cls, BaseModel) and name in cls.model_fields):
            continue
        if isinstance(value, property):
            fget = value.fget
            assert fget is not None
            ret = ann_text(inspect.signature(fget).return_annotation)
            refs.add((klass.__module__, ret))
            head = f"`{name}: {ret}` (property{'' if value.fset is None else ', settable'})"
            doc = own_doc(fget)
        else:
            func = value.__func__ if isinstance(value, classmethod | staticmethod) else value
            kind = (
                "classmethod "
                if isinstance(value, classmethod)
                else "staticmethod "
                if isinstance(value, staticmethod)
                else ""
            )
            sig = signature(func, drop_self=not isinstance(value, staticmethod))
            refs.add((klass.__module__, sig))
            head = f"`{kind}{name}{sig}`"
            doc = own_doc(func)
        out.append(f"- {head}" + (f": {first_line(doc)}" if doc else ""))
        rest = doc.split("\n\n", 1)[1] if "\n\n" in doc else ""
        if rest:
            out.append("")
            out.extend("  " + line if line else "" for line in docblock(rest))
    return [*out, ""] if out else []


def field_table(rows: list[tuple[str, str, str, str]]) -> list[str]:
    out = ["| field | type | default | description |", "|---|---|---|---|"]
    out += [f"| `{n}` | `{cell(t)}` | {f'`{cell(d)}`' if d else 'required'} | {cell(doc)} |" for n, t, d, doc in rows]
    return [*out, ""]


def model_rows(cls: type[BaseModel], refs: Refs) -> list[tuple[str, str, str, str]]:
    rows = []
    for name, info in cls.model_fields.items():
        found = annotated_in_class(cls, name)
        ann, note = found if found else (ann_text(info.annotation), "")
        refs.add((cls.__module__, ann))
        rows.append((name, ann, field_default(info), info.description or note))
    return rows


def field_default(info: FieldInfo) -> str:
    if info.default_factory is not None:
        factory = info.default_factory
        known = {list: "[]", dict: "{}", set: "set()", tuple: "()"}
        return known.get(factory, f"{getattr(factory, '__name__', 'factory')}()")  # type: ignore[call-overload]
    if info.default is PydanticUndefined:
        return ""
    return text_of(info.default)


def dataclass_rows(cls: type, refs: Refs) -> list[tuple[str, str, str, str]]:
    rows = []
    for f in dataclasses.fields(cls):
        if f.name.startswith("_"):
            continue
        found = annotated_in_class(cls, f.name)
        ann, note = found if found else (ann_text(f.type), "")
        refs.add((cls.__module__, ann))
        if f.default is not dataclasses.MISSING:
            default = text_of(f.default)
        elif f.default_factory is not dataclasses.MISSING:
            default = {list: "[]", dict: "{}"}.get(f.default_factory, f"{getattr(f.default_factory, '__name__', '')}()")  # type: ignore[call-overload]
        else:
            default = ""
        rows.append((f.name, ann, default, note))
    return rows


def render_class(qualname: str, cls: type, refs: Refs) -> list[str]:
    out = [f"### `{qualname}`", ""]
    bases = [b.__name__ for b in cls.__bases__ if b is not object and not b.__name__.startswith("_")]
    name = cls.__name__
    if issubclass(cls, BaseModel):
        shown = "" if bases in ([], ["BaseModel"]) else f" ({', '.join(bases)})"
        out += [f"pydantic model{shown}", ""]
    elif issubclass(cls, enum.Enum):
        out += [f"enum ({', '.join(bases)})", ""]
    elif name in MADE_BY:
        out += [f"class; made by {MADE_BY[name]}", ""]
    elif getattr(cls, "_is_protocol", False):
        out += ["protocol: any object with these methods", ""]
    else:
        if dataclasses.is_dataclass(cls):
            sig = (
                "("
                + ", ".join(f"{n}: {t}" + (f" = {d}" if d else "") for n, t, d, _ in dataclass_rows(cls, refs))
                + ")"
            )
        else:
            sig = signature(cls).split(" -> ")[0]
        refs.add((cls.__module__, sig))
        out += ["```python", f"{'exception' if issubclass(cls, BaseException) else 'class'} {name}{sig}", "```", ""]
        if bases:
            out += [f"Bases: {', '.join(f'`{b}`' for b in bases)}", ""]
    doc = own_doc(cls)
    out += docblock(doc) if doc else ["*(no docstring)*", ""]
    skip: set[str] = set()
    if issubclass(cls, BaseModel):
        out += ["**Fields**", "", *field_table(model_rows(cls, refs))]
    elif dataclasses.is_dataclass(cls):
        out += ["**Fields**", "", *field_table(dataclass_rows(cls, refs))]
    elif issubclass(cls, enum.Enum):
        out += ["**Members**", "", "| member | value | |", "|---|---|---|"]
        src = Source.of(cls.__module__)
        notes = {}
        for stmt in src.class_body(name):
            if isinstance(stmt, ast.Assign) and isinstance(stmt.targets[0], ast.Name):
                notes[stmt.targets[0].id] = src.note(stmt)
        for member_name, member in cls.__members__.items():
            out.append(f"| `{member_name}` | `{cell(text_of(member.value))}` | {cell(notes.get(member_name, ''))} |")
        out.append("")
    elif issubclass(cls, BaseException):
        attrs = class_attributes(cls)
        inits = [(n, note) for n, note in init_attributes(cls) if n not in {a[0] for a in attrs}]
        if attrs or inits:
            out += ["**Attributes**", ""]
            out += [f"- `{n}` = `{v}`" + (f": {note}" if note else "") for n, v, note in attrs]
            if inits:
                out.append(
                    "- set by the constructor: "
                    + ", ".join(f"`{n}`" + (f" ({note})" if note else "") for n, note in inits)
                )
            out.append("")
        skip = {"add_note", "with_traceback"}
    methods = render_members(cls, skip, refs)
    if methods:
        out += ["**Methods and properties**", "", *methods]
    return out


def render_function(qualname: str, fn: Callable[..., Any], refs: Refs) -> list[str]:
    sig = signature(fn)
    refs.add((fn.__module__, sig))
    doc = own_doc(fn)
    return [
        f"### `{qualname}`",
        "",
        "```python",
        f"def {fn.__name__}{sig}",
        "```",
        "",
        *(docblock(doc) or ["*(no docstring)*", ""]),
    ]


def union_members(alias: Any) -> list[type]:
    args = typing.get_args(alias)
    if args and typing.get_origin(alias) is typing.Annotated:
        return union_members(args[0])
    return [a for a in args if inspect.isclass(a)]


def render_other(qualname: str, obj: Any, refs: Refs) -> list[str]:
    if qualname == "caw.__version__":
        return [f"### `{qualname}`", "", "`str`: the installed version of caw.", ""]
    members_ = union_members(obj)
    if members_:
        listed = ", ".join(f"[`{m.__name__}`](#{anchor(f'{m.__module__}.{m.__name__}')})" for m in members_)
        return [
            f"### `{qualname}`",
            "",
            "A type alias: one of the classes below, told apart by their `type` field (a pydantic discriminated"
            " union).",
            "",
            listed,
            "",
        ]
    return [f"### `{qualname}`", "", f"`{text_of(obj)}`", ""]


def anchor(qualname: str) -> str:
    return re.sub(r"[^a-z0-9_ -]", "", qualname.lower()).replace(" ", "-")


# ---- types reachable from the public names ------------------------------------------------------------------
def referenced(texts: Refs, known: set[int]) -> list[tuple[str, Any]]:
    """(where, object) of the caw classes and type aliases named in annotation texts and not yet documented.

    A name is looked up in the module whose source wrote it, so what else happens to be imported does not matter.
    """
    found: dict[int, tuple[str, Any]] = {}
    for module, text in sorted(texts):
        ns = vars(sys.modules[module])
        for word in re.findall(r"[A-Za-z_][A-Za-z0-9_.]*", text):
            obj = _resolve(word, ns)
            if obj is None or id(obj) in known or id(obj) in found or word.split(".")[-1].startswith("_"):
                continue
            if inspect.isclass(obj) and obj.__module__.startswith("caw"):
                found[id(obj)] = (public_name(obj), obj)
            elif typing.get_origin(obj) is not None:
                where = _alias_module(word.split(".")[-1], obj, module)
                if where is not None:
                    found[id(obj)] = (f"{where}.{word.split('.')[-1]}", obj)
    return sorted(found.values(), key=lambda item: item[0])


def _alias_module(name: str, obj: Any, module: str) -> str | None:
    """The caw module whose source assigns the alias ``name`` at top level (``module``, or where it came from)."""
    for mod in [module, *sorted(m for m in sys.modules if m.startswith("caw") and m != module)]:
        if vars(sys.modules[mod]).get(name) is not obj:
            continue
        for stmt in Source.of(mod).tree.body:
            if name in _assigned(stmt):
                return mod
    return None


def _assigned(stmt: ast.stmt) -> set[str]:
    targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target] if isinstance(stmt, ast.AnnAssign) else []
    return {t.id for t in targets if isinstance(t, ast.Name)}


def render_alias(qualname: str, obj: Any) -> list[str]:
    module, name = qualname.rsplit(".", 1)
    src = Source.of(module)
    for stmt in src.tree.body:
        if name in _assigned(stmt):
            note = src.note(stmt)
            return [
                f"### `{qualname}`",
                "",
                "A type alias.",
                "",
                "```python",
                src.segment(stmt),
                "```",
                "",
                *([note, ""] if note else []),
            ]
    return [f"### `{qualname}`", "", "A type alias.", ""]


def _resolve(dotted: str, ns: dict[str, Any]) -> Any:
    head, *rest = dotted.split(".")
    obj = ns.get(head)
    for part in rest:
        obj = getattr(obj, part, None)
    return obj


def public_name(cls: type) -> str:
    """Where a user imports it from: the shortest public ``caw`` module that exports it."""
    parts = cls.__module__.split(".")
    for i in range(1, len(parts) + 1):
        mod = sys.modules.get(".".join(parts[:i]))
        if mod is not None and getattr(mod, cls.__name__, None) is cls and (i == 1 or not parts[i - 1].startswith("_")):
            return f"{'.'.join(parts[:i])}.{cls.__name__}"
    return f"{cls.__module__}.{cls.__name__}"


# ---- the page -----------------------------------------------------------------------------------------------
def render() -> str:
    refs: Refs = set()
    sections: dict[str, list[tuple[str, Any]]] = {g: [] for g, _ in GROUPS}
    for name in sorted(caw.__all__, key=str.lower):
        obj = getattr(caw, name)
        for group, test in GROUPS:
            if test(obj):
                sections[group].append((f"caw.{name}", obj))
                break
    documented = {id(getattr(caw, n)) for n in caw.__all__}
    body: list[str] = []
    toc: list[str] = []
    for group, entries in sections.items():
        if not entries:
            continue
        body += [f"## {group}", ""]
        toc.append(f"- **{group}**: " + ", ".join(f"[`{q.removeprefix('caw.')}`](#{anchor(q)})" for q, _ in entries))
        for qualname, obj in entries:
            if inspect.isclass(obj):
                body += render_class(qualname, obj, refs)
            elif inspect.isfunction(obj):
                body += render_function(qualname, obj, refs)
            else:
                body += render_other(qualname, obj, refs)
    # the events of the Event union, then every caw type or type alias a documented signature or field names
    events = [m for m in union_members(caw.Event) if id(m) not in documented]
    documented |= {id(m) for m in events}
    body += [
        "## Events",
        "",
        "The classes of the ``Event`` union (``caw.events``), in the order the union lists them.",
        "",
    ]
    toc.append("- **Events**: " + ", ".join(f"[`{m.__name__}`](#{anchor(public_name(m))})" for m in events))
    for cls in events:
        body += render_class(public_name(cls), cls, refs)
    others: list[str] = []
    other_body: list[str] = []
    while True:
        more = referenced(refs, documented)
        if not more:
            break
        for qualname, obj in more:
            documented.add(id(obj))
            others.append(f"[`{qualname.removeprefix('caw.')}`](#{anchor(qualname)})")
            other_body += render_class(qualname, obj, refs) if inspect.isclass(obj) else render_alias(qualname, obj)
    if others:
        body += [
            "## Other types",
            "",
            "Types the signatures and fields above name, where they are defined.",
            "",
            *other_body,
        ]
        toc.append("- **Other types**: " + ", ".join(others))
    header = [
        "# API reference",
        "",
        "<!-- Generated by scripts/gen_api_docs.py from the docstrings. Do not edit: change the docstring, then run",
        "     .venv/bin/python scripts/gen_api_docs.py -->",
        "",
        "Every name `import caw` exports, and the types their signatures and fields use. The guide to using them is",
        "[python-api.md](python-api.md). This page is generated from the docstrings by `scripts/gen_api_docs.py`;",
        "a unit test fails when it is out of date.",
        "",
        *toc,
        "",
    ]
    text = "\n".join(header + body).rstrip() + "\n"
    return re.sub(r"\n{3,}", "\n\n", text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--check", action="store_true", help="exit 1 when docs/api-reference.md is out of date")
    args = parser.parse_args(argv)
    text = render()
    if args.check:
        current = OUTPUT.read_text() if OUTPUT.exists() else ""
        if current != text:
            print(f"{OUTPUT.relative_to(REPO_ROOT)} is out of date: run .venv/bin/python scripts/gen_api_docs.py")
            return 1
        return 0
    OUTPUT.write_text(text)
    print(f"wrote {OUTPUT.relative_to(REPO_ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
