"""Typed models of the Brig API's JSON bodies.

Each model keeps the JSON it was built from in ``raw``, so fields a newer server adds stay
reachable; unknown fields never break parsing.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping, Optional, Sequence, Union

__all__ = [
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

#: Statuses of a finished execution (every status but ``queued`` and ``running``).
FINAL_STATUSES = frozenset(
    {
        "ok",
        "runtime_error",
        "compile_error",
        "timeout",
        "memory_limit",
        "output_limit",
        "killed",
        "internal_error",
        "cancelled",
    }
)


@dataclass
class Limits:
    """Limits a run or session asks for; each optional, each capped by the tenant's plan.

    A limit above the plan is refused with :class:`~brig_client.ValidationError` naming it.
    """

    timeout_ms: Optional[int] = None
    cpu_time_ms: Optional[int] = None
    memory_bytes: Optional[int] = None
    pids: Optional[int] = None
    output_bytes: Optional[int] = None
    disk_bytes: Optional[int] = None

    def to_dict(self) -> Dict[str, int]:
        return {k: v for k, v in self.__dict__.items() if v is not None}


LimitsLike = Union[Limits, Mapping[str, int]]


def limits_dict(limits: Optional[LimitsLike]) -> Optional[Dict[str, int]]:
    if limits is None:
        return None
    if isinstance(limits, Limits):
        return limits.to_dict()
    return {k: v for k, v in dict(limits).items() if v is not None}


@dataclass
class File:
    """A file placed beside a one-shot program. ``str`` content is sent as UTF-8, ``bytes``
    as base64."""

    path: str
    content: Union[str, bytes]

    def to_dict(self) -> Dict[str, str]:
        if isinstance(self.content, (bytes, bytearray, memoryview)):
            data = base64.b64encode(bytes(self.content)).decode("ascii")
            return {"path": self.path, "content": data, "encoding": "base64"}
        return {"path": self.path, "content": self.content, "encoding": "utf8"}


FilesLike = Union[Mapping[str, Union[str, bytes]], Sequence[File]]


def files_list(files: Optional[FilesLike]) -> Optional[List[Dict[str, str]]]:
    if files is None:
        return None
    if isinstance(files, Mapping):
        return [File(path, content).to_dict() for path, content in files.items()]
    return [f.to_dict() if isinstance(f, File) else File(**f).to_dict() for f in files]


def _int(value: Any, default: int = 0) -> int:
    return int(value) if isinstance(value, (int, float)) else default


def _opt_int(value: Any) -> Optional[int]:
    return int(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


@dataclass
class DisplayOutput:
    """One display output of a kernel cell: its richest mime type, that type's data (base64
    for images), and the whole mime bundle."""

    mime: str
    data: Any
    bundle: Dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_json(cls, value: Mapping[str, Any]) -> "DisplayOutput":
        bundle = value.get("bundle")
        return cls(
            mime=str(value.get("mime", "text/plain")),
            data=value.get("data"),
            bundle=dict(bundle) if isinstance(bundle, Mapping) else {},
        )

    def get(self, mime: str) -> Any:
        """The data for ``mime``, from the bundle (or the main data), or ``None``."""
        if mime in self.bundle:
            return self.bundle[mime]
        return self.data if mime == self.mime else None

    def png_bytes(self) -> Optional[bytes]:
        """The decoded ``image/png`` of this output, or ``None`` if it has none."""
        data = self.get("image/png")
        if data is None:
            return None
        if isinstance(data, list):  # Jupyter may split long strings into lines
            data = "".join(data)
        return base64.b64decode(data)

    @property
    def text(self) -> Optional[str]:
        """The ``text/plain`` representation, if any."""
        data = self.get("text/plain")
        if isinstance(data, list):
            return "".join(data)
        return data if isinstance(data, str) else None

    def json(self) -> Any:
        """The ``application/json`` representation (decoded if sent as a string)."""
        data = self.get("application/json")
        if isinstance(data, str):
            try:
                return json.loads(data)
            except ValueError:
                return data
        return data


@dataclass
class CellError:
    """The exception a kernel cell raised."""

    name: str
    value: str
    traceback: str

    @classmethod
    def from_json(cls, value: Mapping[str, Any]) -> "CellError":
        tb = value.get("traceback", "")
        if isinstance(tb, list):
            tb = "\n".join(str(line) for line in tb)
        return cls(name=str(value.get("name", "")), value=str(value.get("value", "")), traceback=str(tb))


@dataclass
class ExecutionResult:
    """The result object of a finished run (one-shot or a session cell).

    ``status`` is one of ``ok``, ``runtime_error``, ``compile_error``, ``timeout`` (``limit``
    says ``wall`` or ``cpu``), ``memory_limit``, ``output_limit``, ``killed`` (``signal``),
    ``internal_error`` or ``cancelled``. Kernel cells also carry ``result`` (the last
    expression as a mime bundle), ``error`` and ``outputs``.
    """

    status: str
    stdout: str = ""
    stderr: str = ""
    exit_code: Optional[int] = None
    signal: Optional[int] = None
    wall_ms: int = 0
    cpu_ms: int = 0
    memory_peak_bytes: int = 0
    tier: Optional[str] = None
    id: Optional[str] = None
    session_id: Optional[str] = None
    limit: Optional[str] = None
    message: Optional[str] = None
    compile: Optional["ExecutionResult"] = None
    result: Optional[Dict[str, Any]] = None
    error: Optional[CellError] = None
    outputs: List[DisplayOutput] = field(default_factory=list)
    kernel_restarted: bool = False
    raw: Dict[str, Any] = field(default_factory=dict, repr=False)

    @classmethod
    def from_json(cls, value: Mapping[str, Any]) -> "ExecutionResult":
        compile_ = value.get("compile")
        error = value.get("error")
        result = value.get("result")
        outputs = value.get("outputs") or []
        return cls(
            status=str(value.get("status", "")),
            stdout=value.get("stdout") or "",
            stderr=value.get("stderr") or "",
            exit_code=_opt_int(value.get("exit_code")),
            signal=_opt_int(value.get("signal")),
            wall_ms=_int(value.get("wall_ms")),
            cpu_ms=_int(value.get("cpu_ms")),
            memory_peak_bytes=_int(value.get("memory_peak_bytes")),
            tier=value.get("tier"),
            id=value.get("id"),
            session_id=value.get("session_id"),
            limit=value.get("limit"),
            message=value.get("message"),
            compile=cls.from_json(compile_) if isinstance(compile_, Mapping) else None,
            result=dict(result) if isinstance(result, Mapping) else None,
            error=CellError.from_json(error) if isinstance(error, Mapping) else None,
            outputs=[DisplayOutput.from_json(o) for o in outputs if isinstance(o, Mapping)],
            kernel_restarted=bool(value.get("kernel_restarted", False)),
            raw=dict(value),
        )

    @property
    def ok(self) -> bool:
        """Whether the run succeeded (``status == "ok"``)."""
        return self.status == "ok"

    @property
    def result_text(self) -> Optional[str]:
        """The last expression's ``text/plain`` representation (kernel cells), if any."""
        if not self.result:
            return None
        text = self.result.get("text/plain")
        if isinstance(text, list):
            return "".join(text)
        return text if isinstance(text, str) else None


