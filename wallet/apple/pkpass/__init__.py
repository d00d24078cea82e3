"""A member's signed .pkpass, built in separate steps:

model (pass.json data, ``wallet.apple.passdata``) -> files (the club design's
artwork and strings, cached; pass.json) -> manifest (SHA-1 of every file) ->
signature (detached CMS over the manifest) -> zip.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone

from flask import Flask, current_app

from wallet.apple import passdata
from wallet.apple.certs import SigningIdentity, get_identity
from wallet.apple.pkpass import archive, manifest
from wallet.apple.pkpass.files import static_files_for
from wallet.apple.pkpass.signature import signer_for
from wallet.loyalty.cardfacts import CardFacts, card_facts
from wallet.loyalty.models import Membership

MIME_TYPE = "application/vnd.apple.pkpass"


@dataclass(frozen=True)
class PassSettings:
    identity: SigningIdentity
    public_base_url: str

    @property
    def web_service_url(self) -> str:
        return self.public_base_url.rstrip("/") + "/apple"


def settings_for(app: Flask | None = None) -> PassSettings:
    application = app or current_app
    return PassSettings(get_identity(application), application.config["PUBLIC_BASE_URL"])


def pass_context(membership: Membership, facts: CardFacts, settings: PassSettings) -> passdata.PassContext:
    club = membership.club
    return passdata.PassContext(
        pass_type_identifier=settings.identity.pass_type_identifier,
        team_identifier=settings.identity.team_identifier,
        web_service_url=settings.web_service_url,
        authentication_token=membership.auth_token,
        organization_name=facts.brand_name,
        logo_text=club.logo_text or club.name,
        description=f"{club.name} loyalty card",
        foreground_color=club.foreground_color,
        background_color=club.background_color,
        label_color=club.label_color,
        barcode_format=club.barcode_format,
        locations=club.locations or [],
        locale=(membership.customer.locale if membership.customer else None) or "en",
    )


def build_pkpass(membership: Membership, settings: PassSettings, *, now: datetime | None = None) -> bytes:
    moment = now or datetime.now(timezone.utc)
    # 1. model
    facts = card_facts(membership)
    pass_json = passdata.dumps(passdata.build_pass_json(facts, pass_context(membership, facts, settings)))
    # 2. files
    static = static_files_for(membership.club)
    dynamic = [("pass.json", pass_json)]
    # 3. manifest
    manifest_json = manifest.finish(static.manifest, dynamic)
    # 4. signature
    signature = signer_for(settings.identity).sign(manifest_json, moment)
    # 5. zip
    return archive.finish(
        static.zip,
        dynamic + [("manifest.json", manifest_json), ("signature", signature)],
        moment,
    )


def render_pkpass(membership: Membership, app: Flask | None = None) -> bytes:
    """The member's current .pkpass, signed with the app's identity."""
    return build_pkpass(membership, settings_for(app))
