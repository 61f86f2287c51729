"""Property-based suite (issue 6): over the chat, FIM and forwarded paths, for arbitrary bodies
(JSON of any shape, hostile strings, huge and negative numbers), headers (a key present, absent,
wrong; hostile User-Agent and x-kilocode-mode) and upstream faults (error statuses, garbage, a
cut, slow or missing headers, split frames, an echoed key), every answer keeps four promises:

- no 5xx that the daemon made itself: a 5xx is the upstream's own (its body says so) or the
  daemon's word for an upstream fault (502 upstream_error, 503 when shutting down, 504
  upstream_timeout), never a 500;
- no traceback and no Python exception name in a response;
- exactly one spend row per accepted request, final (never in_flight) once it ended, never an
  internal error; none for a request refused before it was accepted (a wrong key);
- no key (local, provider, Kilo) in any response or row.

One daemon per test function, examples sent one after another. `make test` runs 40 examples
per path; HYPOTHESIS_PROFILE=long runs 400 (README, Development).
"""

from __future__ import annotations

import asyncio
import builtins
import json
import os
import re
import time
from typing import Any

import aiohttp
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from tests.conftest import LOCAL_KEY, Daemon, StartDaemon
from tests.hardening_helpers import KILO_KEY, MISTRAL_KEY, OPENAI_KEY, read_rows, up, wire_at
from tests.wire import MARKER, Script, Wire

EXAMPLES = {"default": 40, "long": 400}[os.environ.get("HYPOTHESIS_PROFILE", "default")]
PROPS = settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=False,
                 suppress_health_check=[HealthCheck.function_scoped_fixture,
                                        HealthCheck.too_slow, HealthCheck.data_too_large])
KEYS = (LOCAL_KEY, OPENAI_KEY, KILO_KEY, MISTRAL_KEY)
WRONG_KEY = "lg-not-this-daemons-key-0000"
CONFIG = {"upstream": {"first_byte_timeout_s": 0.3, "read_gap_timeout_s": 0.3,
                       "connect_timeout_s": 1},
          "limits": {"daily_usd": 1e9, "monthly_usd": 1e9}}
# The names of Python's and aiohttp's exceptions: none may reach a client.
_EXC_NAMES = {n for n, v in vars(builtins).items()
              if isinstance(v, type) and issubclass(v, BaseException)}
_EXC_NAMES |= {"JSONDecodeError", "JSONEncodeError", "ClientPayloadError", "ClientResponseError",
               "ServerDisconnectedError", "ClientConnectionError", "BadHttpMessage",
               "HTTPRequestEntityTooLarge", "HTTPInternalServerError", "CancelledError"}
_EXC_RE = re.compile(r"Traceback|\b(?:" + "|".join(sorted(_EXC_NAMES - {"Exception"})) + r")\b")
_DAEMON_5XX = {502: "upstream_error", 503: "upstream_error", 504: "upstream_timeout"}

# ---- strategies ----------------------------------------------------------------------------------

hostile_text = st.one_of(
    st.text(max_size=40),
    st.text(st.characters(codec=None, exclude_categories=()), max_size=12),  # lone surrogates
    st.sampled_from(["", " ", "\x00", "\r\n", "a\nb", "%00", "../../etc", "\u202e", "😀" * 3,
                     "x" * 300, "null", "{}", "<script>", "kilo-auto/free\r\nX: 1"]))
numbers = st.one_of(st.integers(-3, 3), st.integers(), st.integers(-2**70, 2**70),
                    st.floats(allow_nan=False, allow_infinity=False))
any_json = st.recursive(st.none() | st.booleans() | numbers | hostile_text,
                        lambda inner: st.lists(inner, max_size=4)
                        | st.dictionaries(hostile_text, inner, max_size=4), max_leaves=12)
GOOD_MODELS = {
    "chat": ["openai/gpt-5.2", "openai/gpt-5.2-2025-12-11", "openai/gpt-unknown-zz",
             "kilo-auto/free", "kilo-auto/balanced", "localgate/default", "z-ai/glm-5:free",
             "anthropic/claude-sonnet-4.6", "ollama/llama3", "giga-potato"],
    "fim": ["mistralai/codestral-2508", "mistral/codestral-latest", "mistralai/codestral-2501"],
    "forward": ["openai/gpt-5.2", "openai/gpt-unknown-zz", "z-ai/glm-5:free",
                "anthropic/claude-sonnet-4.6"],
}
odd_models = st.one_of(st.sampled_from(["nosuch/model", "openai/", "/", "", "x" * 300]),
                       hostile_text, any_json,
                       # a known provider, so that a hostile name gets as far as routing
                       st.builds(str.__add__, st.sampled_from(["openai/", "kilo-auto/",
                                                               "z-ai/", "mistralai/"]),
                                 hostile_text))
