//! Every server timer, on paused time: the HTTP/1.1 header read, keep-alive and
//! body read timeouts, the HTTP/2 preface timeout (prior knowledge and after the
//! `101`), the HTTP/2 keep-alive PING and the HTTP/2 idle GOAWAY.
//!
//! The tests run on paused time (`start_paused`) over `tokio::io::duplex` with
//! `Builder::serve_connection`: the clock only moves when every task is idle, so a
//! timeout fires exactly when the server has nothing else to do, and the elapsed
//! (virtual) time can be checked against the configured bound deterministically.
//! Each test starts from [`quiet`] (every timer far away), so only the one under
//! test can end the connection.

mod common;

use std::time::Duration;

use common::h1::{count_status_lines, parse_responses, H1Conn};
use common::h2c::{upgrade_on, UPGRADE_GET};
use common::h2frame::{
    frame, headers_frame, request_fields, Frame, ACK, DATA, GOAWAY, HEADERS, NO_ERROR, PING,
};
use common::h2raw::h2_duplex;
use common::read_to_eof;
use common::server::{conn_result, duplex_conn, quiet, FAR};
use common::service::inspect;
use h2c_mux::demo::Demo;
use h2c_mux::Builder;
use tokio::io::AsyncWriteExt;
use tokio::sync::mpsc;
use tokio::time::{timeout, Instant};

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

fn is_ping(f: &Frame) -> bool {
    f.ty == PING && f.flags & ACK == 0
}

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
    let (mut c, conn) = h2_duplex(&pinged_every_10s(), Demo::new()).await;
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
    let (mut c, conn) = h2_duplex(&pinged_every_10s(), Demo::new()).await;
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
    let (mut c, conn) = h2_duplex(&idle_after_10s(), Demo::new()).await;
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
    let (mut c, conn) = h2_duplex(&idle_after_10s(), Demo::new()).await;
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
    let (mut c, conn) = h2_duplex(&idle_after_10s(), Demo::new()).await;
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
    let (mut c, conn) = h2_duplex(&b, Demo::new()).await;
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
    let (mut c, conn) = h2_duplex(&idle_after_10s(), Demo::new()).await;
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
