#!/usr/bin/env python3
"""Build localgate's shipped model catalog (localgate/data/catalog.json).

Stdlib only.  Reads the reference snapshots in the data directory (default:
``../shared/data`` relative to the repository root) and writes a compact,
deterministic JSON file.  Every price, context length, output limit and native
id comes from those files; this script only holds ids, names of sources and
rules.  Re-running it on the same data gives identical bytes.

    .venv/bin/python scripts/build_catalog.py [--data DIR] [--out FILE]

Sources (see the data README):
  * openrouter-models-2026-08-22.json  primary (OpenRouter /api/v1/models)
  * openrouter-models-2026-08-19.json  fallback for ids the primary lacks
  * litellm-model-prices-2026-11-12.json  provider-native ids and prices
  * models-dev-2026-07-02.tar.gz  models.dev TOML (direct providers, Kilo listing)
"""

from __future__ import annotations

import argparse
import json
import posixpath
import sys
import tarfile
import tomllib
from collections import Counter, defaultdict
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATA = REPO_ROOT.parent / "shared" / "data"
DEFAULT_OUT = REPO_ROOT / "localgate" / "data" / "catalog.json"

OR_PRIMARY = "openrouter-models-2026-08-22.json"
OR_FALLBACK = "openrouter-models-2026-08-19.json"
LITELLM = "litellm-model-prices-2026-11-12.json"
MODELS_DEV = "models-dev-2026-07-02.tar.gz"

# Seeds (shared/seeds/models-and-providers.txt): ids only, no numbers.
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
    "minimax/minimax-m2.5:free",  # kilo-auto/free target
]
SEED_AUTO_TARGETS = [
    "anthropic/claude-opus-4.6",
    "anthropic/claude-sonnet-4.6",
    "moonshotai/kimi-k2.5",
    "minimax/minimax-m2.7",
    "minimax/minimax-m2.5:free",
]

# The hosted gateway's own free models, as the hosted service defines them: its public source,
# Kilo-Org/cloud, lists them as `kiloFreeModels` in src/lib/models.ts (@046bbeaa), each a
# `KiloFreeModel` whose context_length / max_completion_tokens its /models listing publishes
# (src/lib/providers/kilo-free-model.ts, convertFromKiloModel):
#   corethink:free              src/lib/providers/corethink.ts (@57b3681d)
#   giga-potato                 src/lib/providers/gigapotato.ts (read in the fork
#                               dennismeister93/cloud @bc8179c7; a later revision has the same
#                               limits and moves reasoning to a separate giga-potato-thinking)
#   minimax/minimax-m2.1:free,
#   minimax/minimax-m2.5:free   src/lib/providers/minimax.ts (@10811b7c)
#   z-ai/glm-5:free             src/lib/providers/zai.ts (@18ac04bb)
# Only the limits (and, for the two no snapshot describes, the display name and the vision
# flag) are taken; prices stay zero. The listing's fixed `created` for these is 1756238927.
KILO_FREE = {
    "corethink:free": {"context_length": 78_000, "max_completion_tokens": 8_192,
                       "name": "CoreThink (free)", "vision": False},
    "giga-potato": {"context_length": 256_000, "max_completion_tokens": 32_000,
                    "name": "Giga Potato (free)", "vision": True},
    "minimax/minimax-m2.1:free": {"context_length": 204_800, "max_completion_tokens": 131_072},
    "minimax/minimax-m2.5:free": {"context_length": 204_800, "max_completion_tokens": 131_072},
    "z-ai/glm-5:free": {"context_length": 202_800, "max_completion_tokens": 131_072},
}
KILO_FREE_CREATED = 1756238927
CONTEXT_STANDS_IN = "no published output limit: its context length"
KILO_FREE_SOURCE = "Kilo-Org/cloud kiloFreeModels"

# id prefix -> localgate provider slug (anything else: the prefix itself).
PREFIX_TO_PROVIDER = {"mistralai": "mistral"}
PROVIDER_TO_PREFIX = {v: k for k, v in PREFIX_TO_PROVIDER.items()}

