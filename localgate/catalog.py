"""The model catalog: the snapshot bundled in the package, merged with the hosted gateway's
`/models` (cached on disk), plus the virtual models of the config.

Pure data handling: file reads happen in `load()` (call it off the event loop); no network here.
Prices stay the decimal strings of the hosted shape (USD per token) and are only turned into
numbers by pricing code.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterable, Mapping
from decimal import Decimal
from importlib import resources
from pathlib import Path
from typing import Any

from localgate import builtins
from localgate.pricing import has_prices

_PRICE_KEYS = ("prompt", "completion", "input_cache_read", "input_cache_write", "request")
_ZERO_PRICES = {k: "0" for k in _PRICE_KEYS}


def provider_of(model_id: str) -> str:
    """The localgate provider slug an id belongs to (prefix with aliases; `kilo` for bare ids)."""
    prefix, sep, _ = model_id.partition("/")
    if not sep:
        return "kilo"
    return builtins.ALIASES.get(prefix, prefix)


def _positive(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 \
        else None


def _is_zero(pricing: Mapping[str, Any]) -> bool:
    try:
        return all(float(pricing.get(k) or 0) == 0 for k in ("prompt", "completion"))
    except (TypeError, ValueError):
        return False


def _from_hosted(m: Mapping[str, Any], bundled: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """Normalise one entry of a hosted `/models` list into a catalog entry (None if unusable)."""
    mid = m.get("id")
    if not isinstance(mid, str) or not mid or mid.startswith("~"):
        return None
    pricing = m.get("pricing") if isinstance(m.get("pricing"), dict) else {}
    entry: dict[str, Any] = dict(bundled or {})
    top = m.get("top_provider") if isinstance(m.get("top_provider"), dict) else {}
    context = _positive(m.get("context_length")) or _positive(top.get("context_length")) \
        or entry.get("context_length")
    entry.update({
        "id": mid, "name": m.get("name") or entry.get("name") or mid,
        "provider": provider_of(mid),
        "created": m.get("created") or entry.get("created") or 0,
        "description": m.get("description") or entry.get("description") or "",
        "context_length": context,
        # no output limit listed: only the context bounds the output (as in the bundled catalog)
        "max_completion_tokens": _positive(top.get("max_completion_tokens"))
        or entry.get("max_completion_tokens") or context,
        "architecture": m.get("architecture") or entry.get("architecture") or {},
        "pricing": {k: str(pricing.get(k) or "0") for k in _PRICE_KEYS},
        "supported_parameters": m.get("supported_parameters")
        or entry.get("supported_parameters") or [],
        "free": bool(m.get("isFree")) or mid.endswith(":free") or _is_zero(pricing),
    })
    return entry


class Catalog:
    """Models by id (routing maps a provider's other names, mistral/ = mistralai/, first)."""

    def __init__(self, models: Iterable[dict[str, Any]], *, generated_at: str = "") -> None:
        self.models: dict[str, dict[str, Any]] = {}
        for m in models:
            self.models[m["id"]] = m
        self.generated_at = generated_at
        self.version = 0
        self._dearest: dict[str, Any] = {}
        self._prices: dict[tuple[str, str], tuple[dict[str, Any], bool]] = {}
        self._prices_version = -1
        self._native: dict[str, Any] = {}
        self._local: dict[str, dict[str, dict[str, Any]]] = {}  # provider -> its served models

    def get(self, model_id: str) -> dict[str, Any] | None:
        return self.models.get(model_id)

    def base_entry(self, model_id: str) -> dict[str, Any] | None:
        """The entry for an id, or for the model it is a dated or variant form of
        (`openai/gpt-5.2-2025-12-11` -> `openai/gpt-5.2`, `x:thinking` -> `x`)."""
        seen = model_id
        while True:
            entry = self.models.get(seen)
            if entry is not None:
                return entry
            shorter = _VARIANT.sub("", seen)
            if shorter == seen or "/" not in shorter:
                return None
            seen = shorter

    def by_native_id(self, name: str) -> str | None:
        """The catalog id for a bare Anthropic id as Claude Code and the anthropic SDKs send it
        (`claude-sonnet-4-6`, `claude-sonnet-4-5-20250929`), through the catalog's native ids;
        an unknown `claude-…` id belongs to anthropic. None for anything else."""
        if "/" in name or not name.startswith("claude-"):
            return None
        if self._native.get("version") != self.version:
            index = {m["native_id"]: m["id"] for m in self.models.values()
                     if m.get("provider") == "anthropic" and m.get("native_id")}
            self._native = {"version": self.version, "index": index}
        index = self._native["index"]
        return index.get(name) or index.get(_DATE.sub("", name)) or f"anthropic/{name}"

    def pricing_for(self, model_id: str, provider: str) -> tuple[dict[str, Any], bool]:
        """(prices, exact) for costing a paid model: its own (or its base model's) when the
        catalog has them; else the dearest prompt and completion prices of its provider's
        models (of the whole catalog when the provider has none), so that an unpriced model is
        never counted as free against a limit."""
        if self._prices_version != self.version:
            self._prices_version, self._prices = self.version, {}
        found = self._prices.get((model_id, provider))
        if found is None:
            found = self._pricing_for(model_id, provider)
            if len(self._prices) < 10_000:  # bounded: model ids come from clients
                self._prices[(model_id, provider)] = found
        return found

    def _pricing_for(self, model_id: str, provider: str) -> tuple[dict[str, Any], bool]:
        entry = self.base_entry(model_id)
        if entry is not None and has_prices(entry.get("pricing")):
            return entry["pricing"], True
        key = (self.version, provider)
        if self._dearest.get("key") != key:
            self._dearest = {"key": key, "pricing": _dearest(self.models.values(), provider)}
        return self._dearest["pricing"], False

    def merge_hosted(self, hosted: Iterable[Mapping[str, Any]]) -> int:
        """Fold a hosted `/models` list in (keeps native ids and popular ranks); returns count."""
        n = 0
        for m in hosted:
            if not isinstance(m, Mapping):
                continue
            entry = _from_hosted(m, self.models.get(str(m.get("id"))))
            if entry is not None:
                self.models[entry["id"]] = entry
                n += 1
        if n:
            self.version += 1
        return n

    def set_local(self, provider: str, entries: Iterable[dict[str, Any]]) -> bool:
        """What a local server (ollama, lmstudio) serves now, replacing what it served before
        (none: it stopped answering). Bumps `version` and returns True when the set changed."""
        new = {e["id"]: e for e in entries}
        old = self._local.get(provider, {})
        if new == old:
            return False
        for mid in old.keys() - new.keys():
            self.models.pop(mid, None)
        self.models.update(new)
        self._local[provider] = new
        self.version += 1
        return True


# A date (-2025-12-11, -20251211, -1211), -latest, or an OpenRouter variant (:thinking, :nitro,
# ...; never :free, which is a different, free model) at the end of an id.
_DATE = re.compile(r"-\d{8}$")
_VARIANT = re.compile(r"(?:-\d{4}-\d{2}-\d{2}|-\d{8}|-\d{4}|-latest|:(?!free$)[a-z]+)$")


def _dearest(models: Iterable[Mapping[str, Any]], provider: str) -> dict[str, Any]:
    def top(ms: list[Mapping[str, Any]]) -> dict[str, Any]:
        out = {}
        for k in ("prompt", "completion"):
            out[k] = str(max((Decimal(str(m["pricing"].get(k) or 0)) for m in ms),
                             default=Decimal(0)))
        return out
    priced = [m for m in models if has_prices(m.get("pricing")) and not m.get("free")]
    own = [m for m in priced if m.get("provider") == provider]
    return top(own or priced)


def _bundled() -> dict[str, Any]:
    raw = resources.files("localgate").joinpath("data/catalog.json").read_bytes()
    doc: dict[str, Any] = json.loads(raw)
    return doc


def load(cache_file: Path | None = None) -> Catalog:
    """Bundled snapshot, then the cached hosted list on top when there is one. Blocking I/O."""
    doc = _bundled()
    cat = Catalog(doc.get("models", []), generated_at=doc.get("generated_at", ""))
    if cache_file is not None:
        try:
            cached = json.loads(cache_file.read_bytes())
            cat.merge_hosted(cached.get("data", []))
            cat.generated_at = cached.get("fetched_at", cat.generated_at)
        except (OSError, ValueError, AttributeError):
            pass  # no cache yet, or a damaged one: the bundled snapshot stands
    return cat


def write_cache(cache_file: Path, hosted: list[Any]) -> None:
    """Keep the hosted list for the next start (atomic replace). Blocking I/O."""
    from localgate.paths import write_private
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    write_private(cache_file, json.dumps({"fetched_at": stamp, "data": hosted}).encode())


def cache_age_s(cache_file: Path) -> float | None:
    try:
        return time.time() - cache_file.stat().st_mtime
    except OSError:
        return None


# ---- public shapes ------------------------------------------------------------------------------

def public_model(m: Mapping[str, Any], *, has_key: bool) -> dict[str, Any]:
    """One model in the hosted gateway's (OpenRouter's) `/models` shape plus Kilo's extras."""
    out: dict[str, Any] = {
        "id": m["id"], "object": "model", "name": m.get("name") or m["id"],
        "created": m.get("created") or 0, "description": m.get("description") or "",
        "context_length": m.get("context_length"),
        "architecture": m.get("architecture") or {},
        "top_provider": {"context_length": m.get("context_length"),
                         "max_completion_tokens": m.get("max_completion_tokens"),
                         "is_moderated": False},
        "pricing": {**_ZERO_PRICES, **(m.get("pricing") or {})},
        "supported_parameters": m.get("supported_parameters") or [],
        "owned_by": m.get("provider") or provider_of(m["id"]),
        "isFree": bool(m.get("free")),
        "hasUserByokAvailable": has_key,
    }
    if "preferred_index" in m:
        out["preferredIndex"] = m["preferred_index"]
    return out


def virtual_entry(name: str, target: Mapping[str, Any] | None, description: str) -> dict[str, Any]:
    """A catalog-like entry for a virtual model, priced and sized like the model it resolves to."""
    base = dict(target or {})
    return {**base, "id": name, "name": description, "provider": provider_of(name),
            "description": description, "created": base.get("created", 0),
            "pricing": base.get("pricing", dict(_ZERO_PRICES)),
            "free": bool(base.get("free", False))}
