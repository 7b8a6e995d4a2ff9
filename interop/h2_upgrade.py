#!/usr/bin/env python3
"""Python `h2` as a cleartext-upgrade (h2c) client, for interop/run.

    python3 interop/h2_upgrade.py PORT CASE

It writes the HTTP/1.1 upgrade request itself, with the HTTP2-Settings value from
H2Connection.initiate_upgrade_connection() (local SETTINGS_INITIAL_WINDOW_SIZE =
16384), reads the 101, and feeds everything after it to h2.

Cases:
  A  GET /bytes/100000 on stream 1. The client opens its windows only as it
     consumes (acknowledge_received_data -> WINDOW_UPDATE). Checks all 100000
     bytes against the pattern, that the server never sent past the window the
     client granted (counted here, independently of h2's own check), and that no
     flow-control error of any kind was seen.
  B  The same stream-1 exchange, then raw WINDOW_UPDATE, PRIORITY and RST_STREAM
     frames on the (closed) stream 1, then GET / on stream 3: checks
     `hello world\\n` and that the connection survived (no GOAWAY, no reset).

Prints one line `OK <details>` and exits 0, or `ERROR <reason>` and exits 1.
"""

import socket
import sys

import h2.config
import h2.connection
import h2.events
import h2.exceptions
import h2.settings
from h2.settings import SettingCodes
from hyperframe.frame import PriorityFrame, RstStreamFrame, WindowUpdateFrame

PATTERN = b"abcdefghijklmnopqrstuvwxyz012345"
STREAM_WINDOW = 16384
CONN_WINDOW = 65535  # RFC 9113 §6.9.2: the connection window always starts here
TIMEOUT = 10


class Fail(Exception):
    pass


