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
import logging
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from flask import Flask
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID, ObjectIdentifier

from wallet.config import Settings, StartupError, get_settings, made_on_first_use

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


class CertificateError(StartupError):
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
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    paths = dev_chain_paths(folder)
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
            leaf_needed = not _leaf_matches(paths, pass_type_identifier, team_identifier)
            if leaf_needed:  # parsing a key is slow; only when it signs something
                wwdr_key = serialization.load_pem_private_key(paths["wwdr_key"].read_bytes(), None)
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


def dev_chain_paths(directory: str | os.PathLike[str]) -> dict[str, Path]:
    return {name: Path(directory) / filename for name, filename in DEV_FILES.items()}


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


def _name(*parts: tuple[x509.ObjectIdentifier, str]) -> x509.Name:
    return x509.Name([x509.NameAttribute(oid, value) for oid, value in parts])


def _certificate(
    key: rsa.RSAPrivateKey,
    name: x509.Name,
    *,
    days: int,
    constraints: x509.BasicConstraints,
    usage: x509.KeyUsage,
    issuer: tuple[rsa.RSAPrivateKey, x509.Certificate] | None = None,
    extensions: tuple[x509.ExtensionType, ...] = (),
) -> x509.Certificate:
    """A development certificate of ``key`` named ``name``, valid from
    yesterday for ``days``, signed by ``issuer`` (key and certificate) or by
    itself; ``extensions`` are added as non-critical."""
    signer, issuer_name = (issuer[0], issuer[1].subject) if issuer else (key, name)
    now = _now()
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(constraints, critical=True)
        .add_extension(usage, critical=True)
    )
    for extension in (*extensions, x509.SubjectKeyIdentifier.from_public_key(key.public_key())):
        builder = builder.add_extension(extension, critical=False)
    if issuer:
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(signer.public_key()), critical=False)
    return builder.sign(signer, hashes.SHA256())


def _make_root() -> tuple[rsa.RSAPrivateKey, x509.Certificate]:
    key = _new_key()
    name = _name((NameOID.COMMON_NAME, "Wallet Clubs Development Root CA"),
                 (NameOID.ORGANIZATIONAL_UNIT_NAME, "Development only"),
                 (NameOID.ORGANIZATION_NAME, "Wallet Clubs"), (NameOID.COUNTRY_NAME, "US"))
    return key, _certificate(key, name, days=3650, constraints=x509.BasicConstraints(ca=True, path_length=None),
                             usage=_key_usage(cert_sign=True))


def _make_wwdr(
    root_key: rsa.RSAPrivateKey, root_cert: x509.Certificate
) -> tuple[rsa.RSAPrivateKey, x509.Certificate]:
    key = _new_key()
    # Apple's WWDR G4 subject, so code reading it behaves as with the real one.
    name = _name((NameOID.COMMON_NAME, "Apple Worldwide Developer Relations Certification Authority"),
                 (NameOID.ORGANIZATIONAL_UNIT_NAME, "G4"), (NameOID.ORGANIZATION_NAME, "Apple Inc."),
                 (NameOID.COUNTRY_NAME, "US"))
    return key, _certificate(key, name, days=3000, constraints=x509.BasicConstraints(ca=True, path_length=0),
                             usage=_key_usage(cert_sign=True), issuer=(root_key, root_cert))


def _make_pass_leaf(
    wwdr_key: rsa.RSAPrivateKey,
    wwdr_cert: x509.Certificate,
    pass_type_identifier: str,
    team_identifier: str,
) -> tuple[rsa.RSAPrivateKey, x509.Certificate]:
    key = _new_key()
    name = _name((NameOID.USER_ID, pass_type_identifier),
                 (NameOID.COMMON_NAME, f"Pass Type ID: {pass_type_identifier}"),
                 (NameOID.ORGANIZATIONAL_UNIT_NAME, team_identifier),
                 (NameOID.ORGANIZATION_NAME, "Wallet Clubs Development"), (NameOID.COUNTRY_NAME, "US"))
    return key, _certificate(
        key, name, days=395, constraints=x509.BasicConstraints(ca=False, path_length=None),
        usage=_key_usage(cert_sign=False), issuer=(wwdr_key, wwdr_cert),
        extensions=(
            # clientAuth: the same certificate is the TLS client certificate for APNs.
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH, APPLE_PASS_EKU]),
            x509.UnrecognizedExtension(PASS_TYPE_ID_EXTENSION, _der_utf8(pass_type_identifier)),
        ))


