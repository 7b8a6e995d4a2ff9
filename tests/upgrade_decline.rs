//! Upgrade requests the server declines (RFC 7540 §3.2: a server that does not
//! switch ignores `Upgrade` and answers over HTTP/1.1): one table of every
//! [`DeclineReason`], including the upgrade policy and the h2c smuggling guard
//! (`decline_proxied`), each answered over HTTP/1.1 with the reason handed to the
//! service; and the requests next to them that still upgrade.
#![cfg(feature = "demo")] // the demo service is behind the `demo` feature (on by default)

mod common;

use std::net::{IpAddr, Ipv4Addr};

use common::h1::{self, H1Conn};
use common::h2c::{base64url, http2_settings, upgrade, upgrade_request, CLIENT_SETTINGS};
use common::h2frame::{
    SETTINGS_ENABLE_PUSH, SETTINGS_INITIAL_WINDOW_SIZE, SETTINGS_MAX_FRAME_SIZE,
};
use common::server::{conn_result, tcp_conn, Server};
use common::service::{pattern, recorder};
use h2c_mux::demo::Demo;
use h2c_mux::{Builder, DeclineReason, Protocol, UpgradeDecision};

const HELLO: &[u8] = b"hello world\n";

fn root_upgrade() -> Vec<u8> {
    upgrade_request("GET", "/", "", b"")
}

/// An upgrade request for `/` that carries HTTP2-Settings `value`.
fn with_settings(value: &str) -> Vec<u8> {
    format!(
        "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: Upgrade, HTTP2-Settings\r\n\
         Upgrade: h2c\r\nHTTP2-Settings: {value}\r\n\r\n"
    )
    .into_bytes()
}

/// Buffered upgrade bodies (no streaming) of at most 16 bytes.
fn buffered_up_to_16() -> Builder {
    let mut builder = Builder::new();
    builder.stream_upgrade_body(false).max_upgrade_body_size(16);
    builder
}

/// `/` stays on HTTP/1.1 by policy; other paths upgrade.
fn root_stays_on_http1() -> Builder {
    let mut builder = Builder::new();
    builder.upgrade_policy(|head: &http::request::Parts| {
        if head.uri.path() == "/" {
            UpgradeDecision::decline("root stays on http/1.1")
        } else {
            UpgradeDecision::Upgrade
        }
    });
    builder
}

/// Upgrades through proxies allowed, but `decline_proxied` with no proxy address
/// listed: forwarding fields decide.
fn decline_proxied() -> Builder {
    let mut builder = Builder::new();
    builder
        .h2c_through_proxies(true)
        .upgrade_policy(h2c_mux::decline_proxied(Vec::<IpAddr>::new()));
    builder
}

/// `decline_proxied` with the loopback address listed as a proxy.
fn loopback_is_a_proxy() -> Builder {
    let mut builder = Builder::new();
    builder.upgrade_policy(h2c_mux::decline_proxied([IpAddr::V4(Ipv4Addr::LOCALHOST)]));
    builder
}

/// One upgrade request the server must decline.
struct Declined {
    name: &'static str,
    builder: fn() -> Builder,
    request: Vec<u8>,
    /// What the demo answers over HTTP/1.1.
    body: Vec<u8>,
    /// The reason the service must see.
    reason: fn(&DeclineReason) -> bool,
    /// The reason's text, where a case pins it.
    text: Option<&'static str>,
    /// Served by `Builder::serve`, the one path that knows the peer's address (a
    /// policy reads it), instead of `serve_connection` on one accepted socket (whose
    /// result is checked).
    needs_peer: bool,
}

