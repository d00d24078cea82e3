"""The forms of the brand portal's own pages."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from wtforms import EmailField, PasswordField, SelectField, StringField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, Length

from wallet.loyalty.brands import MAX_PASSWORD, MIN_PASSWORD
from wallet.loyalty.models import StaffRole
from wallet.web.forms import PageForm
from wallet.web.wording import ROLE_NAMES


def new_password(label: str) -> PasswordField:
    """A field for a password being chosen, with the core's length rules."""
    return PasswordField(label,
                         validators=[DataRequired(), Length(min=MIN_PASSWORD, message=_l("Use at least 8 characters.")),
                                     Length(max=MAX_PASSWORD, message=_l("Use at most 1024 characters."))],
                         description=_l("At least 8 characters."),
                         render_kw={"autocomplete": "new-password"})


def role_field(label: str) -> SelectField:
    return SelectField(label, choices=[SelectChoice(role.value, ROLE_NAMES[role]) for role in StaffRole],
                       validators=[DataRequired()])


class SignupForm(PageForm):
    brand_name = StringField(_l("Brand name"), validators=[DataRequired(), Length(max=200)],
                             render_kw={"autocomplete": "organization"})
    # The address itself is checked by the core's rule (normalize_email).
    email = EmailField(_l("Email"), validators=[DataRequired(), Length(max=320)],
                       render_kw={"autocomplete": "email"})
    password = new_password(_l("Password"))


class LoginForm(PageForm):
    email = EmailField(_l("Email"), validators=[DataRequired(), Length(max=320)],
                       render_kw={"autocomplete": "username"})
    password = PasswordField(_l("Password"), validators=[DataRequired(), Length(max=MAX_PASSWORD)],
                             render_kw={"autocomplete": "current-password"})



class ForgotPasswordForm(PageForm):
    email = EmailField(_l("Email"), validators=[DataRequired(), Length(max=320)],
                       render_kw={"autocomplete": "username"})


class NewPasswordForm(PageForm):
    password = new_password(_l("New password"))


class InviteForm(PageForm):
    email = EmailField(_l("Email"), validators=[DataRequired(), Length(max=320)],
                       render_kw={"autocomplete": "off"})
    role = role_field(_l("Role"))


class RoleForm(PageForm):
    role = role_field(_l("Role"))


class AcceptInviteForm(PageForm):
    name = StringField(_l("Your name"), validators=[DataRequired(), Length(max=200)],
                       render_kw={"autocomplete": "name"})
    password = new_password(_l("Password"))