@dataclass
class ExecutionInfo:
    """An execution's record: its state, and its result once finished."""

    id: str
    status: str
    language: Optional[str] = None
    session_id: Optional[str] = None
    created_at_ms: Optional[int] = None
    started_at_ms: Optional[int] = None
    finished_at_ms: Optional[int] = None
    result: Optional[ExecutionResult] = None
    raw: Dict[str, Any] = field(default_factory=dict, repr=False)

    @classmethod
    def from_json(cls, value: Mapping[str, Any]) -> "ExecutionInfo":
        result = value.get("result")
        return cls(
            id=str(value.get("id", "")),
            status=str(value.get("status", "")),
            language=value.get("language"),
            session_id=value.get("session_id"),
            created_at_ms=_opt_int(value.get("created_at_ms")),
            started_at_ms=_opt_int(value.get("started_at_ms")),
            finished_at_ms=_opt_int(value.get("finished_at_ms")),
            result=ExecutionResult.from_json(result) if isinstance(result, Mapping) else None,
            raw=dict(value),
        )

    @property
    def finished(self) -> bool:
        return self.status in FINAL_STATUSES


@dataclass
class Submitted:
    """The answer to an async submission or a cancel request."""

    execution_id: str
    status: str

    @classmethod
    def from_json(cls, value: Mapping[str, Any]) -> "Submitted":
        return cls(execution_id=str(value.get("execution_id", "")), status=str(value.get("status", "")))


@dataclass
class SessionInfo:
    """A session as the API shows it. ``status`` is ``active`` or ``ended``."""

    id: str
    status: str
    template: Optional[str] = None
    end_reason: Optional[str] = None
    ttl_s: Optional[int] = None
    idle_timeout_s: Optional[int] = None
    metadata: Dict[str, Any] = field(default_factory=dict)
    created_at_ms: Optional[int] = None
    ended_at_ms: Optional[int] = None
    from_pool: Optional[bool] = None
    raw: Dict[str, Any] = field(default_factory=dict, repr=False)

    @classmethod
    def from_json(cls, value: Mapping[str, Any]) -> "SessionInfo":
        metadata = value.get("metadata")
        return cls(
            id=str(value.get("id", "")),
            status=str(value.get("status", "")),
            template=value.get("template"),
            end_reason=value.get("end_reason"),
            ttl_s=_opt_int(value.get("ttl_s")),
            idle_timeout_s=_opt_int(value.get("idle_timeout_s")),
            metadata=dict(metadata) if isinstance(metadata, Mapping) else {},
            created_at_ms=_opt_int(value.get("created_at_ms")),
            ended_at_ms=_opt_int(value.get("ended_at_ms")),
            from_pool=value.get("from_pool"),
            raw=dict(value),
        )

    @property
    def active(self) -> bool:
        return self.status == "active"


