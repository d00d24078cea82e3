"""The parts of a pass that are the same for every member of a club.

Artwork renditions (icon/logo/strip, and a poster's artwork/primaryLogo,
@1x/@2x/@3x) and the pass.strings of each language the club's card is
written in are rendered, hashed and laid out as zip entries once per
(club id, design version) and kept in a bounded in-process LRU; a club
state's share of every pass (wallet.apple.pkpass.ClubDesign) holds them.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime, timezone
from functools import lru_cache
from typing import Any, Generic, Hashable, TypeVar

from wallet.apple import images
from wallet.apple.pkpass import archive, manifest
from wallet.passtext import strings_source

CACHE_SIZE = 128


@dataclass(frozen=True)
class StaticFiles:
    files: tuple[tuple[str, bytes], ...]
    manifest: manifest.ManifestPrefix
    zip: archive.ZipPrefix


@lru_cache(maxsize=8)
def strings_files(languages: tuple[str, ...]) -> tuple[tuple[str, bytes], ...]:
    """<lang>.lproj/pass.strings of each of ``languages`` as UTF-16 (Apple
    reads .strings files as UTF-16; the sources are kept in UTF-8). A phone
    whose language the card lacks shows the first one's."""
    return tuple((f"{lang}.lproj/pass.strings", strings_source(lang).encode("utf-16")) for lang in languages)


def design_of(club: Any) -> images.Design:
    return images.Design(
        background_color=club.background_color,
        logo=club.logo_png,
        strip=club.strip_png,
        icon=club.icon_png,
        poster=club.card_style == "poster",
        artwork=club.artwork_png if club.card_style == "poster" else None,
    )


def build_static_files(design: images.Design, languages: tuple[str, ...]) -> StaticFiles:
    artwork = images.render_artwork(design)
    files = tuple(artwork.items()) + strings_files(languages)
    return StaticFiles(
        files=files,
        manifest=manifest.build_prefix(files),
        zip=archive.build_prefix(files, datetime.now(timezone.utc)),
    )


V = TypeVar("V")


class LRU(Generic[V]):
    """A bounded, thread-safe map that drops the least recently used."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._items: OrderedDict[Hashable, V] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Hashable) -> V | None:
        with self._lock:
            value = self._items.get(key)
            if value is not None:
                self._items.move_to_end(key)
            return value

    def put(self, key: Hashable, value: V) -> None:
        with self._lock:
            self._items[key] = value
            self._items.move_to_end(key)
            while len(self._items) > self._size:
                self._items.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()

    def __len__(self) -> int:
        return len(self._items)


_cache: LRU[StaticFiles] = LRU(CACHE_SIZE)


def design_key(club: Any, languages: tuple[str, ...]) -> Hashable:
    # created_at tells apart a deleted club and a new one that got its id.
    return (club.id, club.design_version, club.created_at, languages)


def static_files_for(club: Any, languages: tuple[str, ...]) -> StaticFiles:
    """The club design's files in the card's ``languages``, rendered on first
    use and then reused."""
    key = design_key(club, languages)
    found = _cache.get(key)
    if found is None:
        # Two threads may both render a new design once; both results are equal.
        found = build_static_files(design_of(club), languages)
        _cache.put(key, found)
    return found


def clear_cache() -> None:
    _cache.clear()
