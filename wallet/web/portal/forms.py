"""The forms of the brand portal's own pages."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from wtforms import EmailField, PasswordField, StringField
from wtforms.validators import DataRequired, Length

from wallet.loyalty.brands import MAX_PASSWORD, MIN_PASSWORD
from wallet.web.forms import PageForm


class SignupForm(PageForm):
    brand_name = StringField(_l("Brand name"), validators=[DataRequired(), Length(max=200)],
                             render_kw={"autocomplete": "organization"})
    # The address itself is checked by the core's rule (normalize_email).
    email = EmailField(_l("Email"), validators=[DataRequired(), Length(max=320)],
                       render_kw={"autocomplete": "email"})
    password = PasswordField(_l("Password"),
                             validators=[DataRequired(), Length(min=MIN_PASSWORD, message=_l("Use at least 8 characters.")),
                                         Length(max=MAX_PASSWORD, message=_l("Use at most 1024 characters."))],
                             description=_l("At least 8 characters."),
                             render_kw={"autocomplete": "new-password"})


class LoginForm(PageForm):
    email = EmailField(_l("Email"), validators=[DataRequired(), Length(max=320)],
                       render_kw={"autocomplete": "username"})
    password = PasswordField(_l("Password"), validators=[DataRequired(), Length(max=MAX_PASSWORD)],
                             render_kw={"autocomplete": "current-password"})

