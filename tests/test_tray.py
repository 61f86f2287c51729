"""The tray's menu logic against pystray's dummy backend and a FakeController: every item is
built with SPEC section 7's labels and invoked, failures never escape a callback, the icon and
the spend line follow the daemon's state, and run() survives a backend that fails on stop.
"""

from __future__ import annotations

import importlib
import logging
import sys
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from PIL import ImageChops

from localgate.desktop import clipboard, icons
from localgate.desktop.tray import Tray, address_line, money, spend_line
from tests.fakes import FakeController


@pytest.fixture(scope="module")
def pystray() -> Iterator[Any]:
    mp = pytest.MonkeyPatch()
    mp.setenv("PYSTRAY_BACKEND", "dummy")
    sys.modules.pop("pystray", None)
    module = importlib.import_module("pystray")
    mp.undo()
    yield module
    sys.modules.pop("pystray", None)


class Recorder:
    def __init__(self) -> None:
        self.copied: list[str] = []
        self.opened: list[str] = []
        self.relabels: list[dict[str, str]] = []

    def copy(self, text: str) -> None:
        self.copied.append(text)

    def open(self, url: str) -> bool:
        self.opened.append(url)
        return True

    def relabel(self, icon: Any, changes: dict[str, str]) -> None:
        self.relabels.append(changes)


def make(pystray: Any, c: FakeController, rec: Recorder, **kw: Any) -> Tray:
    return Tray(c, pystray=pystray, copy=rec.copy, open_url=rec.open, **kw)


def entries(menu: Any) -> list[Any]:
    return [i for i in menu if i is not menu.SEPARATOR]


def item(tray: Tray, text: str) -> Any:
    for i in entries(tray.icon.menu):
        if i.text == text:
            return i
        if i.submenu:
            for j in entries(i.submenu):
                if j.text == text:
                    return j
    raise AssertionError(f"no menu item {text!r}")


def invoke(tray: Tray, text: str) -> None:
    item(tray, text)(tray.icon)
    tray.drain()


def test_menu_has_spec_labels_in_order(pystray: Any) -> None:
    c = FakeController(spent_today=420_000, daily_limit=5_000_000)
    tray = make(pystray, c, Recorder())
    top = entries(tray.icon.menu)
    assert [i.text for i in top] == [
        "localgate 127.0.0.1:8642 — running", "Default model", "Today: $0.42 of $5.00",
        "Open dashboard", "Copy base URL", "Copy API key", "Pause", "Start at login", "Quit"]
    assert not top[0].enabled and not top[2].enabled  # information, not actions
    assert item(tray, "Open dashboard").default  # what a click on the icon does
    assert item(tray, "Start at login").checked is False
    sub = [(i.text, i.enabled, i.checked, i.radio) for i in entries(item(tray, "Default model")
                                                                    .submenu)]
    assert sub == [
        ("Auto", False, None, False), ("kilo-auto/balanced", True, True, True),
        ("kilo-auto/free", True, False, True),
        ("Popular", False, None, False), ("anthropic/claude-sonnet-4.6", True, False, True),
        ("openai/gpt-5.2", True, False, True),
        # a model already listed above is not repeated under "Recently used"
        ("Recently used", False, None, False), ("mistral/codestral-2508", True, False, True)]


def test_every_item_invoked_calls_the_controller(pystray: Any) -> None:
    c, rec = FakeController(), Recorder()
    tray = make(pystray, c, rec)
    invoke(tray, "openai/gpt-5.2")
    assert c.calls[-1] == ("set_default_model", "openai/gpt-5.2")
    assert item(tray, "openai/gpt-5.2").checked and not item(tray, "kilo-auto/balanced").checked
    invoke(tray, "Pause")
    assert c.calls[-1] == ("set_paused", True)
    assert tray.icon.menu and item(tray, "Resume")  # the same item now reads Resume
    assert address_line(tray.status).endswith("— paused")
    invoke(tray, "Resume")
    assert c.calls[-1] == ("set_paused", False)
    invoke(tray, "Start at login")
    assert c.calls[-1] == ("set_autostart", True) and item(tray, "Start at login").checked
    invoke(tray, "Start at login")
    assert c.calls[-1] == ("set_autostart", False)
    invoke(tray, "Copy base URL")
    invoke(tray, "Copy API key")
    assert rec.copied == ["http://127.0.0.1:8642/v1", "lg-fake-local-key"]
    invoke(tray, "Open dashboard")
    assert rec.opened == ["http://127.0.0.1:8642/localgate/login?token=one-time-token"]
    invoke(tray, "Quit")
    assert c.calls[-1] == ("quit", None)
    assert tray._stop.is_set()


