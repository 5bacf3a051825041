"""Typed exceptions for Brig API errors.

Every error the server answers has the body ``{"error": {"code", "message"}}`` and a 4xx or
5xx status; :func:`error_from_response` turns it into the matching subclass of
:class:`BrigError`. Failures to reach the server at all are :class:`APIConnectionError`.
"""

from __future__ import annotations

from typing import Any, Dict, Optional, Type

import httpx

__all__ = [
    "BrigError",
    "APIConnectionError",
    "APITimeoutError",
    "AuthenticationError",
    "PermissionDeniedError",
    "NotFoundError",
    "ConflictError",
    "PayloadTooLargeError",
    "ValidationError",
    "RateLimitError",
    "ServerError",
    "error_from_response",
]


class BrigError(Exception):
    """Base class of every error this package raises.

    ``status`` is the HTTP status (``None`` when no answer came), ``code`` the server's stable
    machine-readable code (``not_found``, ``invalid_request``...), ``message`` a sentence for a
    person, ``retry_after`` the seconds the server asked to wait (429 and 503), and ``body``
    the decoded error body when there was one.
    """

    def __init__(
        self,
        message: str,
        *,
        status: Optional[int] = None,
        code: Optional[str] = None,
        retry_after: Optional[float] = None,
        body: Any = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.code = code
        self.retry_after = retry_after
        self.body = body

    def __str__(self) -> str:
        if self.status is None:
            return self.message
        code = f" {self.code}" if self.code else ""
        return f"{self.status}{code}: {self.message}"

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(status={self.status!r}, code={self.code!r}, "
            f"message={self.message!r})"
        )


class APIConnectionError(BrigError):
    """The server could not be reached, or the connection failed mid-request."""


class APITimeoutError(APIConnectionError):
    """The request took longer than the client's timeout."""


class AuthenticationError(BrigError):
    """401: no API key, or one the server does not know (or has revoked)."""


class PermissionDeniedError(BrigError):
    """403: a valid key without the right (an admin route, networking not in the plan...)."""


class NotFoundError(BrigError):
    """404: no session, execution, file or tenant of that id for this caller."""


class ConflictError(BrigError):
    """409: conflicts with the current state (the session has ended, already finished...)."""


class PayloadTooLargeError(BrigError):
    """413: the request body or a file is larger than the server accepts."""


class ValidationError(BrigError):
    """400, 415 or 422: the request is malformed or a field is invalid (the message names it)."""


class RateLimitError(BrigError):
    """429: over a rate, session or concurrency limit; wait ``retry_after`` seconds."""


class ServerError(BrigError):
    """5xx: Brig failed (``internal_error``) or is not ready (503); safe to retry."""


_BY_STATUS: Dict[int, Type[BrigError]] = {
    400: ValidationError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    409: ConflictError,
    413: PayloadTooLargeError,
    415: ValidationError,
    422: ValidationError,
    429: RateLimitError,
}


def _retry_after(value: Optional[str]) -> Optional[float]:
    if not value:
        return None
    try:
        return float(value)
    except ValueError:
        return None  # an HTTP date; Brig sends seconds


def error_from_response(response: httpx.Response) -> BrigError:
    """The typed exception for an error answer (status >= 400)."""
    status = response.status_code
    body: Any = None
    code: Optional[str] = None
    message: Optional[str] = None
    try:
        body = response.json()
    except Exception:
        body = None
    if isinstance(body, dict):
        detail = body.get("error")
        if isinstance(detail, dict):
            code = detail.get("code") if isinstance(detail.get("code"), str) else None
            if isinstance(detail.get("message"), str):
                message = detail["message"]
        elif isinstance(body.get("message"), str):
            message = body["message"]
    if message is None:
        text = ""
        try:
            text = response.text.strip()
        except Exception:
            pass
        message = text[:500] or response.reason_phrase or f"HTTP {status}"
    cls = _BY_STATUS.get(status)
    if cls is None:
        cls = ServerError if status >= 500 else BrigError
    return cls(
        message,
        status=status,
        code=code,
        retry_after=_retry_after(response.headers.get("retry-after")),
        body=body,
    )
