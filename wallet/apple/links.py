"""Public links to a member's Apple pass."""

from __future__ import annotations

from wallet.config import get_settings
from wallet.loyalty.models import Membership

DOWNLOAD_PREFIX = "/apple/cards"


def apple_pass_path(download_token: str) -> str:
    return f"{DOWNLOAD_PREFIX}/{download_token}.pkpass"


def apple_pass_url(membership: Membership, base_url: str | None = None) -> str:
    """The unguessable URL the member's .pkpass downloads from (their
    download_token is the secret part; it is not the auth token)."""
    base = (base_url or get_settings().public_base_url).rstrip("/")
    return base + apple_pass_path(membership.download_token)
