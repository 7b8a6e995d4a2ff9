//! HTTP/2 with prior knowledge (RFC 9113 §3.3): the `h2` client, a preface that
//! trickles in, and what happens when prior knowledge is off or the preface stops.
#![cfg(feature = "demo")] // the demo service is behind the `demo` feature (on by default)

mod common;

use bytes::Bytes;
use common::h1::assert_refused;
use common::h2client::{h2_connect, request, roundtrip};
use common::h2frame::{request_fields, settings_payload, PREFACE, SETTINGS, SETTINGS_ENABLE_PUSH};
use common::h2raw::H2Raw;
use common::server::{conn_result, tcp_conn, Server};
use common::service::{pattern, recorder};
use common::within;
use h2c_mux::demo::Demo;
use h2c_mux::{Builder, Protocol};
use http::Method;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

#[tokio::test]
async fn prior_knowledge_get_root() {
    let (svc, mut seen) = recorder(Demo::new());
    let server = Server::start(&Builder::new(), svc).await;
    let mut client = h2_connect(server.addr).await;
    let res = roundtrip(&mut client, request(Method::GET, "/"), None).await;
    assert_eq!(res.status, 200);
    assert_eq!(res.headers["content-type"], "text/plain");
    assert_eq!(res.body, b"hello world\n");
    let req = seen.next().await;
    assert_eq!(req.protocol, Some(Protocol::H2PriorKnowledge));
    assert_eq!(req.version, http::Version::HTTP_2);
    assert!(req.remote.is_some(), "serve() sets RemoteAddr");
}

#[tokio::test]
async fn prior_knowledge_post_echo() {
    let server = Server::demo().await;
    let mut client = h2_connect(server.addr).await;
    // Larger than one 16 KiB frame and than the default 64 KiB window.
    let body: Vec<u8> = (0..200_000u32).map(|i| (i % 253) as u8).collect();
    let echoed = roundtrip(
        &mut client,
        request(Method::POST, "/echo"),
        Some(Bytes::from(body.clone())),
    )
    .await;
    assert_eq!(echoed.status, 200);
    assert_eq!(echoed.body.len(), body.len());
    assert!(echoed.body == body, "echoed body differs");

    // The same connection serves another request.
    let res = roundtrip(&mut client, request(Method::GET, "/bytes/70000"), None).await;
    assert_eq!(res.status, 200);
    assert!(res.body == pattern(70_000));
}

#[tokio::test]
async fn preface_sent_one_byte_at_a_time_is_recognised() {
    let server = Server::demo().await;
    let tcp = within("connect", TcpStream::connect(server.addr))
        .await
        .expect("connect");
    tcp.set_nodelay(true).expect("nodelay");
    let mut h2 = H2Raw::new(tcp, Vec::new());
    for b in PREFACE.iter() {
        h2.write(std::slice::from_ref(b)).await;
        within("flush", h2.io.flush()).await.expect("flush");
    }
    // The rest of the connection is ordinary HTTP/2, by hand.
    let settings = settings_payload(&[(SETTINGS_ENABLE_PUSH, 0)]);
    h2.send_frame(SETTINGS, 0, 0, &settings).await;
    h2.send_headers(1, &request_fields("GET", "/bytes/100"), true)
        .await;
    let res = h2.response(1).await;
    assert_eq!(res.status, Some(200));
    assert_eq!(res.body, pattern(100));
}

#[tokio::test]
async fn preface_without_prior_knowledge_is_answered_505() {
    // With prior knowledge off, the HTTP/2 preface is an HTTP/1 request line with
    // version HTTP/2.0, and so is any other HTTP/2.0 request line.
    let mut off = Builder::new();
    off.prior_knowledge(false);
    assert_refused(&off, PREFACE, 505).await;
    assert_refused(&off, b"PRI * HTTP/2.0\r\n\r\n", 505).await;
    assert_refused(&off, b"GET / HTTP/2.0\r\nHost: a\r\n\r\n", 505).await;
}

#[tokio::test]
async fn partial_preface_then_eof_closes_cleanly_without_a_response() {
    let (mut tcp, server) = tcp_conn(&Builder::new(), Demo::new()).await;
    tcp.write_all(&PREFACE[..10]).await.expect("write");
    tcp.shutdown().await.expect("half-close");
    let mut got = Vec::new();
    within("server to close", tcp.read_to_end(&mut got))
        .await
        .expect("read to EOF");
    assert!(
        got.is_empty(),
        "server answered a partial preface: {:?}",
        String::from_utf8_lossy(&got)
    );
    let result = conn_result(server).await;
    assert!(result.is_ok(), "connection ended with {result:?}");
}

