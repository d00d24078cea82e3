"""Certificates for signing passes: the development chain and the loaded identity.

Apple signs nothing for us in development, so the service makes its own chain
shaped like Apple's: a root, an intermediate with the subject of Apple's WWDR
G4, and a Pass Type ID leaf with the same subject fields and extension. A pass
signed by it verifies with openssl against that chain; an iPhone will not
install it (only Apple's chain is trusted there).
"""

from __future__ import annotations

import datetime as dt
import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID, ObjectIdentifier

# Apple's "Pass Type ID" marker extension; its value is the pass type id.
PASS_TYPE_ID_EXTENSION = ObjectIdentifier("1.2.840.113635.100.6.1.16")
# Apple's extended key usage for Pass Type ID certificates.
APPLE_PASS_EKU = ObjectIdentifier("1.2.840.113635.100.4.14")

DEV_FILES = {
    "root_cert": "dev-root.pem",
    "root_key": "dev-root.key",
    "wwdr_cert": "wwdr.pem",
    "wwdr_key": "dev-wwdr.key",
    "pass_cert": "pass.pem",
    "pass_key": "pass.key",
    "ca_bundle": "dev-ca-bundle.pem",
}


class CertificateError(RuntimeError):
    """The signing certificates are missing, broken or do not match the config."""


# --------------------------------------------------------------------------
# Development chain
# --------------------------------------------------------------------------


def write_dev_chain(
    directory: str | os.PathLike[str],
    *,
    pass_type_identifier: str,
    team_identifier: str,
    force: bool = False,
) -> dict[str, Path]:
    """Writes (or reuses) a development chain in ``directory``.

    Existing files are kept unless ``force``; a leaf issued for other
    identifiers is re-issued under the same root and intermediate, so changing
    PASS_TYPE_IDENTIFIER in development just works.
    """
    folder = Path(directory)
    folder.mkdir(parents=True, exist_ok=True)
    paths = {name: folder / filename for name, filename in DEV_FILES.items()}
    with _dir_lock(folder):
        have_ca = all(paths[n].exists() for n in ("root_cert", "root_key", "wwdr_cert", "wwdr_key"))
        if force or not have_ca:
            root_key, root_cert = _make_root()
            wwdr_key, wwdr_cert = _make_wwdr(root_key, root_cert)
            _write_key(paths["root_key"], root_key)
            _write_cert(paths["root_cert"], root_cert)
            _write_key(paths["wwdr_key"], wwdr_key)
            _write_cert(paths["wwdr_cert"], wwdr_cert)
            leaf_needed = True
        else:
            root_cert = x509.load_pem_x509_certificate(paths["root_cert"].read_bytes())
            wwdr_cert = x509.load_pem_x509_certificate(paths["wwdr_cert"].read_bytes())
            wwdr_key = serialization.load_pem_private_key(paths["wwdr_key"].read_bytes(), None)
            leaf_needed = not _leaf_matches(paths, pass_type_identifier, team_identifier)
        if leaf_needed:
            assert isinstance(wwdr_key, rsa.RSAPrivateKey)
            pass_key, pass_cert = _make_pass_leaf(
                wwdr_key, wwdr_cert, pass_type_identifier, team_identifier
            )
            _write_key(paths["pass_key"], pass_key)
            _write_cert(paths["pass_cert"], pass_cert)
        bundle = (root_cert.public_bytes(serialization.Encoding.PEM)
                  + wwdr_cert.public_bytes(serialization.Encoding.PEM))
        if not paths["ca_bundle"].exists() or paths["ca_bundle"].read_bytes() != bundle:
            _atomic_write(paths["ca_bundle"], bundle, 0o644)
    return paths


def _leaf_matches(paths: dict[str, Path], pass_type_identifier: str, team_identifier: str) -> bool:
    if not (paths["pass_cert"].exists() and paths["pass_key"].exists()):
        return False
    try:
        cert = x509.load_pem_x509_certificate(paths["pass_cert"].read_bytes())
        ids = certificate_identifiers(cert)
    except (ValueError, CertificateError):
        return False
    remaining = cert.not_valid_after_utc - dt.datetime.now(dt.timezone.utc)
    return ids == (pass_type_identifier, team_identifier) and remaining > dt.timedelta(days=31)


