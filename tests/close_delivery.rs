//! An HTTP/2 connection that closes after a completed exchange delivers all it
//! wrote, even to a client whose frames (`WINDOW_UPDATE`, `PING`) are still on
//! their way when the server closes: a socket closed with unread input is reset,
//! and the reset discards what the client had not read yet.
//!
//! The client here reads a download larger than loopback's socket buffers and,
//! like curl, answers every `DATA` frame with window updates and a `PING` as it
//! goes, so when the server has handed its last byte to the kernel the client
//! still has megabytes to read and keeps sending.
#![cfg(feature = "demo")] // the demo service is behind the `demo` feature (on by default)

use std::io;
use std::time::Duration;

use h2c_mux::demo::Demo;
use h2c_mux::Builder;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;

/// Larger than what loopback's send and receive buffers hold together, so the
/// server finishes writing well before the client finishes reading.
const DOWNLOAD: usize = 32 * 1024 * 1024;

const ROUNDS: usize = 3;

const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
const DATA: u8 = 0x0;
const HEADERS: u8 = 0x1;
const SETTINGS: u8 = 0x4;
const PING: u8 = 0x6;
const GOAWAY: u8 = 0x7;
const WINDOW_UPDATE: u8 = 0x8;
const END_STREAM: u8 = 0x1;
const ACK: u8 = 0x1;
const END_HEADERS: u8 = 0x4;

fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let len = payload.len() as u32;
    let mut f = Vec::with_capacity(9 + payload.len());
    f.extend_from_slice(&len.to_be_bytes()[1..]);
    f.push(kind);
    f.push(flags);
    f.extend_from_slice(&stream.to_be_bytes());
    f.extend_from_slice(payload);
    f
}

fn window_update(stream: u32, increment: u32) -> Vec<u8> {
    frame(WINDOW_UPDATE, 0, stream, &increment.to_be_bytes())
}

/// The preface, SETTINGS with the largest stream window, the largest connection
/// window, and `GET /bytes/DOWNLOAD` on stream 1.
fn opening() -> Vec<u8> {
    let mut out = PREFACE.to_vec();
    // SETTINGS_INITIAL_WINDOW_SIZE = 2^31 - 1.
    out.extend(frame(SETTINGS, 0, 0, &[0, 4, 0x7f, 0xff, 0xff, 0xff]));
    out.extend(window_update(0, (1 << 31) - 1 - 65_535));
    let path = format!("/bytes/{DOWNLOAD}");
    // HPACK: :method GET, :scheme http (static entries 2 and 6), then :path and
    // :authority as literals without indexing, names from the static table.
    let mut block = vec![0x82, 0x86, 0x04, path.len() as u8];
    block.extend_from_slice(path.as_bytes());
    block.extend_from_slice(&[0x01, 1, b'x']);
    out.extend(frame(HEADERS, END_STREAM | END_HEADERS, 1, &block));
    out
}

/// What the client saw by the end of the connection.
#[derive(Debug)]
struct Seen {
    headers: bool,
    body: usize,
    end_stream: bool,
    goaway: bool,
    /// How the reading ended: `Ok` for the end of the stream.
    ended: io::Result<()>,
    /// The first write that failed. A reset can surface here rather than in the
    /// reading, which then sees the end of the stream.
    write_failed: Option<io::Error>,
}

