"""One request's record (the spend log's fields), filled in as it goes; the request as prepared
for `Gateway.complete()`; and the request ids.

Everything a client wrote that ends up in the record is bounded and made storable here (lone
surrogates, control characters, megabyte strings), so that no row is ever refused by SQLite.
Pure.
"""

from __future__ import annotations

import itertools
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from localgate.pricing import estimate_tokens, prompt_chars
from localgate.repair import repair_tool_calls

if TYPE_CHECKING:
    from localgate.routing import Route

MAX_MODEL_CHARS = 256      # longer model ids are refused (400); the log keeps at most this
MAX_TEXT_CHARS = 512       # user agent, mode: kept this long


def clean(value: Any, limit: int = MAX_TEXT_CHARS) -> str:
    """A client-supplied string fit for the log: bounded, valid UTF-8, no control characters."""
    if not isinstance(value, str):
        return ""
    s = value[:limit]
    if s.isascii() and s.isprintable():  # the usual case: nothing to mend
        return s
    if not s.isprintable():
        s = "".join(c if c.isprintable() else "\ufffd" for c in s)
    try:
        s.encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates (a JS client's broken string)
        s = s.encode("utf-8", "replace").decode("utf-8")
    return s


@dataclass(slots=True)
class Exchange:
    """One request's record, filled in as it goes (the spend log's fields)."""

    id: str
    ts: str
    client: str
    user_agent: str
    model: str
    started: float = field(default_factory=time.monotonic)
    kind: str = "chat"          # chat | fim | responses | messages | embeddings | forward
    resolved_model: str = ""
    provider: str = ""
    route: str = ""
    upstream: str = ""          # the service the request was sent to (x-localgate-upstream)
    mode: str | None = None
    stream: bool = False
    status: str = "in_flight"
    http_status: int = 0
    usage: dict[str, Any] | None = None
    ttft_ms: int | None = None
    latency_ms: int | None = None
    repairs: int = 0
    error: str | None = None
    rt: Any = None              # routing.Route that is (or was) serving it
    reservation: Any = None     # controls.Reservation: worst-case cost held against the limits
    prompt: Any = None          # the request, sized only if an estimate is needed
    size: Callable[[], int] | None = None  # characters of prompt, for other body shapes
    _prompt_chars: int | None = None
    content_chars: int = 0
    cost: tuple[Any, tuple[int, str | None, Any]] | None = None  # (usage costed, its cost)
    finished: bool = False

    def prompt_chars(self) -> int:
        """Characters of prompt text (for estimates); worked out once, on demand, and never
        failing on a malformed body."""
        if self._prompt_chars is None:
            self._prompt_chars = self._measure()
        return self._prompt_chars

    def _measure(self) -> int:
        p = self.prompt
        try:
            if self.size is not None:
                return self.size()
            if self.kind == "fim" and isinstance(p, dict):
                return sum(len(p[k]) for k in ("prompt", "suffix") if isinstance(p.get(k), str))
            return prompt_chars(p) if isinstance(p, dict) else 0
        except (TypeError, ValueError, RecursionError):
            return 0

    def prompt_tokens(self) -> int:
        return estimate_tokens(self.prompt_chars())

    def first_token(self) -> None:
        if self.ttft_ms is None:
            self.ttft_ms = int((time.monotonic() - self.started) * 1000)


class Ingress(Protocol):
    """What the gateway needs of a non-chat ingress codec (server/ingress.py)."""

    name: str               # "responses" | "messages" | "embeddings"
    max_field: str | None   # the body's own name for the output bound (max_output_tokens ...)
    outputs: bool           # False: no generated output (embeddings)

    def to_chat(self, body: dict[str, Any]) -> dict[str, Any]: ...


@dataclass(slots=True)
class Prepared:
    ex: Exchange
    route: Route
    body: dict[str, Any]           # what the client sent (chat: repaired)
    headers: Mapping[str, str]     # the client's (x-kilocode-* go on to the Kilo service)
    stream: bool
    wants_usage: bool              # the client asked for the usage chunk
    ingress: Ingress | None = None
    chat: dict[str, Any] | None = None  # the chat translation, made when a route needs it
    path: str = ""                 # forwarded calls: the client's raw path on the Kilo service

    def chat_body(self) -> dict[str, Any]:
        if self.ingress is None:
            return self.body
        if self.chat is None:
            chat = self.ingress.to_chat(self.body)
            msgs, self.ex.repairs = repair_tool_calls(chat.get("messages") or [])
            self.chat = {**chat, "messages": msgs} if msgs is not chat.get("messages") else chat
        return self.chat


_ID_PREFIX = secrets.token_hex(6)
_ID_COUNTER = itertools.count(1)


def new_request_id() -> str:
    """Unique across runs (a random prefix per process) without a syscall per request."""
    return f"lg-{_ID_PREFIX}{next(_ID_COUNTER):010x}"
