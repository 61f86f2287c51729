"""The icon set: every size and format SPEC section 8 names, the state badges, the tray's
package-data copies identical to icons/, what icons/draw.py draws today, and a mark that stays
legible (and states that stay distinct) at 16 px.
"""

from __future__ import annotations

import importlib.util
import itertools
from pathlib import Path

import pytest
from PIL import Image, ImageChops, ImageStat

from localgate.desktop import icons

ROOT = Path(__file__).resolve().parent.parent
ICONS = ROOT / "icons"
SIZES = (16, 24, 32, 48, 64, 128, 256)
STATES = ("normal", "paused", "over-limit", "upstream-failed")


def _open(path: Path) -> Image.Image:
    with Image.open(path) as img:
        img.load()
    return img


def _draw_module():  # icons/draw.py is a script, not part of the package
    spec = importlib.util.spec_from_file_location("draw_icons", ICONS / "draw.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("size", SIZES)
def test_png_sizes(size: int) -> None:
    img = _open(ICONS / f"localgate-{size}.png")
    assert img.size == (size, size) and img.mode == "RGBA"


def test_ico_and_icns_hold_every_size() -> None:
    ico = _open(ICONS / "localgate.ico")
    assert set(SIZES) <= {w for w, h in ico.info["sizes"]}
    icns = _open(ICONS / "localgate.icns")
    assert {(16, 16), (32, 32), (128, 128), (256, 256), (512, 512)} <= \
        {(w, h) for w, h, *_ in icns.info["sizes"]}


def test_tray_images_come_from_package_data_and_match_icons_dir() -> None:
    for state, name in icons.STATES.items():
        shipped = icons.tray_image(state)
        assert shipped.size == (64, 64)
        source = _open(ICONS / f"tray-{name}.png")
        assert ImageChops.difference(shipped.convert("RGBA"),
                                     source.convert("RGBA")).getbbox() is None
    for f in (ROOT / "localgate/desktop/icons").iterdir():
        assert f.read_bytes() == (ICONS / f.name).read_bytes(), f"{f.name}: run icons/draw.py"


@pytest.mark.parametrize("state", STATES)
def test_committed_art_is_what_draw_py_draws(state: str) -> None:
    drawn = _draw_module().draw(64, state).convert("RGBA")
    committed = _open(ICONS / f"tray-{state}.png").convert("RGBA")
    worst = max(hi for _, hi in ImageChops.difference(drawn, committed).getextrema())
    assert worst <= 8, "the art changed: run `python icons/draw.py` and commit the result"


def test_badges_exist() -> None:
    for kind in STATES[1:]:
        img = _open(ICONS / f"badge-{kind}.png")
        assert img.size == (64, 64) and ImageStat.Stat(img.getchannel("A")).mean[0] > 20


def test_legible_at_16_px() -> None:
    img = _open(ICONS / "localgate-16.png").convert("RGBA")
    px = [img.getpixel((x, y)) for x in range(16) for y in range(16)]
    white = sum(1 for r, g, b, a in px if a > 200 and min(r, g, b) > 200)
    blue = sum(1 for r, g, b, a in px if a > 200 and b > 140 and r < 110)
    assert white >= 25, "the gate must read as a shape at 16 px"
    assert blue >= 80, "on its tile"
    # the arch is open at the bottom middle (a gate, not a block): the centre column is not
    # white below the arch's crown
    column = [img.getpixel((8, y)) for y in range(8, 13)]
    assert not all(min(p[:3]) > 200 for p in column)
    drawn = _draw_module()
    for a, b in itertools.combinations(STATES, 2):  # every state looks different at 16 px
        diff = ImageChops.difference(drawn.draw(16, a), drawn.draw(16, b)).convert("L")
        assert sum(1 for v in diff.tobytes() if v > 60) >= 8, (a, b)
