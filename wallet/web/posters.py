"""The printable QR poster of a club: an A4 page for a shop counter whose QR
code opens the club's join page.

Drawn with Pillow from plain data (no Flask inside), once as an image; the
PDF is the same page through Pillow's PDF writer at its print resolution,
so both print the same. Text uses DejaVu Sans where Debian installs it
(fonts-dejavu-core: Latin and Cyrillic), else Pillow's built-in font.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import qrcode
from PIL import Image, ImageDraw, ImageFont
from qrcode.constants import ERROR_CORRECT_M

DPI = 150
PAGE = (1240, 1754)  # A4 at 150 dpi
MARGIN = 90
FONT_DIRS = (Path("/usr/share/fonts/truetype/dejavu"),)

Font = ImageFont.FreeTypeFont | ImageFont.ImageFont


@dataclass(frozen=True)
class PosterText:
    """What the poster says, already in the reader's language."""

    headline: str
    club_name: str
    scan_hint: str
    join_url: str
    benefits: tuple[str, ...]
    footer: str


@dataclass(frozen=True)
class PosterStyle:
    background: str
    foreground: str
    logo_png: bytes | None


@lru_cache(maxsize=16)
def _font(size: int, bold: bool = False) -> Font:
    name = "DejaVuSans-Bold.ttf" if bold else "DejaVuSans.ttf"
    for folder in FONT_DIRS:
        if (folder / name).exists():
            return ImageFont.truetype(str(folder / name), size)
    return ImageFont.load_default(size)


def _wrap(draw: ImageDraw.ImageDraw, text: str, font: Font, width: int) -> list[str]:
    lines: list[str] = []
    for paragraph in text.splitlines() or [""]:
        line = ""
        for word in paragraph.split():
            candidate = f"{line} {word}".strip()
            if draw.textlength(candidate, font=font) <= width or not line:
                line = candidate
            else:
                lines.append(line)
                line = word
        lines.append(line)
    return lines


def _centred(draw: ImageDraw.ImageDraw, y: int, text: str, font: Font, fill: str, max_lines: int = 3) -> int:
    """Draws ``text`` centred from ``y`` down; returns the y below it."""
    line_height = int(font.size * 1.25) if isinstance(font, ImageFont.FreeTypeFont) else 20
    for line in _wrap(draw, text, font, PAGE[0] - 2 * MARGIN)[:max_lines]:
        draw.text((PAGE[0] // 2, y), line, font=font, fill=fill, anchor="ma")
        y += line_height
    return y


def _qr(url: str, side: int) -> Image.Image:
    code = qrcode.QRCode(error_correction=ERROR_CORRECT_M, border=2)
    code.add_data(url)
    code.make(fit=True)
    image = code.make_image(fill_color="black", back_color="white").get_image().convert("L")
    # Whole pixels per module keep the code sharp when printed.
    modules = image.size[0]
    scale = max(1, side // modules)
    return image.resize((modules * scale, modules * scale), Image.Resampling.NEAREST)


def render_poster(text: PosterText, style: PosterStyle) -> Image.Image:
    page = Image.new("RGB", PAGE, "white")
    draw = ImageDraw.Draw(page)
    band = 360
    draw.rectangle((0, 0, PAGE[0], band), fill=style.background)
    logo = None
    if style.logo_png:
        try:
            logo = Image.open(io.BytesIO(style.logo_png)).convert("RGBA")
        except OSError:
            logo = None  # artwork was checked on upload; a poster still prints without it
    if logo is not None:
        logo.thumbnail((PAGE[0] - 2 * MARGIN, 150))
        page.paste(logo, ((PAGE[0] - logo.width) // 2, 70), logo)
        _centred(draw, 250, text.club_name, _font(48, bold=True), style.foreground, max_lines=1)
    else:
        _centred(draw, 120, text.club_name, _font(84, bold=True), style.foreground, max_lines=2)
    y = _centred(draw, band + 70, text.headline, _font(70, bold=True), "#111827", max_lines=2)
    code = _qr(text.join_url, 720)
    page.paste(code, ((PAGE[0] - code.width) // 2, y + 30))
    y += 30 + code.height + 30
    y = _centred(draw, y, text.scan_hint, _font(40, bold=True), "#111827", max_lines=2)
    y = _centred(draw, y + 6, text.join_url, _font(30), "#374151", max_lines=2)
    y += 24
    for line in text.benefits[:3]:
        y = _centred(draw, y, "• " + line, _font(34), "#111827", max_lines=2)
    _centred(draw, PAGE[1] - MARGIN - 30, text.footer, _font(30), "#4b5563", max_lines=1)
    return page


def poster_png(text: PosterText, style: PosterStyle) -> bytes:
    out = io.BytesIO()
    render_poster(text, style).save(out, format="PNG", dpi=(DPI, DPI), optimize=True)
    return out.getvalue()


def poster_pdf(text: PosterText, style: PosterStyle) -> bytes:
    out = io.BytesIO()
    render_poster(text, style).save(out, format="PDF", resolution=DPI, title=text.club_name)
    return out.getvalue()