@contextmanager
def _dir_lock(folder: Path) -> Iterator[None]:
    # Several gunicorn workers may start at once on a fresh instance/.
    with open(folder / ".lock", "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _new_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc).replace(microsecond=0)


def _make_root() -> tuple[rsa.RSAPrivateKey, x509.Certificate]:
    key = _new_key()
    name = x509.Name([
        x509.NameAttribute(NameOID.COMMON_NAME, "Wallet Clubs Development Root CA"),
        x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "Development only"),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Wallet Clubs"),
        x509.NameAttribute(NameOID.COUNTRY_NAME, "US"),
    ])
    now = _now()
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(_ca_key_usage(), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return key, cert


def _make_wwdr(
    root_key: rsa.RSAPrivateKey, root_cert: x509.Certificate
) -> tuple[rsa.RSAPrivateKey, x509.Certificate]:
    key = _new_key()
    # Apple's WWDR G4 subject, so code reading it behaves as with the real one.
    name = x509.Name([
        x509.NameAttribute(NameOID.COMMON_NAME, "Apple Worldwide Developer Relations Certification Authority"),
        x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "G4"),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Apple Inc."),
        x509.NameAttribute(NameOID.COUNTRY_NAME, "US"),
    ])
    now = _now()
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(root_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=3000))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_ca_key_usage(), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(root_key.public_key()), critical=False
        )
        .sign(root_key, hashes.SHA256())
    )
    return key, cert


def _make_pass_leaf(
    wwdr_key: rsa.RSAPrivateKey,
    wwdr_cert: x509.Certificate,
    pass_type_identifier: str,
    team_identifier: str,
) -> tuple[rsa.RSAPrivateKey, x509.Certificate]:
    key = _new_key()
    name = x509.Name([
        x509.NameAttribute(NameOID.USER_ID, pass_type_identifier),
        x509.NameAttribute(NameOID.COMMON_NAME, f"Pass Type ID: {pass_type_identifier}"),
        x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, team_identifier),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Wallet Clubs Development"),
        x509.NameAttribute(NameOID.COUNTRY_NAME, "US"),
    ])
    now = _now()
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(wwdr_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=395))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True, content_commitment=False, key_encipherment=False,
                data_encipherment=False, key_agreement=False, key_cert_sign=False,
                crl_sign=False, encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
        # clientAuth: the same certificate is the TLS client certificate for APNs.
        .add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH, APPLE_PASS_EKU]), critical=False
        )
        .add_extension(
            x509.UnrecognizedExtension(PASS_TYPE_ID_EXTENSION, _der_utf8(pass_type_identifier)),
            critical=False,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(wwdr_key.public_key()), critical=False
        )
        .sign(wwdr_key, hashes.SHA256())
    )
    return key, cert


def _ca_key_usage() -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=True, content_commitment=False, key_encipherment=False,
        data_encipherment=False, key_agreement=False, key_cert_sign=True,
        crl_sign=True, encipher_only=False, decipher_only=False,
    )


def _der_utf8(text: str) -> bytes:
    data = text.encode("utf-8")
    return b"\x0c" + _der_length(len(data)) + data


def _der_length(n: int) -> bytes:
    if n < 0x80:
        return bytes([n])
    body = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(body)]) + body


def _atomic_write(path: Path, data: bytes, mode: int) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _write_key(path: Path, key: rsa.RSAPrivateKey) -> None:
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    _atomic_write(path, pem, 0o600)


def _write_cert(path: Path, cert: x509.Certificate) -> None:
    _atomic_write(path, cert.public_bytes(serialization.Encoding.PEM), 0o644)


# --------------------------------------------------------------------------
# Reading identifiers from a certificate
# --------------------------------------------------------------------------


def certificate_identifiers(cert: x509.Certificate) -> tuple[str, str]:
    """(pass type identifier, team identifier) as Apple writes them in the cert."""
    pass_type = None
    uid = cert.subject.get_attributes_for_oid(NameOID.USER_ID)
    if uid:
        pass_type = str(uid[0].value)
    if pass_type is None:
        cn = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
        if cn and str(cn[0].value).startswith("Pass Type ID: "):
            pass_type = str(cn[0].value)[len("Pass Type ID: "):]
    ou = cert.subject.get_attributes_for_oid(NameOID.ORGANIZATIONAL_UNIT_NAME)
    team = str(ou[0].value) if ou else None
    if not pass_type or not team:
        raise CertificateError(
            f"certificate {cert.subject.rfc4514_string()!r} is not a Pass Type ID certificate "
            "(no UID / 'Pass Type ID:' common name or no OU team identifier)"
        )
    return pass_type, team
