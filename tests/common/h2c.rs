//! The cleartext upgrade (RFC 7540 §3.2): the request that asks for it, and the
//! handshake up to the point where the raw HTTP/2 client takes the connection over.
//!
//! ```text
//! client                                  server
//!   | GET, Upgrade: h2c, HTTP2-Settings     |
//!   | (and the body, if any)           ---> |
//!   |                                  <--- | 101 Switching Protocols
//!   |        (here `upgrade` returns)       |
//!   | preface, SETTINGS                ---> |
//!   |                                  <--- | SETTINGS, stream 1's response
//! ```
//!
//! [`raw_upgrade`] sends the preface too.

use std::net::SocketAddr;

use tokio::io::{AsyncRead, AsyncWrite};

use super::h1::{H1Conn, H1Response};
use super::h2frame;
use super::h2raw::{H2Raw, RAW_SETTINGS};

/// A GET of `/` that asks for the upgrade; `HTTP2-Settings` carries
/// MAX_CONCURRENT_STREAMS = 100. Tests edit it with `str::replace`.
pub const UPGRADE_GET: &str = "GET / HTTP/1.1\r\nHost: example\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABk\r\n\r\n";

/// base64url without padding (RFC 4648 §5), as `HTTP2-Settings` carries it.
pub fn base64url(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// `HTTP2-Settings` value for `settings`.
pub fn http2_settings(settings: &[(u16, u32)]) -> String {
    base64url(&h2frame::settings_payload(settings))
}

/// One field of each kind that says a request came through a proxy (`Via`,
/// `Forwarded`, and the de facto `X-Forwarded-*` and `X-Real-IP`), as a header
/// line: what an h2c upgrade is declined for by default.
pub const FORWARDING_FIELDS: [&str; 6] = [
    "Via: 1.1 proxy",
    "Forwarded: for=192.0.2.1",
    "X-Forwarded-For: 203.0.113.7",
    "X-Forwarded-Host: example.com",
    "X-Forwarded-Proto: https",
    "X-Real-IP: 192.0.2.1",
];

/// The settings the upgrade tests announce unless they need others.
pub const CLIENT_SETTINGS: &[(u16, u32)] = &[
    (h2frame::SETTINGS_MAX_CONCURRENT_STREAMS, 100),
    (h2frame::SETTINGS_ENABLE_PUSH, 0),
];

/// The fields that ask for an h2c upgrade (RFC 7540 §3.2), announcing `settings`.
pub fn upgrade_fields(settings: &[(u16, u32)]) -> String {
    format!(
        "Connection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: {}\r\n",
        http2_settings(settings)
    )
}

/// A complete upgrade request: `method path`, Host, the upgrade fields announcing
/// [`CLIENT_SETTINGS`], `extra` fields (each ending in CRLF), and `body` with a
/// Content-Length when it is not empty.
pub fn upgrade_request(method: &str, path: &str, extra: &str, body: &[u8]) -> Vec<u8> {
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{}{extra}",
        upgrade_fields(CLIENT_SETTINGS)
    );
    if !body.is_empty() {
        req.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    req.push_str("\r\n");
    let mut out = req.into_bytes();
    out.extend_from_slice(body);
    out
}

/// Asserts a `101` switching to h2c (RFC 7540 §3.2).
pub fn assert_switching_protocols(res: &H1Response) {
    assert_eq!(res.status, 101, "expected 101, got {res:?}");
    assert_eq!(res.version, "HTTP/1.1");
    assert!(
        res.header("upgrade")
            .is_some_and(|v| v.eq_ignore_ascii_case("h2c")),
        "101 without upgrade: h2c: {res:?}"
    );
    assert!(
        res.connection_has("upgrade"),
        "101 without connection: upgrade: {res:?}"
    );
}

/// The raw HTTP/2 client on the connection of `conn`, which has just read a `101`
/// (what it read past the `101` is handed on).
pub fn after_101<S>(conn: H1Conn<S>) -> H2Raw<S> {
    let (io, leftover) = conn.into_parts();
    H2Raw::new(io, leftover)
}

/// Sends the upgrade `request` on `io`, reads the `101` (asserting its status and
/// fields), and hands the connection to a raw HTTP/2 client. Nothing of HTTP/2 is
/// sent yet: the caller sends the preface.
pub async fn upgrade_on<S>(io: S, request: &[u8]) -> (H1Response, H2Raw<S>)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut conn = H1Conn::new(io);
    conn.send(request).await;
    let res = conn.read_head().await;
    assert_switching_protocols(&res);
    (res, after_101(conn))
}

/// [`upgrade_on`] a new connection to `addr`.
pub async fn upgrade(addr: SocketAddr, request: &[u8]) -> (H1Response, H2Raw) {
    let conn = H1Conn::connect(addr).await;
    upgrade_on(conn.stream, request).await
}

/// [`upgrade_on`] `io` with `request` (often [`UPGRADE_GET`]), then the preface
/// and [`RAW_SETTINGS`].
pub async fn raw_upgrade<S>(io: S, request: &str) -> H2Raw<S>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let (_, mut h2) = upgrade_on(io, request.as_bytes()).await;
    h2.send_preface(RAW_SETTINGS).await;
    h2
}
