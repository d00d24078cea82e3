"""A member's signed .pkpass, built in separate steps:

model (pass.json data, ``wallet.apple.passdata``) -> files (the club design's
artwork and strings, cached; pass.json) -> manifest (SHA-1 of every file) ->
signature (detached CMS over the manifest) -> zip.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from flask import Flask, current_app

from wallet.apple import passdata
from wallet.apple.certs import SigningIdentity, get_identity
from wallet.apple.pkpass import archive, manifest
from wallet.apple.pkpass.files import club_json_for, static_files_for
from wallet.apple.pkpass.signature import signer_for
from wallet.config import get_settings
from wallet.loyalty.cardfacts import card_facts
from wallet.loyalty.models import Club, Membership
from wallet.loyalty.nps import survey_url

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
        return sum(len(part) for part in self.parts)

    def __bytes__(self) -> bytes:
        return b"".join(self.parts)


def build_signed_pass(membership: Membership, settings: PassSettings, *, now: datetime | None = None) -> SignedPass:
    moment = now or datetime.now(timezone.utc)
    club = membership.club
    # 1. model
    facts = card_facts(membership)
    club_part = club_json_for(club, facts.brand_name, settings,
                              lambda: passdata.club_json(facts, club_context(club, settings)))
    pass_json_data = passdata.pass_json_bytes(
        facts, club_part, authentication_token=membership.auth_token,
        survey_url=survey_url(settings.public_base_url, membership),
    )
    # 2. files
    static = static_files_for(club, facts.languages)
    dynamic = [("pass.json", pass_json_data)]
    # 3. manifest
    manifest_json = manifest.finish(static.manifest, dynamic)
    # 4. signature
    signature = signer_for(settings.identity).sign(manifest_json, moment)
    # 5. zip
    return SignedPass(archive.finish_parts(
        static.zip,
        dynamic + [("manifest.json", manifest_json), ("signature", signature)],
        moment,
    ))


def build_pkpass(membership: Membership, settings: PassSettings, *, now: datetime | None = None) -> bytes:
    return bytes(build_signed_pass(membership, settings, now=now))


def render_pkpass(membership: Membership, app: Flask | None = None) -> bytes:
    """The member's current .pkpass, signed with the app's identity."""
    return build_pkpass(membership, settings_for(app))