fn declined_upgrades() -> Vec<Declined> {
    let invalid = |r: &DeclineReason| matches!(r, DeclineReason::InvalidSettings(_));
    // Declined by default, whatever the policy.
    let proxied = |name, field: &str, text| Declined {
        name,
        builder: Builder::new,
        request: upgrade_request("GET", "/", &format!("{field}\r\n"), b""),
        body: HELLO.to_vec(),
        reason: |r| matches!(r, DeclineReason::Proxied(_)),
        text: Some(text),
        needs_peer: false,
    };
    let over_the_bound: Vec<u8> = (0..100u8).collect();
    let chunked_over_the_bound: Vec<u8> = (b'a'..=b'z').cycle().take(100).collect();
    let mut chunked = upgrade_request("POST", "/echo", "Transfer-Encoding: chunked\r\n", b"");
    chunked.extend_from_slice(&h1::chunked(&chunked_over_the_bound, 10));
    let hello = |name, builder, request, reason| Declined {
        name,
        builder,
        request,
        body: HELLO.to_vec(),
        reason,
        text: None,
        needs_peer: false,
    };
    vec![
        hello(
            "two HTTP2-Settings fields",
            Builder::new,
            upgrade_request("GET", "/", "HTTP2-Settings: AAMAAABk\r\n", b""),
            |r| *r == DeclineReason::SettingsCount(2),
        ),
        hello(
            "no HTTP2-Settings field",
            Builder::new,
            b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\n\r\n"
                .to_vec(),
            |r| *r == DeclineReason::SettingsCount(0),
        ),
        // '+' and '/' belong to standard base64, not to base64url.
        hello(
            "HTTP2-Settings not base64url",
            Builder::new,
            with_settings("AAMAAAB+AAQA/wAA"),
            invalid,
        ),
        hello(
            "ENABLE_PUSH 2",
            Builder::new,
            with_settings(&http2_settings(&[(SETTINGS_ENABLE_PUSH, 2)])),
            invalid,
        ),
        hello(
            "INITIAL_WINDOW_SIZE 2^31",
            Builder::new,
            with_settings(&http2_settings(&[(SETTINGS_INITIAL_WINDOW_SIZE, 1 << 31)])),
            invalid,
        ),
        hello(
            "MAX_FRAME_SIZE 16383",
            Builder::new,
            with_settings(&http2_settings(&[(SETTINGS_MAX_FRAME_SIZE, 16_383)])),
            invalid,
        ),
        hello(
            "MAX_FRAME_SIZE 2^24",
            Builder::new,
            with_settings(&http2_settings(&[(SETTINGS_MAX_FRAME_SIZE, 1 << 24)])),
            invalid,
        ),
        // Four bytes: not a whole number of 6-byte settings.
        hello(
            "HTTP2-Settings payload of 4 bytes",
            Builder::new,
            with_settings(&base64url(&[0, 3, 0, 0])),
            invalid,
        ),
        hello(
            "Connection without the HTTP2-Settings token",
            Builder::new,
            format!(
                "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\
                 HTTP2-Settings: {}\r\n\r\n",
                http2_settings(CLIENT_SETTINGS)
            )
            .into_bytes(),
            |r| *r == DeclineReason::ConnectionTokens,
        ),
        hello(
            "upgrade token h2 in cleartext",
            Builder::new,
            format!(
                "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: Upgrade, HTTP2-Settings\r\n\
                 Upgrade: h2\r\nHTTP2-Settings: {}\r\n\r\n",
                http2_settings(CLIENT_SETTINGS)
            )
            .into_bytes(),
            |r| *r == DeclineReason::TlsToken,
        ),
        hello(
            "upgrade in HTTP/1.0",
            Builder::new,
            format!(
                "GET / HTTP/1.0\r\nHost: 127.0.0.1\r\nConnection: keep-alive, Upgrade, HTTP2-Settings\r\n\
                 Upgrade: h2c\r\nHTTP2-Settings: {}\r\n\r\n",
                http2_settings(CLIENT_SETTINGS)
            )
            .into_bytes(),
            |r| *r == DeclineReason::Http10,
        ),
        Declined {
            name: "buffered body over the bound (content-length)",
            builder: buffered_up_to_16,
            request: upgrade_request("POST", "/echo", "", &over_the_bound),
            body: over_the_bound,
            reason: |r| *r == DeclineReason::BodyTooLarge { limit: 16 },
            text: None,
            needs_peer: false,
        },
        // The whole body reaches the service, including what was read before the
        // bound.
        Declined {
            name: "buffered body over the bound (chunked)",
            builder: buffered_up_to_16,
            request: chunked,
            body: chunked_over_the_bound,
            reason: |r| *r == DeclineReason::BodyTooLarge { limit: 16 },
            text: None,
            needs_peer: false,
        },
        hello(
            "declined by the upgrade policy",
            root_stays_on_http1,
            root_upgrade(),
            |r| *r == DeclineReason::Policy("root stays on http/1.1".into()),
        ),
        proxied(
            "proxied: Via",
            "Via: 1.1 proxy",
            "request came through a proxy (via)",
        ),
        Declined {
            reason: |r| *r == DeclineReason::Proxied("x-forwarded-for"),
            ..proxied(
                "proxied: X-Forwarded-For",
                "X-Forwarded-For: 203.0.113.7",
                "request came through a proxy (x-forwarded-for)",
            )
        },
        proxied(
            "proxied: X-Forwarded-Host",
            "X-Forwarded-Host: example.com",
            "request came through a proxy (x-forwarded-host)",
        ),
        proxied(
            "proxied: X-Forwarded-Proto",
            "X-Forwarded-Proto: https",
            "request came through a proxy (x-forwarded-proto)",
        ),
        proxied(
            "proxied: Forwarded",
            "Forwarded: for=192.0.2.1",
            "request came through a proxy (forwarded)",
        ),
        proxied(
            "proxied: X-Real-IP",
            "X-Real-IP: 192.0.2.1",
            "request came through a proxy (x-real-ip)",
        ),
        // Allowed through proxies, `decline_proxied` still declines by field.
        Declined {
            builder: decline_proxied,
            reason: |r| matches!(r, DeclineReason::Policy(why) if why.contains("(via)")),
            ..proxied(
                "proxied, allowed, declined by decline_proxied",
                "Via: 1.1 proxy",
                "declined by policy: request came through a proxy (via)",
            )
        },
        // The policy sees the peer's address: loopback listed as a proxy.
        Declined {
            text: Some("declined by policy: peer is a listed proxy"),
            needs_peer: true,
            ..hello(
                "peer is a listed proxy",
                loopback_is_a_proxy,
                root_upgrade(),
                |r| matches!(r, DeclineReason::Policy(why) if why.contains("listed proxy")),
            )
        },
        hello(
            "upgrade disabled",
            || {
                let mut builder = Builder::new();
                builder.h2c_upgrade(false);
                builder
            },
            root_upgrade(),
            |r| *r == DeclineReason::Disabled,
        ),
    ]
}

