"""Signing certificates: the development chain, loading real ones, start-up checks."""

from __future__ import annotations

import datetime as dt
import logging
import shutil
import stat
import subprocess
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from tests.support.app import TEST_PASS_TYPE, TEST_TEAM
from wallet import create_app
from wallet.config import Settings
from wallet.apple.certs import (
    PASS_TYPE_ID_EXTENSION,
    CertificateError,
    get_identity,
    load_signing_identity,
    write_dev_chain,
)


def _config(tmp_path: Path, dev_dir: Path, instance: Path | None = None, **extra: Any) -> Settings:
    return Settings.load({}, {
        "INSTANCE_PATH": instance or tmp_path / "instance",
        "CERTS_DIR": str(tmp_path / "certs"),
        "DEV_CERTS_DIR": str(dev_dir),
        "USE_DEV_CERTS": True,
        "PASS_TYPE_IDENTIFIER": TEST_PASS_TYPE,
        "TEAM_IDENTIFIER": TEST_TEAM,
        "PASS_CERT_PASSWORD": None,
        **extra,
    })


def _real_certs_from(dev_certs_dir: Path, target: Path) -> Path:
    """A CERTS_DIR laid out as certs.example/README.md says, with the dev leaf."""
    target.mkdir(parents=True, exist_ok=True)
    shutil.copy(dev_certs_dir / "pass.pem", target / "pass.pem")
    shutil.copy(dev_certs_dir / "pass.key", target / "pass.key")
    shutil.copy(dev_certs_dir / "wwdr.pem", target / "wwdr.pem")
    return target


# -- development chain -------------------------------------------------------


def test_dev_chain_is_shaped_like_apples(dev_certs_dir: Path) -> None:
    leaf = x509.load_pem_x509_certificate((dev_certs_dir / "pass.pem").read_bytes())
    wwdr = x509.load_pem_x509_certificate((dev_certs_dir / "wwdr.pem").read_bytes())

    def attr(name: x509.Name, oid: x509.ObjectIdentifier) -> str:
        return str(name.get_attributes_for_oid(oid)[0].value)

    assert attr(leaf.subject, NameOID.USER_ID) == TEST_PASS_TYPE
    assert attr(leaf.subject, NameOID.COMMON_NAME) == f"Pass Type ID: {TEST_PASS_TYPE}"
    assert attr(leaf.subject, NameOID.ORGANIZATIONAL_UNIT_NAME) == TEST_TEAM
    ext = leaf.extensions.get_extension_for_oid(PASS_TYPE_ID_EXTENSION)
    assert TEST_PASS_TYPE.encode() in ext.value.value  # type: ignore[attr-defined]
    eku = leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert ExtendedKeyUsageOID.CLIENT_AUTH in eku  # the APNs TLS client certificate too
    assert leaf.public_key().key_size == 2048  # type: ignore[union-attr]

    assert attr(wwdr.subject, NameOID.COMMON_NAME) == (
        "Apple Worldwide Developer Relations Certification Authority"
    )
    assert attr(wwdr.subject, NameOID.ORGANIZATIONAL_UNIT_NAME) == "G4"
    assert leaf.issuer == wwdr.subject


def test_dev_chain_verifies_with_openssl(dev_certs_dir: Path) -> None:
    result = subprocess.run(
        ["openssl", "verify", "-CAfile", str(dev_certs_dir / "dev-ca-bundle.pem"),
         "-purpose", "sslclient", str(dev_certs_dir / "pass.pem")],
        capture_output=True, text=True, check=False,
    )
    assert result.returncode == 0, result.stderr


def test_dev_keys_are_private_and_paths_complete(tmp_path: Path) -> None:
    paths = write_dev_chain(tmp_path / "dev", pass_type_identifier="pass.a.b", team_identifier="TEAMA")
    for name in ("root_cert", "wwdr_cert", "pass_cert", "pass_key", "ca_bundle"):
        assert paths[name].is_file(), name
    for name in ("pass_key", "root_key", "wwdr_key"):
        assert stat.S_IMODE(paths[name].stat().st_mode) == 0o600, name


def test_dev_chain_is_kept_unless_forced(tmp_path: Path) -> None:
    first = write_dev_chain(tmp_path, pass_type_identifier="pass.a.b", team_identifier="TEAMA")
    before = {name: path.read_bytes() for name, path in first.items()}
    again = write_dev_chain(tmp_path, pass_type_identifier="pass.a.b", team_identifier="TEAMA")
    assert {name: path.read_bytes() for name, path in again.items()} == before

    forced = write_dev_chain(tmp_path, pass_type_identifier="pass.a.b", team_identifier="TEAMA", force=True)
    assert forced["root_cert"].read_bytes() != before["root_cert"]
    assert forced["pass_key"].read_bytes() != before["pass_key"]


