"""What a finished request used and cost, and the row the spend log keeps of it.

cost source, in order: `free` (free and local routes cost 0); `upstream` (the upstream reported
`usage.cost`, or `cost_details.upstream_inference_cost` for BYOK at OpenRouter); `catalog`
(reported tokens x the catalog's prices, cache prices applied); `estimated` (no usage reported:
tokens estimated from text length; or a model the catalog has no price for, priced at its
provider's dearest prices so that it still counts against the limits; and 0 when the upstream
answered an error before any output, which nobody bills).
The `*_of` functions read a request record (exchange.Exchange) and the catalog in force.
Pure; imports pricing and the ledger's row type only.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from localgate.ledger import SpendEntry
from localgate.pricing import (DEFAULT_MAX_OUTPUT, Tokens, catalog_cost, estimate_tokens,
                               has_prices, tokens_of, upstream_cost, worst_case)

__all__ = ["Tokens", "cost", "cost_of", "entry", "usage_with_cost", "worst_case_of"]

# Routes whose spend localgate computes itself and reports back in `usage` (SPEC section 5).
SELF_COSTED = frozenset({"byok", "local", "free"})
FREE_ROUTES = frozenset({"free", "local"})


def cost(route: str, free: bool, usage: Mapping[str, Any] | None,
         pricing: Mapping[str, Any] | None, prompt_chars: Callable[[], int],
         content_chars: int, *, failed: bool = False,
         exact: bool = True) -> tuple[int, str, Tokens]:
    """(microdollars, cost_source, tokens) for one request. `prompt_chars` is asked only when
    tokens must be estimated. `failed`: the upstream answered an error status (or none at
    all), so without usage or output nothing was used. `exact`: the prices are the model's
    own (else a conservative stand-in, and the cost is `estimated`)."""
    reported = tokens_of(usage)
    known = bool(usage) and (reported.prompt > 0 or reported.completion > 0)
    if free or route in FREE_ROUTES:
        return 0, "free", reported if known else _estimate(prompt_chars, content_chars)
    up = upstream_cost(usage)
    if up is not None:
        return up, "upstream", reported
    if known:
        if has_prices(pricing):
            return catalog_cost(reported, pricing), "catalog" if exact else "estimated", reported
        return 0, "estimated", reported  # tokens are real, but no price is known for them
    if failed and not content_chars:
        return 0, "estimated", Tokens()
    t = _estimate(prompt_chars, content_chars)
    return (catalog_cost(t, pricing) if has_prices(pricing) else 0), "estimated", t


def cost_of(ex: Any, catalog: Any) -> tuple[int, str | None, Tokens]:
    """A request's cost as its record stands, worked out once per usage object (the response's
    usage is costed to answer it, and the same figures settle its row)."""
    if ex.rt is None:
        return 0, None, Tokens()
    if ex.cost is not None and ex.cost[0] is ex.usage:
        return ex.cost[1]
    pricing, exact = pricing_of(ex, catalog)
    ex.cost = (ex.usage, cost(ex.route, ex.rt.free, ex.usage, pricing, ex.prompt_chars,
                              ex.content_chars, failed=ex.http_status >= 400, exact=exact))
    return ex.cost[1]


def worst_case_of(ex: Any, body: Mapping[str, Any], ingress: Any, catalog: Any) -> int:
    """What a request may cost at most: the prompt estimate plus all of the output bound (the
    request's, else the model's), at the model's prices (or the conservative stand-in for an
    unpriced model). `ingress`: the non-chat codec (its bound's name; embeddings output none)."""
    field = ingress.max_field if ingress is not None else None
    names = (field,) if field else ("max_completion_tokens", "max_tokens")
    out = next((body.get(n) for n in names if body.get(n) is not None), None)
    entry = ex.rt.entry if ex.rt is not None else None
    if ingress is not None and not ingress.outputs:
        out = 0
    elif not isinstance(out, int) or isinstance(out, bool) or out <= 0:
        out = (entry or {}).get("max_completion_tokens") or DEFAULT_MAX_OUTPUT
    return worst_case(ex.prompt_tokens(), int(out), pricing_of(ex, catalog)[0])


def pricing_of(ex: Any, catalog: Any) -> tuple[Mapping[str, Any] | None, bool]:
    """(prices, exact): the catalog's for the model (or its dated/variant base model), else
    the provider's dearest, so that an unpriced paid model still counts (README)."""
    rt = ex.rt
    if rt is None or rt.free:
        return None, True
    return catalog.pricing_for(rt.model, rt.provider)


def _estimate(prompt_chars: Callable[[], int], content_chars: int) -> Tokens:
    return Tokens(prompt=estimate_tokens(prompt_chars()),
                  completion=estimate_tokens(content_chars))


def usage_with_cost(route: str, usage: Mapping[str, Any], micros: int) -> dict[str, Any] | None:
    """The usage object with OpenRouter's accounting fields added, for routes localgate costs
    itself (None when nothing is to change: a gateway's own figures are passed on as they are)."""
    if route not in SELF_COSTED or "cost" in usage:
        return None
    usd = micros / 1_000_000
    return {**usage, "cost": usd, "is_byok": route == "byok",
            "cost_details": {**(usage.get("cost_details") or {}),
                             "upstream_inference_cost": usd}}


def entry(ex: Any, micros: int, source: str | None, tokens: Tokens) -> SpendEntry:
    """The spend-log row of a request record (gateway.Exchange) as it stands."""
    error = ex.error
    return SpendEntry(ex.id, ex.ts, ex.client, ex.user_agent or None, ex.model or None,
                      ex.resolved_model or None, ex.provider or None, ex.route or None, ex.mode,
                      ex.stream, ex.status, ex.http_status or None, tokens.prompt,
                      tokens.completion, tokens.cached, tokens.cache_write, tokens.reasoning,
                      micros, source if ex.rt else None, ex.ttft_ms, ex.latency_ms, ex.repairs,
                      error[:500] if error else None)
