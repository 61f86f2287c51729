"""Recorded Messages responses and error bodies through the adapter, as the client sees them."""

from __future__ import annotations

import json
from typing import Any

import pytest
from openai.types.chat import ChatCompletion

from localgate import pricing
from tests.providers.anthropic_helpers import ADAPTER, TARGET, raw


def completion(name: str) -> dict[str, Any]:
    out = ADAPTER.chat_response(raw(name), TARGET)
    ChatCompletion.model_validate_json(out)  # the official SDK's own type accepts it
    return json.loads(out)  # type: ignore[no-any-return]


def test_text_response() -> None:
    c = completion("response_text.json")
    assert c["id"] == "msg_01XFDUDYJgAACzvnptvVoYEL" and c["object"] == "chat.completion"
    assert c["model"] == "anthropic/claude-sonnet-4.6" and isinstance(c["created"], int)
    choice = c["choices"][0]
    assert choice["message"] == {"role": "assistant", "refusal": None,
                                 "content": "Hello! How can I help you today?"}
    assert choice["finish_reason"] == "stop"


def test_usage_counts_cache_writes_and_reads_in_prompt_tokens() -> None:
    write = completion("response_text.json")["usage"]
    assert write == {"prompt_tokens": 21 + 188086, "completion_tokens": 393,
                     "total_tokens": 21 + 188086 + 393,
                     "prompt_tokens_details": {"cached_tokens": 0,
                                               "cache_write_tokens": 188086}}
    read = completion("response_cache_read.json")["usage"]
    assert read["prompt_tokens"] == 21 + 188086
    assert read["prompt_tokens_details"] == {"cached_tokens": 188086, "cache_write_tokens": 0}
    # the spend log reads the same numbers back (SPEC 5 and 6)
    t = pricing.tokens_of(read)
    assert (t.prompt, t.completion, t.cached, t.cache_write) == (188107, 393, 188086, 0)


def test_tool_use_response() -> None:
    c = completion("response_tool_use.json")
    msg = c["choices"][0]["message"]
    assert msg["content"] == "I'll check the current weather in San Francisco for you."
    assert [(t["id"], t["type"], t["function"]["name"]) for t in msg["tool_calls"]] == [
        ("toolu_01A09q90qw90lq917835lq9", "function", "get_weather"),
        ("toolu_01B1x2y3z4w5v6u7t8s9r0q1", "function", "get_time")]
    args = [t["function"]["arguments"] for t in msg["tool_calls"]]
    assert all(isinstance(a, str) for a in args)
    assert [json.loads(a) for a in args] == [{"location": "San Francisco, CA",
                                              "unit": "celsius"}, {}]
    assert c["choices"][0]["finish_reason"] == "tool_calls"


def test_tool_calls_alone_leave_content_null() -> None:
    body = json.loads(raw("response_tool_use.json"))
    body["content"] = body["content"][1:]
    out = json.loads(ADAPTER.chat_response(json.dumps(body).encode(), TARGET))
    assert out["choices"][0]["message"]["content"] is None


def test_thinking_becomes_reasoning_and_reasoning_details() -> None:
    msg = completion("response_thinking.json")["choices"][0]["message"]
    assert msg["content"] == "Yes, there are infinitely many prime numbers such that..."
    assert msg["reasoning"] == ("To approach this, let's think about what we know about "
                                "prime numbers...")
    assert msg["reasoning_details"] == [
        {"type": "reasoning.text", "text": msg["reasoning"],
         "signature": "WaUjzkypQ2mUEVM36O2TxuC06KN8xyfbJwyem2dw3URve/op91XWHOEBLLqIOMfFG/"
                      "UvLEczmEsUjavL", "format": "anthropic-claude-v1", "index": 0},
        {"type": "reasoning.encrypted",
         "data": "EmwKAhgBEgy3va3pzix/LafPsn4aDFIT2Xlxh0L5L8rLVyIwxtE3rAFBa8cr3qpP",
         "format": "anthropic-claude-v1", "index": 1}]


@pytest.mark.parametrize(("name", "finish"), [
    ("response_refusal.json", "content_filter"), ("response_max_tokens.json", "length"),
    ("response_pause_turn.json", "stop"), ("response_cache_read.json", "stop"),
])
def test_stop_reasons(name: str, finish: str) -> None:
    assert completion(name)["choices"][0]["finish_reason"] == finish


@pytest.mark.parametrize("body", [b"<html>oops</html>", b"[1, 2]", b'{"type": "error"}', b""])
def test_a_body_that_is_not_a_message_is_refused(body: bytes) -> None:
    with pytest.raises(ValueError):
        ADAPTER.chat_response(body, TARGET)


# -- errors -----------------------------------------------------------------------------------

@pytest.mark.parametrize(("status", "name", "kind", "says"), [
    (529, "error_overloaded.json", "overloaded_error", "Overloaded"),
    (429, "error_rate_limit.json", "rate_limit_error", "exceed the rate limit"),
    (400, "error_invalid_request.json", "invalid_request_error", "`tool_use` ids were found"),
    (401, "error_authentication.json", "authentication_error", "invalid x-api-key"),
])
def test_anthropic_errors_in_the_openai_envelope(status: int, name: str, kind: str,
                                                 says: str) -> None:
    env = json.loads(ADAPTER.error_response(status, raw(name), TARGET))
    assert set(env) == {"error"}
    err = env["error"]
    assert set(err) == {"message", "type", "code", "param"}
    assert err["type"] == err["code"] == kind and err["param"] is None
    assert says in err["message"]


def test_a_non_json_error_body_is_described() -> None:
    err = json.loads(ADAPTER.error_response(502, raw("error_proxy.html"), TARGET))["error"]
    assert "502 Bad Gateway" in err["message"] and err["type"] == "api_error"
    assert "\n" not in err["message"] and len(err["message"]) <= 200


@pytest.mark.parametrize(("status", "kind"), [(529, "overloaded_error"), (413,
                         "request_too_large"), (503, "api_error"), (404, "not_found_error")])
def test_an_empty_error_body_is_named_by_status(status: int, kind: str) -> None:
    err = json.loads(ADAPTER.error_response(status, b"", TARGET))["error"]
    assert err["type"] == kind and str(status) in err["message"]
