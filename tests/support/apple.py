"""Helpers of the Apple tests: rows inserted with the models directly (so the
tests need no enrol()), and checks of a .pkpass as Apple would make them."""

from __future__ import annotations

import hashlib
import io
import json
import os
import secrets
import subprocess
import tempfile
import zipfile
from pathlib import Path
from typing import Any

from wallet.db import Database
from wallet.loyalty.models import Brand, Club, Membership

POINTS_TIERS_PROGRAM: dict[str, Any] = {
    "points": {"earn_points": 5, "per_amount": 10000, "redeem_value": 100, "expiry_days": 365},
    "tiers": {
        "window_days": 365,
        "review_days": 30,
        "levels": [
            {"name": "Silver", "min_spend": 0, "earn_points": 5, "discount_percent": None},
            {"name": "Gold", "min_spend": 3000000, "earn_points": 7, "discount_percent": "3"},
        ],
    },
    "cashback": {"percent": "2.5"},
}


def make_club(db: Database, **overrides: Any) -> int:
    with db.transaction() as session:
        brand = Brand(name=overrides.pop("brand_name", "Coffee & Co"),
                      email=f"{secrets.token_hex(6)}@brand.test")
        settings: dict[str, Any] = {
            "name": "Bean Club", "program": POINTS_TIERS_PROGRAM,
            "terms": "Points are valid for one year.", "contact_email": "hello@coffee.test",
            "contact_phone": "+7 900 000-00-00",
        }
        club = Club(brand=brand, **{**settings, **overrides})
        session.add(club)
        session.flush()
        return club.id


def make_member(db: Database, club_id: int, **overrides: Any) -> int:
    with db.transaction() as session:
        token = secrets.token_hex(4)
        membership = Membership(
            club_id=club_id,
            email=f"m{token}@example.test",
            locale=overrides.pop("locale", "en"),
            card_number=overrides.pop("card_number", str(secrets.randbelow(10**12)).zfill(12)),
            serial_number=secrets.token_hex(16),
            auth_token=secrets.token_urlsafe(24),
            download_token=secrets.token_urlsafe(24),
            name=overrides.pop("name", "Anna Petrova"),
            **overrides,
        )
        session.add(membership)
        session.flush()
        return membership.id


# --------------------------------------------------------------------------
# Opening and checking a .pkpass
# --------------------------------------------------------------------------


def unzip(data: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        assert archive.testzip() is None
        return {name: archive.read(name) for name in archive.namelist()}


def manifest_problems(files: dict[str, bytes]) -> list[str]:
    """Every file but manifest.json and signature must be in the manifest with
    its SHA-1, and the manifest must name nothing else."""
    manifest = json.loads(files["manifest.json"])
    problems = []
    for name, data in files.items():
        if name in ("manifest.json", "signature"):
            continue
        if name not in manifest:
            problems.append(f"{name} missing from manifest")
        elif manifest[name] != hashlib.sha1(data).hexdigest():
            problems.append(f"{name} has the wrong SHA-1 in the manifest")
    problems.extend(f"manifest names {n}, not in the zip" for n in manifest if n not in files)
    return problems


def openssl_verify(signature: bytes, manifest: bytes, ca_bundle: Path) -> subprocess.CompletedProcess[str]:
    """`openssl cms -verify` exactly as a person would check a pass by hand."""
    with tempfile.TemporaryDirectory() as tmp:
        sig_path, manifest_path = Path(tmp) / "signature", Path(tmp) / "manifest.json"
        sig_path.write_bytes(signature)
        manifest_path.write_bytes(manifest)
        return subprocess.run(
            ["openssl", "cms", "-verify", "-binary", "-inform", "DER", "-in", str(sig_path),
             "-content", str(manifest_path), "-CAfile", str(ca_bundle), "-purpose", "any",
             "-out", os.devnull],
            capture_output=True, text=True, check=False,
        )


def ca_bundle(dev_certs_dir: Path) -> Path:
    from wallet.apple.certs import DEV_FILES

    return dev_certs_dir / DEV_FILES["ca_bundle"]
