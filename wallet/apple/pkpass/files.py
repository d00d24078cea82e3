"""The parts of a pass that are the same for every member of a club.

Artwork renditions (icon/logo/strip, and a poster's artwork/primaryLogo,
@1x/@2x/@3x) and the pass.strings of each language the club's card is
written in are rendered, hashed and laid out as zip entries once per
(club id, design version) and kept in a bounded in-process LRU; a club
state's share of every pass (wallet.apple.pkpass.ClubDesign) holds them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from functools import lru_cache
from typing import Any, Hashable

from wallet.apple import images
from wallet.apple.pkpass import archive, manifest
from wallet.lru import LRU
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
