//! Upgrade requests with bodies of any size (streamed into stream 1), checked with
//! the real `curl` against the `h2c-mux` binary, and the failure cases over raw
//! sockets against an in-process server.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::BodyExt;
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

/// The server's peak memory during the 100 MB upload stays below this. The body
/// streams through one read buffer and one channel slot; the bound leaves room for
/// the runtime, the allocator and the binary itself.
const MAX_SERVER_RSS_KB: u64 = 64 * 1024;

const WAIT: Duration = Duration::from_secs(60);

struct Server {
    child: Child,
    addr: String,
}

impl Server {
    fn start() -> Server {
        let mut child = Command::new(env!("CARGO_BIN_EXE_h2c-mux"))
            .args(["--listen", "127.0.0.1:0", "--quiet", "--log", "info"])
            .env("NO_COLOR", "1")
            .env_remove("RUST_LOG")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start the h2c-mux binary");
        let out = child.stdout.take().expect("stdout");
        let mut lines = BufReader::new(out).lines();
        let addr = loop {
            let line = lines
                .next()
                .expect("server exited before listening")
                .expect("read server output");
            if let Some(rest) = line.split("addr=").nth(1) {
                break rest.split_whitespace().next().unwrap_or("").to_owned();
            }
        };
        assert!(addr.starts_with("127.0.0.1:"), "listening on {addr}");
        Server { child, addr }
    }

    /// Peak resident memory of the server process, in KiB.
    fn peak_rss_kb(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .expect("read /proc status");
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmHWM in /proc status")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn curl() -> Command {
    let path = Path::new("/usr/bin/curl");
    assert!(
        path.exists(),
        "curl not found: install curl (apt-get install -y curl)"
    );
    Command::new(path)
}

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
fn upload(addr: &str, file: &Path, path: &str, chunked: bool) -> (Vec<u8>, String) {
    let mut cmd = curl();
    cmd.args(["-sS", "-v", "--http2", "--max-time", "120"]);
    if chunked {
        cmd.args(["-H", "Transfer-Encoding: chunked", "--data-binary"])
            .arg(format!("@{}", file.display()));
    } else {
        cmd.arg("-T").arg(file);
    }
    let out = cmd
        .arg(format!("http://{addr}{path}"))
        .output()
        .expect("run curl");
    let trace = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "curl failed: {trace}");
    (out.stdout, trace)
}

fn assert_upgraded(trace: &str) {
    let switch = trace
        .find("< HTTP/1.1 101")
        .unwrap_or_else(|| panic!("no 101 in: {trace}"));
    let h2 = trace
        .find("< HTTP/2 200")
        .unwrap_or_else(|| panic!("no HTTP/2 200 in: {trace}"));
    assert!(switch < h2, "101 before the HTTP/2 response");
}

#[test]
fn uploads_of_every_size_are_upgraded_and_digested() {
    let server = Server::start();
    let dir = tempdir();
    for len in [0usize, 1, 64 * 1024, 10_000_000, 100_000_000] {
        let (file, want) = write_file(&dir, len);
        for chunked in [false, true] {
            let (body, trace) = upload(&server.addr, &file, "/sha256", chunked);
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
    let peak = server.peak_rss_kb();
    eprintln!("server peak RSS after the uploads: {peak} KiB");
    assert!(
        peak < MAX_SERVER_RSS_KB,
        "server peak RSS {peak} KiB over the {MAX_SERVER_RSS_KB} KiB bound"
    );
}

#[test]
fn small_uploads_are_echoed_over_stream_1() {
    let server = Server::start();
    let dir = tempdir();
    for len in [1usize, 1000, 64 * 1024] {
        let (file, _) = write_file(&dir, len);
        let sent = std::fs::read(&file).expect("read back");
        for chunked in [false, true] {
            let (body, trace) = upload(&server.addr, &file, "/echo", chunked);
            assert_eq!(body, sent, "len {len} chunked {chunked}");
            assert_upgraded(&trace);
        }
    }
}

fn tempdir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "h2c-mux-upload-{}-{:?}",
        std::process::id(),
        std::thread::current().id()
    ));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

// ---- failure cases, in-process -------------------------------------------------

/// A service that reads the whole body and reports how that went.
#[derive(Clone)]
struct Report(mpsc::UnboundedSender<Result<usize, String>>);

