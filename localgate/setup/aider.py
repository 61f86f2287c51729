"""`localgate setup aider`: aider's `~/.aider.conf.yml` gets `openai-api-base` (the daemon's /v1
URL), `openai-api-key` and `model: openai/MODEL` (the `openai/` prefix tells aider to use its
OpenAI-compatible client).
Source: aider.chat/docs/config/aider_conf.html (the home-directory file; keys are the long
options without `--`) and aider.chat/docs/llms/openai-compat.html (OPENAI_API_BASE /
--openai-api-base, model `openai/<model-name>`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from localgate.setup import yamledit
from localgate.setup.common import Ctx, FileTool, home


def _path() -> Path:
    return home() / ".aider.conf.yml"


def _entries(ctx: Ctx) -> dict[str, str]:
    return {"openai-api-base": ctx.v1, "openai-api-key": ctx.key, "model": f"openai/{ctx.model}"}


def _render(text: str, ctx: Ctx) -> str:
    def update(doc: Any) -> None:
        for k, v in _entries(ctx).items():
            doc[k] = v
    return yamledit.merge(text, update, dict)


TOOL = FileTool(
    name="aider", client="aider", path=_path, render=_render,
    shows=lambda ctx: [f"{k}: {v}" for k, v in _entries(ctx).items()],
    notes=lambda ctx: ["a .aider.conf.yml in a repository, or OPENAI_API_BASE / OPENAI_API_KEY "
                       "in the environment, still take precedence over this file"])
