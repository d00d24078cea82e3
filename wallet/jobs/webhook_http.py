"""One webhook POST, to the addresses that were checked and nowhere else.

The name in a webhook URL is resolved once per delivery and every address
it gives is checked (``TargetPolicy.addresses``); the connection then goes
to one of exactly those addresses. An HTTP client that resolved the name
again itself could be handed a different, internal address by a DNS server
that answers differently the second time (DNS rebinding), so httpcore gets
a network backend that connects to the vetted addresses, while the URL,
and with it the Host header, the TLS SNI and the name the certificate is
verified for, stays the brand's host name.

httpcore follows no redirects, keeps no cookies and reads no proxy settings
from the environment, which is what a webhook wants. What goes wrong is
reported as one of a few fixed outcomes (``DeliveryError``), never as the
socket's own words: those would let a brand probe which ports answer.
"""

from __future__ import annotations

import logging
import ssl
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import certifi
import httpcore

from wallet.logtext import printable
from wallet.loyalty.webhook_targets import (
    IPAddress,
    PrivateAddress,
    TargetPolicy,
    UnresolvableHost,
    WebhookUrlError,
    parse_url,
)
from wallet.loyalty.webhooks import DeliveryError

log = logging.getLogger(__name__)

CONNECT_TIMEOUT = 5.0
READ_TIMEOUT = 10.0
# However slowly an endpoint drips its answer, one delivery holds a worker
# no longer than three read timeouts.
MAX_STORED_BODY = 2000


class DeliveryFailed(Exception):
    """No HTTP answer: ``reason`` is what the brand is shown."""

    def __init__(self, reason: DeliveryError) -> None:
        super().__init__(reason.value)
        self.reason = reason


@dataclass(frozen=True)
class Answer:
    status: int
    head: str  # the start of the body, at most MAX_STORED_BODY characters


def default_ssl_context() -> ssl.SSLContext:
    """The public web's CAs (certifi, as httpx uses), hostname checked."""
    return ssl.create_default_context(cafile=certifi.where())


class _DeadlineStream(httpcore.NetworkStream):
    """A stream whose every read and write ends by one deadline."""

    def __init__(self, inner: httpcore.NetworkStream, deadline: float) -> None:
        self._inner = inner
        self._deadline = deadline

    def _left(self, timeout: float | None, error: type[Exception]) -> float:
        left = self._deadline - time.monotonic()
        if left <= 0:
            raise error("the delivery took too long")
        return left if timeout is None else min(timeout, left)

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._inner.read(max_bytes, self._left(timeout, httpcore.ReadTimeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._inner.write(buffer, self._left(timeout, httpcore.WriteTimeout))

    def close(self) -> None:
        self._inner.close()

    def start_tls(self, ssl_context: ssl.SSLContext, server_hostname: str | None = None,
                  timeout: float | None = None) -> httpcore.NetworkStream:
        inner = self._inner.start_tls(ssl_context, server_hostname, self._left(timeout, httpcore.ConnectTimeout))
        return _DeadlineStream(inner, self._deadline)

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)


class PinnedBackend(httpcore.NetworkBackend):
    """Connects to the given addresses, in order, whatever host it is asked for."""

    def __init__(self, addresses: Sequence[IPAddress], deadline: float) -> None:
        self._addresses = list(addresses)
        self._deadline = deadline
        self._tcp = httpcore.SyncBackend()

    def connect_tcp(self, host: str, port: int, timeout: float | None = None, local_address: str | None = None,
                    socket_options: Iterable[Any] | None = None) -> httpcore.NetworkStream:
        last: Exception = httpcore.ConnectError("no address to connect to")
        for address in self._addresses:
            left = self._deadline - time.monotonic()
            if left <= 0:
                raise httpcore.ConnectTimeout("the delivery took too long")
            try:
                stream = self._tcp.connect_tcp(str(address), port, min(timeout or left, left), local_address,
                                               socket_options)
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                last = exc
                continue
            return _DeadlineStream(stream, self._deadline)
        raise last

    def connect_unix_socket(self, path: str, timeout: float | None = None,
                            socket_options: Iterable[Any] | None = None) -> httpcore.NetworkStream:
        raise httpcore.ConnectError("webhooks are delivered over TCP only")


def post(url: str, body: bytes, headers: dict[str, str], *, policy: TargetPolicy,
         ssl_context: ssl.SSLContext | None = None, timeout: float = READ_TIMEOUT) -> Answer:
    """POST ``body`` to ``url``: the answer's status and the start of its
    body, or DeliveryFailed with the reason to show. ``timeout`` bounds
    each wait for the endpoint, three times it the whole delivery."""
    try:
        target = parse_url(url)
        addresses = policy.addresses(target)
    except PrivateAddress:
        raise DeliveryFailed(DeliveryError.PRIVATE_ADDRESS) from None
    except UnresolvableHost:
        raise DeliveryFailed(DeliveryError.NOT_RESOLVED) from None
    except WebhookUrlError:
        raise DeliveryFailed(DeliveryError.INVALID_URL) from None
    deadline = time.monotonic() + 3 * timeout
    pool = httpcore.ConnectionPool(
        ssl_context=ssl_context or default_ssl_context(),
        network_backend=PinnedBackend(addresses, deadline),
        max_connections=1, retries=0,
    )
    request_headers = [("Host", target.netloc), ("Content-Length", str(len(body))), *headers.items()]
    connect = min(CONNECT_TIMEOUT, timeout)
    timeouts = {"connect": connect, "read": timeout, "write": timeout, "pool": connect}
    try:
        with pool:
            request_url = httpcore.URL(scheme=target.scheme, host=target.host, port=target.port,
                                       target=target.target)
            with pool.stream("POST", request_url, headers=request_headers, content=body,
                             extensions={"timeout": timeouts}) as response:
                head = b""
                # Only the start is kept: a huge answer must not fill the worker's memory.
                for chunk in response.iter_stream():
                    head += chunk
                    if len(head) >= MAX_STORED_BODY:
                        break
                return Answer(response.status, head[:MAX_STORED_BODY].decode("utf-8", "replace"))
    except httpcore.TimeoutException as exc:
        raise _failed(DeliveryError.TIMED_OUT, url, exc) from None
    except httpcore.ProtocolError as exc:
        raise _failed(DeliveryError.INVALID_RESPONSE, url, exc) from None
    except (httpcore.NetworkError, httpcore.UnsupportedProtocol, OSError) as exc:
        tls = _caused_by_tls(exc)
        raise _failed(DeliveryError.TLS_ERROR if tls else DeliveryError.CONNECTION_FAILED, url, exc) from None


def _caused_by_tls(exc: BaseException | None) -> bool:
    while exc is not None:
        if isinstance(exc, ssl.SSLError):
            return True
        exc = exc.__cause__ or exc.__context__
    return False


def _failed(reason: DeliveryError, url: str, exc: BaseException) -> DeliveryFailed:
    # The operator's log keeps the details the brand is not shown.
    log.info("webhook delivery to %s: %s (%s: %s)", printable(url), reason.value, type(exc).__name__,
             printable(exc))
    return DeliveryFailed(reason)