/// The plain request that follows each declined upgrade on its connection.
const NEXT: &str = "GET /bytes/10 HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";

/// Sends `case.request` over a real socket and checks it is answered over
/// HTTP/1.1 with `case.body`, that the service saw `Protocol::Http1` and the
/// case's `UpgradeDeclined` reason, and that the connection then serves a plain
/// HTTP/1.1 request (its last: written after the answer, or `pipelined` right
/// behind the upgrade request) and ends without an error.
async fn assert_declined(case: &Declined, pipelined: bool) {
    let name = format!("{} (pipelined: {pipelined})", case.name);
    let (svc, mut seen) = recorder(Demo::new());
    let builder = (case.builder)();
    let (mut conn_io, served) = if case.needs_peer {
        let server = Server::start(&builder, svc).await;
        (H1Conn::connect(server.addr).await, Err(server))
    } else {
        let (io, conn) = tcp_conn(&builder, svc).await;
        (H1Conn::new(io), Ok(conn))
    };
    let mut request = case.request.clone();
    if pipelined {
        request.extend_from_slice(NEXT.as_bytes());
    }
    conn_io.send(&request).await;
    let res = conn_io.read_response().await;
    assert_eq!(res.status, 200, "{name}: {res:?}");
    assert_eq!(res.version, "HTTP/1.1", "{name}");
    assert!(res.body == case.body, "{name}: {:?}", res.body_str());
    assert!(res.header("upgrade").is_none(), "{name}: {res:?}");
    assert!(!res.connection_has("close"), "{name}: {res:?}");

    let req = seen.next().await;
    assert_eq!(req.protocol, Some(Protocol::Http1), "{name}");
    let reason = req.declined.expect("the request carries UpgradeDeclined");
    assert!(
        (case.reason)(&reason),
        "{name}: unexpected decline reason {reason:?}"
    );
    if let Some(text) = case.text {
        assert_eq!(reason.to_string(), text, "{name}");
    }

    if !pipelined {
        conn_io.send(NEXT).await;
    }
    let second = conn_io.read_response().await;
    assert_eq!(second.status, 200, "{name}");
    assert_eq!(second.body, pattern(10), "{name}");
    let req = seen.next().await;
    assert_eq!(req.protocol, Some(Protocol::Http1), "{name}");
    assert_eq!(req.declined, None, "{name}");
    conn_io.expect_closed().await;
    drop(conn_io);
    match served {
        Ok(conn) => conn_result(conn)
            .await
            .unwrap_or_else(|e| panic!("{name}: the connection must end normally: {e:?}")),
        Err(server) => server.stop().await.expect("serve"),
    }
}

