"""Believing Google's save/delete callbacks: the ECv2SigningOnly scheme of
Google's payment method tokens, as Tink's PaymentMethodTokenRecipient
verifies it.

The body Google POSTs is JSON::

    {"protocolVersion": "ECv2SigningOnly",
     "intermediateSigningKey": {"signedKey": "<JSON>", "signatures": ["<base64 DER ECDSA>"]},
     "signature": "<base64 DER ECDSA>",
     "signedMessage": "<JSON: classId, objectId, eventType save|del, expTimeMillis, nonce>"}

Believed only when: one of Google's root keys (GOOGLE_CALLBACK_ROOT_KEYS_FILE,
the JSON Google publishes, keys of protocolVersion ECv2SigningOnly that have
not expired) signed the intermediate key over the length-prefixed fields
(sender id, protocol version, signedKey); the intermediate key has not
expired; it signed the message over (sender id, recipient id = our issuer
id, protocol version, signedMessage); and the message itself has not
expired. Each field is prefixed by its UTF-8 length as 4 bytes, little
endian. Signatures are ECDSA P-256 with SHA-256.
"""

from __future__ import annotations

import base64
import binascii
import json
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import load_der_public_key

from wallet.google.errors import CallbackRefused, GoogleConfigError

PROTOCOL = "ECv2SigningOnly"
# Google's documentation names the Wallet callbacks' sender "GooglePayPasses"
# in its older pages and "GoogleWalletPasses" in newer ones; a message is
# believed under either, as the signature by Google's key is what counts.
SENDER_IDS = ("GooglePayPasses", "GoogleWalletPasses")
EVENT_TYPES = ("save", "del")
# Google signs an intermediate key with one root key, two while it rotates
# them; more signatures than this are not Google's and only cost CPU.
MAX_KEY_SIGNATURES = 4
_ECDSA = ec.ECDSA(hashes.SHA256())


@dataclass(frozen=True)
class RootKey:
    key: ec.EllipticCurvePublicKey
    expires_ms: int | None


@dataclass(frozen=True)
class CallbackMessage:
    class_id: str
    object_id: str
    event_type: str
    nonce: str
    expires_ms: int


def length_value(*fields: str) -> bytes:
    """The bytes a signature covers: each field's UTF-8 length (4 bytes,
    little endian), then the field."""
    out = bytearray()
    for field in fields:
        data = field.encode("utf-8")
        out += len(data).to_bytes(4, "little") + data
    return bytes(out)


def _public_key(value: Any) -> ec.EllipticCurvePublicKey:
    if not isinstance(value, str):
        raise CallbackRefused("a key is not a base64 string")
    try:
        key = load_der_public_key(base64.b64decode(value, validate=True))
    except (ValueError, binascii.Error, UnsupportedAlgorithm) as exc:
        raise CallbackRefused(f"a key cannot be read: {exc}") from None
    if not isinstance(key, ec.EllipticCurvePublicKey) or not isinstance(key.curve, ec.SECP256R1):
        raise CallbackRefused("a key is not an ECDSA P-256 key")
    return key


def _millis(value: Any, what: str) -> int:
    # Google writes milliseconds since the epoch as a decimal string.
    if isinstance(value, bool) or not isinstance(value, (str, int)) or not str(value).isdigit():
        raise CallbackRefused(f"{what} is not a time in milliseconds")
    return int(value)


def parse_root_keys(data: Any) -> list[RootKey]:
    """The ECv2SigningOnly keys of Google's published key list."""
    keys = data.get("keys") if isinstance(data, dict) else None
    if not isinstance(keys, list):
        raise ValueError('expected {"keys": [...]} as Google publishes it')
    found = []
    for item in keys:
        if isinstance(item, dict) and item.get("protocolVersion") == PROTOCOL:
            expires = item.get("keyExpiration")
            found.append(RootKey(key=_public_key(item.get("keyValue")),
                                 expires_ms=_millis(expires, "keyExpiration") if expires is not None else None))
    return found


