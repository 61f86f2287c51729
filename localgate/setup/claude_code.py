"""`localgate setup claude-code`: Claude Code's user settings, `~/.claude/settings.json`
(`$CLAUDE_CONFIG_DIR/settings.json` when that is set), gets `env.ANTHROPIC_BASE_URL` = the
daemon's root URL (Claude Code appends /v1/messages) and `env.ANTHROPIC_AUTH_TOKEN` = the key,
which Claude Code sends as `Authorization: Bearer`.
Source: code.claude.com/docs settings ("env" key), env-vars (ANTHROPIC_BASE_URL,
ANTHROPIC_AUTH_TOKEN), claude-directory (CLAUDE_CONFIG_DIR moves every ~/.claude path).
"""

from __future__ import annotations

from pathlib import Path

from localgate.setup import jsonc
from localgate.setup.common import Ctx, FileTool, env_dir, home


def _path() -> Path:
    return env_dir("CLAUDE_CONFIG_DIR", home() / ".claude") / "settings.json"


def _entries(ctx: Ctx) -> dict[str, str]:
    return {"ANTHROPIC_BASE_URL": ctx.root, "ANTHROPIC_AUTH_TOKEN": ctx.key}


def _render(text: str, ctx: Ctx) -> str:
    for name, value in _entries(ctx).items():
        text = jsonc.set_value(text, ["env", name], value)
    return text


TOOL = FileTool(
    name="claude-code", client="claude-code", path=_path, render=_render, uses_model=False,
    shows=lambda ctx: [f"env.{k} = {v}" for k, v in _entries(ctx).items()],
    notes=lambda ctx: ["Claude Code picks models itself; the daemon maps claude-* ids to the "
                       "catalog and accepts any catalog id (e.g. /model openai/gpt-5.2)"])
