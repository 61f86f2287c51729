"""The OpenAI chat side that both ingress codecs read: token counts, reasoning parts, tool-call
arguments, and `ChatStreamReader`, which turns chat SSE bytes (split anywhere) into calls on its
subclass, one per thing that happened (text, thinking, a tool call's start and argument
fragments, the finish, the end, an error, a cut).

Pure: imports only localgate.sse, localgate.jsonfast, localgate.errors and the stdlib.
"""

from __future__ import annotations

import math
import uuid
from dataclasses import dataclass, field
from typing import Any, NoReturn

from localgate import jsonfast
from localgate.errors import InvalidRequest
from localgate.sse import Event, SseParser

# An OpenAI error `type`/`code` (ours, OpenRouter's, OpenAI's) -> the HTTP status it stands for,
# for error chunks that carry a string code instead of OpenRouter's numeric one.
_STATUS_BY_KIND = {
    "invalid_request_error": 400, "invalid_request": 400, "authentication_error": 401,
    "authentication_required": 401, "paid_model_auth_required": 401, "billing_error": 402,
    "usage_limit_exceeded": 402, "insufficient_quota": 429, "permission_error": 403,
    "model_not_allowed": 403, "provider_not_allowed": 403, "not_found_error": 404,
    "model_not_found": 404, "request_too_large": 413, "rate_limit_error": 429,
    "rate_limit_exceeded": 429, "server_error": 500, "upstream_error": 502,
    "service_unavailable": 503, "paused": 503, "overloaded_error": 529, "timeout": 504,
    "upstream_timeout": 504,
}


def new_id(prefix: str) -> str:
    """A fresh id in the style of the API being imitated (`msg_…`, `resp_…`, `toolu_…`)."""
    return prefix + uuid.uuid4().hex[:24]


def require(cond: bool, message: str, param: str) -> None:
    """Raise the client-facing 400 for malformed input unless `cond` holds."""
    if not cond:
        fail(message, param)


def fail(message: str, param: str) -> NoReturn:
    """Raise the client-facing 400 for malformed input (`param` names the field)."""
    raise InvalidRequest(message, param=param)


def obj(v: Any) -> dict[str, Any]:
    """`v` when it is a JSON object, else an empty one (clients and upstreams send anything)."""
    return v if isinstance(v, dict) else {}


def text_of(v: Any) -> str:
    """`v` when it is a string, else ""."""
    return v if isinstance(v, str) else ""


def _int(v: Any) -> int:
    if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
        return 0  # a count that is not a count (a string, inf from 1e400, NaN) counts nothing
    return max(int(v), 0)


@dataclass(frozen=True, slots=True)
class Tokens:
    """A chat usage object's counts, OpenAI convention: prompt includes cached and cache-write."""

    prompt: int = 0
    cached: int = 0
    cache_write: int = 0
    completion: int = 0
    reasoning: int = 0

    @property
    def uncached(self) -> int:
        """Prompt tokens neither read from nor written to a cache (Anthropic's input_tokens)."""
        return max(self.prompt - self.cached - self.cache_write, 0)


def tokens(usage: Any) -> Tokens | None:
    """The counts of a chat `usage` object (OpenAI, OpenRouter or Anthropic-style spellings)."""
    if not isinstance(usage, dict):
        return None
    pd, cd = obj(usage.get("prompt_tokens_details")), obj(usage.get("completion_tokens_details"))
    return Tokens(
        prompt=_int(usage.get("prompt_tokens")),
        cached=_int(pd.get("cached_tokens") or usage.get("cache_read_input_tokens")),
        cache_write=_int(pd.get("cache_write_tokens") or usage.get("cache_creation_input_tokens")),
        completion=_int(usage.get("completion_tokens")),
        reasoning=_int(cd.get("reasoning_tokens")))


@dataclass(frozen=True, slots=True)
class Thought:
    """One piece of reasoning: readable text (maybe signed), or opaque `redacted` data."""

    text: str = ""
    signature: str | None = None
    redacted: str | None = None


def thoughts(msg: dict[str, Any]) -> list[Thought]:
    """The reasoning in a chat message or delta: `reasoning_details` (OpenRouter) when present,
    since `reasoning` then repeats its text; else `reasoning` or `reasoning_content` text."""
    details = msg.get("reasoning_details")
    if isinstance(details, list) and details:
        out = []
        for d in details:
            if not isinstance(d, dict):
                continue
            kind, sig = d.get("type"), d.get("signature")
            sig = sig if isinstance(sig, str) and sig else None
            if kind == "reasoning.encrypted" and isinstance(d.get("data"), str):
                out.append(Thought(redacted=d["data"]))
            elif kind == "reasoning.summary" and isinstance(d.get("summary"), str):
                out.append(Thought(d["summary"], sig))
            elif isinstance(d.get("text"), str) or sig:
                out.append(Thought(d.get("text") or "", sig))
        return out
    for name in ("reasoning", "reasoning_content"):
        text = msg.get(name)
        if isinstance(text, str) and text:
            return [Thought(text)]
    return []


def error_status(err: dict[str, Any], default: int = 500) -> int:
    """The HTTP status an error object stands for: OpenRouter's numeric `code`, else its kind."""
    code = err.get("code")
    if isinstance(code, int) and not isinstance(code, bool) and 400 <= code <= 599:
        return code
    for key in (code, err.get("type")):
        if isinstance(key, str) and key in _STATUS_BY_KIND:
            return _STATUS_BY_KIND[key]
    return default


def error_message(envelope: Any) -> str:
    """The human message of an OpenAI envelope, or of the hosted gateway's flat error shapes."""
    env = obj(envelope)
    err = env.get("error")
    return (text_of(obj(err).get("message")) or text_of(env.get("message")) or text_of(err)
            or "the request failed")


