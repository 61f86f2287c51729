"""The steps of `localgate setup` and their order. Everything that can fail on the user's file
(reading, parsing, merging) is done with a placeholder key before anything changes; only then
is the old key revoked, the new one made, the original backed up (the first time only) and the
file written. A failure after the key was made revokes it again.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

from localgate.setup import common
from localgate.setup.common import Ctx, EditorTool, FileTool, Report, SetupError
from localgate.setup.jsonc import JsoncError
from localgate.setup.tomledit import TomlError
from localgate.setup.yamledit import YamlError


def apply(tool: FileTool | EditorTool, model: str, dry_run: bool) -> Report:
    root = common.base_url()
    rep = _editor(tool, root, model, dry_run) if isinstance(tool, EditorTool) \
        else _write(tool, root, model, dry_run)
    if model != common.DEFAULT_MODEL and not tool.uses_model:
        rep.add(f"  (--model is not written for {tool.name}: it picks models itself)")
    return rep


def _editor(tool: EditorTool, root: str, model: str, dry_run: bool) -> Report:
    rep = Report()
    key, revoked = (common.placeholder(tool.client), False) if dry_run \
        else common.new_key(tool.client)
    rep.add(f"{tool.title}:")
    for label, value in tool.fields(Ctx(root, key, model)):
        rep.add(f"  {label + ':':<14}{value}")
    if dry_run:
        rep.add(f"nothing changed (--print): without it, client {tool.client!r} gets a new key")
    else:
        rep.add(f"client {tool.client!r}: new key{_revoked(revoked)}, shown only this once"
                f"{_tell()}; `localgate setup {tool.name} --undo` revokes it")
    return rep


def _write(tool: FileTool, root: str, model: str, dry_run: bool) -> Report:
    target = common.real_path(tool.path())
    rec = common.record(tool.name)
    if rec and rec["path"] != str(target):
        raise SetupError(f"setup {tool.name} already changed {rec['path']}: run `localgate "
                         f"setup {tool.name} --undo` first")
    raw, text, mode = common.read_text(target)
    _render(tool, text, Ctx(root, common.placeholder(tool.client), model), target)
    had_file = rec["existed"] if rec else raw is not None
    if dry_run:
        return _would(tool, Ctx(root, common.placeholder(tool.client), model), target,
                      raw is not None, had_file, first=rec is None)
    key, revoked = common.new_key(tool.client)
    try:
        data = _render(tool, text, Ctx(root, key, model), target).encode()
        if rec is None:
            common.save_backup(tool.name, target, raw, mode)
        common.write_file(target, data, mode)
    except BaseException:
        with contextlib.suppress(Exception):
            common.revoke_key(tool.client)
        raise
    rep = Report([f"{tool.name}: wrote {target}"])
    _show(rep, tool, Ctx(root, f"<the new key of client {tool.client!r}>", model))
    rep.add(f"  backup of the original: {common.backup_file(tool.name)}" if had_file
            else "  (there was no file before: --undo removes it)")
    rep.add(f"  client {tool.client!r}: new key{_revoked(revoked)}{_tell()}")
    rep.add(f"  undo: localgate setup {tool.name} --undo")
    return rep


def _would(tool: FileTool, ctx: Ctx, target: Path, exists: bool, had_file: bool,
           first: bool) -> Report:
    rep = Report([f"{tool.name}: would write {target}"
                  + (" (merged with what is there)" if exists else " (a new file, 0600)")])
    _show(rep, tool, ctx)
    if had_file:
        rep.add(f"  the original {'would be' if first else 'is'} kept in "
                f"{common.backup_file(tool.name)}")
    rep.add("nothing changed (--print)")
    return rep


def _show(rep: Report, tool: FileTool, ctx: Ctx) -> None:
    for line in tool.shows(ctx):
        rep.add(f"  set {line}")
    for note in tool.notes(ctx):
        rep.add(f"  note: {note}")


def _render(tool: FileTool, text: str, ctx: Ctx, target: Path) -> str:
    try:
        return tool.render(text, ctx)
    except (JsoncError, TomlError, YamlError) as exc:
        raise SetupError(f"{target} could not be read ({exc}); nothing changed") from exc


def undo(tool: FileTool | EditorTool, dry_run: bool) -> Report:
    rep = Report()
    rec = common.record(tool.name) if isinstance(tool, FileTool) else None
    if isinstance(tool, FileTool) and rec is None:
        rep.add(f"{tool.name}: no file to restore (setup has not changed one)")
    elif rec is not None:
        target = Path(rec["path"])
        if rec["existed"]:
            backup = common.backup_file(tool.name)
            try:
                data = backup.read_bytes()
            except OSError as exc:
                raise SetupError(f"the backup {backup} cannot be read: {exc}") from exc
            if not dry_run:
                common.write_file(target, data, rec.get("mode"))
            rep.add(f"{tool.name}: {_did(dry_run, 'restore', 'restored')} {target} from "
                    f"{backup}")
        else:
            if not dry_run:
                target.unlink(missing_ok=True)
            rep.add(f"{tool.name}: {_did(dry_run, 'remove', 'removed')} {target} (setup created "
                    "it)")
        if not dry_run:
            common.drop_backup(tool.name)
    if dry_run:
        rep.add(f"  would revoke client {tool.client!r}'s key")
        rep.add("nothing changed (--print)")
    elif common.revoke_key(tool.client):
        rep.add(f"  client {tool.client!r} revoked{_tell()}")
    else:
        rep.add(f"  client {tool.client!r} had no active key")
    return rep


def _did(dry_run: bool, verb: str, done: str) -> str:
    return f"would {verb}" if dry_run else done


def _revoked(revoked: bool) -> str:
    return " (the previous one revoked)" if revoked else ""


def _tell() -> str:
    from localgate import remote
    return remote.tell_daemon()
