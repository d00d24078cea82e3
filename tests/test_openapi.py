"""The OpenAPI document is generated from the code, and schemathesis,
driving the API from it with a valid key, finds no 5xx and no answer that
contradicts the document."""

from __future__ import annotations

import re
import uuid
from pathlib import Path

import marshmallow as ma
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from openapi_schema_validator import OAS30Validator
from openapi_spec_validator import validate
from schemathesis.specs.openapi.checks import content_type_conformance, response_schema_conformance
from sqlalchemy import update

from tests.support.api import Api, make_brand
from wallet.loyalty.fields import Section
from wallet.loyalty.models import ApiKey
from wallet.loyalty.program import PointsRulesSchema, ProgramSchema

CONTRACT_PATHS = {
    "/api/v1/clubs": {"get", "post"},
    "/api/v1/clubs/{club_id}": {"get", "patch"},
    "/api/v1/clubs/{club_id}/members": {"get", "post"},
    "/api/v1/members/{member_id}": {"get"},
    "/api/v1/members/{member_id}/transactions": {"get", "post"},
    "/api/v1/clubs/{club_id}/messages": {"post"},
}


def test_the_document_lists_every_contract_endpoint(client):
    response = client.get("/api/v1/openapi.json")
    assert response.status_code == 200
    spec = response.get_json()
    assert spec["openapi"].startswith("3.")
    for path, methods in CONTRACT_PATHS.items():
        assert methods <= set(spec["paths"][path]), path
    post = spec["paths"]["/api/v1/members/{member_id}/transactions"]["post"]
    key = next(p for p in post["parameters"] if p["name"] == "Idempotency-Key")
    assert key["required"] is True
    error = spec["components"]["schemas"]["Error"]
    assert error["properties"]["error"]["$ref"].endswith("/ErrorDetail")
    assert spec["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"


def test_the_document_validates_and_gives_every_program_key_with_its_default(client):
    spec = client.get("/api/v1/openapi.json").get_json()
    validate(spec)
    schemas = spec["components"]["schemas"]

    def keys(schema: type[ma.Schema], component: str) -> None:
        properties = schemas[component]["properties"]
        assert set(properties) == set(schema().fields), component
        for name, field in schema().fields.items():
            if isinstance(field, Section) or (isinstance(field, ma.fields.List) and isinstance(field.inner, Section)):
                nested = field.nested if isinstance(field, Section) else field.inner.nested
                keys(nested, nested.__name__.removesuffix("Schema"))
            elif not field.required:
                assert properties[name]["default"] == field.load_default, (component, name)
            assert properties[name].get("description") or properties[name].get("allOf"), (component, name)

    keys(ProgramSchema, "Program")
    assert schemas["ClubCreate"]["properties"]["program"]["allOf"] == [{"$ref": "#/components/schemas/Program"}]
    # The program as a club holds it: every key of a section is always sent.
    answer = schemas["ClubPointsRules"]
    assert set(answer["required"]) == set(answer["properties"]) == set(PointsRulesSchema().fields)


def test_answers_are_typed_for_a_client_generator(client):
    schemas = client.get("/api/v1/openapi.json").get_json()["components"]["schemas"]
    member = schemas["Member"]
    assert member["properties"]["expiring"]["allOf"] == [{"$ref": "#/components/schemas/Expiring"}]
    assert member["properties"]["expiring"]["nullable"] is True
    assert member["properties"]["birthday"]["format"] == "date"
    assert member["properties"]["created_at"]["format"] == "date-time"
    assert member["properties"]["status"]["enum"] == ["active", "ended"]
    for name in ("Member", "Transaction", "Club", "ApiKey", "Webhook", "WebhookDelivery", "Expiring"):
        assert set(schemas[name]["required"]) == set(schemas[name]["properties"]), name
    assert "purchase" in schemas["Transaction"]["properties"]["type"]["enum"]


def test_every_operation_has_an_id_an_example_and_its_error_statuses(client):
    spec = client.get("/api/v1/openapi.json").get_json()
    ids = []
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            if method == "parameters":
                continue
            ids.append(operation["operationId"])
            responses = operation["responses"]
            assert "default" not in responses
            assert {"400", "401", "429", "503"} <= set(responses), (method, path)
            assert ("404" in responses) == ("{" in path), (method, path)
            if method in ("post", "patch"):
                assert {"409", "413", "415", "422"} <= set(responses), (method, path)
                body = operation["requestBody"]["content"]["application/json"]
                assert "example" in body or "examples" in body, (method, path)
            for status in ("429", "503"):
                assert "Retry-After" in responses[status]["headers"]
            for status, answer in responses.items():
                if status.startswith("2") and method != "get":
                    assert "Idempotent-Replayed" in answer["headers"], (method, path, status)
                if status.startswith("2") and "content" in answer:
                    assert "example" in answer["content"]["application/json"], (method, path, status)
    assert len(ids) == len(set(ids))


def test_the_examples_match_their_schemas(client):
    spec = client.get("/api/v1/openapi.json").get_json()
    resolver = {"components": spec["components"]}

    def check(schema: dict, example: object, where: str) -> None:
        validator = OAS30Validator({**schema, **resolver})
        errors = [e.message for e in validator.iter_errors(example)]
        assert not errors, (where, errors)

    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            if method == "parameters":
                continue
            body = operation.get("requestBody", {}).get("content", {}).get("application/json")
            if body:
                for name, example in ({"": {"value": body["example"]}} if "example" in body
                                      else body.get("examples", {})).items():
                    check(body["schema"], example["value"], f"{method} {path} {name}")
            for status, answer in operation["responses"].items():
                content = answer.get("content", {}).get("application/json", {})
                if "example" in content:
                    check(content["schema"], content["example"], f"{method} {path} {status}")


def test_every_error_code_the_api_can_answer_is_in_the_documented_enums(client):
    """The sources the API runs through, against the document: a new code
    that a generated client could not parse fails here."""
    spec = client.get("/api/v1/openapi.json").get_json()["components"]["schemas"]
    documented = {code for name, schema in spec.items() if name.startswith("ErrorDetail") and name != "ErrorDetail"
                  for code in schema["properties"]["code"]["enum"]}
    root = Path(__file__).resolve().parent.parent / "wallet"
    sources = [*root.glob("api/*.py"), *root.glob("loyalty/ledger/*.py"), root / "outage.py"] + [
        root / "loyalty" / f"{name}.py" for name in (
            "clubs", "members", "contacts", "fields", "program", "messages", "webhooks", "webhook_targets",
            "errors", "cards", "campaigns", "segments")]
    found: set[str] = set()
    for source in sources:
        text = source.read_text()
        found |= set(re.findall(r'(?:code|default_code)\s*=\s*"([a-z_]+)"', text))
        found |= set(re.findall(r'ApiError\(\s*\d{3},\s*"([a-z_]+)"', text))
        found |= set(re.findall(r'error_response\(\s*4\d\d,\s*"([a-z_]+)"', text))
    found |= {f"{key}_taken" for key in ("email", "phone")}
    # Codes of the portal's own refusals never reach the API.
    assert found - documented - {"email_taken", "phone_taken", "contact_taken", "loyalty_error",
                                 "segment_not_found", "duplicate_name"} == set()


@pytest.fixture
def app_config(app_config):
    # Hundreds of requests a minute with one key: the rate limit has its own test.
    app_config["API_RATE_LIMIT"] = "1000000 per minute"
    return app_config


@pytest.fixture
def api_schema(app, db):
    """The app's own document, with data to find: a club, a member with
    points, a webhook, so generated ids sometimes hit real rows."""
    brand = make_brand(db)
    api = Api(app.test_client(), brand.key)
    club = api.club(program={"points": {"earn_points": 5, "per_amount": 100}, "tiers": {
        "window_days": 365, "review_days": 30,
        "levels": [{"name": "Silver", "min_spend": 0}, {"name": "Gold", "min_spend": 100000}]}})
    member = api.member(club["id"])
    api.purchase(member["id"], 100000)
    hook = api.post("/webhooks", {"url": "https://hooks.example.com/hook"}).get_json()
    app.config["SCHEMATHESIS_KEY"] = brand.key
    app.config["SCHEMATHESIS_IDS"] = {"club_id": club["id"], "member_id": member["id"], "webhook_id": hook["id"]}
    return schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app)


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
def test_api_answers_every_generated_request_without_a_5xx(case, app, db):
    headers = {"Authorization": f"Bearer {app.config['SCHEMATHESIS_KEY']}"}
    if case.method.upper() == "POST" and case.headers and "Idempotency-Key" in case.headers:
        # Generated keys repeat ("0", "A"): each would be a 409 for a new body,
        # and the run would test little else. Idempotency has its own tests.
        headers["Idempotency-Key"] = uuid.uuid4().hex
    # Random ids are nearly always unknown (404). Point half of them at real
    # rows so bodies reach the ledger, the enrolment and the club rules.
    real = app.config["SCHEMATHESIS_IDS"]
    for name, value in list((case.path_parameters or {}).items()):
        if name in real and isinstance(value, int) and value % 2 == 0:
            case.path_parameters[name] = real[name]
    case.call_and_validate(
        headers=headers,
        checks=[not_a_server_error, response_schema_conformance, content_type_conformance],
    )
    # DELETE /api-keys/{id} may have revoked the key this run uses; revive it
    # so the following cases still get past authentication.
    with db.transaction() as session:
        session.execute(update(ApiKey).values(revoked_at=None))
