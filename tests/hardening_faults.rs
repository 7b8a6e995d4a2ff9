//! Silent, slow and vanishing clients, and the h2c smuggling policy.
//!
//! Timer tests run on paused time (`start_paused`) over `tokio::io::duplex` with
//! `Builder::serve_connection`: the clock only moves when every task is idle, so a
//! timeout fires exactly when the server has nothing else to do, and the elapsed
//! (virtual) time can be checked against the configured bound deterministically.
//! Each test sets every other timer far away, so only the one under test can end
//! the connection.

mod common;

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use common::h1::{count_status_lines, h1_exchange, parse_responses, H1Conn};
use common::h2c::{raw_upgrade, upgrade_on, UPGRADE_GET};
use common::h2frame::{
    frame, headers_frame, request_fields, Frame, ACK, DATA, GOAWAY, HEADERS, NO_ERROR, PING,
    PREFACE,
};
use common::h2raw::{H2Raw, RAW_SETTINGS};
use common::server::{conn_result, duplex_conn, ConnHandle, Server};
use common::service::inspect;
use common::{read_to_eof, WAIT};
use h2c_mux::demo::Demo;
use h2c_mux::Builder;
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::time::{timeout, Instant};

const FAR: Duration = Duration::from_secs(3600);

/// Every timer far away; a test brings the one it tests close.
fn quiet() -> Builder {
    let mut b = Builder::new();
    b.keep_alive_timeout(FAR)
        .header_read_timeout(FAR)
        .preface_timeout(FAR)
        .body_read_timeout(FAR)
        .h2_keep_alive_interval(None)
        .h2_keep_alive_timeout(FAR);
    b
}

/// [`quiet`] but for an idle (keep-alive) timeout of 10 s.
fn idle_after_10s() -> Builder {
    let mut b = quiet();
    b.keep_alive_timeout(Duration::from_secs(10));
    b
}

/// [`quiet`] but for an HTTP/2 keep-alive PING every 10 s, answered within 5 s.
fn pinged_every_10s() -> Builder {
    let mut b = quiet();
    b.h2_keep_alive_interval(Some(Duration::from_secs(10)))
        .h2_keep_alive_timeout(Duration::from_secs(5));
    b
}

/// The demo served with `b` over an in-memory pipe, as an HTTP/2 connection past
/// its SETTINGS exchange.
async fn h2_pipe(b: &Builder) -> (H2Raw<DuplexStream>, ConnHandle) {
    let (c, conn) = duplex_conn(b, Demo::new());
    (H2Raw::open(c, RAW_SETTINGS).await, conn)
}

fn is_ping(f: &Frame) -> bool {
    f.ty == PING && f.flags & ACK == 0
}

// ---------------------------------------------------------------------------
// B. Timeouts
// ---------------------------------------------------------------------------

#[tokio::test(start_paused = true)]
async fn partial_head_then_silence_gets_408_then_close_at_header_read_timeout() {
    let mut b = quiet();
    b.header_read_timeout(Duration::from_secs(5));
    let (mut c, conn) = duplex_conn(&b, Demo::new());
    let start = Instant::now();
    c.write_all(b"GET / HTTP/1.1\r\nHost: a\r\n").await.unwrap();
    let bytes = read_to_eof(&mut c).await;
    let waited = start.elapsed();
    let rs = parse_responses(&bytes);
    assert_eq!(rs.len(), 1, "{:?}", String::from_utf8_lossy(&bytes));
    assert_eq!(rs[0].status, 408);
    assert!(rs[0].closes());
    assert!(waited >= Duration::from_secs(5), "{waited:?}");
    assert!(waited < Duration::from_secs(6), "{waited:?}");
    drop(c);
    assert!(conn_result(conn).await.is_err_and(|e| e.is_timeout()));
}

