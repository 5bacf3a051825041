"""The synchronous client: :class:`Brig`, :class:`Session` and :class:`Execution`."""

from __future__ import annotations

import time
from typing import Any, Dict, Iterator, List, Mapping, Optional, Sequence, Union

import httpx

from . import models as m
from ._base import DEFAULT_EXECUTION_TIMEOUT, DEFAULT_TIMEOUT, BaseClient, Call, request_kwargs, transport_error
from ._sse import SseDecoder
from .errors import APIConnectionError, APITimeoutError, ConflictError, NotFoundError, error_from_response

__all__ = ["Brig", "Session", "Execution"]


class Brig(BaseClient):
    """A client of one Brig server.

    ``url`` defaults to ``$BRIG_URL`` (else ``http://127.0.0.1:7070``), ``api_key`` to
    ``$BRIG_API_KEY``. ``timeout`` bounds control requests; requests that run code wait up to
    ``execution_timeout`` seconds (or longer when their own ``timeout_ms`` asks for more). Use
    it as a context manager, or call :meth:`close`.
    """

    def __init__(
        self,
        url: Optional[str] = None,
        api_key: Optional[str] = None,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        execution_timeout: float = DEFAULT_EXECUTION_TIMEOUT,
        headers: Optional[Mapping[str, str]] = None,
        transport: Optional[httpx.BaseTransport] = None,
    ) -> None:
        super().__init__(url, api_key, timeout=timeout, execution_timeout=execution_timeout, headers=headers)
        self._http = httpx.Client(base_url=self.url, headers=self._headers, timeout=timeout, transport=transport)

    # --- plumbing ---

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> "Brig":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def _send(self, call: Call) -> Any:
        try:
            response = self._http.request(call.method, call.path, **request_kwargs(call))
        except httpx.HTTPError as e:
            raise transport_error(e) from e
        if response.status_code >= 400:
            raise error_from_response(response)
        return call.parse(response)

    # --- one-shot runs ---

    def run(
        self,
        code: str,
        language: str = "python",
        *,
        stdin: Optional[str] = None,
        args: Optional[Sequence[str]] = None,
        files: Optional[m.FilesLike] = None,
        limits: Optional[m.LimitsLike] = None,
        network: bool = False,
        tier: Optional[str] = None,
        idempotency_key: Optional[str] = None,
    ) -> m.ExecutionResult:
        """Runs a program once in a fresh sandbox and returns its result.

        ``files`` is a ``{path: str | bytes}`` mapping or a list of :class:`File`; ``limits`` a
        :class:`Limits` or a dict. A program that fails is not an exception: look at
        ``result.status`` (or ``result.ok``). API errors raise :class:`BrigError` subclasses.
        """
        return self._send(self._c_run(code, language, stdin, args, files, limits, network, tier, idempotency_key))

    # --- sessions ---

    def create_session(
        self,
        template: Optional[str] = None,
        language: Optional[str] = None,
        *,
        limits: Optional[m.LimitsLike] = None,
        ttl_s: Optional[int] = None,
        idle_timeout_s: Optional[int] = None,
        metadata: Optional[Mapping[str, str]] = None,
        idempotency_key: Optional[str] = None,
    ) -> "Session":
        """Creates a session (a live sandbox; for Python, a kernel whose state persists).

        The returned :class:`Session` is a context manager that deletes it on exit."""
        body = self._session_body(template, language, limits, ttl_s, idle_timeout_s, metadata)
        info = self._send(self._c_create_session(body, idempotency_key))
        return Session(self, info)

    #: ``with client.session() as s: ...`` — the same as :meth:`create_session`.
    session = create_session

    def create_sessions(
        self,
        count: int,
        template: Optional[str] = None,
        language: Optional[str] = None,
        *,
        limits: Optional[m.LimitsLike] = None,
        ttl_s: Optional[int] = None,
        idle_timeout_s: Optional[int] = None,
        metadata: Optional[Mapping[str, str]] = None,
    ) -> List["Session"]:
        """Creates ``count`` sessions at once (all or none)."""
        body = self._session_body(template, language, limits, ttl_s, idle_timeout_s, metadata)
        return [Session(self, info) for info in self._send(self._c_batch_sessions(count, body))]

    def sessions(self, all: bool = False) -> List[m.SessionInfo]:
        """The caller's live sessions (``all=True`` includes ended ones)."""
        return self._send(self._c_sessions(all))

    def get_session(self, session_id: str) -> "Session":
        """A handle on an existing session (404 :class:`NotFoundError` if there is none)."""
        return Session(self, self._send(self._c_session(session_id)))

    def delete_session(self, session_id: str) -> None:
        self._send(self._c_delete_session(session_id))

    # --- executions ---

    def get_execution(self, execution_id: str) -> m.ExecutionInfo:
        """An execution's state and, once finished, its result."""
        return self._send(self._c_execution(execution_id))

    def execution(self, execution_id: str, session_id: Optional[str] = None) -> "Execution":
        """A handle on an execution by id (no request is made)."""
        return Execution(self, execution_id, session_id)

    def cancel(self, execution_id: str) -> m.Submitted:
        """Cancels an execution (:class:`ConflictError` if it has already finished)."""
        return self._send(self._c_cancel(execution_id))

    def events(self, execution_id: str, *, timeout: Optional[float] = None) -> Iterator[m.ExecutionEvent]:
        """The execution's events as they happen: :class:`StdoutEvent`, :class:`StderrEvent`,
        :class:`DisplayEvent`, and last a :class:`ResultEvent`. A finished execution's events
        are replayed. ``timeout`` bounds the whole stream (default: none)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        path = self._events_path(execution_id)
        try:
            with self._http.stream(
                "GET", path, headers={"Accept": "text/event-stream"}, timeout=self._stream_timeout(timeout)
            ) as response:
                if response.status_code >= 400:
                    response.read()
                    raise error_from_response(response)
                decoder = SseDecoder()
                for chunk in response.iter_bytes():
                    for name, data in decoder.feed(chunk):
                        event = m.event_from_sse(name, data, execution_id)
                        if event is None:
                            continue
                        yield event
                        if isinstance(event, m.ResultEvent):
                            return
                    if deadline is not None and time.monotonic() > deadline:
                        raise APITimeoutError(f"no result for execution {execution_id} within {timeout}s")
                for name, data in decoder.close():
                    event = m.event_from_sse(name, data, execution_id)
                    if event is not None:
                        yield event
                        if isinstance(event, m.ResultEvent):
                            return
        except httpx.HTTPError as e:
            raise transport_error(e) from e
        raise APIConnectionError(f"the event stream of execution {execution_id} ended before its result")

    def wait(self, execution_id: str, *, timeout: Optional[float] = None) -> m.ExecutionResult:
        """Waits for an execution to finish and returns its result."""
        for event in self.events(execution_id, timeout=timeout):
            if isinstance(event, m.ResultEvent):
                return event.result
        raise APIConnectionError("unreachable")  # events() raises before this

    # --- system ---

    def languages(self) -> List[m.Language]:
        """The languages the server runs."""
        return self._send(self._c_languages())

    def stats(self) -> Dict[str, Any]:
        """Counters of the server (active sandboxes, sessions, executions, pools...)."""
        return self._send(self._c_stats())

    def health(self) -> bool:
        """Whether the server answers ``/healthz``."""
        return self._send(self._c_health())

    # --- admin (admin keys only) ---

    def create_tenant(self, name: str, plan: str = "standard", *, anonymous_compat: bool = False) -> m.Tenant:
        return self._send(self._c_create_tenant(name, plan, anonymous_compat))

    def tenants(self) -> List[m.Tenant]:
        return self._send(self._c_tenants())

    def create_key(self, tenant_id: str, *, admin: bool = False) -> m.ApiKey:
        """Creates an API key for a tenant; ``.key`` is the secret, shown only now."""
        return self._send(self._c_create_key(tenant_id, admin))

    def revoke_key(self, key_id: str) -> None:
        self._send(self._c_revoke_key(key_id))

    def audit(
        self,
        *,
        tenant_id: Optional[str] = None,
        since_ms: Optional[int] = None,
        until_ms: Optional[int] = None,
        limit: Optional[int] = None,
    ) -> Any:
        """The audit trail (raw JSON)."""
        return self._send(self._c_audit(tenant_id, since_ms, until_ms, limit))


class Execution:
    """A handle on an execution (usually from :meth:`Session.run_code_async`)."""

    def __init__(self, client: Brig, id: str, session_id: Optional[str] = None) -> None:
        self._client = client
        self.id = id
        self.session_id = session_id
        self.result: Optional[m.ExecutionResult] = None

    def __repr__(self) -> str:
        return f"Execution(id={self.id!r}, session_id={self.session_id!r})"

    def events(self, *, timeout: Optional[float] = None) -> Iterator[m.ExecutionEvent]:
        """Its events as they happen, ending with a :class:`ResultEvent`."""
        for event in self._client.events(self.id, timeout=timeout):
            if isinstance(event, m.ResultEvent):
                if event.result.session_id is None:
                    event.result.session_id = self.session_id
                self.result = event.result
            yield event

    def wait(self, *, timeout: Optional[float] = None) -> m.ExecutionResult:
        """Waits for it to finish; returns its result."""
        if self.result is None:
            for _ in self.events(timeout=timeout):
                pass
        assert self.result is not None
        return self.result

    def get(self) -> m.ExecutionInfo:
        """Its current state (``queued``, ``running`` or final) and result."""
        return self._client.get_execution(self.id)

    def cancel(self) -> m.Submitted:
        """Cancels it (:class:`ConflictError` if it has already finished)."""
        return self._client.cancel(self.id)


class Session:
    """A live session. A context manager: leaving the ``with`` block deletes it."""

    def __init__(self, client: Brig, info: m.SessionInfo) -> None:
        self._client = client
        self.info = info
        self.id = info.id

    def __repr__(self) -> str:
        return f"Session(id={self.id!r}, template={self.info.template!r})"

    def __enter__(self) -> "Session":
        return self

    def __exit__(self, *exc: Any) -> None:
        try:
            self.delete()
        except (NotFoundError, ConflictError):
            pass  # already ended

    def refresh(self) -> m.SessionInfo:
        """Fetches the session's current state."""
        self.info = self._client._send(self._client._c_session(self.id))
        return self.info

    def delete(self) -> None:
        """Ends the session and removes everything in it."""
        self._client._send(self._client._c_delete_session(self.id))

    def run_code(
        self,
        code: str,
        language: Optional[str] = None,
        *,
        timeout_ms: Optional[int] = None,
        stdin: Optional[str] = None,
    ) -> m.ExecutionResult:
        """Runs code in the session (a cell, for a Python session) and returns its result."""
        return self._client._send(self._client._c_session_execute(self.id, code, language, timeout_ms, stdin, False))

    def run_code_async(
        self,
        code: str,
        language: Optional[str] = None,
        *,
        timeout_ms: Optional[int] = None,
        stdin: Optional[str] = None,
    ) -> Execution:
        """Submits code to run in the background; returns an :class:`Execution` handle whose
        :meth:`~Execution.events` streams its output and :meth:`~Execution.wait` its result."""
        submitted = self._client._send(self._client._c_session_execute(self.id, code, language, timeout_ms, stdin, True))
        return Execution(self._client, submitted.execution_id, self.id)

    def stream_code(
        self,
        code: str,
        language: Optional[str] = None,
        *,
        timeout_ms: Optional[int] = None,
        stdin: Optional[str] = None,
    ) -> Iterator[m.ExecutionEvent]:
        """Runs code and yields its events as they happen, the result last."""
        return self.run_code_async(code, language, timeout_ms=timeout_ms, stdin=stdin).events()

    def write_file(self, path: str, data: Union[bytes, str]) -> None:
        """Writes a file in the work dir (directories are created); ``str`` is UTF-8."""
        self._client._send(self._client._c_write_file(self.id, path, data))

    def read_file(self, path: str) -> bytes:
        """Reads a file of the work dir."""
        return self._client._send(self._client._c_read_file(self.id, path))

    def read_text(self, path: str, encoding: str = "utf-8") -> str:
        return self.read_file(path).decode(encoding)

    def list_files(self, dir: str = "") -> m.FileListing:
        """Lists a directory of the work dir (default: the work dir itself)."""
        return self._client._send(self._client._c_list_files(self.id, dir))

    def delete_file(self, path: str) -> None:
        """Deletes a file or a directory tree."""
        self._client._send(self._client._c_delete_file(self.id, path))
