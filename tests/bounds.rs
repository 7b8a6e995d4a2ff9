//! Per-connection memory bounds of HTTP/1.1: a client that pipelines far more
//! requests than it reads responses for makes the server stop reading and stop
//! answering once `max_write_buffer_size` of output is queued, instead of holding
//! its requests or queueing their responses without bound.
//!
//! The connection is driven by hand over an in-memory pipe of known capacity, so
//! "the server has stopped" is exact: polled until it makes no more progress.

mod common;

use std::convert::Infallible;
use std::future::{poll_fn, Future};
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use common::h1::H1Conn;
use h2c_mux::{Body, Builder, Connection};
use http::{Request, Response};
use http_body_util::Full;
use tokio::io::AsyncWriteExt;

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
