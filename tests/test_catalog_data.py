"""Checks on the shipped model catalog (localgate/data/catalog.json).

The file is produced by scripts/build_catalog.py from the reference snapshots;
these tests read only the shipped JSON, never the snapshots themselves.
"""

from __future__ import annotations

import json
import py_compile
from decimal import Decimal, InvalidOperation
from importlib.resources import files
from pathlib import Path

import pytest

SEED_POPULAR = [
    "anthropic/claude-opus-4.6",
    "anthropic/claude-sonnet-4.6",
    "anthropic/claude-haiku-4.5",
    "openai/gpt-5.2",
    "google/gemini-3-pro-preview",
    "google/gemini-3-flash-preview",
    "x-ai/grok-code-fast-1",
    "moonshotai/kimi-k2.5",
]
SEED_FREE = [
    "minimax/minimax-m2.1:free",
    "z-ai/glm-5:free",
    "giga-potato",
    "corethink:free",
    "arcee-ai/trinity-large-preview:free",
    "minimax/minimax-m2.5:free",
]
AUTO_TARGETS = [
    "anthropic/claude-opus-4.6",
    "anthropic/claude-sonnet-4.6",
    "moonshotai/kimi-k2.5",
    "minimax/minimax-m2.7",
    "minimax/minimax-m2.5:free",
]
DIRECT_PROVIDERS = [
    "anthropic", "openai", "google", "x-ai", "mistral",
    "moonshotai", "minimax", "z-ai", "deepseek", "groq",
]
PRICE_KEYS = {"prompt", "completion", "input_cache_read", "input_cache_write", "request"}
REQUIRED_KEYS = {
    "id", "name", "provider", "created", "description", "context_length",
    "max_completion_tokens", "architecture", "pricing", "supported_parameters", "free",
}
OPTIONAL_KEYS = {"native_id", "preferred_index"}
ARCH_KEYS = {"modality", "input_modalities", "output_modalities", "tokenizer"}


@pytest.fixture(scope="module")
def doc() -> dict:
    raw = (files("localgate") / "data" / "catalog.json").read_bytes()
    return json.loads(raw)


@pytest.fixture(scope="module")
def models(doc) -> list[dict]:
    return doc["models"]


@pytest.fixture(scope="module")
def by_id(models) -> dict[str, dict]:
    return {m["id"]: m for m in models}


def _dec(value: str) -> Decimal:
    assert isinstance(value, str), f"price {value!r} is not a string"
    try:
        d = Decimal(value)
    except InvalidOperation:  # pragma: no cover - failure path
        pytest.fail(f"price {value!r} is not a decimal string")
    assert d.is_finite(), value
    return d


def test_top_level_shape(doc):
    assert set(doc) == {"generated_at", "sources", "models"}
    assert isinstance(doc["generated_at"], str) and doc["generated_at"].startswith("20")
    assert isinstance(doc["sources"], list) and doc["sources"]
    assert all(isinstance(s, str) and s for s in doc["sources"])
    assert isinstance(doc["models"], list)
    assert len(doc["models"]) > 300


def test_compact_serialisation():
    raw = (files("localgate") / "data" / "catalog.json").read_text(encoding="utf-8")
    assert "\n" not in raw.strip()
    assert '": ' not in raw[:2000] and '", "' not in raw[:2000]


