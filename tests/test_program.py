"""club.program validation: what a brand may set, and what the ledger reads."""

from __future__ import annotations

import json
import re
from decimal import Decimal
from pathlib import Path

import marshmallow as ma
import pytest

from tests.support.api import Api, make_brand
from wallet.loyalty.clubs import clean_club_fields
from wallet.loyalty.errors import RuleViolation
from wallet.loyalty.fields import InvalidFields, Section
from wallet.loyalty.program import SECTIONS, Program, ProgramSchema, validate_program

FULL = {
    "discount": {"percent": "5"},
    "points": {"earn_points": 5, "per_amount": 10000, "rounding": "down", "min_purchase": 0,
               "redeem_value": 100, "expiry_days": 365, "pending_days": 0, "warning_days": 14,
               "allow_negative": False},
    "tiers": {"window_days": 365, "review_days": 30, "levels": [
        {"name": "Silver", "min_spend": 0, "earn_points": 5, "discount_percent": None},
        {"name": "Gold", "min_spend": 3000000, "earn_points": 7, "discount_percent": "3"},
        {"name": "Platinum", "min_spend": 10000000, "earn_points": 10, "discount_percent": "5"},
    ]},
    "cashback": {"percent": "3"},
    "stamps": {"required": 10, "reward": "Free coffee"},
    "bonuses": {"welcome_points": 100, "referral_points": 200, "birthday_points": 300},
}


def rejected(program: object) -> str:
    with pytest.raises(RuleViolation) as err:
        validate_program(program)
    assert err.value.code == "invalid_program"
    return err.value.message


def test_the_full_example_of_the_contract_is_valid_and_stable() -> None:
    assert validate_program(FULL) == FULL
    assert validate_program(validate_program(FULL)) == FULL


def test_every_section_is_optional_and_defaults_are_filled_in() -> None:
    assert validate_program({}) == {}
    assert validate_program(None) == {}
    assert validate_program({"points": {}})["points"] == {
        "earn_points": 1, "per_amount": 100, "rounding": "down", "min_purchase": 0, "redeem_value": 100,
        "expiry_days": None, "pending_days": 0, "warning_days": 14, "allow_negative": False,
    }


def test_percentages_are_stored_as_normalized_decimal_strings() -> None:
    assert validate_program({"cashback": {"percent": 2.5}})["cashback"]["percent"] == "2.5"
    assert validate_program({"cashback": {"percent": "2.50"}})["cashback"]["percent"] == "2.5"
    assert validate_program({"discount": {"percent": 100}})["discount"]["percent"] == "100"
    assert validate_program({"discount": {"percent": "0.05"}})["discount"]["percent"] == "0.05"


@pytest.mark.parametrize("bad", ["2.555", "-1", "100.01", "abc", "NaN", "Infinity", True, None, [5]])
def test_percentages_outside_0_to_100_or_with_more_than_2_decimals_are_rejected(bad: object) -> None:
    assert "cashback.percent" in rejected({"cashback": {"percent": bad}})


def test_unknown_fields_are_rejected_naming_the_field() -> None:
    assert "program.loyalty" in rejected({"loyalty": {}})
    assert "program.points.earn" in rejected({"points": {"earn": 5}})
    assert "program.tiers.levels[1].bonus" in rejected(
        {"tiers": {"levels": [{"name": "A", "min_spend": 0}, {"name": "B", "min_spend": 5, "bonus": 1}]}})
    assert "must be an object" in rejected([1, 2])


@pytest.mark.parametrize("field,value", [
    ("earn_points", -1), ("earn_points", 1.5), ("earn_points", "5"), ("earn_points", True),
    ("per_amount", 0), ("per_amount", 10**20), ("min_purchase", -5), ("expiry_days", 0),
    ("expiry_days", 100_000), ("pending_days", -1), ("rounding", "up"), ("allow_negative", "yes"),
])
def test_negative_or_absurd_numbers_are_rejected(field: str, value: object) -> None:
    assert f"points.{field}" in rejected({"points": {field: value}})


def test_points_must_not_expire_before_they_can_be_spent() -> None:
    assert "expiry_days" in rejected({"points": {"expiry_days": 14, "pending_days": 14}})


def test_tiers_must_start_at_zero_and_ascend_with_unique_names() -> None:
    assert "first level must start at 0" in rejected({"tiers": {"levels": [{"name": "A", "min_spend": 5}]}})
    assert "ascending" in rejected({"tiers": {"levels": [
        {"name": "A", "min_spend": 0}, {"name": "B", "min_spend": 10}, {"name": "C", "min_spend": 10}]}})
    assert "duplicate" in rejected({"tiers": {"levels": [
        {"name": "A", "min_spend": 0}, {"name": "A", "min_spend": 10}]}})
    assert "non-empty" in rejected({"tiers": {"levels": []}})
    assert "min_spend" in rejected({"tiers": {"levels": [{"name": "A", "min_spend": 0}, {"name": "B"}]}})


def test_stamps_and_bonuses_are_checked() -> None:
    assert "stamps.required" in rejected({"stamps": {"required": 0, "reward": "x"}})
    assert "stamps.reward" in rejected({"stamps": {"required": 3, "reward": ""}})
    assert "bonuses.welcome_points" in rejected({"bonuses": {"welcome_points": -100}})


