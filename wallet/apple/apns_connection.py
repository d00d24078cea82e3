"""One HTTP/2 connection to APNs over TLS, driven by h2 on an asyncio
transport: streams started, their frames written together, their answers
read and handed to a callback. Which pushes go on it, their retries and
their outcomes are the client's (wallet.apple.apns)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import h2.config
import h2.connection
import h2.events
import h2.exceptions


class ApnsConnectionError(ConnectionError):
    """The connection to APNs failed or was closed under a push; the push is
    retried on a new connection (check APNS_URL and the network if it lasts)."""


class Http2Connection(asyncio.Protocol):
    """One HTTP/2 connection over TLS, driven by h2: ``start()`` opens a
    stream whose answer (status and body, or the error that left it
    unanswered) goes to the stream's ``answered`` callback. Frames written in
    one turn of the loop leave together; a lost connection, a GOAWAY or a
    reset fails the streams it leaves unanswered (the caller retries them).
    ``on_room`` is called once after each read that may have made room for
    more streams (an answer, a wider window, new settings), so the caller
    starts the next ones in the same write."""

    def __init__(self, loop: asyncio.AbstractEventLoop, timeout: float, on_room: Callable[[], None]) -> None:
        self.loop = loop
        self.timeout = timeout
        self.on_room = on_room
        self.h2 = h2.connection.H2Connection(config=h2.config.H2Configuration(
            client_side=True, header_encoding=None,
            # Our headers are few, fixed and already lower case; of APNs's
            # answers only :status and the body are read.
            validate_outbound_headers=False, normalize_outbound_headers=False, validate_inbound_headers=False,
        ))
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self._streams: dict[int, Stream] = {}
        # Streams whose body waits for the flow-control window to open.
        self._blocked: list[int] = []
        self._sweeper: asyncio.TimerHandle | None = None

    # -- asyncio.Protocol --------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.h2.initiate_connection()
        self.flush()

    def data_received(self, data: bytes) -> None:
        try:
            events = self.h2.receive_data(data)
        except h2.exceptions.ProtocolError as exc:
            self._abort(f"HTTP/2 protocol error: {exc}")
            return
        room = False
        for event in events:
            if isinstance(event, h2.events.ResponseReceived):
                stream = self._streams.get(event.stream_id)
                if stream is not None:
                    for name, value in event.headers:
                        if name == b":status":
                            stream.status = int(value)
            elif isinstance(event, h2.events.StreamEnded):
                stream = self._streams.pop(event.stream_id, None)
                if stream is not None:
                    stream.answer(None)
                room = True
            elif isinstance(event, h2.events.DataReceived):
                stream = self._streams.get(event.stream_id)
                if stream is not None:
                    stream.body += event.data
                self.h2.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
            elif isinstance(event, h2.events.StreamReset):
                stream = self._streams.pop(event.stream_id, None)
                if stream is not None:
                    stream.answer(ApnsConnectionError(f"stream reset ({event.error_code!r})"))
                room = True
            elif isinstance(event, h2.events.WindowUpdated):
                self._send_blocked()
                room = True
            elif isinstance(event, h2.events.RemoteSettingsChanged):
                room = True
            elif isinstance(event, h2.events.ConnectionTerminated):
                # GOAWAY: no new streams; those it did not take are failed.
                self.closed = True
                last = event.last_stream_id if event.last_stream_id is not None else 0
                for stream_id in [s for s in self._streams if s > last]:
                    self._streams.pop(stream_id).answer(ApnsConnectionError(f"GOAWAY ({event.error_code!r})"))
                room = True
                if not self._streams and self.transport is not None:
                    self.transport.close()
        if room:
            self.on_room()
        self.flush()

    def connection_lost(self, exc: Exception | None) -> None:
        self._fail_all(ApnsConnectionError(f"connection lost: {exc}" if exc else "connection closed"))
        if self._sweeper is not None:
            self._sweeper.cancel()

    # -- requests ----------------------------------------------------------
    def has_room(self) -> bool:
        """Whether the server takes another stream now (SETTINGS_MAX_CONCURRENT_STREAMS)."""
        return not self.closed and len(self._streams) < self.h2.remote_settings.max_concurrent_streams

    def start(self, headers: list[Any], body: bytes, answered: Callable[[Stream, Exception | None], None],
              push: Any) -> None:
        """Open a stream with these headers and body; its frames leave at the
        next ``flush()``. ``answered(stream, error)`` gets its answer, later,
        from the loop (never from within this call)."""
        if self.closed:
            raise ApnsConnectionError("connection closed")
        try:
            stream_id = self.h2.get_next_available_stream_id()
            self.h2.send_headers(stream_id, headers)
        except h2.exceptions.H2Error as exc:  # out of stream ids: the next push opens a new connection
            self.closed = True
            raise ApnsConnectionError(f"cannot open a stream: {exc!r}") from exc
        stream = Stream(answered, push, body, self.loop.time() + self.timeout)
        self._streams[stream_id] = stream
        if self.h2.local_flow_control_window(stream_id) < len(body):
            self._blocked.append(stream_id)
        else:
            self.h2.send_data(stream_id, body, end_stream=True)
        if self._sweeper is None:
            self._sweeper = self.loop.call_later(1.0, self._sweep)

    def flush(self) -> None:
        data = self.h2.data_to_send()
        if data and self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)

    def close(self) -> None:
        if self.transport is not None and not self.closed:
            self.closed = True
            self.h2.close_connection()
            self.flush()
            self.transport.close()

    # -- internals ---------------------------------------------------------
    def _send_blocked(self) -> None:
        """The bodies the flow-control window held back, as far as it now allows."""
        blocked, self._blocked = self._blocked, []
        for stream_id in blocked:
            stream = self._streams.get(stream_id)
            if stream is None:
                continue
            if self.h2.local_flow_control_window(stream_id) < len(stream.request_body):
                self._blocked.append(stream_id)
            else:
                self.h2.send_data(stream_id, stream.request_body, end_stream=True)

    def _sweep(self) -> None:
        """A stream unanswered past its deadline: the connection is stuck;
        drop it, failing every stream on it (they are retried)."""
        self._sweeper = None
        if not self._streams:
            return
        now = self.loop.time()
        if any(stream.deadline < now for stream in self._streams.values()):
            self._abort("APNs did not answer in time")
            return
        self._sweeper = self.loop.call_later(1.0, self._sweep)

    def _abort(self, reason: str) -> None:
        self._fail_all(ApnsConnectionError(reason))
        if self.transport is not None:
            self.transport.abort()

    def _fail_all(self, error: ApnsConnectionError) -> None:
        """No answer will come on this connection: every waiting push gets
        the error (and is retried by its caller on a new connection)."""
        self.closed = True
        streams, self._streams = self._streams, {}
        self._blocked = []
        for stream in streams.values():
            stream.answer(error)
        self.on_room()


class Stream:
    """A push on the wire: its answer as it arrives, and whom to tell."""

    __slots__ = ("answered", "push", "request_body", "deadline", "status", "body")

    def __init__(self, answered: Callable[[Stream, Exception | None], None], push: Any, request_body: bytes,
                 deadline: float) -> None:
        self.answered = answered
        self.push = push
        self.request_body = request_body
        self.deadline = deadline
        self.status = 0
        self.body = b""

    def answer(self, error: Exception | None) -> None:
        self.answered(self, error)
