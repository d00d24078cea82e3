"""A club's segments, campaigns and automatic messages (managers and the
owner): every figure and every send through the core
(wallet.loyalty.segments, campaigns, automessages); the campaign form shows
what each wallet will do before anything is sent."""

from __future__ import annotations

from datetime import timedelta

from flask import abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import ngettext
from sqlalchemy import select
from sqlalchemy.orm import Session
from werkzeug.wrappers import Response

from wallet.db import utcnow
from wallet.extensions import get_read_session, get_session, transactional
from wallet.loyalty.automessages import auto_results, club_auto_messages, set_auto_message
from wallet.loyalty.campaign_models import AutoKind, Campaign, CampaignStatus, SavedSegment
from wallet.loyalty.campaigns import (
    cancel_campaign,
    club_campaign,
    club_segment,
    create_campaign,
    preview,
    results,
    results_of,
    save_segment,
)
from wallet.loyalty.errors import NotFound, RuleViolation
from wallet.loyalty.fields import InvalidFields
from wallet.loyalty.models import Club
from wallet.loyalty.program import Program
from wallet.loyalty.segments import Segment, count_segment
from wallet.web.forms import refuse
from wallet.web.portal import MANAGERS, bp, staff_roles
from wallet.web.portal.auth import REFUSED
from wallet.web.portal.campaigns_forms import (
    AUTO_NAMES,
    NPS_NAMES,
    STATUS_NAMES,
    WALLET_NAMES,
    AutoMessagesForm,
    CampaignForm,
    SegmentForm,
)
from wallet.web.portal.scope import brand_club_or_404
from wallet.web.security import current_staff

# The automatic messages page counts what went out over this many days.
RESULT_DAYS = 30
SEGMENT_FIELDS = {"tiers", "purchased_within_days", "no_purchase_days", "min_spend", "max_spend", "min_balance",
                  "max_balance", "expiring_within_days", "wallets", "joined_within_days", "nps"}


def _segments(session: Session, club: Club) -> list[SavedSegment]:
    return list(session.scalars(select(SavedSegment).where(SavedSegment.club_id == club.id)
                                .order_by(SavedSegment.name)))


def _segment_form(club: Club, **kwargs: object) -> SegmentForm:
    return SegmentForm(**kwargs).setup(Program.of(club))


@bp.get("/clubs/<int:club_id>/campaigns")
@staff_roles(*MANAGERS)
def campaigns(club_id: int) -> str:
    session = get_read_session()
    club = brand_club_or_404(session, club_id)
    rows = list(session.scalars(select(Campaign).where(Campaign.club_id == club.id)
                                .order_by(Campaign.created_at.desc(), Campaign.id.desc()).limit(50)))
    segments = [(saved, count_segment(session, club.id, Segment.load(saved.rules), utcnow()))
                for saved in _segments(session, club)]
    counts = results_of(session, [c.id for c in rows])
    return render_template("portal/campaigns.html", club=club, campaigns=[(c, counts[c.id]) for c in rows],
                           segments=segments, everyone=count_segment(session, club.id, Segment(), utcnow()),
                           statuses=STATUS_NAMES)


@bp.route("/clubs/<int:club_id>/segments/new", methods=["GET", "POST"])
@staff_roles(*MANAGERS)
@transactional
def new_segment(club_id: int) -> Response | str | tuple[str, int]:
    session = get_session()
    club = brand_club_or_404(session, club_id)
    form = _segment_form(club)
    if request.method == "GET":
        return render_template("portal/segment_form.html", club=club, form=form, wallets=WALLET_NAMES, nps=NPS_NAMES)
    if form.validate_on_submit():
        try:
            saved = save_segment(session, club, name=form.name.data, segment=Segment.load(form.rules(club.currency)))
        except InvalidFields as exc:
            for path, texts in exc.errors.items():
                name = path.split(".")[0].split("[")[0]
                target = form[name] if name in SEGMENT_FIELDS and name in form._fields else form.name
                target.errors = [*target.errors, *texts]
        except RuleViolation as exc:
            refuse(form, exc, {}, default="name", wording={
                "duplicate_name": _("The club has a segment of this name already."),
                "invalid_name": _("Enter a name of at most 100 characters, without special characters."),
            })
        else:
            flash(ngettext("Segment saved: %(num)s member in it now.", "Segment saved: %(num)s members in it now.",
                           count_segment(session, club.id, Segment.load(saved.rules), utcnow())), "success")
            return redirect(url_for("portal.campaigns", club_id=club.id))
    return render_template("portal/segment_form.html", club=club, form=form, wallets=WALLET_NAMES,
                           nps=NPS_NAMES), REFUSED


def _campaign_form(session: Session, club: Club, **kwargs: object) -> CampaignForm:
    return CampaignForm(**kwargs).setup([(s.id, s.name) for s in _segments(session, club)])


def _chosen(session: Session, club: Club, form: CampaignForm) -> tuple[Segment, SavedSegment | None]:
    if not form.segment.data:
        return Segment(), None
    try:
        saved = club_segment(session, club, int(form.segment.data))
    except (ValueError, NotFound):
        abort(404)
    return Segment.load(saved.rules), saved