good_messages = st.lists(st.fixed_dictionaries(
    {"role": st.sampled_from(["user", "assistant", "system"]),
     "content": st.one_of(st.text(max_size=30), st.just("hi"))}), min_size=1, max_size=3)
odd_messages = st.one_of(
    st.lists(st.fixed_dictionaries({"role": st.sampled_from(["user", "assistant", "tool"])},
                                   optional={"content": any_json, "tool_calls": any_json,
                                             "tool_call_id": any_json}), max_size=3),
    any_json)
sane = {"stream": st.booleans(), "max_tokens": st.integers(1, 4096),
        "max_completion_tokens": st.integers(1, 4096),
        "stream_options": st.just({"include_usage": True}), "temperature": st.floats(0, 2),
        "stop": st.just(["\n\n"]), "min_tokens": st.integers(0, 10),
        "usage": st.just({"include": True})}


def often(draw: st.DrawFn, good: st.SearchStrategy[Any], odd: st.SearchStrategy[Any]) -> Any:
    """Mostly `good` (so that most examples reach the upstream), sometimes `odd`."""
    return draw(good) if draw(st.integers(0, 9)) < 7 else draw(odd)


@st.composite
def bodies(draw: st.DrawFn, kind: str) -> Any:
    """A body of the path's own shape, now and then with junk in any field; else any JSON at
    all, or bytes that are not JSON."""
    shape = draw(st.integers(0, 9))
    if shape == 8:
        return json.dumps(draw(any_json)).encode()
    if shape == 9:
        return draw(st.binary(max_size=60))
    body: dict[str, Any] = {"model": often(draw, st.sampled_from(GOOD_MODELS[kind]),
                                           odd_models)}
    if kind == "fim":
        body["prompt"] = often(draw, st.text(max_size=40), any_json)
        if draw(st.booleans()):
            body["suffix"] = often(draw, st.text(max_size=10), any_json)
    elif kind == "forward":
        body["prompt"] = often(draw, st.text(max_size=40), any_json)
    else:
        body["messages"] = often(draw, good_messages, odd_messages)
    if draw(st.booleans()):
        body["stream"] = True
    for name in draw(st.lists(st.sampled_from(sorted(sane)), max_size=3, unique=True)):
        body[name] = often(draw, sane[name], st.one_of(numbers, any_json))
    for name, value in draw(st.dictionaries(hostile_text, any_json, max_size=2)).items():
        body.setdefault(name, value)  # unknown fields pass through
    return json.dumps(body).encode()


header_text = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7e), max_size=60)


@st.composite
def headers(draw: st.DrawFn) -> tuple[dict[str, str], str]:
    """(headers, who): who is 'local', 'kilo', 'anonymous' or 'wrong'."""
    who = draw(st.sampled_from(["local"] * 5 + ["kilo", "anonymous", "wrong", "none"]))
    h = {"Content-Type": "application/json"}
    if who == "local":
        h["Authorization"] = f"Bearer {LOCAL_KEY}"
    elif who == "kilo":
        h["x-api-key"] = KILO_KEY
    elif who == "anonymous":
        h["Authorization"] = "Bearer anonymous"
    elif who == "wrong":
        h["Authorization"] = f"Bearer {WRONG_KEY}"
    if draw(st.booleans()):
        h["User-Agent"] = draw(header_text)
    if draw(st.booleans()):
        h["x-kilocode-mode"] = draw(st.one_of(header_text, st.sampled_from(["code", "plan"])))
    return h, "anonymous" if who == "none" else who


usages = st.one_of(
    st.none(),
    st.just({"prompt_tokens": 11, "completion_tokens": 7}),
    st.fixed_dictionaries({"prompt_tokens": numbers, "completion_tokens": numbers},
                          # a cost near the $1e9 limit would refuse every later example
                          optional={"cost": st.one_of(st.floats(-10, 100), st.integers(-5, 100),
                                                      hostile_text, any_json),
                                    "is_byok": any_json, "cost_details": any_json,
                                    "prompt_tokens_details": any_json}),
    st.dictionaries(hostile_text, any_json, max_size=3))


@st.composite
def faults(draw: st.DrawFn) -> Script:
    fault = draw(st.sampled_from(["none", "none", "status", "garbage", "cut", "slow", "hang",
                                  "split", "unterminated"]))
    s = Script(usage=draw(usages), echo_key=draw(st.booleans()),
               chunks=draw(st.integers(1, 4)))
    if fault == "status":
        s.status = draw(st.sampled_from([400, 401, 402, 403, 404, 422, 429, 500, 502, 503]))
    elif fault == "garbage":
        s.garbage = True
    elif fault == "cut":
        s.cut = True
    elif fault == "slow":
        s.header_delay = draw(st.floats(0, 0.15))
        s.chunk_delay = draw(st.floats(0, 0.05))
    elif fault == "hang":
        s.hang = True
    elif fault == "split":
        s.piece = draw(st.integers(1, 9))
        s.piece_delay = 0.0005
    elif fault == "unterminated":
        s.unterminated = True
    return s


