//! HTTP/2 abuse with a raw-frame client: frames are written by hand (HPACK
//! literals without indexing, no Huffman) and the server's frames are read back.
//! After each attack a well-behaved client on another connection must still get
//! `GET /` -> `hello world\n`.
//!
//! Most attacks run against `Builder::serve` on 127.0.0.1:0 over TCP. The two
//! floods whose defence is "stop reading while the acknowledgements cannot be
//! written" run over a small `tokio::io::duplex` pipe on paused time: a write that
//! can make no progress leaves every task idle, so the paused clock jumps to the
//! test's bound and the stall is observed deterministically (no wall-clock guess).

mod common;

use std::time::Duration;

use common::h1::assert_h1_hello;
use common::h2client::{assert_h2_hello, assert_h2_hello_on};
use common::h2frame::{
    frame, headers_frame, ping_frame, request_fields, rst_frame, settings_frame, summarize,
    window_update_frame, Frame, CANCEL, COMPRESSION_ERROR, CONTINUATION, DATA, END_HEADERS,
    END_STREAM, ENHANCE_YOUR_CALM, FLOW_CONTROL_ERROR, GOAWAY, HEADERS, PROTOCOL_ERROR,
    REFUSED_STREAM, RST_STREAM, SETTINGS_INITIAL_WINDOW_SIZE,
};
use common::h2raw::{H2Raw, RAW_SETTINGS};
use common::hpack;
use common::server::{conn_result, duplex_conn, duplex_conn_sized, Server};
use common::service::inspect_with_hello;
use common::WAIT;
use h2c_mux::demo::Demo;
use h2c_mux::Builder;
use tokio::io::{AsyncWriteExt, DuplexStream};
use tokio::sync::mpsc;
use tokio::time::timeout;

/// The demo served with `builder`, and a raw connection to it.
async fn demo_and_connection(builder: &Builder) -> (Server, H2Raw) {
    let server = Server::start(builder, Demo::new()).await;
    let s = H2Raw::connect(server.addr).await;
    (server, s)
}

/// Another connection, HTTP/2 and HTTP/1.1, is still answered.
async fn others_are_served(server: &Server) {
    assert_h2_hello(server.addr).await;
    assert_h1_hello(server.addr).await;
}

/// Writes `flood` on its own task (the server may stop reading or reset the
/// connection: write errors are ignored) and reads until `stop` or the end.
async fn flood_and_read<F>(s: H2Raw, flood: Vec<u8>, stop: F) -> (Vec<Frame>, bool)
where
    F: FnMut(&Frame) -> bool,
{
    let (mut rd, mut wr) = s.split();
    let writer = tokio::spawn(async move {
        let _ = wr.write_all(&flood).await;
        wr
    });
    let out = rd.read_frames_until(stop).await;
    writer.abort();
    let _ = writer.await;
    out
}

/// The connection ended: with a GOAWAY carrying one of `codes` as the last frame
/// read, or without one (`ended`).
fn assert_goaway_or_end(frames: &[Frame], ended: bool, codes: &[u32]) {
    match frames.last().filter(|f| f.ty == GOAWAY) {
        Some(g) => assert!(
            codes.contains(&g.error_code()),
            "GOAWAY code not in {codes:?}: {:?}",
            summarize(frames)
        ),
        None => assert!(ended, "{:?}", summarize(frames)),
    }
}

fn get_then_rst(n: u32) -> Vec<u8> {
    let mut flood = Vec::new();
    for i in 0..n {
        let id = 2 * i + 1;
        flood.extend_from_slice(&headers_frame(id, true, &request_fields("GET", "/")));
        flood.extend_from_slice(&rst_frame(id, CANCEL));
    }
    flood
}