/// Downloads on one connection, answering every DATA frame with two window
/// updates and a PING, and every PING with its ACK, until the server closes.
/// `on_headers` runs once the response has begun.
async fn download(addr: std::net::SocketAddr, on_headers: impl FnOnce()) -> Seen {
    let mut sock = TcpStream::connect(addr).await.expect("connect");
    sock.set_nodelay(true).expect("nodelay");
    sock.write_all(&opening()).await.expect("opening");
    let mut on_headers = Some(on_headers);
    let mut seen = Seen {
        headers: false,
        body: 0,
        end_stream: false,
        goaway: false,
        ended: Ok(()),
        write_failed: None,
    };
    let mut buf = Vec::with_capacity(64 * 1024);
    let mut pings: u64 = 0;
    loop {
        // Every complete frame in the buffer.
        let mut at = 0;
        let mut reply = Vec::new();
        while buf.len() - at >= 9 {
            let len = u32::from_be_bytes([0, buf[at], buf[at + 1], buf[at + 2]]) as usize;
            if buf.len() - at < 9 + len {
                break;
            }
            let (kind, flags) = (buf[at + 3], buf[at + 4]);
            let payload = &buf[at + 9..at + 9 + len];
            match kind {
                HEADERS => {
                    seen.headers = true;
                    seen.end_stream |= flags & END_STREAM != 0;
                    if let Some(f) = on_headers.take() {
                        f();
                    }
                }
                DATA => {
                    seen.body += len;
                    seen.end_stream |= flags & END_STREAM != 0;
                    if len > 0 {
                        reply.extend(window_update(0, len as u32));
                        reply.extend(window_update(1, len as u32));
                    }
                    pings += 1;
                    reply.extend(frame(PING, 0, 0, &pings.to_be_bytes()));
                }
                PING if flags & ACK == 0 => reply.extend(frame(PING, ACK, 0, payload)),
                SETTINGS if flags & ACK == 0 => reply.extend(frame(SETTINGS, ACK, 0, &[])),
                GOAWAY => seen.goaway = true,
                _ => {}
            }
            at += 9 + len;
        }
        buf.drain(..at);
        // A write that fails means the server is gone; what it sent may still be
        // there to read, so the client reads on.
        if !reply.is_empty() && seen.write_failed.is_none() {
            if let Err(e) = sock.write_all(&reply).await {
                seen.write_failed = Some(e);
            }
        }
        let mut chunk = [0u8; 16 * 1024];
        match sock.read(&mut chunk).await {
            Ok(0) => return seen,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) => {
                seen.ended = Err(e);
                return seen;
            }
        }
    }
}

