"""The club form: every field a brand sets on a club, with the program's
kinds as sections, and the two ways between it and the core.

``club_fields`` turns what the brand typed into the core's club fields (the
same dict the API's POST /api/v1/clubs takes: money in minor units, the
program as its sections); it only reads input (a number typed "1,50", an
uploaded picture) and leaves every rule to the core, which answers with
``clean_club_fields`` / ``validate_program``. ``show_refusal`` puts what the
core refused next to the field it names, worded by the code of each problem
(never by reading the core's English). ``form_values`` fills the form
from a club.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from decimal import Decimal, InvalidOperation
from typing import Any

from flask_babel import get_locale
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf.file import FileField
from wtforms import BooleanField, Field, FieldList, Form, FormField, IntegerField, SelectField, StringField, \
    TextAreaField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import Optional
from wtforms.widgets import ColorInput, NumberInput

from wallet.artwork import ARTWORK_STORED_MAX_SIDE, MAX_UPLOAD_BYTES, ImageRejected, validate_and_normalize_image
from wallet.loyalty.clubs import (
    BARCODE_FORMATS,
    CARD_STYLES,
    CATEGORIES,
    FEATURED_ACTION_TYPES,
    MAX_FEATURED_ACTIONS,
    MAX_LOCATIONS,
)
from wallet.loyalty.contacts import COUNTRIES
from wallet.loyalty.locales import LOCALES
from wallet.loyalty.errors import RuleViolation
from wallet.loyalty.fields import InvalidFields, Problem
from wallet.loyalty.models import Club
from wallet.loyalty.money import currencies, exponent, to_major, to_minor
from wallet.web.forms import GENERIC, CheckboxesField, PageForm
from wallet.web.site import LANGUAGE_NAMES
from wallet.web.wording import CATEGORY_NAMES

# Rows the form offers for tier levels; a club given more through the API
# gets its own count and one spare.
LEVEL_ROWS = 4
BARCODE_NAMES = {"qr": _l("QR code"), "pdf417": _l("PDF417"), "aztec": _l("Aztec"), "code128": _l("Code 128"),
                 "code39": _l("Code 39 (iOS 27)"), "codabar": _l("Codabar (iOS 27)"),
                 "ean13": _l("EAN-13 (iOS 27)"), "itf": _l("ITF, Interleaved 2 of 5 (iOS 27)")}
CARD_STYLE_NAMES = {"store_card": _l("Store card"), "poster": _l("Poster card (iOS 27)")}
FEATURED_ACTION_NAMES = {
    "membership_benefits": _l("Membership benefits"), "offers_rewards": _l("Offers and rewards"),
    "add_to_balance": _l("Add to balance"), "order": _l("Order delivery or pickup"), "shop": _l("Shop online"),
    "book_appointment": _l("Book an appointment"),
}
ROUNDING_NAMES = {"down": _l("Round down"), "half_up": _l("Round half up")}


class SubForm(Form):
    """A section or row of the club form: no CSRF of its own, and spaces
    around text dropped as on every page form."""

    Meta = PageForm.Meta


class Needed:
    """Marks a field the core needs a value in (the page says so and does
    not write "(optional)"); the core itself refuses it empty."""

    field_flags = {"required": True}

    def __call__(self, form: Form, field: Field) -> None:
        return None


NEEDED = Needed()


def _number(label: object, *, needed: bool = True, **kwargs: Any) -> IntegerField:
    return IntegerField(label, validators=[Optional(), *([NEEDED] if needed else [])], widget=NumberInput(),
                        render_kw={"inputmode": "numeric"}, **kwargs)


def _decimal_field(label: object, *, needed: bool = True, **kwargs: Any) -> StringField:
    """Money in the club's currency or a percentage, as people type it
    ("1.50", "1,50")."""
    return StringField(label, validators=[NEEDED] if needed else [],
                       render_kw={"inputmode": "decimal", "class": "amount"}, **kwargs)


_amount = _percent = _decimal_field


def _colour(label: object, default: str) -> StringField:
    return StringField(label, validators=[NEEDED], widget=ColorInput(), default=default)


class PointsForm(SubForm):
    enabled = BooleanField(_l("Members earn points"))
    earn_points = _number(_l("Points earned"), default=1)
    per_amount = _amount(_l("For each amount spent"), default="1",
                         description=_l("In the club's currency: 1 point for every 1.00 by default."))
    rounding = SelectField(_l("Rounding"), validators=[NEEDED], choices=[SelectChoice(k, v) for k, v in ROUNDING_NAMES.items()],
                           default="down")
    min_purchase = _amount(_l("Smallest purchase that earns points"), default="0")
    redeem_value = _amount(_l("What one point is worth at the till"), default="1")
    expiry_days = _number(_l("Points expire after (days)"), needed=False,
                          description=_l("Empty: points never expire. The oldest points are spent first."))
    pending_days = _number(_l("Days before new points can be spent"), default=0,
                           description=_l("A return window: points wait this long before they count."))
    warning_days = _number(_l("Warn this many days before points expire"), default=14)
    allow_negative = BooleanField(_l("A refund may take the balance below zero"))


class LevelForm(SubForm):
    name = StringField(_l("Name"), validators=[NEEDED])
    min_spend = _amount(_l("From spending of"))
    earn_points = _number(_l("Points earned (own rate)"), needed=False)
    discount_percent = _percent(_l("Discount, % (own)"), needed=False)


class TiersForm(SubForm):
    enabled = BooleanField(_l("Levels by spending"))
    window_days = _number(_l("Spending counted over (days)"), default=365)
    review_days = _number(_l("Levels reviewed every (days)"), default=30)
    levels = FieldList(FormField(LevelForm), min_entries=LEVEL_ROWS)


class DiscountForm(SubForm):
    enabled = BooleanField(_l("A discount on every purchase"))
    percent = _percent(_l("Discount, %"))


class CashbackForm(SubForm):
    enabled = BooleanField(_l("Cashback into a money balance"))
    percent = _percent(_l("Cashback, %"))


class StampsForm(SubForm):
    enabled = BooleanField(_l("Stamps: a reward after a number of purchases"))
    required = _number(_l("Purchases for the reward"))
    reward = StringField(_l("Reward"), validators=[NEEDED])


class BonusesForm(SubForm):
    welcome_points = _number(_l("Welcome points"), needed=False, default=0)
    referral_points = _number(_l("Points for bringing a friend"), needed=False, default=0)
    birthday_points = _number(_l("Birthday points"), needed=False, default=0)


class LocationForm(SubForm):
    name = StringField(_l("Shop name"))
    latitude = StringField(_l("Latitude"), render_kw={"inputmode": "decimal"})
    longitude = StringField(_l("Longitude"), render_kw={"inputmode": "decimal"})
    relevant_text = StringField(_l("Text on the lock screen nearby"))


class FeaturedActionForm(SubForm):
    type = SelectField(_l("Link"), default="", choices=[SelectChoice("", "—"), *(
        SelectChoice(kind, FEATURED_ACTION_NAMES[kind]) for kind in FEATURED_ACTION_TYPES)])
    url = StringField(_l("Page it opens"), render_kw={"type": "url", "autocomplete": "off",
                                                      "placeholder": "https://"})


SECTIONS = ("points", "tiers", "discount", "cashback", "stamps")


class ClubForm(PageForm):
    name = StringField(_l("Club name"), validators=[NEEDED], render_kw={"autocomplete": "off"})
    logo_text = StringField(_l("Text beside the logo"),
                            description=_l("At the top of the card. Empty: the club name."))
    description = TextAreaField(_l("Description"), description=_l("For the catalogue: what members get."))
    category = SelectField(_l("Category"), validators=[NEEDED], default="other")
    country = SelectField(_l("Country"), default="",
                          description=_l("Members' phone numbers written without + are read in this country."))
    currency = SelectField(_l("Currency"), validators=[NEEDED], default="RUB")
    logo = FileField(_l("Logo"), render_kw={"accept": "image/png,image/jpeg,image/webp,image/gif"},
                     description=_l("PNG or JPEG up to 5 MB, shown at the top of the card."))
    strip = FileField(_l("Strip image"), render_kw={"accept": "image/png,image/jpeg,image/webp,image/gif"},
                      description=_l("A wide picture behind the balance (375 × 123)."))
    remove_strip = BooleanField(_l("Remove the strip image"))
    card_style = SelectField(_l("Card style"), validators=[NEEDED], default="store_card",
                             choices=[SelectChoice(k, CARD_STYLE_NAMES[k]) for k in CARD_STYLES],
                             description=_l("A poster card shows your artwork behind the balance on iPhones with "
                                            "iOS 27 and on Google Wallet; older iPhones show the store card."))
    artwork = FileField(_l("Poster artwork"), render_kw={"accept": "image/png,image/jpeg,image/webp,image/gif"},
                        description=_l("A tall picture behind the poster card (358 × 448, 4:5); the edges may "
                                       "be cut to fill the card. Without one, the logo on the card colour."))
    remove_artwork = BooleanField(_l("Remove the poster artwork"))
    featured_actions = FieldList(FormField(FeaturedActionForm), min_entries=MAX_FEATURED_ACTIONS,
                                 max_entries=MAX_FEATURED_ACTIONS)
    background_color = _colour(_l("Background colour"), "#1F2937")
    foreground_color = _colour(_l("Text colour"), "#FFFFFF")
    label_color = _colour(_l("Label colour"), "#D1D5DB")
    barcode_format = SelectField(_l("Barcode format"), validators=[NEEDED],
                                 choices=[SelectChoice(k, BARCODE_NAMES[k]) for k in BARCODE_FORMATS], default="qr",
                                 description=_l("What your tills scan. iPhones before iOS 27 show Code 128 or a QR "
                                                "code instead of the four newest formats."))
    languages = CheckboxesField(_l("Languages of the card"), validators=[NEEDED],
                                choices=[SelectChoice(code, LANGUAGE_NAMES[code]) for code in LOCALES],
                                default=list(LOCALES),
                                description=_l("The card is written in these. A phone in another language "
                                               "shows the first."))
    points = FormField(PointsForm)
    tiers = FormField(TiersForm)
    discount = FormField(DiscountForm)
    cashback = FormField(CashbackForm)
    stamps = FormField(StampsForm)
    bonuses = FormField(BonusesForm)
    terms = TextAreaField(_l("Terms"))
    contact_email = StringField(_l("Contact email"), render_kw={"type": "email", "autocomplete": "off"})
    contact_phone = StringField(_l("Contact phone"), render_kw={"type": "tel", "autocomplete": "off"})
    website = StringField(_l("Website"), render_kw={"type": "url", "autocomplete": "off"})
    locations = FieldList(FormField(LocationForm), min_entries=MAX_LOCATIONS, max_entries=MAX_LOCATIONS)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        locale = get_locale()
        territories = locale.territories if locale else {}
        currency_names = locale.currencies if locale else {}
        self.category.choices = [SelectChoice(code, CATEGORY_NAMES[code]) for code in CATEGORIES]
        self.country.choices = [SelectChoice("", "—"), *sorted(
            (SelectChoice(code, territories.get(code, code)) for code in COUNTRIES), key=lambda c: c.label)]
        self.currency.choices = sorted(
            (SelectChoice(code, f"{currency_names.get(code, code)} ({code})") for code in currencies()),
            key=lambda c: c.label)


# --- from the form to the core ------------------------------------------------------


# Digits a typed number may have before or after the point: far beyond any
# amount the core accepts, far below what is slow to expand.
_MAX_DIGITS = 40


class Unreadable(ValueError):
    """What was typed cannot be read as the field's kind of value."""


