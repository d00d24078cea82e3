"""The brand's API keys, the owner's: create one (its key is shown on the
answer to that request only; the service keeps just its SHA-256), see when
each was last used, revoke one. The same core functions as the API's
/api/v1/api-keys."""

from __future__ import annotations

from flask import render_template
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import select
from sqlalchemy.orm import Session
from werkzeug.wrappers import Response
from wtforms import StringField
from wtforms.validators import DataRequired, Length

from wallet.extensions import get_read_session, get_session, transactional
from wallet.loyalty.brands import create_api_key, revoke_api_key
from wallet.loyalty.models import ApiKey, Brand
from wallet.web.forms import PageForm, refuse
from wallet.web.portal import bp
from wallet.web.portal.actions import act, submitted
from wallet.web.portal.auth import REFUSED
from wallet.web.security import current_staff


class KeyForm(PageForm):
    name = StringField(_l("Key name"), validators=[DataRequired(), Length(max=100)],
                       description=_l("Where the key is used, e.g. \"Till in the Arbat shop\"."),
                       render_kw={"autocomplete": "off"})


def _page(session: Session, form: KeyForm, *, created: tuple[ApiKey, str] | None = None,
          status: int = 200) -> tuple[str, int]:
    keys = session.scalars(
        select(ApiKey).where(ApiKey.brand_id == current_staff().brand_id)
        .order_by(ApiKey.revoked_at.is_not(None), ApiKey.id.desc())
    ).all()
    return render_template("portal/keys.html", form=form, keys=keys, created=created), status


@bp.get("/keys")
def keys() -> tuple[str, int]:
    return _page(get_read_session(), KeyForm(formdata=None))


@bp.post("/keys")
@transactional
def create_key() -> tuple[str, int]:
    form = KeyForm()
    session = get_session()
    created = submitted(
        form, lambda: create_api_key(session, session.get_one(Brand, current_staff().brand_id), form.name.data),
        lambda exc: refuse(form, exc, {}, default="name", wording={
            "invalid_name": _("Enter a name of at most 100 characters, without special characters.")}))
    if created is None:
        return _page(session, form, status=REFUSED)
    return _page(session, KeyForm(formdata=None), created=created, status=201)


@bp.post("/keys/<int:key_id>/revoke")
@transactional
def revoke_key(key_id: int) -> Response:
    brand_id = current_staff().brand_id
    return act(lambda session: revoke_api_key(session, session.get_one(Brand, brand_id), key_id),
               _("The key is revoked: requests with it are refused from now on."), "portal.keys",
               {"already_revoked": lambda: _("That key was already revoked.")})
