"""A local stand-in for the Google Wallet REST API and Google's OAuth token
endpoint: plain HTTP on a loopback socket, answering as Google does.

- ``POST /token`` takes the RFC 7523 JWT bearer grant, checks the assertion's
  signature against the service account's public key, its issuer, audience
  (the token URL itself), scope and expiry, and hands out an access token
  that expires after ``token_lifetime`` seconds.
- ``/walletobjects/v1/loyaltyClass`` and ``/loyaltyObject``: insert (POST,
  409 when the id exists), get, patch (404 for an unknown id) and, for
  objects, ``addMessage``. Every call needs a current bearer token (401
  otherwise), every body is checked against the discovery document's schema
  of the method (400 with the problems otherwise), ids must be the issuer's.
- ``script(429, 503, ...)`` answers the next calls with those statuses first
  (``only="/addMessage"``: the next calls whose path contains that).

It keeps what it holds (``classes``, ``objects``) and every call it received
(``calls``), thread-safely, for assertions.
"""

from __future__ import annotations

import json
import secrets
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import jwt

from tests.support.discovery import problems, request_schema
from tests.support.http import JsonServer

SCOPE = "https://www.googleapis.com/auth/wallet_object.issuer"
BASE = "/walletobjects/v1"
_KINDS = {"loyaltyClass": "loyaltyclass", "loyaltyObject": "loyaltyobject"}
_STATUS = {400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED", 404: "NOT_FOUND",
           409: "ALREADY_EXISTS", 429: "RESOURCE_EXHAUSTED", 500: "INTERNAL", 503: "UNAVAILABLE"}


@dataclass(frozen=True)
class Call:
    method: str
    path: str
    body: Any
    status: int
    at: float


