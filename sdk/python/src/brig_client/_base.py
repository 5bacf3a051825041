"""What the sync and async clients share: configuration, and every API call described as
plain data (method, path, body, how to read the answer), so the two clients differ only in
how they send it."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence
from urllib.parse import quote

import httpx

from . import models as m
from .errors import APIConnectionError, APITimeoutError, BrigError

__version__ = "0.1.0"

DEFAULT_URL = "http://127.0.0.1:7070"
#: Seconds a control request (not an execution, not an event stream) may take.
DEFAULT_TIMEOUT = 30.0
#: Seconds an execution request may take when its own limits do not say more.
DEFAULT_EXECUTION_TIMEOUT = 660.0


def _json(response: httpx.Response) -> Any:
    return response.json()


def _none(response: httpx.Response) -> None:
    return None


@dataclass
class Call:
    method: str
    path: str
    parse: Callable[[httpx.Response], Any] = _none
    json: Any = None
    params: Optional[Dict[str, Any]] = None
    content: Optional[bytes] = None
    headers: Dict[str, str] = field(default_factory=dict)
    timeout: Optional[float] = None


def _drop_none(body: Mapping[str, Any]) -> Dict[str, Any]:
    return {k: v for k, v in body.items() if v is not None}


def file_path(path: str) -> str:
    """A work-dir path as URL segments (each percent-encoded, `/` kept)."""
    path = path.lstrip("/")
    if not path:
        raise ValueError("a file path is required")
    return quote(path, safe="/")


def to_bytes(data: Any) -> bytes:
    if isinstance(data, str):
        return data.encode("utf-8")
    if isinstance(data, (bytes, bytearray, memoryview)):
        return bytes(data)
    raise TypeError(f"file content must be bytes or str, not {type(data).__name__}")


def transport_error(error: Exception) -> BrigError:
    if isinstance(error, httpx.TimeoutException):
        return APITimeoutError(f"request timed out: {error}")
    return APIConnectionError(f"cannot reach the Brig server: {error}")


class BaseClient:
    """Configuration shared by :class:`Brig` and :class:`AsyncBrig`."""

    def __init__(
        self,
        url: Optional[str] = None,
        api_key: Optional[str] = None,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        execution_timeout: float = DEFAULT_EXECUTION_TIMEOUT,
        headers: Optional[Mapping[str, str]] = None,
    ) -> None:
        self.url = (url or os.environ.get("BRIG_URL") or DEFAULT_URL).rstrip("/")
        self.api_key = api_key if api_key is not None else os.environ.get("BRIG_API_KEY")
        self.timeout = timeout
        self.execution_timeout = execution_timeout
        self._headers = {"User-Agent": f"brig-client-python/{__version__}", "Accept": "application/json"}
        if self.api_key:
            self._headers["Authorization"] = f"Bearer {self.api_key}"
        if headers:
            self._headers.update(headers)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(url={self.url!r})"

    def _exec_timeout(self, timeout_ms: Optional[int]) -> float:
        """HTTP timeout of a request that runs code: the run's own limit (twice, for a compile
        step) plus slack, and never less than ``execution_timeout``."""
        if timeout_ms:
            return max(self.execution_timeout, 2 * timeout_ms / 1000.0 + 60.0)
        return self.execution_timeout

    def _stream_timeout(self, read: Optional[float] = None) -> httpx.Timeout:
        return httpx.Timeout(self.timeout, read=read)

    # --- calls ---

    def _c_run(
        self,
        code: str,
        language: str,
        stdin: Optional[str],
        args: Optional[Sequence[str]],
        files: Optional[m.FilesLike],
        limits: Optional[m.LimitsLike],
        network: bool,
        tier: Optional[str],
        idempotency_key: Optional[str],
    ) -> Call:
        lim = m.limits_dict(limits)
        body = _drop_none(
            {
                "language": language,
                "code": code,
                "stdin": stdin,
                "args": list(args) if args is not None else None,
                "files": m.files_list(files),
                "limits": lim,
                "network": network or None,
                "tier": tier,
            }
        )
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else {}
        return Call(
            "POST",
            "/api/v1/execute",
            lambda r: m.ExecutionResult.from_json(r.json()),
            json=body,
            headers=headers,
            timeout=self._exec_timeout((lim or {}).get("timeout_ms")),
        )

    @staticmethod
    def _session_body(
        template: Optional[str],
        language: Optional[str],
        limits: Optional[m.LimitsLike],
        ttl_s: Optional[int],
        idle_timeout_s: Optional[int],
        metadata: Optional[Mapping[str, str]],
    ) -> Dict[str, Any]:
        return _drop_none(
            {
                "template": template,
                "language": language,
                "limits": m.limits_dict(limits),
                "ttl_s": ttl_s,
                "idle_timeout_s": idle_timeout_s,
                "metadata": dict(metadata) if metadata else None,
            }
        )

    def _c_create_session(self, body: Dict[str, Any], idempotency_key: Optional[str]) -> Call:
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else {}
        # Creating a session may build a sandbox when the warm pool is empty.
        return Call(
            "POST",
            "/api/v1/sessions",
            lambda r: m.SessionInfo.from_json(r.json()),
            json=body,
            headers=headers,
            timeout=max(self.timeout, 120.0),
        )

    def _c_batch_sessions(self, count: int, body: Dict[str, Any]) -> Call:
        return Call(
            "POST",
            "/api/v1/sessions/batch",
            lambda r: [m.SessionInfo.from_json(s) for s in r.json().get("sessions", [])],
            json={"count": count, **body},
            timeout=max(self.timeout, 300.0),
        )

    def _c_sessions(self, all: bool) -> Call:
        return Call(
            "GET",
            "/api/v1/sessions",
            lambda r: [m.SessionInfo.from_json(s) for s in r.json().get("sessions", [])],
            params={"all": "true"} if all else None,
        )

    def _c_session(self, session_id: str) -> Call:
        return Call("GET", f"/api/v1/sessions/{quote(session_id, safe='')}", lambda r: m.SessionInfo.from_json(r.json()))

    def _c_delete_session(self, session_id: str) -> Call:
        return Call("DELETE", f"/api/v1/sessions/{quote(session_id, safe='')}")

    def _c_session_execute(
        self,
        session_id: str,
        code: str,
        language: Optional[str],
        timeout_ms: Optional[int],
        stdin: Optional[str],
        run_async: bool,
    ) -> Call:
        body = _drop_none(
            {"code": code, "language": language, "timeout_ms": timeout_ms, "stdin": stdin}
        )
        path = f"/api/v1/sessions/{quote(session_id, safe='')}/execute"
        if run_async:
            body["async"] = True
            return Call("POST", path, lambda r: m.Submitted.from_json(r.json()), json=body)
        return Call(
            "POST",
            path,
            lambda r: m.ExecutionResult.from_json(r.json()),
            json=body,
            timeout=self._exec_timeout(timeout_ms),
        )

    def _c_write_file(self, session_id: str, path: str, data: Any) -> Call:
        return Call(
            "PUT",
            f"/api/v1/sessions/{quote(session_id, safe='')}/files/{file_path(path)}",
            content=to_bytes(data),
            headers={"Content-Type": "application/octet-stream"},
        )

    def _c_read_file(self, session_id: str, path: str) -> Call:
        return Call(
            "GET",
            f"/api/v1/sessions/{quote(session_id, safe='')}/files/{file_path(path)}",
            lambda r: r.content,
        )

    def _c_delete_file(self, session_id: str, path: str) -> Call:
        return Call("DELETE", f"/api/v1/sessions/{quote(session_id, safe='')}/files/{file_path(path)}")

    def _c_list_files(self, session_id: str, directory: str) -> Call:
        directory = directory.strip("/")
        return Call(
            "GET",
            f"/api/v1/sessions/{quote(session_id, safe='')}/files",
            lambda r: m.FileListing.from_json(r.json()),
            params={"path": directory} if directory else None,
        )

    def _c_execution(self, execution_id: str) -> Call:
        return Call("GET", f"/api/v1/executions/{quote(execution_id, safe='')}", lambda r: m.ExecutionInfo.from_json(r.json()))

    def _c_cancel(self, execution_id: str) -> Call:
        return Call("POST", f"/api/v1/executions/{quote(execution_id, safe='')}/cancel", lambda r: m.Submitted.from_json(r.json()))

    @staticmethod
    def _events_path(execution_id: str) -> str:
        return f"/api/v1/executions/{quote(execution_id, safe='')}/events"

    def _c_languages(self) -> Call:
        return Call("GET", "/api/v1/languages", lambda r: [m.Language.from_json(x) for x in r.json().get("languages", [])])

    def _c_stats(self) -> Call:
        return Call("GET", "/api/v1/stats", _json)

    def _c_health(self) -> Call:
        return Call("GET", "/healthz", lambda r: True)

    def _c_create_tenant(self, name: str, plan: str, anonymous_compat: bool) -> Call:
        body: Dict[str, Any] = {"name": name, "plan": plan}
        if anonymous_compat:
            body["anonymous_compat"] = True
        return Call("POST", "/api/v1/tenants", lambda r: m.Tenant.from_json(r.json()), json=body)

    def _c_tenants(self) -> Call:
        return Call("GET", "/api/v1/tenants", lambda r: [m.Tenant.from_json(t) for t in r.json()])

    def _c_create_key(self, tenant_id: str, admin: bool) -> Call:
        return Call(
            "POST",
            f"/api/v1/tenants/{quote(tenant_id, safe='')}/keys",
            lambda r: m.ApiKey.from_json(r.json()),
            json={"admin": True} if admin else {},
        )

    def _c_revoke_key(self, key_id: str) -> Call:
        return Call("DELETE", f"/api/v1/keys/{quote(key_id, safe='')}")

    def _c_audit(self, tenant_id: Optional[str], since_ms: Optional[int], until_ms: Optional[int], limit: Optional[int]) -> Call:
        params = _drop_none({"tenant_id": tenant_id, "since_ms": since_ms, "until_ms": until_ms, "limit": limit})
        return Call("GET", "/api/v1/audit", _json, params=params or None)


def request_kwargs(call: Call) -> Dict[str, Any]:
    kwargs: Dict[str, Any] = {}
    if call.json is not None:
        kwargs["json"] = call.json
    if call.params is not None:
        kwargs["params"] = call.params
    if call.content is not None:
        kwargs["content"] = call.content
    if call.headers:
        kwargs["headers"] = call.headers
    if call.timeout is not None:
        kwargs["timeout"] = call.timeout
    return kwargs


__all__: List[str] = []
