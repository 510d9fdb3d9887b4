"""Structured output: what ``output=`` takes, the JSON schema each CLI is given, and validating the answer.

``schema`` turns a pydantic model class, a dataclass, a TypedDict or a JSON schema dict into an
``OutputSpec`` (the schema sent on the wire, always with an object at its root, and a validator for the
answer); it also finds the JSON in a reply and words the instruction and the repair prompt. ``strict`` makes
a schema acceptable to OpenAI's strict mode (codex): ``additionalProperties: false``, every property
required, optional properties nullable, and undoes that on the answer (nulls dropped, defaults restored).

Pure data work, no processes. May import: ``caw.errors``, the standard library and pydantic.
"""

from __future__ import annotations

# no imports here: ``caw.structured.strict`` (stdlib only) is what codex's argv builder loads
