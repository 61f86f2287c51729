"""The default model: which models to offer (auto, the catalog's popular ones, recently used)
and whether an id may become the default. Shared by `localgate default`, the dashboard and
the tray, so all three accept and refuse the same ids.

Pure: no I/O, no aiohttp; callers pass the settings, the catalog and the recent ids.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from typing import Any

from localgate import routing
from localgate.catalog import Catalog
from localgate.config import Settings
from localgate.errors import InvalidRequest

POPULAR_SHOWN = 12
RECENT_SHOWN = 8


def check_default(model: str, settings: Settings, catalog: Catalog) -> str:
    """The id, stripped, if the daemon could resolve it once it is the default.

    Raises InvalidRequest (empty, a loop such as `localgate/default`) or ModelNotFound (an
    unknown provider), both GatewayErrors with a message for people."""
    model = model.strip()
    if not model:
        raise InvalidRequest("expected a model id, e.g. anthropic/claude-sonnet-4.6",
                             param="model")
    # resolve as the daemon will once this is the default: catches `localgate/default` (a loop)
    # and virtual models that end in an unknown provider
    trial = dataclasses.replace(settings, default_model=model)
    concrete = routing.resolve_virtual(None, None, trial)
    routing.is_free(concrete, trial, catalog)
    return model


def offered(settings: Settings, catalog: Catalog, recent: Iterable[str]) -> dict[str, Any]:
    """What a picker offers: {"auto": [...], "popular": [...], "recent": [...]}, each a list
    of ids, popular in the catalog's recommended order; no id appears twice."""
    auto = list(settings.auto)
    popular = [m["id"] for m in sorted(
        (m for m in catalog.models.values() if "preferred_index" in m),
        key=lambda m: m["preferred_index"])][:POPULAR_SHOWN]
    seen = set(auto) | set(popular)
    fresh: list[str] = []
    for model in recent:
        if model and model not in seen:
            seen.add(model)
            fresh.append(model)
    return {"auto": auto, "popular": popular, "recent": fresh[:RECENT_SHOWN]}