#[tokio::test]
async fn prior_knowledge_responses_carry_a_date() {
    // RFC 9110 §6.6.1: an origin server with a clock MUST send Date in 2xx-4xx
    // responses; the HTTP/1.1 path does.
    let server = Server::demo().await;
    let mut client = h2_connect(server.addr).await;
    let res = roundtrip(&mut client, request(Method::GET, "/"), None).await;
    assert_eq!(res.status, 200);
    assert!(
        res.headers.contains_key("date"),
        "no date field: {:?}",
        res.headers
    );
    let res = roundtrip(&mut client, request(Method::GET, "/nope"), None).await;
    assert_eq!(res.status, 404);
    assert!(
        res.headers.contains_key("date"),
        "no date field: {:?}",
        res.headers
    );
}

/// Not ready on every other `poll_ready` (it wakes itself), and failing it when
/// the path asks: each stream is answered either way.
#[derive(Clone)]
struct Moody {
    inner: Demo,
    skip: std::sync::Arc<std::sync::atomic::AtomicBool>,
    fail: bool,
}

impl tower_service::Service<http::Request<h2c_mux::Body>> for Moody {
    type Response = <Demo as tower_service::Service<http::Request<h2c_mux::Body>>>::Response;
    type Error = Box<dyn std::error::Error + Send + Sync>;
    type Future = std::pin::Pin<
        Box<dyn std::future::Future<Output = Result<Self::Response, Self::Error>> + Send>,
    >;

    fn poll_ready(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        use std::sync::atomic::Ordering;
        if self.fail {
            return std::task::Poll::Ready(Err("not today".into()));
        }
        if !self.skip.fetch_xor(true, Ordering::Relaxed) {
            cx.waker().wake_by_ref();
            return std::task::Poll::Pending;
        }
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: http::Request<h2c_mux::Body>) -> Self::Future {
        let fut = self.inner.call(req);
        Box::pin(async move { Ok(fut.await.unwrap_or_else(|e| match e {})) })
    }
}

#[tokio::test]
async fn a_service_not_ready_or_failing_in_poll_ready_still_answers_each_stream() {
    let moody = Moody {
        inner: Demo::new(),
        skip: Default::default(),
        fail: false,
    };
    let server = Server::start(&Builder::new(), moody.clone()).await;
    let mut client = h2_connect(server.addr).await;
    for _ in 0..4 {
        let res = roundtrip(&mut client, request(Method::GET, "/"), None).await;
        assert_eq!(res.status, 200);
        assert_eq!(res.body, b"hello world\n");
    }
    let failing = Moody {
        fail: true,
        ..moody
    };
    let server = Server::start(&Builder::new(), failing).await;
    let mut client = h2_connect(server.addr).await;
    let res = roundtrip(&mut client, request(Method::GET, "/"), None).await;
    assert_eq!(res.status, 500);
}

/// The value of `id` in a SETTINGS frame's payload, if it is there.
fn setting(payload: &[u8], id: u16) -> Option<u32> {
    payload.chunks_exact(6).find_map(|e| {
        (u16::from_be_bytes([e[0], e[1]]) == id)
            .then(|| u32::from_be_bytes([e[2], e[3], e[4], e[5]]))
    })
}

#[tokio::test]
async fn max_frame_size_is_advertised_within_the_range_the_rfc_allows() {
    const SETTINGS_MAX_FRAME_SIZE: u16 = 0x5;
    // Set, too large (RFC 9113 §6.5.2: at most 2^24 - 1), the largest allowed.
    for (set, advertised) in [
        (1 << 20, 1 << 20),
        (u32::MAX, (1 << 24) - 1),
        ((1 << 24) - 1, (1 << 24) - 1),
    ] {
        let mut b = Builder::new();
        b.max_frame_size(set);
        let server = Server::start(&b, Demo::new()).await;
        let mut h2 = H2Raw::new(
            within("connect", TcpStream::connect(server.addr))
                .await
                .expect("connect"),
            Vec::new(),
        );
        let frames = h2.handshake(&[]).await;
        let settings = frames
            .iter()
            .find(|f| f.ty == SETTINGS)
            .expect("the server's SETTINGS");
        assert_eq!(
            setting(&settings.payload, SETTINGS_MAX_FRAME_SIZE),
            Some(advertised),
            "max_frame_size({set})"
        );
    }
}
