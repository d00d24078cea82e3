"""The words of a card, in each language it is written in.

``passes/storeCard/<lang>.lproj/pass.strings`` holds the labels and change
messages: the Apple pass carries the files of its club's languages, and the
Google class and object, and the portal's preview, label the card with the
same words. Shared by Apple and Google, like ``wallet.artwork``.
"""

from __future__ import annotations

import re
from functools import lru_cache

from wallet.config import PROJECT_ROOT
from wallet.loyalty.locales import LOCALES

STRINGS_DIR = PROJECT_ROOT / "passes" / "storeCard"
_STRING = re.compile(r'^"((?:[^"\\]|\\.)*)"\s*=\s*"((?:[^"\\]|\\.)*)";', re.M)


@lru_cache(maxsize=len(LOCALES))
def strings_source(language: str) -> str:
    """``<language>.lproj/pass.strings`` as written (UTF-8)."""
    return (STRINGS_DIR / f"{language}.lproj" / "pass.strings").read_text(encoding="utf-8")


@lru_cache(maxsize=len(LOCALES))
def labels(language: str) -> dict[str, str]:
    """The card's words in ``language``, keyed by the English text pass.json
    carries; empty for a language the card is not written in."""
    if language not in LOCALES:
        return {}
    return {key.replace('\\"', '"'): value.replace('\\"', '"')
            for key, value in _STRING.findall(strings_source(language))}
