"""What every page form shares.

Forms are Flask-WTF forms (CSRF token included); templates draw each field
with the ``field`` macro of templates/macros/forms.html, which ties the
label to the input and shows the field's errors under it. A rule the core
refuses (a ``LoyaltyError``) is shown next to the field it concerns with
``refuse``: the core's own message is English and for developers, so pages
show a translated one chosen by the error's code.
"""

from __future__ import annotations

from collections.abc import Mapping

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import Field, FieldList, FormField, SelectMultipleField
from wtforms.widgets import CheckboxInput, ListWidget

from wallet.loyalty.errors import LoyaltyError


def strip(value: object) -> object:
    return value.strip() if isinstance(value, str) else value


class PageForm(FlaskForm):
    """A page form: surrounding spaces are dropped from every text field."""

    class Meta:
        def bind_field(self, form, unbound_field, options):  # type: ignore[no-untyped-def]
            filters = unbound_field.kwargs.get("filters", ())
            # A section or a list of rows takes no filters; its fields get theirs.
            if strip not in filters and not issubclass(unbound_field.field_class, (FormField, FieldList)):
                unbound_field.kwargs["filters"] = (strip, *filters)
            return unbound_field.bind(form=form, **options)


class CheckboxesField(SelectMultipleField):
    """Choices as checkboxes, each with its own label (templates draw it with
    the ``checkboxes`` macro: a fieldset whose legend is the field's label)."""

    widget = ListWidget(prefix_label=False, html_tag="ul")
    option_widget = CheckboxInput()


# Page wording for the core's error codes; a code missing here shows the
# generic message, never the core's English.
MESSAGES: dict[str, object] = {
    "email_or_phone_required": _l("Give an email or a phone number."),
    "invalid_email": _l("Enter an email address like name@example.com."),
    "invalid_phone": _l("Enter a phone number in international format, like +7 916 123-45-67."),
    "invalid_password": _l("Use at least 8 characters."),
    "email_taken": _l("This email is already registered. Sign in instead."),
    "invalid_name": _l("Enter a name of at most 200 characters, without special characters."),
    "invalid_birthday": _l("Enter a real date of birth."),
    "invalid_referral_code": _l("This referral code is not valid."),
    "unknown_referral_code": _l("This referral code is not valid."),
}
GENERIC = _l("Please check this field.")


def refuse(form: FlaskForm, exc: LoyaltyError, fields: Mapping[str, str], default: str,
           wording: Mapping[str, object] | None = None) -> None:
    """Shows ``exc`` under the form field it concerns: ``fields`` maps error
    codes to field names, ``default`` names the field for any other code;
    ``wording`` words a code differently on this form than ``MESSAGES`` does."""
    field: Field = form[fields.get(exc.code, default)]
    message = (wording or {}).get(exc.code) or MESSAGES.get(exc.code, GENERIC)
    field.errors = [*field.errors, message]  # type: ignore[list-item]
