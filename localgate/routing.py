"""Model resolution and routing (SPEC section 4): virtual models, then the route.

Pure: takes Settings, the Catalog and a key lookup, returns a Route. No I/O, no asyncio.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from localgate import builtins
from localgate.catalog import Catalog, provider_of
from localgate.config import Provider, Settings
from localgate.errors import Forbidden, InvalidRequest, ModelNotFound, ProviderKeyMissing
from localgate.providers import ADAPTERS

KeyLookup = Callable[[Provider], "str | None"]

# Route kinds, as reported in x-localgate-route and the spend log.
BYOK, FREE, LOCAL, GATEWAY, FALLBACK = "byok", "free", "local", "gateway", "byok-fallback"
# Endpoints a wire format has no equivalent of: such requests go through the gateway.
_NO_DIRECT = {("anthropic", "embeddings")}


def _direct(prov: Provider, native: str | None) -> bool:
    """Whether localgate can call this provider itself (an adapter speaks its wire format)."""
    return prov.api in ADAPTERS and (prov.api, native) not in _NO_DIRECT


@dataclass(slots=True)  # made per request: not frozen (a frozen __init__ costs ~6x more)
class Route:
    model: str                 # the resolved model id (catalog style)
    provider: str              # the model's provider slug (anthropic, meta-llama, ollama, ...)
    kind: str                  # byok | free | local | gateway | byok-fallback
    target: Provider           # where the request is sent
    upstream_model: str        # the id sent upstream
    api_key: str | None
    entry: dict[str, Any] | None
    free: bool
    may_fall_back: bool = False  # a BYOK call that may be retried via the gateway (fallback())


def resolve_virtual(model: str | None, mode: str | None, settings: Settings) -> str:
    """Turn `localgate/default`, no model and `kilo-auto/*` into a concrete model id."""
    name = model or builtins.DEFAULT_MODEL_ALIAS
    for _ in range(8):  # a default may itself be virtual; bounded against loops in the config
        if name == builtins.DEFAULT_MODEL_ALIAS:
            name = settings.default_model
            continue
        name = builtins.AUTO_ALIASES.get(name, name)
        auto = settings.auto.get(name)
        if auto is None:
            return name
        name = auto.modes.get((mode or "").strip().lower(), auto.default)
    raise InvalidRequest(f"virtual model {model!r} does not resolve to a model (a loop in [auto]?)",
                         param="model")


def lookup(model: str, catalog: Catalog,
           settings: Settings) -> tuple[str, dict[str, Any] | None]:
    """(canonical id, catalog entry). Unknown provider -> ModelNotFound."""
    entry = catalog.get(model)
    if entry is not None:
        return model, entry
    slug = provider_of(model)
    prov = settings.providers.get(slug)
    if prov is None or "/" not in model:
        raise ModelNotFound(f"model {model!r} not found: its provider is neither built in nor "
                            "configured (see `localgate models`)", param="model")
    rest = model.partition("/")[2]
    if not rest:
        raise ModelNotFound(f"model {model!r} not found: no model name after the provider",
                            param="model")
    canonical = f"{prov.gateway_prefix}/{rest}"
    return canonical, catalog.get(canonical)


def _gateway_route(model: str, slug: str, entry: dict[str, Any] | None, free: bool,
                   settings: Settings, keys: KeyLookup, kind: str) -> Route | None:
    order = [settings.gateway] + [g for g in ("kilo", "openrouter") if g != settings.gateway]
    for name in order:
        gw = settings.providers[name]
        key = keys(gw)
        if key:
            return Route(model, slug, kind, gw, model, key, entry, free)
    return None


def route(model: str, settings: Settings, catalog: Catalog, keys: KeyLookup, *,
          found: tuple[str, dict[str, Any] | None] | None = None,
          kilo_token: str | None = None, native: str | None = None) -> Route:
    """Pick where a concrete model goes (SPEC 4 step 3); `found` is lookup()'s answer when the
    caller has it already; `kilo_token`: a Kilo sign-in token the client presented, served by
    the hosted gateway only; `native`: the endpoint when not chat (responses, embeddings,
    messages). Raises ModelNotFound/ProviderKeyMissing/Forbidden."""
    model, entry = found or lookup(model, catalog, settings)
    slug = entry["provider"] if entry else provider_of(model)
    prov = settings.providers.get(slug)
    free = model.endswith(":free") or bool(entry and entry.get("free"))
    if kilo_token is not None:
        if prov is not None and prov.free:
            raise Forbidden(f"{model} is a local model: a Kilo token reaches the hosted gateway "
                            "only; use the local API key for local models",
                            code="provider_not_allowed", param="model")
        return Route(model, slug, FREE if free else GATEWAY, settings.kilo, model, kilo_token,
                     entry, free)
    native_id = (entry or {}).get("native_id") or model.partition("/")[2] or model

    if prov is not None and prov.free:
        return Route(model, slug, LOCAL, prov, native_id, keys(prov), entry, True)
    if free:
        # free models stay free: they go to the hosted gateway even with a BYOK key for the
        # provider, whose API would not know the `:free` id and would bill the user.
        kilo = settings.kilo
        return Route(model, slug, FREE, kilo, model, keys(kilo), entry, True)
    if prov is not None and prov.gateway:
        key = keys(prov)
        if key:
            return Route(model, slug, GATEWAY if slug == "kilo" else BYOK, prov, model, key,
                         entry, False)
    elif prov is not None and _direct(prov, native):
        key = keys(prov)
        if key or (not prov.builtin and not prov.key_env):
            return Route(model, slug, BYOK, prov, native_id, key, entry, False,
                         settings.fallback_to_gateway and prov.builtin)
        if not prov.builtin:
            raise ProviderKeyMissing(f"{model} needs the key of provider {slug!r}: "
                                     f"`localgate keys set {slug}`, or set the environment "
                                     f"variable {prov.key_env}")
    found = _gateway_route(model, slug, entry, False, settings, keys, GATEWAY)
    if found is not None:
        return found
    raise ProviderKeyMissing(_no_key_message(model, prov, settings))


def _no_key_message(model: str, prov: Provider | None, settings: Settings) -> str:
    own = ""
    if prov is not None and prov.key_env and not prov.gateway and prov.api in ADAPTERS:
        own = f"your own {prov.name} key (`localgate keys set {prov.slug}`, or {prov.key_env}) or "
    gw = settings.providers[settings.gateway]
    return (f"no key to reach {model}: add {own}a key for the {gw.name} "
            f"(`localgate keys set {gw.slug}`, or {gw.key_env})")


def fallback(rt: Route, settings: Settings, keys: KeyLookup) -> Route | None:
    """The gateway route that retries a failed BYOK call (SPEC 4 step 4), if a gateway key
    exists; worked out only when a call has failed."""
    if not rt.may_fall_back:
        return None
    return _gateway_route(rt.model, rt.provider, rt.entry, False, settings, keys, FALLBACK)


def route_fim(model: str, settings: Settings, catalog: Catalog, keys: KeyLookup) -> Route:
    """SPEC 4, FIM: `mistral/codestral-…` and `mistralai/codestral-…` belong to `mistral`; with a
    Mistral key -> Mistral's FIM endpoint with the native id, else the Kilo service's FIM
    endpoint (model `mistralai/…`) with the Kilo key, else 401. The Route's target is the
    provider; the caller builds the URL."""
    prefix, _, name = model.partition("/")
    if builtins.ALIASES.get(prefix, prefix) != "mistral" or not name.startswith("codestral"):
        raise InvalidRequest(f"{model!r} is not a fill-in-the-middle model: use "
                             "mistralai/codestral-… (see `localgate models --provider mistral`)",
                             code="unsupported_fim_model", param="model")
    gateway_id = f"mistralai/{name}"
    entry = catalog.get(gateway_id)
    mistral = settings.providers["mistral"]
    key = keys(mistral)
    if key:
        native = (entry or {}).get("native_id") or name
        return Route(gateway_id, "mistral", BYOK, mistral, native, key, entry, False)
    kilo = settings.kilo
    key = keys(kilo)
    if key:
        return Route(gateway_id, "mistral", GATEWAY, kilo, gateway_id, key, entry, False)
    raise ProviderKeyMissing(f"no key to reach {gateway_id}: add your own Mistral key "
                             f"({mistral.key_env}) or a key for the {kilo.name} ({kilo.key_env})")


def is_free(model: str, settings: Settings, catalog: Catalog, *,
            found: tuple[str, dict[str, Any] | None] | None = None) -> bool:
    """Free (`:free`, free in the catalog) or served by a local provider; unknown -> 404."""
    model, entry = found or lookup(model, catalog, settings)
    prov = settings.providers.get(entry["provider"] if entry else provider_of(model))
    return model.endswith(":free") or bool(entry and entry.get("free")) or bool(prov and prov.free)
