"""A card's barcode drawn on our side, in the club's barcode format, so the
card page shows at the till exactly what the pass shows.

zxing-cpp encodes (QR, PDF417, Aztec, Code 128); the PNG keeps one pixel
per module with a quiet zone, and the page scales it up without smoothing.
"""

from __future__ import annotations

import base64
import io

import zxingcpp
from PIL import Image

_FORMATS = {
    "qr": zxingcpp.BarcodeFormat.QRCode,
    "pdf417": zxingcpp.BarcodeFormat.PDF417,
    "aztec": zxingcpp.BarcodeFormat.Aztec,
    "code128": zxingcpp.BarcodeFormat.Code128,
}
# Code 128 bars are one module wide: taller modules make a scannable strip.
_LINEAR_HEIGHT = 40


def barcode_png(text: str, barcode_format: str) -> bytes:
    """``text`` as a PNG barcode of ``barcode_format`` (one of
    ``wallet.loyalty.clubs.BARCODE_FORMATS``; QR for anything else)."""
    fmt = _FORMATS.get(barcode_format, _FORMATS["qr"])
    symbol = zxingcpp.create_barcode(text, fmt).to_image(scale=1, add_quiet_zones=True)
    height, width = symbol.shape
    image = Image.frombytes("L", (width, height), bytes(memoryview(symbol)))
    if fmt == zxingcpp.BarcodeFormat.Code128 and height < _LINEAR_HEIGHT:
        image = image.resize((width, _LINEAR_HEIGHT), Image.Resampling.NEAREST)
    out = io.BytesIO()
    image.convert("1").save(out, format="PNG", optimize=True)
    return out.getvalue()


def barcode_base64(text: str, barcode_format: str) -> str:
    """The barcode PNG as base64, for a data: URL in a page."""
    return base64.b64encode(barcode_png(text, barcode_format)).decode("ascii")