@bp.route("/clubs/<int:club_id>/campaigns/new", methods=["GET", "POST"])
@staff_roles(*MANAGERS)
@transactional
def new_campaign(club_id: int) -> Response | str | tuple[str, int]:
    session = get_session()
    club = brand_club_or_404(session, club_id)
    form = _campaign_form(session, club, **({"formdata": None} if request.method == "GET" else {}))
    if request.method == "GET":
        chosen = request.args.get("segment", "")
        if chosen in {value for value, _label, *_rest in form.segment.iter_choices()}:
            form.segment.data = chosen
        return render_template("portal/campaign_form.html", club=club, form=form, preview=None)
    if not form.validate_on_submit():
        return render_template("portal/campaign_form.html", club=club, form=form, preview=None), REFUSED
    segment, saved = _chosen(session, club, form)
    seen = preview(session, club, segment, form.text.data)
    if request.form.get("action") != "send":
        return render_template("portal/campaign_form.html", club=club, form=form, preview=seen)
    try:
        campaign = create_campaign(session, club, text=form.text.data, segment=segment, send_at=form.send_time(),
                                   saved=saved, created_by=current_staff().email)
    except RuleViolation as exc:
        refuse(form, exc, {"invalid_send_at": "send_at", "unknown_tier": "segment"}, default="text", wording={
            "invalid_text": _("Write up to 500 characters, without special characters."),
            "invalid_send_at": _("Choose a time from now to a year ahead."),
            "unknown_tier": _("The segment names a tier the club no longer has."),
        })
        return render_template("portal/campaign_form.html", club=club, form=form, preview=seen), REFUSED
    flash(_("The campaign is scheduled.") if form.send_time() else _("The campaign is on its way."), "success")
    return redirect(url_for("portal.campaign", club_id=club.id, campaign_id=campaign.id))


def _campaign_or_404(session: Session, club_id: int, campaign_id: int) -> tuple[Club, Campaign]:
    """The brand's club and its campaign, or 404 (another brand's or club's too)."""
    club = brand_club_or_404(session, club_id)
    try:
        return club, club_campaign(session, club, campaign_id)
    except NotFound:
        abort(404)


@bp.get("/clubs/<int:club_id>/campaigns/<int:campaign_id>")
@staff_roles(*MANAGERS)
def campaign(club_id: int, campaign_id: int) -> str:
    session = get_read_session()
    club, found = _campaign_or_404(session, club_id, campaign_id)
    return render_template("portal/campaign.html", club=club, campaign=found, results=results(session, found.id),
                           rules=Segment.load(found.rules).to_json(), wallets=WALLET_NAMES, nps=NPS_NAMES,
                           statuses=STATUS_NAMES, scheduled=found.status == CampaignStatus.SCHEDULED)


@bp.post("/clubs/<int:club_id>/campaigns/<int:campaign_id>/cancel")
@staff_roles(*MANAGERS)
@transactional
def cancel(club_id: int, campaign_id: int) -> Response:
    session = get_session()
    club, found = _campaign_or_404(session, club_id, campaign_id)
    if cancel_campaign(session, found):
        flash(_("The campaign is cancelled: nothing was sent."), "success")
    else:
        flash(_("The campaign has started already and cannot be cancelled."), "error")
    return redirect(url_for("portal.campaign", club_id=club.id, campaign_id=found.id))


@bp.route("/clubs/<int:club_id>/auto-messages", methods=["GET", "POST"])
@staff_roles(*MANAGERS)
@transactional
def auto_messages(club_id: int) -> Response | str | tuple[str, int]:
    session = get_session()
    club = brand_club_or_404(session, club_id)
    current = club_auto_messages(session, club.id)
    if request.method == "GET":
        form = AutoMessagesForm(formdata=None, data={
            kind.value: {"enabled": row.enabled, "text": row.text, "days": row.days} for kind, row in current.items()})
        return render_template("portal/auto_messages.html", club=club, form=form, names=AUTO_NAMES,
                               sent=auto_results(session, club.id, utcnow() - timedelta(days=RESULT_DAYS)),
                               days=RESULT_DAYS)
    form = AutoMessagesForm()
    if form.validate_on_submit():
        refused = False
        for kind in AutoKind:
            section = form[kind.value]
            try:
                set_auto_message(session, club, kind, enabled=section.enabled.data, text=section.text.data or "",
                                 days=section.days.data if kind is AutoKind.WINBACK else None)
            except RuleViolation as exc:
                refused = True
                refuse(section.form, exc, {"invalid_days": "days"}, default="text", wording={
                    "invalid_text": _("Write the message (up to 500 characters) to switch it on."),
                })
        if not refused:
            flash(_("Automatic messages saved."), "success")
            return redirect(url_for("portal.auto_messages", club_id=club.id))
    return render_template("portal/auto_messages.html", club=club, form=form, names=AUTO_NAMES,
                           sent=auto_results(session, club.id, utcnow() - timedelta(days=RESULT_DAYS)),
                           days=RESULT_DAYS), REFUSED