#[tokio::test]
async fn rapid_reset_gets_goaway_enhance_your_calm() {
    let (server, s) = demo_and_connection(&Builder::new()).await;
    // 1,000 streams opened and cancelled at once: far over the default of 20
    // reset streams pending accept.
    let (frames, ended) = flood_and_read(s, get_then_rst(1000), |f| f.ty == GOAWAY).await;
    let goaway = frames.last().filter(|f| f.ty == GOAWAY);
    assert!(
        goaway.is_some(),
        "no GOAWAY (ended: {ended}): {:?}",
        summarize(&frames)
    );
    assert_eq!(goaway.unwrap().error_code(), ENHANCE_YOUR_CALM);
    others_are_served(&server).await;
    server.stop().await.unwrap();
}

#[tokio::test]
async fn rapid_reset_bound_is_the_builders_max_pending_accept_reset_streams() {
    // Raised far above the flood: the same 1,000 resets are tolerated...
    let mut b = Builder::new();
    b.max_pending_accept_reset_streams(5000);
    let (server, mut s) = demo_and_connection(&b).await;
    let frames = s.exchange_until_pong(&get_then_rst(1000)).await;
    assert!(
        frames.iter().all(|f| f.ty != GOAWAY),
        "{:?}",
        summarize(&frames)
    );
    drop(s);
    server.stop().await.unwrap();

    // ...and lowered, a handful is not.
    let mut b = Builder::new();
    b.max_pending_accept_reset_streams(2);
    let (server, s) = demo_and_connection(&b).await;
    let (frames, _) = flood_and_read(s, get_then_rst(50), |f| f.ty == GOAWAY).await;
    let last = frames.last().expect("frames");
    assert_eq!(last.ty, GOAWAY, "{:?}", summarize(&frames));
    assert_eq!(last.error_code(), ENHANCE_YOUR_CALM);
    others_are_served(&server).await;
    server.stop().await.unwrap();
}

#[tokio::test]
async fn continuation_flood_ends_the_connection() {
    let server = Server::start(&Builder::new(), Demo::new()).await;

    // HEADERS without END_HEADERS, then 10,000 CONTINUATION frames that never
    // end the block, each adding a small field.
    let s = H2Raw::connect(server.addr).await;
    let mut flood = frame(
        HEADERS,
        END_STREAM,
        1,
        &hpack::encode(&request_fields("GET", "/")),
    );
    for i in 0..10_000 {
        let name = format!("x-c{i}");
        flood.extend_from_slice(&frame(CONTINUATION, 0, 1, &hpack::encode(&[(&name, "v")])));
    }
    let (frames, ended) = flood_and_read(s, flood, |f| f.ty == GOAWAY).await;
    assert_goaway_or_end(&frames, ended, &[ENHANCE_YOUR_CALM]);
    assert!(
        frames.iter().all(|f| f.ty != HEADERS),
        "the endless block must never be answered"
    );

    // Full 16 KiB CONTINUATION frames carrying one huge string: memory is bounded
    // by the frame count limit, not by the declared string length.
    let s = H2Raw::connect(server.addr).await;
    let mut block = vec![0x00];
    hpack::encode_str(&mut block, b"x-huge");
    hpack::encode_int(&mut block, 0x00, 7, 100 << 20); // a 100 MiB value follows
    let mut flood = frame(HEADERS, END_STREAM, 3, &block);
    let filler = vec![b'a'; 16 * 1024];
    for _ in 0..200 {
        flood.extend_from_slice(&frame(CONTINUATION, 0, 3, &filler));
    }
    let (frames, ended) = flood_and_read(s, flood, |f| f.ty == GOAWAY).await;
    assert_goaway_or_end(&frames, ended, &[ENHANCE_YOUR_CALM, COMPRESSION_ERROR]);
    others_are_served(&server).await;
    server.stop().await.unwrap();
}

/// Writes `chunk` up to `max` times, each write bounded by `STALL`. Returns how
/// many were written and whether the writes stalled (the server stopped reading)
/// or failed (the connection ended).
async fn write_until_stalled(
    wr: &mut tokio::io::WriteHalf<DuplexStream>,
    chunk: &[u8],
    max: usize,
) -> (usize, &'static str) {
    const STALL: Duration = Duration::from_secs(5);
    for n in 0..max {
        match timeout(STALL, wr.write_all(chunk)).await {
            Ok(Ok(())) => {}
            Ok(Err(_)) => return (n, "ended"),
            Err(_) => return (n, "stalled"),
        }
    }
    (max, "all written")
}