@dataclass(slots=True)
class ToolCall:
    """One tool call as its chat deltas arrive (by `index`): id and name first, then arguments."""

    index: int
    id: str = ""
    name: str = ""
    args: list[str] = field(default_factory=list)
    started: bool = False

    @property
    def arguments(self) -> str:
        return "".join(self.args)


class ChatStreamReader:
    """Chat SSE bytes in (split anywhere), calls to the `_on_*` hooks out, in arrival order.

    A subclass appends its own encoded events with `_emit`; `feed`/`close` return them. The
    stream counts as complete at `[DONE]`, or at its end after a finish chunk; an error chunk
    or an end before both is reported once (`_on_error` / `_on_cut`) and nothing after it is
    read. Only choice 0 is read (the codecs' clients ask for one)."""

    def __init__(self) -> None:
        self._sse = SseParser()
        self._out: list[bytes] = []
        self.started = False
        self.ended = False
        self.finish: str | None = None
        self.finish_choice: dict[str, Any] = {}
        self.usage: Tokens | None = None
        self.tools: dict[int, ToolCall] = {}

    def feed(self, data: bytes) -> bytes:
        """Chat SSE bytes as they arrive; the client-format bytes they complete."""
        if not self.ended:
            for ev in self._sse.feed(data):
                self._read_event(ev)
        return self._take()

    def close(self) -> bytes:
        """The chat stream ended: the final client-format bytes (an error if it was cut)."""
        if not self.ended:
            for ev in self._sse.close():
                self._read_event(ev)
        if not self.ended:
            if self.finish is not None:  # finished but no [DONE]: nothing was lost
                self._end()
            else:
                self.ended = True
                self._begin({})
                self._on_cut()
        return self._take()

    # -- hooks for the encoders ------------------------------------------------------------
    def _on_start(self, chunk: dict[str, Any]) -> None: ...
    def _on_text(self, text: str) -> None: ...
    def _on_thought(self, t: Thought) -> None: ...
    def _on_tool_start(self, call: ToolCall) -> None: ...
    def _on_tool_args(self, call: ToolCall, fragment: str) -> None: ...
    def _on_finish(self) -> None: ...
    def _on_end(self) -> None: ...
    def _on_error(self, err: dict[str, Any]) -> None: ...
    def _on_cut(self) -> None: ...

    def _emit(self, data: bytes) -> None:
        self._out.append(data)

    # -- parsing ---------------------------------------------------------------------------
    def _take(self) -> bytes:
        out, self._out = b"".join(self._out), []
        return out

    def _begin(self, chunk: dict[str, Any]) -> None:
        if not self.started:
            self.started = True
            self._on_start(chunk)

    def _end(self) -> None:
        self._begin({})
        self.ended = True
        for call in self.tools.values():  # a call whose name never came still gets its block
            self._start_tool(call)
        self._on_end()

    def _read_event(self, ev: Event) -> None:
        if self.ended:
            return
        data = ev.data.strip()
        if data == "[DONE]":
            self._end()
            return
        try:
            chunk = jsonfast.loads(data.encode())
        except ValueError:
            return  # not JSON: nothing a client could be told about
        if not isinstance(chunk, dict):
            return
        if chunk.get("usage") and (t := tokens(chunk["usage"])) is not None:
            self.usage = t
        err = chunk.get("error")
        if err:
            self._fail(err if isinstance(err, dict) else {"message": str(err)}, chunk)
            return
        self._begin(chunk)
        choices = chunk.get("choices")
        choice = choices[0] if isinstance(choices, list) and choices else None
        if isinstance(choice, dict):
            self._read_choice(choice)

    def _fail(self, err: dict[str, Any], chunk: dict[str, Any]) -> None:
        self._begin(chunk)
        self.ended = True
        self._on_error(err)

    def _read_choice(self, choice: dict[str, Any]) -> None:
        delta = choice.get("delta")
        if isinstance(delta, dict):
            self._read_delta(delta)
        reason = choice.get("finish_reason")
        if reason == "error":
            self._fail({"message": "the model's provider ended the reply with an error"}, {})
        elif isinstance(reason, str) and reason and self.finish is None:
            self.finish, self.finish_choice = reason, choice
            self._on_finish()

    def _read_delta(self, delta: dict[str, Any]) -> None:
        for t in thoughts(delta):
            self._on_thought(t)
        for name in ("content", "refusal"):
            text = delta.get(name)
            if isinstance(text, str) and text:
                self._on_text(text)
        calls = delta.get("tool_calls")
        if isinstance(calls, list):
            for pos, tc in enumerate(calls):
                if isinstance(tc, dict):
                    self._tool_delta(pos, tc)

    def _tool_delta(self, pos: int, tc: dict[str, Any]) -> None:
        index = tc.get("index", pos)
        index = index if isinstance(index, int) else pos
        call = self.tools.get(index)
        if call is None:
            call = self.tools[index] = ToolCall(index)
        fn = obj(tc.get("function"))
        if isinstance(tc.get("id"), str) and tc["id"] and not call.id:
            call.id = tc["id"]
        if isinstance(fn.get("name"), str) and fn["name"] and not call.name:
            call.name = fn["name"]
        fragment = fn.get("arguments")
        fragment = fragment if isinstance(fragment, str) else ""
        if not call.started and not call.name:
            call.args.append(fragment)  # held until the name arrives: a block needs its name
            return
        self._start_tool(call)
        if fragment:
            call.args.append(fragment)
            self._on_tool_args(call, fragment)

    def _start_tool(self, call: ToolCall) -> None:
        if call.started:
            return
        call.started = True
        call.id = call.id or new_id("call_")
        held = call.arguments
        self._on_tool_start(call)
        if held:
            self._on_tool_args(call, held)
