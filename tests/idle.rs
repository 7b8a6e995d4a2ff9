//! Idle HTTP/1.1 connections park: between requests they hold no read or write
//! buffer and no request state, only the socket, the service and the keep-alive
//! timer. These tests drive a `Connection` by hand over an in-memory pipe, so its
//! state (`Debug` shows `running` or `parked`) can be checked at each step, and run
//! on a paused clock, so the delays are exact and nothing sleeps.

mod common;

use std::future::{poll_fn, Future};
use std::pin::{pin, Pin};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::time::Duration;

use common::h1::H1Conn;
use h2c_mux::demo::Demo;
use h2c_mux::{Builder, Connection};
use tokio::io::DuplexStream;

const GET: &[u8] = b"GET / HTTP/1.1\r\nhost: example.test\r\n\r\n";

fn open(builder: &Builder) -> (Pin<Box<Connection>>, H1Conn<DuplexStream>) {
    let (client, server) = tokio::io::duplex(256 * 1024);
    let conn = Box::pin(builder.serve_connection(server, Demo::new()));
    (conn, H1Conn::from_parts(client, Vec::new()))
}

/// Awaits `fut` while polling the connection; the connection must not end meanwhile.
async fn drive<F: Future>(conn: &mut Pin<Box<Connection>>, fut: F) -> F::Output {
    let mut fut = pin!(fut);
    poll_fn(|cx| {
        if let Poll::Ready(out) = fut.as_mut().poll(cx) {
            return Poll::Ready(out);
        }
        if let Poll::Ready(res) = conn.as_mut().poll(cx) {
            panic!("connection ended early: {res:?}");
        }
        Poll::Pending
    })
    .await
}

/// Polls the connection once, so it reaches the state its input leads to; returns
/// whether it completed.
async fn poll_once(conn: &mut Pin<Box<Connection>>) -> bool {
    poll_fn(|cx| Poll::Ready(conn.as_mut().poll(cx).is_ready())).await
}

/// The server closes its side now (the client reads EOF, with the clock stopped),
/// and the connection ends once the client closes too (the server reads what the
/// client still sends for a bounded while before it lets go; see `linger.rs`).
/// Returns how long (on the paused clock) the client waited for its EOF.
async fn closes(mut conn: Pin<Box<Connection>>, mut c: H1Conn<DuplexStream>) -> Duration {
    let start = tokio::time::Instant::now();
    let eof = async {
        c.expect_closed().await;
        c
    };
    let c = drive(&mut conn, eof).await;
    let waited = start.elapsed();
    drop(c);
    let res = poll_fn(|cx| conn.as_mut().poll(cx)).await;
    assert!(res.is_ok(), "{res:?}");
    waited
}

fn is_parked(conn: &Connection) -> bool {
    format!("{conn:?}").contains("state: \"parked\"")
}

async fn get_ok(conn: &mut Pin<Box<Connection>>, c: &mut H1Conn<DuplexStream>) {
    c.send(GET).await;
    let res = drive(conn, c.read_response()).await;
    assert_eq!(res.status, 200);
    assert_eq!(res.body_str(), "hello world\n");
    assert!(!poll_once(conn).await, "the connection stays open");
}

#[tokio::test(start_paused = true)]
async fn an_idle_connection_parks_after_its_first_response_and_serves_the_next() {
    let (mut conn, mut c) = open(&Builder::new());
    get_ok(&mut conn, &mut c).await;
    assert!(is_parked(&conn), "idle after one response: {conn:?}");
    get_ok(&mut conn, &mut c).await;
}

#[tokio::test(start_paused = true)]
async fn back_to_back_requests_keep_the_buffers_until_idle_release_after() {
    let mut b = Builder::new();
    b.idle_release_after(Duration::from_millis(100));
    let (mut conn, mut c) = open(&b);
    get_ok(&mut conn, &mut c).await;
    assert!(is_parked(&conn));
    // The next request comes at once: the connection is in use back to back.
    get_ok(&mut conn, &mut c).await;
    assert!(
        !is_parked(&conn),
        "warm connection parked at once: {conn:?}"
    );
    tokio::time::advance(Duration::from_millis(99)).await;
    assert!(!poll_once(&mut conn).await);
    assert!(
        !is_parked(&conn),
        "parked before idle_release_after: {conn:?}"
    );
    tokio::time::advance(Duration::from_millis(2)).await;
    assert!(!poll_once(&mut conn).await);
    assert!(
        is_parked(&conn),
        "still holding buffers after the delay: {conn:?}"
    );
    get_ok(&mut conn, &mut c).await;
}

