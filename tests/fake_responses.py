"""A fake of OpenAI's own `/responses` and `/embeddings` endpoints on 127.0.0.1 (an aiohttp app),
for end-to-end tests of what localgate passes through untranslated: to OpenAI with the user's
key, and to the hosted gateway. One app answers under any prefix (`/openai/v1/responses`,
`/api/gateway/responses`), so a test points providers at their own prefix and asserts where
requests went.

It speaks the real wire format: a Response object, or the event stream (`response.created`,
`response.in_progress`, per output item `output_item.added` ... `output_item.done`, text and
function-call argument deltas, reasoning summaries, `response.completed` with usage), every
event with `event:` and a `sequence_number`. Embeddings honour `encoding_format` (the openai SDK
asks for base64 floats by default). Knobs: the reply (text, function call, reasoning first),
an error status, a cut stream. Everything received is recorded in `seen`; what was sent back
in `sent`.
"""

from __future__ import annotations

import base64
import json
import struct
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

EMBEDDING = [0.25, -0.5, 0.125]


@dataclass
class Seen:
    path: str
    headers: dict[str, str]
    body: Any


@dataclass
class Knobs:
    text: str = "Hello from the fake Responses API."
    function_call: bool = False       # answer with a function call (get_weather)
    reasoning: bool = False           # a reasoning item (with a summary) first
    status: int = 200                 # >= 400: OpenAI's error envelope with this status
    cut_after: int | None = None      # drop the connection after this many events
    usage: dict[str, int] = field(default_factory=lambda: {
        "input_tokens": 40, "cached_tokens": 16, "output_tokens": 12, "reasoning_tokens": 4})