def pattern(n):
    return (PATTERN * (n // len(PATTERN) + 1))[:n]


class Client:
    def __init__(self, port):
        self.port = port
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        cfg = h2.config.H2Configuration(client_side=True, header_encoding="utf-8")
        self.conn = h2.connection.H2Connection(config=cfg)
        # Our own SETTINGS, before anything is sent: a small stream window.
        self.conn.local_settings = h2.settings.Settings(
            client=True,
            initial_values={SettingCodes.INITIAL_WINDOW_SIZE: STREAM_WINDOW},
        )
        # Independent flow-control accounting: what the server may still send.
        self.stream_credit = {}
        self.conn_credit = CONN_WINDOW
        self.responses = {}  # stream id -> {"headers", "data", "ended"}
        self.goaway = None
        self.resets = []

    # -- the upgrade -------------------------------------------------------
    def upgrade(self, path):
        settings = self.conn.initiate_upgrade_connection()
        if isinstance(settings, bytes):
            settings = settings.decode("ascii")
        req = (
            f"GET {path} HTTP/1.1\r\n"
            f"Host: 127.0.0.1:{self.port}\r\n"
            "Connection: Upgrade, HTTP2-Settings\r\n"
            "Upgrade: h2c\r\n"
            f"HTTP2-Settings: {settings}\r\n"
            "User-Agent: python-h2-interop\r\n"
            "\r\n"
        )
        self.sock.sendall(req.encode("ascii"))
        buf = b""
        while b"\r\n\r\n" not in buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise Fail(f"connection closed before the 101; got {buf[:200]!r}")
            buf += chunk
            if len(buf) > 65536:
                raise Fail("no end of response head")
        head, rest = buf.split(b"\r\n\r\n", 1)
        status_line = head.split(b"\r\n", 1)[0]
        if not status_line.startswith(b"HTTP/1.1 101"):
            raise Fail(f"expected 101, got {status_line!r}")
        lower = head.lower()
        if b"upgrade: h2c" not in lower:
            raise Fail(f"101 without upgrade: h2c: {head!r}")
        self.stream_credit[1] = STREAM_WINDOW
        self.responses[1] = {"headers": None, "data": bytearray(), "ended": False}
        # Upon the 101: our preface and SETTINGS (prepared by h2), then the rest.
        self.flush()
        if rest:
            self.feed(rest)
        return status_line.decode()

    # -- plumbing ----------------------------------------------------------
    def flush(self):
        out = self.conn.data_to_send()
        if out:
            self.sock.sendall(out)

    def feed(self, data):
        try:
            events = self.conn.receive_data(data)
        except h2.exceptions.FlowControlError as e:
            raise Fail(f"server broke flow control (h2 FlowControlError): {e}")
        except h2.exceptions.ProtocolError as e:
            raise Fail(f"h2 protocol error: {e!r}")
        for ev in events:
            self.on_event(ev)
        self.flush()

    def on_event(self, ev):
        if isinstance(ev, h2.events.ResponseReceived):
            r = self.responses.setdefault(
                ev.stream_id, {"headers": None, "data": bytearray(), "ended": False})
            r["headers"] = dict(ev.headers)
        elif isinstance(ev, h2.events.DataReceived):
            n = ev.flow_controlled_length
            sid = ev.stream_id
            self.stream_credit[sid] = self.stream_credit.get(sid, 0) - n
            self.conn_credit -= n
            if self.stream_credit[sid] < 0:
                raise Fail(f"server sent {-self.stream_credit[sid]} bytes past stream "
                           f"{sid}'s window")
            if self.conn_credit < 0:
                raise Fail(f"server sent {-self.conn_credit} bytes past the connection window")
            self.responses[sid]["data"] += ev.data
            # Consumed: hand the space back (h2 decides when a WINDOW_UPDATE is due).
            before = self.conn.data_to_send()
            if before:
                self.sock.sendall(before)
            self.conn.acknowledge_received_data(n, sid)
            self.account_window_updates(self.conn.data_to_send())
        elif isinstance(ev, h2.events.StreamEnded):
            self.responses[ev.stream_id]["ended"] = True
        elif isinstance(ev, h2.events.StreamReset):
            self.resets.append((ev.stream_id, ev.error_code))
            raise Fail(f"server reset stream {ev.stream_id}: {ev.error_code!r}")
        elif isinstance(ev, h2.events.ConnectionTerminated):
            self.goaway = ev.error_code
            raise Fail(f"server sent GOAWAY: {ev.error_code!r} "
                       f"last_stream={ev.last_stream_id} {ev.additional_data!r}")

    def account_window_updates(self, out):
        """Sends `out` (WINDOW_UPDATEs from acknowledge_received_data) and credits
        them in our own accounting."""
        if not out:
            return
        view = memoryview(out)
        while len(view) >= 9:
            length = int.from_bytes(view[0:3], "big")
            ftype = view[3]
            sid = int.from_bytes(view[5:9], "big") & 0x7FFFFFFF
            payload = view[9:9 + length]
            if ftype == 0x8:
                inc = int.from_bytes(payload[0:4], "big") & 0x7FFFFFFF
                if sid == 0:
                    self.conn_credit += inc
                else:
                    self.stream_credit[sid] = self.stream_credit.get(sid, 0) + inc
            view = view[9 + length:]
        self.sock.sendall(out)

    def run_until(self, done):
        while not done():
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                raise Fail(f"timed out after {TIMEOUT}s waiting for the response")
            if not data:
                raise Fail("server closed the connection")
            self.feed(data)

    def check_stream(self, sid, want_body):
        r = self.responses[sid]
        status = (r["headers"] or {}).get(":status")
        if status != "200":
            raise Fail(f"stream {sid}: status {status!r}")
        body = bytes(r["data"])
        if body != want_body:
            first = next((i for i, (a, b) in enumerate(zip(body, want_body)) if a != b),
                         min(len(body), len(want_body)))
            raise Fail(f"stream {sid}: body of {len(body)} bytes, want {len(want_body)}; "
                       f"first difference at byte {first}")


def case_a(c):
    line = c.upgrade("/bytes/100000")
    c.run_until(lambda: c.responses[1]["ended"])
    c.check_stream(1, pattern(100000))
    return f"{line!r} stream 1: 100000 bytes correct, window {STREAM_WINDOW} respected"


def case_b(c):
    case_a(c)
    # Frames on the closed stream 1, written raw (h2 refuses them on a closed
    # stream); RFC 9113 §5.1 says a peer must ignore WINDOW_UPDATE and RST_STREAM
    # there for a while, and PRIORITY is allowed on any stream.
    wu = WindowUpdateFrame(1)
    wu.window_increment = 1024
    pr = PriorityFrame(1)
    pr.depends_on = 0
    pr.stream_weight = 16
    pr.exclusive = False
    rst = RstStreamFrame(1)
    rst.error_code = 8  # CANCEL
    c.flush()
    c.sock.sendall(wu.serialize() + pr.serialize() + rst.serialize())
    sid = c.conn.get_next_available_stream_id()
    if sid != 3:
        raise Fail(f"next stream id is {sid}, not 3")
    c.conn.send_headers(sid, [
        (":method", "GET"), (":scheme", "http"),
        (":authority", f"127.0.0.1:{c.port}"), (":path", "/"),
    ], end_stream=True)
    c.stream_credit[sid] = STREAM_WINDOW
    c.responses[sid] = {"headers": None, "data": bytearray(), "ended": False}
    c.flush()
    c.run_until(lambda: c.responses[sid]["ended"])
    c.check_stream(sid, b"hello world\n")
    # Give a GOAWAY or late reset a moment to show up.
    c.sock.settimeout(0.3)
    try:
        data = c.sock.recv(65536)
        if data == b"":
            raise Fail("server closed the connection after stream 3")
        c.feed(data)
    except socket.timeout:
        pass
    return ("stream 1: 100000 bytes; WINDOW_UPDATE+PRIORITY+RST_STREAM on stream 1; "
            "stream 3: hello world; connection still up")


def main():
    if len(sys.argv) != 3 or sys.argv[2] not in ("A", "B"):
        print("usage: h2_upgrade.py PORT A|B", file=sys.stderr)
        return 2
    port = int(sys.argv[1])
    try:
        c = Client(port)
        detail = {"A": case_a, "B": case_b}[sys.argv[2]](c)
        c.conn.close_connection()
        c.flush()
        c.sock.close()
    except Fail as e:
        print(f"ERROR {e}")
        return 1
    except (OSError, h2.exceptions.H2Error) as e:
        print(f"ERROR {type(e).__name__}: {e}")
        return 1
    print(f"OK protocol=h2c-upgrade {detail}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