def _decimal(text: str | None) -> Decimal | None:
    if not text:
        return None
    cleaned = re.sub(r"[\s\u00a0\u202f]", "", text).replace(",", ".")
    try:
        number = Decimal(cleaned)
    except InvalidOperation:
        raise Unreadable(_("Enter a number, like 1.50.")) from None
    # "1e999999999" is a number too, one that would take minutes to expand.
    if not number.is_finite() or abs(number.adjusted()) > _MAX_DIGITS:
        raise Unreadable(_("Enter a number, like 1.50."))
    return number


def _minor(field: Field, currency: str) -> int | None:
    number = _decimal(field.data)
    if number is None:
        return None
    try:
        return to_minor(number, currency)
    except (ValueError, ArithmeticError):
        raise Unreadable(_("Enter an amount with at most %(num)s digits after the point.",
                           num=exponent(currency))) from None


def _percent_text(field: Field) -> str | None:
    number = _decimal(field.data)
    return None if number is None else str(number)


def _coordinate(field: Field) -> float | None:
    # Coordinates are the one place a fraction is right: they are not money.
    number = _decimal(field.data)
    return None if number is None else float(number)


def _safe_currency(form: ClubForm) -> str:
    code = form.currency.data or ""
    return code if code in currencies() else "RUB"


