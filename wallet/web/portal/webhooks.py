"""The brand's webhook endpoints, the owner's: add one (its signing secret
is shown on that answer only), list them, remove one. The URL goes through
the core's target rules (public internet addresses only, checked with DNS),
and their refusals are shown on the URL field, as the API answers them 422."""

from __future__ import annotations

from flask import render_template
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy.orm import Session
from werkzeug.wrappers import Response
from wtforms import URLField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, Length

from wallet.extensions import get_read_session, get_session, transactional, webhook_targets
from wallet.loyalty.errors import RuleViolation
from wallet.loyalty.webhook_targets import MAX_URL, AddressKind, PrivateAddress
from wallet.loyalty.webhooks import (EVENT_TYPES, MAX_WEBHOOKS_PER_BRAND, Webhook, create_webhook, delete_webhook,
                                     list_webhooks)
from wallet.web.forms import CheckboxesField, PageForm, refuse
from wallet.web.portal import bp
from wallet.web.portal.actions import act, submitted
from wallet.web.portal.auth import REFUSED
from wallet.web.security import current_staff

EVENT_NAMES = {
    "member.enrolled": _l("A customer joins a club"),
    "transaction.created": _l("A purchase, redemption, refund or adjustment is booked"),
    "points.expiring": _l("A member is warned that points expire soon"),
    "card.installed": _l("A card is added to a phone's wallet"),
    "card.removed": _l("A card is removed from a phone's wallet"),
    "survey.answered": _l("A member answers the survey (how likely to recommend us)"),
}
ADDRESS_KINDS = {
    AddressKind.UNSPECIFIED: _l("an unspecified address"),
    AddressKind.LOOPBACK: _l("this machine (loopback)"),
    AddressKind.LINK_LOCAL: _l("a link-local address"),
    AddressKind.MULTICAST: _l("a multicast address"),
    AddressKind.SHARED: _l("a shared (carrier) network"),
    AddressKind.PRIVATE: _l("a private network"),
    AddressKind.RESERVED: _l("a reserved address"),
}


class WebhookForm(PageForm):
    url = URLField(_l("Endpoint URL"), validators=[DataRequired(), Length(max=MAX_URL)],
                   description=_l("A public https:// address of your server, like https://example.com/wallet-events."),
                   render_kw={"autocomplete": "off", "spellcheck": "false", "inputmode": "url"})
    events = CheckboxesField(_l("Events"), choices=[SelectChoice(event, event) for event in EVENT_TYPES],
                             description=_l("None chosen: every event."))


def _refusal(exc: RuleViolation) -> str:
    if isinstance(exc, PrivateAddress):
        return _("This address is in %(kind)s. Webhooks go only to public internet addresses.",
                 kind=ADDRESS_KINDS[exc.kind])
    if exc.code == "unresolvable_host":
        return _("This host name is not found in DNS. Check its spelling.")
    if exc.code == "too_many_webhooks":
        return _("A brand may have at most %(num)s endpoints. Remove one first.", num=MAX_WEBHOOKS_PER_BRAND)
    if exc.code == "invalid_events":
        return _("Choose events from the list.")
    return _("Enter an http:// or https:// address without a user name or password, like "
             "https://example.com/wallet-events.")


def _page(session: Session, form: WebhookForm, *, created: Webhook | None = None,
          status: int = 200) -> tuple[str, int]:
    hooks = list_webhooks(session, current_staff().brand_id, limit=MAX_WEBHOOKS_PER_BRAND)
    return render_template("portal/webhooks.html", form=form, hooks=hooks, created=created,
                           event_names=EVENT_NAMES), status


@bp.get("/webhooks")
def webhooks() -> tuple[str, int]:
    return _page(get_read_session(), WebhookForm(formdata=None))


@bp.post("/webhooks")
@transactional
def create_hook() -> tuple[str, int]:
    form = WebhookForm()
    session = get_session()
    hook = submitted(
        form, lambda: create_webhook(session, current_staff().brand_id, url=form.url.data,
                                     events=list(form.events.data or []), targets=webhook_targets()),
        lambda exc: refuse(form, exc, {"invalid_events": "events"}, default="url", wording={exc.code: _refusal(exc)}))
    if hook is None:
        return _page(session, form, status=REFUSED)
    return _page(session, WebhookForm(formdata=None), created=hook, status=201)


@bp.post("/webhooks/<int:webhook_id>/delete")
@transactional
def delete_hook(webhook_id: int) -> Response:
    brand_id = current_staff().brand_id
    return act(lambda session: delete_webhook(session, webhook_id, brand_id=brand_id),
               _("The endpoint is removed: nothing more is sent to it."), "portal.webhooks")
