"""docs/api-reference.md is what scripts/gen_api_docs.py writes from the docstrings, and it covers the API."""

from __future__ import annotations

import doctest
import importlib.util
import inspect
import sys
from pathlib import Path
from types import ModuleType

import pytest

import caw

ROOT = Path(__file__).resolve().parents[2]
REGENERATE = ".venv/bin/python scripts/gen_api_docs.py"


@pytest.fixture(scope="module")
def gen() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gen_api_docs", ROOT / "scripts" / "gen_api_docs.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("gen_api_docs", module)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def page(gen: ModuleType) -> str:
    text: str = gen.render()
    return text


def test_the_committed_reference_is_what_the_script_writes(page: str) -> None:
    committed = (ROOT / "docs" / "api-reference.md").read_text()
    assert committed == page, f"docs/api-reference.md is out of date: run {REGENERATE}"


def test_every_public_name_has_a_section(page: str) -> None:
    headings = {line.removeprefix("### ").strip("`") for line in page.splitlines() if line.startswith("### ")}
    missing = [name for name in caw.__all__ if f"caw.{name}" not in headings]
    assert missing == []


def test_every_event_of_the_union_has_a_section(gen: ModuleType, page: str) -> None:
    events = gen.union_members(caw.Event)
    assert len(events) > 5
    for cls in events:
        assert f"### `caw.events.{cls.__name__}`" in page


def test_every_public_class_and_function_has_its_own_docstring(gen: ModuleType) -> None:
    undocumented = [
        name
        for name in caw.__all__
        if (inspect.isclass(getattr(caw, name)) or inspect.isfunction(getattr(caw, name)))
        and not gen.own_doc(getattr(caw, name))
    ]
    assert undocumented == []


def test_fields_carry_their_comments_and_methods_their_return_types(page: str) -> None:
    # a ``#:`` comment above a field becomes its description; a trailing comment too
    assert "| `resume_handle` | `str \\| None` | `None` | the opaque string that resumes this conversation" in page
    assert "| `agent` | `str` | `''` | provider name |" in page
    # methods with their signature and return annotation; properties with their type
    assert "- `astream(message: str, **options: Any) -> AsyncTurnStream`" in page
    assert "- `turn: Turn` (property)" in page
    # enums with their members, errors with their attributes
    assert "| `READER` | `1` | read files, search the tree |" in page
    assert '- `reason` = `"cancelled"`' in page


def test_no_memory_addresses_leak_into_the_page(page: str) -> None:
    assert " at 0x" not in page and "(no docstring)" not in page.split("## Events")[0]


def test_check_mode_reports_a_stale_page(gen: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    stale = tmp_path / "api-reference.md"
    stale.write_text("# old\n")
    monkeypatch.setattr(gen, "OUTPUT", stale)
    monkeypatch.setattr(gen, "REPO_ROOT", tmp_path)
    assert gen.main(["--check"]) == 1
    assert gen.main([]) == 0 and gen.main(["--check"]) == 0


def test_the_examples_of_the_public_functions_run() -> None:
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    try:
        for name in caw.__all__:
            fn = getattr(caw, name)
            if inspect.isfunction(fn):
                globs = dict(vars(sys.modules[fn.__module__]))
                for test in doctest.DocTestFinder(recurse=False).find(fn, name, globs=globs):
                    runner.run(test)
    finally:
        caw.set_provider_order(None)  # an example sets the process-wide order
    assert runner.failures == 0 and runner.tries >= 5
