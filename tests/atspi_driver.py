"""Drive localgate's tray menu through AT-SPI, as assistive technology (and a person) sees it.

Runs under the system python (`/usr/bin/python3`, Debian's python3-pyatspi), not the venv:
    atspi_driver.py dump              -> JSON list of {role, name, checked, depth} of the menu
    atspi_driver.py invoke NAME       -> activate the first menu item named NAME ("click")
    atspi_driver.py point NAME        -> {"x", "y"}: the middle of that item on the screen
Waits up to --wait seconds for the menu (or the item) to appear. Exit 2 when not found.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import pyatspi

APP = "localgate"


def _app(name=APP):
    for app in pyatspi.Registry.getDesktop(0):
        if app is not None and app.name == name:
            return app
    return None


def _walk(acc, depth=0):
    if acc is None or depth > 40:
        return
    yield acc, depth
    try:
        children = list(acc)
    except Exception:  # the menu changed under us (rebuilt, closed): skip what vanished
        return
    for child in children:
        yield from _walk(child, depth + 1)


def _items(app):
    out = []
    for acc, depth in _walk(app):
        try:
            role = acc.getRoleName()
            if "menu" not in role:
                continue
            states = acc.getState()
            out.append({"role": role, "name": acc.name, "depth": depth,
                        "checked": states.contains(pyatspi.STATE_CHECKED),
                        "enabled": states.contains(pyatspi.STATE_ENABLED), "acc": acc})
        except Exception:
            continue
    return out


def _menu_items(wait: float, name: str = APP):
    deadline = time.monotonic() + wait
    while True:
        app = _app(name)
        items = _items(app) if app is not None else []
        if any(i["role"] in ("menu item", "check menu item", "radio menu item")
               for i in items) or time.monotonic() >= deadline:
            return items
        time.sleep(0.1)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("cmd", choices=["dump", "invoke", "point"])
    ap.add_argument("name", nargs="?")
    ap.add_argument("--wait", type=float, default=5.0)
    ap.add_argument("--app", default=APP, help="the process showing the menu (a StatusNotifier "
                    "host draws the menu of an AppIndicator icon itself)")
    args = ap.parse_args()
    deadline = time.monotonic() + args.wait
    while True:
        items = _menu_items(max(0.0, deadline - time.monotonic()), args.app)
        if args.cmd == "dump":
            print(json.dumps([{k: v for k, v in i.items() if k != "acc"} for i in items]))
            return 0 if items else 2
        found = [i for i in items if i["name"] == args.name]
        if found and args.cmd == "point":
            box = found[0]["acc"].queryComponent().getExtents(pyatspi.DESKTOP_COORDS)
            print(json.dumps({"x": box.x + box.width // 2, "y": box.y + box.height // 2}))
            return 0
        if found:
            action = found[0]["acc"].queryAction()
            names = [action.getName(n) for n in range(action.nActions)]
            action.doAction(names.index("click") if "click" in names else 0)
            print(json.dumps({"invoked": args.name, "role": found[0]["role"]}))
            return 0
        if time.monotonic() >= deadline:
            print(json.dumps({"not_found": args.name, "seen": [i["name"] for i in items]}))
            return 2
        time.sleep(0.1)


if __name__ == "__main__":
    sys.exit(main())
