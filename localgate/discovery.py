"""Local model servers: which models Ollama and LM Studio serve right now, as catalog entries.

Parsing is pure (`ollama_models`, `ollama_facts`, `lmstudio_entries`, `local_entry`); `probe()`
asks one server through localgate.upstream's small JSON calls; `LocalWatch` keeps the catalog
in step with what answers, saying so in one info line when a server appears or goes away.
Imports config types, errors and upstream only: never the server, the gateway or the listing.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping
from datetime import datetime
from typing import Any

from localgate.config import Provider, Settings
from localgate.errors import UpstreamError
from localgate.upstream import get_json, post_json, short_session

log = logging.getLogger("localgate")

OLLAMA, LMSTUDIO = "ollama", "lmstudio"
# Where a server does not say a model's context: the window Ollama (under 24 GiB of VRAM, its
# docs/context-length) and LM Studio load a model with by default.
FALLBACK_CONTEXT = 4096
_ACCEPT = {"Accept": "application/json"}
_BASE_PARAMS = ["max_tokens", "temperature", "top_p", "stop", "seed"]
_TOOLS = ["tools", "tool_choice"]
_SHOW_AT_ONCE = 4  # /api/show calls in parallel: one small local server, be gentle


def native_root(base_url: str) -> str:
    """`http://localhost:11434/v1` -> `http://localhost:11434` (the native API's root)."""
    base = base_url.rstrip("/")
    return base[: -len("/v1")] if base.endswith("/v1") else base


def local_entry(provider: str, display: str, name: str, *, context: int | None,
                created: int = 0, inputs: Iterable[str] = ("text",),
                outputs: Iterable[str] = ("text",), params: Iterable[str] = (),
                about: str = "") -> dict[str, Any]:
    """A free catalog entry `provider/name`; its context where the server said it (else
    FALLBACK_CONTEXT), and that as its maximum output too (no local server publishes one)."""
    ctx = context if isinstance(context, int) and context > 0 else FALLBACK_CONTEXT
    ins, outs = list(inputs), list(outputs)
    return {
        "id": f"{provider}/{name}", "name": f"{display}: {name}", "provider": provider,
        "created": created, "description": f"{name}, served by your {display}{about}.",
        "context_length": ctx, "max_completion_tokens": ctx,
        "architecture": {"modality": "+".join(ins) + "->" + "+".join(outs),
                         "input_modalities": ins, "output_modalities": outs,
                         "tokenizer": "Other"},
        "pricing": {k: "0" for k in ("prompt", "completion", "input_cache_read",
                                     "input_cache_write", "request")},
        "supported_parameters": list(params), "free": True,
    }


# ---- Ollama: GET /api/tags lists the models, POST /api/show tells one model's facts -------------

def ollama_models(tags: object) -> list[dict[str, Any]] | None:
    """The models of an `/api/tags` answer (name, digest, created, details); None when the
    answer is not Ollama's."""
    models = tags.get("models") if isinstance(tags, Mapping) else None
    if not isinstance(models, list):
        return None
    out = []
    for m in models:
        name = (m.get("name") or m.get("model")) if isinstance(m, Mapping) else None
        if isinstance(name, str) and name.strip():
            details = m.get("details")
            out.append({"name": name.strip(), "digest": str(m.get("digest") or ""),
                        "created": _unix(m.get("modified_at")),
                        "details": details if isinstance(details, Mapping) else {}})
    return out


def ollama_facts(show: object) -> dict[str, Any]:
    """From an `/api/show` answer: the context length (`model_info.<arch>.context_length`) and
    the capabilities (`completion`, `tools`, `vision`, `embedding`, `thinking`) when given."""
    if not isinstance(show, Mapping):
        return {}
    got = show.get("model_info")
    info: Mapping[str, Any] = got if isinstance(got, Mapping) else {}
    arch = info.get("general.architecture")
    keys = [f"{arch}.context_length"] if isinstance(arch, str) else []
    keys += sorted(k for k in info if isinstance(k, str) and k.endswith(".context_length"))
    context = next((info[k] for k in keys if _count(info.get(k))), None)
    caps = show.get("capabilities")
    return {"context": context,
            "capabilities": [c for c in caps if isinstance(c, str)]
            if isinstance(caps, list) else None}


def ollama_entry(model: Mapping[str, Any], facts: Mapping[str, Any], root: str) -> dict[str, Any]:
    caps = facts.get("capabilities")
    caps = set(caps) if caps is not None else {"completion"}
    embeds_only = "embedding" in caps and "completion" not in caps
    params = [] if embeds_only else _BASE_PARAMS + (_TOOLS if "tools" in caps else []) + \
        (["reasoning", "include_reasoning"] if "thinking" in caps else [])
    d = model.get("details") or {}
    size = " ".join(str(d[k]) for k in ("family", "parameter_size", "quantization_level")
                    if d.get(k))
    return local_entry(OLLAMA, "Ollama", model["name"], context=facts.get("context"),
                       created=model.get("created", 0),
                       inputs=["text", "image"] if "vision" in caps else ["text"],
                       outputs=["embeddings"] if embeds_only else ["text"], params=params,
                       about=f" at {root}" + (f" ({size})" if size else ""))


# ---- LM Studio: GET {base_url}/models (OpenAI shape); GET /api/v0/models adds the context ------

def lmstudio_entries(listed: object, native: object, base_url: str) -> list[dict[str, Any]] | None:
    """Entries for the ids an OpenAI-shape `/v1/models` answer lists, with `type` and
    `max_context_length` from LM Studio's `/api/v0/models` where it answered; None when the
    listing is not an OpenAI model list."""
    data = listed.get("data") if isinstance(listed, Mapping) else None
    if not isinstance(data, list):
        return None
    facts: dict[str, Mapping[str, Any]] = {}
    more = native.get("data") if isinstance(native, Mapping) else None
    for m in more if isinstance(more, list) else []:
        if isinstance(m, Mapping) and isinstance(m.get("id"), str):
            facts[m["id"]] = m
    out = []
    for m in data:
        mid = m.get("id") if isinstance(m, Mapping) else None
        if not isinstance(mid, str) or not mid.strip():
            continue
        f = facts.get(mid, {})
        kind = f.get("type")
        embeds = kind == "embeddings"
        ctx = f.get("max_context_length")
        out.append(local_entry(
            LMSTUDIO, "LM Studio", mid.strip(), context=ctx if _count(ctx) else None,
            created=m["created"] if _count(m.get("created")) else 0,
            inputs=["text", "image"] if kind == "vlm" else ["text"],
            outputs=["embeddings"] if embeds else ["text"],
            params=[] if embeds else _BASE_PARAMS + _TOOLS, about=f" at {base_url}"))
    return out


# ---- asking the servers -------------------------------------------------------------------------

Facts = dict[tuple[str, str], dict[str, Any]]  # (name, digest) -> ollama_facts, asked once each


async def probe(session: Any, prov: Provider, timeout_s: float, known: Facts,
                key: str | None = None) -> list[dict[str, Any]] | None:
    """The entries of what `prov` (ollama or lmstudio) serves; None when it does not answer
    like that server. Never raises for a server that is down or odd. `key`: the user's key for
    it (LM Studio 0.4+ can require an API token on every call), sent as a Bearer token."""
    ask = _PROBES.get(prov.slug)
    headers = {**_ACCEPT, "Authorization": f"Bearer {key}"} if key else _ACCEPT
    return await ask(session, prov.base_url, timeout_s, known, headers) if ask else None


async def _probe_ollama(session: Any, base_url: str, timeout_s: float, known: Facts,
                        headers: Mapping[str, str]) -> list[dict[str, Any]] | None:
    root = native_root(base_url)
    try:
        models = ollama_models(await get_json(session, f"{root}/api/tags", headers=headers,
                                              timeout_s=timeout_s))
    except UpstreamError:
        return None
    if models is None:
        return None
    gate = asyncio.Semaphore(_SHOW_AT_ONCE)

    async def show(m: dict[str, Any]) -> None:
        async with gate:
            try:
                doc = await post_json(session, f"{root}/api/show", {"model": m["name"]},
                                      headers=headers, timeout_s=timeout_s)
            except UpstreamError:
                return  # listed without its facts this time; asked again next time
            known[(m["name"], m["digest"])] = ollama_facts(doc)

    await asyncio.gather(*(show(m) for m in models if (m["name"], m["digest"]) not in known))
    return [ollama_entry(m, known.get((m["name"], m["digest"]), {}), root) for m in models]


async def _probe_lmstudio(session: Any, base_url: str, timeout_s: float, known: Facts,
                          headers: Mapping[str, str]) -> list[dict[str, Any]] | None:
    async def ask(url: str) -> object:
        try:
            return await get_json(session, url, headers=headers, timeout_s=timeout_s)
        except UpstreamError:
            return None

    listed, native = await asyncio.gather(ask(f"{base_url}/models"),
                                          ask(f"{native_root(base_url)}/api/v0/models"))
    return lmstudio_entries(listed, native, base_url)


Probe = Callable[[Any, str, float, Facts, Mapping[str, str]],
                 Awaitable["list[dict[str, Any]] | None"]]
KeyLookup = Callable[[Provider], "str | None"]
_PROBES: dict[str, Probe] = {OLLAMA: _probe_ollama, LMSTUDIO: _probe_lmstudio}


async def _probe_all(session: Any, provs: list[Provider], timeout_s: float, known: Facts,
                     keys: KeyLookup | None) -> list[list[dict[str, Any]] | None]:
    """probe() every provider at once, each with the user's key for it if any."""
    return list(await asyncio.gather(*(probe(session, p, timeout_s, known,
                                             keys(p) if keys else None) for p in provs)))


def local_providers(settings: Settings) -> list[Provider]:
    return [settings.providers[s] for s in _PROBES if s in settings.providers]


class LocalWatch:
    """The daemon's view of the local servers, checked now and then (app.py schedules it)."""

    def __init__(self) -> None:
        self.up: dict[str, bool] = {}
        self.known: Facts = {}

    async def check(self, session: Any, settings: Settings, catalog: Any, timeout_s: float,
                    keys: KeyLookup | None = None) -> None:
        """Ask every local server at once; put what each serves into the catalog (nothing for
        one that does not answer)."""
        provs = local_providers(settings)
        found = await _probe_all(session, provs, timeout_s, self.known, keys)
        for prov, entries in zip(provs, found, strict=True):
            self._tell(prov, entries)
            catalog.set_local(prov.slug, entries or [])

    def _tell(self, prov: Provider, entries: list[dict[str, Any]] | None) -> None:
        up = entries is not None
        if up == self.up.get(prov.slug, False):
            return  # nothing new: quiet, however long a server stays away
        self.up[prov.slug] = up
        if up:
            log.info("%s answers at %s: %d model(s) listed as %s/…", prov.name, prov.base_url,
                     len(entries or []), prov.slug)
        else:
            log.info("%s at %s stopped answering; its models are no longer listed", prov.name,
                     prov.base_url)


def discover_now(settings: Settings, timeout_s: float,
                 keys: KeyLookup | None = None) -> dict[str, list[dict[str, Any]]]:
    """For a command: ask every local server once (in parallel, `timeout_s` per call) and
    return {provider: entries} for those that answered. Runs its own event loop."""
    async def run() -> dict[str, list[dict[str, Any]]]:
        provs = local_providers(settings)
        async with short_session() as session:
            found = await _probe_all(session, provs, timeout_s, {}, keys)
        return {p.slug: e for p, e in zip(provs, found, strict=True) if e is not None}
    return asyncio.run(run())


def _count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def _unix(text: Any) -> int:
    if not isinstance(text, str):
        return 0
    try:  # Ollama writes nanoseconds; Python reads at most microseconds
        head, dot, tail = text.partition(".")
        if dot:
            digits = len(tail) - len(tail.lstrip("0123456789"))
            tail = tail[:min(digits, 6)] + tail[digits:]
        return max(0, int(datetime.fromisoformat((head + dot + tail).replace("Z", "+00:00"))
                          .timestamp()))
    except ValueError:
        return 0
