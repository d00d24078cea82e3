"""A member's signed .pkpass, built in separate steps:

model (pass.json data, ``wallet.apple.passdata``) -> files (the club design's
artwork and strings, cached; pass.json) -> manifest (SHA-1 of every file) ->
signature (detached CMS over the manifest) -> zip.
"""

from __future__ import annotations

import copy
import zlib
from dataclasses import dataclass
from datetime import datetime, timezone
from types import SimpleNamespace
from typing import Any, cast

from flask import Flask, current_app

from wallet.apple import passdata
from wallet.apple.certs import SigningIdentity, get_identity
from wallet.apple.pkpass import archive, manifest
from wallet.apple.pkpass.files import StaticFiles, static_files_for
from wallet.apple.pkpass.signature import signer_for
from wallet.config import get_settings
from wallet.db import values_reader
from wallet.loyalty.cardfacts import CardFacts, card_facts, card_languages, club_facts, member_facts
from wallet.loyalty.models import Club, Membership
from wallet.loyalty.nps import survey_url
from wallet.lru import LRU

MIME_TYPE = "application/vnd.apple.pkpass"


@dataclass(frozen=True, eq=False)
class PassSettings:
    identity: SigningIdentity
    public_base_url: str

    @property
    def web_service_url(self) -> str:
        return self.public_base_url.rstrip("/") + "/apple"


def settings_for(app: Flask | None = None) -> PassSettings:
    """The app's pass settings, made once: they key the per-club caches."""
    application = app or current_app
    settings = application.extensions.get("wallet.apple.pass_settings")
    identity = get_identity(application)
    if settings is None or settings.identity is not identity:
        settings = PassSettings(identity, get_settings(application).public_base_url)
        application.extensions["wallet.apple.pass_settings"] = settings
    return settings


def club_context(club: Club, settings: PassSettings) -> passdata.ClubContext:
    return passdata.ClubContext(
        pass_type_identifier=settings.identity.pass_type_identifier,
        team_identifier=settings.identity.team_identifier,
        web_service_url=settings.web_service_url,
        organization_name=club.brand.name,
        logo_text=club.logo_text or club.name,
        description=f"{club.name} loyalty card",
        foreground_color=club.foreground_color,
        background_color=club.background_color,
        label_color=club.label_color,
        barcode_format=club.barcode_format,
        locations=club.locations or [],
        card_style=club.card_style or "store_card",
        featured_actions=tuple((a["type"], a["url"]) for a in club.featured_actions or []),
    )


def pass_json(membership: Membership, settings: PassSettings) -> dict[str, Any]:
    """pass.json of the member as a dictionary (for checks and tools)."""
    facts = card_facts(membership)
    return passdata.build_pass_json(
        facts, club_context(membership.club, settings),
        authentication_token=membership.auth_token,
        survey_url=survey_url(settings.public_base_url, membership),
    )


@dataclass(frozen=True)
class SignedPass:
    """A .pkpass as the parts a server sends one after the other (the club
    design's entries, shared by every pass of the design, then this pass's
    own), without a join of the whole archive."""

    parts: tuple[bytes, ...]

    def __len__(self) -> int:
        return sum(map(len, self.parts))

    def __bytes__(self) -> bytes:
        return b"".join(self.parts)


class ClubSnapshot:
    """A club's columns (its artwork aside) and its brand's name, copied out
    of the session they were loaded in: a cached design must not change or
    expire with somebody's session."""

    def __init__(self, club: Club) -> None:
        for attr in _CLUB_COLUMNS:
            setattr(self, attr, copy.deepcopy(getattr(club, attr)))
        self.brand = SimpleNamespace(name=club.brand.name)


_CLUB_COLUMNS = tuple(a.key for a in Club.__mapper__.column_attrs if not a.deferred)


