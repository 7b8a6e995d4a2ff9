//! The size bounds a `Builder` sets, at and just past each bound, default and
//! configured: the request line (414), the head and its field count (431), the
//! request body (413), one header set on every path (HTTP/1.1, HTTP/2 prior
//! knowledge, the upgrade request), the response held back for a streamed
//! upgrade, and the output queued for a client that pipelines without reading.
#![cfg(feature = "demo")] // the demo service is behind the `demo` feature (on by default)

mod common;

use std::convert::Infallible;
use std::future::{poll_fn, Future};
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use common::h1::{accepted_status, assert_refused, h1_exchange, parse_responses, H1Conn};
use common::h2c::{raw_upgrade, UPGRADE_GET};
use common::h2client::{get, h2_client, h2_send};
use common::server::{conn_result, duplex_conn, Server};
use common::service::inspect;
use common::{read_to_eof, WAIT};
use h2c_mux::demo::Demo;
use h2c_mux::{Body, Builder, Connection};
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio::time::timeout;

#[tokio::test]
async fn request_line_over_max_request_line_is_414() {
    let mut b = Builder::new();
    b.max_request_line(256);
    // "GET /aaa... HTTP/1.1" of 257 bytes.
    let long = format!("GET /{} HTTP/1.1", "a".repeat(257 - 14));
    assert_eq!(long.len(), 257);
    assert_refused(&b, format!("{long}\r\nHost: a\r\n\r\n").as_bytes(), 414).await;
    // Decided before the line ends: an unterminated long line gets 414 at once.
    assert_refused(&b, format!("GET /{}", "a".repeat(400)).as_bytes(), 414).await;
    // Control: a shorter line is within the bound (the demo answers 404).
    let fits = format!("GET /{} HTTP/1.1", "a".repeat(200 - 14));
    let r = format!("{fits}\r\nHost: a\r\nConnection: close\r\n\r\n");
    assert_eq!(accepted_status(&b, r.as_bytes()).await, 404);

    // The default bound, 8 KiB.
    let d = Builder::new();
    for n in [8 * 1024, h2c_mux::DEFAULT_MAX_REQUEST_LINE + 10] {
        let over = format!("GET /{} HTTP/1.1\r\nHost: a\r\n\r\n", "a".repeat(n));
        assert_refused(&d, over.as_bytes(), 414).await;
    }
    let under = format!(
        "GET /{} HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
        "a".repeat(8000)
    );
    assert_eq!(accepted_status(&d, under.as_bytes()).await, 404);
}

/// RFC 9112 §3: the request line is `method SP request-target SP HTTP-version`,
/// without its CRLF; a line of exactly `max_request_line` octets is within the
/// bound ("a longer line is answered 414").
#[tokio::test]
async fn request_line_of_exactly_max_request_line_octets_is_accepted() {
    let mut b = Builder::new();
    b.max_request_line(256);
    let exact = format!("GET /{} HTTP/1.1", "a".repeat(256 - 14));
    assert_eq!(exact.len(), 256);
    let r = format!("{exact}\r\nHost: a\r\nConnection: close\r\n\r\n");
    assert_eq!(accepted_status(&b, r.as_bytes()).await, 404);
}

#[tokio::test]
async fn head_over_max_head_size_is_431() {
    let mut b = Builder::new();
    b.max_head_size(4096);
    let big = format!(
        "GET / HTTP/1.1\r\nHost: a\r\nX: {}\r\n\r\n",
        "v".repeat(4100)
    );
    assert_refused(&b, big.as_bytes(), 431).await;
    // Decided before the head ends.
    let unterminated = format!("GET / HTTP/1.1\r\nHost: a\r\nX: {}", "v".repeat(5000));
    assert_refused(&b, unterminated.as_bytes(), 431).await;
    // Exactly at the bound is fine; one octet more is not.
    let head = |n: usize| {
        format!(
            "GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\nX: {}\r\n\r\n",
            "v".repeat(n)
        )
    };
    assert_eq!(head(4045).len(), 4096);
    assert_eq!(accepted_status(&b, head(4045).as_bytes()).await, 200);
    assert_refused(&b, head(4046).as_bytes(), 431).await;

    // The default bound, 64 KiB.
    let d = Builder::new();
    for n in [64 * 1024, h2c_mux::DEFAULT_MAX_HEAD_SIZE + 10] {
        let over = format!("GET / HTTP/1.1\r\nHost: a\r\nX: {}\r\n\r\n", "v".repeat(n));
        assert_refused(&d, over.as_bytes(), 431).await;
    }
    let under = format!(
        "GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\nX: {}\r\n\r\n",
        "v".repeat(60 * 1024)
    );
    assert_eq!(accepted_status(&d, under.as_bytes()).await, 200);
}