# Direct providers: localgate slug -> (litellm_provider, models.dev provider dir).
DIRECT = {
    "anthropic": ("anthropic", "anthropic"),
    "openai": ("openai", "openai"),
    "google": ("gemini", "google"),
    "x-ai": ("xai", "xai"),
    "mistral": ("mistral", "mistral"),
    "moonshotai": ("moonshot", "moonshotai"),
    "minimax": ("minimax", "minimax"),
    "z-ai": ("zai", "zai"),
    "deepseek": ("deepseek", "deepseek"),
    "groq": ("groq", "groq"),
}
DISPLAY_FALLBACK = {"groq": "Groq", "kilo": "Kilo"}
# models.dev gateway listings that use OpenRouter-style ids, most trusted first.
GATEWAY_LISTINGS = ["kilo", "openrouter", "vercel"]
LITELLM_CHAT_MODES = ("chat", "responses")
MODALITY_ORDER = ["text", "image", "file", "audio", "video"]
PRICE_KEYS = ["prompt", "completion", "input_cache_read", "input_cache_write", "request"]
ZERO = Decimal(0)
MILLION = Decimal(1_000_000)

warnings: list[str] = []


def warn(msg: str) -> None:
    warnings.append(msg)
    print(f"WARNING: {msg}", file=sys.stderr)


# --------------------------------------------------------------------------- helpers


def fmt_price(value) -> str:
    """Decimal string without exponent or float artifacts; "0" for zero/None."""
    if value is None or value == "":
        return "0"
    d = value if isinstance(value, Decimal) else Decimal(str(value))
    if d == 0:
        return "0"
    return format(d.normalize(), "f")


def norm(s: str) -> str:
    return s.lower().replace(".", "-")


def provider_of(model_id: str) -> str:
    if "/" not in model_id:
        return "kilo"
    prefix = model_id.split("/", 1)[0]
    return PREFIX_TO_PROVIDER.get(prefix, prefix)


def gateway_prefix(provider: str) -> str:
    return PROVIDER_TO_PREFIX.get(provider, provider)


def base_id(model_id: str) -> str:
    return model_id.split(":", 1)[0]


def date_to_unix(s) -> int:
    if not s:
        return 0
    s = str(s)
    for fmt in ("%Y-%m-%d", "%Y-%m"):
        try:
            dt = datetime.strptime(s, fmt).replace(tzinfo=timezone.utc)
            return int(dt.timestamp())
        except ValueError:
            continue
    return 0


def modality_list(items) -> list[str]:
    seen = []
    for m in items or []:
        m = "file" if m == "pdf" else m
        if m not in seen:
            seen.append(m)
    return sorted(seen, key=lambda m: (MODALITY_ORDER.index(m) if m in MODALITY_ORDER else 99, m))


def architecture(inputs, outputs, tokenizer) -> dict:
    inputs = modality_list(inputs) or ["text"]
    outputs = modality_list(outputs) or ["text"]
    return {
        "modality": "+".join(inputs) + "->" + "+".join(outputs),
        "input_modalities": inputs,
        "output_modalities": outputs,
        "tokenizer": tokenizer,
    }


def titleize(native: str) -> str:
    leaf = native.rsplit("/", 1)[-1]
    return " ".join(w.upper() if w.lower() in ("gpt", "oss", "glm") else w.capitalize() for w in leaf.split("-"))


# --------------------------------------------------------------------------- sources


class ModelsDev:
    """Lazy reader for the models.dev tarball (no extraction to disk)."""

    def __init__(self, path: Path):
        self.tar = tarfile.open(path)
        self.members = {}
        self.links = {}
        for m in self.tar.getmembers():
            name = m.name.split("/", 1)[1] if "/" in m.name else m.name
            if m.isfile():
                self.members[name] = m
            elif m.issym():
                target = posixpath.normpath(posixpath.join(posixpath.dirname(m.name), m.linkname))
                self.links[name] = target.split("/", 1)[1] if "/" in target else target
        self.cache: dict[str, dict | None] = {}

    def names(self):
        return sorted(set(self.members) | set(self.links))

    def raw(self, name: str):
        if name in self.cache:
            return self.cache[name]
        real = name
        for _ in range(8):
            if real in self.links:
                real = self.links[real]
        member = self.members.get(real)
        data = None
        if member is not None:
            data = tomllib.loads(self.tar.extractfile(member).read().decode("utf-8"), parse_float=Decimal)
        self.cache[name] = data
        return data

    def model(self, name: str):
        """A model TOML with its base_model facts merged in (tables merged key by key)."""
        data = self.raw(name)
        if data is None:
            return None
        base_name = data.get("base_model")
        if base_name:
            base = self.model(f"models/{base_name}.toml") or {}
            merged = dict(base)
            for k, v in data.items():
                if isinstance(v, dict) and isinstance(merged.get(k), dict):
                    merged[k] = {**merged[k], **v}
                else:
                    merged[k] = v
            data = merged
        return data

    def provider_models(self, provider_dir: str) -> dict[str, str]:
        """native id -> member name for providers/<p>/models/**.toml"""
        prefix = f"providers/{provider_dir}/models/"
        return {
            n[len(prefix):-5]: n
            for n in self.names()
            if n.startswith(prefix) and n.endswith(".toml")
        }


