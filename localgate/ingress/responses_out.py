"""The way back to the OpenAI Responses API: a chat.completion -> a Response object
(`from_chat`), the chat SSE stream -> the Responses event stream as it arrives (`StreamEncoder`,
every event numbered), and the error body (`error_body`, the OpenAI envelope). Re-exported by
localgate.ingress.responses, which is what callers import.

Pure: no I/O, no asyncio, no aiohttp; imports localgate.ingress.chat, jsonfast, sse, stdlib.
"""

from __future__ import annotations

import time
from typing import Any

from localgate import jsonfast, sse
from localgate.ingress.chat import (
    ChatStreamReader,
    Thought,
    Tokens,
    ToolCall,
    error_message,
    error_status,
    new_id,
    obj,
    text_of,
    thoughts,
    tokens,
)

_INCOMPLETE = {"length": "max_output_tokens", "content_filter": "content_filter"}
CUT_MESSAGE = "the model's reply was cut off before it was complete (the upstream stream ended)"


def error_body(status: int, openai_envelope: Any) -> dict[str, Any]:
    """The OpenAI error envelope with all four fields, whatever shape the error came in."""
    err = obj(obj(openai_envelope).get("error"))
    kind = err.get("type") if isinstance(err.get("type"), str) else (
        "invalid_request_error" if 400 <= status < 500 else "server_error")
    return {"error": {"message": error_message(openai_envelope), "type": kind,
                      "code": err.get("code"), "param": err.get("param")}}


def from_chat(resp: dict[str, Any], *, model: str, request: dict[str, Any]) -> dict[str, Any]:
    """A chat.completion body -> a Response object (output items, status, usage), echoing the
    request's settings as OpenAI's API does. `model` is the id to report."""
    choices = resp.get("choices")
    choice = choices[0] if isinstance(choices, list) and choices else {}
    msg = obj(choice.get("message"))
    finish = choice.get("finish_reason")
    item_status = "incomplete" if finish in _INCOMPLETE else "completed"
    output: list[dict[str, Any]] = []
    summary = "".join(t.text for t in thoughts(msg) if t.redacted is None)
    if summary:
        output.append(_reasoning_item(new_id("rs_"), summary))
    text = text_of(msg.get("content"))
    refusal = text_of(msg.get("refusal"))
    if text or refusal:
        output.append(_message_item(new_id("msg_"), text, item_status, refusal))
    for call in msg.get("tool_calls") or []:
        if isinstance(call, dict):
            output.append(_call_item(call, item_status))
    created = resp.get("created")
    created = created if isinstance(created, int) and created > 0 else int(time.time())
    return response_object(request, id=new_id("resp_"), model=model, created_at=created,
                           output=output, finish=finish or "stop",
                           usage=tokens(resp.get("usage")))


def response_object(request: dict[str, Any], *, id: str, model: str, created_at: int,
                    output: list[dict[str, Any]], finish: str | None, usage: Tokens | None,
                    error: dict[str, Any] | None = None) -> dict[str, Any]:
    """A Response: `finish` None means in progress; an `error` means failed."""
    if error is not None:
        status = "failed"
    elif finish is None:
        status = "in_progress"
    else:
        status = "incomplete" if finish in _INCOMPLETE else "completed"
    reason = _INCOMPLETE.get(finish or "") if status == "incomplete" else None
    return {"id": id, "object": "response", "created_at": created_at, "status": status,
            "error": error, "incomplete_details": {"reason": reason} if reason else None,
            "model": model, "output": output, "usage": _usage(usage) if usage else None,
            **_echo(request)}


def _usage(t: Tokens) -> dict[str, Any]:
    return {"input_tokens": t.prompt,
            "input_tokens_details": {"cached_tokens": t.cached,
                                     "cache_write_tokens": t.cache_write},
            "output_tokens": t.completion,
            "output_tokens_details": {"reasoning_tokens": t.reasoning},
            "total_tokens": t.prompt + t.completion}


