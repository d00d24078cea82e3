"""Errors of the loyalty core.

Each carries a snake_case ``code`` and a human ``message``; the API maps the
class to a status (NotFound 404, RuleViolation 422, Conflict 409,
NotAuthenticated 401, RateLimited 429) and answers ``{"error": {"code", "message"}}``.
"""

from __future__ import annotations


class LoyaltyError(Exception):
    """Base of every error the core raises on purpose."""

    default_code = "loyalty_error"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.code = code or self.default_code
        self.message = message

    def __str__(self) -> str:
        return self.message


class NotFound(LoyaltyError):
    default_code = "not_found"


class RuleViolation(LoyaltyError):
    """A well-formed request that breaks a rule (422)."""

    default_code = "rule_violation"


class Conflict(LoyaltyError):
    default_code = "conflict"


class NotAuthenticated(LoyaltyError):
    default_code = "not_authenticated"


class RateLimited(LoyaltyError):
    """Asked too often; ``retry_after`` seconds until it may be asked again (429)."""

    default_code = "rate_limited"

    def __init__(self, message: str, *, retry_after: int, code: str | None = None) -> None:
        super().__init__(message, code=code)
        self.retry_after = retry_after
