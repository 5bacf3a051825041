"""The asyncio client: :class:`AsyncBrig`, :class:`AsyncSession` and :class:`AsyncExecution`,
with the same methods as the synchronous ones, awaited (and ``async for`` over events)."""

from __future__ import annotations

import time
from typing import Any, AsyncIterator, Dict, List, Mapping, Optional, Sequence, Union

import httpx

from . import models as m
from ._base import DEFAULT_EXECUTION_TIMEOUT, DEFAULT_TIMEOUT, BaseClient, Call, request_kwargs, transport_error
from ._sse import SseDecoder
from .errors import APIConnectionError, APITimeoutError, ConflictError, NotFoundError, error_from_response

__all__ = ["AsyncBrig", "AsyncSession", "AsyncExecution"]


class AsyncBrig(BaseClient):
    """The asyncio twin of :class:`~brig_client.Brig` (on ``httpx.AsyncClient``).

    Use ``async with AsyncBrig(...) as client:``, or ``await client.close()``."""

    def __init__(
        self,
        url: Optional[str] = None,
        api_key: Optional[str] = None,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        execution_timeout: float = DEFAULT_EXECUTION_TIMEOUT,
        headers: Optional[Mapping[str, str]] = None,
        transport: Optional[httpx.AsyncBaseTransport] = None,
    ) -> None:
        super().__init__(url, api_key, timeout=timeout, execution_timeout=execution_timeout, headers=headers)
        self._http = httpx.AsyncClient(base_url=self.url, headers=self._headers, timeout=timeout, transport=transport)

    async def close(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> "AsyncBrig":
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.close()

    async def _send(self, call: Call) -> Any:
        try:
            response = await self._http.request(call.method, call.path, **request_kwargs(call))
        except httpx.HTTPError as e:
            raise transport_error(e) from e
        if response.status_code >= 400:
            raise error_from_response(response)
        return call.parse(response)

    async def run(
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
        """Runs a program once in a fresh sandbox; see :meth:`Brig.run`."""
        return await self._send(self._c_run(code, language, stdin, args, files, limits, network, tier, idempotency_key))

    async def create_session(
        self,
        template: Optional[str] = None,
        language: Optional[str] = None,
        *,
        limits: Optional[m.LimitsLike] = None,
        ttl_s: Optional[int] = None,
        idle_timeout_s: Optional[int] = None,
        metadata: Optional[Mapping[str, str]] = None,
        idempotency_key: Optional[str] = None,
    ) -> "AsyncSession":
        """Creates a session; ``async with await client.create_session() as s`` deletes it on
        exit (or use ``async with client.session() as s``)."""
        body = self._session_body(template, language, limits, ttl_s, idle_timeout_s, metadata)
        info = await self._send(self._c_create_session(body, idempotency_key))
        return AsyncSession(self, info)

    def session(
        self,
        template: Optional[str] = None,
        language: Optional[str] = None,
        *,
        limits: Optional[m.LimitsLike] = None,
        ttl_s: Optional[int] = None,
        idle_timeout_s: Optional[int] = None,
        metadata: Optional[Mapping[str, str]] = None,
    ) -> "_SessionContext":
        """``async with client.session(...) as s:`` creates a session and deletes it on exit."""
        return _SessionContext(
            self.create_session(template, language, limits=limits, ttl_s=ttl_s, idle_timeout_s=idle_timeout_s, metadata=metadata)
        )

    async def create_sessions(
        self,
        count: int,
        template: Optional[str] = None,
        language: Optional[str] = None,
        *,
        limits: Optional[m.LimitsLike] = None,
        ttl_s: Optional[int] = None,
        idle_timeout_s: Optional[int] = None,
        metadata: Optional[Mapping[str, str]] = None,
    ) -> List["AsyncSession"]:
        body = self._session_body(template, language, limits, ttl_s, idle_timeout_s, metadata)
        return [AsyncSession(self, info) for info in await self._send(self._c_batch_sessions(count, body))]

    async def sessions(self, all: bool = False) -> List[m.SessionInfo]:
        return await self._send(self._c_sessions(all))

    async def get_session(self, session_id: str) -> "AsyncSession":
        return AsyncSession(self, await self._send(self._c_session(session_id)))

    async def delete_session(self, session_id: str) -> None:
        await self._send(self._c_delete_session(session_id))

    async def get_execution(self, execution_id: str) -> m.ExecutionInfo:
        return await self._send(self._c_execution(execution_id))

    def execution(self, execution_id: str, session_id: Optional[str] = None) -> "AsyncExecution":
        return AsyncExecution(self, execution_id, session_id)

    async def cancel(self, execution_id: str) -> m.Submitted:
        return await self._send(self._c_cancel(execution_id))

    async def events(self, execution_id: str, *, timeout: Optional[float] = None) -> AsyncIterator[m.ExecutionEvent]:
        """``async for event in client.events(id)``: stdout/stderr/display events, the result
        last; see :meth:`Brig.events`."""
        deadline = None if timeout is None else time.monotonic() + timeout
        path = self._events_path(execution_id)
        try:
            async with self._http.stream(
                "GET", path, headers={"Accept": "text/event-stream"}, timeout=self._stream_timeout(timeout)
            ) as response:
                if response.status_code >= 400:
                    await response.aread()
                    raise error_from_response(response)
                decoder = SseDecoder()
                async for chunk in response.aiter_bytes():
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

    async def wait(self, execution_id: str, *, timeout: Optional[float] = None) -> m.ExecutionResult:
        async for event in self.events(execution_id, timeout=timeout):
            if isinstance(event, m.ResultEvent):
                return event.result
        raise APIConnectionError("unreachable")

    async def languages(self) -> List[m.Language]:
        return await self._send(self._c_languages())

    async def stats(self) -> Dict[str, Any]:
        return await self._send(self._c_stats())

    async def health(self) -> bool:
        return await self._send(self._c_health())

    async def create_tenant(self, name: str, plan: str = "standard", *, anonymous_compat: bool = False) -> m.Tenant:
        return await self._send(self._c_create_tenant(name, plan, anonymous_compat))

    async def tenants(self) -> List[m.Tenant]:
        return await self._send(self._c_tenants())

    async def create_key(self, tenant_id: str, *, admin: bool = False) -> m.ApiKey:
        return await self._send(self._c_create_key(tenant_id, admin))

    async def revoke_key(self, key_id: str) -> None:
        await self._send(self._c_revoke_key(key_id))

    async def audit(
        self,
        *,
        tenant_id: Optional[str] = None,
        since_ms: Optional[int] = None,
        until_ms: Optional[int] = None,
        limit: Optional[int] = None,
    ) -> Any:
        return await self._send(self._c_audit(tenant_id, since_ms, until_ms, limit))


class _SessionContext:
    """What :meth:`AsyncBrig.session` returns: awaitable (the session) and an async context
    manager (deleting it on exit)."""

    def __init__(self, creating: Any) -> None:
        self._creating = creating
        self._session: Optional[AsyncSession] = None

    def __await__(self):  # type: ignore[no-untyped-def]
        return self._creating.__await__()

    async def __aenter__(self) -> "AsyncSession":
        self._session = await self._creating
        return self._session

    async def __aexit__(self, *exc: Any) -> None:
        if self._session is not None:
            await self._session.__aexit__(*exc)


class AsyncExecution:
    """A handle on an execution; see :class:`~brig_client.Execution`."""

    def __init__(self, client: AsyncBrig, id: str, session_id: Optional[str] = None) -> None:
        self._client = client
        self.id = id
        self.session_id = session_id
        self.result: Optional[m.ExecutionResult] = None

    def __repr__(self) -> str:
        return f"AsyncExecution(id={self.id!r}, session_id={self.session_id!r})"

    async def events(self, *, timeout: Optional[float] = None) -> AsyncIterator[m.ExecutionEvent]:
        async for event in self._client.events(self.id, timeout=timeout):
            if isinstance(event, m.ResultEvent):
                if event.result.session_id is None:
                    event.result.session_id = self.session_id
                self.result = event.result
            yield event

    async def wait(self, *, timeout: Optional[float] = None) -> m.ExecutionResult:
        if self.result is None:
            async for _ in self.events(timeout=timeout):
                pass
        assert self.result is not None
        return self.result

    async def get(self) -> m.ExecutionInfo:
        return await self._client.get_execution(self.id)

    async def cancel(self) -> m.Submitted:
        return await self._client.cancel(self.id)


class AsyncSession:
    """A live session; ``async with`` deletes it on exit. See :class:`~brig_client.Session`."""

    def __init__(self, client: AsyncBrig, info: m.SessionInfo) -> None:
        self._client = client
        self.info = info
        self.id = info.id

    def __repr__(self) -> str:
        return f"AsyncSession(id={self.id!r}, template={self.info.template!r})"

    async def __aenter__(self) -> "AsyncSession":
        return self

    async def __aexit__(self, *exc: Any) -> None:
        try:
            await self.delete()
        except (NotFoundError, ConflictError):
            pass

    async def refresh(self) -> m.SessionInfo:
        self.info = await self._client._send(self._client._c_session(self.id))
        return self.info

    async def delete(self) -> None:
        await self._client._send(self._client._c_delete_session(self.id))

    async def run_code(
        self,
        code: str,
        language: Optional[str] = None,
        *,
        timeout_ms: Optional[int] = None,
        stdin: Optional[str] = None,
    ) -> m.ExecutionResult:
        return await self._client._send(self._client._c_session_execute(self.id, code, language, timeout_ms, stdin, False))

    async def run_code_async(
        self,
        code: str,
        language: Optional[str] = None,
        *,
        timeout_ms: Optional[int] = None,
        stdin: Optional[str] = None,
    ) -> AsyncExecution:
        submitted = await self._client._send(
            self._client._c_session_execute(self.id, code, language, timeout_ms, stdin, True)
        )
        return AsyncExecution(self._client, submitted.execution_id, self.id)

    async def stream_code(
        self,
        code: str,
        language: Optional[str] = None,
        *,
        timeout_ms: Optional[int] = None,
        stdin: Optional[str] = None,
    ) -> AsyncIterator[m.ExecutionEvent]:
        execution = await self.run_code_async(code, language, timeout_ms=timeout_ms, stdin=stdin)
        async for event in execution.events():
            yield event

    async def write_file(self, path: str, data: Union[bytes, str]) -> None:
        await self._client._send(self._client._c_write_file(self.id, path, data))

    async def read_file(self, path: str) -> bytes:
        return await self._client._send(self._client._c_read_file(self.id, path))

    async def read_text(self, path: str, encoding: str = "utf-8") -> str:
        return (await self.read_file(path)).decode(encoding)

    async def list_files(self, dir: str = "") -> m.FileListing:
        return await self._client._send(self._client._c_list_files(self.id, dir))

    async def delete_file(self, path: str) -> None:
        await self._client._send(self._client._c_delete_file(self.id, path))