def _echo(request: dict[str, Any]) -> dict[str, Any]:
    """The request's settings, echoed with the API's defaults where the request had none."""
    r = obj(request.get("reasoning"))
    text = obj(request.get("text"))
    listed = request.get("tools")
    tools = listed if isinstance(listed, list) else []
    return {
        "instructions": request.get("instructions"),
        "max_output_tokens": request.get("max_output_tokens"),
        "metadata": request.get("metadata") or {},
        "parallel_tool_calls": request.get("parallel_tool_calls", True),
        "previous_response_id": None,
        "reasoning": {"effort": r.get("effort"), "summary": r.get("summary")},
        "temperature": request.get("temperature", 1.0),
        "text": {"format": text.get("format") or {"type": "text"},
                 **({"verbosity": text["verbosity"]} if text.get("verbosity") else {})},
        "tool_choice": request.get("tool_choice", "auto"),
        "tools": [{"type": "function", "name": t.get("name"),
                   "description": t.get("description"), "parameters": t.get("parameters"),
                   "strict": t.get("strict")} for t in tools if isinstance(t, dict)],
        "top_p": request.get("top_p", 1.0),
        "truncation": request.get("truncation", "disabled"),
        "user": request.get("user"),
    }


def _reasoning_item(item_id: str, summary: str) -> dict[str, Any]:
    return {"id": item_id, "type": "reasoning",
            "summary": [{"type": "summary_text", "text": summary}] if summary else []}


def _text_part(text: str) -> dict[str, Any]:
    return {"type": "output_text", "text": text, "annotations": [], "logprobs": []}


def _message_item(item_id: str, text: str, status: str, refusal: str = "") -> dict[str, Any]:
    content = [_text_part(text)] if text else []
    if refusal:
        content.append({"type": "refusal", "refusal": refusal})
    return {"id": item_id, "type": "message", "status": status, "role": "assistant",
            "content": content}


def _call_item(call: dict[str, Any], status: str) -> dict[str, Any]:
    fn = obj(call.get("function"))
    args = fn.get("arguments")
    return {"id": new_id("fc_"), "type": "function_call", "status": status,
            "call_id": call.get("id") or new_id("call_"), "name": fn.get("name") or "",
            "arguments": args if isinstance(args, str) else jsonfast.dumps(args or {}).decode()}


