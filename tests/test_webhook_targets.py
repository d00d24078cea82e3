"""A webhook URL cannot make our workers reach inside our network.

At creation, every notation of an internal address and every name that
resolves to one is refused with 422. At delivery the name is resolved again
and each address checked (DNS rebinding); the connection goes to the address
that was checked, with the brand's host name in Host, SNI and certificate
check; redirects are not followed; failures read as a fixed vocabulary.
"""

from __future__ import annotations

import ssl
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from tests.support.api import Api, error_code, make_brand
from tests.support.webhooks import PUBLIC_ADDRESS, Receiver, write_tls_files
from wallet.extensions import webhook_targets
from wallet.jobs.webhook_delivery import RetryLater, deliver
from wallet.loyalty.models import OutboxEvent
from wallet.loyalty.outbox import OutboxKind
from wallet.loyalty.webhooks import WebhookDelivery

INTERNAL_URLS = [
    ("http://127.0.0.1/hook", "loopback"),
    ("http://2130706433/hook", "loopback"),  # decimal
    ("http://0x7f000001/hook", "loopback"),  # hex
    ("http://0177.0.0.1/hook", "loopback"),  # octal
    ("http://0x7f.1/hook", "loopback"),  # mixed short form
    ("http://127.1/hook", "loopback"),  # short form
    ("http://127.0.0.1./hook", "loopback"),  # trailing dot
    ("http://\uff11\uff12\uff17\u3002\uff10\u3002\uff10\u3002\uff11/hook", "loopback"),  # full-width
    ("http://[::1]/hook", "loopback"),
    ("http://[::ffff:127.0.0.1]/hook", "loopback"),  # IPv4-mapped
    ("http://[::ffff:7f00:1]/hook", "loopback"),
    ("http://[::127.0.0.1]/hook", "loopback"),  # IPv4-compatible
    ("http://[2002:7f00:1::1]/hook", "loopback"),  # 6to4
    ("http://[64:ff9b::10.0.0.1]/hook", "private"),  # NAT64
    ("http://localhost/hook", "loopback"),
    ("http://LocalHost./hook", "loopback"),
    ("http://api.localhost:8080/hook", "loopback"),
    ("http://10.1.2.3/hook", "private"),
    ("http://172.16.0.1/hook", "private"),
    ("http://192.168.1.1/hook", "private"),
    ("http://[fd12::1]/hook", "private"),
    ("http://169.254.169.254/latest/meta-data", "link-local"),
    ("http://[fe80::1]/hook", "link-local"),
    ("http://100.64.0.1/hook", "shared"),
    ("http://224.0.0.1/hook", "multicast"),
    ("http://[ff02::1]/hook", "multicast"),
    ("http://240.0.0.1/hook", "reserved"),
    ("http://0.0.0.0/hook", "unspecified"),
    ("http://0/hook", "unspecified"),
    ("http://[::]/hook", "unspecified"),
]


def test_every_notation_of_an_internal_address_is_refused(client, db):
    api = Api(client, make_brand(db).key)
    for url, kind in INTERNAL_URLS:
        response = api.post("/webhooks", {"url": url})
        assert response.status_code == 422 and error_code(response) == "private_address", url
        assert f"a {kind} address" in response.get_json()["error"]["message"], url
    assert api.get("/webhooks").get_json()["items"] == []


def test_a_name_is_refused_when_any_address_it_resolves_to_is_internal(client, db, hosts):
    hosts.table["inside.brand.test"] = ["10.0.0.7"]
    hosts.table["mixed.brand.test"] = [PUBLIC_ADDRESS, "::1"]
    hosts.table["shop.brand.test"] = [PUBLIC_ADDRESS, "2606:4700::1111"]
    api = Api(client, make_brand(db).key)
    inside = api.post("/webhooks", {"url": "https://inside.brand.test/hook"})
    assert inside.status_code == 422 and error_code(inside) == "private_address"
    assert "10.0.0.7" in inside.get_json()["error"]["message"]
    mixed = api.post("/webhooks", {"url": "https://mixed.brand.test/hook"})
    assert mixed.status_code == 422 and error_code(mixed) == "private_address"
    assert api.post("/webhooks", {"url": "https://shop.brand.test/hook"}).status_code == 201