#[tokio::test(start_paused = true)]
async fn header_read_timeout_bounds_the_whole_head_not_the_gaps() {
    // Slowloris: one byte per second keeps arriving, but the head is never done.
    let mut b = quiet();
    b.header_read_timeout(Duration::from_secs(5));
    let (c, conn) = duplex_conn(&b, Demo::new());
    let (mut rd, mut wr) = tokio::io::split(c);
    let start = Instant::now();
    let trickle = tokio::spawn(async move {
        for byte in b"GET / HTTP/1.1\r\nHost: a\r\nX-Slow: "
            .iter()
            .chain(b"a".repeat(100).iter())
        {
            if wr.write_all(&[*byte]).await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    });
    let bytes = read_to_eof(&mut rd).await;
    let waited = start.elapsed();
    assert_eq!(parse_responses(&bytes)[0].status, 408);
    assert!(
        waited >= Duration::from_secs(5) && waited < Duration::from_secs(7),
        "{waited:?}"
    );
    trickle.abort();
    drop(rd);
    let _ = trickle.await;
    assert!(conn_result(conn).await.is_err_and(|e| e.is_timeout()));
}

#[tokio::test(start_paused = true)]
async fn idle_keep_alive_connection_closes_without_a_response() {
    let mut b = quiet();
    b.keep_alive_timeout(Duration::from_secs(10));
    // After one request.
    let (c, conn) = duplex_conn(&b, Demo::new());
    let mut c = H1Conn::new(c);
    c.send(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n").await;
    let res = c.read_response().await;
    assert_eq!(
        (res.version.as_str(), res.status),
        ("HTTP/1.1", 200),
        "{res:?}"
    );
    assert_eq!(res.body, b"hello world\n");
    let start = Instant::now();
    let rest = c.read_to_eof().await;
    let waited = start.elapsed();
    assert!(
        rest.is_empty(),
        "no second response: {:?}",
        String::from_utf8_lossy(&rest)
    );
    assert!(
        waited >= Duration::from_secs(10) && waited < Duration::from_secs(11),
        "{waited:?}"
    );
    drop(c);
    conn_result(conn)
        .await
        .expect("an idle close is a normal end");

    // A connection that never says anything.
    let (mut c, conn) = duplex_conn(&b, Demo::new());
    let start = Instant::now();
    let rest = read_to_eof(&mut c).await;
    assert!(rest.is_empty());
    assert!(start.elapsed() >= Duration::from_secs(10));
    drop(c);
    conn_result(conn).await.expect("normal end");
}

#[tokio::test(start_paused = true)]
async fn stalled_body_is_a_timeout_error_for_the_service_and_closes() {
    let mut b = quiet();
    b.body_read_timeout(Duration::from_secs(5));
    let (tx, mut rx) = mpsc::unbounded_channel();
    let (mut c, conn) = duplex_conn(&b, inspect(tx));
    let start = Instant::now();
    c.write_all(b"POST /up HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\nabc")
        .await
        .unwrap();
    let bytes = read_to_eof(&mut c).await;
    let seen = rx.recv().await.expect("service called");
    let waited = start.elapsed();
    assert_eq!(seen.body.err(), Some("timeout"), "{:?}", seen.error_text);
    // "A stalled one fails within two timeouts at most."
    assert!(
        waited >= Duration::from_secs(5) && waited <= Duration::from_secs(10),
        "{waited:?}"
    );
    let rs = parse_responses(&bytes);
    assert_eq!(rs.len(), 1);
    assert!(rs[0].body_str().contains("error=timeout"));
    assert!(
        rs[0].closes(),
        "the connection must close after a broken body"
    );
    drop(c);
    let _ = conn_result(conn).await;
}

/// DEFAULT_BODY_READ_TIMEOUT: "Covers uploads, including an upgrade request's body
/// before the 101, so no stage between accept and the first HTTP/2 frame waits
/// unbounded." Both upgrade body modes.
#[tokio::test(start_paused = true)]
async fn stalled_upgrade_body_is_cut_off_at_body_read_timeout_without_switching() {
    for streamed in [true, false] {
        let mut b = quiet();
        b.body_read_timeout(Duration::from_secs(5))
            .stream_upgrade_body(streamed);
        let (tx, mut rx) = mpsc::unbounded_channel();
        let (mut c, conn) = duplex_conn(&b, inspect(tx));
        let start = Instant::now();
        let r = UPGRADE_GET.replace("\r\n\r\n", "\r\nContent-Length: 10\r\n\r\nabc");
        c.write_all(r.as_bytes()).await.unwrap();
        let bytes = read_to_eof(&mut c).await;
        let waited = start.elapsed();
        assert!(
            waited >= Duration::from_secs(5) && waited <= Duration::from_secs(10),
            "streamed {streamed}: {waited:?}"
        );
        assert!(
            !bytes.starts_with(b"HTTP/1.1 101"),
            "streamed {streamed}: switched with an incomplete body"
        );
        assert!(count_status_lines(&bytes) <= 1, "streamed {streamed}");
        if streamed {
            let seen = rx.recv().await.expect("service called");
            assert_eq!(seen.body.err(), Some("timeout"), "{:?}", seen.error_text);
        }
        drop(c);
        let _ = conn_result(conn).await;
    }
}

#[tokio::test(start_paused = true)]
async fn a_slow_but_progressing_body_is_not_cut_off() {
    // Every gap (3 s) is under the 5 s progress bound; the whole body takes 30 s.
    let mut b = quiet();
    b.body_read_timeout(Duration::from_secs(5));
    let (tx, mut rx) = mpsc::unbounded_channel();
    let (c, conn) = duplex_conn(&b, inspect(tx));
    let (mut rd, mut wr) = tokio::io::split(c);
    let writer = tokio::spawn(async move {
        wr.write_all(
            b"POST /up HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\nConnection: close\r\n\r\n",
        )
        .await
        .unwrap();
        for i in 0..10u8 {
            tokio::time::sleep(Duration::from_secs(3)).await;
            wr.write_all(&[b'0' + i]).await.unwrap();
        }
        wr
    });
    let seen = timeout(Duration::from_secs(60), rx.recv())
        .await
        .expect("bound")
        .expect("service called");
    assert_eq!(
        seen.body.as_deref().ok(),
        Some(&b"0123456789"[..]),
        "{:?}",
        seen.error_text
    );
    let bytes = read_to_eof(&mut rd).await;
    assert_eq!(parse_responses(&bytes)[0].status, 200);
    drop(writer.await.unwrap());
    drop(rd);
    conn_result(conn).await.expect("normal end");
}

#[tokio::test(start_paused = true)]
async fn partial_prior_knowledge_preface_times_out_at_preface_timeout() {
    let mut b = quiet();
    b.preface_timeout(Duration::from_secs(3));
    let (mut c, conn) = duplex_conn(&b, Demo::new());
    let start = Instant::now();
    c.write_all(b"PRI * HTTP/2.0\r\n").await.unwrap();
    let bytes = read_to_eof(&mut c).await;
    let waited = start.elapsed();
    assert!(bytes.is_empty(), "{:?}", String::from_utf8_lossy(&bytes));
    assert!(
        waited >= Duration::from_secs(3) && waited < Duration::from_secs(4),
        "{waited:?}"
    );
    let e = conn_result(conn).await.expect_err("a timeout is an error");
    assert!(e.is_timeout(), "{e:?}");
}

#[tokio::test(start_paused = true)]
async fn missing_client_preface_after_101_closes_at_preface_timeout() {
    let mut b = quiet();
    b.preface_timeout(Duration::from_secs(3));
    let (c, conn) = duplex_conn(&b, Demo::new());
    let (_, mut c) = upgrade_on(c, UPGRADE_GET.as_bytes()).await;
    let start = Instant::now();
    // Never send the preface: the server's SETTINGS and stream 1 may arrive, then
    // the connection must end.
    let _ = read_to_eof(&mut c.io).await;
    let waited = start.elapsed();
    assert!(
        waited >= Duration::from_secs(2) && waited < Duration::from_secs(4),
        "{waited:?}"
    );
    let e = conn_result(conn).await.expect_err("a timeout is an error");
    assert!(e.is_timeout(), "{e:?}");
}

#[tokio::test(start_paused = true)]
async fn unanswered_h2_keep_alive_ping_closes_the_connection() {
    let (mut c, conn) = h2_pipe(&pinged_every_10s()).await;
    let start = Instant::now();
    c.read_until(is_ping).await;
    let at_ping = start.elapsed();
    assert!(
        at_ping >= Duration::from_secs(10) && at_ping < Duration::from_secs(11),
        "{at_ping:?}"
    );
    // Do not answer: the connection ends a keep-alive timeout later.
    let (frames, ended) = c.read_frames_until(|_| false).await;
    assert!(ended);
    let at_end = start.elapsed();
    assert!(
        at_end >= Duration::from_secs(15) && at_end < Duration::from_secs(16),
        "{at_end:?}"
    );
    assert!(!frames.iter().any(is_ping));
    drop(c);
    let e = conn_result(conn)
        .await
        .expect_err("unanswered ping is an error");
    assert!(e.is_timeout(), "{e:?}");
}

#[tokio::test(start_paused = true)]
async fn answered_h2_keep_alive_pings_keep_the_connection() {
    let (mut c, conn) = h2_pipe(&pinged_every_10s()).await;
    let start = Instant::now();
    for _ in 0..4 {
        let frames = c.read_until(is_ping).await;
        let ping = frames.last().expect("ping");
        c.write(&frame(PING, ACK, 0, &ping.payload)).await;
    }
    assert!(start.elapsed() >= Duration::from_secs(40));
    // Still serving.
    c.write(&headers_frame(1, true, &request_fields("GET", "/")))
        .await;
    let (r, _) = c.read_response(1).await;
    assert_eq!(r.body, b"hello world\n");
    drop(c);
    let _ = conn_result(conn).await;
}

#[tokio::test(start_paused = true)]
async fn idle_h2_connection_gets_goaway_at_keep_alive_timeout() {
    let start = Instant::now();
    let (mut c, conn) = h2_pipe(&idle_after_10s()).await;
    let frames = c.read_until(|f| f.ty == GOAWAY).await;
    let waited = start.elapsed();
    assert!(
        waited >= Duration::from_secs(10) && waited < Duration::from_secs(11),
        "{waited:?}"
    );
    assert_eq!(frames.last().unwrap().error_code(), NO_ERROR);
    // A well-behaved peer answers the shutdown PING; the connection then ends.
    let (_, others) = c.read_response(99).await;
    assert!(others.iter().all(|f| f.ty != HEADERS && f.ty != DATA));
    drop(c);
    conn_result(conn).await.expect("idle close is a normal end");
}

/// The idle clock starts when the last stream ends, not when the connection
/// started: a request at t=4 s on a 10 s idle bound moves the GOAWAY to t=14 s.
#[tokio::test(start_paused = true)]
async fn a_stream_restarts_the_h2_idle_clock() {
    let (mut c, conn) = h2_pipe(&idle_after_10s()).await;
    tokio::time::sleep(Duration::from_secs(4)).await;
    c.write(&headers_frame(1, true, &request_fields("GET", "/")))
        .await;
    let (r, _) = c.read_response(1).await;
    assert_eq!(r.body, b"hello world\n");
    let after_stream = Instant::now();
    c.read_until(|f| f.ty == GOAWAY).await;
    let waited = after_stream.elapsed();
    assert!(
        waited >= Duration::from_secs(10),
        "GOAWAY {waited:?} after the stream ended"
    );
    drop(c);
    let _ = conn_result(conn).await;
}

/// A connection that keeps serving quick requests (one every 3 s) is never idle
/// for 10 s and must not get the idle GOAWAY.
#[tokio::test(start_paused = true)]
async fn a_busy_h2_connection_never_gets_the_idle_goaway() {
    let (mut c, conn) = h2_pipe(&idle_after_10s()).await;
    for i in 0..10u32 {
        tokio::time::sleep(Duration::from_secs(3)).await;
        let id = 2 * i + 1;
        c.write(&headers_frame(id, true, &request_fields("GET", "/")))
            .await;
        let (r, others) = c.read_response(id).await;
        assert!(
            others.iter().all(|f| f.ty != GOAWAY),
            "GOAWAY at request {i} (t = {}s)",
            3 * (i + 1)
        );
        assert_eq!(r.body, b"hello world\n");
    }
    drop(c);
    let _ = conn_result(conn).await;
}

/// With the default HTTP/2 keep-alive, a peer that ignores the PING that follows
/// the idle GOAWAY is still cut off by the keep-alive bound.
#[tokio::test(start_paused = true)]
async fn idle_goaway_ignored_by_the_peer_is_bounded_by_the_h2_keep_alive() {
    let mut b = idle_after_10s();
    b.h2_keep_alive_interval(Some(h2c_mux::DEFAULT_H2_KEEP_ALIVE_INTERVAL))
        .h2_keep_alive_timeout(h2c_mux::DEFAULT_H2_KEEP_ALIVE_TIMEOUT);
    let start = Instant::now();
    let (mut c, conn) = h2_pipe(&b).await;
    c.read_until(|f| f.ty == GOAWAY).await;
    let r = timeout(FAR, c.count_until_closed()).await;
    assert!(
        r.is_ok(),
        "the connection stayed open after its idle GOAWAY"
    );
    let bound = h2c_mux::DEFAULT_H2_KEEP_ALIVE_INTERVAL + h2c_mux::DEFAULT_H2_KEEP_ALIVE_TIMEOUT;
    assert!(
        start.elapsed() <= bound + Duration::from_secs(1),
        "{:?}",
        start.elapsed()
    );
    drop(c);
    let _ = conn_result(conn).await;
}

/// With the HTTP/2 keep-alive off, nothing but the peer's PING acknowledgement
/// ends a connection after its idle GOAWAY: a peer that never answers keeps it
/// (and its memory) forever, which the idle timeout exists to prevent.
#[tokio::test(start_paused = true)]
async fn idle_goaway_ignored_by_the_peer_still_ends_the_connection() {
    let (mut c, conn) = h2_pipe(&idle_after_10s()).await;
    c.read_until(|f| f.ty == GOAWAY).await;
    // Never answer anything. The bound is generous: 10 idle timeouts.
    let r = timeout(Duration::from_secs(100), c.count_until_closed()).await;
    assert!(
        r.is_ok(),
        "the connection stayed open after its idle GOAWAY"
    );
    drop(c);
    let _ = conn_result(conn).await;
}

// ---------------------------------------------------------------------------
// D. Clients that vanish
// ---------------------------------------------------------------------------

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
    let (mut c, conn) = h2_pipe(&b).await;
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
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, mut rx) = mpsc::unbounded_channel();
    let svc = inspect(tx);
    let server = {
        let b = b.clone();
        tokio::spawn(async move {
            let (s, _) = listener.accept().await.unwrap();
            b.serve_connection(s, svc).await
        })
    };
    let mut c = TcpStream::connect(addr).await.unwrap();
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

// ---------------------------------------------------------------------------
// D. The h2c smuggling policy
// ---------------------------------------------------------------------------

fn upgrade_with(field: &str) -> String {
    UPGRADE_GET.replace("\r\n\r\n", &format!("\r\n{field}\r\n\r\n"))
}

#[tokio::test]
async fn proxied_upgrade_requests_are_answered_over_http1_with_the_decline_reason() {
    let mut b = Builder::new();
    b.upgrade_policy(h2c_mux::decline_proxied([]));
    for (field, name) in [
        ("Via: 1.1 proxy", "via"),
        ("X-Forwarded-For: 192.0.2.1", "x-forwarded-for"),
        ("Forwarded: for=192.0.2.1", "forwarded"),
        ("X-Real-IP: 192.0.2.1", "x-real-ip"),
    ] {
        let (tx, mut rx) = mpsc::unbounded_channel();
        let mut r = upgrade_with(field).into_bytes();
        // The connection stays HTTP/1.1: a second request is answered over it.
        r.extend_from_slice(b"GET /after HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n");
        let (bytes, res) = h1_exchange(&b, inspect(tx), &r).await;
        let rs = parse_responses(&bytes);
        assert_eq!(
            rs.iter().map(|r| r.status).collect::<Vec<_>>(),
            vec![200, 200],
            "{field}: {:?}",
            String::from_utf8_lossy(&bytes)
        );
        let want = format!("declined by policy: request came through a proxy ({name})");
        assert!(
            rs[0].body_str().contains(&format!("declined={want}")),
            "{field}"
        );
        let seen = rx.recv().await.expect("served");
        assert_eq!(seen.declined.as_deref(), Some(want.as_str()));
        assert_eq!(seen.protocol, Some(h2c_mux::Protocol::Http1));
        let after = rx
            .recv()
            .await
            .expect("second request served over http/1.1");
        assert_eq!(after.uri, "/after");
        res.expect("normal end");
    }
    // A direct request is upgraded.
    let (tx, mut rx) = mpsc::unbounded_channel();
    let (c, conn) = duplex_conn(&b, inspect(tx));
    let mut c = raw_upgrade(c, UPGRADE_GET).await;
    let (r1, _) = c.read_response(1).await;
    assert_eq!(r1.status, Some(200));
    let seen = rx.recv().await.expect("served");
    assert_eq!(seen.protocol, Some(h2c_mux::Protocol::H2cUpgrade));
    assert!(seen.declined.is_none());
    drop(c);
    let _ = conn_result(conn).await;

    // Control: without the policy, the proxied request is upgraded.
    let (c, conn) = duplex_conn(&Builder::new(), Demo::new());
    let c = raw_upgrade(c, &upgrade_with("Via: 1.1 proxy")).await;
    drop(c);
    let _ = conn_result(conn).await;
}

#[tokio::test]
async fn upgrade_from_a_listed_proxy_address_is_declined() {
    let (tx, mut rx) = mpsc::unbounded_channel();
    let mut b = Builder::new();
    b.upgrade_policy(h2c_mux::decline_proxied([IpAddr::V4(Ipv4Addr::LOCALHOST)]));
    let server = Server::start(&b, inspect(tx)).await;
    let mut s = TcpStream::connect(server.addr).await.unwrap();
    s.write_all(upgrade_with("Connection: close").as_bytes())
        .await
        .unwrap();
    let bytes = read_to_eof(&mut s).await;
    let rs = parse_responses(&bytes);
    assert_eq!(rs.len(), 1);
    assert_eq!(rs[0].status, 200, "{:?}", String::from_utf8_lossy(&bytes));
    let seen = rx.recv().await.expect("served");
    assert_eq!(
        seen.declined.as_deref(),
        Some("declined by policy: peer is a listed proxy")
    );
    server.stop().await.unwrap();

    // Another address listed: the loopback client is upgraded.
    let (tx, _rx) = mpsc::unbounded_channel();
    let mut b = Builder::new();
    b.upgrade_policy(h2c_mux::decline_proxied([IpAddr::V4(Ipv4Addr::new(
        10, 0, 0, 5,
    ))]));
    let server = Server::start(&b, inspect(tx)).await;
    let s = TcpStream::connect(server.addr).await.unwrap();
    let s = raw_upgrade(s, UPGRADE_GET).await;
    drop(s);
    server.stop().await.unwrap();
}
