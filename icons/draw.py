"""Draw localgate's icons with Pillow: the gate mark, its state badges, and every format.

The mark is a white gate (an arch on two pillars) on a blue tile, with an amber dot passing
through it: a request going through the gateway. Badges sit bottom-right: paused (amber disc,
two bars; the tile turns grey), over a limit (red disc, one bar: "no entry"), last upstream
call failed (orange triangle with "!"). Each size is drawn on its own 8x supersampled canvas
with its geometry snapped to that size's pixel grid, so 16 px stays crisp.

Run `python icons/draw.py` after changing the art: it rewrites icons/ (the source set) and
the copies the tray loads as package data (localgate/desktop/icons/). A test checks that the
two agree.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from PIL import Image, ImageDraw

HERE = Path(__file__).resolve().parent
PACKAGE_ICONS = HERE.parent / "localgate" / "desktop" / "icons"
SIZES = (16, 24, 32, 48, 64, 128, 256)
TRAY_SIZE = 64
SS = 8  # supersampling factor

BLUE = ((40, 120, 232), (48, 63, 159))       # tile gradient, top -> bottom
GREY = ((120, 138, 150), (78, 92, 104))      # the tile while paused
WHITE = (255, 255, 255, 255)
AMBER = (255, 179, 0, 255)
RED = (229, 57, 53, 255)
ORANGE = (244, 81, 30, 255)
BADGES = ("paused", "over-limit", "upstream-failed")


def _snap(v: float, size: int) -> int:
    """A fraction of the icon, rounded to this size's pixel grid, in supersampled units."""
    return round(v * size) * SS


def _tile(size: int, colours: tuple[tuple[int, int, int], ...]) -> Image.Image:
    n = size * SS
    grad = Image.new("RGBA", (1, n))
    top, bottom = colours
    for y in range(n):
        t = y / max(1, n - 1)
        rgb = tuple(round(a + (b - a) * t) for a, b in zip(top, bottom, strict=True))
        grad.putpixel((0, y), (*rgb, 255))
    grad = grad.resize((n, n))
    mask = Image.new("L", (n, n), 0)
    inset = 0 if size <= 24 else SS * max(1, size // 32)
    ImageDraw.Draw(mask).rounded_rectangle((inset, inset, n - 1 - inset, n - 1 - inset),
                                           radius=round(n * 0.22), fill=255)
    out = Image.new("RGBA", (n, n), (0, 0, 0, 0))
    out.paste(grad, (0, 0), mask)
    return out


def _gate(img: Image.Image, size: int) -> None:
    """Two pillars joined by a round arch, a lintel shadow-free; stroke >= 2 px at 16 px."""
    d = ImageDraw.Draw(img)
    stroke = max(2, round(size * 0.14)) * SS
    left, right = _snap(0.22, size), _snap(0.78, size)
    top, bottom = _snap(0.20, size), _snap(0.82, size)
    width = right - left
    # the arch: an ellipse band whose lower half is hidden by the pillars' inside
    d.ellipse((left, top, right, top + width), fill=WHITE)
    inner = (left + stroke, top + stroke, right - stroke, top + width - stroke)
    mid = top + width // 2
    d.rectangle((left, mid, right, bottom), fill=WHITE)
    hole = Image.new("L", img.size, 0)
    hd = ImageDraw.Draw(hole)
    hd.ellipse(inner, fill=255)
    hd.rectangle((left + stroke, mid, right - stroke, bottom), fill=255)
    img.paste((0, 0, 0, 0), (0, 0), hole)
    # the request passing through: an amber dot low in the opening
    r = max(1.5, size * 0.085) * SS
    cx, cy = (left + right) / 2, bottom - r - max(1, round(size * 0.06)) * SS
    d.ellipse((cx - r, cy - r, cx + r, cy + r), fill=AMBER)


def _badge(img: Image.Image, size: int, kind: str) -> None:
    n = size * SS
    d = ImageDraw.Draw(img)
    diameter = max(9, round(size * 0.52)) * SS
    ring = max(1, round(size * 0.04)) * SS
    x1, y1 = n, n
    x0, y0 = x1 - diameter, y1 - diameter
    if kind == "upstream-failed":
        pts = [((x0 + x1) / 2, y0), (x1, y1), (x0, y1)]
        d.polygon(pts, fill=WHITE)
        grow = ring * 1.9
        inner = [((x0 + x1) / 2, y0 + grow), (x1 - grow * 0.87, y1 - ring),
                 (x0 + grow * 0.87, y1 - ring)]
        d.polygon(inner, fill=ORANGE)
        cx = (x0 + x1) / 2
        bar = max(1, round(size * 0.07)) * SS / 2
        d.rectangle((cx - bar, y0 + diameter * 0.36, cx + bar, y0 + diameter * 0.70), fill=WHITE)
        d.rectangle((cx - bar, y0 + diameter * 0.78, cx + bar, y0 + diameter * 0.78 + 2 * bar),
                    fill=WHITE)
        return
    d.ellipse((x0, y0, x1, y1), fill=WHITE)
    d.ellipse((x0 + ring, y0 + ring, x1 - ring, y1 - ring),
              fill=AMBER if kind == "paused" else RED)
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    bar = max(1, round(size * 0.07)) * SS
    if kind == "paused":
        h, gap = diameter * 0.24, bar * 0.75
        for sx in (cx - gap - bar, cx + gap):
            d.rectangle((sx, cy - h, sx + bar, cy + h), fill=WHITE)
    else:
        w = diameter * 0.27
        d.rectangle((cx - w, cy - bar / 2, cx + w, cy + bar / 2), fill=WHITE)


def draw(size: int, state: str = "normal") -> Image.Image:
    """The icon at `size` px for a state: normal, paused, over-limit, upstream-failed."""
    img = _tile(size, GREY if state == "paused" else BLUE)
    _gate(img, size)
    if state != "normal":
        _badge(img, size, state)
    return img.resize((size, size), Image.Resampling.LANCZOS)


def badge(size: int, kind: str) -> Image.Image:
    img = Image.new("RGBA", (size * SS, size * SS), (0, 0, 0, 0))
    _badge(img, size, kind)
    return img.resize((size, size), Image.Resampling.LANCZOS)


def main() -> None:
    for size in SIZES:
        draw(size).save(HERE / f"localgate-{size}.png")
    big = draw(256)
    big.save(HERE / "localgate.ico", sizes=[(s, s) for s in SIZES])
    draw(1024).save(HERE / "localgate.icns")
    for kind in BADGES:
        badge(64, kind).save(HERE / f"badge-{kind}.png")
        draw(TRAY_SIZE, kind).save(HERE / f"tray-{kind}.png")
    draw(TRAY_SIZE).save(HERE / "tray-normal.png")
    PACKAGE_ICONS.mkdir(exist_ok=True)
    for name in ["tray-normal.png", *(f"tray-{k}.png" for k in BADGES), "localgate-256.png"]:
        shutil.copyfile(HERE / name, PACKAGE_ICONS / name)


if __name__ == "__main__":
    main()