#[tokio::test(start_paused = true)]
async fn a_slow_client_does_not_keep_the_buffers_between_requests() {
    let mut b = Builder::new();
    b.idle_release_after(Duration::from_millis(100));
    let (mut conn, mut c) = open(&b);
    get_ok(&mut conn, &mut c).await;
    tokio::time::advance(Duration::from_millis(150)).await;
    get_ok(&mut conn, &mut c).await;
    assert!(
        is_parked(&conn),
        "a gap longer than idle_release_after parks at once: {conn:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn zero_idle_release_after_parks_after_every_response() {
    let mut b = Builder::new();
    b.idle_release_after(Duration::ZERO);
    let (mut conn, mut c) = open(&b);
    for _ in 0..3 {
        get_ok(&mut conn, &mut c).await;
        assert!(is_parked(&conn), "{conn:?}");
    }
}

#[tokio::test(start_paused = true)]
async fn a_parked_connection_closes_at_the_keep_alive_timeout() {
    let mut b = Builder::new();
    b.keep_alive_timeout(Duration::from_secs(5));
    let (mut conn, mut c) = open(&b);
    get_ok(&mut conn, &mut c).await;
    assert!(is_parked(&conn));
    tokio::time::advance(Duration::from_millis(4_990)).await;
    assert!(!poll_once(&mut conn).await);
    assert!(is_parked(&conn), "closing before the timeout: {conn:?}");
    tokio::time::advance(Duration::from_millis(20)).await;
    assert_eq!(closes(conn, c).await, Duration::ZERO);
}

#[tokio::test(start_paused = true)]
async fn the_keep_alive_timeout_counts_from_the_start_of_the_idle_gap() {
    // A warm connection parks only after idle_release_after; the keep-alive
    // timeout still runs from the moment it went idle.
    let mut b = Builder::new();
    b.keep_alive_timeout(Duration::from_secs(1))
        .idle_release_after(Duration::from_millis(100));
    let (mut conn, mut c) = open(&b);
    get_ok(&mut conn, &mut c).await;
    get_ok(&mut conn, &mut c).await;
    assert!(!is_parked(&conn));
    tokio::time::advance(Duration::from_millis(101)).await;
    assert!(!poll_once(&mut conn).await);
    assert!(is_parked(&conn));
    tokio::time::advance(Duration::from_millis(880)).await;
    assert!(!poll_once(&mut conn).await);
    assert!(is_parked(&conn), "closing before the timeout: {conn:?}");
    tokio::time::advance(Duration::from_millis(30)).await;
    assert_eq!(closes(conn, c).await, Duration::ZERO);
}

#[tokio::test(start_paused = true)]
async fn graceful_shutdown_closes_a_parked_connection_at_once() {
    let (mut conn, mut c) = open(&Builder::new());
    get_ok(&mut conn, &mut c).await;
    assert!(is_parked(&conn));
    conn.graceful_shutdown();
    assert_eq!(closes(conn, c).await, Duration::ZERO, "closes at once");
}

#[tokio::test(start_paused = true)]
async fn a_client_that_leaves_while_parked_ends_the_connection() {
    let (mut conn, mut c) = open(&Builder::new());
    get_ok(&mut conn, &mut c).await;
    assert!(is_parked(&conn));
    drop(c);
    let res = poll_fn(|cx| conn.as_mut().poll(cx)).await;
    assert!(res.is_ok(), "{res:?}");
}

#[tokio::test(start_paused = true)]
async fn a_head_larger_than_one_stack_read_is_served_after_parking() {
    let (mut conn, mut c) = open(&Builder::new());
    get_ok(&mut conn, &mut c).await;
    assert!(is_parked(&conn));
    let mut req = b"GET / HTTP/1.1\r\nhost: example.test\r\n".to_vec();
    for i in 0..60 {
        req.extend_from_slice(format!("x-filler-{i}: {}\r\n", "v".repeat(400)).as_bytes());
    }
    req.extend_from_slice(b"\r\n");
    assert!(req.len() > 20 * 1024);
    c.send(&req).await;
    let res = drive(&mut conn, c.read_response()).await;
    assert_eq!(res.status, 200);
    assert_eq!(res.body_str(), "hello world\n");
}

#[tokio::test(start_paused = true)]
async fn pipelined_requests_arriving_at_a_parked_connection_are_answered_in_order() {
    let (mut conn, mut c) = open(&Builder::new());
    get_ok(&mut conn, &mut c).await;
    assert!(is_parked(&conn));
    c.send(b"GET /bytes/3 HTTP/1.1\r\nhost: a\r\n\r\nGET / HTTP/1.1\r\nhost: a\r\n\r\n")
        .await;
    let first = drive(&mut conn, c.read_response()).await;
    assert_eq!((first.status, first.body.len()), (200, 3));
    let second = drive(&mut conn, c.read_response()).await;
    assert_eq!(second.body_str(), "hello world\n");
}

#[tokio::test(start_paused = true)]
async fn an_http1_only_connection_holds_no_buffer_before_its_first_request() {
    let mut b = Builder::new();
    b.prior_knowledge(false).h2c_upgrade(false);
    let (mut conn, mut c) = open(&b);
    assert!(!poll_once(&mut conn).await);
    assert!(is_parked(&conn), "{conn:?}");
    c.send(b"GET / HTTP/1.1\r\nhost: exa").await;
    assert!(!poll_once(&mut conn).await);
    c.send(b"mple.test\r\n\r\n").await;
    let res = drive(&mut conn, c.read_response()).await;
    assert_eq!(res.status, 200);
}

#[tokio::test(start_paused = true)]
async fn a_partial_head_after_parking_is_bounded_by_the_header_read_timeout() {
    let mut b = Builder::new();
    b.header_read_timeout(Duration::from_secs(2));
    let (mut conn, mut c) = open(&b);
    get_ok(&mut conn, &mut c).await;
    assert!(is_parked(&conn));
    c.send(b"GET / HTTP/1.1\r\nhost: exa").await;
    assert!(!poll_once(&mut conn).await);
    tokio::time::advance(Duration::from_millis(1_990)).await;
    assert!(!poll_once(&mut conn).await, "timed out early");
    tokio::time::advance(Duration::from_millis(20)).await;
    let res = drive_to_end(conn, c.read_response()).await;
    assert_eq!(res.status, 408);
}

// ---------------------------------------------------------------------------
// Timer wake-ups: nothing polls the connection after the clock moves, so each
// test fails if the timer does not wake the waker the connection last gave it.
// ---------------------------------------------------------------------------

/// A waker that counts its wake-ups.
struct Count(AtomicUsize);

impl Wake for Count {
    fn wake(self: Arc<Self>) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

fn counting() -> (Waker, Arc<Count>) {
    let count = Arc::new(Count(AtomicUsize::new(0)));
    (Waker::from(count.clone()), count)
}

fn woken(count: &Count) -> usize {
    count.0.load(Ordering::SeqCst)
}

/// Polls the connection once with `waker`; it must stay open.
fn poll_with(conn: &mut Pin<Box<Connection>>, waker: &Waker) {
    let ready = conn
        .as_mut()
        .poll(&mut Context::from_waker(waker))
        .is_ready();
    assert!(!ready, "the connection ended");
}

/// A connection used back to back, so it waits `idle_release_after` (100 ms)
/// before it parks.
async fn warm() -> (Pin<Box<Connection>>, H1Conn<DuplexStream>) {
    let mut b = Builder::new();
    b.idle_release_after(Duration::from_millis(100));
    let (mut conn, mut c) = open(&b);
    get_ok(&mut conn, &mut c).await;
    get_ok(&mut conn, &mut c).await;
    assert!(!is_parked(&conn));
    (conn, c)
}

#[tokio::test(start_paused = true)]
async fn a_warm_connection_is_woken_to_park_at_idle_release_after() {
    let (mut conn, _c) = warm().await;
    let (a, count) = counting();
    poll_with(&mut conn, &a);
    poll_with(&mut conn, &a);
    tokio::time::advance(Duration::from_millis(99)).await;
    assert_eq!(woken(&count), 0, "woken before idle_release_after");
    tokio::time::advance(Duration::from_millis(2)).await;
    assert!(woken(&count) >= 1, "not woken at idle_release_after");
    poll_with(&mut conn, &a);
    assert!(is_parked(&conn), "{conn:?}");
}

#[tokio::test(start_paused = true)]
async fn the_idle_timer_wakes_the_waker_that_polled_last() {
    let (mut conn, _c) = warm().await;
    let (a, _) = counting();
    let (b, count_b) = counting();
    poll_with(&mut conn, &a);
    poll_with(&mut conn, &b);
    tokio::time::advance(Duration::from_millis(101)).await;
    assert!(woken(&count_b) >= 1, "the last waker was not woken");

    let (mut conn, _c) = warm().await;
    let (a, count_a2) = counting();
    poll_with(&mut conn, &a);
    poll_with(&mut conn, &b);
    poll_with(&mut conn, &a);
    tokio::time::advance(Duration::from_millis(101)).await;
    assert!(woken(&count_a2) >= 1, "A, then B, then A: A was not woken");
}

#[tokio::test(start_paused = true)]
async fn a_shutdown_wakes_a_warm_connection_polled_again_with_the_same_waker() {
    // The second poll finds the shutdown and the timer registered with this waker
    // already and does not poll them again: the shutdown must still wake it.
    let (mut conn, c) = warm().await;
    let (a, count) = counting();
    poll_with(&mut conn, &a);
    poll_with(&mut conn, &a);
    conn.graceful_shutdown();
    assert!(
        woken(&count) >= 1,
        "the shutdown did not wake the connection"
    );
    assert_eq!(closes(conn, c).await, Duration::ZERO, "closes at once");
}

#[tokio::test(start_paused = true)]
async fn a_timer_still_due_for_an_earlier_wait_wakes_the_task_again_at_the_new_bound() {
    let (mut conn, mut c) = warm().await;
    tokio::time::advance(Duration::from_millis(50)).await;
    // The next wait is bounded at t = 150 ms; the timer is still due at 100 ms.
    get_ok(&mut conn, &mut c).await;
    let (a, count) = counting();
    poll_with(&mut conn, &a);
    tokio::time::advance(Duration::from_millis(51)).await;
    assert!(woken(&count) >= 1, "not woken at the earlier bound");
    poll_with(&mut conn, &a);
    assert!(!is_parked(&conn), "parked before its own bound: {conn:?}");
    let before = woken(&count);
    tokio::time::advance(Duration::from_millis(50)).await;
    assert!(woken(&count) > before, "not woken at the new bound");
    poll_with(&mut conn, &a);
    assert!(is_parked(&conn), "{conn:?}");
}

#[tokio::test(start_paused = true)]
async fn a_partial_first_head_wakes_the_task_at_the_header_read_timeout() {
    let mut b = Builder::new();
    b.header_read_timeout(Duration::from_secs(2));
    let (mut conn, mut c) = open(&b);
    c.send(b"GET / HTTP/1.1\r\nhost: exa").await;
    let (a, count) = counting();
    poll_with(&mut conn, &a);
    tokio::time::advance(Duration::from_millis(1_990)).await;
    assert_eq!(woken(&count), 0, "woken before the header read timeout");
    tokio::time::advance(Duration::from_millis(20)).await;
    assert!(woken(&count) >= 1, "not woken at the header read timeout");
    let res = drive_to_end(conn, c.read_response()).await;
    assert_eq!(res.status, 408);
}

/// Awaits `fut` while polling the connection, which may end meanwhile.
async fn drive_to_end<F: Future>(mut conn: Pin<Box<Connection>>, fut: F) -> F::Output {
    let mut fut = pin!(fut);
    poll_fn(|cx| {
        let _ = conn.as_mut().poll(cx);
        fut.as_mut().poll(cx)
    })
    .await
}
