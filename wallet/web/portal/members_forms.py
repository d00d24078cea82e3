"""The forms of a club's member pages, its till and its imports."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf.file import FileField, FileRequired
from wtforms import DecimalField, IntegerField, StringField, TextAreaField
from wtforms.validators import DataRequired, InputRequired, Length, NumberRange, StopValidation, ValidationError

from wallet.loyalty.program import MAX_POINTS
from wallet.web.forms import PageForm
from wallet.web.portal.members_booking import once_field

_WHOLE = _l("Enter a whole number of points.")


def _not_zero(_form: PageForm, field: IntegerField) -> None:
    if field.data == 0:
        raise ValidationError(_l("Enter a number other than 0: positive adds points, negative takes them."))


class AdjustForm(PageForm):
    points = IntegerField(_l("Points"), validators=[
        InputRequired(_WHOLE), NumberRange(-MAX_POINTS, MAX_POINTS, message=_WHOLE), _not_zero],
        description=_l("Positive adds points, negative takes them away."),
        render_kw={"inputmode": "numeric", "autocomplete": "off"})
    reason = TextAreaField(_l("Reason"), validators=[DataRequired(_l("Say why: the member may ask.")),
                                                     Length(max=500)],
                           render_kw={"rows": 2})
    once = once_field()


class CardForm(PageForm):
    """The till's first step; sent by GET, so it carries no CSRF token."""

    class Meta:
        csrf = False

    card = StringField(_l("Card number"), validators=[DataRequired(_l("Enter or scan the card number.")),
                                                      Length(max=64)],
                       render_kw={"inputmode": "numeric", "autocomplete": "off", "autofocus": True,
                                  "enterkeyhint": "search"})


def _above_zero(_form: PageForm, field: DecimalField) -> None:
    # Decimal("NaN") cannot even be compared: check it is a number first.
    if field.data is not None and not (field.data.is_finite() and field.data > 0):
        raise StopValidation(_l("Enter an amount above zero."))


class PurchaseForm(PageForm):
    amount = DecimalField(_l("Amount"), places=None, validators=[
        InputRequired(_l("Enter the amount paid.")), _above_zero],
        render_kw={"inputmode": "decimal", "autocomplete": "off"})
    once = once_field()


class RedeemForm(PageForm):
    points = IntegerField(_l("Points to redeem"), validators=[
        InputRequired(_WHOLE), NumberRange(1, MAX_POINTS, message=_l("Enter a number of points above zero."))],
        render_kw={"inputmode": "numeric", "autocomplete": "off"})
    once = once_field()


class StampForm(PageForm):
    """A stamp alone: nothing to type, only the key that books it once."""

    once = once_field()


class ImportForm(PageForm):
    file = FileField(_l("CSV file"), validators=[FileRequired(_l("Choose a CSV file."))],
                     render_kw={"accept": ".csv,text/csv"})