def _read(form: ClubForm, errors: dict[Field, str], field: Field, reader: Any, *args: Any) -> Any:
    try:
        return reader(field, *args)
    except Unreadable as exc:
        errors[field] = str(exc)
        return None


def _program(form: ClubForm, errors: dict[Field, str]) -> dict[str, Any]:
    currency = _safe_currency(form)
    program: dict[str, Any] = {}

    def money(field: Field) -> int | None:
        return _read(form, errors, field, _minor, currency)

    points = form.points.form
    if points.enabled.data:
        program["points"] = {
            "earn_points": points.earn_points.data, "per_amount": money(points.per_amount),
            "rounding": points.rounding.data, "min_purchase": money(points.min_purchase),
            "redeem_value": money(points.redeem_value), "expiry_days": points.expiry_days.data,
            "pending_days": points.pending_days.data, "warning_days": points.warning_days.data,
            "allow_negative": bool(points.allow_negative.data),
        }
    tiers = form.tiers.form
    if tiers.enabled.data:
        levels = []
        for row in tiers.levels:
            level = row.form
            if not any((level.name.data, level.min_spend.data, level.earn_points.data is not None,
                        level.discount_percent.data)):
                continue
            levels.append({"name": level.name.data, "min_spend": money(level.min_spend) or 0,
                           "earn_points": level.earn_points.data,
                           "discount_percent": _read(form, errors, level.discount_percent, _percent_text)})
        program["tiers"] = {"window_days": tiers.window_days.data, "review_days": tiers.review_days.data,
                            "levels": levels}
    for name in ("discount", "cashback"):
        section = form[name].form
        if section.enabled.data:
            program[name] = {"percent": _read(form, errors, section.percent, _percent_text)}
    stamps = form.stamps.form
    if stamps.enabled.data:
        program["stamps"] = {"required": stamps.required.data, "reward": stamps.reward.data}
    bonuses = {key: form.bonuses.form[key].data for key in ("welcome_points", "referral_points", "birthday_points")}
    if any(bonuses.values()):
        program["bonuses"] = {key: value or 0 for key, value in bonuses.items()}
    return program