impl tower_service::Service<Request<h2c_mux::Body>> for Report {
    type Response = Response<String>;
    type Error = std::convert::Infallible;
    type Future = std::pin::Pin<
        Box<dyn std::future::Future<Output = Result<Response<String>, Self::Error>> + Send>,
    >;

    fn poll_ready(
        &mut self,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<h2c_mux::Body>) -> Self::Future {
        let tx = self.0.clone();
        Box::pin(async move {
            let result = match req.into_body().collect().await {
                Ok(b) => Ok(b.to_bytes().len()),
                Err(e) => Err(e.to_string()),
            };
            let text = format!("{result:?}\n");
            let _ = tx.send(result);
            Ok(Response::new(text))
        })
    }
}

async fn start_in_process() -> (String, mpsc::UnboundedReceiver<Result<usize, String>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr").to_string();
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        let _ = h2c_mux::Builder::new()
            .serve(listener, Report(tx), std::future::pending())
            .await;
    });
    (addr, rx)
}

const UPGRADE: &str = "Host: t\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQCAAAAAAIAAAAA\r\n";

/// Reads until the server closes, returning what it sent.
async fn read_to_close(s: &mut TcpStream) -> Vec<u8> {
    let mut out = Vec::new();
    tokio::time::timeout(WAIT, async {
        let mut buf = [0u8; 4096];
        loop {
            match s.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => out.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await
    .expect("the server closes the connection");
    out
}

async fn body_error(rx: &mut mpsc::UnboundedReceiver<Result<usize, String>>) -> String {
    match tokio::time::timeout(WAIT, rx.recv()).await {
        Ok(Some(Err(e))) => e,
        other => panic!("the service saw no body error: {other:?}"),
    }
}

#[tokio::test]
async fn a_client_that_stops_mid_body_fails_the_body_and_is_closed() {
    let (addr, mut rx) = start_in_process().await;
    let mut s = TcpStream::connect(&addr).await.expect("connect");
    let head = format!("POST /up HTTP/1.1\r\n{UPGRADE}Content-Length: 1000\r\n\r\n");
    s.write_all(head.as_bytes()).await.expect("write");
    s.write_all(&[b'x'; 300]).await.expect("write");
    s.shutdown().await.expect("half-close");
    let e = body_error(&mut rx).await;
    assert!(e.contains("ended early"), "{e}");
    let out = read_to_close(&mut s).await;
    assert!(
        !String::from_utf8_lossy(&out).contains(" 101 "),
        "no switch after a broken body"
    );
}

#[tokio::test]
async fn a_malformed_chunk_fails_the_body_and_closes() {
    let (addr, mut rx) = start_in_process().await;
    let mut s = TcpStream::connect(&addr).await.expect("connect");
    let head = format!("POST /up HTTP/1.1\r\n{UPGRADE}Transfer-Encoding: chunked\r\n\r\n");
    s.write_all(head.as_bytes()).await.expect("write");
    s.write_all(b"5\r\nhello\r\nzz\r\n").await.expect("write");
    let e = body_error(&mut rx).await;
    assert!(e.contains("invalid http/1 message"), "{e}");
    let out = String::from_utf8_lossy(&read_to_close(&mut s).await).into_owned();
    assert!(
        !out.contains(" 101 "),
        "no switch after a broken body: {out}"
    );
    assert!(out.contains("connection: close"), "{out}");
}

#[tokio::test]
async fn bytes_past_the_content_length_are_not_a_preface() {
    let (addr, mut rx) = start_in_process().await;
    let mut s = TcpStream::connect(&addr).await.expect("connect");
    let head = format!("POST /up HTTP/1.1\r\n{UPGRADE}Content-Length: 5\r\n\r\n");
    s.write_all(head.as_bytes()).await.expect("write");
    s.write_all(b"helloEXTRA-BYTES-THAT-ARE-NOT-A-PREFACE")
        .await
        .expect("write");
    // The body is whole at 5 bytes, so the 101 follows; then the extra bytes are
    // checked as the HTTP/2 preface, refused, and the connection closed.
    let out = read_to_close(&mut s).await;
    assert!(String::from_utf8_lossy(&out).starts_with("HTTP/1.1 101 "));
    // The connection error cancels stream 1's handler; if it got to report, it
    // read exactly the 5 body bytes and nothing of the rest.
    match rx.try_recv() {
        Ok(Ok(5)) | Err(_) => {}
        other => panic!("the service saw more than the body: {other:?}"),
    }
}

#[tokio::test]
async fn expect_continue_with_and_without_a_body() {
    let (addr, mut rx) = start_in_process().await;
    let mut s = TcpStream::connect(&addr).await.expect("connect");
    let head =
        format!("PUT /up HTTP/1.1\r\n{UPGRADE}Expect: 100-continue\r\nContent-Length: 4\r\n\r\n");
    s.write_all(head.as_bytes()).await.expect("write");
    let mut buf = vec![0u8; 25];
    tokio::time::timeout(WAIT, s.read_exact(&mut buf))
        .await
        .expect("100 in time")
        .expect("read 100");
    assert_eq!(&buf[..], b"HTTP/1.1 100 Continue\r\n\r\n");
    s.write_all(b"abcd").await.expect("write body");
    let mut head101 = vec![0u8; 12];
    tokio::time::timeout(WAIT, s.read_exact(&mut head101))
        .await
        .expect("101 in time")
        .expect("read 101");
    assert_eq!(&head101[..], b"HTTP/1.1 101");
    match tokio::time::timeout(WAIT, rx.recv()).await {
        Ok(Some(Ok(4))) => {}
        other => panic!("expected a 4-byte body: {other:?}"),
    }

    // Without a body nothing waits for a 100: the 101 comes at once.
    let mut s = TcpStream::connect(&addr).await.expect("connect");
    let head = format!("GET /up HTTP/1.1\r\n{UPGRADE}Expect: 100-continue\r\n\r\n");
    s.write_all(head.as_bytes()).await.expect("write");
    let mut first = vec![0u8; 12];
    tokio::time::timeout(WAIT, s.read_exact(&mut first))
        .await
        .expect("101 in time")
        .expect("read 101");
    assert_eq!(&first[..], b"HTTP/1.1 101");
}

/// A service that answers at once, large, without reading the body: the answer
/// cannot wait for the 101, so it goes out over HTTP/1.1, whole.
#[tokio::test]
async fn an_early_large_answer_is_sent_over_http1() {
    #[derive(Clone)]
    struct Early;
    impl tower_service::Service<Request<h2c_mux::Body>> for Early {
        type Response = Response<http_body_util::Full<Bytes>>;
        type Error = std::convert::Infallible;
        type Future = std::future::Ready<Result<Self::Response, Self::Error>>;
        fn poll_ready(
            &mut self,
            _: &mut std::task::Context<'_>,
        ) -> std::task::Poll<Result<(), Self::Error>> {
            std::task::Poll::Ready(Ok(()))
        }
        fn call(&mut self, _req: Request<h2c_mux::Body>) -> Self::Future {
            std::future::ready(Ok(Response::new(http_body_util::Full::new(Bytes::from(
                vec![b'z'; 1 << 20],
            )))))
        }
    }
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let _ = h2c_mux::Builder::new()
            .serve(listener, Early, std::future::pending())
            .await;
    });
    let mut s = TcpStream::connect(addr).await.expect("connect");
    let head = format!("POST /up HTTP/1.1\r\n{UPGRADE}Content-Length: 100000\r\n\r\n");
    s.write_all(head.as_bytes()).await.expect("write");
    // The client is still uploading; it sends the rest while reading.
    let (mut r, mut w) = s.into_split();
    let writer = tokio::spawn(async move {
        let _ = w.write_all(&vec![b'u'; 100_000]).await;
        w
    });
    let mut out = Vec::new();
    let want = 1 << 20;
    tokio::time::timeout(WAIT, async {
        let mut buf = vec![0u8; 65536];
        loop {
            let n = r.read(&mut buf).await.expect("read");
            assert!(n > 0, "closed before the whole response");
            out.extend_from_slice(&buf[..n]);
            if let Some(end) = out.windows(4).position(|w| w == b"\r\n\r\n") {
                if out.len() >= end + 4 + want {
                    break;
                }
            }
        }
    })
    .await
    .expect("the whole response in time");
    let text = String::from_utf8_lossy(&out[..64]).into_owned();
    assert!(text.starts_with("HTTP/1.1 200 OK\r\n"), "{text}");
    let end = out.windows(4).position(|w| w == b"\r\n\r\n").unwrap_or(0) + 4;
    assert!(out[end..].iter().all(|b| *b == b'z'));
    drop(writer.await);
}