fn with_fields(n: usize, close: bool) -> String {
    // Host (and Connection) count as fields.
    let mut r = String::from("GET / HTTP/1.1\r\nHost: a\r\n");
    let mut count = 1;
    if close {
        r.push_str("Connection: close\r\n");
        count += 1;
    }
    for i in count..n {
        r.push_str(&format!("X-F{i}: v\r\n"));
    }
    r.push_str("\r\n");
    r
}

#[tokio::test]
async fn more_fields_than_max_headers_is_431() {
    let mut b = Builder::new();
    b.max_headers(10);
    assert_refused(&b, with_fields(11, false).as_bytes(), 431).await;
    assert_eq!(
        accepted_status(&b, with_fields(10, true).as_bytes()).await,
        200
    );

    let d = Builder::new();
    assert_refused(&d, with_fields(101, false).as_bytes(), 431).await;
    assert_eq!(
        accepted_status(&d, with_fields(100, true).as_bytes()).await,
        200
    );
}

#[tokio::test]
async fn content_length_over_max_request_body_size_is_413() {
    let mut b = Builder::new();
    b.max_request_body_size(Some(100));
    // 413 before the service is called.
    let (tx, mut rx) = mpsc::unbounded_channel();
    let mut r = b"POST /up HTTP/1.1\r\nHost: a\r\nContent-Length: 101\r\n\r\n".to_vec();
    r.extend(vec![b'x'; 101]);
    let (bytes, res) = h1_exchange(&b, inspect(tx), &r).await;
    let rs = parse_responses(&bytes);
    assert_eq!(rs.len(), 1);
    assert_eq!(rs[0].status, 413);
    assert!(rs[0].closes());
    assert!(res.is_err_and(|e| e.is_parse()));
    assert!(rx.try_recv().is_err(), "the service must not be called");

    // Exactly the limit is fine.
    let (tx, mut rx) = mpsc::unbounded_channel();
    let mut r = b"POST /up HTTP/1.1\r\nHost: a\r\nContent-Length: 100\r\nConnection: close\r\n\r\n"
        .to_vec();
    r.extend(vec![b'x'; 100]);
    let (bytes, _) = h1_exchange(&b, inspect(tx), &r).await;
    assert_eq!(parse_responses(&bytes)[0].status, 200);
    assert_eq!(
        rx.recv().await.expect("served").body.map(|b| b.len()),
        Ok(100)
    );

    // A chunked body that grows past the limit is a body error and closes.
    let (tx, mut rx) = mpsc::unbounded_channel();
    let mut r = b"POST /up HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
    for _ in 0..3 {
        r.extend_from_slice(b"32\r\n");
        r.extend(vec![b'x'; 50]);
        r.extend_from_slice(b"\r\n");
    }
    r.extend_from_slice(b"0\r\n\r\nGET /second HTTP/1.1\r\nHost: a\r\n\r\n");
    let (bytes, _) = h1_exchange(&b, inspect(tx), &r).await;
    let seen = rx.recv().await.expect("served");
    assert_eq!(seen.body.err(), Some("parse"));
    let rs = parse_responses(&bytes);
    assert_eq!(rs.len(), 1);
    assert!(rs[0].closes());
    assert!(rx.try_recv().is_err());

    // Without the option, the same 101-byte body is accepted.
    let d = Builder::new();
    let mut r =
        b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 101\r\nConnection: close\r\n\r\n"
            .to_vec();
    r.extend(vec![b'x'; 101]);
    assert_eq!(accepted_status(&d, &r).await, 200);
}

/// 20 fields of 4000 bytes: an 80 KB header section, over the default 64 KiB on
/// every path (HTTP/1 head size, HTTP/2 SETTINGS_MAX_HEADER_LIST_SIZE).
fn big_fields(n: usize) -> Vec<(String, String)> {
    (0..n)
        .map(|i| (format!("x-big-{i}"), "a".repeat(4000)))
        .collect()
}

/// The status of the one HTTP/1.1 response to `head` (a request line and fields,
/// each ending in CRLF) with `fields` added, on a new connection read to its end.
async fn h1_status_with(
    addr: std::net::SocketAddr,
    head: &str,
    fields: &[(String, String)],
) -> u16 {
    let mut r = head.to_string();
    for (k, v) in fields {
        r.push_str(&format!("{k}: {v}\r\n"));
    }
    r.push_str("\r\n");
    let mut s = TcpStream::connect(addr).await.expect("connect");
    s.write_all(r.as_bytes()).await.expect("write");
    let bytes = read_to_eof(&mut s).await;
    let rs = parse_responses(&bytes);
    assert_eq!(rs.len(), 1);
    rs[0].status
}