def test_dev_leaf_is_reissued_for_other_identifiers(tmp_path: Path) -> None:
    first = write_dev_chain(tmp_path, pass_type_identifier="pass.a.b", team_identifier="TEAMA")
    root = first["root_cert"].read_bytes()
    write_dev_chain(tmp_path, pass_type_identifier="pass.c.d", team_identifier="TEAMC")
    leaf = x509.load_pem_x509_certificate(first["pass_cert"].read_bytes())
    assert "pass.c.d" in leaf.subject.rfc4514_string()
    assert first["root_cert"].read_bytes() == root


# -- the identity the app loads ----------------------------------------------


def test_app_loads_dev_identity_once(app: Any, dev_certs_dir: Path) -> None:
    identity = get_identity(app)
    assert identity is app.extensions["wallet.apple.identity"]
    assert get_identity(app) is identity
    assert identity.development
    assert (identity.pass_type_identifier, identity.team_identifier) == (TEST_PASS_TYPE, TEST_TEAM)
    assert identity.tls_cert_file.read_bytes() == (dev_certs_dir / "pass.pem").read_bytes()
    key = serialization.load_pem_private_key(identity.tls_key_file.read_bytes(), None)
    assert key.public_key().public_numbers() == identity.certificate.public_key().public_numbers()  # type: ignore[union-attr]


def test_dev_chain_generated_on_first_start(tmp_path: Path) -> None:
    dev_dir = tmp_path / "fresh-dev-certs"
    identity = load_signing_identity(_config(tmp_path, dev_dir))
    assert (dev_dir / "pass.pem").is_file()
    assert identity.ca_bundle_file == dev_dir / "dev-ca-bundle.pem"


def test_real_pem_certificates_are_preferred(tmp_path: Path, dev_certs_dir: Path) -> None:
    certs = _real_certs_from(dev_certs_dir, tmp_path / "certs")
    identity = load_signing_identity(_config(tmp_path, tmp_path / "unused"))
    assert not identity.development
    assert identity.tls_cert_file == certs / "pass.pem"
    assert not (tmp_path / "unused").exists()


def test_encrypted_pem_key_needs_the_password(tmp_path: Path, dev_certs_dir: Path) -> None:
    certs = _real_certs_from(dev_certs_dir, tmp_path / "certs")
    key = serialization.load_pem_private_key((dev_certs_dir / "pass.key").read_bytes(), None)
    (certs / "pass.key").write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"s3cret"),
    ))
    with pytest.raises(CertificateError, match="PASS_CERT_PASSWORD"):
        load_signing_identity(_config(tmp_path, tmp_path / "unused"))
    identity = load_signing_identity(_config(tmp_path, tmp_path / "unused", PASS_CERT_PASSWORD="s3cret"))
    # TLS clients get a decrypted copy only we can read.
    assert stat.S_IMODE(identity.tls_key_file.stat().st_mode) == 0o600
    serialization.load_pem_private_key(identity.tls_key_file.read_bytes(), None)


def _export_p12(dev_certs_dir: Path, out: Path, password: str, *, legacy: bool) -> None:
    command = ["openssl", "pkcs12", "-export", "-in", str(dev_certs_dir / "pass.pem"),
               "-inkey", str(dev_certs_dir / "pass.key"), "-out", str(out),
               "-passout", f"pass:{password}"]
    if legacy:
        # RC2-40 as old Keychain exports; OpenSSL 3 refuses it without -legacy.
        command.append("-legacy")
    subprocess.run(command, check=True, capture_output=True)


@pytest.mark.parametrize("legacy", [False, True], ids=["aes", "rc2-40"])
def test_p12_from_keychain_loads(tmp_path: Path, dev_certs_dir: Path, legacy: bool) -> None:
    certs = tmp_path / "certs"
    certs.mkdir()
    _export_p12(dev_certs_dir, certs / "pass.p12", "keychain-pw", legacy=legacy)
    shutil.copy(dev_certs_dir / "wwdr.pem", certs / "wwdr.pem")

    identity = load_signing_identity(_config(tmp_path, tmp_path / "unused", PASS_CERT_PASSWORD="keychain-pw"))
    assert identity.pass_type_identifier == TEST_PASS_TYPE
    assert identity.tls_key_file.is_relative_to(tmp_path / "instance")
    assert stat.S_IMODE(identity.tls_key_file.stat().st_mode) == 0o600
    assert identity.tls_cert_file.read_bytes().startswith(b"-----BEGIN CERTIFICATE-----")