def test_every_entry_is_well_formed(models):
    for m in models:
        mid = m.get("id")
        keys = set(m)
        assert REQUIRED_KEYS <= keys, (mid, REQUIRED_KEYS - keys)
        assert keys <= REQUIRED_KEYS | OPTIONAL_KEYS, (mid, keys - REQUIRED_KEYS - OPTIONAL_KEYS)
        assert isinstance(mid, str) and mid and not mid.startswith("~")
        assert isinstance(m["name"], str) and m["name"]
        assert isinstance(m["provider"], str) and m["provider"]
        assert isinstance(m["description"], str)
        assert isinstance(m["created"], int) and m["created"] >= 0
        assert isinstance(m["context_length"], int), mid
        assert isinstance(m["max_completion_tokens"], int), mid
        assert isinstance(m["free"], bool)
        params = m["supported_parameters"]
        assert isinstance(params, list) and all(isinstance(p, str) for p in params)

        arch = m["architecture"]
        assert set(arch) == ARCH_KEYS, mid
        assert isinstance(arch["modality"], str) and "->" in arch["modality"]
        assert "text" in arch["output_modalities"], mid
        assert isinstance(arch["input_modalities"], list) and arch["input_modalities"]
        assert isinstance(arch["tokenizer"], str) and arch["tokenizer"]

        pricing = m["pricing"]
        assert set(pricing) == PRICE_KEYS, (mid, set(pricing) ^ PRICE_KEYS)
        for key, value in pricing.items():
            d = _dec(value)
            assert d >= 0, (mid, key, value)
            assert "e" not in value.lower(), (mid, key, value)

        if "native_id" in m:
            assert isinstance(m["native_id"], str) and m["native_id"]
            assert ":" not in mid, f"variant {mid} must not carry a native id"
        if "preferred_index" in m:
            assert isinstance(m["preferred_index"], int)


def test_ids_are_unique(models):
    ids = [m["id"] for m in models]
    assert len(ids) == len(set(ids))


def test_models_sorted_by_id(models):
    ids = [m["id"] for m in models]
    assert ids == sorted(ids)


def test_every_model_has_a_context_length_and_a_maximum_output(models):
    holes = [m["id"] for m in models
             if not m["context_length"] > 0 or not m["max_completion_tokens"] > 0]
    assert holes == []


# What the hosted service publishes for its own free models (Kilo-Org/cloud `kiloFreeModels`,
# cited in scripts/build_catalog.py): context length, maximum output.
KILO_FREE_LIMITS = {
    "corethink:free": (78_000, 8_192),
    "giga-potato": (256_000, 32_000),
    "minimax/minimax-m2.1:free": (204_800, 131_072),
    "minimax/minimax-m2.5:free": (204_800, 131_072),
    "z-ai/glm-5:free": (202_800, 131_072),
}


def test_the_hosted_gateways_own_free_models_carry_its_published_limits(by_id):
    for mid, (context, output) in KILO_FREE_LIMITS.items():
        m = by_id[mid]
        assert (m["context_length"], m["max_completion_tokens"]) == (context, output), mid
        assert m["free"] is True
    assert by_id["giga-potato"]["architecture"]["input_modalities"] == ["text", "image"]
    assert "tools" in by_id["corethink:free"]["supported_parameters"]


def test_a_model_with_no_published_output_limit_takes_its_context_length(by_id):
    # OpenRouter lists perplexity/sonar with no max_completion_tokens, and no other source has one
    m = by_id["perplexity/sonar"]
    assert m["max_completion_tokens"] == m["context_length"] == 127_072
    # ... while a published one wins: the same id in the older snapshot, the provider's own
    # listing by native id, or the model a `:batch` id is a variant of
    assert by_id["deepseek/deepseek-v4-pro-0813"]["max_completion_tokens"] == 384_000
    assert by_id["x-ai/grok-4.3"]["max_completion_tokens"] == 30_000
    assert by_id["minimax/minimax-m3:batch"]["max_completion_tokens"] == 512_000


def test_popular_models_in_seed_order(models, by_id):
    for i, mid in enumerate(SEED_POPULAR):
        assert mid in by_id, mid
        assert by_id[mid].get("preferred_index") == i, mid
        assert by_id[mid]["context_length"] > 0, mid
        assert _dec(by_id[mid]["pricing"]["prompt"]) > 0, mid
        assert by_id[mid]["free"] is False
    ranked = sorted((m for m in models if "preferred_index" in m), key=lambda m: m["preferred_index"])
    assert [m["id"] for m in ranked] == SEED_POPULAR