def test_the_ledger_reads_typed_rules() -> None:
    program = Program.from_dict(FULL)
    assert program.discount_percent == Decimal("5")
    assert program.points_for(12_345, "Silver") == 6  # 5 per 100.00, rounded down
    assert program.points_for(100_000, "Gold") == 70  # Gold's own earn rate
    assert program.points_for(100_000, None) == 50
    assert program.cashback_for(999) == 29  # 3% of 9.99 = 0.2997 -> 0.29
    assert program.tiers and program.tiers.for_spend(3_000_000).name == "Gold"
    assert program.tiers.for_spend(2_999_999).name == "Silver"
    assert program.initial_tier() == "Silver"
    assert (program.welcome_points, program.referral_points, program.birthday_points) == (100, 200, 300)


def test_half_up_rounding() -> None:
    program = Program.from_dict({"points": {"earn_points": 1, "per_amount": 100, "rounding": "half_up"}})
    assert [program.points_for(a, None) for a in (49, 50, 149, 150)] == [0, 1, 1, 2]


@pytest.mark.parametrize("bad", [
    {"points": {"earn_points": -1, "rounding": "up"}},
    {"lottery": {}},
    {"tiers": {"levels": [{"name": "A", "min_spend": 0}, {"name": "A", "min_spend": 0}]}},
    {"points": {"expiry_days": 7, "pending_days": 14}},
    {"cashback": {"percent": "2.555"}},
    [1, 2],
])
def test_the_api_and_the_core_refuse_a_bad_program_with_the_same_error(client, db, bad: object) -> None:
    message = rejected(bad)
    api = Api(client, make_brand(db).key)
    for response in (api.post("/clubs", {"name": "X", "program": bad}),
                     api.patch(f"/clubs/{api.club()['id']}", {"program": bad})):
        assert response.status_code == 422
        assert response.get_json()["error"] == {"code": "invalid_program", "message": message}


def test_a_refusal_addresses_each_field_for_a_form() -> None:
    with pytest.raises(InvalidFields) as err:
        validate_program({"points": {"earn_points": -1, "rounding": "up"}, "stamps": {"required": 3}})
    assert err.value.errors == {
        "program.points.earn_points": ["must be between 0 and 1000000000"],
        "program.points.rounding": ["must be one of down, half_up"],
        "program.stamps.reward": ["is required"],
    }
    # Each problem also says what it is, with the values it names, for a page
    # to word in its own language.
    assert err.value.codes == {"program.points.earn_points": ["out_of_range"],
                               "program.points.rounding": ["not_a_choice"],
                               "program.stamps.reward": ["required"]}
    assert err.value.errors["program.points.earn_points"][0].params == {"low": 0, "high": 1_000_000_000}


def test_every_refusal_of_a_club_carries_a_code_per_field() -> None:
    with pytest.raises(InvalidFields) as err:
        clean_club_fields({"name": "N" * 65, "currency": "ABC", "background_color": "red", "languages": [],
                           "contact_email": "nobody", "website": "ftp://x", "country": "XX",
                           "locations": [{"latitude": 1, "longitude": 1}] * 11,
                           "program": {"points": {"expiry_days": 3, "pending_days": 7},
                                       "tiers": {"levels": [{"name": "A", "min_spend": 5},
                                                            {"name": "A", "min_spend": 1}]},
                                       "cashback": {"percent": "1.234"}}}, creating=True)
    assert err.value.codes == {
        "name": ["too_long"], "currency": ["not_currency"], "country": ["invalid_country"],
        "background_color": ["not_colour"], "contact_email": ["invalid_email"], "website": ["not_url"],
        "locations": ["too_many_locations"], "languages": ["no_language"],
        "program.points.expiry_days": ["expires_before_spendable"],
        "program.tiers.levels[0].min_spend": ["first_level_not_zero"],
        "program.tiers.levels[1].name": ["duplicate_level"],
        "program.tiers.levels[1].min_spend": ["levels_not_ascending"],
        "program.cashback.percent": ["too_many_decimals"],
    }
    assert err.value.errors["name"][0].params == {"max": 64}
    assert err.value.errors["locations"][0].params == {"max": 10}


def _reference() -> str:
    text = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    return text.split("## Program reference", 1)[1].split("\n## ", 1)[0]


def _schema_keys(schema: type[ma.Schema], prefix: str = "") -> dict[str, object]:
    """Every key of the rule set with its default ("required" when it has none)."""
    out: dict[str, object] = {}
    for name, field in schema().fields.items():
        if isinstance(field, Section):
            out |= _schema_keys(field.nested, f"{prefix}{name}.")  # type: ignore[arg-type]
            continue
        out[prefix + name] = "required" if field.required else field.load_default
        if isinstance(field, ma.fields.List) and isinstance(field.inner, Section):
            out |= _schema_keys(field.inner.nested, f"{prefix}{name}[].")  # type: ignore[arg-type]
    return out


def test_the_readme_program_reference_lists_every_key_with_its_default() -> None:
    rows = re.findall(r"^\| `([a-z_.\[\]]+)` \| (required|`[^`]*`) \|", _reference(), re.M)
    documented = {key: "required" if default == "required" else json.loads(default.strip("`"))
                  for key, default in rows}
    assert documented == _schema_keys(ProgramSchema)


def test_the_readme_program_examples_are_valid_and_cover_every_kind() -> None:
    examples = [json.loads(block) for block in re.findall(r"```json\n(.*?)```", _reference(), re.S)]
    for example in examples:
        validate_program(example)
    assert {section for example in examples for section in example} == set(SECTIONS)