class RootKeyFile:
    """Google's root keys from a file, read again only when it changes."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._stamp: tuple[int, int] | None = None
        self._keys: list[RootKey] = []
        self._lock = threading.Lock()

    def keys(self) -> list[RootKey]:
        try:
            stat = self.path.stat()
        except OSError as exc:
            raise GoogleConfigError(f"GOOGLE_CALLBACK_ROOT_KEYS_FILE {self.path} cannot be read: {exc}") from exc
        stamp = (stat.st_mtime_ns, stat.st_size)
        with self._lock:
            if stamp != self._stamp:
                try:
                    keys = parse_root_keys(json.loads(self.path.read_text(encoding="utf-8")))
                except (OSError, ValueError, CallbackRefused) as exc:
                    raise GoogleConfigError(
                        f"GOOGLE_CALLBACK_ROOT_KEYS_FILE {self.path} is not Google's key list: {exc}") from exc
                self._keys, self._stamp = keys, stamp
            return self._keys


def _verified(key: ec.EllipticCurvePublicKey, signature: Any, data: bytes) -> bool:
    if not isinstance(signature, str):
        return False
    try:
        key.verify(base64.b64decode(signature, validate=True), data, _ECDSA)
    except (InvalidSignature, ValueError, binascii.Error):
        return False
    return True


def _json_object(text: Any, what: str) -> dict[str, Any]:
    if not isinstance(text, str):
        raise CallbackRefused(f"{what} is not a JSON string")
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):
        raise CallbackRefused(f"{what} is not JSON") from None
    if not isinstance(value, dict):
        raise CallbackRefused(f"{what} is not a JSON object")
    return value


def verify_callback(body: bytes, *, root_keys: list[RootKey], recipient_id: str, now_ms: int) -> CallbackMessage:
    """The message of a callback that checks out; CallbackRefused saying
    why otherwise."""
    try:
        envelope = json.loads(body)
    except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError
        raise CallbackRefused("the body is not JSON") from None
    if not isinstance(envelope, dict):
        raise CallbackRefused("the body is not a JSON object")
    if envelope.get("protocolVersion") != PROTOCOL:
        raise CallbackRefused(f"protocolVersion is not {PROTOCOL}")
    intermediate = envelope.get("intermediateSigningKey")
    if not isinstance(intermediate, dict):
        raise CallbackRefused("intermediateSigningKey is missing")
    signed_key_text = intermediate.get("signedKey")
    key_signatures = intermediate.get("signatures")
    if not isinstance(signed_key_text, str) or not isinstance(key_signatures, list):
        raise CallbackRefused("intermediateSigningKey needs signedKey and signatures")
    if len(key_signatures) > MAX_KEY_SIGNATURES:
        raise CallbackRefused("intermediateSigningKey has more signatures than Google gives")
    current = [root for root in root_keys if root.expires_ms is None or root.expires_ms > now_ms]
    sender = next((s for s in SENDER_IDS
                   if any(_verified(root.key, sig, length_value(s, PROTOCOL, signed_key_text))
                          for root in current for sig in key_signatures)), None)
    if sender is None:
        raise CallbackRefused("no Google root key signed the intermediate signing key")
    signed_key = _json_object(signed_key_text, "signedKey")
    if _millis(signed_key.get("keyExpiration"), "keyExpiration") <= now_ms:
        raise CallbackRefused("the intermediate signing key has expired")
    intermediate_key = _public_key(signed_key.get("keyValue"))
    signed_message = envelope.get("signedMessage")
    if not isinstance(signed_message, str) or not _verified(
        intermediate_key, envelope.get("signature"), length_value(sender, recipient_id, PROTOCOL, signed_message)
    ):
        raise CallbackRefused("the message signature does not verify for our issuer id")
    message = _json_object(signed_message, "signedMessage")
    expires = _millis(message.get("expTimeMillis"), "expTimeMillis")
    if expires <= now_ms:
        raise CallbackRefused("the message has expired")
    fields = {name: message.get(name) for name in ("classId", "objectId", "eventType", "nonce")}
    if not all(isinstance(value, str) and 0 < len(value) <= 255 for value in fields.values()):
        raise CallbackRefused("the message needs classId, objectId, eventType and nonce")
    if fields["eventType"] not in EVENT_TYPES:
        raise CallbackRefused(f"eventType is not one of {', '.join(EVENT_TYPES)}")
    return CallbackMessage(class_id=fields["classId"], object_id=fields["objectId"], event_type=fields["eventType"],
                           nonce=fields["nonce"], expires_ms=expires)
