"""The health check load balancers use."""


def test_health_check_reaches_the_database(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok", "down": [], "database": "ok"}