class ClubDesign:
    """What every pass of one club state shares: the club's columns, its
    artwork and strings laid out as files, manifest hashes and zip entries,
    the club's share of the card facts, and the club's part of pass.json,
    serialized on first use."""

    def __init__(self, club: Club, static: StaticFiles, settings: PassSettings) -> None:
        # Read as a club by the card facts and pass.json's club part.
        self.club = cast(Club, ClubSnapshot(club))
        self.facts = club_facts(self.club)
        self.static = static
        self.entries = archive.OwnEntries(static.zip, OWN_FILES)
        self.signer = signer_for(settings.identity)
        self._settings = settings
        self._json: passdata.ClubJson | None = None

    def json(self, facts: CardFacts) -> passdata.ClubJson:
        """The club's keys and back fields (``facts`` of any member)."""
        if self._json is None:
            self._json = passdata.club_json(facts, club_context(self.club, self._settings))
        return self._json


# A pass's own files, after its club design's, in the zip's order.
OWN_FILES = ("pass.json", "manifest.json", "signature")

ClubState = tuple[int, datetime, int, datetime, str]


def club_state(club: Club) -> ClubState:
    """What a club's share of its passes depends on: every column of a club
    is behind updated_at (set on insert and on every update), its artwork
    behind design_version too; created_at tells a club from a deleted one
    whose id was used again; the brand's name is on the card."""
    club_id, updated_at, design_version, created_at, brand = _CLUB_STATE(club)
    return (club_id, updated_at, design_version, created_at, brand.name)


_CLUB_STATE = values_reader(Club, ("id", "updated_at", "design_version", "created_at", "brand"))
# What a build reads of the membership besides its card facts.
_PASS_KEYS = values_reader(Membership, ("club", "auth_token"))


_designs: LRU[ClubDesign] = LRU(512)


def cached_design(state: ClubState, settings: PassSettings) -> ClubDesign | None:
    return _designs.get((state, settings))


def club_design(club: Club, settings: PassSettings) -> ClubDesign:
    """The club's share of its passes, made once per club state (the
    artwork rendered once per design): ``club`` with its brand loaded, and
    its artwork loadable on first use of a design."""
    key = (club_state(club), settings)
    found = _designs.get(key)
    if found is None:
        found = ClubDesign(club, static_files_for(club, card_languages(club)), settings)
        _designs.put(key, found)
    return found


def sign_card(facts: CardFacts, design: ClubDesign, settings: PassSettings, *, authentication_token: str,
              survey_url: str | None, now: datetime | None = None) -> SignedPass:
    """The pass of a member's card facts in the club's design (made for
    ``settings``): per pass only pass.json's member part, the manifest's
    last entry, the signature and the zip's last entries are made."""
    moment = now or datetime.now(timezone.utc)
    # 1. model
    pass_json_data = passdata.pass_json_bytes(facts, design.json(facts), authentication_token=authentication_token,
                                              survey_url=survey_url)
    # 2. manifest
    manifest_json, manifest_crc, manifest_digest = manifest.finish_hashed(
        design.static.manifest, (("pass.json", pass_json_data),))
    # 3. signature
    signature, signature_crc = design.signer.sign_for_zip(manifest_digest, moment)
    # 4. zip
    return SignedPass(design.entries.finish_parts(
        (pass_json_data, manifest_json, signature),
        (zlib.crc32(pass_json_data), manifest_crc, signature_crc),
        moment,
    ))


def build_signed_pass(membership: Membership, settings: PassSettings, *, now: datetime | None = None) -> SignedPass:
    """The member's pass (club and brand loaded with it)."""
    club, authentication_token = _PASS_KEYS(membership)
    design = club_design(club, settings)
    facts = member_facts(membership, design.facts)
    return sign_card(facts, design, settings, authentication_token=authentication_token,
                     survey_url=survey_url(settings.public_base_url, membership), now=now)


def build_pkpass(membership: Membership, settings: PassSettings, *, now: datetime | None = None) -> bytes:
    return bytes(build_signed_pass(membership, settings, now=now))


def render_pkpass(membership: Membership, app: Flask | None = None) -> bytes:
    """The member's current .pkpass, signed with the app's identity."""
    return build_pkpass(membership, settings_for(app))
