"""Tokens and money: normalise the usage spellings of OpenAI, OpenRouter and Anthropic, and
cost a request in integer microdollars (1e-6 USD). Prices are the catalog's decimal strings
(USD per token); arithmetic is Decimal, the result an int. Pure.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

MICRO = Decimal(1_000_000)
CHARS_PER_TOKEN = 4


@dataclass(slots=True)  # made per request: not frozen (a frozen __init__ costs ~6x more)
class Tokens:
    prompt: int = 0        # OpenAI convention: includes cached and cache-write tokens
    completion: int = 0    # includes reasoning tokens
    cached: int = 0
    cache_write: int = 0
    reasoning: int = 0


DEFAULT_MAX_OUTPUT = 32_768  # when neither max_tokens nor the catalog bounds the output
MAX_TOKENS = 10**12        # far beyond any real request; keeps junk out of SQLite's int64
MAX_MICROS = 10**15        # a billion dollars


def _int(v: Any) -> int:
    return min(v, MAX_TOKENS) if isinstance(v, int) and not isinstance(v, bool) and v > 0 else 0


def tokens_of(u: Mapping[str, Any] | None) -> Tokens:
    """Read any of the upstream spellings into OpenAI-convention counts."""
    if not u:
        return Tokens()
    if "input_tokens" in u and "prompt_tokens" not in u:  # Anthropic: separate counts, add up
        cached = _int(u.get("cache_read_input_tokens"))
        write = _int(u.get("cache_creation_input_tokens"))
        return Tokens(_int(u.get("input_tokens")) + cached + write, _int(u.get("output_tokens")),
                      cached, write, 0)
    ptd = u.get("prompt_tokens_details")
    ptd = ptd if isinstance(ptd, dict) else {}
    ctd = u.get("completion_tokens_details")
    ctd = ctd if isinstance(ctd, dict) else {}
    cached = _int(ptd.get("cached_tokens")) or _int(u.get("cache_read_input_tokens"))
    write = _int(ptd.get("cache_write_tokens")) or _int(ptd.get("cache_creation_input_tokens")) \
        or _int(u.get("cache_creation_input_tokens"))
    return Tokens(_int(u.get("prompt_tokens")), _int(u.get("completion_tokens")), cached, write,
                  _int(ctd.get("reasoning_tokens")))


def usd_to_micros(usd: Any) -> int | None:
    if isinstance(usd, bool) or not isinstance(usd, int | float | str):
        return None
    try:
        d = Decimal(str(usd))
    except InvalidOperation:
        return None
    if not d.is_finite() or d < 0:
        return None
    return min(int((d * MICRO).to_integral_value(ROUND_HALF_UP)), MAX_MICROS)


def upstream_cost(u: Mapping[str, Any] | None) -> int | None:
    """The cost the upstream reported (OpenRouter accounting), in microdollars, if any."""
    if not u:
        return None
    if u.get("is_byok"):
        details = u.get("cost_details")
        if isinstance(details, dict) and details.get("upstream_inference_cost") is not None:
            return usd_to_micros(details["upstream_inference_cost"])
    return usd_to_micros(u.get("cost")) if u.get("cost") is not None else None


_PICO = Decimal(10) ** 12


@lru_cache(maxsize=4096)
def _parse(values: tuple[Any, ...]) -> tuple[int, ...]:
    out = []
    for v in values:
        try:
            d = Decimal(str(v or "0"))
        except InvalidOperation:
            d = Decimal(0)
        out.append(int(d * _PICO) if d.is_finite() and d > 0 else 0)
    return tuple(out)


def _prices(pricing: Mapping[str, Any] | None) -> tuple[int, ...]:
    """(prompt, completion, cache read, cache write, request) in picodollars per token: exact
    integers for every price the catalogs list, parsed once per distinct price list."""
    if not pricing:
        return (0, 0, 0, 0, 0)
    get = pricing.get
    return _parse((get("prompt"), get("completion"), get("input_cache_read"),
                   get("input_cache_write"), get("request")))


def has_prices(pricing: Mapping[str, Any] | None) -> bool:
    p = _prices(pricing)
    return p[0] > 0 or p[1] > 0


def catalog_cost(t: Tokens, pricing: Mapping[str, Any] | None) -> int:
    """Tokens x per-token prices; cache reads/writes at their own prices where listed."""
    prompt, completion, cread, cwrite, request = _prices(pricing)
    cached = min(t.cached, t.prompt)
    written = min(t.cache_write, t.prompt - cached)
    plain = t.prompt - cached - written
    pico = (plain * prompt + cached * (cread or prompt) + written * (cwrite or prompt)
            + t.completion * completion + request)
    return (pico + 500_000) // 1_000_000  # picodollars -> microdollars, half up


def worst_case(prompt_tokens: int, max_output: int, pricing: Mapping[str, Any] | None) -> int:
    """What a request can cost at most: the prompt estimate plus all of max_output."""
    return catalog_cost(Tokens(prompt=prompt_tokens, completion=max_output), pricing)


def estimate_tokens(chars: int) -> int:
    return (chars + CHARS_PER_TOKEN - 1) // CHARS_PER_TOKEN


def prompt_chars(body: Mapping[str, Any]) -> int:
    """Characters of text a chat request sends (messages and tools), for estimates."""
    n = 0
    for m in body.get("messages") or ():
        if not isinstance(m, dict):
            continue
        c = m.get("content")
        if isinstance(c, str):
            n += len(c)
        elif isinstance(c, list):
            n += sum(len(p["text"]) for p in c
                     if isinstance(p, dict) and isinstance(p.get("text"), str))
        calls = m.get("tool_calls")
        for tc in calls if isinstance(calls, list) else ():
            if isinstance(tc, dict) and isinstance(tc.get("function"), dict):
                n += len(str(tc["function"].get("arguments") or ""))
    tools = body.get("tools")
    if tools:
        n += len(str(tools))
    return n


def micros_to_usd(micros: int) -> float:
    return micros / 1_000_000


def exact_dollars(micros: int) -> str:
    """Dollars, exact: cents when whole, else every digit down to the microdollar (a sub-cent
    limit must not read as $0.00, nor $0.049 as $0.05)."""
    d = Decimal(micros) / MICRO
    return f"${d:,.2f}" if micros % 10_000 == 0 else f"${d:,.6f}".rstrip("0")