def test_a_failing_action_is_logged_never_raised(pystray: Any,
                                                 caplog: pytest.LogCaptureFixture) -> None:
    c, rec = FakeController(), Recorder()
    c.fail = {"set_paused", "dashboard_url"}
    tray = make(pystray, c, rec)
    with caplog.at_level(logging.WARNING, logger="localgate"):
        invoke(tray, "Pause")
        invoke(tray, "Open dashboard")
    assert "tray: toggle pause failed: set_paused broke" in caplog.text
    assert "tray: open dashboard failed: dashboard_url broke" in caplog.text
    assert item(tray, "Pause")  # still not paused, still usable
    invoke(tray, "Quit")
    assert c.calls[-1] == ("quit", None)


def test_no_clipboard_is_said_in_one_line(pystray: Any, caplog: pytest.LogCaptureFixture,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    monkeypatch.setenv("DISPLAY", ":99")
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    tray = Tray(FakeController(), pystray=pystray, copy=clipboard.copy)
    with caplog.at_level(logging.WARNING, logger="localgate"):
        invoke(tray, "Copy API key")
    lines = [r.getMessage() for r in caplog.records]
    assert lines == ["tray: copy api key failed: no clipboard here: install xclip or xsel to "
                     "copy from the tray"]
    assert "lg-fake-local-key" not in caplog.text


def test_refresh_follows_spend_and_state(pystray: Any) -> None:
    c, rec = FakeController(spent_today=0, daily_limit=1_000_000), Recorder()
    tray = make(pystray, c, rec, relabel=rec.relabel)
    same = ImageChops.difference(tray.icon.icon.convert("RGBA"),
                                 icons.tray_image("running").convert("RGBA")).getbbox()
    assert same is None
    c._set(spent_today=250_000)
    tray.refresh()
    # only text changed: an open menu is relabelled in place, not rebuilt
    assert rec.relabels == [{"Today: $0.00 of $1.00": "Today: $0.25 of $1.00"}]
    assert spend_line(tray.status) == "Today: $0.25 of $1.00"
    c._set(spent_today=1_000_000, over_limit=True)
    tray.refresh()
    assert rec.relabels[-1] == {
        "localgate 127.0.0.1:8642 — running": "localgate 127.0.0.1:8642 — over limit",
        "Today: $0.25 of $1.00": "Today: $1.00 of $1.00"}
    diff = ImageChops.difference(tray.icon.icon.convert("RGBA"),
                                 icons.tray_image("over limit").convert("RGBA")).getbbox()
    assert diff is None
    c._set(over_limit=False, upstream_failed=True)
    tray.refresh()
    assert tray.status.state == "upstream failed"
    c.fail = {"status"}
    tray.refresh()  # the daemon not answering is not the tray's crash


def test_money_formats() -> None:
    assert money(0) == "$0.00"
    assert money(123) == "$0.0001"
    assert money(12_345_678) == "$12.35"
    assert money(1_234_000_000) == "$1,234.00"


def test_run_returns_when_the_backend_fails_on_stop(pystray: Any) -> None:
    """pystray's GTK backend raises from its own shutdown where no notification service runs;
    Quit must still end run() normally."""
    stopped = threading.Event()

    class FailingOnStop(pystray.Icon):  # type: ignore[misc, name-defined]
        def _run(self) -> None:
            self._mark_ready()
            stopped.wait(10)
            raise RuntimeError("org.freedesktop.Notifications was not provided")

        def _stop(self) -> None:
            stopped.set()

        def _show(self) -> None: ...
        def _hide(self) -> None: ...
        def _update_icon(self) -> None: ...
        def _update_menu(self) -> None: ...

    class Backend:
        Icon = FailingOnStop
        Menu, MenuItem = pystray.Menu, pystray.MenuItem

    c = FakeController()
    tray = Tray(c, pystray=Backend, copy=Recorder().copy)
    threading.Timer(0.2, lambda: item(tray, "Quit")(tray.icon)).start()
    tray.run()  # returns, does not raise
    assert c.calls == [("quit", None)]
