#!/usr/bin/env python3
"""Upgrade requests the server must refuse, written as raw bytes, for interop/run.

    python3 interop/raw_http.py PORT CASE

Each request asks for h2c in a way RFC 7540 §3.2 / RFC 9113 §3.1 does not allow
(or the request cannot be upgraded). The server must answer it over HTTP/1.1 as
if the Upgrade were not there: `HTTP/1.1 200` with body `hello world\\n`, never a
`101`. For HTTP/1.1 requests the connection must then still be a working
HTTP/1.1 connection: a second request (GET /bytes/5) on it must be answered
`HTTP/1.1 200` with `abcde`.

Cases:
  two-settings   two HTTP2-Settings header fields (RFC 7540 §3.2.1: exactly one)
  bad-base64     HTTP2-Settings that is not base64url ('+' and '/' and '!')
  upgrade-h2     Upgrade: h2 (the TLS-only token; RFC 9113 §3.1)
  http10         HTTP/1.0 request with Upgrade: h2c (RFC 9110 §7.8: an upgrade
                 is not honoured on an HTTP/1.0 request)

Prints `OK <details>` and exits 0, or `ERROR <reason>` and exits 1.
"""

import socket
import sys

TIMEOUT = 10
GOOD_SETTINGS = "AAMAAABkAAQCAAAAAAIAAAAA"  # what curl 7.88 sends


def request(case, port):
    host = f"Host: 127.0.0.1:{port}\r\n"
    conn = "Connection: Upgrade, HTTP2-Settings\r\n"
    if case == "two-settings":
        return (f"GET / HTTP/1.1\r\n{host}{conn}Upgrade: h2c\r\n"
                f"HTTP2-Settings: {GOOD_SETTINGS}\r\n"
                f"HTTP2-Settings: {GOOD_SETTINGS}\r\n\r\n")
    if case == "bad-base64":
        return (f"GET / HTTP/1.1\r\n{host}{conn}Upgrade: h2c\r\n"
                "HTTP2-Settings: AAMA+/AAZA!!\r\n\r\n")
    if case == "upgrade-h2":
        return (f"GET / HTTP/1.1\r\n{host}{conn}Upgrade: h2\r\n"
                f"HTTP2-Settings: {GOOD_SETTINGS}\r\n\r\n")
    if case == "http10":
        return (f"GET / HTTP/1.0\r\n{host}{conn}Upgrade: h2c\r\n"
                f"HTTP2-Settings: {GOOD_SETTINGS}\r\n\r\n")
    raise SystemExit(f"unknown case {case}")


class Fail(Exception):
    pass


class Reader:
    def __init__(self, sock):
        self.sock = sock
        self.buf = b""

    def more(self):
        try:
            d = self.sock.recv(65536)
        except socket.timeout:
            raise Fail(f"timed out after {TIMEOUT}s; have {self.buf[:200]!r}")
        self.buf += d
        return bool(d)

    def response(self, allow_close_delimited):
        """Reads one response; returns (status line, headers dict, body)."""
        while b"\r\n\r\n" not in self.buf:
            if not self.more():
                raise Fail(f"connection closed before a response head; got {self.buf[:200]!r}")
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        status = lines[0]
        headers = {}
        for line in lines[1:]:
            k, _, v = line.partition(":")
            headers[k.strip().lower()] = v.strip()
        if "content-length" in headers:
            n = int(headers["content-length"])
            while len(self.buf) < n:
                if not self.more():
                    raise Fail(f"{status}: body cut at {len(self.buf)} of {n} bytes")
            body, self.buf = self.buf[:n], self.buf[n:]
        elif allow_close_delimited:
            while self.more():
                pass
            body, self.buf = self.buf, b""
        else:
            raise Fail(f"{status}: no content-length: {headers}")
        return status, headers, body


def main():
    if len(sys.argv) != 3:
        print("usage: raw_http.py PORT CASE", file=sys.stderr)
        return 2
    port, case = int(sys.argv[1]), sys.argv[2]
    req = request(case, port)
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
        s.sendall(req.encode("latin-1"))
        r = Reader(s)
        status, headers, body = r.response(allow_close_delimited=True)
        if status.split(" ")[1:2] == ["101"]:
            raise Fail(f"got {status!r}: the upgrade was accepted")
        if not status.startswith("HTTP/1.1 200"):
            raise Fail(f"got {status!r}, want HTTP/1.1 200")
        if body != b"hello world\n":
            raise Fail(f"{status}: body {body[:80]!r}, want b'hello world\\n'")
        detail = f"{status!r} body ok"
        if case == "http10":
            # HTTP/1.0 without keep-alive: the server closes after the response.
            s.settimeout(3)
            if r.buf or r.more():
                raise Fail(f"bytes after the response on an HTTP/1.0 connection: {r.buf[:80]!r}")
            detail += ", connection closed (HTTP/1.0)"
        else:
            s.sendall(f"GET /bytes/5 HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode())
            status2, _, body2 = r.response(allow_close_delimited=False)
            if not status2.startswith("HTTP/1.1 200") or body2 != b"abcde":
                raise Fail(f"second request on the connection: {status2!r} {body2[:80]!r}")
            detail += "; next request on the connection: HTTP/1.1 200 abcde"
        s.close()
    except Fail as e:
        print(f"ERROR {e}")
        return 1
    except OSError as e:
        print(f"ERROR {type(e).__name__}: {e}")
        return 1
    print(f"OK protocol=http/1.1 {detail}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
