//! The cleartext upgrade to HTTP/2 (RFC 7540 §3.2, RFC 9110 §7.8).
//!
//! ```text
//!  client                                         server
//!    | GET / HTTP/1.1                                |
//!    | Connection: Upgrade, HTTP2-Settings           |
//!    | Upgrade: h2c                                  |
//!    | HTTP2-Settings: <base64url SETTINGS payload>  |
//!    | [Expect: 100-continue]                        |  validate everything (prepare)
//!    |---------------------------------------------->|  policy decides
//!    |                          HTTP/1.1 100 Continue|  only if expected
//!    |<----------------------------------------------|
//!    | request body (Content-Length or chunked)      |  read whole, bounded
//!    |---------------------------------------------->|
//!    |  HTTP/1.1 101 Switching Protocols + SETTINGS  |  one write
//!    |<----------------------------------------------|
//!    | PRI * HTTP/2.0 preface + SETTINGS             |  checked and removed
//!    |---------------------------------------------->|
//!    |           HEADERS/DATA on stream 1 (response) |  stream 1 = the request
//!    |<----------------------------------------------|
//!    | HEADERS on stream 3, 5, ...                   |  plain HTTP/2 from here
//! ```
//!
//! Any check that fails before the `101` answers the request over HTTP/1.1 and
//! keeps the connection on HTTP/1.1: nothing is lost. `h2` has no API for stream 1,
//! so [`adapter::UpgradeIo`] presents the upgraded socket to `h2` as if a prior-knowledge
//! client had sent the preface, the client's SETTINGS and the request as HEADERS.
//!
//! That relies on `h2` behaviour the RFC requires but `h2` does not promise: the
//! handshake flushes its SETTINGS before reading, reads the preface before any
//! frame, acknowledges each SETTINGS before reading the next frame, and accepts a
//! HEADERS frame as the first frame after SETTINGS. The `h2` version is pinned and
//! the interop suite exercises all of it with real clients.

mod frame;
pub(crate) mod handoff;
pub(crate) mod adapter;
pub(crate) mod settings;
pub(crate) mod stream1;

use bytes::{Bytes, BytesMut};
use http::{header, Method, Version};

use crate::config::Config;
use crate::h1::parse::{BodyLength, RequestHead, UpgradeAsk};
use crate::policy::{DeclineReason, UpgradeDecision};
use crate::sniff::PREFACE;

