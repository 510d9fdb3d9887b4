"""What the two OpenAI-style fakes share: the `{"error": {...}}` body and id/usage helpers."""

from __future__ import annotations

from typing import Any

from tests.fakes.replies import Error

_ERROR_DEFAULTS: dict[int, tuple[str, str | None]] = {
    400: ("invalid_request_error", None),
    401: ("invalid_request_error", "invalid_api_key"),
    403: ("invalid_request_error", "unsupported_country_region_territory"),
    404: ("invalid_request_error", "model_not_found"),
    429: ("requests", "rate_limit_exceeded"),
    500: ("server_error", None),
    503: ("server_error", None),
}


def openai_error_body(reply: Error) -> dict[str, Any]:
    """`{"error": {"message", "type", "code", "param"}}` with per-status defaults."""
    default_type, default_code = _ERROR_DEFAULTS.get(reply.status, ("server_error", None))
    return {
        "error": {
            "message": reply.message,
            "type": reply.type or default_type,
            "code": reply.code if reply.code is not None else default_code,
            "param": None,
        }
    }
