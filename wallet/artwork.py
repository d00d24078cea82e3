"""Artwork shared by every card platform: checking a brand's upload, the
default pictures, and fitting a picture into a box of a given size.

A brand uploads one logo (and optionally a strip and an icon) in any
reasonable PNG or JPEG; ``validate_and_normalize_image`` refuses what is not a
sound image of sane size and stores a plain PNG. Apple's renditions
(wallet.apple.images) and Google's square program logo (``square_logo``) are
both made from it by ``fit``: the picture is scaled to fit and padded, never
stretched or cropped.
"""

from __future__ import annotations

import io
import logging
import warnings
from functools import lru_cache

from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError

from wallet.config import PROJECT_ROOT
from wallet.loyalty.errors import RuleViolation

log = logging.getLogger(__name__)

# Upload limits. Pillow's own bomb guard only warns below twice its limit, so
# the limits here are explicit and every warning while decoding is an error.
MAX_UPLOAD_BYTES = 5 * 1024 * 1024
MAX_SIDE = 6000
MAX_PIXELS = 24_000_000
MIN_SIDE = 16
# Stored uploads are reduced to what the largest rendition (strip @3x, 1125
# wide) needs, and to a PNG of at most STORED_MAX_BYTES (the loyalty core's
# limit for a club image); photos that compress badly are scaled down further.
STORED_MAX_SIDE = 1125
# A poster card's artwork is drawn up to 1074 x 1344 (358 x 448 points @3x).
ARTWORK_STORED_MAX_SIDE = 1344
STORED_MAX_BYTES = 1024 * 1024
ACCEPTED_FORMATS = {"PNG", "JPEG", "WEBP", "GIF"}

DEFAULT_ARTWORK_DIR = PROJECT_ROOT / "passes" / "artwork"
# A club without colours of its own: a dark slate.
DEFAULT_BACKGROUND = (31, 41, 55)


class ImageRejected(RuleViolation):
    """The uploaded file is not an image we can put on a card; says why, and
    its code says what: image_empty, image_too_big (bytes), image_too_small,
    image_too_large (pixels), image_not_accepted (not a PNG or JPEG),
    image_broken."""

    default_code = "image_broken"


# --------------------------------------------------------------------------
# Uploads
# --------------------------------------------------------------------------


