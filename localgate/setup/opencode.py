"""`localgate setup opencode`: OpenCode's global config (`$XDG_CONFIG_HOME/opencode/`, else
`~/.config/opencode/`; opencode.jsonc, opencode.json or config.json, whichever exists, else
opencode.json) gets a provider "localgate" (`npm: @ai-sdk/openai-compatible`,
`options.baseURL` = the daemon's /v1 URL, `options.apiKey`, the model) and
`model = "localgate/MODEL"`.
Source: opencode.ai/docs/config (locations, JSON or JSONC) and opencode.ai/docs/providers
("Custom provider": npm @ai-sdk/openai-compatible, name, options.baseURL, options.apiKey,
models).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from localgate.setup import jsonc
from localgate.setup.common import Ctx, FileTool, first_existing, xdg_config

PROVIDER = "localgate"
SCHEMA = "https://opencode.ai/config.json"


def _path() -> Path:
    # of the three global files, the later ones override the earlier: write the winning one
    return first_existing(xdg_config() / "opencode",
                          ["opencode.jsonc", "opencode.json", "config.json"], "opencode.json")


def _provider(ctx: Ctx) -> dict[str, Any]:
    return {"npm": "@ai-sdk/openai-compatible", "name": "localgate",
            "options": {"baseURL": ctx.v1, "apiKey": ctx.key},
            "models": {ctx.model: {"name": ctx.model}}}


def _render(text: str, ctx: Ctx) -> str:
    if not text.strip():
        text = jsonc.set_value(text, ["$schema"], SCHEMA)
    text = jsonc.set_value(text, ["provider", PROVIDER], _provider(ctx))
    return jsonc.set_value(text, ["model"], f"{PROVIDER}/{ctx.model}")


TOOL = FileTool(
    name="opencode", client="opencode", path=_path, render=_render,
    shows=lambda ctx: [f"provider.{PROVIDER}.npm = @ai-sdk/openai-compatible",
                       f"provider.{PROVIDER}.options.baseURL = {ctx.v1}",
                       f"provider.{PROVIDER}.options.apiKey = {ctx.key}",
                       f"provider.{PROVIDER}.models = {ctx.model}",
                       f"model = {PROVIDER}/{ctx.model}"])