def _key_usage(*, cert_sign: bool) -> x509.KeyUsage:
    """Signing, and for a CA signing certificates and CRLs."""
    return x509.KeyUsage(
        digital_signature=True, content_commitment=False, key_encipherment=False,
        data_encipherment=False, key_agreement=False, key_cert_sign=cert_sign,
        crl_sign=cert_sign, encipher_only=False, decipher_only=False,
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


# --------------------------------------------------------------------------
# The signing identity of a running app
# --------------------------------------------------------------------------

# File names looked for in CERTS_DIR (see certs.example/README.md).
REAL_CERT_NAMES = ("pass.pem", "pass.crt", "pass.cer")
REAL_KEY_NAMES = ("pass.key", "pass-key.pem")
REAL_P12_NAMES = ("pass.p12", "pass.pfx")
WWDR_NAMES = ("wwdr.pem", "AppleWWDRCAG4.pem", "wwdr.cer", "AppleWWDRCAG4.cer")
EXPIRY_WARNING = dt.timedelta(days=30)

log = logging.getLogger(__name__)


@dataclass(frozen=True, eq=False)
class SigningIdentity:
    """Everything needed to sign passes, loaded and checked once per process.

    Parsing an RSA key makes OpenSSL 3 validate it (tens of milliseconds), so
    the key object is kept here and reused for every pass.
    """

    certificate: x509.Certificate
    private_key: rsa.RSAPrivateKey
    wwdr_certificate: x509.Certificate
    pass_type_identifier: str
    team_identifier: str
    # PEM files of the certificate and its unencrypted key, for TLS clients
    # (APNs takes the Pass Type ID certificate as the TLS client certificate).
    tls_cert_file: Path
    tls_key_file: Path
    development: bool
    # Root + intermediate PEM for `openssl -CAfile` (development chain only).
    ca_bundle_file: Path | None = None
    certificate_der: bytes = field(init=False, repr=False)
    wwdr_der: bytes = field(init=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "certificate_der",
                           self.certificate.public_bytes(serialization.Encoding.DER))
        object.__setattr__(self, "wwdr_der",
                           self.wwdr_certificate.public_bytes(serialization.Encoding.DER))

    @property
    def not_valid_after(self) -> dt.datetime:
        return self.certificate.not_valid_after_utc


_loaded: dict[tuple[Any, ...], SigningIdentity] = {}
_loaded_lock = threading.Lock()


def load_signing_identity(settings: Settings) -> SigningIdentity:
    """The identity from CERTS_DIR, else (when USE_DEV_CERTS) the development chain.

    Loaded once per process for the same files and settings (OpenSSL checks
    an RSA key as it parses it, which costs tens of milliseconds); a changed
    file is read again. Raises CertificateError with one message saying what
    is wrong and where.
    """
    key = _cache_key(settings)
    with _loaded_lock:
        found = _loaded.get(key) if key is not None else None
        if found is not None:
            return found
        identity = _load_signing_identity(settings)
        if key is not None:
            _loaded[key] = identity
        return identity


def _cache_key(settings: Settings) -> tuple[Any, ...] | None:
    folders = [settings.certs_dir]
    if settings.use_dev_certs:
        folders.append(settings.dev_certs_dir)
    stamps = []
    for folder in folders:
        try:
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except FileNotFoundError:
            stamps.append((str(folder), None))
            continue
        except OSError:
            return None
        for entry in entries:
            if entry.is_file() and not entry.name.startswith("."):
                info = entry.stat()
                stamps.append((entry.path, info.st_mtime_ns, info.st_size, info.st_ino))
    # Only a .p12 or an encrypted key puts files (TLS copies) under instance/.
    writes_instance = bool(settings.pass_cert_password) or any(
        str(stamp[0]).endswith(REAL_P12_NAMES) for stamp in stamps
    )
    return (
        tuple(stamps), str(settings.instance_path) if writes_instance else None,
        settings.pass_type_identifier, settings.team_identifier,
        settings.pass_cert_password, settings.use_dev_certs,
    )


def _load_signing_identity(settings: Settings) -> SigningIdentity:
    certs_dir = settings.certs_dir
    pass_type = settings.pass_type_identifier
    team = settings.team_identifier
    password = settings.pass_cert_password
    instance = settings.instance_path

    real = _find_real_files(certs_dir)
    if real is not None:
        identity = _load_real(real, certs_dir, password, instance)
    elif settings.use_dev_certs:
        paths = write_dev_chain(settings.dev_certs_dir, pass_type_identifier=pass_type,
                                team_identifier=team)
        cert = _read_cert(paths["pass_cert"])
        key = _read_key(paths["pass_key"], None)
        identity = SigningIdentity(
            certificate=cert, private_key=key, wwdr_certificate=_read_cert(paths["wwdr_cert"]),
            pass_type_identifier=certificate_identifiers(cert)[0],
            team_identifier=certificate_identifiers(cert)[1],
            tls_cert_file=paths["pass_cert"], tls_key_file=paths["pass_key"],
            development=True, ca_bundle_file=paths["ca_bundle"],
        )
    else:
        raise CertificateError(
            f"no pass signing certificate in {certs_dir} (expected pass.pem + pass.key, or "
            "pass.p12, and wwdr.pem) and USE_DEV_CERTS is off; see certs.example/README.md"
        )
    _check_identity(identity, pass_type, team)
    return identity


def _find_real_files(certs_dir: Path) -> dict[str, Path] | None:
    def first(names: tuple[str, ...]) -> Path | None:
        return next((certs_dir / n for n in names if (certs_dir / n).is_file()), None)

    cert, key, p12, wwdr = first(REAL_CERT_NAMES), first(REAL_KEY_NAMES), first(REAL_P12_NAMES), first(WWDR_NAMES)
    if not any((cert, key, p12)):
        return None
    if p12 is None and (cert is None or key is None):
        missing = "pass.key (the private key)" if cert else "pass.pem (the certificate)"
        raise CertificateError(f"{certs_dir}: found {(cert or key).name} but not {missing}; "
                               "see certs.example/README.md")
    if wwdr is None:
        raise CertificateError(
            f"{certs_dir}: no Apple WWDR G4 intermediate (wwdr.pem or AppleWWDRCAG4.cer); "
            "download it from https://www.apple.com/certificateauthority/ "
            "(see certs.example/README.md)"
        )
    found = {"wwdr": wwdr}
    if p12 is not None and (cert is None or key is None):
        found["p12"] = p12
    else:
        found.update(cert=cert, key=key)  # type: ignore[arg-type]
    return found


def _load_real(files: dict[str, Path], certs_dir: Path, password: str | None,
               instance: Path) -> SigningIdentity:
    wwdr = _read_cert(files["wwdr"])
    if "p12" in files:
        cert, key = _read_p12(files["p12"], password)
        # TLS libraries want PEM files; keep an unencrypted copy private to us.
        tls_dir = instance / "apple-tls"
        tls_dir.mkdir(parents=True, exist_ok=True)
        os.chmod(tls_dir, 0o700)
        tls_cert, tls_key = tls_dir / "pass-cert.pem", tls_dir / "pass-key.pem"
        _write_cert(tls_cert, cert)
        _write_key(tls_key, key)
    else:
        cert = _read_cert(files["cert"])
        key = _read_key(files["key"], password)
        tls_cert, tls_key = files["cert"], files["key"]
        if password:
            # An encrypted key file is useless to a TLS client without the
            # password; give it a decrypted copy that only we can read.
            tls_dir = instance / "apple-tls"
            tls_dir.mkdir(parents=True, exist_ok=True)
            os.chmod(tls_dir, 0o700)
            tls_key = tls_dir / "pass-key.pem"
            _write_key(tls_key, key)
    pass_type, team = certificate_identifiers(cert)
    return SigningIdentity(
        certificate=cert, private_key=key, wwdr_certificate=wwdr,
        pass_type_identifier=pass_type, team_identifier=team,
        tls_cert_file=tls_cert, tls_key_file=tls_key, development=False,
    )


def _read_cert(path: Path) -> x509.Certificate:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise CertificateError(f"cannot read certificate {path}: {exc.strerror}") from exc
    try:
        if b"-----BEGIN CERTIFICATE-----" in data:
            return x509.load_pem_x509_certificate(data)
        return x509.load_der_x509_certificate(data)
    except ValueError as exc:
        raise CertificateError(f"{path} is not a PEM or DER certificate ({exc})") from exc


def _read_key(path: Path, password: str | None) -> rsa.RSAPrivateKey:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise CertificateError(f"cannot read private key {path}: {exc.strerror}") from exc
    secret = password.encode() if password else None
    try:
        key = serialization.load_pem_private_key(data, secret)
    except TypeError as exc:
        # Encrypted without a password, or a password for a plain key.
        hint = "set PASS_CERT_PASSWORD" if secret is None else "unset PASS_CERT_PASSWORD"
        raise CertificateError(f"private key {path}: {exc}; {hint}") from exc
    except ValueError as exc:
        raise CertificateError(
            f"private key {path} cannot be read (wrong PASS_CERT_PASSWORD or not a PEM key): {exc}"
        ) from exc
    if not isinstance(key, rsa.RSAPrivateKey):
        raise CertificateError(f"private key {path} is not an RSA key; Apple issues RSA-2048 keys")
    return key


def _read_p12(path: Path, password: str | None) -> tuple[x509.Certificate, rsa.RSAPrivateKey]:
    from cryptography.hazmat.primitives.serialization import pkcs12

    data = path.read_bytes()
    try:
        key, cert, _extra = pkcs12.load_key_and_certificates(
            data, password.encode() if password else None
        )
    except ValueError as exc:
        raise CertificateError(
            f"{path} cannot be opened: wrong or missing PASS_CERT_PASSWORD, or an encryption "
            f"this OpenSSL lacks ({exc}); convert it to PEM as certs.example/README.md shows"
        ) from exc
    if cert is None or key is None:
        raise CertificateError(f"{path} must hold both the Pass Type ID certificate and its key")
    if not isinstance(key, rsa.RSAPrivateKey):
        raise CertificateError(f"the key in {path} is not an RSA key")
    return cert, key


def _check_identity(identity: SigningIdentity, pass_type: str, team: str) -> None:
    cert = identity.certificate
    where = "development chain" if identity.development else "certificate in CERTS_DIR"
    if (identity.pass_type_identifier, identity.team_identifier) != (pass_type, team):
        raise CertificateError(
            f"the {where} is for pass type identifier {identity.pass_type_identifier!r} and team "
            f"{identity.team_identifier!r}, but the configuration says PASS_TYPE_IDENTIFIER="
            f"{pass_type!r} and TEAM_IDENTIFIER={team!r}; make them match"
        )
    if cert.public_key().public_numbers() != identity.private_key.public_key().public_numbers():
        raise CertificateError(f"the private key does not belong to the {where} ({cert.subject.rfc4514_string()})")
    try:
        cert.verify_directly_issued_by(identity.wwdr_certificate)
    except (ValueError, TypeError, InvalidSignature) as exc:
        raise CertificateError(
            f"the Pass Type ID certificate was not issued by the WWDR intermediate given "
            f"({identity.wwdr_certificate.subject.rfc4514_string()}); Pass Type ID certificates "
            "issued since 2022 need the WWDR G4 intermediate"
        ) from exc
    now = dt.datetime.now(dt.timezone.utc)
    if cert.not_valid_after_utc <= now:
        raise CertificateError(
            f"the Pass Type ID certificate expired on {cert.not_valid_after_utc:%Y-%m-%d}; "
            "issue a new one in the Apple Developer portal"
        )
    if cert.not_valid_after_utc - now < EXPIRY_WARNING:
        log.warning(
            "the Pass Type ID certificate for %s expires on %s: renew it, or passes stop updating",
            identity.pass_type_identifier, cert.not_valid_after_utc.strftime("%Y-%m-%d"),
        )


def init_identity(app: Flask) -> None:
    """Loads real certificates at start-up, so a problem stops the app at
    once. A development chain not yet written (or not for these
    identifiers) is left to ``dev-certs`` or to the first pass signed:
    creating an app writes no keys."""
    settings = get_settings(app)
    if settings.use_dev_certs and _find_real_files(settings.certs_dir) is None:
        paths = dev_chain_paths(settings.dev_certs_dir)
        if not (all(p.exists() for p in paths.values())
                and _leaf_matches(paths, settings.pass_type_identifier, settings.team_identifier)):
            return
    app.extensions["wallet.apple.identity"] = load_signing_identity(settings)


def get_identity(app: Flask | None = None) -> SigningIdentity:
    """The app's signing identity; the first use writes a development chain
    when there are no real certificates."""
    return made_on_first_use(app, "wallet.apple.identity", load_signing_identity)
