"""A club's program in plain words for its public page.

Reads the same rules the ledger applies (``Program.of``), so the page can
never promise what the till does not book.
"""

from __future__ import annotations

from flask_babel import gettext as _
from flask_babel import ngettext

from wallet.loyalty.models import Club
from wallet.loyalty.program import Program
from wallet.web.filters import money, percent


def benefits(club: Club) -> list[str]:
    program = Program.of(club)
    out: list[str] = []
    if program.points:
        rules = program.points
        out.append(ngettext("%(num)s point for every %(amount)s spent", "%(num)s points for every %(amount)s spent",
                            rules.earn_points, amount=money(rules.per_amount, club.currency)))
        if rules.min_purchase > 0:
            out.append(_("Points on purchases from %(amount)s", amount=money(rules.min_purchase, club.currency)))
        if rules.redeem_value:
            out.append(_("Each point is worth %(amount)s off", amount=money(rules.redeem_value, club.currency)))
        if rules.expiry_days:
            out.append(ngettext("Points last %(num)s day", "Points last %(num)s days", rules.expiry_days))
    if program.discount_percent:
        out.append(_("%(percent)s off every purchase", percent=percent(program.discount_percent)))
    if program.cashback_percent:
        out.append(_("%(percent)s cashback on every purchase", percent=percent(program.cashback_percent)))
    if program.stamps_required:
        out.append(ngettext("A reward after %(num)s purchase", "A reward after %(num)s purchases",
                            program.stamps_required)
                   + (f": {program.stamp_reward}" if program.stamp_reward else ""))
    if program.tiers and len(program.tiers.levels) > 1:
        out.append(_("Levels: %(names)s", names=" · ".join(level.name for level in program.tiers.levels)))
    if program.welcome_points:
        out.append(ngettext("%(num)s point welcome bonus", "%(num)s points welcome bonus", program.welcome_points))
    if program.referral_points:
        out.append(ngettext("%(num)s point for each friend you bring", "%(num)s points for each friend you bring",
                            program.referral_points))
    if program.birthday_points:
        out.append(ngettext("%(num)s point on your birthday", "%(num)s points on your birthday",
                            program.birthday_points))
    return out
