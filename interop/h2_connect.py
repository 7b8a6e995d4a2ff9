#!/usr/bin/env python3
"""Python `h2` opening an RFC 8441 extended CONNECT tunnel, for interop/run.

    python3 interop/h2_connect.py PORT prior|upgrade

The server runs with --enable-connect-protocol; its demo echoes a tunnel opened
with CONNECT /echo and :protocol echo.

  prior    HTTP/2 with prior knowledge; the tunnel is stream 1.
  upgrade  The h2c upgrade with GET / (stream 1, `hello world`), then the tunnel
           on stream 3.

Either way the client waits for the server's SETTINGS_ENABLE_CONNECT_PROTOCOL = 1,
opens the tunnel, checks that the 200 leaves the stream open and carries no
content-length, sends 300000 bytes as the server's windows allow while it reads
the echo (its own stream window is 16384 bytes, given back only as it reads, and
it counts that the server never sends past it), ends its side, and checks that
the echo is identical and ends with END_STREAM, with no reset and no GOAWAY.

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

STREAM_WINDOW = 16384
SIZE = 300000
TIMEOUT = 10


class Fail(Exception):
    pass


def payload(n):
    # Not periodic over a frame: a lost, doubled or reordered chunk shows.
    return bytes((i * 7 + i // 251) % 256 for i in range(n))


class Client:
    def __init__(self, port):
        self.port = port
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        cfg = h2.config.H2Configuration(client_side=True, header_encoding="utf-8")
        self.conn = h2.connection.H2Connection(config=cfg)
        self.conn.local_settings = h2.settings.Settings(
            client=True,
            initial_values={SettingCodes.INITIAL_WINDOW_SIZE: STREAM_WINDOW},
        )
        self.streams = {}  # id -> {"headers", "data", "ended", "credit"}
        self.settings_seen = False

    def track(self, sid):
        self.streams[sid] = {"headers": None, "data": bytearray(), "ended": False,
                             "credit": STREAM_WINDOW}

    def flush(self):
        out = self.conn.data_to_send()
        if out:
            self.credit_window_updates(out)
            self.sock.sendall(out)

    def credit_window_updates(self, out):
        """Counts the window each WINDOW_UPDATE in `out` (whole frames, as h2
        returns them) gives a stream: what the server may send is counted here
        from the frames themselves, not from h2's own accounting."""
        view = memoryview(out)
        while len(view) >= 9:
            length = int.from_bytes(view[0:3], "big")
            sid = int.from_bytes(view[5:9], "big") & 0x7FFFFFFF
            if view[3] == 0x8 and sid in self.streams:
                inc = int.from_bytes(view[9:13], "big") & 0x7FFFFFFF
                self.streams[sid]["credit"] += inc
            view = view[9 + length:]

    def prior_knowledge(self):
        self.conn.initiate_connection()
        self.flush()

    def upgrade(self):
        settings = self.conn.initiate_upgrade_connection()
        if isinstance(settings, bytes):
            settings = settings.decode("ascii")
        self.sock.sendall((
            "GET / HTTP/1.1\r\n"
            f"Host: 127.0.0.1:{self.port}\r\n"
            "Connection: Upgrade, HTTP2-Settings\r\n"
            "Upgrade: h2c\r\n"
            f"HTTP2-Settings: {settings}\r\n"
            "\r\n").encode("ascii"))
        buf = b""
        while b"\r\n\r\n" not in buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise Fail(f"closed before the 101; got {buf[:200]!r}")
            buf += chunk
        head, rest = buf.split(b"\r\n\r\n", 1)
        status_line = head.split(b"\r\n", 1)[0]
        if not status_line.startswith(b"HTTP/1.1 101"):
            raise Fail(f"expected 101, got {status_line!r}")
        self.track(1)
        self.flush()
        if rest:
            self.feed(rest)

    def feed(self, data):
        try:
            events = self.conn.receive_data(data)
        except h2.exceptions.FlowControlError as e:
            raise Fail(f"server broke flow control: {e}")
        except h2.exceptions.ProtocolError as e:
            raise Fail(f"h2 protocol error: {e!r}")
        for ev in events:
            if isinstance(ev, h2.events.RemoteSettingsChanged):
                self.settings_seen = True
            elif isinstance(ev, h2.events.ResponseReceived):
                self.streams[ev.stream_id]["headers"] = dict(ev.headers)
                if ev.stream_ended is not None:
                    self.streams[ev.stream_id]["ended"] = True
            elif isinstance(ev, h2.events.DataReceived):
                s = self.streams[ev.stream_id]
                s["credit"] -= ev.flow_controlled_length
                if s["credit"] < 0:
                    raise Fail(f"server sent {-s['credit']} bytes past stream "
                               f"{ev.stream_id}'s window")
                s["data"] += ev.data
                # Read: the window goes back (h2 decides when a WINDOW_UPDATE is due).
                self.conn.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
            elif isinstance(ev, h2.events.StreamEnded):
                self.streams[ev.stream_id]["ended"] = True
            elif isinstance(ev, h2.events.StreamReset):
                raise Fail(f"server reset stream {ev.stream_id}: {ev.error_code!r}")
            elif isinstance(ev, h2.events.ConnectionTerminated):
                raise Fail(f"server sent GOAWAY: {ev.error_code!r} {ev.additional_data!r}")
        self.flush()

    def read_once(self):
        try:
            data = self.sock.recv(65536)
        except socket.timeout:
            raise Fail(f"nothing from the server for {TIMEOUT}s")
        if not data:
            raise Fail("server closed the connection")
        self.feed(data)

    def run_until(self, done):
        while not done():
            self.read_once()

    def tunnel(self):
        self.run_until(lambda: self.settings_seen)
        if not self.conn.remote_settings.enable_connect_protocol:
            raise Fail("the server's SETTINGS do not enable extended CONNECT")
        sid = self.conn.get_next_available_stream_id()
        self.track(sid)
        self.conn.send_headers(sid, [
            (":method", "CONNECT"), (":protocol", "echo"), (":scheme", "http"),
            (":authority", f"127.0.0.1:{self.port}"), (":path", "/echo"),
        ])
        self.flush()
        s = self.streams[sid]
        self.run_until(lambda: s["headers"] is not None)
        status = s["headers"].get(":status")
        if status != "200":
            raise Fail(f"tunnel answered {status!r}")
        if s["ended"]:
            raise Fail("the 200 ended the stream")
        if "content-length" in s["headers"]:
            raise Fail(f"content-length on the 200: {s['headers']['content-length']}")
        data = payload(SIZE)
        sent = 0
        while sent < SIZE:
            room = min(self.conn.local_flow_control_window(sid),
                       self.conn.max_outbound_frame_size, SIZE - sent)
            if room > 0:
                self.conn.send_data(sid, data[sent:sent + room])
                sent += room
                self.flush()
            else:
                self.read_once()
        self.conn.end_stream(sid)
        self.flush()
        self.run_until(lambda: s["ended"])
        got = bytes(s["data"])
        if got != data:
            first = next((i for i, (a, b) in enumerate(zip(got, data)) if a != b),
                         min(len(got), len(data)))
            raise Fail(f"echo of {len(got)} bytes, want {len(data)}; "
                       f"first difference at byte {first}")
        return sid


def main():
    if len(sys.argv) != 3 or sys.argv[2] not in ("prior", "upgrade"):
        print("usage: h2_connect.py PORT prior|upgrade", file=sys.stderr)
        return 2
    try:
        c = Client(int(sys.argv[1]))
        if sys.argv[2] == "prior":
            c.prior_knowledge()
            protocol = "h2-prior-knowledge"
        else:
            c.upgrade()
            c.run_until(lambda: c.streams[1]["ended"])
            if bytes(c.streams[1]["data"]) != b"hello world\n":
                raise Fail(f"stream 1: {bytes(c.streams[1]['data'])!r}")
            protocol = "h2c-upgrade"
        sid = c.tunnel()
        c.conn.close_connection()
        c.flush()
        c.sock.close()
    except Fail as e:
        print(f"ERROR {e}")
        return 1
    except (OSError, h2.exceptions.H2Error) as e:
        print(f"ERROR {type(e).__name__}: {e}")
        return 1
    print(f"OK protocol={protocol} tunnel on stream {sid}: {SIZE} bytes echoed, "
          f"window {STREAM_WINDOW} respected, END_STREAM both ways")
    return 0


if __name__ == "__main__":
    sys.exit(main())
