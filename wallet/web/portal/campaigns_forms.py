"""The forms of a club's segments, campaigns and automatic messages. The
rules themselves are the core's (wallet.loyalty.segments): a form only
turns its fields into the rule set's JSON, and shows what the core refuses."""

from __future__ import annotations

from datetime import timezone
from decimal import Decimal
from typing import Any

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from wtforms import BooleanField, DateTimeLocalField, DecimalField, FormField, IntegerField, SelectField, StringField
from wtforms import TextAreaField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, Length, NumberRange, Optional

from wallet.loyalty.campaign_models import AutoKind, CampaignStatus
from wallet.loyalty.messages import MAX_MESSAGE
from wallet.loyalty.money import to_minor
from wallet.loyalty.program import Program
from wallet.loyalty.segments import MAX_DAYS, NPS_GROUPS
from wallet.web.forms import PageForm
from wallet.web.portal.webhooks import CheckboxesField

_DAYS = NumberRange(1, MAX_DAYS, message=_l("Enter a number of days from 1 to 3650."))
_POINTS = NumberRange(0, 10**9, message=_l("Enter a number of points, 0 or more."))
_NUMERIC = {"inputmode": "numeric", "autocomplete": "off"}

WALLET_NAMES = {"apple": _l("Apple Wallet"), "google": _l("Google Wallet"), "android": _l("Android wallet app"),
                "none": _l("In no wallet")}
STATUS_NAMES = {CampaignStatus.SCHEDULED.value: _l("scheduled"), CampaignStatus.SENDING.value: _l("sending"),
                CampaignStatus.SENT.value: _l("sent"), CampaignStatus.CANCELLED.value: _l("cancelled")}
NPS_NAMES = {"promoter": _l("Promoters (9-10)"), "passive": _l("Passives (7-8)"), "detractor": _l("Detractors (0-6)")}


def _days(label: Any, description: Any = None) -> IntegerField:
    return IntegerField(label, validators=[Optional(), _DAYS], description=description, render_kw=_NUMERIC)


class SegmentForm(PageForm):
    name = StringField(_l("Segment name"), validators=[DataRequired(), Length(max=100)])
    tiers = CheckboxesField(_l("Tiers"), choices=[], description=_l("None chosen: every tier."))
    purchased_within_days = _days(_l("Bought within the last (days)"))
    no_purchase_days = _days(_l("No purchase for at least (days)"))
    min_spend = DecimalField(_l("Total spend from"), places=None, validators=[Optional()],
                             render_kw={"inputmode": "decimal", "autocomplete": "off"})
    max_spend = DecimalField(_l("Total spend up to"), places=None, validators=[Optional()],
                             render_kw={"inputmode": "decimal", "autocomplete": "off"})
    min_balance = IntegerField(_l("Points from"), validators=[Optional(), _POINTS], render_kw=_NUMERIC)
    max_balance = IntegerField(_l("Points up to"), validators=[Optional(), _POINTS], render_kw=_NUMERIC)
    expiring_within_days = _days(_l("Points expiring within (days)"))
    wallets = CheckboxesField(_l("Wallet"), choices=[SelectChoice(k, v) for k, v in WALLET_NAMES.items()],
                              description=_l("None chosen: any wallet, or none."))
    joined_within_days = _days(_l("Joined within the last (days)"))
    nps = CheckboxesField(_l("Survey answer"), choices=[SelectChoice(k, NPS_NAMES[k]) for k in NPS_GROUPS],
                          description=_l("None chosen: whatever they answered, or nothing."))

    def setup(self, program: Program) -> SegmentForm:
        levels = [level.name for level in program.tiers.levels] if program.tiers else []
        self.tiers.choices = [SelectChoice(name, name) for name in levels]
        return self

    def rules(self, currency: str) -> dict[str, Any]:
        """The segment's rules as the core reads them (wallet.loyalty.segments)."""
        out: dict[str, Any] = {}
        for name in ("purchased_within_days", "no_purchase_days", "min_balance", "max_balance",
                     "expiring_within_days", "joined_within_days"):
            if self[name].data is not None:
                out[name] = self[name].data
        for name in ("min_spend", "max_spend"):
            value = self[name].data
            if value is not None:
                try:
                    out[name] = to_minor(Decimal(value), currency)
                except (ValueError, ArithmeticError):
                    out[name] = -1  # the core refuses it, under this field
        for name in ("tiers", "wallets", "nps"):
            if self[name].data:
                out[name] = list(self[name].data)
        return out

    def fill(self, rules: dict[str, Any], currency: str) -> None:
        from wallet.loyalty.money import to_major

        for name, value in rules.items():
            if name in ("min_spend", "max_spend"):
                value = to_major(value, currency)
            if name in self._fields:
                self[name].data = value


class CampaignForm(PageForm):
    text = TextAreaField(_l("Message"), validators=[DataRequired(), Length(max=MAX_MESSAGE)],
                         description=_l("Up to 500 characters. It replaces the card's previous news."),
                         render_kw={"rows": 3})
    segment = SelectField(_l("Send to"), choices=[], default="")
    send_at = DateTimeLocalField(_l("Send at (UTC)"), validators=[Optional()],
                                 description=_l("Empty: send now."))

    def setup(self, segments: list[tuple[int, str]]) -> CampaignForm:
        self.segment.choices = [SelectChoice("", _("Every member")),
                                *(SelectChoice(str(i), name) for i, name in segments)]
        return self

    def send_time(self) -> Any:
        return self.send_at.data.replace(tzinfo=timezone.utc) if self.send_at.data else None


AUTO_NAMES = {
    AutoKind.EXPIRING: (_l("Points expiring"), _l("When points enter the club's warning window before they expire.")),
    AutoKind.TIER_REACHED: (_l("Tier reached"), _l("When a member moves up to a tier.")),
    AutoKind.BIRTHDAY: (_l("Birthday bonus"), _l("When the birthday bonus is paid.")),
    AutoKind.WINBACK: (_l("Win-back"), _l("After a number of days without a purchase.")),
}


class AutoMessageForm(PageForm):
    class Meta:
        csrf = False  # a section of AutoMessagesForm, which carries the token

    enabled = BooleanField(_l("On"))
    text = TextAreaField(_l("Message"), validators=[Length(max=MAX_MESSAGE)], render_kw={"rows": 2})
    days = IntegerField(_l("Days without a purchase"), validators=[Optional(), _DAYS], render_kw=_NUMERIC)


class AutoMessagesForm(PageForm):
    expiring = FormField(AutoMessageForm, label=AUTO_NAMES[AutoKind.EXPIRING][0])
    tier_reached = FormField(AutoMessageForm, label=AUTO_NAMES[AutoKind.TIER_REACHED][0])
    birthday = FormField(AutoMessageForm, label=AUTO_NAMES[AutoKind.BIRTHDAY][0])
    winback = FormField(AutoMessageForm, label=AUTO_NAMES[AutoKind.WINBACK][0])