# ---- the promises --------------------------------------------------------------------------------

async def _row_for(d: Daemon, rid: str, expected: int) -> list[dict[str, Any]]:
    writer = d.running.built.spend_log
    deadline = time.monotonic() + 3
    while True:
        await asyncio.to_thread(writer.flush)
        got = [r for r in await asyncio.to_thread(read_rows, d.home / "spend.db")
               if r["id"] == rid]
        if expected == 0 or (got and all(r["status"] != "in_flight" for r in got)):
            return got
        assert time.monotonic() < deadline, f"row of {rid} not final: {got}"
        await asyncio.sleep(0.02)


async def exercise(d: Daemon, wire: Wire, path: str, body: bytes, head: dict[str, str],
                   who: str, script: Script, *, row_needs_auth: bool = False) -> None:
    wire.script = script
    async with aiohttp.ClientSession() as s, s.post(d.url + path, data=body, headers=head,
                      timeout=aiohttp.ClientTimeout(total=15)) as resp:
        status, got_headers = resp.status, dict(resp.headers)
        try:
            raw = await resp.read()
        except aiohttp.ClientPayloadError:  # a body cut short: a promise broken
            raise AssertionError(f"the daemon cut its answer short ({status})") from None
    text = raw.decode("utf-8", "replace")
    event(f"answer {status}" + (" stream" if "event-stream" in got_headers.get(
        "Content-Type", "") else ""))
    seen = text + json.dumps(got_headers)
    for key in KEYS:
        assert key not in seen, f"a key reached the client ({status}): {seen[:300]}"
    assert not _EXC_RE.search(seen), f"an exception name reached the client: {seen[:400]}"
    if status >= 500 and MARKER not in text:  # not the upstream's own 5xx passed on
        err = json.loads(raw)["error"]
        assert _DAEMON_5XX.get(status) == err["code"], (status, err)
    rid = next((v for k, v in got_headers.items() if k.lower() == "x-request-id"), None)
    assert rid, got_headers
    expected = 0 if who == "wrong" or (row_needs_auth and who == "anonymous") else 1
    got = await _row_for(d, rid, expected)
    assert len(got) == expected, (status, got)
    for row in got:
        assert "internal error" not in (row["error"] or ""), row
        assert row["http_status"] != 500 or MARKER in text, row  # a 500 only ever relayed
        assert row["http_status"] == status or row["status"] in ("error", "client_closed"), row
        assert not any(key in json.dumps(row) for key in KEYS), row


@pytest.fixture
async def prop_daemon(start_daemon: StartDaemon, aiohttp_server: Any) -> tuple[Daemon, Wire]:
    wire = await wire_at(aiohttp_server)
    d = await up(start_daemon, wire, CONFIG, OPENAI_API_KEY=OPENAI_KEY, KILO_API_KEY=KILO_KEY,
                 MISTRAL_API_KEY=MISTRAL_KEY)
    return d, wire


@PROPS
@given(path=st.sampled_from(["/v1/chat/completions", "/api/gateway/chat/completions",
                             "/api/openrouter/chat/completions"]),
       body=bodies("chat"), head=headers(), script=faults())
async def test_chat_keeps_its_promises(prop_daemon: tuple[Daemon, Wire], path: str,
                                       body: bytes, head: tuple[dict[str, str], str],
                                       script: Script) -> None:
    await exercise(*prop_daemon, path, body, head[0], head[1], script)


@PROPS
@given(path=st.sampled_from(["/v1/fim/completions", "/api/fim/completions",
                             "/api/gateway/fim/completions"]),
       body=bodies("fim"), head=headers(), script=faults())
async def test_fim_keeps_its_promises(prop_daemon: tuple[Daemon, Wire], path: str, body: bytes,
                                      head: tuple[dict[str, str], str], script: Script) -> None:
    await exercise(*prop_daemon, path, body, head[0], head[1], script)


@PROPS
@given(path=st.sampled_from(["/api/gateway/completions", "/api/openrouter/completions",
                             "/api/v1/completions", "/api/gateway/edits"]),
       body=bodies("forward"), head=headers(), script=faults())
async def test_forwarded_calls_keep_their_promises(prop_daemon: tuple[Daemon, Wire], path: str,
                                                   body: bytes,
                                                   head: tuple[dict[str, str], str],
                                                   script: Script) -> None:
    # the pass-through refuses a caller without a local key before accepting the request
    await exercise(*prop_daemon, path, body, head[0], head[1], script, row_needs_auth=True)
