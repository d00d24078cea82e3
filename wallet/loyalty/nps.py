"""The members' survey: "How likely are you to recommend us?" from 0 to 10,
with an optional comment, once per member per survey period.

A period is a calendar quarter (UTC), written ``2026-Q4``. Promoters answer
9-10, passives 7-8, detractors 0-6; NPS = % promoters - % detractors, a
whole number from -100 to 100 (see loyalty.numbers for the figures).
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from wallet.db import utcnow
from wallet.loyalty.errors import RuleViolation
from wallet.loyalty.models import Membership
from wallet.loyalty.numbers_models import NpsAnswer
from wallet.loyalty.webhooks import emit_event

COMMENT_MAX = 1000


class NpsCategory(StrEnum):
    PROMOTER = "promoter"
    PASSIVE = "passive"
    DETRACTOR = "detractor"


def survey_url(public_base_url: str, membership: Membership) -> str:
    """Where the member answers: the card page's private address plus
    /survey (served by wallet.web.public.survey), for the back of the Apple
    pass and the links of the Google card."""
    return f"{public_base_url.rstrip('/')}/cards/{membership.download_token}/survey"


def category(score: int) -> NpsCategory:
    if score >= 9:
        return NpsCategory.PROMOTER
    if score >= 7:
        return NpsCategory.PASSIVE
    return NpsCategory.DETRACTOR


def survey_period(at: datetime) -> str:
    """The survey period ``at`` falls in: its calendar quarter."""
    return f"{at.year}-Q{(at.month - 1) // 3 + 1}"


def nps_score(promoters: int, detractors: int, answers: int) -> int | None:
    """% promoters - % detractors, rounded half away from zero; None
    without answers. Integer arithmetic: (200 * diff + answers) // (2 * answers)
    rounds half up for a positive difference."""
    if answers <= 0:
        return None
    diff = promoters - detractors
    sign = -1 if diff < 0 else 1
    return sign * ((200 * abs(diff) + answers) // (2 * answers))


def current_answer(session: Session, member: Membership, *, now: datetime | None = None) -> NpsAnswer | None:
    """The member's answer in the survey period of ``now``, if any."""
    period = survey_period(now or utcnow())
    return session.scalar(select(NpsAnswer).where(NpsAnswer.membership_id == member.id,
                                                  NpsAnswer.period == period))


def answer_survey(session: Session, member: Membership, *, score: Any, comment: Any = "",
                  now: datetime | None = None) -> NpsAnswer:
    """Record the member's answer for the current period and tell the
    brand's webhooks (survey.answered). A second answer in the same period
    is refused (``already_answered``)."""
    if isinstance(score, bool) or not isinstance(score, int) or not 0 <= score <= 10:
        raise RuleViolation("score must be a whole number from 0 to 10", code="invalid_score")
    if comment is None:
        comment = ""
    if not isinstance(comment, str):
        raise RuleViolation("comment must be text", code="invalid_comment")
    comment = comment.strip()
    if len(comment) > COMMENT_MAX:
        raise RuleViolation(f"comment is longer than {COMMENT_MAX} characters", code="invalid_comment")
    if member.status != "active":
        raise RuleViolation("this card has ended", code="member_ended")
    now = now or utcnow()
    answer = NpsAnswer(club_id=member.club_id, membership_id=member.id, period=survey_period(now), score=score,
                       comment=comment, tier=member.tier, created_at=now)
    try:
        with session.begin_nested():
            session.add(answer)
            session.flush()
    except IntegrityError:
        raise RuleViolation("this card has answered the survey this quarter already",
                            code="already_answered") from None
    emit_event(session, brand_id=member.club.brand_id, event_type="survey.answered", data=answer_to_dict(answer))
    return answer


def answer_to_dict(answer: NpsAnswer) -> dict[str, Any]:
    """The answer as webhooks and the API carry it."""
    return {
        "member_id": answer.membership_id,
        "club_id": answer.club_id,
        "period": answer.period,
        "score": answer.score,
        "category": category(answer.score).value,
        "comment": answer.comment,
        "tier": answer.tier,
        "answered_at": answer.created_at.isoformat(),
    }
