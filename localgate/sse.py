"""Server-sent events, incrementally: bytes in as they arrive, whole events out.

Used by the translating codecs (Anthropic Messages, OpenAI Responses), which must look at every
event; the OpenAI chat relay (relay.SseWatcher) does not parse and does not use this. Pure.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Event:
    event: str   # the `event:` field ("" when absent, which SSE calls "message")
    data: str    # the `data:` lines joined with "\n"


class SseParser:
    """feed(bytes) -> complete events; an incomplete trailing event is held until more comes.

    Follows the SSE rules that matter for API streams: `\\n`, `\\r\\n` or `\\r` line ends,
    comment lines (`:`) ignored, several `data:` lines joined, one leading space after the colon
    dropped. A UTF-8 character split across reads is kept whole."""

    __slots__ = ("_buf", "_event", "_data")

    def __init__(self) -> None:
        self._buf = b""
        self._event = ""
        self._data: list[str] = []

    def feed(self, chunk: bytes) -> list[Event]:
        buf = self._buf + chunk if self._buf else chunk
        out: list[Event] = []
        start = 0
        n = len(buf)
        while start < n:
            nl = buf.find(b"\n", start)
            cr = buf.find(b"\r", start, nl if nl >= 0 else n)
            if cr >= 0:
                end, nxt = cr, cr + 1
                if nxt == n:
                    break  # a CR at the very end may be half of a CRLF: wait
                if buf[nxt:nxt + 1] == b"\n":
                    nxt += 1
            elif nl >= 0:
                end, nxt = nl, nl + 1
            else:
                break
            self._line(buf[start:end], out)
            start = nxt
        self._buf = buf[start:]
        return out

    def close(self) -> list[Event]:
        """End of stream: an event not ended by a blank line is still delivered."""
        out: list[Event] = []
        if self._buf:
            self._line(self._buf, out)
            self._buf = b""
        self._line(b"", out)
        return out

    def _line(self, raw: bytes, out: list[Event]) -> None:
        if not raw:
            if self._data or self._event:
                out.append(Event(self._event, "\n".join(self._data)))
            self._event, self._data = "", []
            return
        line = raw.decode("utf-8", "replace")
        if line.startswith(":"):
            return
        name, sep, value = line.partition(":")
        if sep and value.startswith(" "):
            value = value[1:]
        if name == "data":
            self._data.append(value)
        elif name == "event":
            self._event = value


def encode(data: str | bytes, event: str | None = None) -> bytes:
    """One SSE event (`event:` line when given), ended by a blank line."""
    body = data.encode() if isinstance(data, str) else data
    head = f"event: {event}\n".encode() if event else b""
    return head + b"data: " + body + b"\n\n"
