"""Python client for Brig, the sandbox that runs untrusted code.

>>> from brig_client import Brig
>>> with Brig("http://127.0.0.1:7070", api_key="brig_...") as brig:
...     print(brig.run("print(6 * 7)").stdout)
42
"""

from ._base import __version__
from .async_client import AsyncBrig, AsyncExecution, AsyncSession
from .client import Brig, Execution, Session
from .errors import (
    APIConnectionError,
    APITimeoutError,
    AuthenticationError,
    BrigError,
    ConflictError,
    NotFoundError,
    PayloadTooLargeError,
    PermissionDeniedError,
    RateLimitError,
    ServerError,
    ValidationError,
)
from .models import (
    FINAL_STATUSES,
    ApiKey,
    CellError,
    DisplayEvent,
    DisplayOutput,
    ExecutionEvent,
    ExecutionInfo,
    ExecutionResult,
    File,
    FileEntry,
    FileListing,
    Language,
    Limits,
    ResultEvent,
    SessionInfo,
    StderrEvent,
    StdoutEvent,
    Submitted,
    Tenant,
)

__all__ = [
    "__version__",
    "Brig",
    "Session",
    "Execution",
    "AsyncBrig",
    "AsyncSession",
    "AsyncExecution",
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
    "Limits",
    "File",
    "DisplayOutput",
    "CellError",
    "ExecutionResult",
    "ExecutionInfo",
    "Submitted",
    "SessionInfo",
    "FileEntry",
    "FileListing",
    "Language",
    "Tenant",
    "ApiKey",
    "StdoutEvent",
    "StderrEvent",
    "DisplayEvent",
    "ResultEvent",
    "ExecutionEvent",
    "FINAL_STATUSES",
]
