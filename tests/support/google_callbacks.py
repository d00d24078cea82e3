"""Google's side of the save/delete callbacks, for the tests: a root key
(written as the key list Google publishes), an intermediate key it signs,
and messages signed with that, in the ECv2SigningOnly scheme."""

from __future__ import annotations

import base64
import json
import secrets
import time
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

PROTOCOL = "ECv2SigningOnly"
SENDER = "GooglePayPasses"


def _lv(*fields: str) -> bytes:
    return b"".join(len(f.encode()).to_bytes(4, "little") + f.encode() for f in fields)


def _spki(key: ec.EllipticCurvePrivateKey) -> str:
    der = key.public_key().public_bytes(serialization.Encoding.DER,
                                        serialization.PublicFormat.SubjectPublicKeyInfo)
    return base64.b64encode(der).decode()


def _sign(key: ec.EllipticCurvePrivateKey, data: bytes) -> str:
    return base64.b64encode(key.sign(data, ec.ECDSA(hashes.SHA256()))).decode()


class CallbackSigner:
    def __init__(self, recipient_id: str) -> None:
        self.recipient_id = recipient_id
        self.root = ec.generate_private_key(ec.SECP256R1())
        self.intermediate = ec.generate_private_key(ec.SECP256R1())

    def write_root_keys(self, path: Path) -> Path:
        later = str(int((time.time() + 86400) * 1000))
        path.write_text(json.dumps({"keys": [
            {"keyValue": _spki(ec.generate_private_key(ec.SECP256R1())), "protocolVersion": "ECv2"},
            {"keyValue": _spki(self.root), "protocolVersion": PROTOCOL, "keyExpiration": later},
        ]}))
        return path

    def body(self, *, class_id: str, object_id: str, event_type: str = "save", nonce: str | None = None,
             expires_in: float = 3600, key_expires_in: float = 86400, recipient_id: str | None = None,
             root: ec.EllipticCurvePrivateKey | None = None) -> bytes:
        signed_key = json.dumps({"keyValue": _spki(self.intermediate),
                                 "keyExpiration": str(int((time.time() + key_expires_in) * 1000))})
        message = json.dumps({"classId": class_id, "objectId": object_id, "eventType": event_type,
                              "expTimeMillis": str(int((time.time() + expires_in) * 1000)),
                              "count": 1, "nonce": nonce or secrets.token_hex(16)})
        envelope: dict[str, Any] = {
            "protocolVersion": PROTOCOL,
            "intermediateSigningKey": {"signedKey": signed_key,
                                       "signatures": [_sign(root or self.root, _lv(SENDER, PROTOCOL, signed_key))]},
            "signature": _sign(self.intermediate, _lv(SENDER, recipient_id or self.recipient_id, PROTOCOL, message)),
            "signedMessage": message,
        }
        return json.dumps(envelope).encode()