class FakeResponses:
    def __init__(self) -> None:
        self.knobs = Knobs()
        self.seen: list[Seen] = []
        self.sent: list[bytes] = []
        self.app = web.Application()
        self.app.router.add_post("/{prefix:.*}/responses", self.responses)
        self.app.router.add_post("/{prefix:.*}/embeddings", self.embeddings)
        self.url = ""

    @property
    def last(self) -> Seen:
        return self.seen[-1]

    async def _record(self, request: web.Request) -> Any:
        body = json.loads(await request.read())
        self.seen.append(Seen(request.path, dict(request.headers), body))
        return body

    async def embeddings(self, request: web.Request) -> web.Response:
        body = await self._record(request)
        inputs = body["input"] if isinstance(body["input"], list) else [body["input"]]
        vector: Any = EMBEDDING
        if body.get("encoding_format") == "base64":
            vector = base64.b64encode(struct.pack(f"<{len(EMBEDDING)}f", *EMBEDDING)).decode()
        tokens = sum(max(1, len(str(i)) // 4) for i in inputs)
        return web.json_response({
            "object": "list", "model": body["model"],
            "data": [{"object": "embedding", "index": i, "embedding": vector}
                     for i in range(len(inputs))],
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens}})

    async def responses(self, request: web.Request) -> web.StreamResponse:
        body = await self._record(request)
        if self.knobs.status >= 400:
            return web.json_response({"error": {
                "message": f"fake Responses API says {self.knobs.status}",
                "type": "invalid_request_error", "param": None, "code": None}},
                status=self.knobs.status)
        if not body.get("stream"):
            data = json.dumps(self._response(body, "completed", self._output())).encode()
            self.sent.append(data)
            return web.Response(body=data, content_type="application/json")
        out = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await out.prepare(request)
        for n, event in enumerate(self._events(body)):
            if self.knobs.cut_after is not None and n >= self.knobs.cut_after:
                assert request.transport is not None
                request.transport.abort()
                return out
            data = (f"event: {event['type']}\n"
                    f"data: {json.dumps(event, separators=(',', ':'))}\n\n").encode()
            self.sent.append(data)
            await out.write(data)
        await out.write_eof()
        return out

    # -- the answer --------------------------------------------------------------------------

    def _output(self) -> list[dict[str, Any]]:
        k = self.knobs
        items: list[dict[str, Any]] = []
        if k.reasoning:
            items.append({"id": "rs_fake_1", "type": "reasoning", "summary": [
                {"type": "summary_text", "text": "Thinking it over."}]})
        if k.function_call:
            items.append({"id": "fc_fake_1", "type": "function_call", "status": "completed",
                          "call_id": "call_fake_1", "name": "get_weather",
                          "arguments": '{"city":"Paris"}'})
        else:
            items.append({"id": "msg_fake_1", "type": "message", "status": "completed",
                          "role": "assistant", "content": [{
                              "type": "output_text", "text": k.text, "annotations": [],
                              "logprobs": []}]})
        return items

    def _usage(self) -> dict[str, Any]:
        u = self.knobs.usage
        return {"input_tokens": u["input_tokens"],
                "input_tokens_details": {"cached_tokens": u["cached_tokens"]},
                "output_tokens": u["output_tokens"],
                "output_tokens_details": {"reasoning_tokens": u["reasoning_tokens"]},
                "total_tokens": u["input_tokens"] + u["output_tokens"]}

    def _response(self, body: dict[str, Any], status: str,
                  output: list[dict[str, Any]]) -> dict[str, Any]:
        return {"id": "resp_fake_1", "object": "response", "created_at": 1700000000,
                "status": status, "background": False, "error": None,
                "incomplete_details": None, "instructions": body.get("instructions"),
                "max_output_tokens": body.get("max_output_tokens"), "model": body["model"],
                "output": output, "parallel_tool_calls": True, "previous_response_id": None,
                "reasoning": {"effort": (body.get("reasoning") or {}).get("effort"),
                              "summary": None},
                "store": False, "temperature": 1.0, "text": {"format": {"type": "text"}},
                "tool_choice": body.get("tool_choice", "auto"), "tools": body.get("tools", []),
                "top_p": 1.0, "truncation": "disabled",
                "usage": self._usage() if status == "completed" else None,
                "user": None, "metadata": {}}

    def _events(self, body: dict[str, Any]) -> list[dict[str, Any]]:
        events: list[dict[str, Any]] = []

        def add(kind: str, **fields: Any) -> None:
            events.append({"type": kind, "sequence_number": len(events), **fields})

        add("response.created", response=self._response(body, "in_progress", []))
        add("response.in_progress", response=self._response(body, "in_progress", []))
        output = self._output()
        for i, item in enumerate(output):
            where = {"item_id": item["id"], "output_index": i}
            if item["type"] == "reasoning":
                add("response.output_item.added", output_index=i, item={**item, "summary": []})
                part = item["summary"][0]
                add("response.reasoning_summary_part.added", summary_index=0,
                    part={"type": "summary_text", "text": ""}, **where)
                add("response.reasoning_summary_text.delta", summary_index=0,
                    delta=part["text"], **where)
                add("response.reasoning_summary_text.done", summary_index=0, text=part["text"],
                    **where)
                add("response.reasoning_summary_part.done", summary_index=0, part=part, **where)
            elif item["type"] == "message":
                add("response.output_item.added", output_index=i,
                    item={**item, "status": "in_progress", "content": []})
                empty = {"type": "output_text", "text": "", "annotations": [], "logprobs": []}
                add("response.content_part.added", content_index=0, part=empty, **where)
                text = item["content"][0]["text"]
                for piece in (text[:6], text[6:]):
                    add("response.output_text.delta", content_index=0, delta=piece,
                        logprobs=[], **where)
                add("response.output_text.done", content_index=0, text=text, logprobs=[],
                    **where)
                add("response.content_part.done", content_index=0, part=item["content"][0],
                    **where)
            else:
                add("response.output_item.added", output_index=i,
                    item={**item, "status": "in_progress", "arguments": ""})
                args = item["arguments"]
                for piece in (args[:5], args[5:]):
                    add("response.function_call_arguments.delta", delta=piece, **where)
                add("response.function_call_arguments.done", arguments=args, **where)
            add("response.output_item.done", output_index=i, item=item)
        add("response.completed", response=self._response(body, "completed", output))
        return events
