"""What Google calls: the club images of a class, and the save/delete callback.

Image URLs carry the design version, so a new logo gets a new URL and
Google's caches never serve the old one; the bytes behind one URL never
change and may be cached for a long time.

POST /google/callback believes a message only once it is verified (see
wallet.google.callback) and names an object of ours; anything else gets 400
and changes nothing. A nonce seen before is answered 200 again without a
second record, since Google delivers some callbacks twice.
"""

from __future__ import annotations

import logging
import time
from functools import lru_cache

from flask import Blueprint, Flask, Response, abort, request
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from wallet.artwork import cover, poster_picture, square_logo, to_picture_png
from wallet.config import get_settings, made_on_first_use
from wallet.db import utcnow
from wallet.extensions import get_read_session, get_session, transactional
from wallet.google.callback import CallbackMessage, RootKeyFile, verify_callback
from wallet.google.errors import CallbackRefused, GoogleConfigError
from wallet.google.identity import get_identity
from wallet.google.models import GoogleObject, GoogleWalletEvent, WalletEventType
from wallet.google.objects import class_id, object_id
from wallet.loyalty.card_events import record_card_changes
from wallet.loyalty.models import Club, Membership
from wallet.loyalty.numbers_models import CardWallet
from wallet.loyalty.webhooks import emit_event

log = logging.getLogger(__name__)

# A callback is a few hundred bytes of JSON; anything far larger is not one.
MAX_CALLBACK_BYTES = 64 * 1024

bp = Blueprint("google", __name__, url_prefix="/google")

PROGRAM_LOGO_SIDE = 660  # Google's recommended programLogo size
# Google's recommended heroImage: 1032 x 336 pixels, 3:1 or wider (brand guidelines).
HERO_SIZE = (1032, 336)


@lru_cache(maxsize=256)
def _program_logo(club_id: int, design_version: int, logo: bytes | None, background: str) -> bytes:
    return square_logo(logo, background, PROGRAM_LOGO_SIDE)


@bp.get("/images/clubs/<int:club_id>/logo-<int:version>.png")
def program_logo(club_id: int, version: int) -> Response:
    club = get_read_session().get(Club, club_id)
    if club is None or club.design_version != version:
        abort(404)
    data = _program_logo(club.id, club.design_version, club.logo_png, club.background_color)
    response = Response(data, mimetype="image/png")
    response.headers["Cache-Control"] = "public, max-age=31536000, immutable"
    return response


@lru_cache(maxsize=64)
def _hero(club_id: int, design_version: int, artwork: bytes | None, logo: bytes | None, background: str) -> bytes:
    return to_picture_png(cover(poster_picture(artwork, logo, background, HERO_SIZE), HERO_SIZE))


@bp.get("/images/clubs/<int:club_id>/hero-<int:version>.png")
def hero_image(club_id: int, version: int) -> Response:
    """The poster card's artwork cut to Google's banner, once per design."""
    club = get_read_session().get(Club, club_id)
    if club is None or club.design_version != version or club.card_style != "poster":
        abort(404)
    data = _hero(club.id, club.design_version, club.artwork_png, club.logo_png, club.background_color)
    response = Response(data, mimetype="image/png")
    response.headers["Cache-Control"] = "public, max-age=31536000, immutable"
    return response


def _root_keys(app: Flask) -> RootKeyFile | None:
    path = get_settings(app).google_callback_root_keys_file
    if path is None:
        return None
    return made_on_first_use(app, "wallet.google.root_keys", lambda _settings: RootKeyFile(path))


def _refused(reason: str) -> Response:
    log.warning("Google callback refused: %s", reason)
    return Response(f"refused: {reason}\n", status=400, mimetype="text/plain")


def _membership_of(session: Session, message: CallbackMessage, issuer_id: str) -> Membership | None:
    """The membership the message names, if the object and class are ours."""
    prefix = f"{issuer_id}.member-"
    if not message.object_id.startswith(prefix):
        return None
    club_part, _, serial = message.object_id[len(prefix):].partition("-")
    if not club_part.isdigit() or not serial or len(club_part) > 18:
        return None
    membership = session.scalar(select(Membership).where(Membership.serial_number == serial,
                                                         Membership.club_id == int(club_part)))
    if membership is None or object_id(issuer_id, membership) != message.object_id:
        return None
    if class_id(issuer_id, membership.club_id) != message.class_id:
        return None
    return membership


@bp.post("/callback")
@transactional
def callback() -> Response:
    from flask import current_app

    app = current_app._get_current_object()
    keys = _root_keys(app)
    if keys is None:
        return _refused("GOOGLE_CALLBACK_ROOT_KEYS_FILE is not set, so no callback can be verified")
    body = request.stream.read(MAX_CALLBACK_BYTES + 1)
    if len(body) > MAX_CALLBACK_BYTES:
        return _refused("the body is too large")
    identity = get_identity(app)
    try:
        message = verify_callback(body, root_keys=keys.keys(), recipient_id=identity.issuer_id,
                                  now_ms=int(time.time() * 1000))
    except (CallbackRefused, GoogleConfigError) as exc:
        return _refused(str(exc))
    session = get_session()
    membership = _membership_of(session, message, identity.issuer_id)
    if membership is None:
        return _refused(f"{message.object_id} of {message.class_id} is not a card of ours")
    event_type = WalletEventType(message.event_type)
    try:
        with session.begin_nested():
            session.add(GoogleWalletEvent(nonce=message.nonce, event_type=event_type, membership_id=membership.id,
                                          club_id=membership.club_id))
            session.flush()
    except IntegrityError:
        return Response(status=200)  # this nonce was recorded already
    _record(session, membership, event_type, object_id(identity.issuer_id, membership))
    return Response(status=200)


def _record(session: Session, membership: Membership, event_type: WalletEventType, object_id_: str) -> None:
    """The card is now in a Google Wallet, or no longer; a change of that
    goes to the brand's webhooks."""
    now = utcnow()
    state = session.get(GoogleObject, membership.id, with_for_update=True)
    if state is None:
        # Saved from a full-form link: Google inserted the object itself.
        state = GoogleObject(membership_id=membership.id, club_id=membership.club_id, object_id=object_id_,
                             inserted_at=now, notify_count=0, installed=False)
        session.add(state)
    installed = event_type is WalletEventType.SAVE
    changed = state.installed != installed
    state.installed = installed
    if installed:
        state.installed_at = now
        state.inserted_at = state.inserted_at or now
    else:
        state.removed_at = now
    session.flush()
    if changed:
        record_card_changes(session, membership, before=[] if installed else [CardWallet.GOOGLE],
                            after=[CardWallet.GOOGLE] if installed else [], now=now)
        emit_event(session, brand_id=membership.club.brand_id,
                   event_type="card.installed" if installed else "card.removed",
                   data={"member_id": membership.id, "club_id": membership.club_id,
                         "serial_number": membership.serial_number, "platform": "google", "wallet": "google"})

