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

mod common;

use std::io;
use std::time::Duration;

use common::h2frame::*;
use common::h2raw::H2Raw;
use common::log::Captured;
use h2c_mux::demo::Demo;
use h2c_mux::Builder;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;

/// Larger than what loopback's send and receive buffers hold together, so the
/// server finishes writing well before the client finishes reading.
const DOWNLOAD: usize = 32 * 1024 * 1024;

const ROUNDS: usize = 5;

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

/// Downloads `/bytes/DOWNLOAD` on one prior-knowledge connection with the largest
/// windows, answering every DATA frame with two window updates and a PING, and
/// every PING and SETTINGS with its ACK, until the server closes. `on_opened`
/// runs once the preface and the request are written, `on_headers` once the
/// response has begun.
async fn download(
    addr: std::net::SocketAddr,
    on_opened: impl FnOnce(),
    on_headers: impl FnOnce(),
) -> Seen {
    let sock = TcpStream::connect(addr).await.expect("connect");
    sock.set_nodelay(true).expect("nodelay");
    let mut h2 = H2Raw::new(sock, Vec::new());
    let path = format!("/bytes/{DOWNLOAD}");
    let mut opening = PREFACE.to_vec();
    opening.extend(settings_frame(&[(
        SETTINGS_INITIAL_WINDOW_SIZE,
        (1 << 31) - 1,
    )]));
    opening.extend(window_update_frame(0, (1 << 31) - 1 - 65_535));
    opening.extend(headers_frame(1, true, &request_fields("GET", &path)));
    h2.write(&opening).await;
    on_opened();
    let mut on_headers = Some(on_headers);
    let mut seen = Seen {
        headers: false,
        body: 0,
        end_stream: false,
        goaway: false,
        ended: Ok(()),
        write_failed: None,
    };
    let mut pings: u64 = 0;
    loop {
        let got = match h2.try_read_frame().await {
            Ok(Some(got)) => got,
            Ok(None) => return seen,
            Err(e) => {
                seen.ended = Err(e);
                return seen;
            }
        };
        let mut reply = Vec::new();
        match got.ty {
            HEADERS => {
                seen.headers = true;
                seen.end_stream |= got.flags & END_STREAM != 0;
                if let Some(f) = on_headers.take() {
                    f();
                }
            }
            DATA => {
                let len = got.payload.len();
                seen.body += len;
                seen.end_stream |= got.flags & END_STREAM != 0;
                if len > 0 {
                    reply.extend(window_update_frame(0, len as u32));
                    reply.extend(window_update_frame(1, len as u32));
                }
                pings += 1;
                reply.extend(ping_frame(pings.to_be_bytes()));
            }
            PING if got.flags & ACK == 0 => reply.extend(frame(PING, ACK, 0, &got.payload)),
            SETTINGS if got.flags & ACK == 0 => reply.extend(settings_ack()),
            GOAWAY => seen.goaway = true,
            _ => {}
        }
        // A write that fails means the server is gone; what it sent may still be
        // there to read, so the client reads on.
        if !reply.is_empty() && seen.write_failed.is_none() {
            if let Err(e) = h2.try_write(&reply).await {
                seen.write_failed = Some(e);
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
        let seen = download(
            addr,
            || {},
            move || {
                let _ = stop.send(());
            },
        )
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
        let (opened, on_opened) = oneshot::channel::<()>();
        // An idle period far shorter than the client's reading of the tail: the
        // connection goes idle, and is closed, while the client still reads. The
        // same bound covers the wait for the first bytes, so the connection is
        // served only once the client's preface and request are in the socket.
        let mut builder = Builder::new();
        builder.keep_alive_timeout(Duration::from_millis(1));
        let server = tokio::spawn(async move {
            let (io, _) = listener.accept().await.expect("accept");
            on_opened.await.expect("the client wrote its opening");
            builder.serve_connection(io, Demo::new()).await
        });
        let seen = download(
            addr,
            move || {
                let _ = opened.send(());
            },
            || {},
        )
        .await;
        assert_delivered(&seen, round);
        let served = tokio::time::timeout(Duration::from_secs(60), server)
            .await
            .expect("the connection ended")
            .expect("join");
        assert!(
            served.is_ok(),
            "round {round}: the connection failed: {served:?}"
        );
    }
}

/// Answers with a response of `LENGTH` bytes whose body sends `SENT` of them and
/// then never ends: only the drain bound can end its stream.
fn stuck() -> impl common::server::TestService<StuckBody> {
    common::service::answer(|_: &http::Request<h2c_mux::Body>| {
        http::Response::new(StuckBody { sent: false })
    })
}

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

/// Serves [`stuck`] with a short drain bound, lets `client` start its response
/// and read the first chunk, stops the server, and returns the warnings logged by
/// the time `serve` has returned. Run on one thread, so the connection task,
/// cut on it, logs through this test's subscriber.
async fn warnings_when_cut<F, Fut>(client: F) -> String
where
    F: FnOnce(std::net::SocketAddr) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    // A subscriber of this thread only, not the binary-wide one of `log::captured`:
    // each test reads the warnings of its own connection, cut on its own thread.
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
            .serve(listener, stuck(), async {
                let _ = stopped.await;
            })
            .await
    });
    client(addr).await;
    stop.send(()).expect("stop");
    let served = tokio::time::timeout(Duration::from_secs(30), server)
        .await
        .expect("serve returned after its drain bound")
        .expect("join");
    assert!(served.is_ok(), "serve: {served:?}");
    log.text()
}

#[tokio::test(flavor = "current_thread")]
async fn an_http2_stream_cut_at_the_drain_bound_is_logged_with_what_it_had_left() {
    let mut client_conn = None;
    let text = warnings_when_cut(|addr| {
        let client_conn = &mut client_conn;
        async move {
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
            *client_conn = Some((send, body));
        }
    })
    .await;
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

#[tokio::test(flavor = "current_thread")]
async fn an_http1_response_cut_at_the_drain_bound_is_logged_with_what_it_had_left() {
    let mut client_conn = None;
    let text = warnings_when_cut(|addr| {
        let client_conn = &mut client_conn;
        async move {
            let mut tcp = TcpStream::connect(addr).await.expect("connect");
            tcp.write_all(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n")
                .await
                .expect("request");
            // The head and the first chunk: the response is under way.
            let mut got = Vec::new();
            while !got.ends_with(&[b'x'; SENT]) {
                let mut buf = [0u8; 1024];
                let n = tcp.read(&mut buf).await.expect("read");
                assert!(n > 0, "closed early: {:?}", String::from_utf8_lossy(&got));
                got.extend_from_slice(&buf[..n]);
            }
            let head = String::from_utf8_lossy(&got).to_lowercase();
            assert!(
                head.contains(&format!("content-length: {LENGTH}")),
                "{head}"
            );
            *client_conn = Some(tcp);
        }
    })
    .await;
    let cut = text
        .lines()
        .find(|l| l.contains("http/1.1 response cut before its end"))
        .unwrap_or_else(|| panic!("no warning for the cut response in:\n{text}"));
    assert!(cut.contains(&format!("sent_bytes={SENT}")), "{cut}");
    assert!(
        cut.contains(&format!("unsent_bytes={}", LENGTH - SENT as u64)),
        "{cut}"
    );
}