def _locations(form: ClubForm, errors: dict[Field, str]) -> list[dict[str, Any]]:
    locations = []
    for row in form.locations:
        place = row.form
        if not any((place.name.data, place.latitude.data, place.longitude.data, place.relevant_text.data)):
            continue
        locations.append({"name": place.name.data or None,
                          "latitude": _read(form, errors, place.latitude, _coordinate),
                          "longitude": _read(form, errors, place.longitude, _coordinate),
                          "relevant_text": place.relevant_text.data or None})
    return locations


def _picture(field: Field, errors: dict[Field, str], **limits: int) -> bytes | None:
    upload = field.data
    if upload is None or not getattr(upload, "filename", None):
        return None
    # One byte past the limit is enough to know it is too big.
    data = upload.stream.read(MAX_UPLOAD_BYTES + 1)
    try:
        return validate_and_normalize_image(data, **limits)
    except ImageRejected as exc:
        errors[field] = image_refusal(exc)
        return None


def club_fields(form: ClubForm, *, creating: bool) -> tuple[dict[str, Any], dict[Field, str]]:
    """The core's club fields from the form, and what could not even be read
    (by field). A picture not uploaded is left out, so a club keeps its own."""
    errors: dict[Field, str] = {}
    data: dict[str, Any] = {
        "name": form.name.data or "",
        "logo_text": form.logo_text.data or None,
        "description": form.description.data or "",
        "category": form.category.data,
        "country": form.country.data or None,
        "currency": form.currency.data,
        "background_color": form.background_color.data,
        "foreground_color": form.foreground_color.data,
        "label_color": form.label_color.data,
        "barcode_format": form.barcode_format.data,
        "languages": list(form.languages.data or []),
        "terms": form.terms.data or "",
        "contact_email": form.contact_email.data or None,
        "contact_phone": form.contact_phone.data or None,
        "website": form.website.data or None,
        "locations": _locations(form, errors),
        "program": _program(form, errors),
        "card_style": form.card_style.data,
        "featured_actions": [{"type": row.form.type.data, "url": row.form.url.data or ""}
                             for row in form.featured_actions if row.form.type.data or row.form.url.data],
    }
    logo = _picture(form.logo, errors)
    if logo is not None:
        data["logo_png"] = logo
    strip_png = _picture(form.strip, errors)
    if strip_png is not None:
        data["strip_png"] = strip_png
    elif form.remove_strip.data and not creating:
        data["strip_png"] = None
    artwork = _picture(form.artwork, errors, max_side=ARTWORK_STORED_MAX_SIDE)
    if artwork is not None:
        data["artwork_png"] = artwork
    elif form.remove_artwork.data and not creating:
        data["artwork_png"] = None
    return data, errors