/// The status of `GET /` with `fields` over HTTP/2 prior knowledge on a new
/// connection: in the client's first flight, or `after_a_round_trip` (a `GET /`
/// first, so the request goes out after the SETTINGS exchange).
async fn h2_status_with(
    addr: std::net::SocketAddr,
    fields: &[(String, String)],
    after_a_round_trip: bool,
) -> Result<u16, h2::Error> {
    let s = TcpStream::connect(addr).await.expect("connect");
    let mut send = h2_client(s).await?;
    if after_a_round_trip {
        let hello = h2_send(&mut send, get("/"), None).await?;
        assert_eq!(hello.status, StatusCode::OK);
    }
    let mut req = Request::builder().uri("http://example/");
    for (k, v) in fields {
        req = req.header(k.as_str(), v.as_str());
    }
    let r = h2_send(&mut send, req.body(()).expect("request"), None).await?;
    Ok(r.status.as_u16())
}

/// The same header set gets the same answer on every path. `h2` 0.4.20 applies
/// SETTINGS_MAX_HEADER_LIST_SIZE to its decoder at the handshake (not only once
/// the client acknowledged it) and answers a larger (< 4x) header list with a
/// `431` HEADERS frame (END_STREAM) and never hands the request to the service.
#[tokio::test]
async fn oversized_header_set_is_431_over_http1_and_refused_over_h2_prior_knowledge() {
    let (tx, mut rx) = mpsc::unbounded_channel();
    let server = Server::start(&Builder::new(), inspect(tx)).await;
    let addr = server.addr;
    let over = big_fields(20);
    let under = big_fields(10);

    let run = async {
        // HTTP/1.1.
        let get = "GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n";
        assert_eq!(h1_status_with(addr, get, &over).await, 431);
        assert_eq!(h1_status_with(addr, get, &under).await, 200);
        // HTTP/2 prior knowledge, after the SETTINGS exchange and in the first
        // flight.
        assert_eq!(
            h2_status_with(addr, &over, true)
                .await
                .expect("h2 response"),
            431
        );
        assert_eq!(
            h2_status_with(addr, &over, false)
                .await
                .expect("h2 response"),
            431
        );
        assert_eq!(
            h2_status_with(addr, &under, true)
                .await
                .expect("h2 response"),
            200
        );
        // The h2c upgrade request carrying the same fields: 431 over HTTP/1.1,
        // never a 101.
        let upgrade = format!("{}\r\n", UPGRADE_GET.trim_end_matches("\r\n"));
        assert_eq!(h1_status_with(addr, &upgrade, &over).await, 431);
    };
    timeout(WAIT, run).await.expect("bounded");

    // The service only ever saw the requests under the limit (and h2's GET /).
    let mut sizes = Vec::new();
    while let Ok(seen) = rx.try_recv() {
        sizes.push(seen.headers.len());
    }
    assert!(
        sizes.iter().all(|n| *n < 20),
        "an oversized header set reached the service: {sizes:?}"
    );
    assert_eq!(sizes.iter().filter(|n| **n >= 10).count(), 2, "{sizes:?}");
    server.stop().await.expect("serve");
}

/// A streamed upgrade holds the response that starts before the body ends; the
/// hold is bounded by `max_upgrade_response_hold`, past which the exchange stays on
/// HTTP/1.1 and the response is still delivered whole.
#[tokio::test]
async fn upgrade_response_outgrowing_the_hold_bound_is_answered_whole_over_http1() {
    let mut b = Builder::new();
    b.max_upgrade_response_hold(4096);
    let body: Vec<u8> = (0..100_000u32).map(|i| b'a' + (i % 26) as u8).collect();
    let mut r = UPGRADE_GET
        .replace("GET / ", "POST /echo ")
        .replace(
            "\r\n\r\n",
            &format!(
                "\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            ),
        )
        // A second Connection field: the upgrade tokens in the first still count.
        .into_bytes();
    r.extend_from_slice(&body);
    let (bytes, _) = h1_exchange(&b, Demo::new(), &r).await;
    assert!(
        !bytes.starts_with(b"HTTP/1.1 101"),
        "switched past the hold bound"
    );
    let rs = parse_responses(&bytes);
    assert_eq!(rs.len(), 1);
    assert_eq!(rs[0].status, 200);
    assert!(rs[0].complete);
    assert!(
        rs[0].body == body,
        "echo corrupted: {} bytes",
        rs[0].body.len()
    );

    // Control: a body whose echo fits the hold is upgraded and answered on stream 1.
    let (c, conn) = duplex_conn(&b, Demo::new());
    let small = UPGRADE_GET
        .replace("GET / ", "POST /echo ")
        .replace("\r\n\r\n", "\r\nContent-Length: 5\r\n\r\nhello");
    let mut c = raw_upgrade(c, &small).await;
    let (r1, _) = c.read_response(1).await;
    assert_eq!(r1.body, b"hello");
    drop(c);
    let _ = conn_result(conn).await;
}

// ---------------------------------------------------------------------------
// The output queued for a client that pipelines without reading
// ---------------------------------------------------------------------------
//
// A client that pipelines far more requests than it reads responses for makes
// the server stop reading and stop answering once `max_write_buffer_size` of
// output is queued, instead of holding its requests or queueing their responses
// without bound. The connection is driven by hand over an in-memory pipe of known
// capacity, so "the server has stopped" is exact: polled until it makes no more
// progress.

/// Capacity of the in-memory pipe, each direction.
const PIPE: usize = 16 * 1024;
const REQUEST: &[u8] = b"GET /n HTTP/1.1\r\nhost: example.test\r\n\r\n";
const REQUESTS: usize = 2_000;
/// Response body size: one 8 KiB read of requests (200 of them) asks for far more
/// output than the bound.
const BODY: usize = 2 * 1024;

/// Answers every request with a fixed [`BODY`]-byte body and counts the calls.
#[derive(Clone)]
struct Counting(Arc<AtomicUsize>);

impl tower_service::Service<Request<Body>> for Counting {
    type Response = Response<Full<Bytes>>;
    type Error = Infallible;
    type Future = std::future::Ready<Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _: Request<Body>) -> Self::Future {
        self.0.fetch_add(1, Ordering::SeqCst);
        std::future::ready(Ok(Response::new(Full::new(Bytes::from_static(
            &[b'x'; BODY],
        )))))
    }
}

