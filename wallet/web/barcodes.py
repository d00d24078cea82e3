"""A card's barcode drawn on our side, in the club's barcode format, so the
card page shows at the till exactly what the pass shows.

zxing-cpp encodes every format a club can choose; the PNG keeps one pixel
per module with a quiet zone, and the page scales it up without smoothing.
A number the club's format cannot carry is drawn the way the pass falls
back (``wallet.apple.passdata.barcode_chain``): the first format that can.
"""

from __future__ import annotations

import base64
import io

import zxingcpp
from PIL import Image

from wallet.apple.passdata import barcode_chain
from wallet.loyalty.barcodes import LINEAR

_FORMATS = {
    "qr": zxingcpp.BarcodeFormat.QRCode,
    "pdf417": zxingcpp.BarcodeFormat.PDF417,
    "aztec": zxingcpp.BarcodeFormat.Aztec,
    "code128": zxingcpp.BarcodeFormat.Code128,
    "code39": zxingcpp.BarcodeFormat.Code39,
    "codabar": zxingcpp.BarcodeFormat.Codabar,
    "ean13": zxingcpp.BarcodeFormat.EAN13,
    "itf": zxingcpp.BarcodeFormat.ITF,
}
# Linear bars are one module tall as drawn: taller modules make a scannable strip.
_LINEAR_HEIGHT = 40


def barcode_png(text: str, barcode_format: str) -> bytes:
    """``text`` as a PNG barcode of ``barcode_format`` (one of
    ``wallet.loyalty.barcodes.FORMATS``; QR for anything else)."""
    name = barcode_chain(text, barcode_format)[0]
    if name == "codabar":
        # Codabar starts and stops with a guard letter; the message carries
        # none (as in Apple's and Google's examples), so draw the usual A.
        text = f"A{text}A"
    symbol = zxingcpp.create_barcode(text, _FORMATS[name]).to_image(scale=1, add_quiet_zones=True)
    height, width = symbol.shape
    image = Image.frombytes("L", (width, height), bytes(memoryview(symbol)))
    if name in LINEAR and height < _LINEAR_HEIGHT:
        image = image.resize((width, _LINEAR_HEIGHT), Image.Resampling.NEAREST)
    out = io.BytesIO()
    image.convert("1").save(out, format="PNG", optimize=True)
    return out.getvalue()


def barcode_base64(text: str, barcode_format: str) -> str:
    """The barcode PNG as base64, for a data: URL in a page."""
    return base64.b64encode(barcode_png(text, barcode_format)).decode("ascii")