#[tokio::test]
async fn declined_upgrades_are_answered_over_http1_with_their_reason() {
    for case in declined_upgrades() {
        for pipelined in [false, true] {
            assert_declined(&case, pipelined).await;
        }
    }
}

#[tokio::test]
async fn http2_settings_empty_or_with_unknown_ids_upgrade() {
    let server = Server::demo().await;
    // RFC 9113 §6.5.2: an unknown setting is ignored; an empty payload is valid.
    for value in [
        String::new(),
        http2_settings(&[(0x00ff, 7), (0x4242, u32::MAX)]),
    ] {
        let (_, mut h2) = upgrade(server.addr, &with_settings(&value)).await;
        h2.send_preface(CLIENT_SETTINGS).await;
        assert_eq!(h2.response(1).await.body_str(), "hello world\n");
    }
}

#[tokio::test]
async fn the_upgrade_policy_lets_other_paths_upgrade() {
    let server = Server::start(&root_stays_on_http1(), Demo::new()).await;
    let (_, mut h2) = upgrade(server.addr, &upgrade_request("GET", "/bytes/7", "", b"")).await;
    h2.send_preface(CLIENT_SETTINGS).await;
    assert_eq!(h2.response(1).await.body, pattern(7));
}

#[tokio::test]
async fn decline_proxied_upgrades_a_direct_client() {
    let (svc, mut seen) = recorder(Demo::new());
    let server = Server::start(&decline_proxied(), svc).await;
    let (_, mut h2) = upgrade(server.addr, &root_upgrade()).await;
    h2.send_preface(CLIENT_SETTINGS).await;
    let res = h2.response(1).await;
    assert_eq!(res.status, Some(200));
    assert_eq!(res.body_str(), "hello world\n");
    let req = seen.next().await;
    assert_eq!(req.protocol, Some(Protocol::H2cUpgrade));
    assert_eq!(req.declined, None);
}

#[tokio::test]
async fn with_h2c_through_proxies_a_proxied_request_upgrades() {
    let mut b = Builder::new();
    b.h2c_through_proxies(true);
    let server = Server::start(&b, Demo::new()).await;
    for field in common::h2c::FORWARDING_FIELDS {
        let (_, mut h2) = upgrade(
            server.addr,
            &upgrade_request("GET", "/", &format!("{field}\r\n"), b""),
        )
        .await;
        h2.send_preface(CLIENT_SETTINGS).await;
        assert_eq!(h2.response(1).await.body_str(), "hello world\n", "{field}");
    }
}

#[tokio::test]
async fn decline_proxied_upgrades_a_peer_that_is_not_listed() {
    let mut b = Builder::new();
    b.upgrade_policy(h2c_mux::decline_proxied([IpAddr::V4(Ipv4Addr::new(
        10, 0, 0, 5,
    ))]));
    let server = Server::start(&b, Demo::new()).await;
    let (_, mut h2) = upgrade(server.addr, &root_upgrade()).await;
    h2.send_preface(CLIENT_SETTINGS).await;
    assert_eq!(h2.response(1).await.body_str(), "hello world\n");
    drop(h2);
    server.stop().await.expect("serve");
}