/// Validates an upgrade request and, when it can and may be upgraded, returns the
/// bytes `h2` is to read first: the client preface, the client's SETTINGS (from
/// `HTTP2-Settings`), and stream 1's HEADERS.
pub(crate) fn prepare(head: &RequestHead, cfg: &Config) -> Result<Bytes, DeclineReason> {
    let parts = &head.parts;
    if head.upgrade == UpgradeAsk::H2Tls {
        return Err(DeclineReason::TlsToken);
    }
    if !cfg.h2c_upgrade {
        return Err(DeclineReason::Disabled);
    }
    if parts.version != Version::HTTP_11 {
        return Err(DeclineReason::Http10);
    }
    if parts.method == Method::CONNECT {
        return Err(DeclineReason::Connect);
    }
    if !(head.connection_upgrade && head.connection_settings) {
        return Err(DeclineReason::ConnectionTokens);
    }
    let mut values = parts.headers.get_all("http2-settings").iter();
    let value = match (values.next(), values.next()) {
        (Some(v), None) => v,
        (None, _) => return Err(DeclineReason::SettingsCount(0)),
        (Some(_), Some(_)) => {
            return Err(DeclineReason::SettingsCount(2 + values.count()));
        }
    };
    let payload = settings::decode_http2_settings(value.as_bytes())
        .map_err(|e| DeclineReason::InvalidSettings(e.to_string()))?;
    if let (false, BodyLength::Length(n)) = (cfg.stream_upgrade_body, head.body) {
        if n > cfg.max_upgrade_body_size as u64 {
            return Err(DeclineReason::BodyTooLarge {
                limit: cfg.max_upgrade_body_size,
            });
        }
    }
    let mut preamble = BytesMut::with_capacity(PREFACE.len() + 9 + payload.len() + 256);
    preamble.extend_from_slice(PREFACE);
    settings::write_settings_frame(&payload, &mut preamble);
    stream1::encode_stream1_headers(parts, cfg.max_head_size, &mut preamble)
        .map_err(|e| DeclineReason::InvalidRequest(e.to_string()))?;
    if let Some(policy) = &cfg.policy {
        if let UpgradeDecision::Decline(reason) = policy(parts) {
            return Err(DeclineReason::Policy(reason));
        }
    }
    debug_assert!(parts.headers.contains_key(header::UPGRADE));
    Ok(preamble.freeze())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::builder::Builder;
    use crate::h1::parse::{parse_request, Limits};

    fn head(s: &str) -> RequestHead {
        let mut b = BytesMut::from(s);
        let limits = Limits {
            max_head_size: 65536,
            max_headers: 100,
            max_request_line: 8192,
        };
        parse_request(&mut b, &limits).unwrap().unwrap()
    }

    fn cfg() -> Config {
        Builder::new().config().clone()
    }

    const GOOD: &str = "GET / HTTP/1.1\r\nHost: a\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQCAAAAAAIAAAAA\r\n";

    #[test]
    fn accepts_a_valid_request() {
        let pre = prepare(&head(&format!("{GOOD}\r\n")), &cfg()).unwrap();
        assert!(pre.starts_with(PREFACE));
        // SETTINGS frame: 18-byte payload (three settings).
        assert_eq!(&pre[24..33], &[0, 0, 18, 4, 0, 0, 0, 0, 0]);
        // Then a HEADERS frame on stream 1 with END_STREAM | END_HEADERS.
        let h = &pre[24 + 9 + 18..];
        assert_eq!((h[3], h[4]), (1, 5));
        assert_eq!(&h[5..9], &[0, 0, 0, 1]);
    }

    #[test]
    fn refusals() {
        let cases: Vec<(String, DeclineReason)> = vec![
            (
                GOOD.replace("HTTP/1.1\r\nHost: a", "HTTP/1.0\r\nHost: a") + "\r\n",
                DeclineReason::Http10,
            ),
            (
                GOOD.replace("Upgrade: h2c", "Upgrade: h2") + "\r\n",
                DeclineReason::TlsToken,
            ),
            (
                GOOD.replace("Connection: Upgrade, HTTP2-Settings", "Connection: Upgrade") + "\r\n",
                DeclineReason::ConnectionTokens,
            ),
            (
                format!("{GOOD}HTTP2-Settings: AAMAAABk\r\n\r\n"),
                DeclineReason::SettingsCount(2),
            ),
            (
                GOOD.replace("HTTP2-Settings: AAMAAABkAAQCAAAAAAIAAAAA\r\n", "") + "\r\n",
                DeclineReason::SettingsCount(0),
            ),
            (
                format!("{GOOD}Content-Length: 300000\r\n\r\n"),
                DeclineReason::BodyTooLarge {
                    limit: crate::config::DEFAULT_MAX_UPGRADE_BODY_SIZE,
                },
            ),
        ];
        let mut buffered = Builder::new();
        buffered.stream_upgrade_body(false);
        for (req, want) in cases {
            assert_eq!(
                prepare(&head(&req), buffered.config()).unwrap_err(),
                want,
                "{req:?}"
            );
        }
        // Streamed bodies have no size cap.
        let big = format!("{GOOD}Content-Length: 300000\r\n\r\n");
        assert!(prepare(&head(&big), &cfg()).is_ok());
        let bad = GOOD.replace("AAMAAABkAAQCAAAAAAIAAAAA", "AAMAAAB+") + "\r\n";
        assert!(matches!(
            prepare(&head(&bad), &cfg()),
            Err(DeclineReason::InvalidSettings(_))
        ));
        // ENABLE_PUSH = 2 is out of range.
        let bad = GOOD.replace("AAMAAABkAAQCAAAAAAIAAAAA", "AAIAAAAC") + "\r\n";
        assert!(matches!(
            prepare(&head(&bad), &cfg()),
            Err(DeclineReason::InvalidSettings(_))
        ));
    }

    #[test]
    fn disabled_and_policy() {
        let h = head(&format!("{GOOD}\r\n"));
        let mut b = Builder::new();
        b.h2c_upgrade(false);
        assert_eq!(
            prepare(&h, b.config()).unwrap_err(),
            DeclineReason::Disabled
        );
        let mut b = Builder::new();
        b.upgrade_policy(|p| {
            if p.uri.path() == "/" {
                UpgradeDecision::decline("not here")
            } else {
                UpgradeDecision::Upgrade
            }
        });
        assert_eq!(
            prepare(&h, b.config()).unwrap_err(),
            DeclineReason::Policy("not here".into())
        );
    }
}
