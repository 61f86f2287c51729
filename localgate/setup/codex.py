"""`localgate setup codex`: Codex's `~/.codex/config.toml` (`$CODEX_HOME/config.toml`) gets a
`[model_providers.localgate]` entry (the daemon's /v1 URL, the key as
`experimental_bearer_token`, `wire_api = "responses"`) and `model_provider = "localgate"`,
`model = MODEL`.
Source: openai/codex docs/config.md and codex-rs/core/src/model_provider_info.rs
(ModelProviderInfo: name, base_url, env_key, experimental_bearer_token = the value for
`Authorization: Bearer`, wire_api). The key sits in the file rather than behind `env_key`
because the file is its only copy (an env var would have to be exported in every shell, and
the IDE extension and desktop app do not see a terminal's exports). Current Codex releases
accept only `wire_api = "responses"` ("chat" was removed), so Codex calls the daemon's
/v1/responses.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from localgate.setup import tomledit
from localgate.setup.common import Ctx, FileTool, env_dir, home

PROVIDER = "localgate"


def _path() -> Path:
    return env_dir("CODEX_HOME", home() / ".codex") / "config.toml"


def _table(ctx: Ctx) -> dict[str, Any]:
    return {"name": "localgate", "base_url": ctx.v1, "wire_api": "responses",
            "experimental_bearer_token": ctx.key}


def _root(ctx: Ctx) -> dict[str, str]:
    return {"model_provider": PROVIDER, "model": ctx.model}


def _render(text: str, ctx: Ctx) -> str:
    out, _kept = tomledit.merge(text, _root(ctx), ("model_providers", PROVIDER), _table(ctx))
    return out


def _notes(ctx: Ctx) -> list[str]:
    return ["Codex talks to the daemon with the OpenAI Responses API (/v1/responses), the "
            "only wire API current Codex releases accept"]


TOOL = FileTool(
    name="codex", client="codex", path=_path, render=_render, notes=_notes,
    shows=lambda ctx: [f"{k} = {v}" for k, v in _root(ctx).items()]
    + [f"[model_providers.{PROVIDER}] {k} = {v}" for k, v in _table(ctx).items()])