# --- from a club to the form ---------------------------------------------------------


def _major(minor: int | None, currency: str) -> str:
    return "" if minor is None else format(to_major(minor, currency), "f")


def form_values(club: Club) -> dict[str, Any]:
    """The form's values for ``club`` (``ClubForm(data=...)``)."""
    currency = club.currency
    program = club.program or {}
    points = program.get("points")
    tiers = program.get("tiers")
    values: dict[str, Any] = {
        key: getattr(club, key) for key in (
            "name", "logo_text", "description", "category", "currency", "background_color", "foreground_color",
            "label_color", "barcode_format", "languages", "terms", "contact_email", "contact_phone", "website",
            "card_style")
    }
    values["featured_actions"] = list(club.featured_actions or [])
    values["country"] = club.country or ""
    values["points"] = {"enabled": False} if points is None else {
        **points, "enabled": True,
        **{k: _major(points.get(k), currency) for k in ("per_amount", "min_purchase", "redeem_value")},
    }
    levels = [{**level, "min_spend": _major(level.get("min_spend"), currency)}
              for level in (tiers or {}).get("levels", [])]
    values["tiers"] = {"enabled": False} if tiers is None else {**tiers, "enabled": True, "levels": levels}
    for name in ("discount", "cashback", "stamps"):
        section = program.get(name)
        values[name] = {"enabled": False} if section is None else {**section, "enabled": True}
    values["bonuses"] = program.get("bonuses") or {}
    values["locations"] = list(club.locations or [])
    return values


def new_club_values() -> dict[str, Any]:
    """A new club earns points: 1 per 1.00 of its currency (whatever its
    minor unit: "1" is read in the currency chosen) unless the brand
    chooses other rules."""
    return {"points": {"enabled": True}}


def fit_rows(form: ClubForm) -> None:
    """Every saved level shown, and room for one more (up to the core's
    own bound, which it enforces)."""
    levels = form.tiers.form.levels
    while len(levels) < max(LEVEL_ROWS, len([e for e in levels if e.form.name.data]) + 1):
        levels.append_entry()


# --- from the core's refusal to the field --------------------------------------------

