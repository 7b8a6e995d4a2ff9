//! Upgrade requests with bodies of any size (streamed into stream 1), checked with
//! the real `curl` against the `h2c-mux` binary, and the failure cases over raw
//! sockets against an in-process server.

mod common;

use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::binary::Binary;
use common::curl::{assert_upgraded, curl_for, upload_dir};
use common::h1::H1Conn;
use common::h2c::upgrade_fields;
use common::h2frame::{
    SETTINGS_ENABLE_PUSH, SETTINGS_INITIAL_WINDOW_SIZE, SETTINGS_MAX_CONCURRENT_STREAMS,
};
use common::server::Server;
use common::service::{inspect, service_fn, text, Inspected};
use common::{read_to_eof, within, WAIT};
use h2c_mux::Builder;
use http::StatusCode;
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;

/// The server's peak memory during the 100 MB upload stays below this. The body
/// streams through one read buffer and one channel slot; the bound leaves room for
/// the runtime, the allocator and the binary itself.
const MAX_SERVER_RSS_KB: u64 = 64 * 1024;

/// curl's bound on one upload of up to 100 MB to the (debug) binary.
const UPLOAD_TIME: Duration = Duration::from_secs(120);

/// Deterministic file contents (an xorshift stream), so a failure is repeatable.
fn write_file(dir: &Path, len: usize) -> (PathBuf, String) {
    let path = dir.join(format!("upload-{len}"));
    let mut f = std::io::BufWriter::new(std::fs::File::create(&path).expect("create"));
    let mut hasher = Sha256::new();
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15 ^ len as u64;
    let mut left = len;
    let mut block = vec![0u8; 64 * 1024];
    while left > 0 {
        let n = left.min(block.len());
        for chunk in block[..n].chunks_mut(8) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            chunk.copy_from_slice(&x.to_le_bytes()[..chunk.len()]);
        }
        f.write_all(&block[..n]).expect("write");
        hasher.update(&block[..n]);
        left -= n;
    }
    f.flush().expect("flush");
    let hex: String = hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    (path, format!("{hex} {len}\n"))
}

/// Uploads `file` with `curl --http2` (chunked when `chunked`), returning stdout
/// and the verbose trace.
async fn upload(addr: SocketAddr, file: &Path, path: &str, chunked: bool) -> (Vec<u8>, String) {
    let file = file.display().to_string();
    let data = format!("@{file}");
    let url = format!("http://{addr}{path}");
    let mut args = vec!["--http2"];
    if chunked {
        args.extend([
            "-H",
            "Transfer-Encoding: chunked",
            "--data-binary",
            data.as_str(),
        ]);
    } else {
        args.extend(["-T", file.as_str()]);
    }
    args.push(&url);
    let out = curl_for(UPLOAD_TIME, &args).await;
    (out.stdout, out.stderr)
}

#[tokio::test]
async fn uploads_of_every_size_are_upgraded_and_digested() {
    let server = Binary::start().await;
    let dir = upload_dir();
    for len in [0usize, 1, 64 * 1024, 10_000_000, 100_000_000] {
        let (file, want) = write_file(&dir, len);
        for chunked in [false, true] {
            let (body, trace) = upload(server.addr, &file, "/sha256", chunked).await;
            assert_eq!(
                String::from_utf8_lossy(&body),
                want,
                "len {len} chunked {chunked}"
            );
            if len > 0 || chunked {
                assert_upgraded(&trace);
            }
        }
        let _ = std::fs::remove_file(&file);
    }
    let peak = server.kib("VmHWM:");
    eprintln!("server peak RSS after the uploads: {peak} KiB");
    assert!(
        peak < MAX_SERVER_RSS_KB,
        "server peak RSS {peak} KiB over the {MAX_SERVER_RSS_KB} KiB bound"
    );
}

#[tokio::test]
async fn small_uploads_are_echoed_over_stream_1() {
    let server = Binary::start().await;
    let dir = upload_dir();
    for len in [1usize, 1000, 64 * 1024] {
        let (file, _) = write_file(&dir, len);
        let sent = std::fs::read(&file).expect("read back");
        for chunked in [false, true] {
            let (body, trace) = upload(server.addr, &file, "/echo", chunked).await;
            assert_eq!(body, sent, "len {len} chunked {chunked}");
            assert_upgraded(&trace);
        }
    }
}

/// `--max-upgrade-body N` turns streaming off: a body up to N bytes is buffered and
/// upgraded, a larger one is answered over HTTP/1.1 (and still echoed whole).
#[tokio::test]
async fn max_upgrade_body_buffers_up_to_its_bound_and_answers_larger_bodies_over_http1() {
    let server = Binary::start_with(|cmd| {
        cmd.args(["--max-upgrade-body", "1000"]);
    })
    .await;
    let dir = upload_dir();
    for (len, upgraded) in [(1000usize, true), (1001, false), (300_000, false)] {
        let (file, _) = write_file(&dir, len);
        let sent = std::fs::read(&file).expect("read back");
        for chunked in [false, true] {
            let (body, trace) = upload(server.addr, &file, "/echo", chunked).await;
            assert_eq!(body, sent, "len {len} chunked {chunked}");
            if upgraded {
                assert_upgraded(&trace);
            } else {
                assert!(
                    !trace.contains("< HTTP/1.1 101") && trace.contains("< HTTP/1.1 200"),
                    "len {len} chunked {chunked}: answered over HTTP/1.1: {trace}"
                );
            }
        }
        let _ = std::fs::remove_file(&file);
    }
}

