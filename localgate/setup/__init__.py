"""`localgate setup TOOL [--print] [--undo]`: point a coding tool at the daemon (SPEC 9).

Each tool gets its own client key (named after the tool, so the spend log's `client` names it),
written into the tool's own config file merged with what is there; the original is backed up
once and `undo` restores it byte for byte. One module per tool holds its file, format and doc
sources; common.py holds the base URL, keys and backups; flow.py the steps and their order.
CLI-only and synchronous: nothing here is imported by the daemon or runs on its event loop.
Importing this package loads no writer (the CLI's parser only needs the names).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from localgate.setup.common import EditorTool, FileTool, Report

from localgate.setup.common import DEFAULT_MODEL

__all__ = ["NAMES", "DEFAULT_MODEL", "tools", "apply", "undo"]

NAMES = ("claude-code", "codex", "continue", "opencode", "aider", "kilo", "kilocode", "cline",
         "roo")


def tools() -> dict[str, FileTool | EditorTool]:
    from localgate.setup import (aider, claude_code, codex, continue_dev, editors, kilo_cli,
                                 opencode)
    found: list[FileTool | EditorTool] = [claude_code.TOOL, codex.TOOL, continue_dev.TOOL,
                                          opencode.TOOL, aider.TOOL, kilo_cli.TOOL,
                                          *editors.TOOLS]
    return {t.name: t for t in found}


def apply(name: str, *, model: str = DEFAULT_MODEL, dry_run: bool = False) -> Report:
    """Create the tool's key and write its settings (dry_run: only say what would be written,
    with a placeholder for the key). Raises common.SetupError, having changed nothing."""
    from localgate.setup import flow
    return flow.apply(tools()[name], model, dry_run)


def undo(name: str, *, dry_run: bool = False) -> Report:
    """Restore the tool's file from its backup (or remove the file setup created) and revoke
    the tool's key."""
    from localgate.setup import flow
    return flow.undo(tools()[name], dry_run)
