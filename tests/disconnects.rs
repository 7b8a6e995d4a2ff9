//! Clients that vanish (close or reset) at every stage of every protocol: the
//! connection future resolves by noticing the peer is gone, long before any
//! server timer (all are an hour away, [`quiet`]), and a new connection is served.
//!
//! On paused time over `tokio::io::duplex`, except the TCP reset, which needs a
//! real socket.

mod common;

use std::time::Duration;

use common::h1::parse_responses;
use common::h2c::{raw_upgrade, upgrade_on, UPGRADE_GET};
use common::h2frame::{frame, headers_frame, request_fields, DATA, PREFACE};
use common::h2raw::{h2_duplex, H2Raw, RAW_SETTINGS};
use common::server::{conn_result, duplex_conn, quiet, tcp_conn, ConnHandle};
use common::service::inspect;
use common::{read_to_eof, WAIT};
use h2c_mux::demo::Demo;
use h2c_mux::Builder;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio::time::timeout;

/// After the client vanished, the connection future resolves within a bound far
/// shorter than every server timer (all are an hour away: only noticing the
/// vanished peer can end it), and a new connection is served.
async fn assert_freed(b: &Builder, conn: ConnHandle, stage: &str) {
    let r = timeout(Duration::from_secs(30), conn).await;
    assert!(r.is_ok(), "{stage}: the connection was not freed");
    let (mut c, conn) = duplex_conn(b, Demo::new());
    c.write_all(b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let bytes = read_to_eof(&mut c).await;
    let rs = parse_responses(&bytes);
    assert_eq!(rs[0].body, b"hello world\n", "{stage}");
    drop(c);
    conn_result(conn).await.expect("normal end");
}

#[tokio::test(start_paused = true)]
async fn http1_client_vanishing_at_every_stage_frees_the_connection() {
    let b = quiet();
    let stages: &[(&str, &[u8])] = &[
        ("before any byte", b""),
        ("mid request line", b"GET /some"),
        ("mid head", b"GET / HTTP/1.1\r\nHost: a\r\nX-Hal"),
        (
            "mid content-length body",
            b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 100\r\n\r\n0123456789",
        ),
        (
            "mid chunked body",
            b"POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n10\r\nabc",
        ),
        (
            "waiting for 100-continue",
            b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 100\r\nExpect: 100-continue\r\n\r\n",
        ),
        ("mid upgrade body (streamed or buffered)", b"POST /echo HTTP/1.1\r\nHost: a\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABk\r\nContent-Length: 100\r\n\r\nabc"),
        ("mid prior-knowledge preface", b"PRI * HTTP/2.0\r\n\r\n"),
    ];
    let mut buffered = quiet();
    buffered.stream_upgrade_body(false);
    for b in [&b, &buffered] {
        for (stage, bytes) in stages {
            let (mut c, conn) = duplex_conn(b, Demo::new());
            c.write_all(bytes).await.unwrap();
            // Let the server take in what was sent before vanishing.
            tokio::task::yield_now().await;
            drop(c);
            assert_freed(b, conn, stage).await;
        }
    }
}

#[tokio::test(start_paused = true)]
async fn client_vanishing_mid_response_frees_the_connection() {
    let b = quiet();
    // HTTP/1.1: a 100 MB response, read a little.
    let (mut c, conn) = duplex_conn(&b, Demo::new());
    c.write_all(b"GET /bytes/100000000 HTTP/1.1\r\nHost: a\r\n\r\n")
        .await
        .unwrap();
    let mut some = [0u8; 4096];
    c.read_exact(&mut some).await.unwrap();
    drop(c);
    assert_freed(&b, conn, "mid http/1.1 response").await;

    // HTTP/2 prior knowledge: same on a stream.
    let (mut c, conn) = h2_duplex(&b, Demo::new()).await;
    c.write(&headers_frame(
        1,
        true,
        &request_fields("GET", "/bytes/100000000"),
    ))
    .await;
    let (frames, _) = c.read_frames_until(|f| f.ty == DATA).await;
    assert!(!frames.is_empty());
    drop(c);
    assert_freed(&b, conn, "mid http/2 response").await;
}

#[tokio::test(start_paused = true)]
async fn client_vanishing_around_the_upgrade_frees_the_connection() {
    let b = quiet();
    // Right after the 101.
    let (c, conn) = duplex_conn(&b, Demo::new());
    let (_, c) = upgrade_on(c, UPGRADE_GET.as_bytes()).await;
    drop(c);
    assert_freed(&b, conn, "right after the 101").await;

    // Mid preface after the 101.
    let (c, conn) = duplex_conn(&b, Demo::new());
    let (_, mut c) = upgrade_on(c, UPGRADE_GET.as_bytes()).await;
    c.write(&PREFACE[..10]).await;
    tokio::task::yield_now().await;
    drop(c);
    assert_freed(&b, conn, "mid preface after the 101").await;

    // Upgraded, stream 1 answered, then vanishing mid stream 3's response.
    let (c, conn) = duplex_conn(&b, Demo::new());
    let mut c = raw_upgrade(c, UPGRADE_GET).await;
    let (r1, _) = c.read_response(1).await;
    assert_eq!(r1.body, b"hello world\n");
    c.write(&headers_frame(
        3,
        true,
        &request_fields("GET", "/bytes/100000000"),
    ))
    .await;
    let (frames, _) = c.read_frames_until(|f| f.ty == DATA && f.stream == 3).await;
    assert!(!frames.is_empty());
    drop(c);
    assert_freed(&b, conn, "mid stream 3 after an upgrade").await;
}

#[tokio::test(start_paused = true)]
async fn client_vanishing_mid_h2_request_body_frees_the_connection_and_fails_the_body() {
    let b = quiet();
    let (tx, mut rx) = mpsc::unbounded_channel();
    let (c, conn) = duplex_conn(&b, inspect(tx));
    let mut c = H2Raw::open(c, RAW_SETTINGS).await;
    let mut out = headers_frame(1, false, &request_fields("POST", "/up"));
    out.extend_from_slice(&frame(DATA, 0, 1, b"first part"));
    let _ = c.exchange_until_pong(&out).await;
    drop(c);
    // The service either sees its body fail or is dropped with the connection;
    // it must not wait forever on a body that will never come.
    let seen = timeout(Duration::from_secs(30), rx.recv())
        .await
        .expect("the service's body must not hang");
    if let Some(seen) = seen {
        assert!(
            seen.body.is_err(),
            "a vanished client's body must be an error: {seen:?}"
        );
    }
    assert_freed(&b, conn, "mid http/2 request body").await;
}

#[tokio::test]
async fn tcp_reset_mid_body_frees_the_connection() {
    // A real socket and a real RST (SO_LINGER 0), served by serve_connection.
    let b = quiet();
    let (tx, mut rx) = mpsc::unbounded_channel();
    let (mut c, server) = tcp_conn(&b, inspect(tx)).await;
    c.write_all(b"POST /up HTTP/1.1\r\nHost: a\r\nContent-Length: 1000\r\n\r\npartial")
        .await
        .unwrap();
    c.set_zero_linger().unwrap();
    drop(c);
    let seen = timeout(WAIT, rx.recv())
        .await
        .expect("bound")
        .expect("called");
    assert!(seen.body.is_err(), "{seen:?}");
    // Resolves (Ok or an error) within the bound.
    let _ = timeout(WAIT, server)
        .await
        .expect("freed within the bound")
        .unwrap();
}
