"""A small incremental Server-Sent Events parser (the WHATWG event-stream format).

Feed it bytes as they arrive; it yields ``(event, data)`` pairs once each event's blank line
is seen. Comments (``:`` lines, the server's keep-alives), ``id`` and ``retry`` are ignored.
"""

from __future__ import annotations

from typing import Iterator, List, Optional, Tuple

SseEvent = Tuple[str, str]


class SseDecoder:
    """Incremental decoder: ``feed(chunk)`` yields every event completed by ``chunk``."""

    def __init__(self) -> None:
        self._buffer = b""
        self._event: Optional[str] = None
        self._data: List[str] = []
        self._first = True

    def feed(self, chunk: bytes) -> Iterator[SseEvent]:
        self._buffer += chunk
        while True:
            line, rest = self._split(self._buffer)
            if line is None:
                return
            self._buffer = rest
            event = self._line(line)
            if event is not None:
                yield event

    def close(self) -> Iterator[SseEvent]:
        """Flushes a trailing line; an event without its blank line is dropped, per spec."""
        if self._buffer:
            line, self._buffer = self._buffer, b""
            event = self._line(line.rstrip(b"\r"))
            if event is not None:
                yield event

    @staticmethod
    def _split(buffer: bytes) -> Tuple[Optional[bytes], bytes]:
        for i, byte in enumerate(buffer):
            if byte == 0x0A:  # \n
                return buffer[:i], buffer[i + 1 :]
            if byte == 0x0D:  # \r or \r\n
                if i + 1 == len(buffer):
                    return None, buffer  # wait: it may be the start of \r\n
                skip = 2 if buffer[i + 1] == 0x0A else 1
                return buffer[:i], buffer[i + skip :]
        return None, buffer

    def _line(self, raw: bytes) -> Optional[SseEvent]:
        line = raw.decode("utf-8", errors="replace")
        if self._first:
            self._first = False
            if line.startswith("\ufeff"):
                line = line[1:]
        if line == "":
            if not self._data:  # no data line: nothing to dispatch (per spec)
                self._event = None
                return None
            event = (self._event or "message", "\n".join(self._data))
            self._event, self._data = None, []
            return event
        if line.startswith(":"):
            return None
        name, sep, value = line.partition(":")
        if sep and value.startswith(" "):
            value = value[1:]
        if name == "event":
            self._event = value
        elif name == "data":
            self._data.append(value)
        return None