/// The binary's line per request names the protocol that carried the answer: an
/// upgrade whose echo outgrew the response hold was answered over HTTP/1.1, one
/// within it over HTTP/2, and a declined upgrade over HTTP/1.1.
#[tokio::test]
async fn the_request_log_names_the_protocol_that_carried_the_answer() {
    let (server, mut log) = Binary::start_logged().await;
    let mut next_request_line = async || {
        within("the request's log line", async {
            loop {
                let line = log.recv().await.expect("the server's log");
                if line.contains(" request ") {
                    return line;
                }
            }
        })
        .await
    };
    let dir = upload_dir();
    let hold = h2c_mux::DEFAULT_MAX_UPGRADE_RESPONSE_HOLD;
    for (len, upgraded) in [(hold + 1, false), (1000, true)] {
        let (file, _) = write_file(&dir, len);
        let (body, trace) = upload(server.addr, &file, "/echo", false).await;
        assert_eq!(body.len(), len);
        assert_eq!(trace.contains("< HTTP/2 200"), upgraded, "{len}: {trace}");
        let line = next_request_line().await;
        let want = if upgraded {
            r#"protocol="h2c-upgrade""#
        } else {
            r#"protocol="http/1.1""#
        };
        assert!(
            line.contains("path=/echo") && line.contains(want),
            "{len}: {line}"
        );
        let _ = std::fs::remove_file(&file);
    }
    // Declined: the HTTP2-Settings value is not base64url.
    let mut s = TcpStream::connect(server.addr).await.expect("connect");
    s.write_all(
        b"GET / HTTP/1.1\r\nHost: x\r\nConnection: Upgrade, HTTP2-Settings, close\r\n\
          Upgrade: h2c\r\nHTTP2-Settings: !!!\r\n\r\n",
    )
    .await
    .expect("send");
    let res = read_to_eof(&mut s).await;
    assert!(res.starts_with(b"HTTP/1.1 200"), "{res:?}");
    let line = next_request_line().await;
    assert!(
        line.contains("path=/ ") && line.contains(r#"protocol="http/1.1""#),
        "{line}"
    );
}

// ---- failure cases, in-process -------------------------------------------------

/// Host and the upgrade fields, announcing MAX_CONCURRENT_STREAMS 100, a 32 MiB
/// INITIAL_WINDOW_SIZE and no push (`AAMAAABkAAQCAAAAAAIAAAAA`).
fn upgrade() -> String {
    format!(
        "Host: t\r\n{}",
        upgrade_fields(&[
            (SETTINGS_MAX_CONCURRENT_STREAMS, 100),
            (SETTINGS_INITIAL_WINDOW_SIZE, 1 << 25),
            (SETTINGS_ENABLE_PUSH, 0),
        ])
    )
}

/// An in-process server whose service reads the whole body and reports what it
/// saw ([`inspect`]).
async fn start_in_process() -> (Server, mpsc::UnboundedReceiver<Inspected>) {
    let (tx, rx) = mpsc::unbounded_channel();
    (Server::start(&Builder::new(), inspect(tx)).await, rx)
}

/// Connects to `addr` and sends `head`.
async fn send_head(addr: SocketAddr, head: &str) -> TcpStream {
    let mut conn = H1Conn::connect(addr).await;
    conn.send(head).await;
    conn.stream
}

/// The text of the body error the service saw.
async fn body_error(rx: &mut mpsc::UnboundedReceiver<Inspected>) -> String {
    match tokio::time::timeout(WAIT, rx.recv()).await {
        Ok(Some(Inspected {
            error_text: Some(e),
            ..
        })) => e,
        other => panic!("the service saw no body error: {other:?}"),
    }
}

/// The next `n` bytes the server sends (bounded).
async fn read_exactly(s: &mut TcpStream, n: usize, what: &str) -> Vec<u8> {
    let mut buf = vec![0u8; n];
    within(what, s.read_exact(&mut buf))
        .await
        .unwrap_or_else(|e| panic!("reading {what}: {e}"));
    buf
}

/// Whether the service read a whole body of `len` bytes.
fn whole_body(seen: &Inspected, len: usize) -> bool {
    seen.body.as_ref().is_ok_and(|b| b.len() == len)
}

#[tokio::test]
async fn a_client_that_stops_mid_body_fails_the_body_and_is_closed() {
    let (server, mut rx) = start_in_process().await;
    let head = format!(
        "POST /up HTTP/1.1\r\n{}Content-Length: 1000\r\n\r\n",
        upgrade()
    );
    let mut s = send_head(server.addr, &head).await;
    s.write_all(&[b'x'; 300]).await.expect("write");
    s.shutdown().await.expect("half-close");
    let e = body_error(&mut rx).await;
    assert!(e.contains("ended early"), "{e}");
    let out = read_to_eof(&mut s).await;
    assert!(
        !String::from_utf8_lossy(&out).contains(" 101 "),
        "no switch after a broken body"
    );
}

#[tokio::test]
async fn a_malformed_chunk_fails_the_body_and_closes() {
    let (server, mut rx) = start_in_process().await;
    let head = format!(
        "POST /up HTTP/1.1\r\n{}Transfer-Encoding: chunked\r\n\r\n",
        upgrade()
    );
    let mut s = send_head(server.addr, &head).await;
    s.write_all(b"5\r\nhello\r\nzz\r\n").await.expect("write");
    let e = body_error(&mut rx).await;
    assert!(e.contains("invalid http/1 message"), "{e}");
    let out = String::from_utf8_lossy(&read_to_eof(&mut s).await).into_owned();
    assert!(
        !out.contains(" 101 "),
        "no switch after a broken body: {out}"
    );
    assert!(out.contains("connection: close"), "{out}");
}

#[tokio::test]
async fn bytes_past_the_content_length_are_not_a_preface() {
    let (server, mut rx) = start_in_process().await;
    let head = format!(
        "POST /up HTTP/1.1\r\n{}Content-Length: 5\r\n\r\n",
        upgrade()
    );
    let mut s = send_head(server.addr, &head).await;
    s.write_all(b"helloEXTRA-BYTES-THAT-ARE-NOT-A-PREFACE")
        .await
        .expect("write");
    // The body is whole at 5 bytes, so the 101 follows; then the extra bytes are
    // checked as the HTTP/2 preface, refused, and the connection closed.
    let out = read_to_eof(&mut s).await;
    assert!(String::from_utf8_lossy(&out).starts_with("HTTP/1.1 101 "));
    // The connection error cancels stream 1's handler; if it got to report, it
    // read exactly the 5 body bytes and nothing of the rest.
    match rx.try_recv() {
        Ok(seen) if whole_body(&seen, 5) => {}
        Err(_) => {}
        other => panic!("the service saw more than the body: {other:?}"),
    }
}

#[tokio::test]
async fn expect_continue_with_and_without_a_body() {
    let (server, mut rx) = start_in_process().await;
    let head = format!(
        "PUT /up HTTP/1.1\r\n{}Expect: 100-continue\r\nContent-Length: 4\r\n\r\n",
        upgrade()
    );
    let mut s = send_head(server.addr, &head).await;
    assert_eq!(
        read_exactly(&mut s, 25, "the 100").await,
        b"HTTP/1.1 100 Continue\r\n\r\n"
    );
    s.write_all(b"abcd").await.expect("write body");
    assert_eq!(read_exactly(&mut s, 12, "the 101").await, b"HTTP/1.1 101");
    match tokio::time::timeout(WAIT, rx.recv()).await {
        Ok(Some(seen)) if whole_body(&seen, 4) => {}
        other => panic!("expected a 4-byte body: {other:?}"),
    }

    // Without a body nothing waits for a 100: the 101 comes at once.
    let head = format!(
        "GET /up HTTP/1.1\r\n{}Expect: 100-continue\r\n\r\n",
        upgrade()
    );
    let mut s = send_head(server.addr, &head).await;
    assert_eq!(read_exactly(&mut s, 12, "the 101").await, b"HTTP/1.1 101");
}

/// A service that answers at once, large, without reading the body: the answer
/// cannot wait for the 101, so it goes out over HTTP/1.1, whole.
#[tokio::test]
async fn an_early_large_answer_is_sent_over_http1() {
    const LEN: usize = 1 << 20;
    let early = service_fn(|_| async { text(StatusCode::OK, vec![b'z'; LEN]) });
    let server = Server::start(&Builder::new(), early).await;
    let head = format!(
        "POST /up HTTP/1.1\r\n{}Content-Length: 100000\r\n\r\n",
        upgrade()
    );
    let s = send_head(server.addr, &head).await;
    // The client is still uploading; it sends the rest while reading.
    let (r, mut w) = s.into_split();
    let writer = tokio::spawn(async move {
        let _ = w.write_all(&vec![b'u'; 100_000]).await;
        w
    });
    let res = H1Conn::new(r).read_response().await;
    assert_eq!(
        (res.version.as_str(), res.status, res.reason.as_str()),
        ("HTTP/1.1", 200, "OK"),
        "{:?}",
        res.headers
    );
    assert_eq!(res.body.len(), LEN);
    assert!(res.body.iter().all(|b| *b == b'z'));
    drop(writer.await);
}