/// Polls the connection (and lets the writer task run) until neither makes
/// progress any more.
async fn run_until_stalled(conn: &mut Pin<Box<Connection>>, progress: impl Fn() -> usize) {
    let mut last = usize::MAX;
    let mut still = 0;
    while still < 50 {
        let done = poll_fn(|cx| Poll::Ready(conn.as_mut().poll(cx).is_ready())).await;
        assert!(!done, "the connection ended");
        tokio::task::yield_now().await;
        let now = progress();
        if now == last {
            still += 1;
        } else {
            still = 0;
            last = now;
        }
    }
}

#[tokio::test(flavor = "current_thread")]
async fn a_client_that_pipelines_without_reading_is_held_to_the_write_buffer_bound() {
    let high_water = 8 * 1024;
    let mut b = Builder::new();
    b.max_write_buffer_size(high_water);
    let calls = Arc::new(AtomicUsize::new(0));
    let (client, server) = tokio::io::duplex(PIPE);
    let mut conn = Box::pin(b.serve_connection(server, Counting(calls.clone())));
    let (read_half, mut write_half) = tokio::io::split(client);

    // The client writes every request and reads nothing (yet).
    let written = Arc::new(AtomicUsize::new(0));
    let writer = {
        let written = written.clone();
        tokio::spawn(async move {
            for _ in 0..REQUESTS {
                write_half.write_all(REQUEST).await.expect("write");
                written.fetch_add(1, Ordering::SeqCst);
            }
            write_half
        })
    };
    run_until_stalled(&mut conn, || {
        calls.load(Ordering::SeqCst) + written.load(Ordering::SeqCst)
    })
    .await;

    let answered = calls.load(Ordering::SeqCst);
    let sent = written.load(Ordering::SeqCst);
    // A response is its head plus the body.
    let response_min = BODY;
    // Answered: what the pipe to the client holds, plus the queue, plus the one
    // response that crossed the bound.
    let answered_max = (PIPE + high_water) / response_min + 1;
    assert!(
        answered <= answered_max,
        "answered {answered} requests with nobody reading (bound {answered_max})"
    );
    // Read ahead: the server holds at most one read (8 KiB) and the pipe holds its
    // capacity; the rest stays with the client.
    let sent_max = answered + (8 * 1024 + PIPE) / REQUEST.len() + 1;
    assert!(
        sent <= sent_max,
        "the client got {sent} requests out with {answered} answered (bound {sent_max})"
    );
    assert!(sent < REQUESTS, "the client was never pushed back");

    // Once the client reads, everything is answered, in order and complete.
    let mut c = H1Conn::from_parts(read_half, Vec::new());
    let read_all = async {
        for i in 0..REQUESTS {
            let res = c.read_response().await;
            assert_eq!(res.status, 200, "response {i}");
            assert_eq!(res.body.len(), BODY, "response {i}");
        }
    };
    let mut read_all = std::pin::pin!(read_all);
    poll_fn(|cx| {
        if read_all.as_mut().poll(cx).is_ready() {
            return Poll::Ready(());
        }
        assert!(conn.as_mut().poll(cx).is_pending(), "the connection ended");
        Poll::Pending
    })
    .await;
    assert_eq!(calls.load(Ordering::SeqCst), REQUESTS);
    let _ = writer.await.expect("writer");
}
