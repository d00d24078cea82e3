"""Sending a member the link to their card, when someone joins again with
an email or phone the club already has: the link goes to that address,
never to the page, and at most a few times an hour per card, so a stranger
cannot flood someone's inbox or phone through the join form."""

from __future__ import annotations

from datetime import timedelta

from flask_babel import gettext as _
from sqlalchemy.orm import Session

from wallet.loyalty.models import Membership
from wallet.loyalty.notifications import Channel, queue_email, queue_sms, recent_notifications

MAX_PER_HOUR = 3


def send_card_link(session: Session, member: Membership, *, card_url: str, channel: Channel,
                   to: str) -> bool:
    """Queues the card's link to ``to`` (the address the club knows the
    member by) in the caller's transaction; False when this card already
    got MAX_PER_HOUR links this hour. Pages answer the same either way."""
    if recent_notifications(session, member.id, within=timedelta(hours=1)) >= MAX_PER_HOUR:
        return False
    club = member.club
    if channel == Channel.EMAIL:
        queue_email(session, to=to, subject=_("Your %(club)s card", club=club.name),
                    body=_("Someone tried to join %(club)s with this email address. You are already a member: "
                           "here is your card.\n\n%(link)s\n\nIf it was not you, nothing has changed.",
                           club=club.name, link=card_url),
                    brand_id=club.brand_id, membership_id=member.id)
    else:
        queue_sms(session, to=to, body=_("You are already a member of %(club)s. Your card: %(link)s",
                                         club=club.name, link=card_url),
                  brand_id=club.brand_id, membership_id=member.id)
    return True
