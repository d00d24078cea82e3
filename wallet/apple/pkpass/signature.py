"""The pass signature: detached CMS SignedData, DER, over manifest.json.

SHA-256 digest, signed attributes contentType, signingTime and messageDigest,
the Pass Type ID certificate and the WWDR intermediate included, as Apple
requires. Everything but the signing time, the digest and the RSA signature
is the same for every pass of one identity, and all three have fixed sizes,
so the DER is laid out once (with asn1crypto) and per pass the three values
are put in their places around one ``private_key.sign()`` call.
"""

from __future__ import annotations

import hashlib
import os
import zlib
from dataclasses import dataclass
from datetime import datetime, timezone
from functools import lru_cache

from asn1crypto import algos, cms, core
from asn1crypto import x509 as asn1_x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding

from wallet.apple.certs import SigningIdentity

_PKCS1 = padding.PKCS1v15()
_SHA256 = hashes.SHA256()
_TIME_PLACEHOLDER = datetime(2000, 1, 1, tzinfo=timezone.utc)
_UTC_TIME_LEN = 13  # YYMMDDHHMMSSZ


@dataclass(frozen=True)
class _Template:
    # Signed attributes as the SET that is signed: head + time + mid + digest + tail.
    attrs_head: bytes
    attrs_mid: bytes
    attrs_tail: bytes
    # The whole ContentInfo: before + [0]-tagged attributes + middle + signature + after.
    before: bytes
    middle: bytes
    after: bytes
    signature_len: int
    # CRC-32 of before + b"\xa0": the bulk of every signature (the
    # certificates); the rest of a signature's CRC goes on from crc_from.
    crc_before: int
    crc_from: int


class PassSigner:
    """Signs manifests for one identity; build once, use for every pass."""

    def __init__(self, identity: SigningIdentity) -> None:
        self._key = identity.private_key
        self._template = _build_template(identity)
        # The last signing time's second and its UTCTime: the passes signed
        # within one second share it (replaced whole, so threads may race).
        self._last_time: tuple[datetime, bytes] = (_TIME_PLACEHOLDER, b"000101000000Z")

    def sign(self, manifest: bytes, signing_time: datetime | None = None) -> bytes:
        return self.sign_for_zip(hashlib.sha256(manifest).digest(), signing_time)[0]

    def sign_for_zip(self, manifest_digest: bytes, signing_time: datetime | None = None) -> tuple[bytes, int]:
        """The signature of a manifest by its SHA-256 digest (the signed
        messageDigest), and the signature's CRC-32 for the zip entry that
        carries it: the certificates, most of its bytes, are the same in
        every signature, so their share of the CRC is taken once."""
        t = self._template
        moment = signing_time or datetime.now(timezone.utc)
        second = moment.replace(microsecond=0)
        # Datetimes with a zone compare as instants; a naive one (taken as
        # UTC) never equals one with a zone, so it is formatted anew.
        last_second, utc_time = self._last_time
        if second != last_second:
            utc_time = _utc_time(second)
            self._last_time = (second, utc_time)
        attrs = b"".join((
            t.attrs_head,
            utc_time,
            t.attrs_mid,
            manifest_digest,
            t.attrs_tail,
        ))
        signature = self._key.sign(attrs, _PKCS1, _SHA256)
        if len(signature) != t.signature_len:  # PKCS#1 v1.5 output is modulus-sized
            raise AssertionError("unexpected RSA signature length")
        # In SignerInfo the same attributes are [0] IMPLICIT instead of SET.
        whole = b"".join((t.before, b"\xa0", memoryview(attrs)[1:], t.middle, signature, t.after))
        return whole, zlib.crc32(memoryview(whole)[t.crc_from:], t.crc_before)


def _utc_time(moment: datetime) -> bytes:
    """signingTime's UTCTime text, YYMMDDHHMMSSZ, of ``moment`` (naive: UTC)."""
    if moment.utcoffset():
        moment = moment.astimezone(timezone.utc)
    if not 1950 <= moment.year < 2050:
        raise ValueError("signingTime is a UTCTime: years 1950-2049 only")
    # Formatted by hand, strftime costs several times more.
    return (f"{moment.year % 100:02d}{moment.month:02d}{moment.day:02d}"
            f"{moment.hour:02d}{moment.minute:02d}{moment.second:02d}Z").encode("ascii")


@lru_cache(maxsize=8)
def signer_for(identity: SigningIdentity) -> PassSigner:
    return PassSigner(identity)


def _build_template(identity: SigningIdentity) -> _Template:
    cert = asn1_x509.Certificate.load(identity.certificate_der)
    wwdr = asn1_x509.Certificate.load(identity.wwdr_der)
    digest_placeholder = os.urandom(32)
    signature_len = (identity.private_key.key_size + 7) // 8
    signature_placeholder = os.urandom(signature_len)

    # DER sorts a SET OF by encoding; with these fixed lengths the order is
    # contentType (24 bytes), signingTime (28), messageDigest (47).
    attrs = cms.CMSAttributes([
        cms.CMSAttribute({"type": "content_type", "values": ["data"]}),
        cms.CMSAttribute({"type": "signing_time",
                          "values": [cms.Time({"utc_time": core.UTCTime(_TIME_PLACEHOLDER)})]}),
        cms.CMSAttribute({"type": "message_digest", "values": [digest_placeholder]}),
    ])
    attrs_der = attrs.dump()
    encoded = [a.dump() for a in attrs]
    if encoded != sorted(encoded):
        raise AssertionError("signed attributes are not in DER order")

    time_bytes = b"000101000000Z"
    t_at = attrs_der.index(time_bytes)
    d_at = attrs_der.index(digest_placeholder)
    attrs_head = attrs_der[:t_at]
    attrs_mid = attrs_der[t_at + _UTC_TIME_LEN:d_at]
    attrs_tail = attrs_der[d_at + 32:]

    signer_info = cms.SignerInfo({
        "version": "v1",
        "sid": cms.SignerIdentifier({
            "issuer_and_serial_number": cms.IssuerAndSerialNumber({
                "issuer": cert.issuer,
                "serial_number": cert.serial_number,
            })
        }),
        "digest_algorithm": algos.DigestAlgorithm({"algorithm": "sha256"}),
        "signed_attrs": attrs,
        "signature_algorithm": algos.SignedDigestAlgorithm({"algorithm": "rsassa_pkcs1v15"}),
        "signature": signature_placeholder,
    })
    signed_data = cms.SignedData({
        "version": "v1",
        "digest_algorithms": [algos.DigestAlgorithm({"algorithm": "sha256"})],
        "encap_content_info": cms.ContentInfo({"content_type": "data"}),
        "certificates": [cert, wwdr],
        "signer_infos": [signer_info],
    })
    whole = cms.ContentInfo({"content_type": "signed_data", "content": signed_data}).dump()

    tagged_attrs = b"\xa0" + attrs_der[1:]
    a_at = whole.index(tagged_attrs)
    s_at = whole.index(signature_placeholder)
    if not a_at < s_at or whole.count(tagged_attrs) != 1 or whole.count(signature_placeholder) != 1:
        raise AssertionError("unexpected SignedData layout")
    return _Template(
        attrs_head=attrs_head,
        attrs_mid=attrs_mid,
        attrs_tail=attrs_tail,
        before=whole[:a_at],
        middle=whole[a_at + len(tagged_attrs):s_at],
        after=whole[s_at + signature_len:],
        signature_len=signature_len,
        crc_before=zlib.crc32(whole[:a_at] + b"\xa0"),
        crc_from=a_at + 1,
    )