/// A flood of frames that each ask for an acknowledgement, written without ever
/// reading one: the server must stop reading once it cannot write the
/// acknowledgements (or close), never queue them without bound, and keep serving
/// other connections meanwhile.
async fn ack_flood_is_pushed_back(one: Vec<u8>) {
    let b = Builder::new();
    let (c, conn) = duplex_conn_sized(&b, Demo::new(), 64 * 1024);
    let (rd, mut wr) = H2Raw::open(c, RAW_SETTINGS).await.split();
    let chunk: Vec<u8> = one.repeat(1000);
    // 1,000,000 frames: far more than the pipe (64 KiB each way) and any sane
    // server buffer could hold if the server kept reading.
    let (written, how) = write_until_stalled(&mut wr, &chunk, 1000).await;
    assert_ne!(
        how, "all written",
        "the server kept reading a flood whose acknowledgements it could not write"
    );
    assert!(written < 100, "{written} x 1000 frames were taken in");

    // Meanwhile another connection is served.
    let (c2, conn2) = duplex_conn(&b, Demo::new());
    assert_h2_hello_on(c2).await;
    conn2.abort();

    // The flooding peer reads again and leaves: the connection ends.
    let drain = tokio::spawn(async move {
        let mut rd = rd;
        rd.count_until_closed().await
    });
    let _ = timeout(WAIT, wr.shutdown()).await;
    let _ = conn_result(conn).await;
    let acks = timeout(WAIT, drain).await.expect("bound").expect("drain");
    assert!(acks > 0, "no acknowledgement was ever written");
}

#[tokio::test(start_paused = true)]
async fn settings_flood_without_reading_acks_is_pushed_back() {
    ack_flood_is_pushed_back(settings_frame(&[(SETTINGS_INITIAL_WINDOW_SIZE, 65_535)])).await;
}

#[tokio::test(start_paused = true)]
async fn ping_flood_without_reading_acks_is_pushed_back() {
    ack_flood_is_pushed_back(ping_frame(*b"floodpng")).await;
}

/// Opens `n` streams (POST /echo without END_STREAM, so each stays open) and
/// reads until each got its response HEADERS or a RST_STREAM. Returns
/// (answered stream ids, (refused stream id, code)).
async fn open_streams(s: &mut H2Raw, first: u32, n: u32) -> (Vec<u32>, Vec<(u32, u32)>) {
    let mut out = Vec::new();
    for i in 0..n {
        out.extend_from_slice(&headers_frame(
            first + 2 * i,
            false,
            &request_fields("POST", "/echo"),
        ));
    }
    s.write(&out).await;
    let mut answered = Vec::new();
    let mut refused = Vec::new();
    s.read_until(|f| {
        match f.ty {
            HEADERS => answered.push(f.stream),
            RST_STREAM => refused.push((f.stream, f.error_code())),
            _ => {}
        }
        answered.len() + refused.len() == n as usize
    })
    .await;
    answered.sort_unstable();
    refused.sort_unstable();
    (answered, refused)
}

