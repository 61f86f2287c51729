"""Token normalisation across spellings, and integer-microdollar costs."""

from __future__ import annotations

from localgate.pricing import (Tokens, catalog_cost, estimate_tokens, tokens_of, upstream_cost,
                               usd_to_micros, worst_case)

SONNET = {"prompt": "0.000003", "completion": "0.000015", "input_cache_read": "0.0000003",
          "input_cache_write": "0.00000375", "request": "0"}


def test_openai_spelling() -> None:
    u = {"prompt_tokens": 100, "completion_tokens": 20,
         "prompt_tokens_details": {"cached_tokens": 40},
         "completion_tokens_details": {"reasoning_tokens": 5}}
    assert tokens_of(u) == Tokens(100, 20, 40, 0, 5)


def test_openrouter_cache_write_spelling() -> None:
    u = {"prompt_tokens": 100, "completion_tokens": 1,
         "prompt_tokens_details": {"cached_tokens": 10, "cache_write_tokens": 30}}
    assert tokens_of(u) == Tokens(100, 1, 10, 30, 0)


def test_anthropic_spelling_adds_up_prompt() -> None:
    u = {"input_tokens": 10, "output_tokens": 7, "cache_read_input_tokens": 100,
         "cache_creation_input_tokens": 50}
    assert tokens_of(u) == Tokens(160, 7, 100, 50, 0)


def test_junk_usage_is_zero() -> None:
    assert tokens_of({"prompt_tokens": "x", "completion_tokens": -3}) == Tokens()
    assert tokens_of(None) == Tokens()


def test_catalog_cost_applies_cache_prices_exactly() -> None:
    # 1000 plain + 2000 cached + 500 written prompt tokens, 300 completion tokens
    t = Tokens(prompt=3500, completion=300, cached=2000, cache_write=500)
    # 1000*3 + 2000*0.3 + 500*3.75 + 300*15 (micro$ per token ×1e6 / 1e6) = 3000+600+1875+4500
    assert catalog_cost(t, SONNET) == 9975


def test_cost_is_an_integer_and_rounds_half_up() -> None:
    cost = catalog_cost(Tokens(prompt=1, completion=0), {"prompt": "0.0000005"})
    assert cost == 1 and isinstance(cost, int)


def test_upstream_cost_prefers_byok_upstream_inference_cost() -> None:
    assert upstream_cost({"cost": 0.00123}) == 1230
    assert upstream_cost({"cost": 0.0000612, "is_byok": True,
                          "cost_details": {"upstream_inference_cost": 0.001224}}) == 1224
    assert upstream_cost({"prompt_tokens": 1}) is None
    assert usd_to_micros("nan") is None and usd_to_micros(-1) is None


def test_worst_case_and_estimates() -> None:
    assert worst_case(100, 1000, SONNET) == 100 * 3 + 1000 * 15
    assert estimate_tokens(0) == 0 and estimate_tokens(1) == 1 and estimate_tokens(8) == 2


def test_the_spend_row_carries_each_field_of_the_record() -> None:
    from localgate.accounting import entry
    from localgate.exchange import Exchange
    ex = Exchange("lg-1", "2026-11-26T10:00:00.000Z", "vscode", "Kilo/5", "kilo/auto",
                  kind="chat", resolved_model="anthropic/claude-sonnet-4.6",
                  provider="anthropic", route="byok", mode="code", stream=True, status="ok",
                  http_status=200, ttft_ms=120, latency_ms=900, repairs=2, error="e" * 600,
                  rt=object())
    row = entry(ex, 4321, "catalog", Tokens(10, 20, 3, 4, 5))
    assert (row.id, row.ts, row.client, row.user_agent, row.model, row.resolved_model,
            row.provider, row.route, row.mode, row.stream, row.status, row.http_status) == (
        "lg-1", "2026-11-26T10:00:00.000Z", "vscode", "Kilo/5", "kilo/auto",
        "anthropic/claude-sonnet-4.6", "anthropic", "byok", "code", True, "ok", 200)
    assert (row.prompt_tokens, row.completion_tokens, row.cached_tokens,
            row.cache_write_tokens, row.reasoning_tokens) == (10, 20, 3, 4, 5)
    assert (row.cost_microdollars, row.cost_source, row.ttft_ms, row.latency_ms,
            row.repairs, row.error) == (4321, "catalog", 120, 900, 2, "e" * 500)
    # a request refused before routing: no route, so no cost source; empty text is NULL
    bare = entry(Exchange("lg-2", "t", "default", "", ""), 0, "estimated", Tokens())
    assert (bare.user_agent, bare.model, bare.provider, bare.route, bare.http_status,
            bare.cost_source, bare.error) == (None, None, None, None, None, None, None)
