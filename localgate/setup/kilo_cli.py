"""`localgate setup kilo`: the Kilo CLI (`kilo`, OpenCode-based). Its KILO_API_URL is read from
the environment only (Kilo-Org/kilocode packages/kilo-gateway/src/api/constants.ts), so setup
writes what the CLI does read from a file, its global config (`$XDG_CONFIG_HOME/kilo/`, else
`~/.config/kilo/`: kilo.jsonc, kilo.json, opencode.jsonc, opencode.json or config.json, the
first that exists, else kilo.jsonc, as the CLI's own globalConfigFile() picks), and prints the
environment line for the rest.
Written: `provider.kilo.options.baseURL` = the daemon's root URL (the Kilo provider derives
`<root>/api/v1/` for inference and `<root>/api/` for profile and defaults:
packages/kilo-gateway/src/api/url.ts) and `provider.kilo.options.apiKey` = the key (the
provider's config key: packages/opencode/src/kilocode/provider/provider.ts).
The client is named `kilo-cli`: `kilo` already names the user's own Kilo key in the spend log.
"""

from __future__ import annotations

from pathlib import Path

from localgate.setup import jsonc
from localgate.setup.common import Ctx, FileTool, first_existing, xdg_config

SCHEMA = "https://app.kilo.ai/config.json"


def _path() -> Path:
    return first_existing(xdg_config() / "kilo", ["kilo.jsonc", "kilo.json", "opencode.jsonc",
                                                  "opencode.json", "config.json"], "kilo.jsonc")


def _render(text: str, ctx: Ctx) -> str:
    if not text.strip():
        text = jsonc.set_value(text, ["$schema"], SCHEMA)
    text = jsonc.set_value(text, ["provider", "kilo", "options", "baseURL"], ctx.root)
    return jsonc.set_value(text, ["provider", "kilo", "options", "apiKey"], ctx.key)


def _notes(ctx: Ctx) -> list[str]:
    return ["the Kilo CLI reads its API URL for the rest (sign-in, cloud sessions) only from "
            f"the environment: add to your shell profile\n    export KILO_API_URL={ctx.root}",
            "KILO_API_KEY in the environment wins over the file's key: the daemon accepts it "
            "too, and logs those requests as client `kilo`"]


TOOL = FileTool(
    name="kilo", client="kilo-cli", path=_path, render=_render, notes=_notes, uses_model=False,
    shows=lambda ctx: [f"provider.kilo.options.baseURL = {ctx.root}",
                       f"provider.kilo.options.apiKey = {ctx.key}"])