def load_openrouter(path: Path):
    with path.open(encoding="utf-8") as f:
        doc = json.load(f)
    return doc.get("fetchedAt"), doc["data"]


# --------------------------------------------------------------------------- entries


def entry_from_openrouter(m: dict) -> dict:
    pricing = m.get("pricing") or {}
    tp = m.get("top_provider") or {}
    arch = m.get("architecture") or {}
    return {
        "id": m["id"],
        "name": m.get("name") or m["id"],
        "provider": provider_of(m["id"]),
        "created": int(m.get("created") or 0),
        "description": m.get("description") or "",
        "context_length": int(m.get("context_length") or tp.get("context_length") or 0),
        "max_completion_tokens": tp.get("max_completion_tokens"),
        "architecture": {
            "modality": arch.get("modality"),
            "input_modalities": list(arch.get("input_modalities") or []),
            "output_modalities": list(arch.get("output_modalities") or []),
            "tokenizer": arch.get("tokenizer") or "Other",
        },
        "pricing": {k: fmt_price(pricing.get(k)) for k in PRICE_KEYS},
        "supported_parameters": list(m.get("supported_parameters") or []),
        "free": m["id"].endswith(":free"),
    }


def params_from_litellm(e: dict) -> list[str]:
    p = {"max_tokens", "temperature", "top_p", "stop"}
    if e.get("supports_function_calling") or e.get("supports_tool_choice"):
        p |= {"tools", "tool_choice"}
    if e.get("supports_reasoning"):
        p |= {"reasoning", "include_reasoning"}
    if e.get("supports_response_schema"):
        p |= {"response_format", "structured_outputs"}
    return sorted(p)


def params_from_modelsdev(t: dict) -> list[str]:
    p = {"max_tokens", "stop"}
    if t.get("temperature"):
        p |= {"temperature", "top_p"}
    if t.get("tool_call"):
        p |= {"tools", "tool_choice"}
    if t.get("reasoning"):
        p |= {"reasoning", "include_reasoning"}
    if t.get("structured_output"):
        p |= {"response_format", "structured_outputs"}
    return sorted(p)


def litellm_inputs(e: dict) -> list[str]:
    mods = list(e.get("supported_modalities") or ["text"])
    if e.get("supports_vision"):
        mods.append("image")
    if e.get("supports_pdf_input"):
        mods.append("file")
    if e.get("supports_audio_input"):
        mods.append("audio")
    if e.get("supports_video_input"):
        mods.append("video")
    return mods


def pricing_from_litellm(e: dict) -> dict:
    return {
        "prompt": fmt_price(e.get("input_cost_per_token")),
        "completion": fmt_price(e.get("output_cost_per_token")),
        "input_cache_read": fmt_price(e.get("cache_read_input_token_cost")),
        "input_cache_write": fmt_price(e.get("cache_creation_input_token_cost")),
        "request": fmt_price(e.get("input_cost_per_request")),
    }


def pricing_from_modelsdev(t: dict) -> dict:
    cost = t.get("cost") or {}

    def per_token(*keys):
        for k in keys:
            v = cost.get(k)
            if v is not None:
                return Decimal(v) / MILLION
        return None

    return {
        "prompt": fmt_price(per_token("input")),
        "completion": fmt_price(per_token("output")),
        "input_cache_read": fmt_price(per_token("cache_read", "cached_input")),
        "input_cache_write": fmt_price(per_token("cache_write", "cached_write")),
        "request": "0",
    }


def zero_pricing() -> dict:
    return {k: "0" for k in PRICE_KEYS}


