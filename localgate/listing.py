"""The catalog as clients see it: `/models` (the hosted gateway's shape), one model,
`/providers`, `/models-by-provider`. Virtual models (`localgate/default`, `kilo-auto/*`,
`kilo/auto`) come first, as on the hosted list, each with its own `preferredIndex`.
Pure: reads the live settings, catalog and the key snapshot.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from localgate import builtins, catalog as catalog_mod, routing
from localgate.config import Provider
from localgate.errors import GatewayError

KeyLookup = Callable[[Provider], "str | None"]


class Listing:
    def __init__(self, live: Any, keys: KeyLookup) -> None:
        self.live = live
        self.keys = keys
        self._cache: tuple[Any, bytes] | None = None

    def _has_key(self) -> dict[str, bool]:
        return {p.slug: bool(self.keys(p)) for p in self.live.settings.providers.values()
                if not p.gateway}

    def entries(self) -> list[dict[str, Any]]:
        cat, has = self.live.catalog, self._has_key()
        out = [catalog_mod.public_model(v, has_key=False) for v in self.virtual()]
        models = sorted(cat.models.values(),
                        key=lambda m: (m.get("preferred_index", 1_000_000),
                                       -(m.get("created") or 0)))
        out.extend(catalog_mod.public_model(m, has_key=has.get(m.get("provider", ""), False))
                   for m in models)
        return out

    def body(self) -> bytes:
        """`/models` JSON, cached until the settings, catalog or keys change."""
        s = self.live.settings
        state = (id(s), self.live.catalog.version, id(self.live.catalog),
                 tuple(sorted(self._has_key().items())))
        if self._cache is None or self._cache[0] != state:
            body = json.dumps({"object": "list", "data": self.entries()}).encode()
            self._cache = (state, body)
        return self._cache[1]

    def virtual(self) -> list[dict[str, Any]]:
        """Catalog-like entries for the virtual models, priced like what they resolve to now."""
        s, cat = self.live.settings, self.live.catalog
        names = [(n, f"{n}: picks a model by the x-kilocode-mode header (default {a.default})")
                 for n, a in s.auto.items()]
        names += [(alias, f"{alias}: the hosted gateway's older name for {target}")
                  for alias, target in builtins.AUTO_ALIASES.items()]
        names.append((builtins.DEFAULT_MODEL_ALIAS,
                      f"localgate: default model ({s.default_model})"))
        out = []
        for i, (name, desc) in enumerate(names):
            try:
                target = cat.get(routing.resolve_virtual(name, None, s))
            except GatewayError:
                target = None
            entry = catalog_mod.virtual_entry(name, target, desc)
            entry["preferred_index"] = i - len(names)  # before the popular models (0, 1, ...)
            out.append(entry)
        return out

    def one(self, model_id: str) -> dict[str, Any] | None:
        entry = self.live.catalog.get(model_id)
        if entry is not None:
            return catalog_mod.public_model(
                entry, has_key=self._has_key().get(entry.get("provider", ""), False))
        for v in self.virtual():
            if v["id"] == model_id:
                return catalog_mod.public_model(v, has_key=False)
        return None

    def providers(self) -> list[dict[str, Any]]:
        return [{"slug": p.slug, "name": p.name, "displayName": p.name, "baseUrl": p.base_url,
                 "byokEnabled": not p.free, "hasKey": bool(self.keys(p))}
                for p in self.live.settings.providers.values()]

    def by_provider(self) -> dict[str, Any]:
        names = {p.slug: p.name for p in self.live.settings.providers.values()}
        groups: dict[str, list[dict[str, Any]]] = {}
        for m in self.entries():
            groups.setdefault(m["owned_by"], []).append(m)
        providers = [{"slug": slug, "name": names.get(slug, slug),
                      "displayName": names.get(slug, slug), "models": models}
                     for slug, models in sorted(groups.items())]
        return {"providers": providers, "total_providers": len(providers),
                "total_models": sum(len(p["models"]) for p in providers),
                "generated_at": self.live.catalog.generated_at}