class GoogleStandIn:
    def __init__(self, *, issuer_id: str, client_email: str, public_key: Any, key_id: str,
                 token_lifetime: int = 3600) -> None:
        self.issuer_id = issuer_id
        self.client_email = client_email
        self.public_key = public_key
        self.key_id = key_id
        self.token_lifetime = token_lifetime
        self.classes: dict[str, dict[str, Any]] = {}
        self.objects: dict[str, dict[str, Any]] = {}
        self.calls: list[Call] = []
        self.tokens_issued: list[str] = []
        self._tokens: dict[str, float] = {}
        self._script: list[tuple[str, int]] = []
        self._lock = threading.Lock()
        self.http = JsonServer(self._handle, name="google-standin")

    # -- test side ---------------------------------------------------------
    @property
    def url(self) -> str:
        return self.http.url

    @property
    def api_url(self) -> str:
        return self.url + BASE

    @property
    def token_url(self) -> str:
        return self.url + "/token"

    def script(self, *statuses: int, only: str = "") -> None:
        with self._lock:
            self._script.extend((only, status) for status in statuses)

    def expire_tokens(self) -> None:
        with self._lock:
            self._tokens = {token: 0.0 for token in self._tokens}

    def received(self, method: str | None = None, contains: str = "") -> list[Call]:
        with self._lock:
            return [c for c in self.calls if (method is None or c.method == method) and contains in c.path]

    def __enter__(self) -> GoogleStandIn:
        self.http.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.http.stop()

    # -- Google's side -----------------------------------------------------
    def _handle(self, method: str, target: str, headers: Mapping[str, str], raw: bytes
                ) -> tuple[int, Any, dict[str, str]]:
        path = urlsplit(target).path
        if path == "/token" and method == "POST":
            status, payload = self._token(raw.decode())
        else:
            status, payload = self._api(method, path, headers.get("Authorization", ""), raw)
        return status, payload, {}

    @staticmethod
    def _error(status: int, message: str) -> tuple[int, Any]:
        return status, {"error": {"code": status, "message": message, "status": _STATUS.get(status, "UNKNOWN")}}

    def _token(self, form: str) -> tuple[int, Any]:
        fields = {k: v[0] for k, v in parse_qs(form).items()}
        if fields.get("grant_type") != "urn:ietf:params:oauth:grant-type:jwt-bearer":
            return 400, {"error": "unsupported_grant_type"}
        assertion = fields.get("assertion", "")
        try:
            if jwt.get_unverified_header(assertion).get("kid") != self.key_id:
                return 400, {"error": "invalid_grant", "error_description": "Invalid JWT Signature."}
            claims = jwt.decode(assertion, self.public_key, algorithms=["RS256"], audience=self.token_url,
                                issuer=self.client_email, options={"require": ["iat", "exp", "scope"]})
        except jwt.PyJWTError as exc:
            return 400, {"error": "invalid_grant", "error_description": str(exc)}
        if SCOPE not in str(claims["scope"]).split():
            return 400, {"error": "invalid_scope"}
        token = "ya29.standin-" + secrets.token_urlsafe(16)
        with self._lock:
            self._tokens[token] = time.time() + self.token_lifetime
            self.tokens_issued.append(token)
        return 200, {"access_token": token, "expires_in": self.token_lifetime, "token_type": "Bearer"}

    def _api(self, method: str, path: str, authorization: str, raw: bytes) -> tuple[int, Any]:
        status, payload, body = self._answer(method, path, authorization, raw)
        with self._lock:
            self.calls.append(Call(method=method, path=path, body=body, status=status, at=time.time()))
        return status, payload

    def _answer(self, method: str, path: str, authorization: str, raw: bytes) -> tuple[int, Any, Any]:
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            return (*self._error(400, "Invalid JSON payload received."), None)
        scheme, _, token = authorization.partition(" ")
        with self._lock:
            expires = self._tokens.get(token) if scheme == "Bearer" else None
            if expires is None or expires < time.time():
                return (*self._error(401, "Request had invalid authentication credentials."), body)
            turn = next((i for i, (only, _status) in enumerate(self._script) if only in path), None)
            scripted = self._script.pop(turn)[1] if turn is not None else None
        if scripted is not None:
            return (*self._error(scripted, "Scripted failure."), body)
        if not path.startswith(BASE + "/"):
            return (*self._error(404, "Not Found"), body)
        parts = [unquote(p) for p in path[len(BASE) + 1:].split("/")]
        kind = _KINDS.get(parts[0])
        if kind is None:
            return (*self._error(404, "Not Found"), body)
        store = self.classes if kind == "loyaltyclass" else self.objects
        if len(parts) == 1 and method == "POST":
            return (*self._insert(kind, store, body), body)
        if len(parts) == 2 and method in ("GET", "PATCH"):
            return (*self._existing(kind, store, method, parts[1], body), body)
        if len(parts) == 3 and parts[2] == "addMessage" and method == "POST" and kind == "loyaltyobject":
            return (*self._add_message(parts[1], body), body)
        return (*self._error(404, "Not Found"), body)

    def _checked(self, kind: str, name: str, body: Any) -> tuple[int, Any] | None:
        found = problems(request_schema(kind, name), body)
        if found:
            return self._error(400, "Invalid value: " + "; ".join(found))
        return None

    def _owned(self, resource_id: Any) -> bool:
        return isinstance(resource_id, str) and resource_id.startswith(self.issuer_id + ".")

    def _insert(self, kind: str, store: dict[str, Any], body: Any) -> tuple[int, Any]:
        refused = self._checked(kind, "insert", body)
        if refused:
            return refused
        resource_id = body.get("id")
        if not self._owned(resource_id):
            return self._error(403, f"The caller does not have permission for issuer of {resource_id}")
        if kind == "loyaltyobject" and body.get("classId") not in self.classes:
            return self._error(404, f"Class {body.get('classId')} not found")
        with self._lock:
            if resource_id in store:
                return self._error(409, f"Resource {resource_id} already exists")
            store[resource_id] = {**body, "kind": f"walletobjects#{kind}"}
            return 200, store[resource_id]

    def _existing(self, kind: str, store: dict[str, Any], method: str, resource_id: str, body: Any
                  ) -> tuple[int, Any]:
        if method == "PATCH":
            refused = self._checked(kind, "patch", body)
            if refused:
                return refused
        with self._lock:
            if resource_id not in store:
                return self._error(404, f"Resource {resource_id} not found")
            if method == "PATCH":
                # notifyPreference is ephemeral: it acts on this update only.
                store[resource_id].update({k: v for k, v in body.items() if k != "notifyPreference"})
            return 200, store[resource_id]

    def _add_message(self, resource_id: str, body: Any) -> tuple[int, Any]:
        refused = self._checked("loyaltyobject", "addmessage", body)
        if refused:
            return refused
        with self._lock:
            if resource_id not in self.objects:
                return self._error(404, f"Resource {resource_id} not found")
            resource = self.objects[resource_id]
            resource.setdefault("messages", []).append(body["message"])
            return 200, {"resource": resource}


@dataclass(frozen=True)
class ServiceAccount:
    """A service account's JSON key file, as Google Cloud issues it."""

    path: Any
    client_email: str
    key_id: str
    private_key: Any


def make_service_account(path: Any) -> ServiceAccount:
    from cryptography.hazmat.primitives.asymmetric import rsa

    from wallet.google.identity import write_service_account

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    account = ServiceAccount(path=path, client_email="wallet@wallet-clubs-test.iam.gserviceaccount.com",
                             key_id=secrets.token_hex(20), private_key=key)
    write_service_account(path, key, client_email=account.client_email, key_id=account.key_id,
                          project_id="wallet-clubs-test")
    return account
