"""Email addresses and phone numbers as people type them, made canonical.

Every email and phone the service stores or sends to passes through here, so
"Ann@Example.com" and "ann@example.com", or "8 (916) 123-45-67" typed in a
Russian club and "+7 916 123 45 67", are the same contact everywhere.

- Email: checked by email-validator (syntax and domain rules, no DNS look-up:
  a till must not wait on DNS, and a live mailbox is proven by the sign-in
  link, not guessed), then lowercased whole: mailbox providers treat the
  local part case-insensitively, and people type it both ways.
- Phone: parsed by phonenumbers (Google's libphonenumber) and stored in
  E.164 ("+79161234567"). A number written without "+" is read in the
  club's country (ISO 3166-1 alpha-2); without a country it cannot be read
  and is refused. A leading "00" (the ITU international prefix) is accepted
  for "+" where the country's own reading gives no valid number.
"""

from __future__ import annotations

import email_validator
import phonenumbers

from wallet.loyalty.errors import RuleViolation
from wallet.loyalty.fields import valid_text

MAX_EMAIL = 320
MAX_PHONE_INPUT = 32
# The regions libphonenumber knows, by their ISO 3166-1 alpha-2 codes: a
# club's country is one of them, so its members' numbers can be read.
COUNTRIES = frozenset(phonenumbers.SUPPORTED_REGIONS)


def normalize_email(value: object, *, field: str = "email") -> str:
    """The canonical form of an email address; RuleViolation(invalid_email)."""
    text = valid_text(value, field, max_len=MAX_EMAIL, code="invalid_email")
    try:
        checked = email_validator.validate_email(
            text,
            check_deliverability=False,
            # RFC 2606's .test names pass: staging and test systems use them,
            # and with no DNS look-up they are no less deliverable than any
            # other unknown domain.
            test_environment=True,
        )
    except email_validator.EmailNotValidError as exc:
        raise RuleViolation(f"{field}: not a valid email address ({exc})", code="invalid_email") from None
    return checked.normalized.lower()


def normalize_country(value: object, *, field: str = "country") -> str | None:
    """An ISO 3166-1 alpha-2 code in capitals, or None for none given."""
    if value is None or value == "":
        return None
    if not isinstance(value, str) or value.strip().upper() not in COUNTRIES:
        raise RuleViolation(f"{field}: must be an ISO 3166-1 alpha-2 country code such as RU, DE or US",
                            code="invalid_country")
    return value.strip().upper()


def _parse(text: str, country: str | None) -> phonenumbers.PhoneNumber | None:
    try:
        number = phonenumbers.parse(text, country)
    except phonenumbers.NumberParseException:
        return None
    return number if phonenumbers.is_valid_number(number) else None


def normalize_phone(value: object, *, country: str | None = None, field: str = "phone") -> str:
    """The E.164 form of a phone number, read in ``country`` when it has no
    "+"; RuleViolation(invalid_phone) when it is not a valid number."""
    text = valid_text(value, field, max_len=MAX_PHONE_INPUT, code="invalid_phone")
    international = text.startswith("+")
    if not international and country is None and not text.startswith("00"):
        raise RuleViolation(
            f"{field}: {text!r} has no country code; write it with + and the country code "
            "(e.g. +79161234567), or set the club's country",
            code="invalid_phone",
        )
    number = _parse(text, None if international else country)
    if number is None and text.startswith("00"):
        number = _parse("+" + text[2:], None)
    if number is None:
        where = "" if international or country is None else f" in {country}"
        raise RuleViolation(f"{field}: {text!r} is not a valid phone number{where}", code="invalid_phone")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
