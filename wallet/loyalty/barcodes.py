"""The barcode formats a club's card can carry, and card numbers each can encode.

The formats are what Apple Wallet draws (Pass.Barcodes: QR, PDF417, Aztec,
Code 128, and since iOS 27 Code 39, Codabar, EAN-13 and Interleaved 2 of 5).
The card number is the barcode's message, so a format that encodes only some
texts decides what numbers a club hands out: an EAN-13 club's numbers are 13
digits whose last is the EAN check digit (GS1 General Specifications 7.9.1),
in the 20-29 prefix range that GS1 keeps for numbers used inside a company,
so a till never mistakes a card for a product. Every other format encodes the
12-digit numbers with a Luhn check digit that clubs have always had; ITF
encodes digits in pairs, so its numbers need an even count.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable

# Our names for the formats, in the order the club form offers them.
FORMATS = ("qr", "pdf417", "aztec", "code128", "code39", "codabar", "ean13", "itf")
# Drawn only by iOS 27 and later: a pass with one of them needs a fallback.
NEW_IN_IOS_27 = frozenset({"code39", "codabar", "ean13", "itf"})
LINEAR = frozenset({"code128", "code39", "codabar", "ean13", "itf"})

CARD_DIGITS = 12  # 11 random digits and a Luhn check digit
EAN13_DIGITS = 13

_CODE39 = re.compile(r"^[0-9A-Z\-. $/+%]+$")
_CODABAR = re.compile(r"^[0-9\-$:/.+]+$")


def luhn_check_digit(digits: str) -> str:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2 == 0:  # doubled: the rightmost payload digit sits next to the check digit
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return str((10 - total % 10) % 10)


def luhn_valid(number: str) -> bool:
    return number.isascii() and number.isdigit() and len(number) > 1 and luhn_check_digit(number[:-1]) == number[-1]


def ean13_check_digit(digits: str) -> str:
    """The check digit of 12 digits: weights 1 and 3 from the left, the
    digit that brings the sum to a multiple of ten."""
    if len(digits) != EAN13_DIGITS - 1 or not (digits.isascii() and digits.isdigit()):
        raise ValueError("an EAN-13 check digit is computed over exactly 12 digits")
    total = sum(int(ch) * (3 if i % 2 else 1) for i, ch in enumerate(digits))
    return str((10 - total % 10) % 10)


def ean13_valid(number: str) -> bool:
    return (len(number) == EAN13_DIGITS and number.isascii() and number.isdigit()
            and ean13_check_digit(number[:-1]) == number[-1])


def _itf(text: str) -> bool:
    return text.isascii() and text.isdigit() and len(text) % 2 == 0


# What a format asks of its message beyond Latin-1 text (the 2D formats and
# Code 128 ask nothing more).
_CHECKS: dict[str, Callable[[str], bool]] = {
    "ean13": ean13_valid,
    "itf": _itf,
    "code39": lambda text: bool(_CODE39.match(text)),
    "codabar": lambda text: bool(_CODABAR.match(text)),
}
# The formats ``encodable`` asks more of than Latin-1 text.
CHECKED_FORMATS = frozenset(_CHECKS)


def encodable(barcode_format: str, text: str) -> bool:
    """Whether ``text`` can be the message of a ``barcode_format`` barcode
    as a till reads it back (EAN-13 with a right check digit, ITF in digit
    pairs); the 2D formats and Code 128 take any Latin-1 text."""
    if not text:
        return False
    check = _CHECKS.get(barcode_format)
    if check is not None:
        return check(text)
    try:
        text.encode("iso-8859-1")
    except UnicodeEncodeError:
        return False
    return True


def new_card_number(barcode_format: str = "qr") -> str:
    """A random card number the club's barcode format encodes."""
    if barcode_format == "ean13":
        body = "2" + "".join(str(secrets.randbelow(10)) for _ in range(EAN13_DIGITS - 2))
        return body + ean13_check_digit(body)
    body = str(1 + secrets.randbelow(9)) + "".join(str(secrets.randbelow(10)) for _ in range(CARD_DIGITS - 2))
    return body + luhn_check_digit(body)


__all__ = [
    "CHECKED_FORMATS",
    "FORMATS",
    "LINEAR",
    "NEW_IN_IOS_27",
    "ean13_check_digit",
    "ean13_valid",
    "encodable",
    "luhn_check_digit",
    "luhn_valid",
    "new_card_number",
]
