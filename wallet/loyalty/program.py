"""A club's program rules: validating ``club.program`` and reading it.

The schema is the shared contract in notes/program.md. ``validate_program``
turns what a brand sends into the normalized dict that is stored (unknown
keys, wrong types and absurd numbers rejected with a message naming the
field); ``Program.of(club)`` gives the ledger typed accessors with the
defaults filled in. Percentages are stored as decimal strings ("2.5") and
used as Decimal; money and points are ints; never floats.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from decimal import ROUND_DOWN, Decimal, InvalidOperation
from typing import Any

from wallet.loyalty.errors import RuleViolation

MAX_POINTS = 1_000_000_000  # any single points figure in the rules
MAX_MONEY = 100_000_000_000_000  # minor units; 1e12 major units is absurd already
MAX_DAYS = 36_500
# Money one point may be worth: points (<= MAX_POINTS) times this stays
# within a 64-bit column.
MAX_POINT_VALUE = 1_000_000_000
# Points one booking may credit; keeps every sum far inside 64 bits.
MAX_EARN = 1_000_000_000_000
ROUNDINGS = ("down", "half_up")

SECTIONS = ("discount", "points", "tiers", "cashback", "stamps", "bonuses")


def valid_text(value: Any, field_name: str, *, max_len: int, code: str, allow_empty: bool = False,
               multiline: bool = False) -> str:
    """A client's string, stripped, or RuleViolation: not a string, empty,
    too long, with a NUL or other control characters (PostgreSQL refuses
    NUL; a lone surrogate cannot even be encoded)."""
    if not isinstance(value, str):
        raise RuleViolation(f"{field_name} must be a string", code=code)
    value = value.strip()
    if not value and not allow_empty:
        raise RuleViolation(f"{field_name} must not be empty", code=code)
    if len(value) > max_len:
        raise RuleViolation(f"{field_name} may be at most {max_len} characters", code=code)
    allowed = "\n\t\r" if multiline else ""
    if any((ord(ch) < 32 and ch not in allowed) or ord(ch) == 127 for ch in value):
        raise RuleViolation(f"{field_name} must not contain control characters", code=code)
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise RuleViolation(f"{field_name} is not valid Unicode text", code=code) from None
    return value


def _bad(field_name: str, message: str) -> RuleViolation:
    return RuleViolation(f"program.{field_name}: {message}", code="invalid_program")


def _check_keys(data: Any, allowed: tuple[str, ...], where: str) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise _bad(where, "must be an object") if where else RuleViolation(
            "program must be an object", code="invalid_program"
        )
    unknown = sorted(set(data) - set(allowed))
    if unknown:
        prefix = f"{where}." if where else ""
        raise _bad(prefix + unknown[0], f"unknown field (allowed: {', '.join(allowed)})")
    return data


def _int(value: Any, where: str, *, low: int, high: int, nullable: bool = False) -> int | None:
    if value is None:
        if nullable:
            return None
        raise _bad(where, "is required")
    # bool is an int in Python; a JSON true is not a number of points.
    if isinstance(value, bool) or not isinstance(value, int):
        raise _bad(where, "must be an integer")
    if value < low or value > high:
        raise _bad(where, f"must be between {low} and {high}")
    return value


def parse_percent(value: Any, where: str = "percent") -> Decimal:
    """A percentage 0..100 with at most 2 decimal places, from a JSON number
    or a decimal string."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise _bad(where, "must be a number or a decimal string such as \"2.5\"")
    try:
        number = Decimal(str(value).strip())
    except InvalidOperation:
        raise _bad(where, f"{value!r} is not a decimal number") from None
    if not number.is_finite():
        raise _bad(where, "must be a finite number")
    if number < 0 or number > 100:
        raise _bad(where, "must be between 0 and 100")
    if number != number.quantize(Decimal("0.01")):
        raise _bad(where, "may have at most 2 decimal places")
    return number


def format_percent(number: Decimal) -> str:
    text = format(number.normalize(), "f")
    return text


def _percent(value: Any, where: str, *, nullable: bool = False) -> str | None:
    if value is None:
        if nullable:
            return None
        raise _bad(where, "is required")
    return format_percent(parse_percent(value, where))


def _str(value: Any, where: str, *, max_len: int) -> str:
    return valid_text(value, f"program.{where}", max_len=max_len, code="invalid_program")


