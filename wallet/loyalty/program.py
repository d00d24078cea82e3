"""A club's program rules: the one schema of them, and their typed reading.

``ProgramSchema`` is the rule set (DESIGN.md's program shape): six optional
sections, every key with its bounds, default, description and an example.
The core validates with it (``validate_program``), the API validates and
documents request bodies with it, and the portal's forms are built on its
fields. ``validate_program`` turns what a brand sends into the normalized
dict that is stored (every key of each section given, defaults filled in)
or raises InvalidFields naming each offending field
("program.points.earn_points: must be between 0 and 1000000000");
``Program.of(club)`` gives the ledger and the cards typed accessors.
Percentages are stored as decimal strings ("2.5") and used as Decimal;
money and points are ints; never floats.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from decimal import ROUND_DOWN, Decimal
from typing import Any

import marshmallow as ma

from wallet.loyalty.fields import (NOT_TEXT, Flag, Integer, InvalidFields, Percent, Problem, RuleSet, Section, Text,
                                   at_least_one, at_most, between, one_of)
from wallet.lru import LRU

MAX_POINTS = 1_000_000_000  # any single points figure in the rules
MAX_MONEY = 100_000_000_000_000  # minor units; 1e12 major units is absurd already
MAX_DAYS = 36_500
# Money one point may be worth: points (<= MAX_POINTS) times this stays
# within a 64-bit column.
MAX_POINT_VALUE = 1_000_000_000
# Points one booking may credit; keeps every sum far inside 64 bits.
MAX_EARN = 1_000_000_000_000
MAX_LEVELS = 20
ROUNDINGS = ("down", "half_up")


def _doc(description: str, example: Any = None) -> dict[str, Any]:
    return {"description": description, **({} if example is None else {"example": example})}


class _ProgramPart(RuleSet):
    """A program section: what it refuses is an invalid program."""

    error_code = "invalid_program"


class DiscountRulesSchema(_ProgramPart):
    """A fixed discount on every purchase (applied by the till)."""

    percent = Percent(required=True, metadata=_doc("percent off every purchase", "5"))


class PointsRulesSchema(_ProgramPart):
    """Points earned on purchases and spent at the till."""

    earn_points = Integer(load_default=1, validate=between(0, MAX_POINTS), metadata=_doc(
        "points earned for every per_amount spent", 5))
    per_amount = Integer(load_default=100, validate=between(1, MAX_MONEY), metadata=_doc(
        "money (minor units) that earns earn_points: 100 is 1.00 of a two-decimal currency", 10000))
    rounding = ma.fields.String(load_default="down", validate=one_of(ROUNDINGS),
                                error_messages={"invalid": NOT_TEXT},
                                metadata=_doc("how a purchase between two steps of per_amount is "
                                              "rounded: down, or half_up", "down"))
    min_purchase = Integer(load_default=0, validate=between(0, MAX_MONEY), metadata=_doc(
        "smallest purchase (minor units) that earns points", 0))
    redeem_value = Integer(load_default=100, validate=between(0, MAX_POINT_VALUE), metadata=_doc(
        "money (minor units) one point is worth when redeemed: the discount the till gives", 100))
    expiry_days = Integer(load_default=None, allow_none=True, validate=between(1, MAX_DAYS), metadata=_doc(
        "days after which earned points expire, oldest first; null: never", 365))
    pending_days = Integer(load_default=0, validate=between(0, 3650), metadata=_doc(
        "days earned points stay pending (not spendable) before they count, e.g. a return window", 14))
    warning_days = Integer(load_default=14, validate=between(0, 3650), metadata=_doc(
        "days before expiry that the card warns of expiring points; 0: no warning", 14))
    allow_negative = Flag(load_default=False, metadata=_doc(
        "whether a refund may take the balance (and cashback) below 0 when what the purchase earned "
        "was already spent; otherwise what cannot be taken back is forgiven", False))

    @ma.validates_schema
    def _spendable_before_expiry(self, data: dict[str, Any], **_: Any) -> None:
        if data["expiry_days"] is not None and data["expiry_days"] <= data["pending_days"]:
            raise ma.ValidationError(Problem("expires_before_spendable", "must be longer than points.pending_days "
                                             "(points would expire before they can be spent)"), "expiry_days")


class TierLevelSchema(_ProgramPart):
    name = Text(max_len=64, allow_empty=False, required=True, metadata=_doc("the tier's name on the card",
                                                                            "Gold"))
    min_spend = Integer(load_default=0, validate=between(0, MAX_MONEY), metadata=_doc(
        "spend (minor units) over the window that reaches this level; the first level starts at 0",
        3000000))
    earn_points = Integer(load_default=None, allow_none=True, validate=between(0, MAX_POINTS), metadata=_doc(
        "this level's own points per points.per_amount; null: the club's earn_points", 7))
    discount_percent = Percent(load_default=None, allow_none=True, metadata=_doc(
        "this level's own discount; null: the club's discount, if any", "3"))


class TierRulesSchema(_ProgramPart):
    """Levels reached by spend over a rolling window."""

    window_days = Integer(load_default=365, validate=between(1, MAX_DAYS), metadata=_doc(
        "days of spend that decide the level", 365))
    review_days = Integer(load_default=30, validate=between(1, MAX_DAYS), metadata=_doc(
        "days between tier reviews, which may move a member down (moving up happens at the purchase)", 30))
    levels = ma.fields.List(
        Section(TierLevelSchema), required=True,
        validate=[at_least_one("no_levels", "must be a non-empty list"),
                  at_most(MAX_LEVELS, "too_many_levels", f"may hold at most {MAX_LEVELS} levels")],
        error_messages={"invalid": Problem("no_levels", "must be a non-empty list"),
                        "required": Problem("required", "is required")},
        metadata=_doc("the levels, lowest first, in strictly ascending min_spend"))

    @ma.validates_schema
    def _ascending_unique(self, data: dict[str, Any], **_: Any) -> None:
        errors: dict[int, dict[str, list[Problem]]] = {}
        names: set[str] = set()
        for i, level in enumerate(data["levels"]):
            if level["name"] in names:
                errors.setdefault(i, {})["name"] = [
                    Problem("duplicate_level", f"duplicate tier name {level['name']!r}")]
            names.add(level["name"])
            if i == 0 and level["min_spend"] != 0:
                errors.setdefault(i, {})["min_spend"] = [
                    Problem("first_level_not_zero", "the first level must start at 0")]
            if i > 0 and level["min_spend"] <= data["levels"][i - 1]["min_spend"]:
                errors.setdefault(i, {})["min_spend"] = [
                    Problem("levels_not_ascending", "levels must be in strictly ascending min_spend")]
        if errors:
            raise ma.ValidationError({"levels": errors})


class CashbackRulesSchema(_ProgramPart):
    """A share of every purchase credited as money to the card."""

    percent = Percent(required=True, metadata=_doc("percent of every purchase credited to cash_balance", "3"))


class StampRulesSchema(_ProgramPart):
    """A stamp per purchase; enough stamps give a reward."""

    required = Integer(required=True, validate=between(1, 1000), metadata=_doc(
        "stamps (purchases) that give the reward", 10))
    reward = Text(max_len=200, allow_empty=False, required=True, metadata=_doc(
        "what the stamps give, as the card shows it", "Free coffee"))


class BonusRulesSchema(_ProgramPart):
    """One-off points."""

    welcome_points = Integer(load_default=0, validate=between(0, MAX_POINTS), metadata=_doc(
        "points on joining", 100))
    referral_points = Integer(load_default=0, validate=between(0, MAX_POINTS), metadata=_doc(
        "points to a new member who joined with a referral code, and as many to the member who "
        "referred them, at the new member's first purchase", 200))
    birthday_points = Integer(load_default=0, validate=between(0, MAX_POINTS), metadata=_doc(
        "points on the member's birthday each year", 300))


class ProgramSchema(_ProgramPart):
    """A club's program rules: any of the sections, alone or combined; an
    absent (or null) section is not run."""

    discount = Section(DiscountRulesSchema, allow_none=True)
    points = Section(PointsRulesSchema, allow_none=True)
    tiers = Section(TierRulesSchema, allow_none=True)
    cashback = Section(CashbackRulesSchema, allow_none=True)
    stamps = Section(StampRulesSchema, allow_none=True)
    bonuses = Section(BonusRulesSchema, allow_none=True)

    @ma.post_load
    def _present_sections(self, data: dict[str, Any], **_: Any) -> dict[str, Any]:
        return {name: section for name, section in data.items() if section is not None}


SECTIONS = tuple(ProgramSchema().fields)
_PROGRAM = ProgramSchema()


def validate_program(data: Any) -> dict[str, Any]:
    """The normalized program (every key of each section present, defaults
    filled in), or InvalidFields (code invalid_program) naming each
    offending field."""
    if data is None:
        return {}
    try:
        return _PROGRAM.load(data)
    except InvalidFields as exc:
        raise exc.within("program") from None


# --- typed reading -----------------------------------------------------------

# Parsed rules by club id, with the JSON they were parsed from.
_cache: LRU[tuple[dict[str, Any], Program]] = LRU(4096)


@dataclass(frozen=True)
class Tier:
    name: str
    min_spend: int
    earn_points: int | None
    discount_percent: Decimal | None


@dataclass(frozen=True)
class PointsRules:
    earn_points: int
    per_amount: int
    rounding: str
    min_purchase: int
    redeem_value: int
    expiry_days: int | None
    pending_days: int
    warning_days: int
    allow_negative: bool


@dataclass(frozen=True)
class TierRules:
    window_days: int
    review_days: int
    levels: tuple[Tier, ...]

    def for_spend(self, spend: int) -> Tier:
        chosen = self.levels[0]
        for level in self.levels:
            if spend >= level.min_spend:
                chosen = level
        return chosen

    def rank(self, name: str | None) -> int:
        """Position of a tier; -1 for none or a tier that no longer exists."""
        for i, level in enumerate(self.levels):
            if level.name == name:
                return i
        return -1

    def get(self, name: str | None) -> Tier | None:
        i = self.rank(name)
        return self.levels[i] if i >= 0 else None


@dataclass(frozen=True)
class Program:
    discount_percent: Decimal | None = None
    points: PointsRules | None = None
    tiers: TierRules | None = None
    cashback_percent: Decimal | None = None
    stamps_required: int | None = None
    stamp_reward: str | None = None
    welcome_points: int = 0
    referral_points: int = 0
    birthday_points: int = 0
    raw: dict[str, Any] = field(default_factory=dict, compare=False)

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> Program:
        norm = validate_program(data or {})
        points = norm.get("points")
        tiers = norm.get("tiers")
        stamps = norm.get("stamps") or {}
        bonuses = norm.get("bonuses") or {}
        return cls(
            discount_percent=Decimal(norm["discount"]["percent"]) if "discount" in norm else None,
            points=PointsRules(**points) if points else None,
            tiers=TierRules(
                window_days=tiers["window_days"],
                review_days=tiers["review_days"],
                levels=tuple(
                    Tier(
                        name=lv["name"],
                        min_spend=lv["min_spend"],
                        earn_points=lv["earn_points"],
                        discount_percent=Decimal(lv["discount_percent"])
                        if lv["discount_percent"] is not None else None,
                    )
                    for lv in tiers["levels"]
                ),
            ) if tiers else None,
            cashback_percent=Decimal(norm["cashback"]["percent"]) if "cashback" in norm else None,
            stamps_required=stamps.get("required"),
            stamp_reward=stamps.get("reward"),
            welcome_points=bonuses.get("welcome_points", 0),
            referral_points=bonuses.get("referral_points", 0),
            birthday_points=bonuses.get("birthday_points", 0),
            raw=norm,
        )

    @classmethod
    def of(cls, club: Any) -> Program:
        """The club's rules as they are now. Every booking and every card
        reads them and they rarely change, so the parsed rules are kept per
        club and reused while the club's JSON still equals what they were
        parsed from (comparing two dicts costs a twentieth of serializing one)."""
        data = club.program or {}
        found = _cache.get(club.id)
        if found is not None and found[0] == data:
            return found[1]
        program = cls.from_dict(data)
        _cache.put(club.id, (copy.deepcopy(data), program))
        return program

    def earn_rate(self, tier: str | None) -> int:
        """Points per ``per_amount`` for a member in ``tier``: the tier's own
        rate if it has one, else the club's."""
        if self.points is None:
            return 0
        level = self.tiers.get(tier) if self.tiers else None
        if level is not None and level.earn_points is not None:
            return level.earn_points
        return self.points.earn_points

    def points_for(self, amount: int, tier: str | None) -> int:
        """Points a purchase of ``amount`` earns, by the rounding rule."""
        rules = self.points
        if rules is None or amount < rules.min_purchase or amount <= 0:
            return 0
        numerator = self.earn_rate(tier) * amount
        if rules.rounding == "half_up":
            return (2 * numerator + rules.per_amount) // (2 * rules.per_amount)
        return numerator // rules.per_amount

    def discount_for(self, tier: str | None) -> Decimal | None:
        """The discount a member in ``tier`` gets: the tier's own if it has
        one, else the club's; None for none (0 is none)."""
        level = self.tiers.get(tier) if self.tiers and tier else None
        return (level.discount_percent if level else None) or self.discount_percent or None

    def cashback_for(self, amount: int) -> int:
        if not self.cashback_percent or amount <= 0:
            return 0
        value = Decimal(amount) * self.cashback_percent / Decimal(100)
        return int(value.to_integral_value(rounding=ROUND_DOWN))

    def initial_tier(self) -> str | None:
        return self.tiers.levels[0].name if self.tiers else None