def test_p12_with_wrong_password_is_one_clear_error(tmp_path: Path, dev_certs_dir: Path) -> None:
    certs = tmp_path / "certs"
    certs.mkdir()
    _export_p12(dev_certs_dir, certs / "pass.p12", "right", legacy=True)
    shutil.copy(dev_certs_dir / "wwdr.pem", certs / "wwdr.pem")
    with pytest.raises(CertificateError, match="PASS_CERT_PASSWORD"):
        load_signing_identity(_config(tmp_path, tmp_path / "unused", PASS_CERT_PASSWORD="wrong"))


def test_der_wwdr_as_apple_ships_it_is_accepted(tmp_path: Path, dev_certs_dir: Path) -> None:
    certs = _real_certs_from(dev_certs_dir, tmp_path / "certs")
    wwdr = x509.load_pem_x509_certificate((certs / "wwdr.pem").read_bytes())
    (certs / "wwdr.pem").unlink()
    (certs / "AppleWWDRCAG4.cer").write_bytes(wwdr.public_bytes(serialization.Encoding.DER))
    identity = load_signing_identity(_config(tmp_path, tmp_path / "unused"))
    assert identity.wwdr_certificate == wwdr


def test_mismatched_identifiers_stop_start_up_naming_both(
    app_config: dict[str, Any], dev_certs_dir: Path, tmp_path: Path
) -> None:
    certs = _real_certs_from(dev_certs_dir, tmp_path / "certs")
    app_config.update(CERTS_DIR=str(certs), PASS_TYPE_IDENTIFIER="pass.other.id", TEAM_IDENTIFIER="OTHER")
    with pytest.raises(CertificateError) as caught:
        create_app(app_config)
    message = str(caught.value)
    for value in (TEST_PASS_TYPE, "pass.other.id", TEST_TEAM, "OTHER"):
        assert value in message


@pytest.mark.parametrize(
    ("breakage", "expected"),
    [
        ("no_wwdr", "WWDR"),
        ("no_key", "pass.key"),
        ("garbage_cert", "not a PEM or DER certificate"),
        ("garbage_key", "cannot be read"),
        ("foreign_key", "does not belong"),
    ],
)
def test_broken_certs_dir_is_one_clear_error(
    tmp_path: Path, dev_certs_dir: Path, breakage: str, expected: str
) -> None:
    certs = _real_certs_from(dev_certs_dir, tmp_path / "certs")
    if breakage == "no_wwdr":
        (certs / "wwdr.pem").unlink()
    elif breakage == "no_key":
        (certs / "pass.key").unlink()
    elif breakage == "garbage_cert":
        (certs / "pass.pem").write_text("-----BEGIN CERTIFICATE-----\nnonsense\n-----END CERTIFICATE-----\n")
    elif breakage == "garbage_key":
        (certs / "pass.key").write_text("not a key")
    elif breakage == "foreign_key":
        other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        (certs / "pass.key").write_bytes(other.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ))
    with pytest.raises(CertificateError, match=expected):
        load_signing_identity(_config(tmp_path, tmp_path / "unused"))


def test_wrong_intermediate_is_refused(tmp_path: Path, dev_certs_dir: Path) -> None:
    certs = _real_certs_from(dev_certs_dir, tmp_path / "certs")
    other = write_dev_chain(tmp_path / "other-chain", pass_type_identifier="pass.x", team_identifier="X")
    shutil.copy(other["wwdr_cert"], certs / "wwdr.pem")
    with pytest.raises(CertificateError, match="not issued by the WWDR intermediate"):
        load_signing_identity(_config(tmp_path, tmp_path / "unused"))


def test_no_certs_and_dev_certs_off_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(CertificateError, match="USE_DEV_CERTS"):
        load_signing_identity(_config(tmp_path, tmp_path / "dev", USE_DEV_CERTS=False, instance=tmp_path / "i"))