def _points(data: Any) -> dict[str, Any]:
    keys = ("earn_points", "per_amount", "rounding", "min_purchase", "redeem_value",
            "expiry_days", "pending_days", "warning_days", "allow_negative")
    data = _check_keys(data, keys, "points")
    rounding = data.get("rounding", "down")
    if rounding not in ROUNDINGS:
        raise _bad("points.rounding", f"must be one of {', '.join(ROUNDINGS)}")
    allow_negative = data.get("allow_negative", False)
    if not isinstance(allow_negative, bool):
        raise _bad("points.allow_negative", "must be true or false")
    out = {
        "earn_points": _int(data.get("earn_points", 1), "points.earn_points", low=0, high=MAX_POINTS),
        "per_amount": _int(data.get("per_amount", 100), "points.per_amount", low=1, high=MAX_MONEY),
        "rounding": rounding,
        "min_purchase": _int(data.get("min_purchase", 0), "points.min_purchase", low=0, high=MAX_MONEY),
        "redeem_value": _int(data.get("redeem_value", 100), "points.redeem_value", low=0, high=MAX_POINT_VALUE),
        "expiry_days": _int(data.get("expiry_days"), "points.expiry_days", low=1, high=MAX_DAYS,
                            nullable=True),
        "pending_days": _int(data.get("pending_days", 0), "points.pending_days", low=0, high=3650),
        "warning_days": _int(data.get("warning_days", 14), "points.warning_days", low=0, high=3650),
        "allow_negative": allow_negative,
    }
    if out["expiry_days"] is not None and out["expiry_days"] <= out["pending_days"]:
        raise _bad("points.expiry_days", "must be longer than points.pending_days "
                   "(points would expire before they can be spent)")
    return out


def _tiers(data: Any) -> dict[str, Any]:
    data = _check_keys(data, ("window_days", "review_days", "levels"), "tiers")
    levels = data.get("levels")
    if not isinstance(levels, list) or not levels:
        raise _bad("tiers.levels", "must be a non-empty list")
    if len(levels) > 20:
        raise _bad("tiers.levels", "may hold at most 20 levels")
    out_levels: list[dict[str, Any]] = []
    names: set[str] = set()
    for i, level in enumerate(levels):
        where = f"tiers.levels[{i}]"
        level = _check_keys(level, ("name", "min_spend", "earn_points", "discount_percent"), where)
        name = _str(level.get("name"), f"{where}.name", max_len=64)
        if name in names:
            raise _bad(f"{where}.name", f"duplicate tier name {name!r}")
        names.add(name)
        min_spend = _int(level.get("min_spend", 0 if i == 0 else None), f"{where}.min_spend",
                         low=0, high=MAX_MONEY)
        assert min_spend is not None
        if i == 0 and min_spend != 0:
            raise _bad(f"{where}.min_spend", "the first level must start at 0")
        if i > 0 and min_spend <= out_levels[-1]["min_spend"]:
            raise _bad(f"{where}.min_spend", "levels must be in strictly ascending min_spend")
        out_levels.append({
            "name": name,
            "min_spend": min_spend,
            "earn_points": _int(level.get("earn_points"), f"{where}.earn_points", low=0,
                                high=MAX_POINTS, nullable=True),
            "discount_percent": _percent(level.get("discount_percent"), f"{where}.discount_percent",
                                         nullable=True),
        })
    return {
        "window_days": _int(data.get("window_days", 365), "tiers.window_days", low=1, high=MAX_DAYS),
        "review_days": _int(data.get("review_days", 30), "tiers.review_days", low=1, high=MAX_DAYS),
        "levels": out_levels,
    }


def validate_program(data: Any) -> dict[str, Any]:
    """The normalized program, or RuleViolation naming the offending field."""
    if data is None:
        return {}
    data = _check_keys(data, SECTIONS, "")
    out: dict[str, Any] = {}
    if data.get("discount") is not None:
        section = _check_keys(data["discount"], ("percent",), "discount")
        out["discount"] = {"percent": _percent(section.get("percent"), "discount.percent")}
    if data.get("points") is not None:
        out["points"] = _points(data["points"])
    if data.get("tiers") is not None:
        out["tiers"] = _tiers(data["tiers"])
    if data.get("cashback") is not None:
        section = _check_keys(data["cashback"], ("percent",), "cashback")
        out["cashback"] = {"percent": _percent(section.get("percent"), "cashback.percent")}
    if data.get("stamps") is not None:
        section = _check_keys(data["stamps"], ("required", "reward"), "stamps")
        out["stamps"] = {
            "required": _int(section.get("required"), "stamps.required", low=1, high=1000),
            "reward": _str(section.get("reward"), "stamps.reward", max_len=200),
        }
    if data.get("bonuses") is not None:
        keys = ("welcome_points", "referral_points", "birthday_points")
        section = _check_keys(data["bonuses"], keys, "bonuses")
        out["bonuses"] = {
            k: _int(section.get(k, 0), f"bonuses.{k}", low=0, high=MAX_POINTS) for k in keys
        }
    return out


# --- typed reading -----------------------------------------------------------

_cache: dict[str, Program] = {}


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
        """The club's rules as they are now. Parsed rules are cached by their
        JSON text: every booking reads them, and they rarely change."""
        key = json.dumps(club.program or {}, sort_keys=True)
        program = _cache.get(key)
        if program is None:
            program = cls.from_dict(club.program)
            if len(_cache) > 1024:
                _cache.clear()
            _cache[key] = program
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

    def cashback_for(self, amount: int) -> int:
        if not self.cashback_percent or amount <= 0:
            return 0
        value = Decimal(amount) * self.cashback_percent / Decimal(100)
        return int(value.to_integral_value(rounding=ROUND_DOWN))

    def initial_tier(self) -> str | None:
        return self.tiers.levels[0].name if self.tiers else None