#[tokio::test]
async fn streams_over_max_concurrent_streams_are_refused() {
    let mut b = Builder::new();
    b.max_concurrent_streams(5);
    let (server, mut s) = demo_and_connection(&b).await;
    let (answered, refused) = open_streams(&mut s, 1, 8).await;
    assert_eq!(answered, vec![1, 3, 5, 7, 9]);
    assert_eq!(
        refused.iter().map(|r| r.0).collect::<Vec<_>>(),
        vec![11, 13, 15]
    );
    assert!(
        refused
            .iter()
            .all(|(_, code)| [REFUSED_STREAM, PROTOCOL_ERROR].contains(code)),
        "{refused:?}"
    );
    // The bound is on concurrency: once stream 1 ends, a new stream is served.
    s.write(&frame(DATA, END_STREAM, 1, b"bye")).await;
    let (r1, _) = s.read_response(1).await;
    assert_eq!(r1.body, b"bye");
    s.write(&headers_frame(17, true, &request_fields("GET", "/")))
        .await;
    let (r17, _) = s.read_response(17).await;
    assert_eq!(r17.body, b"hello world\n");
    others_are_served(&server).await;
    drop(s);
    server.stop().await.unwrap();

    // The default bound, 200.
    let (server, mut s) = demo_and_connection(&Builder::new()).await;
    let (answered, refused) = open_streams(&mut s, 1, 205).await;
    assert_eq!(answered.len(), 200);
    assert_eq!(
        refused.iter().map(|r| r.0).collect::<Vec<_>>(),
        vec![401, 403, 405, 407, 409]
    );
    others_are_served(&server).await;
    drop(s);
    server.stop().await.unwrap();
}

/// A header block that inserts one ~4 KB field into the HPACK dynamic table and
/// then references it `refs` times (one octet each).
fn hpack_bomb(refs: usize) -> Vec<u8> {
    let mut block = hpack::encode(&request_fields("GET", "/bomb"));
    block.push(0x40); // literal with incremental indexing, new name
    hpack::encode_str(&mut block, b"x-bomb");
    hpack::encode_str(&mut block, "b".repeat(4000).as_bytes());
    block.extend(vec![0x80 | 62; refs]); // indexed: dynamic entry 1
    block
}

#[tokio::test]
async fn hpack_bomb_never_reaches_the_service() {
    let (tx, mut rx) = mpsc::unbounded_channel();
    let server = Server::start(&Builder::new(), inspect_with_hello(tx)).await;

    // ~80 KB decoded from ~4 KB on the wire: over the 64 KiB list size, so the
    // stream is answered 431 (or reset) and the connection lives on with its HPACK
    // state in step.
    let mut s = H2Raw::connect(server.addr).await;
    s.write(&frame(
        HEADERS,
        END_HEADERS | END_STREAM,
        1,
        &hpack_bomb(20),
    ))
    .await;
    let (r1, others) = s.read_response(1).await;
    assert!(
        r1.status == Some(431) || r1.reset.is_some(),
        "{r1:?} {:?}",
        summarize(&others)
    );
    assert!(
        others.iter().all(|f| f.ty != GOAWAY),
        "{:?}",
        summarize(&others)
    );
    s.write(&headers_frame(3, true, &request_fields("GET", "/after")))
        .await;
    let (r3, _) = s.read_response(3).await;
    assert_eq!(r3.status, Some(200));
    let seen = rx.recv().await.expect("served");
    assert_eq!(seen.uri, "http://example/after");
    drop(s);

    // ~400 KB decoded: far over the list size, the connection is refused.
    let s = H2Raw::connect(server.addr).await;
    let bomb = frame(HEADERS, END_HEADERS | END_STREAM, 1, &hpack_bomb(100));
    let (frames, ended) = flood_and_read(s, bomb, |f| f.ty == GOAWAY).await;
    assert_goaway_or_end(&frames, ended, &[ENHANCE_YOUR_CALM]);
    others_are_served(&server).await;
    // Only /after and the well-behaved clients' GET / reached the service.
    while let Ok(seen) = rx.try_recv() {
        assert!(!seen.uri.contains("bomb"), "{}", seen.uri);
        assert!(seen.headers.get("x-bomb").is_none());
    }
    server.stop().await.unwrap();
}

/// MadeYouReset (CVE-2025-8671): frames that are valid on their own but make the
/// server reset the stream itself. Past `max_local_error_reset_streams` the
/// connection must be closed with GOAWAY.
async fn made_you_reset(
    builder: &Builder,
    vector: impl Fn(u32) -> Vec<u8>,
    n: u32,
) -> (Vec<Frame>, bool) {
    let (server, s) = demo_and_connection(builder).await;
    let mut flood = Vec::new();
    for i in 0..n {
        flood.extend_from_slice(&vector(2 * i + 1));
    }
    let mut resets = 0;
    let (frames, ended) = flood_and_read(s, flood, |f| {
        resets += usize::from(f.ty == RST_STREAM);
        f.ty == GOAWAY || resets == n as usize
    })
    .await;
    others_are_served(&server).await;
    server.stop().await.unwrap();
    (frames, ended)
}

