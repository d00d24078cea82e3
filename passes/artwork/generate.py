"""Draws the default pass artwork (icon.png, logo.png, strip.png) in this folder.

Run once by hand (`python passes/artwork/generate.py`) when the design changes;
the PNGs are committed. They are drawn at @3x size; the renderer scales them.
Logo and strip are white on transparent so they sit on any club colour.
"""

from __future__ import annotations

import math
from pathlib import Path

from PIL import Image, ImageDraw, ImageFilter

HERE = Path(__file__).resolve().parent
WHITE = (255, 255, 255, 255)


def star(cx: float, cy: float, outer: float, inner: float) -> list[tuple[float, float]]:
    points = []
    for i in range(10):
        radius = outer if i % 2 == 0 else inner
        angle = -math.pi / 2 + i * math.pi / 5
        points.append((cx + radius * math.cos(angle), cy + radius * math.sin(angle)))
    return points


def icon() -> Image.Image:
    size = 87 * 4  # drawn large, reduced for smooth edges
    image = Image.new("RGBA", (size, size), (0, 0, 0, 0))  # the club colour goes behind
    draw = ImageDraw.Draw(image)
    draw.rounded_rectangle((40, 80, size - 40, size - 80), radius=28, outline=WHITE, width=14)
    draw.polygon(star(size / 2, size / 2, 70, 30), fill=WHITE)
    return image.resize((87 * 3, 87 * 3), Image.Resampling.LANCZOS)


def logo() -> Image.Image:
    width, height = 160 * 3 * 2, 50 * 3 * 2
    image = Image.new("RGBA", (width, height), (0, 0, 0, 0))
    draw = ImageDraw.Draw(image)
    r = height / 2 - 12
    draw.ellipse((12, height / 2 - r, 12 + 2 * r, height / 2 + r), outline=WHITE, width=16)
    draw.polygon(star(12 + r, height / 2, r * 0.68, r * 0.29), fill=WHITE)
    # Only the emblem: the club's name is the pass's logoText, next to it.
    return image.crop((0, 0, int(24 + 2 * r), height)).resize(
        (int((24 + 2 * r) / 2), height // 2), Image.Resampling.LANCZOS
    )


def strip() -> Image.Image:
    width, height = 375 * 3, 123 * 3
    image = Image.new("RGBA", (width, height), (0, 0, 0, 0))
    layer = Image.new("RGBA", (width, height), (0, 0, 0, 0))
    draw = ImageDraw.Draw(layer)
    for i, alpha in enumerate((34, 24, 16)):
        offset = 60 + i * 90
        points = [(x, height - offset + 40 * math.sin(x / 150 + i)) for x in range(0, width + 10, 10)]
        draw.polygon(points + [(width, height), (0, height)], fill=(255, 255, 255, alpha))
    for cx, cy, r in ((930, 90, 120), (1040, 250, 70), (160, 60, 50)):
        draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=(255, 255, 255, 18))
    image.alpha_composite(layer.filter(ImageFilter.GaussianBlur(2)))
    return image


def main() -> None:
    for name, draw in (("icon", icon), ("logo", logo), ("strip", strip)):
        draw().save(HERE / f"{name}.png", optimize=True)


if __name__ == "__main__":
    main()
