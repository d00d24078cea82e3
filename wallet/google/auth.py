"""OAuth 2.0 access tokens for the service account (RFC 7523 JWT bearer grant).

The service account signs a short JWT with its key (the one that signs save
links) and trades it at GOOGLE_TOKEN_URL for an access token of the
wallet_object.issuer scope, valid about an hour. One token serves every
call of the process; it is renewed a few minutes before it runs out, so no
call is made with a token about to expire.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

import httpx
import jwt

from wallet.google.errors import GoogleAuthError
from wallet.google.identity import GoogleIdentity

SCOPE = "https://www.googleapis.com/auth/wallet_object.issuer"
GRANT_TYPE = "urn:ietf:params:oauth:grant-type:jwt-bearer"
ASSERTION_LIFETIME = 3600
# Renew this long before the token's end, so a call never races its expiry.
RENEW_BEFORE = 300


@dataclass(frozen=True)
class AccessToken:
    value: str
    expires_at: float

    def fresh(self, now: float) -> bool:
        return now < self.expires_at - RENEW_BEFORE


class ServiceAccountTokens:
    """The current access token of one service account, renewed when due."""

    def __init__(self, identity: GoogleIdentity, token_url: str, http: httpx.Client) -> None:
        self.identity = identity
        self.token_url = token_url
        self.http = http
        self._token: AccessToken | None = None
        self._lock = threading.Lock()

    def assertion(self, now: float) -> str:
        claims = {
            "iss": self.identity.client_email,
            "scope": SCOPE,
            "aud": self.token_url,
            "iat": int(now),
            "exp": int(now) + ASSERTION_LIFETIME,
        }
        return jwt.encode(claims, self.identity.private_key, algorithm="RS256",
                          headers={"kid": self.identity.private_key_id})

    def token(self) -> str:
        """A token valid for at least a few more minutes."""
        with self._lock:
            now = time.time()
            if self._token is None or not self._token.fresh(now):
                self._token = self._fetch(now)
            return self._token.value

    def forget(self, value: str) -> None:
        """The API refused ``value`` (401): the next call fetches another."""
        with self._lock:
            if self._token is not None and self._token.value == value:
                self._token = None

    def _fetch(self, now: float) -> AccessToken:
        try:
            response = self.http.post(self.token_url, data={"grant_type": GRANT_TYPE,
                                                            "assertion": self.assertion(now)})
        except httpx.HTTPError as exc:
            raise GoogleAuthError(f"the token endpoint {self.token_url} cannot be reached: {exc}",
                                  retryable=True) from exc
        if response.status_code != 200:
            raise GoogleAuthError(
                f"the token endpoint answered {response.status_code}: {response.text[:300]} "
                "(is the service account key current, and GOOGLE_TOKEN_URL right?)",
                retryable=response.status_code == 429 or response.status_code >= 500,
            )
        try:
            body = response.json()
            value = body["access_token"]
            lifetime = float(body.get("expires_in", 3600))
        except (ValueError, KeyError, TypeError) as exc:
            raise GoogleAuthError(f"the token endpoint answered without an access token: {exc}",
                                  retryable=True) from exc
        if not isinstance(value, str) or not value:
            raise GoogleAuthError("the token endpoint answered an empty access token", retryable=True)
        return AccessToken(value=value, expires_at=now + lifetime)