/// An open stream (POST /echo, body still to come) whose send window is then
/// overflowed: a stream error (FLOW_CONTROL_ERROR) the server resets.
fn window_overflow(id: u32) -> Vec<u8> {
    let mut v = headers_frame(id, false, &request_fields("POST", "/echo"));
    v.extend_from_slice(&window_update_frame(id, 0x7fff_ffff));
    v
}

/// A request with a connection-specific field (RFC 9113 §8.2.2): malformed, the
/// stream is reset with PROTOCOL_ERROR.
fn malformed_headers(id: u32) -> Vec<u8> {
    let mut fields = request_fields("GET", "/");
    fields.push(("connection", "close"));
    headers_frame(id, true, &fields)
}

fn count_resets(frames: &[Frame]) -> usize {
    frames.iter().filter(|f| f.ty == RST_STREAM).count()
}

#[tokio::test]
async fn made_you_reset_gets_goaway_after_max_local_error_reset_streams() {
    let mut b = Builder::new();
    b.max_local_error_reset_streams(10);
    for (name, vector) in [
        ("window overflow", window_overflow as fn(u32) -> Vec<u8>),
        ("malformed headers", malformed_headers),
    ] {
        let (frames, ended) = made_you_reset(&b, vector, 30).await;
        let last = frames.last();
        assert!(
            last.is_some_and(|f| f.ty == GOAWAY),
            "{name}: no GOAWAY (ended {ended}): {:?}",
            summarize(&frames)
        );
        assert_eq!(last.unwrap().error_code(), ENHANCE_YOUR_CALM, "{name}");
        // Resets past the bound are never sent (the RST_STREAMs queued before the
        // GOAWAY may be dropped with the connection).
        assert!(
            count_resets(&frames) <= 10,
            "{name}: {:?}",
            summarize(&frames)
        );
    }

    // Control: under the default bound (1024) the same 30 resets are just resets.
    let d = Builder::new();
    for (name, vector, code) in [
        (
            "window overflow",
            window_overflow as fn(u32) -> Vec<u8>,
            FLOW_CONTROL_ERROR,
        ),
        ("malformed headers", malformed_headers, PROTOCOL_ERROR),
    ] {
        let (frames, _) = made_you_reset(&d, vector, 30).await;
        assert!(
            frames.iter().all(|f| f.ty != GOAWAY),
            "{name}: {:?}",
            summarize(&frames)
        );
        let codes: Vec<u32> = frames
            .iter()
            .filter(|f| f.ty == RST_STREAM)
            .map(Frame::error_code)
            .collect();
        assert_eq!(codes.len(), 30, "{name}");
        assert!(codes.iter().all(|c| *c == code), "{name}: {codes:?}");
    }
}

#[tokio::test]
async fn zero_window_updates_on_open_streams_cannot_force_unbounded_resets() {
    // RFC 9113 §6.9: a WINDOW_UPDATE of 0 on a stream is a stream error. h2 0.4.20
    // treats it as a connection error (GOAWAY PROTOCOL_ERROR) at the first one;
    // either way the peer cannot make the server reset more than the bound.
    let mut b = Builder::new();
    b.max_local_error_reset_streams(10);
    let zero = |id: u32| {
        let mut v = headers_frame(id, false, &request_fields("POST", "/echo"));
        v.extend_from_slice(&window_update_frame(id, 0));
        v
    };
    let (frames, ended) = made_you_reset(&b, zero, 30).await;
    assert!(count_resets(&frames) <= 10, "{:?}", summarize(&frames));
    assert_goaway_or_end(&frames, ended, &[PROTOCOL_ERROR, ENHANCE_YOUR_CALM]);
}