class StreamEncoder(ChatStreamReader):
    """Chat SSE bytes -> the Responses event stream, as the chunks arrive: response.created,
    response.in_progress, then per output item (reasoning summary, message text, function
    call) its added / delta / done events, then response.completed or response.incomplete
    (with usage). An error chunk or a cut stream ends with an `error` event and
    response.failed, never a completed response. Every event carries `sequence_number`."""

    def __init__(self, *, model: str, response_id: str | None = None,
                 request: dict[str, Any] | None = None) -> None:
        super().__init__()
        self.model = model
        self.response_id = response_id or new_id("resp_")
        self.request = request or {}
        self.created_at = int(time.time())
        self._seq = 0
        self._items: list[dict[str, Any]] = []
        self._open: dict[str, Any] | None = None     # the output item being streamed
        self._text = ""                              # its text / summary so far
        self._calls: dict[int, dict[str, Any]] = {}  # tool-call index -> its item

    # -- hooks ---------------------------------------------------------------------------
    def _on_start(self, chunk: dict[str, Any]) -> None:
        snapshot = self._response(None)
        self._send("response.created", response=snapshot)
        self._send("response.in_progress", response=snapshot)

    def _on_thought(self, t: Thought) -> None:
        if t.redacted is not None or not t.text:
            return  # opaque reasoning cannot be shown as a summary
        if self._kind() != "reasoning":
            item = self._add({"id": new_id("rs_"), "type": "reasoning", "summary": []})
            self._send("response.reasoning_summary_part.added", summary_index=0,
                       part={"type": "summary_text", "text": ""}, **self._where(item))
        self._text += t.text
        self._send("response.reasoning_summary_text.delta", summary_index=0, delta=t.text,
                   **self._where(self._open))

    def _on_text(self, text: str) -> None:
        if self._kind() != "message":
            item = self._add(_message_item(new_id("msg_"), "", "in_progress"))
            self._send("response.content_part.added", content_index=0, part=_text_part(""),
                       **self._where(item))
        self._text += text
        self._send("response.output_text.delta", content_index=0, delta=text, logprobs=[],
                   **self._where(self._open))

    def _on_tool_start(self, call: ToolCall) -> None:
        self._calls[call.index] = self._add({
            "id": new_id("fc_"), "type": "function_call", "status": "in_progress",
            "call_id": call.id, "name": call.name, "arguments": ""})

    def _on_tool_args(self, call: ToolCall, fragment: str) -> None:
        item = self._calls[call.index]
        item["arguments"] += fragment
        # a late fragment for an item already done still names that item: clients join by id
        self._send("response.function_call_arguments.delta", delta=fragment, **self._where(item))

    def _on_finish(self) -> None:
        self._close_item()

    def _on_end(self) -> None:
        self._close_item()
        snapshot = self._response(self.finish or "stop")
        kind = "response.incomplete" if snapshot["status"] == "incomplete" else \
            "response.completed"
        self._send(kind, response=snapshot)

    def _on_error(self, err: dict[str, Any]) -> None:
        self._fail_with(error_status(err), error_message({"error": err}), err.get("code"))

    def _on_cut(self) -> None:
        self._fail_with(502, CUT_MESSAGE, "upstream_error")

    # -- events and items ----------------------------------------------------------------
    def _fail_with(self, status: int, message: str, code: Any) -> None:
        if self._open is not None:
            self._open["status"] = "incomplete"
            self._finish_text(self._open)
        self._open = None
        self._send("error", code=code if isinstance(code, str) else None, message=message,
                   param=None)
        failure = {"code": "rate_limit_exceeded" if status == 429 else "server_error",
                   "message": message}
        self._send("response.failed", response=self._response(None, failure))

    def _response(self, finish: str | None, error: dict[str, Any] | None = None) -> dict[str, Any]:
        return response_object(self.request, id=self.response_id, model=self.model,
                               created_at=self.created_at, output=self._items, finish=finish,
                               usage=self.usage if finish or error else None, error=error)

    def _send(self, kind: str, **fields: Any) -> None:
        event = {"type": kind, "sequence_number": self._seq, **fields}
        self._seq += 1
        self._emit(sse.encode(jsonfast.dumps(event), kind))

    def _kind(self) -> str | None:
        return self._open["type"] if self._open is not None else None

    def _where(self, item: dict[str, Any] | None) -> dict[str, Any]:
        assert item is not None
        return {"item_id": item["id"], "output_index": self._items.index(item)}

    def _add(self, item: dict[str, Any]) -> dict[str, Any]:
        self._close_item()
        self._items.append(item)
        self._open, self._text = item, ""
        self._send("response.output_item.added", output_index=len(self._items) - 1,
                   item=dict(item))
        return item

    def _finish_text(self, item: dict[str, Any]) -> None:
        if item["type"] == "reasoning":
            item["summary"] = [{"type": "summary_text", "text": self._text}]
        elif item["type"] == "message":
            item["content"] = [_text_part(self._text)]

    def _close_item(self) -> None:
        item, self._open = self._open, None
        if item is None:
            return
        item["status"] = "incomplete" if self.finish in _INCOMPLETE else "completed"
        self._finish_text(item)
        where = self._where(item)
        if item["type"] == "reasoning":
            self._send("response.reasoning_summary_text.done", summary_index=0, text=self._text,
                       **where)
            self._send("response.reasoning_summary_part.done", summary_index=0,
                       part=item["summary"][0], **where)
            del item["status"]  # reasoning items carry no status in OpenAI's own streams
        elif item["type"] == "message":
            self._send("response.output_text.done", content_index=0, text=self._text,
                       logprobs=[], **where)
            self._send("response.content_part.done", content_index=0, part=item["content"][0],
                       **where)
        else:
            self._send("response.function_call_arguments.done", arguments=item["arguments"],
                       **where)
        self._send("response.output_item.done", item=dict(item), **where)
