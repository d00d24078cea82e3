"""The forms customers fill in."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from wtforms import BooleanField, DateField, EmailField, StringField, TelField
from wtforms.validators import DataRequired, Length, Optional

from wallet.web.forms import MESSAGES, PageForm


class JoinForm(PageForm):
    name = StringField(_l("Name"), validators=[DataRequired(), Length(max=200)],
                       render_kw={"autocomplete": "name"})
    # Either is enough; the view asks for one when both are empty.
    email = EmailField(_l("Email"), validators=[Optional(), Length(max=320)],
                       render_kw={"autocomplete": "email", "inputmode": "email"})
    phone = TelField(_l("Phone"), validators=[Optional(), Length(max=32)],
                     description=_l("With the country code, like +7 916 123-45-67."),
                     render_kw={"autocomplete": "tel"})
    birthday = DateField(_l("Birthday"), validators=[Optional()],
                         description=_l("For your birthday bonus, where the club gives one."),
                         render_kw={"autocomplete": "bday"})
    referral_code = StringField(_l("Referral code"), validators=[Optional(), Length(max=32)],
                                description=_l("The code of the friend who invited you."))
    consent = BooleanField(_l("I agree to the club's terms"),
                           validators=[DataRequired(message=_l("Agree to the terms to join."))])

    def validate(self, extra_validators=None) -> bool:  # type: ignore[no-untyped-def,override]
        valid = super().validate(extra_validators)
        if not self.email.data and not self.phone.data:
            # The core's rule too (enrol), asked here so every problem shows at once.
            self.email.errors = [*self.email.errors, MESSAGES["email_or_phone_required"]]
            return False
        return valid



class SignInForm(PageForm):
    email = EmailField(_l("Email"), validators=[DataRequired(), Length(max=320)],
                       description=_l("We send a sign-in link to it."),
                       render_kw={"autocomplete": "email", "inputmode": "email"})