def kilo_free_entry(model_id: str) -> dict:
    """An entry for one of the hosted gateway's own free models that no snapshot describes,
    shaped as the hosted listing shows it (convertFromKiloModel: tools, text[+image] in)."""
    k = KILO_FREE[model_id]
    inputs = ["text", "image"] if k["vision"] else ["text"]
    return {
        "id": model_id,
        "name": k["name"],
        "provider": provider_of(model_id),
        "created": KILO_FREE_CREATED,
        "description": f"{k['name'][:-len(' (free)')]}: one of the hosted Kilo gateway's own "
                       "models, free for a limited time; prompts may be logged by its provider.",
        "context_length": k["context_length"],
        "max_completion_tokens": k["max_completion_tokens"],
        "architecture": architecture(inputs, ["text"], "Other"),
        "pricing": zero_pricing(),
        "supported_parameters": ["max_tokens", "temperature", "tools"],
        "free": True,
    }


# --------------------------------------------------------------------------- build


class Builder:
    def __init__(self, data_dir: Path):
        self.data_dir = data_dir
        self.used: list[str] = []
        self.source_of: dict[str, str] = {}

        fetched, primary = load_openrouter(data_dir / OR_PRIMARY)
        self.generated_at = fetched
        self.use(OR_PRIMARY)
        self.or_primary = {m["id"]: m for m in primary}
        self.or_fallback = {}
        fb = data_dir / OR_FALLBACK
        if fb.exists():
            _, data = load_openrouter(fb)
            self.or_fallback = {m["id"]: m for m in data}

        with (data_dir / LITELLM).open(encoding="utf-8") as f:
            self.litellm = json.load(f, parse_float=Decimal)
        self.litellm.pop("sample_spec", None)

        self.md = ModelsDev(data_dir / MODELS_DEV)

        # Display names and tokenizers by id prefix, learned from the primary snapshot.
        disp = defaultdict(Counter)
        tok = defaultdict(Counter)
        for m in primary:
            if "/" not in m["id"] or m["id"].startswith("~"):
                continue
            prefix = m["id"].split("/", 1)[0]
            name = m.get("name") or ""
            if ": " in name:
                disp[prefix][name.split(": ", 1)[0]] += 1
            tok[prefix][(m.get("architecture") or {}).get("tokenizer") or "Other"] += 1
        pick = lambda c: sorted(c.items(), key=lambda kv: (-kv[1], kv[0]))[0][0]
        self.display = {p: pick(c) for p, c in disp.items()}
        self.tokenizer = {p: pick(c) for p, c in tok.items()}

        # Native-id indexes per direct provider: norm -> {native: [source labels]}.
        self.native_index: dict[str, dict[str, dict[str, list[str]]]] = {}
        self.litellm_native: dict[str, dict[str, tuple[str, dict]]] = {}
        self.md_native: dict[str, dict[str, str]] = {}
        for prov, (lp, mp) in DIRECT.items():
            idx: dict[str, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
            lit = {}
            for key in sorted(self.litellm):
                e = self.litellm[key]
                if e.get("litellm_provider") != lp or e.get("mode") not in LITELLM_CHAT_MODES:
                    continue
                native = key[len(lp) + 1:] if key.startswith(lp + "/") else key
                # Prefer the bare key over a prefixed duplicate ("deepseek-chat" vs "deepseek/deepseek-chat").
                if native not in lit or key == native:
                    lit[native] = (key, e)
                idx[norm(native)][native].append("litellm")
            mdm = self.md.provider_models(mp)
            for native in mdm:
                idx[norm(native)][native].append("models.dev")
            self.native_index[prov] = idx
            self.litellm_native[prov] = lit
            self.md_native[prov] = mdm

    def use(self, name: str) -> None:
        if name not in self.used:
            self.used.append(name)

    # ---- lookups

    def native_for(self, provider: str, suffix: str):
        """Unique normalised-equal native id for a gateway id suffix, else None."""
        idx = self.native_index.get(provider)
        if not idx:
            return None
        cands = idx.get(norm(suffix))
        if not cands:
            return None
        if len(cands) == 1:
            return next(iter(cands))
        if suffix in cands:
            return suffix
        return None

    def display_for(self, provider: str) -> str:
        prefix = gateway_prefix(provider)
        return self.display.get(prefix) or DISPLAY_FALLBACK.get(provider) or prefix

    def openrouter_model(self, model_id: str):
        if model_id in self.or_primary:
            return self.or_primary[model_id], OR_PRIMARY
        if model_id in self.or_fallback:
            self.use(OR_FALLBACK)
            return self.or_fallback[model_id], OR_FALLBACK
        return None, None

    def gateway_listing(self, model_id: str):
        for gw in GATEWAY_LISTINGS:
            name = f"providers/{gw}/models/{model_id}.toml"
            t = self.md.model(name)
            if t is not None:
                return t, f"models.dev providers/{gw}"
        return None, None

    def release_facts(self, model_id: str, provider: str, native: str | None):
        """models.dev facts (release date, name, modalities) for a model, any listing."""
        org = model_id.split("/", 1)[0] if "/" in model_id else ""
        cands = []
        if native:
            if provider in DIRECT:
                cands.append(f"providers/{DIRECT[provider][1]}/models/{native}.toml")
            cands.append(f"models/{org}/{native}.toml")
        cands += [f"providers/{gw}/models/{model_id}.toml" for gw in GATEWAY_LISTINGS]
        trusted = len(cands)
        cands += sorted(
            n for n in self.md.names()
            if n.startswith("providers/") and n.endswith(f"/models/{model_id}.toml")
        )
        for i, n in enumerate(cands):
            t = self.md.model(n)
            if t is not None:
                return t, i < trusted
        return None, False

    # ---- builders for models the primary snapshot lacks

    def from_litellm_direct(self, model_id: str, provider: str, native: str) -> dict:
        key, e = self.litellm_native[provider][native]
        self.use(LITELLM)
        # models.dev facts: release date and modalities from any listing of the model; its
        # display name only from the provider's own, the model-facts or a gateway listing.
        facts, trusted = self.release_facts(model_id, provider, native)
        facts = facts or {}
        if facts:
            self.use(MODELS_DEV)
        inputs = litellm_inputs(e)
        if facts.get("modalities"):
            inputs = list(inputs) + list(facts["modalities"].get("input") or [])
        name = (facts.get("name") if trusted else None) or titleize(native)
        dep = e.get("deprecation_date")
        desc = (
            f"{self.display_for(provider)} {name} (provider id {native}). "
            f"Catalog entry built from LiteLLM's {e.get('litellm_provider')} pricing."
        )
        if dep:
            desc += f" LiteLLM lists a deprecation date of {dep}."
        return {
            "id": model_id,
            "name": f"{self.display_for(provider)}: {name}",
            "provider": provider,
            "native_id": native,
            "created": date_to_unix(facts.get("release_date")),
            "description": desc,
            "context_length": int(e.get("max_input_tokens") or e.get("max_tokens") or 0),
            "max_completion_tokens": int(e["max_output_tokens"]) if e.get("max_output_tokens") else None,
            "architecture": architecture(
                inputs, e.get("supported_output_modalities") or ["text"],
                self.tokenizer.get(gateway_prefix(provider), "Other"),
            ),
            "pricing": pricing_from_litellm(e),
            "supported_parameters": params_from_litellm(e),
            "free": False,
        }

    def from_modelsdev(self, model_id: str, provider: str, t: dict, label: str, native: str | None,
                       tokenizer: str | None = None) -> dict:
        self.use(MODELS_DEV)
        limit = t.get("limit") or {}
        mods = t.get("modalities") or {}
        name = t.get("name") or titleize(model_id)
        if ": " not in name:
            name = f"{self.display_for(provider)}: {name}"
        desc = f"{name.split(': ', 1)[1]} from {self.display_for(provider)}. Catalog entry built from {label}."
        if t.get("status"):
            desc += f" models.dev status: {t['status']}."
        entry = {
            "id": model_id,
            "name": name,
            "provider": provider,
            "created": date_to_unix(t.get("release_date")),
            "description": desc,
            "context_length": int(limit.get("context") or limit.get("input") or 0),
            "max_completion_tokens": int(limit["output"]) if limit.get("output") else None,
            "architecture": architecture(
                mods.get("input"), mods.get("output"),
                tokenizer or self.tokenizer.get(gateway_prefix(provider) if "/" in model_id else "", "Other"),
            ),
            "pricing": pricing_from_modelsdev(t),
            "supported_parameters": params_from_modelsdev(t),
            "free": False,
        }
        if native:
            entry["native_id"] = native
        return entry

    def build_missing(self, model_id: str):
        """Build an entry for an id the primary snapshot lacks; returns (entry, source label)."""
        m, src = self.openrouter_model(model_id)
        if m is not None:
            return entry_from_openrouter(m), src
        provider = provider_of(model_id)
        if provider in DIRECT and "/" in model_id:
            suffix = model_id.split("/", 1)[1]
            native = self.native_for(provider, suffix)
            if native and native in self.litellm_native[provider]:
                key, _ = self.litellm_native[provider][native]
                return self.from_litellm_direct(model_id, provider, native), f"litellm {key}"
            if native and native in self.md_native[provider]:
                mp = DIRECT[provider][1]
                t = self.md.model(self.md_native[provider][native])
                label = f"models.dev providers/{mp}/models/{native}"
                return self.from_modelsdev(model_id, provider, t, label, native), label
        t, label = self.gateway_listing(model_id)
        if t is not None:
            return self.from_modelsdev(model_id, provider, t, f"{label} ({model_id})", None), label
        return None, None

    def free_variant(self, free_id: str):
        """A ':free' (or prefix-less Kilo) model: zero prices, data from its paid sibling."""
        sibling = base_id(free_id)
        entry, src = (None, None)
        if "/" in sibling:
            if sibling in self.or_primary:
                entry, src = entry_from_openrouter(self.or_primary[sibling]), OR_PRIMARY
            else:
                entry, src = self.build_missing(sibling)
        if entry is None:
            t, label = self.gateway_listing(free_id)
            if t is not None:
                entry, src = self.from_modelsdev(free_id, provider_of(free_id), t, label, None), label
        if entry is None:
            if free_id in KILO_FREE:
                return kilo_free_entry(free_id), KILO_FREE_SOURCE
            raise SystemExit(f"{free_id}: in no data source and not one of the hosted gateway's "
                             "own free models (KILO_FREE); add its published limits there")
        entry = dict(entry)
        entry.pop("native_id", None)
        entry["id"] = free_id
        entry["provider"] = provider_of(free_id)
        if not entry["name"].endswith("(free)"):
            entry["name"] = f"{entry['name']} (free)"
        entry["pricing"] = zero_pricing()
        entry["free"] = True
        return entry, f"sibling {sibling} from {src}"

    # ---- groq

    def groq_models(self) -> dict[str, tuple[dict, str]]:
        out = {}
        ref = self.generated_at[:10]
        lit = self.litellm_native["groq"]
        for native in sorted(lit):
            key, e = lit[native]
            if e.get("mode") != "chat" or "guard" in native:
                continue
            dep = e.get("deprecation_date")
            if dep and str(dep) <= ref:
                continue
            if e.get("input_cost_per_token") is None:
                continue
            out[native] = ("litellm", key)
        for native, name in sorted(self.md_native["groq"].items()):
            if native in out or "guard" in native:
                continue
            t = self.md.model(name) or {}
            mods = t.get("modalities") or {}
            if "text" not in (mods.get("input") or []) or (mods.get("output") or []) != ["text"]:
                continue
            if t.get("status") == "deprecated" or not (t.get("cost") or {}).get("input"):
                continue
            out[native] = ("models.dev", name)
        result = {}
        for native, (kind, ref_name) in out.items():
            gid = f"groq/{native}"
            sib = self.or_primary.get(native)
            if kind == "litellm":
                entry = self.from_litellm_direct(gid, "groq", native)
                label = f"litellm {ref_name}"
            else:
                t = self.md.model(ref_name)
                tokenizer = None
                if sib is None and "/" in native:
                    tokenizer = self.tokenizer.get(native.split("/", 1)[0])
                entry = self.from_modelsdev(gid, "groq", t, f"models.dev {ref_name[:-5]}", native,
                                            tokenizer=tokenizer or "Other")
                label = f"models.dev {ref_name[:-5]}"
            if sib is not None:
                # The model itself is known to OpenRouter: reuse its descriptive fields.
                se = entry_from_openrouter(sib)
                entry["created"] = entry["created"] or se["created"]
                entry["architecture"] = se["architecture"]
                entry["description"] = f"Served directly by Groq (provider id {native}). " + se["description"]
                model_name = se["name"].split(": ", 1)[-1]
                entry["name"] = f"{self.display_for('groq')}: {model_name}"
            result[gid] = (entry, label)
        return result

    # ---- main

    def build(self):
        models: dict[str, dict] = {}
        origin: dict[str, str] = {}
        skipped = Counter()

        for mid, m in self.or_primary.items():
            if mid.startswith("~"):
                skipped["alias (~)"] += 1
                continue
            if "text" not in ((m.get("architecture") or {}).get("output_modalities") or []):
                skipped["no text output"] += 1
                continue
            p = m.get("pricing") or {}
            if any(Decimal(v) < 0 for k, v in p.items() if k in PRICE_KEYS and v):
                # OpenRouter's "-1": price decided per request by a router; no usable per-token price.
                skipped["variable price (-1)"] += 1
                print(f"note: skipped {mid} (variable router pricing -1)")
                continue
            models[mid] = entry_from_openrouter(m)
            origin[mid] = OR_PRIMARY

        wanted = list(dict.fromkeys(SEED_POPULAR + SEED_AUTO_TARGETS + SEED_FREE))
        for mid in wanted:
            if mid in models:
                continue
            if mid.endswith(":free") or "/" not in mid:
                entry, src = self.free_variant(mid)
            else:
                entry, src = self.build_missing(mid)
                if entry is None:
                    warn(f"{mid}: in no data source; not included")
                    continue
            models[mid] = entry
            origin[mid] = src

        for gid, (entry, label) in self.groq_models().items():
            if gid not in models:
                models[gid] = entry
                origin[gid] = label

        # Besides ":free" ids: the hosted gateway's own models (provider kilo) and zero-priced
        # routers named "free" (openrouter/free).  Other zero-priced ids (e.g. google/lyria-*,
        # billed outside per-token prices) are not marked free.
        for mid, e in models.items():
            if e["free"] or any(Decimal(v) != 0 for v in e["pricing"].values()):
                continue
            if e["provider"] == "kilo" or mid.rsplit("/", 1)[-1] == "free":
                e["free"] = True
                print(f"note: {mid} marked free (zero-priced {'Kilo model' if e['provider'] == 'kilo' else 'free router'})")
            else:
                print(f"note: {mid} has all-zero prices but is not marked free")

        # Native ids for direct providers.
        matched = Counter()
        eligible = Counter()
        for mid, e in models.items():
            prov = e["provider"]
            if ":" in mid:
                e.pop("native_id", None)  # variants (:free, :batch, ...) are not provider ids
                continue
            if prov not in DIRECT or "/" not in mid:
                continue
            eligible[prov] += 1
            if "native_id" not in e:
                native = self.native_for(prov, mid.split("/", 1)[1])
                if native:
                    e["native_id"] = native
            if "native_id" in e:
                matched[prov] += 1
                srcs = self.native_index[prov].get(norm(e["native_id"]), {}).get(e["native_id"], [])
                if "litellm" in srcs:
                    self.use(LITELLM)
                if "models.dev" in srcs:
                    self.use(MODELS_DEV)

        for i, mid in enumerate(SEED_POPULAR):
            if mid in models:
                models[mid]["preferred_index"] = i

        self.limits_from = self.fill_limits(models)
        return models, origin, skipped, matched, eligible

    # ---- limits: every model gets a positive context length and maximum output

    def published_output(self, model_id: str, e: dict):
        """(max output tokens, source) that the data publishes for a model whose primary
        snapshot entry has none, or (None, None): the same id in the older OpenRouter snapshot,
        then the provider's own listing (models.dev, then LiteLLM) by native id, then the
        model a `:variant` id is a variant of, in either OpenRouter snapshot."""
        m = self.or_fallback.get(model_id)
        out = ((m or {}).get("top_provider") or {}).get("max_completion_tokens")
        if out:
            self.use(OR_FALLBACK)
            return int(out), OR_FALLBACK
        native, prov = e.get("native_id"), e["provider"]
        if native and prov in DIRECT:
            name = self.md_native[prov].get(native)
            out = ((self.md.model(name) or {}).get("limit") or {}).get("output") if name else None
            if out:
                self.use(MODELS_DEV)
                return int(out), f"models.dev providers/{DIRECT[prov][1]}/models/{native}"
            key, lit = self.litellm_native[prov].get(native, (None, {}))
            if lit.get("max_output_tokens"):
                self.use(LITELLM)
                return int(lit["max_output_tokens"]), f"litellm {key}"
        sibling = base_id(model_id)
        if sibling != model_id:
            for snap, label in ((self.or_primary, OR_PRIMARY), (self.or_fallback, OR_FALLBACK)):
                top = (snap.get(sibling) or {}).get("top_provider") or {}
                out = top.get("max_completion_tokens")
                if out:
                    return int(out), f"{sibling} in {label}"
        return None, None

    def fill_limits(self, models: dict) -> dict[str, str]:
        """The hosted gateway's own free models take the limits it publishes (KILO_FREE); any
        other model without a maximum output takes a published one, or else its context length
        (OpenRouter lists such models with no output limit: only the context bounds the output).
        Returns {id: where its maximum output came from} for the filled ones."""
        filled = {}
        for mid, e in models.items():
            if mid in KILO_FREE:
                e["context_length"] = KILO_FREE[mid]["context_length"]
                e["max_completion_tokens"] = KILO_FREE[mid]["max_completion_tokens"]
                filled[mid] = KILO_FREE_SOURCE
                continue
            if e.get("max_completion_tokens"):
                continue
            out, src = self.published_output(mid, e)
            if out is None:
                out, src = e["context_length"], CONTEXT_STANDS_IN
            e["max_completion_tokens"] = min(out, e["context_length"]) or out
            filled[mid] = src
        return filled


def validate(models: dict) -> None:
    for mid, e in models.items():
        for k in PRICE_KEYS:
            if Decimal(e["pricing"][k]) < 0:
                raise SystemExit(f"negative price in {mid}: {k}")
        if e["free"] and any(Decimal(v) != 0 for v in e["pricing"].values()):
            raise SystemExit(f"free model with a price: {mid}")
        for k in ("context_length", "max_completion_tokens"):
            if not isinstance(e.get(k), int) or e[k] <= 0:
                raise SystemExit(f"{mid}: {k} must be a positive integer, got {e.get(k)!r}")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA, help=f"data directory (default {DEFAULT_DATA})")
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"output file (default {DEFAULT_OUT})")
    args = ap.parse_args(argv)

    b = Builder(args.data)
    models, origin, skipped, matched, eligible = b.build()
    validate(models)

    sources = [OR_PRIMARY] + sorted(s for s in b.used if s != OR_PRIMARY)
    doc = {
        "generated_at": b.generated_at,
        "sources": sources,
        "models": [models[k] for k in sorted(models)],
    }
    text = json.dumps(doc, separators=(",", ":"), sort_keys=True, ensure_ascii=False)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_bytes(text.encode("utf-8"))

    # ---- summary
    per_provider = Counter(e["provider"] for e in models.values())
    print(f"wrote {args.out} ({len(text.encode('utf-8'))} bytes), {len(models)} models, generated_at {b.generated_at}")
    print("sources: " + ", ".join(sources))
    print("skipped from the primary snapshot: " + (", ".join(f"{k} {v}" for k, v in sorted(skipped.items())) or "none"))
    print("models per provider: " + ", ".join(f"{p} {n}" for p, n in sorted(per_provider.items(), key=lambda kv: (-kv[1], kv[0]))))
    print("native ids matched (of eligible non-variant ids): " + ", ".join(
        f"{p} {matched[p]}/{eligible[p]}" for p in DIRECT))
    print("seed popular models:")
    for i, mid in enumerate(SEED_POPULAR):
        print(f"  [{i}] {mid}: {origin.get(mid, 'MISSING')}")
    print("seed free / auto-target models:")
    for mid in dict.fromkeys(SEED_FREE + SEED_AUTO_TARGETS):
        if mid not in SEED_POPULAR:
            print(f"  {mid}: {origin.get(mid, 'MISSING')}")
    by_source = Counter(CONTEXT_STANDS_IN if v == CONTEXT_STANDS_IN else v.split(" ", 1)[0]
                        for v in b.limits_from.values())
    print("maximum output filled in: "
          + ", ".join(f"{k} {n}" for k, n in sorted(by_source.items())))
    print(f"  {CONTEXT_STANDS_IN}: " + ", ".join(
        sorted(m for m, v in b.limits_from.items() if v == CONTEXT_STANDS_IN)))
    groq = sorted(m for m in models if models[m]["provider"] == "groq")
    print("groq models: " + ", ".join(f"{m} ({origin[m]})" for m in groq))
    if warnings:
        print(f"{len(warnings)} warning(s):")
        for w in warnings:
            print(f"  - {w}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
