"""Editor extensions whose settings live inside the editor (Kilo Code, Cline, Roo Code): setup
makes the tool's client key and prints the values to paste into its provider settings.
Labels from docs.cline.bot/provider-config/openai-compatible and
docs.roocode.com/providers/openai-compatible (settings ⚙: "API Provider: OpenAI Compatible",
Base URL, API Key, Model); Kilo Code, a fork of both, has the same provider form.
"""

from __future__ import annotations

from localgate.setup.common import Ctx, EditorTool


def _fields(ctx: Ctx) -> list[tuple[str, str]]:
    return [("API Provider", "OpenAI Compatible"), ("Base URL", ctx.v1), ("API Key", ctx.key),
            ("Model", ctx.model)]


TOOLS = [EditorTool("kilocode", "kilocode", "Kilo Code: settings (⚙), provider", _fields),
         EditorTool("cline", "cline", "Cline: settings (⚙), API provider", _fields),
         EditorTool("roo", "roo", "Roo Code: settings (⚙), API provider", _fields)]