@dataclass
class FileEntry:
    """One entry of a directory listing; ``kind`` is ``file``, ``dir``, ``symlink`` or
    ``other``."""

    name: str
    kind: str
    size: int = 0

    @classmethod
    def from_json(cls, value: Mapping[str, Any]) -> "FileEntry":
        return cls(name=str(value.get("name", "")), kind=str(value.get("kind", "")), size=_int(value.get("size")))

    @property
    def is_dir(self) -> bool:
        return self.kind == "dir"


@dataclass
class FileListing:
    """A directory of a session's work dir."""

    path: str
    entries: List[FileEntry]

    @classmethod
    def from_json(cls, value: Mapping[str, Any]) -> "FileListing":
        return cls(
            path=str(value.get("path", "")),
            entries=[FileEntry.from_json(e) for e in value.get("entries") or [] if isinstance(e, Mapping)],
        )

    def names(self) -> List[str]:
        return [e.name for e in self.entries]

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(self.entries)

    def __len__(self) -> int:
        return len(self.entries)


@dataclass
class Language:
    """A language the server runs."""

    id: str
    name: str = ""
    aliases: List[str] = field(default_factory=list)
    extensions: List[str] = field(default_factory=list)
    compiled: bool = False
    available: bool = True
    version: Optional[str] = None
    reason: Optional[str] = None

    @classmethod
    def from_json(cls, value: Mapping[str, Any]) -> "Language":
        return cls(
            id=str(value.get("id", "")),
            name=str(value.get("name", "")),
            aliases=list(value.get("aliases") or []),
            extensions=list(value.get("extensions") or []),
            compiled=bool(value.get("compiled", False)),
            available=bool(value.get("available", True)),
            version=value.get("version"),
            reason=value.get("reason"),
        )


@dataclass
class Tenant:
    """A tenant (admin API)."""

    id: str
    name: str
    plan: str
    anonymous_compat: bool = False
    created_at_ms: Optional[int] = None

    @classmethod
    def from_json(cls, value: Mapping[str, Any]) -> "Tenant":
        return cls(
            id=str(value.get("id", "")),
            name=str(value.get("name", "")),
            plan=str(value.get("plan", "")),
            anonymous_compat=bool(value.get("anonymous_compat", False)),
            created_at_ms=_opt_int(value.get("created_at_ms")),
        )


@dataclass
class ApiKey:
    """A new API key; ``key`` (the secret) is shown only when it is created."""

    id: str
    key: str
    tenant_id: str
    admin: bool = False

    @classmethod
    def from_json(cls, value: Mapping[str, Any]) -> "ApiKey":
        return cls(
            id=str(value.get("id", "")),
            key=str(value.get("key", "")),
            tenant_id=str(value.get("tenant_id", "")),
            admin=bool(value.get("admin", False)),
        )


# --- execution events (Server-Sent Events of GET /api/v1/executions/{id}/events) ---


@dataclass
class StdoutEvent:
    """A piece of standard output, as it was written."""

    text: str
    type: str = field(default="stdout", init=False)


@dataclass
class StderrEvent:
    """A piece of standard error, as it was written."""

    text: str
    type: str = field(default="stderr", init=False)


@dataclass
class DisplayEvent:
    """A display output (a figure, a table...)."""

    output: DisplayOutput
    type: str = field(default="display", init=False)


@dataclass
class ResultEvent:
    """The final result; always the last event of a stream."""

    result: ExecutionResult
    type: str = field(default="result", init=False)


ExecutionEvent = Union[StdoutEvent, StderrEvent, DisplayEvent, ResultEvent]


def event_from_sse(name: str, data: str, execution_id: Optional[str] = None) -> Optional[ExecutionEvent]:
    """The typed event for one SSE event, or ``None`` for a name this client does not know."""
    try:
        value = json.loads(data) if data else {}
    except ValueError:
        value = {}
    if not isinstance(value, dict):
        value = {}
    if name == "stdout":
        return StdoutEvent(text=str(value.get("text", "")))
    if name == "stderr":
        return StderrEvent(text=str(value.get("text", "")))
    if name == "display":
        return DisplayEvent(output=DisplayOutput.from_json(value))
    if name == "result":
        result = ExecutionResult.from_json(value)
        if result.id is None and execution_id is not None:
            result.id = execution_id
            result.raw.setdefault("id", execution_id)
        return ResultEvent(result=result)
    return None
