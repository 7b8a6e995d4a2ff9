//! `Builder::http2_only`: every connection is HTTP/2 (prior knowledge in
//! cleartext, ALPN `h2` over TLS), and a connection that is not gets one `505`,
//! whatever it sent, and is closed, within bounds.

mod common;

use std::time::Duration;

use common::h1::{count_status_lines, H1Conn};
use common::h2c::upgrade_request;
use common::h2client::{get, h2_client, roundtrip};
use common::read_to_eof;
use common::server::{conn_result, duplex_conn, duplex_conn_over, quiet, Server};
use common::service::{answer, error_kind, recorder, text, Answer, Recorder, Requests, Resp};
use common::within;
use h2c_mux::{Body, Builder, Protocol, Transport};
use http::{Request, StatusCode};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::time::Instant;

fn http2_only() -> Builder {
    let mut b = Builder::new();
    b.http2_only(true);
    b
}

/// A service that answers `200 hello`, and what it saw.
type Hello = Recorder<Answer<fn(&Request<Body>) -> Resp>>;

fn hello() -> (Hello, Requests) {
    fn say_hello(_: &Request<Body>) -> Resp {
        text(StatusCode::OK, "hello\n")
    }
    recorder(answer(say_hello as fn(&Request<Body>) -> Resp))
}

#[tokio::test]
async fn prior_knowledge_is_served() {
    let (svc, mut seen) = hello();
    let server = Server::start(&http2_only(), svc).await;
    let tcp = within("connect", TcpStream::connect(server.addr))
        .await
        .expect("connect");
    let mut send = within("h2 handshake", h2_client(tcp))
        .await
        .expect("h2 handshake");
    let reply = roundtrip(&mut send, get("/"), None).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.body, b"hello\n");
    assert_eq!(seen.next().await.protocol, Some(Protocol::H2PriorKnowledge));
}

#[tokio::test]
async fn prior_knowledge_is_served_whatever_the_other_switches_say() {
    let mut builder = http2_only();
    builder.prior_knowledge(false).h2c_upgrade(false);
    let (svc, mut seen) = hello();
    let (io, _conn) = duplex_conn(&builder, svc);
    let mut send = within("h2 handshake", h2_client(io))
        .await
        .expect("h2 handshake");
    let reply = roundtrip(&mut send, get("/"), None).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(seen.next().await.protocol, Some(Protocol::H2PriorKnowledge));
}

/// Sends `request` on a connection of an HTTP/2-only server and checks what it
/// gets: one `505` that closes, telling the client what to do instead, and no
/// call of the service.
async fn assert_refused_once(transport: Transport, request: &[u8], says: &str) {
    let (svc, seen) = hello();
    let (io, conn) = duplex_conn_over(&http2_only(), svc, transport);
    let mut client = H1Conn::new(io);
    client.send(request).await;
    let res = client.read_response().await;
    assert_eq!(res.status, 505, "{transport:?}: {res:?}");
    assert!(res.closes(), "{res:?}");
    assert_eq!(res.body_str(), format!("{says}\n"));
    client.expect_closed().await;
    drop(client);
    let e = conn_result(conn).await.expect_err("refused");
    assert_eq!(error_kind(&e), "parse");
    seen.assert_no_more().await;
}

const CLEARTEXT_REFUSAL: &str =
    "This server speaks HTTP/2 only: open the connection with the HTTP/2 preface (prior knowledge).";
const TLS_REFUSAL: &str = "This server speaks HTTP/2 only: choose h2 with ALPN.";

#[tokio::test]
async fn an_http1_request_gets_one_505_and_the_connection_closes() {
    let get = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n";
    assert_refused_once(Transport::Cleartext, get, CLEARTEXT_REFUSAL).await;
}

#[tokio::test]
async fn an_h2c_upgrade_request_gets_no_101_but_the_505() {
    let upgrade = upgrade_request("GET", "/", "", b"");
    assert_refused_once(Transport::Cleartext, &upgrade, CLEARTEXT_REFUSAL).await;
}

#[tokio::test]
async fn pipelined_requests_get_one_answer_in_all() {
    let (svc, seen) = hello();
    let (mut io, conn) = duplex_conn(&http2_only(), svc);
    io.write_all(b"GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /b HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .expect("write");
    let got = read_to_eof(&mut io).await;
    assert_eq!(
        count_status_lines(&got),
        1,
        "{:?}",
        String::from_utf8_lossy(&got)
    );
    assert!(got.starts_with(b"HTTP/1.1 505 "));
    drop(io);
    assert!(conn_result(conn).await.is_err());
    seen.assert_no_more().await;
}

#[tokio::test]
async fn over_tls_without_h2_whatever_comes_gets_the_505() {
    let preface = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
    let get = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n";
    for transport in [
        Transport::tls(Some(b"http/1.1")),
        Transport::tls(Some(b"acme-tls/1")),
        Transport::tls(None),
    ] {
        assert_refused_once(transport, get, TLS_REFUSAL).await;
        // RFC 9113 §3.3: over TLS, HTTP/2 needs ALPN; the preface alone is not it.
        assert_refused_once(transport, preface, TLS_REFUSAL).await;
    }
}

#[tokio::test]
async fn over_tls_with_alpn_h2_http2_is_served() {
    let (svc, mut seen) = hello();
    let (io, _conn) = duplex_conn_over(&http2_only(), svc, Transport::tls(Some(b"h2")));
    let mut send = within("h2 handshake", h2_client(io))
        .await
        .expect("h2 handshake");
    let reply = roundtrip(&mut send, get("/"), None).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(seen.next().await.protocol, Some(Protocol::H2Tls));
}

#[tokio::test(start_paused = true)]
async fn a_client_that_says_nothing_is_closed_at_the_keep_alive_timeout() {
    let mut builder = quiet();
    builder
        .http2_only(true)
        .keep_alive_timeout(Duration::from_secs(5));
    for transport in [Transport::Cleartext, Transport::tls(Some(b"http/1.1"))] {
        let (svc, seen) = hello();
        let (mut io, conn) = duplex_conn_over(&builder, svc, transport);
        let start = Instant::now();
        let got = read_to_eof(&mut io).await;
        let waited = start.elapsed();
        assert!(got.is_empty(), "{:?}", String::from_utf8_lossy(&got));
        assert!(
            waited >= Duration::from_secs(5),
            "{transport:?}: {waited:?}"
        );
        assert!(waited < Duration::from_secs(6), "{transport:?}: {waited:?}");
        conn_result(conn).await.expect("a quiet close");
        seen.assert_no_more().await;
    }
}