# The page's words for each code of the core's Problems (wallet.loyalty.fields),
# given the values the problem names, so a Russian page says it in Russian.
# A code missing here shows GENERIC, never the core's English.
_WORDING: dict[str, Callable[[dict[str, Any]], str]] = {
    "required": lambda p: _("This field is required."),
    "too_long": lambda p: _("Use at most %(num)s characters.", num=p["max"]),
    "control_characters": lambda p: _("Remove the special characters."),
    "not_integer": lambda p: _("Enter a whole number."),
    "not_number": lambda p: _("Enter a number."),
    "out_of_range": lambda p: _("Enter a number from %(low)s to %(high)s.", low=p["low"], high=p["high"]),
    "too_many_decimals": lambda p: _("Use at most 2 digits after the point."),
    "not_colour": lambda p: _("Choose a colour."),
    "not_currency": lambda p: _("Choose a currency from the list."),
    "invalid_country": lambda p: _("Choose a country from the list."),
    "not_a_choice": lambda p: _("Choose one of the options."),
    "not_url": lambda p: _("Enter an address starting with https://."),
    "invalid_phone": lambda p: _("Enter a phone number, like +7 495 123-45-67."),
    "invalid_email": lambda p: _("Enter an email address like name@example.com."),
    "expires_before_spendable": lambda p: _(
        "Points would expire before they can be spent: make this longer than the days before new points can "
        "be spent."),
    "first_level_not_zero": lambda p: _("The first level starts at 0."),
    "levels_not_ascending": lambda p: _("Each level needs more spending than the one before."),
    "duplicate_level": lambda p: _("Give each level its own name."),
    "no_levels": lambda p: _("Name at least one level."),
    "too_many_levels": lambda p: _("Too many levels."),
    "too_many_locations": lambda p: _("At most %(num)s shops.", num=p["max"]),
    "repeated_action": lambda p: _("Choose a different link for each row."),
    "no_language": lambda p: _("Choose at least one language."),
    "currency_locked": lambda p: _("The club has members: its currency can no longer change."),
    "barcode_format_locked": lambda p: _(
        "Your members already have card numbers this barcode cannot carry. Keep the current format."),
}
# Refusals that name no field: where they belong.
_FIELD_OF_CODE = {"currency_locked": "currency", "barcode_format_locked": "barcode_format"}
# The core's field names where the form's differ.
_RENAMED = {"logo_png": "logo", "strip_png": "strip", "icon_png": "logo", "artwork_png": "artwork"}
# What the artwork checks refuse (ImageRejected's codes).
_IMAGE_WORDING: dict[str, Callable[[], str]] = {
    "image_empty": lambda: _("The file is empty."),
    "image_too_big": lambda: _("The file is too big: at most %(num)s MB.", num=MAX_UPLOAD_BYTES // (1024 * 1024)),
    "image_too_small": lambda: _("The picture is too small: at least 16 × 16 pixels."),
    "image_too_large": lambda: _("The picture is too large: at most 6000 pixels a side."),
    "image_not_accepted": lambda: _("This file is not a picture. Upload a PNG or JPEG."),
}


def words_for(found: Problem) -> str:
    """The page's words for one Problem the core names."""
    wording = _WORDING.get(found.code)
    return str(wording(found.params)) if wording else str(GENERIC)


def image_refusal(exc: ImageRejected) -> str:
    wording = _IMAGE_WORDING.get(exc.code)
    return wording() if wording else _("The picture is broken or cut short. Save it again and upload it.")


def refusals(exc: RuleViolation) -> Iterator[tuple[str, Problem]]:
    """(the core's field path, its Problem) for each problem ``exc`` names;
    a refusal of no field (currency_locked) where it belongs."""
    if isinstance(exc, InvalidFields):
        for path, found in exc.errors.items():
            for one in found:
                yield path, one
    else:
        yield _FIELD_OF_CODE.get(exc.code, ""), Problem(exc.code, exc.message)


def all_fields(form: Form) -> Iterator[Field]:
    """Every field of the form, sections and rows included, each section or
    row itself too."""
    for field in form:
        yield field
        if isinstance(field, FormField):
            yield from all_fields(field.form)
        elif isinstance(field, FieldList):
            for entry in field.entries:
                yield entry
                yield from all_fields(entry.form)


def _field_at(form: ClubForm, path: str) -> Field | None:
    """The form field for a core path ("program.tiers.levels[1].name",
    "locations[0].latitude", "name"), or the nearest section holding it."""
    if path.startswith("program."):
        path = path[len("program."):]
    parts = [_RENAMED.get(p, p) for p in re.split(r"\.|\[(\d+)\]\.?", path) if p]
    fields = {field.name: field for field in all_fields(form)}
    while parts:
        field = fields.get("-".join(parts))
        if isinstance(field, FormField) and "enabled" in field.form:
            return field.form["enabled"]
        if field is not None and not isinstance(field, (FormField, FieldList)):
            return field
        parts.pop()
    return None


def show_refusal(form: ClubForm, exc: RuleViolation) -> None:
    """Each problem the core names, worded for the page, under its field."""
    for path, found in refusals(exc):
        field = _field_at(form, path)
        if field is None:
            form.form_errors.append(words_for(found))
        else:
            field.errors = [*field.errors, words_for(found)]


def show_unreadable(errors: dict[Field, str]) -> None:
    for field, message in errors.items():
        field.errors = [*field.errors, message]


def problems(form: ClubForm) -> list[str]:
    """What the form's fields were refused, each after its label."""
    found = [f"{field.label.text}: {error}" for field in all_fields(form)
             if not isinstance(field, (FormField, FieldList)) for error in field.errors]
    return [*found, *map(str, form.form_errors)]
