"""Errors of the Google side, one tree: each says whether trying again later
can help (``retryable``) and what Google said."""

from __future__ import annotations

from wallet.config import StartupError


class GoogleError(Exception):
    """Base of every error the Google side raises on purpose."""

    def __init__(self, message: str, *, retryable: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.retryable = retryable

    def __str__(self) -> str:
        return self.message


class GoogleConfigError(GoogleError, StartupError):
    """The Google configuration cannot be used; the message says why."""


class GoogleAuthError(GoogleError):
    """No access token could be had for the service account."""


class GoogleApiError(GoogleError):
    """The Google Wallet API refused a call; ``status`` is its HTTP status
    (0 when it could not be reached) and the message Google's own."""

    def __init__(self, message: str, *, status: int, retryable: bool) -> None:
        super().__init__(message, retryable=retryable)
        self.status = status


class CallbackRefused(GoogleError):
    """A save/delete callback that cannot be believed; the message says why."""
