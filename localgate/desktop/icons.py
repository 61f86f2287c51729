"""The tray's images, read from package data (localgate/desktop/icons/, drawn by
icons/draw.py), so they are found the same way from a checkout and from an installed wheel."""

from __future__ import annotations

from importlib import resources
from typing import Any

STATES = {"running": "normal", "paused": "paused", "over limit": "over-limit",
          "upstream failed": "upstream-failed"}


def tray_image(state: str) -> Any:
    """The icon for a Status.state ("running", "paused", "over limit", "upstream failed")."""
    from PIL import Image
    name = f"tray-{STATES.get(state, 'normal')}.png"
    with resources.files("localgate.desktop").joinpath("icons", name).open("rb") as f:
        img = Image.open(f)
        img.load()
    return img