fn assert_delivered(seen: &Seen, round: usize) {
    assert!(
        seen.ended.is_ok() && seen.body == DOWNLOAD,
        "round {round}: the connection ended with {:?} (a write: {:?}) after {} of \
         {DOWNLOAD} body bytes",
        seen.ended,
        seen.write_failed,
        seen.body
    );
    assert!(seen.headers, "round {round}: no response head");
    assert!(seen.end_stream, "round {round}: the body did not end");
    assert!(
        seen.goaway,
        "round {round}: the server closed without GOAWAY"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graceful_shutdown_delivers_a_download_to_a_client_still_sending_frames() {
    for round in 0..ROUNDS {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (stop, stopped) = oneshot::channel::<()>();
        let server = tokio::spawn(async move {
            Builder::new()
                .serve(listener, Demo::new(), async {
                    let _ = stopped.await;
                })
                .await
        });
        // The shutdown starts as soon as the response has begun: the stream is
        // one the final GOAWAY covers, so it must finish.
        let seen = download(addr, move || {
            let _ = stop.send(());
        })
        .await;
        assert_delivered(&seen, round);
        let served = tokio::time::timeout(Duration::from_secs(60), server)
            .await
            .expect("serve returned")
            .expect("join");
        assert!(served.is_ok(), "round {round}: serve failed: {served:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_idle_goaway_delivers_a_download_to_a_client_still_sending_frames() {
    for round in 0..ROUNDS {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (stop, stopped) = oneshot::channel::<()>();
        // An idle period far shorter than the client's reading of the tail: the
        // connection goes idle, and is closed, while the client still reads.
        let mut builder = Builder::new();
        builder.keep_alive_timeout(Duration::from_millis(1));
        let server = tokio::spawn(async move {
            builder
                .serve(listener, Demo::new(), async {
                    let _ = stopped.await;
                })
                .await
        });
        let seen = download(addr, || {}).await;
        assert_delivered(&seen, round);
        let _ = stop.send(());
        let served = tokio::time::timeout(Duration::from_secs(60), server)
            .await
            .expect("serve returned")
            .expect("join");
        assert!(served.is_ok(), "round {round}: serve failed: {served:?}");
    }
}

/// A log written to memory, for the test that reads the server's warning.
#[derive(Clone, Default)]
struct Captured(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.lock().expect("log").extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Captured {
    type Writer = Captured;
    fn make_writer(&'a self) -> Captured {
        self.clone()
    }
}

/// A response of `LENGTH` bytes whose body sends `SENT` of them and then never
/// ends: only the drain bound can end its stream.
#[derive(Clone)]
struct Stuck;

const LENGTH: u64 = 1000;
const SENT: usize = 10;

struct StuckBody {
    sent: bool,
}

impl http_body::Body for StuckBody {
    type Data = bytes::Bytes;
    type Error = std::convert::Infallible;
    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<bytes::Bytes>, Self::Error>>> {
        if self.sent {
            return std::task::Poll::Pending;
        }
        self.sent = true;
        std::task::Poll::Ready(Some(Ok(http_body::Frame::data(bytes::Bytes::from_static(
            &[b'x'; SENT],
        )))))
    }
    fn size_hint(&self) -> http_body::SizeHint {
        let left = if self.sent {
            LENGTH - SENT as u64
        } else {
            LENGTH
        };
        http_body::SizeHint::with_exact(left)
    }
}

impl tower_service::Service<http::Request<h2c_mux::Body>> for Stuck {
    type Response = http::Response<StuckBody>;
    type Error = std::convert::Infallible;
    type Future = std::future::Ready<Result<Self::Response, Self::Error>>;
    fn poll_ready(
        &mut self,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        std::task::Poll::Ready(Ok(()))
    }
    fn call(&mut self, _: http::Request<h2c_mux::Body>) -> Self::Future {
        std::future::ready(Ok(http::Response::new(StuckBody { sent: false })))
    }
}

// One thread: the connection task, cut on it, logs through this test's subscriber.
#[tokio::test(flavor = "current_thread")]
async fn a_stream_cut_at_the_drain_bound_is_logged_with_what_it_had_left() {
    let log = Captured::default();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(log.clone())
        .with_ansi(false)
        .with_max_level(tracing::Level::WARN)
        .finish();
    let _default = tracing::subscriber::set_default(subscriber);

    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (stop, stopped) = oneshot::channel::<()>();
    let mut builder = Builder::new();
    builder.drain_timeout(Duration::from_millis(100));
    let server = tokio::spawn(async move {
        builder
            .serve(listener, Stuck, async {
                let _ = stopped.await;
            })
            .await
    });
    let tcp = TcpStream::connect(addr).await.expect("connect");
    let (send, conn) = h2::client::handshake(tcp).await.expect("handshake");
    tokio::spawn(async move {
        let _ = conn.await;
    });
    let mut send = send.ready().await.expect("ready");
    let req = http::Request::get(format!("http://{addr}/"))
        .body(())
        .expect("request");
    let (resp, _) = send.send_request(req, true).expect("send");
    let mut body = resp.await.expect("response head").into_body();
    let first = body.data().await.expect("a chunk").expect("data");
    assert_eq!(first.len(), SENT);
    stop.send(()).expect("stop");
    let served = tokio::time::timeout(Duration::from_secs(30), server)
        .await
        .expect("serve returned after its drain bound")
        .expect("join");
    assert!(served.is_ok(), "serve: {served:?}");
    let text = String::from_utf8(log.0.lock().expect("log").clone()).expect("utf-8");
    let cut = text
        .lines()
        .find(|l| l.contains("http/2 connection cut with streams unfinished"))
        .unwrap_or_else(|| panic!("no warning for the cut stream in:\n{text}"));
    assert!(cut.contains("streams=1"), "{cut}");
    assert!(
        cut.contains(&format!("unsent_bytes={}", LENGTH - SENT as u64)),
        "{cut}"
    );
    assert!(cut.contains("streams_of_unknown_length=0"), "{cut}");
}
