"""`localgate setup continue`: Continue's `~/.continue/config.yaml` (`$CONTINUE_GLOBAL_DIR`)
gets a model entry named "localgate" (`provider: openai`, `apiBase` = the daemon's /v1 URL,
`apiKey`, `model`, roles chat/edit/apply); other models stay as they are.
Source: docs.continue.dev reference (config.yaml: name, version, schema, models[].name,
provider, model, apiBase, apiKey, roles), customize/model-providers/top-level/openai ("OpenAI
API compatible providers": provider openai with apiBase), and continuedev/continue
core/util/paths.ts (CONTINUE_GLOBAL_DIR, else ~/.continue). A config.json beside it is only read
while no config.yaml exists, so setup refuses rather than hide it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from localgate.setup import yamledit
from localgate.setup.common import Ctx, FileTool, SetupError, env_dir, home

ENTRY = "localgate"


def _path() -> Path:
    return env_dir("CONTINUE_GLOBAL_DIR", home() / ".continue") / "config.yaml"


def _entry(ctx: Ctx) -> dict[str, Any]:
    return {"name": ENTRY, "provider": "openai", "model": ctx.model, "apiBase": ctx.v1,
            "apiKey": ctx.key, "roles": ["chat", "edit", "apply"]}


def _render(text: str, ctx: Ctx) -> str:
    if not text and (_path().parent / "config.json").exists():
        raise SetupError(f"{_path().parent / 'config.json'} is your Continue config, and a new "
                         "config.yaml would replace it: convert it to config.yaml first "
                         "(docs.continue.dev/yaml-migration), then run setup again")

    def update(doc: Any) -> None:
        models = doc.setdefault("models", [])
        if not isinstance(models, list):
            raise SetupError("config.yaml: `models` is not a list")
        mine = [i for i, m in enumerate(models) if isinstance(m, dict) and m.get("name") == ENTRY]
        if mine:
            models[mine[0]] = _entry(ctx)
        else:
            models.append(_entry(ctx))

    return yamledit.merge(text, update,
                          lambda: {"name": "Local Config", "version": "1.0.0", "schema": "v1"})


TOOL = FileTool(
    name="continue", client="continue", path=_path, render=_render,
    shows=lambda ctx: [f"models[name={ENTRY}].{k} = {v}" for k, v in _entry(ctx).items()])
