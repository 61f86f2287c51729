"""Allow lists and limits with reservations (pure, on a fixed clock)."""

from __future__ import annotations

import pytest

from localgate import config
from localgate.controls import Controls, LimitExceeded
from localgate.errors import Forbidden


def _controls(doc: dict) -> Controls:
    s = config.from_document(doc)
    return Controls(lambda: s, clock=lambda: 1_790_000_000.0)


def test_allow_models_globs_and_providers() -> None:
    c = _controls({"limits": {"allow_models": ["anthropic/*", "*:free"],
                              "allow_providers": ["anthropic", "z-ai"]}})
    c.allow(client="default", model="anthropic/claude-sonnet-4.6", provider="anthropic",
            raw_prefix="anthropic")
    c.allow(client="default", model="z-ai/glm-5:free", provider="z-ai", raw_prefix="z-ai")
    with pytest.raises(Forbidden) as e:
        c.allow(client="default", model="openai/gpt-5.2", provider="openai", raw_prefix="openai")
    assert e.value.code == "model_not_allowed" and e.value.status == 403
    c2 = _controls({"limits": {"allow_providers": ["mistral"]}})
    c2.allow(client="default", model="mistralai/x", provider="mistral", raw_prefix="mistralai")
    with pytest.raises(Forbidden) as e:
        c2.allow(client="default", model="openai/x", provider="openai", raw_prefix="openai")
    assert e.value.code == "provider_not_allowed"


def test_client_allow_list() -> None:
    c = _controls({"clients": {"vscode": {"allow_models": ["anthropic/claude-sonnet-*"]}}})
    c.allow(client="other", model="openai/gpt-5.2", provider="openai", raw_prefix="openai")
    with pytest.raises(Forbidden):
        c.allow(client="vscode", model="openai/gpt-5.2", provider="openai", raw_prefix="openai")


def test_reservations_hold_the_cap_and_settle() -> None:
    c = _controls({"limits": {"daily_usd": 0.03}})
    r = [c.reserve("default", lambda: 10_000) for _ in range(3)]  # 0, 1, 2 cents held
    with pytest.raises(LimitExceeded) as e:
        c.reserve("default", lambda: 10_000)  # 3 cents held: the limit is reached
    err = e.value.envelope()["error"]
    assert e.value.status == 402 and err["code"] == "usage_limit_exceeded"
    assert err["period"] == "day" and err["limit_usd"] == 0.03 and err["spent_usd"] == 0.0
    assert "$0.03" in err["message"] and "in flight" in err["message"]
    c.settle(r[0], 2_000)  # the real cost is lower than the worst case: budget comes back
    with pytest.raises(LimitExceeded):
        c.reserve("default", lambda: 10_000)  # 0.2 + 2 held + 1 > 3 cents
    c.reserve("default", lambda: 8_000)  # 0.2 + 2 held + 0.8 = 3 cents: fits exactly
    assert c.spent_today() == 2_000


def test_a_lone_request_is_not_refused_for_its_worst_case() -> None:
    c = _controls({"limits": {"daily_usd": 1.0}})
    r = c.reserve("default", lambda: 1_800_000)  # worst case above the limit, none spent
    with pytest.raises(LimitExceeded):
        c.reserve("default", lambda: 1)  # but while it is in flight, nothing else fits
    c.settle(r, 900)
    c.reserve("default", lambda: 1_800_000)


def test_parallel_requests_never_overshoot_together() -> None:
    c = _controls({"limits": {"daily_usd": 0.035}})
    admitted = []
    for _ in range(20):  # 20 parallel requests, each of worst case 1 cent
        try:
            admitted.append(c.reserve("default", lambda: 10_000))
        except LimitExceeded:
            pass
    assert len(admitted) == 3  # a fourth worst case would not fit in 3.5 cents
    for r in admitted:
        c.settle(r, 10_000)
    assert c.spent_today() == 30_000 <= 35_000
    c.settle(c.reserve("default", lambda: 10_000), 10_000)  # alone again: under, admitted
    with pytest.raises(LimitExceeded) as e:
        c.reserve("default", lambda: 1)
    assert e.value.extra["spent_usd"] == 0.04  # a lone request overshot by at most itself


def test_monthly_and_client_limits_and_seed() -> None:
    c = _controls({"limits": {"monthly_usd": 1.0}, "clients": {"ci": {"daily_usd": 0.5}}})
    c.seed(day=0, month=990_000, per_client_day={"ci": 0})
    c.reserve("default", lambda: 20_000)  # 0.99 spent < 1.00: admitted
    with pytest.raises(LimitExceeded) as e:
        c.reserve("default", lambda: 1)
    assert e.value.extra["period"] == "month"
    c2 = _controls({"clients": {"ci": {"daily_usd": 0.5}}})
    c2.seed(day=0, month=0, per_client_day={"ci": 500_000})
    c2.reserve("other", lambda: 10_000)
    with pytest.raises(LimitExceeded) as e:
        c2.reserve("ci", lambda: 10_000)
    assert e.value.extra["period"] == "client_day"