def test_urls_with_credentials_other_schemes_or_unknown_names_are_refused(client, db):
    api = Api(client, make_brand(db).key)
    for url, code in [
        ("https://user:secret@hooks.example.com/hook", "invalid_url"),
        ("https://token@hooks.example.com/hook", "invalid_url"),
        ("https://hooks.example.com\\@127.0.0.1/hook", "invalid_url"),
        ("gopher://hooks.example.com/hook", "invalid_url"),
        ("file:///etc/passwd", "invalid_url"),
        ("https://hooks.example.com:0/hook", "invalid_url"),
        ("https://hooks.example.com:99999/hook", "invalid_url"),
        ("https://256.1.2.3/hook", "invalid_url"),
        ("https://no-such-name.brand.test/hook", "unresolvable_host"),
    ]:
        response = api.post("/webhooks", {"url": url})
        assert response.status_code == 422 and error_code(response) == code, url


def test_a_url_is_stored_in_the_form_it_is_delivered_to(client, db, hosts):
    hosts.table["xn--bcher-kva.example"] = [PUBLIC_ADDRESS]
    api = Api(client, make_brand(db).key)
    idn = api.post("/webhooks", {"url": "https://B\u00fccher.example./hook?x=1#top"})
    assert idn.status_code == 201 and idn.get_json()["url"] == "https://xn--bcher-kva.example/hook?x=1"
    number = api.post("/webhooks", {"url": "http://0x5d.0xb8.0xd7.0x0e:8080/hook"})
    assert number.status_code == 201 and number.get_json()["url"] == f"http://{PUBLIC_ADDRESS}:8080/hook"


class TestAllowPrivate:
    @pytest.fixture
    def app_config(self, app_config):
        app_config["WEBHOOK_ALLOW_PRIVATE"] = True
        return app_config

    def test_development_may_point_webhooks_at_its_own_machine(self, client, db):
        api = Api(client, make_brand(db).key)
        assert api.post("/webhooks", {"url": "http://127.0.0.1:8000/hook"}).status_code == 201
        assert api.post("/webhooks", {"url": "http://localhost:8000/hook"}).status_code == 201
        # Credentials and other schemes stay refused.
        assert api.post("/webhooks", {"url": "http://u:p@127.0.0.1/hook"}).status_code == 422


# --- delivery ------------------------------------------------------------------------


def _queued(db) -> OutboxEvent:
    with db.session() as s:
        return s.scalars(select(OutboxEvent).where(OutboxEvent.kind == OutboxKind.WEBHOOK)).one()


def _attempts(db) -> list[WebhookDelivery]:
    with db.session() as s:
        return list(s.scalars(select(WebhookDelivery).order_by(WebhookDelivery.id)))


def _hook_with_event(client, db, url: str) -> Api:
    api = Api(client, make_brand(db).key)
    created = api.post("/webhooks", {"url": url, "events": ["member.enrolled"]})
    assert created.status_code == 201, created.get_json()
    api.secret = created.get_json()["secret"]
    api.member(api.club()["id"])
    return api


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver() as r:
        yield r


def test_a_name_rebound_to_an_internal_address_after_creation_gets_nothing(app, client, db, hosts, receiver):
    hosts.table["hooks.brand.test"] = [PUBLIC_ADDRESS]
    api = _hook_with_event(client, db, f"http://hooks.brand.test:{receiver.port}/hook")
    hosts.table["hooks.brand.test"] = ["127.0.0.1"]  # the brand's DNS now answers with ours

    with pytest.raises(RetryLater):
        deliver(db, _queued(db), targets=webhook_targets(app))
    assert receiver.received == [] and receiver.bad_signatures == 0
    [attempt] = _attempts(db)
    assert attempt.error == "refused: private address" and attempt.response_status is None
    [hook] = api.get("/webhooks").get_json()["items"]
    [listed] = api.get(f"/webhooks/{hook['id']}/deliveries").get_json()["items"]
    assert listed["error"] == "refused: private address"


