"""The service's front door and health check."""


def test_front_door_points_at_the_api(client):
    body = client.get("/").get_json()
    assert body["openapi"] == "https://wallet.test/api/v1/openapi.json"
    assert body["apple_web_service"] == "https://wallet.test/apple"


def test_health_check_reaches_the_database(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok"}