def test_free_seed_models(by_id):
    for mid in SEED_FREE:
        assert mid in by_id, mid
        m = by_id[mid]
        assert m["free"] is True, mid
        assert all(_dec(v) == 0 for v in m["pricing"].values()), mid
        assert "native_id" not in m, mid


def test_free_flag_never_on_a_priced_model(models):
    for m in models:
        if m["free"]:
            assert all(_dec(v) == 0 for v in m["pricing"].values()), m["id"]
        if m["id"].endswith(":free"):
            assert m["free"] is True, m["id"]


def test_auto_targets_present(by_id):
    for mid in AUTO_TARGETS:
        assert mid in by_id, mid
    assert by_id["minimax/minimax-m2.7"]["free"] is False
    assert _dec(by_id["minimax/minimax-m2.7"]["pricing"]["prompt"]) > 0


def test_kilo_models_have_no_prefix(by_id):
    for mid in ("giga-potato", "corethink:free"):
        assert by_id[mid]["provider"] == "kilo"


def test_sonnet_46_native_id_and_prices(by_id):
    m = by_id["anthropic/claude-sonnet-4.6"]
    assert m["provider"] == "anthropic"
    assert m["native_id"] == "claude-sonnet-4-6"
    p = m["pricing"]
    assert Decimal(p["prompt"]) == Decimal("0.000003")
    assert Decimal(p["completion"]) == Decimal("0.000015")
    assert Decimal(p["input_cache_read"]) == Decimal("0.0000003")
    assert Decimal(p["input_cache_write"]) == Decimal("0.00000375")
    assert Decimal(p["request"]) == 0
    # Formatted without float artifacts.
    assert p["prompt"] == "0.000003"
    assert m["context_length"] == 1_000_000


def test_native_ids_keep_provider_casing(by_id):
    assert by_id["minimax/minimax-m2.1"]["native_id"] == "MiniMax-M2.1"
    assert by_id["anthropic/claude-opus-4.6"]["native_id"] == "claude-opus-4-6"
    assert by_id["openai/gpt-5.2"]["native_id"] == "gpt-5.2"


def test_every_direct_provider_has_models(models):
    counts: dict[str, int] = {}
    for m in models:
        counts[m["provider"]] = counts.get(m["provider"], 0) + 1
    for p in DIRECT_PROVIDERS:
        assert counts.get(p, 0) >= 1, p


def test_native_ids_only_for_direct_providers(models):
    for m in models:
        if "native_id" in m:
            assert m["provider"] in DIRECT_PROVIDERS, m["id"]


def test_groq_models_shape(models):
    groq = [m for m in models if m["provider"] == "groq"]
    assert 3 <= len(groq) <= 20
    for m in groq:
        assert m["id"].startswith("groq/")
        assert m["native_id"] == m["id"][len("groq/"):]
        assert _dec(m["pricing"]["prompt"]) > 0


def test_mistral_provider_mapping(models):
    mistral = [m for m in models if m["provider"] == "mistral"]
    assert mistral
    for m in mistral:
        assert m["id"].startswith("mistralai/"), m["id"]
    for m in models:
        if m["id"].startswith("mistralai/"):
            assert m["provider"] == "mistral", m["id"]
    assert not any(m["provider"] == "mistralai" for m in models)


def test_provider_follows_prefix(models):
    for m in models:
        mid = m["id"]
        if "/" not in mid:
            assert m["provider"] == "kilo", mid
            continue
        prefix = mid.split("/", 1)[0]
        expected = "mistral" if prefix == "mistralai" else prefix
        assert m["provider"] == expected, mid


def test_build_script_compiles(tmp_path):
    script = Path(__file__).resolve().parent.parent / "scripts" / "build_catalog.py"
    assert script.is_file()
    py_compile.compile(str(script), cfile=str(tmp_path / "build_catalog.pyc"), doraise=True)