class TestOnLoopback:
    """Real endpoints on loopback need WEBHOOK_ALLOW_PRIVATE; what is tested
    here is where the connection goes and how failures read."""

    @pytest.fixture
    def app_config(self, app_config):
        app_config["WEBHOOK_ALLOW_PRIVATE"] = True
        return app_config

    @pytest.fixture
    def tls(self, tmp_path: Path) -> tuple[Path, Path, Path]:
        return write_tls_files(tmp_path / "tls", "hooks.brand.test")

    def test_the_connection_goes_to_the_address_checked_with_the_brand_host_in_sni_and_certificate(
            self, app, client, db, hosts, tls):
        ca, cert, key = tls
        with Receiver(tls=(cert, key)) as endpoint:
            hosts.table["hooks.brand.test"] = ["127.0.0.1"]
            api = _hook_with_event(client, db, f"https://hooks.brand.test:{endpoint.port}/hook")
            endpoint.secret = api.secret
            # One look-up per delivery: a second one, by the HTTP stack,
            # would be sent to an address nobody checked.
            hosts.answers["hooks.brand.test"] = [["127.0.0.1"], ["127.0.0.9"]]
            hosts.lookups.clear()
            deliver(db, _queued(db), targets=webhook_targets(app), ssl_context=ssl.create_default_context(cafile=ca))
        assert hosts.lookups == ["hooks.brand.test"]
        [received] = endpoint.received
        assert received["headers"]["Host"] == f"hooks.brand.test:{endpoint.port}"
        assert endpoint.server_names == ["hooks.brand.test"]
        assert _attempts(db)[0].succeeded

    def test_a_certificate_for_another_name_is_a_tls_error(self, app, client, db, hosts, tmp_path):
        ca, cert, key = write_tls_files(tmp_path / "other", "other.brand.test")
        with Receiver(tls=(cert, key)) as endpoint:
            hosts.table["hooks.brand.test"] = ["127.0.0.1"]
            _hook_with_event(client, db, f"https://hooks.brand.test:{endpoint.port}/hook")
            with pytest.raises(RetryLater):
                deliver(db, _queued(db), targets=webhook_targets(app),
                        ssl_context=ssl.create_default_context(cafile=ca))
        assert endpoint.received == []
        assert [a.error for a in _attempts(db)] == ["TLS error"]

    def test_redirects_are_not_followed(self, app, client, db, receiver):
        with Receiver() as elsewhere:
            api = _hook_with_event(client, db, receiver.url)
            receiver.secret = elsewhere.secret = api.secret
            receiver.status = 307
            receiver.headers = {"Location": elsewhere.url}
            with pytest.raises(RetryLater):
                deliver(db, _queued(db), targets=webhook_targets(app))
        assert len(receiver.received) == 1 and elsewhere.received == []
        [attempt] = _attempts(db)
        assert attempt.response_status == 307 and not attempt.succeeded

    def test_an_endpoint_that_does_not_answer_in_time_reads_timed_out(self, app, client, db, receiver):
        release = threading.Event()
        receiver.hold = lambda: release.wait(10)
        api = _hook_with_event(client, db, receiver.url)
        receiver.secret = api.secret
        try:
            with pytest.raises(RetryLater):
                deliver(db, _queued(db), targets=webhook_targets(app), timeout=0.3)
        finally:
            release.set()
        assert [(a.error, a.response_status) for a in _attempts(db)] == [("timed out", None)]

    def test_a_port_that_is_closed_reads_connection_failed(self, app, client, db, hosts):
        with Receiver() as gone:
            port = gone.port
        hosts.table["hooks.brand.test"] = ["127.0.0.1"]
        _hook_with_event(client, db, f"http://hooks.brand.test:{port}/hook")
        with pytest.raises(RetryLater):
            deliver(db, _queued(db), targets=webhook_targets(app))
        assert [a.error for a in _attempts(db)] == ["connection failed"]

    def test_a_webhook_stored_before_the_rule_is_refused_at_delivery(self, app, client, db, receiver):
        api = _hook_with_event(client, db, receiver.url)
        strict = webhook_targets(app).__class__(allow_private=False, resolve=webhook_targets(app).resolve)
        with pytest.raises(RetryLater):
            deliver(db, _queued(db), targets=strict)
        assert receiver.received == [] and api.secret
        assert [a.error for a in _attempts(db)] == ["refused: private address"]