def validate_and_normalize_image(data: bytes, *, max_side: int = STORED_MAX_SIDE) -> bytes:
    """Checks an upload and returns it as an RGBA PNG of at most
    ``max_side`` pixels a side and (but for absurd cases) STORED_MAX_BYTES.

    Raises ImageRejected for empty, oversized, broken, truncated, non-image and
    decompression-bomb inputs.
    """
    if not isinstance(data, (bytes, bytearray, memoryview)) or len(data) == 0:
        raise ImageRejected("the file is empty", code="image_empty")
    if len(data) > MAX_UPLOAD_BYTES:
        raise ImageRejected(
            f"the file is {len(data) // 1024} KiB; at most {MAX_UPLOAD_BYTES // (1024 * 1024)} MiB is accepted",
            code="image_too_big")
    image = _decode(bytes(data))
    image.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
    while True:
        out = io.BytesIO()
        image.save(out, format="PNG", optimize=True)
        if out.tell() <= STORED_MAX_BYTES or max(image.size) <= 256:
            return out.getvalue()
        image = image.resize((max(1, image.width * 3 // 4), max(1, image.height * 3 // 4)),
                             Image.Resampling.LANCZOS)


def _decode(data: bytes) -> Image.Image:
    """Opens, checks and fully decodes an image; header checks come before
    any pixel is decoded, so a bomb is refused without being expanded."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            with Image.open(io.BytesIO(data)) as probe:
                fmt = probe.format
                width, height = probe.size
                _check_header(fmt, width, height)
                probe.verify()  # checksums and structure, without decoding
            image = Image.open(io.BytesIO(data))
            if ImageFile.LOAD_TRUNCATED_IMAGES:
                # Someone turned Pillow's truncation check off process-wide;
                # a half image must still be refused.
                raise ImageRejected("cannot check for truncation: ImageFile.LOAD_TRUNCATED_IMAGES is on")
            image.load()  # a truncated file fails here
            image = ImageOps.exif_transpose(image) or image
            return image.convert("RGBA")
        except ImageRejected:
            raise
        except (Image.DecompressionBombWarning, Image.DecompressionBombError) as exc:
            raise ImageRejected(f"the image is too large to decode safely ({exc})", code="image_too_large") from exc
        except UnidentifiedImageError as exc:
            raise ImageRejected("the file is not a PNG or JPEG image", code="image_not_accepted") from exc
        except (OSError, SyntaxError, ValueError, EOFError) as exc:
            # Pillow reports broken and truncated data as these.
            raise ImageRejected(f"the image is broken or truncated ({exc})") from exc
        except Exception as exc:  # noqa: BLE001 - decoders fail in odd ways on hostile input
            raise ImageRejected(f"the image is broken ({type(exc).__name__})") from exc


def _check_header(fmt: str | None, width: int, height: int) -> None:
    if fmt not in ACCEPTED_FORMATS:
        raise ImageRejected(f"{fmt or 'this'} images are not accepted; upload a PNG or JPEG",
                            code="image_not_accepted")
    if width < MIN_SIDE or height < MIN_SIDE:
        raise ImageRejected(f"the image is {width}x{height} pixels; at least {MIN_SIDE}x{MIN_SIDE} is needed",
                            code="image_too_small")
    if width > MAX_SIDE or height > MAX_SIDE or width * height > MAX_PIXELS:
        raise ImageRejected(
            f"the image is {width}x{height} pixels; at most {MAX_SIDE} pixels a side and "
            f"{MAX_PIXELS // 1_000_000} megapixels are accepted", code="image_too_large")


# --------------------------------------------------------------------------
# Fitting and defaults
# --------------------------------------------------------------------------


def square_logo(logo: bytes | None, background_color: str, side: int) -> bytes:
    """The club's logo centred on a square of its background colour, as PNG:
    the shape Google Wallet asks for its programLogo (660x660)."""
    background = parse_hex_color(background_color) or DEFAULT_BACKGROUND
    return to_png(fit(load_or_default(logo, "logo"), (side, side), fill=background + (255,), align="center",
                      margin=0.12))


def poster_picture(artwork: bytes | None, logo: bytes | None, background_color: str,
                   size: tuple[int, int]) -> Image.Image:
    """A poster card's picture, to be cut to ``size`` by ``cover``: the
    brand's artwork, or without one the logo on the club's colour."""
    if artwork:
        return load_or_default(artwork, "logo")
    background = parse_hex_color(background_color) or DEFAULT_BACKGROUND
    return fit(load_or_default(logo, "logo"), size, fill=background + (255,), align="center", margin=0.2)


def load_or_default(data: bytes | None, kind: str) -> Image.Image:
    """The stored picture decoded, or the default one of its kind."""
    if data:
        try:
            return _decode(data)
        except ImageRejected as exc:
            # Stored artwork was checked on upload; if it is unreadable now the
            # card still renders, with the default picture.
            log.warning("stored %s image unusable, using the default: %s", kind, exc)
    return default_artwork(kind)


@lru_cache(maxsize=None)
def _default_bytes(kind: str) -> bytes:
    return (DEFAULT_ARTWORK_DIR / f"{kind}.png").read_bytes()


def default_artwork(kind: str) -> Image.Image:
    return _decode(_default_bytes(kind))


def fit(source: Image.Image, size: tuple[int, int], *, fill: tuple[int, int, int, int],
        align: str, margin: float = 0.0) -> Image.Image:
    """Scales ``source`` to fit inside ``size`` keeping its proportions and
    pads the rest with ``fill``."""
    width, height = size
    inner_w = max(1, round(width * (1 - 2 * margin)))
    inner_h = max(1, round(height * (1 - 2 * margin)))
    ratio = min(inner_w / source.width, inner_h / source.height)
    new_size = (max(1, round(source.width * ratio)), max(1, round(source.height * ratio)))
    scaled = source.resize(new_size, Image.Resampling.LANCZOS)
    canvas = Image.new("RGBA", size, fill)
    x = 0 if align == "left" else (width - new_size[0]) // 2
    y = (height - new_size[1]) // 2
    canvas.alpha_composite(scaled, (x, y))
    return canvas


def cover(source: Image.Image, size: tuple[int, int]) -> Image.Image:
    """Scales ``source`` to cover all of ``size`` keeping its proportions and
    cuts the overhang evenly from both sides: a full-bleed picture."""
    width, height = size
    ratio = max(width / source.width, height / source.height)
    scaled = source.resize((max(width, round(source.width * ratio)), max(height, round(source.height * ratio))),
                           Image.Resampling.LANCZOS)
    left = (scaled.width - width) // 2
    top = (scaled.height - height) // 2
    return scaled.crop((left, top, left + width, top + height))


def to_png(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.save(out, format="PNG", optimize=True)
    return out.getvalue()


def to_picture_png(image: Image.Image) -> bytes:
    """A full-bleed picture (a strip, a poster's artwork, Google's hero) as
    PNG: an opaque one in a palette of at most 256 colours; one with
    transparency as it is.

    Such pictures are often photos, and every phone downloads its card again
    after every change: a poster's three renditions of a photo came to 3.6 MB
    as 32-bit PNG and to 1.4 MB in a palette. A picture of at most 256
    colours keeps them exactly; one of more gets an octree's palette with
    error diffusion, which keeps every area's colour (the dither is not
    visible at the phones' 2x and 3x densities; median cut gave rare colours
    too few entries and shifted them)."""
    if "A" in image.getbands() and image.getextrema()[-1][0] < 255:
        return to_png(image)
    picture = image.convert("RGB")
    if picture.getcolors(256) is not None:
        return to_png(picture.quantize(256, method=Image.Quantize.MEDIANCUT))
    # Pillow's quantize dithers only when mapping to a palette it is given.
    palette = picture.quantize(256, method=Image.Quantize.FASTOCTREE)
    return to_png(picture.quantize(palette=palette, dither=Image.Dither.FLOYDSTEINBERG))


def parse_hex_color(value: str | None) -> tuple[int, int, int] | None:
    """'#RRGGBB' (or 'RRGGBB', '#RGB') to an RGB triple; None when malformed."""
    if not value:
        return None
    text = value.strip().lstrip("#")
    if len(text) == 3:
        text = "".join(ch * 2 for ch in text)
    if len(text) != 6:
        return None
    try:
        return int(text[0:2], 16), int(text[2:4], 16), int(text[4:6], 16)
    except ValueError:
        return None


def image_size(data: bytes) -> tuple[int, int]:
    with Image.open(io.BytesIO(data)) as image:
        return image.size


__all__ = [
    "ARTWORK_STORED_MAX_SIDE",
    "DEFAULT_BACKGROUND",
    "ImageRejected",
    "cover",
    "default_artwork",
    "fit",
    "image_size",
    "load_or_default",
    "parse_hex_color",
    "poster_picture",
    "square_logo",
    "to_picture_png",
    "to_png",
    "validate_and_normalize_image",
]
