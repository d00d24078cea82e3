"""Apple's renditions of a club's artwork: ``render_artwork`` makes icon, logo
and strip at @1x/@2x/@3x in Apple's exact pixel sizes from the stored uploads
(checked by wallet.artwork), scaled to fit and padded, never stretched or
cropped; a poster card also gets its artwork (scaled to cover the whole
poster, the overhang cut evenly) and its primary logo."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from wallet.artwork import (DEFAULT_BACKGROUND, cover, fit, load_or_default, parse_hex_color, poster_picture,
                            to_picture_png, to_png)

# Apple's storeCard image sizes in points (PassKit Programming Guide,
# "Pass Design and Creation"): icon 29 x 29; logo 160 x 50 at most; strip
# 375 x 123 for store cards (144 is for gift cards and coupons, 98 for event
# tickets). Renditions are these times 1, 2 and 3.
IMAGE_POINTS: Mapping[str, tuple[int, int]] = {
    "icon": (29, 29),
    "logo": (160, 50),
    "strip": (375, 123),
}
# A poster card (Human Interface Guidelines, Wallet, "Pass images"; poster
# generic passes): the background artwork.png is 358 x 448 points, and
# primaryLogo.png is 30 points high and 30 to 126 wide. The store card's
# images stay in the pass for phones before iOS 27, which show the store card.
POSTER_POINTS: Mapping[str, tuple[int, int]] = {
    "artwork": (358, 448),
    "primaryLogo": (126, 30),
}
SCALES = (1, 2, 3)


def rendition_name(kind: str, scale: int) -> str:
    return f"{kind}.png" if scale == 1 else f"{kind}@{scale}x.png"


def rendition_size(kind: str, scale: int) -> tuple[int, int]:
    width, height = IMAGE_POINTS[kind] if kind in IMAGE_POINTS else POSTER_POINTS[kind]
    return width * scale, height * scale


@dataclass(frozen=True)
class Design:
    """What the artwork of one club design depends on."""

    background_color: str
    logo: bytes | None = None
    strip: bytes | None = None
    icon: bytes | None = None
    poster: bool = False
    artwork: bytes | None = None


def render_artwork(design: Design) -> dict[str, bytes]:
    """icon/logo/strip (and a poster's artwork and primaryLogo) at
    @1x/@2x/@3x as PNG bytes, keyed by file name."""
    background = parse_hex_color(design.background_color) or DEFAULT_BACKGROUND
    logo = load_or_default(design.logo, "logo")
    strip = load_or_default(design.strip, "strip")
    # Without an icon of its own, a club's logo on its colour makes a better
    # icon than the generic default.
    icon = load_or_default(design.icon, "icon") if design.icon or not design.logo else logo
    files: dict[str, bytes] = {}
    for scale in SCALES:
        files[rendition_name("icon", scale)] = to_png(
            fit(icon, rendition_size("icon", scale), fill=background + (255,), align="center",
                margin=0.1 if icon is logo else 0)
        )
        files[rendition_name("logo", scale)] = to_png(
            fit(logo, rendition_size("logo", scale), fill=(0, 0, 0, 0), align="left")
        )
        files[rendition_name("strip", scale)] = to_picture_png(
            fit(strip, rendition_size("strip", scale), fill=background + (255,), align="center")
        )
    if design.poster:
        picture = poster_picture(design.artwork, design.logo, design.background_color,
                                 rendition_size("artwork", SCALES[-1]))
        for scale in SCALES:
            files[rendition_name("artwork", scale)] = to_picture_png(cover(picture, rendition_size("artwork", scale)))
            files[rendition_name("primaryLogo", scale)] = to_png(
                fit(logo, rendition_size("primaryLogo", scale), fill=(0, 0, 0, 0), align="left")
            )
    return files


__all__ = [
    "Design",
    "IMAGE_POINTS",
    "POSTER_POINTS",
    "SCALES",
    "render_artwork",
    "rendition_name",
    "rendition_size",
]