def _leaf_expiring_in(dev_certs_dir: Path, days: int) -> tuple[bytes, bytes]:
    wwdr = x509.load_pem_x509_certificate((dev_certs_dir / "wwdr.pem").read_bytes())
    wwdr_key = serialization.load_pem_private_key((dev_certs_dir / "dev-wwdr.key").read_bytes(), None)
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    now = dt.datetime.now(dt.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([
            x509.NameAttribute(NameOID.USER_ID, TEST_PASS_TYPE),
            x509.NameAttribute(NameOID.COMMON_NAME, f"Pass Type ID: {TEST_PASS_TYPE}"),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, TEST_TEAM),
        ]))
        .issuer_name(wwdr.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=300))
        .not_valid_after(now + dt.timedelta(days=days))
        .sign(wwdr_key, hashes.SHA256())  # type: ignore[arg-type]
    )
    return (cert.public_bytes(serialization.Encoding.PEM),
            key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                              serialization.NoEncryption()))


def test_expiry_within_30_days_warns(tmp_path: Path, dev_certs_dir: Path, caplog: pytest.LogCaptureFixture) -> None:
    certs = _real_certs_from(dev_certs_dir, tmp_path / "certs")
    cert_pem, key_pem = _leaf_expiring_in(dev_certs_dir, 10)
    (certs / "pass.pem").write_bytes(cert_pem)
    (certs / "pass.key").write_bytes(key_pem)
    with caplog.at_level(logging.WARNING, logger="wallet.apple.certs"):
        load_signing_identity(_config(tmp_path, tmp_path / "unused"))
    assert any("expires on" in record.getMessage() for record in caplog.records)


def test_far_expiry_does_not_warn(tmp_path: Path, dev_certs_dir: Path, caplog: pytest.LogCaptureFixture) -> None:
    _real_certs_from(dev_certs_dir, tmp_path / "certs")
    with caplog.at_level(logging.WARNING, logger="wallet.apple.certs"):
        load_signing_identity(_config(tmp_path, tmp_path / "unused"))
    assert not [r for r in caplog.records if "expires on" in r.getMessage()]


def test_expired_certificate_is_refused(tmp_path: Path, dev_certs_dir: Path) -> None:
    certs = _real_certs_from(dev_certs_dir, tmp_path / "certs")
    cert_pem, key_pem = _leaf_expiring_in(dev_certs_dir, -1)
    (certs / "pass.pem").write_bytes(cert_pem)
    (certs / "pass.key").write_bytes(key_pem)
    with pytest.raises(CertificateError, match="expired"):
        load_signing_identity(_config(tmp_path, tmp_path / "unused"))


def test_identity_is_parsed_once_and_reread_when_files_change(tmp_path: Path, dev_certs_dir: Path) -> None:
    certs = _real_certs_from(dev_certs_dir, tmp_path / "certs")
    config = _config(tmp_path, tmp_path / "unused")
    first = load_signing_identity(config)
    assert load_signing_identity(replace(config, instance_path=tmp_path / "other-instance")) is first

    other = write_dev_chain(tmp_path / "renewed", pass_type_identifier=TEST_PASS_TYPE, team_identifier=TEST_TEAM)
    for name in ("pass_cert", "pass_key", "wwdr_cert"):
        target = {"pass_cert": "pass.pem", "pass_key": "pass.key", "wwdr_cert": "wwdr.pem"}[name]
        shutil.copy(other[name], certs / target)
    renewed = load_signing_identity(config)
    assert renewed is not first
    assert renewed.certificate.serial_number != first.certificate.serial_number


def test_dev_certs_command_writes_the_chain(app_config: dict[str, Any], tmp_path: Path) -> None:
    import json

    app_config["DEV_CERTS_DIR"] = str(tmp_path / "cli-dev-certs")
    application = create_app(app_config)
    try:
        assert not (tmp_path / "cli-dev-certs").exists()  # creating the app writes no keys
        result = application.test_cli_runner().invoke(args=["dev-certs"])
        assert result.exit_code == 0, result.output
        paths = json.loads(result.output)
        assert {"root_cert", "wwdr_cert", "pass_cert", "pass_key", "ca_bundle"} <= set(paths)
        before = Path(paths["pass_cert"]).read_bytes()
        assert application.test_cli_runner().invoke(args=["dev-certs"]).exit_code == 0
        assert Path(paths["pass_cert"]).read_bytes() == before  # kept unless --force
        assert application.test_cli_runner().invoke(args=["dev-certs", "--force"]).exit_code == 0
        assert Path(paths["pass_cert"]).read_bytes() != before
    finally:
        application.extensions["wallet.db"].dispose()
