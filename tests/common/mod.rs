//! Shared helpers of the integration tests: an in-process server on a loopback port,
//! a raw HTTP/1.1 client, a hand-driven HTTP/2 client with its own HPACK decoder,
//! the h2c upgrade handshake, and a service wrapper that records what the server
//! handed to the service.

// Each test binary uses a different part of this module.
#![allow(dead_code)]

pub mod h1;
pub mod h2raw;
pub mod hpack;
pub mod sha256;

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use h2c_mux::{Body, BoxError, Builder, DeclineReason, Protocol, RemoteAddr, UpgradeDeclined};
use http::{HeaderMap, Method, Request, Response, Version};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

pub use h1::{H1Conn, H1Response};
pub use h2raw::H2Raw;

/// The bound on every wait: generous, so only a bug (a hang) reaches it.
pub const WAIT: Duration = Duration::from_secs(10);

/// Awaits `fut`, failing the test if it takes longer than [`WAIT`].
pub async fn within<F: Future>(what: &str, fut: F) -> F::Output {
    match tokio::time::timeout(WAIT, fut).await {
        Ok(out) => out,
        Err(_) => panic!("timed out after {WAIT:?} waiting for: {what}"),
    }
}

/// A server started with [`Builder::serve`] on `127.0.0.1:0`.
pub struct Server {
    pub addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<io::Result<()>>>,
}

impl Server {
    /// Serves `svc` with `builder` until [`Server::shutdown`].
    pub async fn start<S, B>(builder: &Builder, svc: S) -> Server
    where
        S: tower_service::Service<Request<Body>, Response = Response<B>> + Clone + Send + 'static,
        S::Future: Send + 'static,
        S::Error: Into<BoxError>,
        B: http_body::Body<Data = Bytes> + Send + 'static,
        B::Error: Into<BoxError>,
    {
        let (tx, rx) = oneshot::channel::<()>();
        let (addr, task) = spawn_serve(builder, svc, async {
            let _ = rx.await;
        })
        .await;
        Server {
            addr,
            stop: Some(tx),
            task: Some(task),
        }
    }

    /// The demo service with the default builder.
    #[cfg(feature = "demo")]
    pub async fn demo() -> Server {
        Server::start(&Builder::new(), h2c_mux::demo::Demo::new()).await
    }

    /// Completes the shutdown future handed to `serve`.
    pub fn trigger_shutdown(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
    }

    /// Waits (bounded) for `serve` to return, and returns its result.
    pub async fn join(&mut self) -> io::Result<()> {
        let task = self.task.take().expect("serve task already joined");
        within("Builder::serve to return", task)
            .await
            .expect("serve task panicked")
    }

    /// Triggers the shutdown and waits for `serve` to return `Ok`.
    pub async fn shutdown(mut self) {
        self.trigger_shutdown();
        self.join().await.expect("serve returned an error");
    }
}

/// Binds `127.0.0.1:0` and spawns `builder.serve(listener, svc, shutdown)`.
pub async fn spawn_serve<S, B, F>(
    builder: &Builder,
    svc: S,
    shutdown: F,
) -> (SocketAddr, JoinHandle<io::Result<()>>)
where
    S: tower_service::Service<Request<Body>, Response = Response<B>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<BoxError>,
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
    F: Future<Output = ()> + Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind a loopback port");
    let addr = listener.local_addr().expect("local addr");
    let builder = builder.clone();
    let task = tokio::spawn(async move { builder.serve(listener, svc, shutdown).await });
    (addr, task)
}

/// What the server handed to the service, as seen by [`Recorder`].
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: Method,
    pub path: String,
    pub version: Version,
    pub headers: HeaderMap,
    pub protocol: Option<Protocol>,
    pub declined: Option<DeclineReason>,
    pub remote: Option<SocketAddr>,
}

/// A service that reports every request's head and extensions on a channel, then
/// lets `inner` answer it.
#[derive(Debug, Clone)]
pub struct Recorder<S> {
    inner: S,
    tx: mpsc::UnboundedSender<Seen>,
}

/// Wraps `inner`; the receiver gets one [`Seen`] per request, in call order.
pub fn recorder<S>(inner: S) -> (Recorder<S>, Requests) {
    let (tx, rx) = mpsc::unbounded_channel();
    (Recorder { inner, tx }, Requests(rx))
}

impl<S> tower_service::Service<Request<Body>> for Recorder<S>
where
    S: tower_service::Service<Request<Body>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<Body>) -> S::Future {
        let seen = Seen {
            method: req.method().clone(),
            path: req.uri().path().to_string(),
            version: req.version(),
            headers: req.headers().clone(),
            protocol: req.extensions().get::<Protocol>().copied(),
            declined: req
                .extensions()
                .get::<UpgradeDeclined>()
                .map(|d| d.reason.clone()),
            remote: req.extensions().get::<RemoteAddr>().map(|a| a.0),
        };
        let _ = self.tx.send(seen);
        self.inner.call(req)
    }
}

/// The receiving end of a [`Recorder`].
#[derive(Debug)]
pub struct Requests(mpsc::UnboundedReceiver<Seen>);

impl Requests {
    /// The next request the service saw (bounded wait).
    pub async fn next(&mut self) -> Seen {
        within("the service to be called", self.0.recv())
            .await
            .expect("recorder dropped")
    }
}

/// Answers `200 ignored\n` at once, dropping the request body unread.
#[derive(Debug, Clone)]
pub struct IgnoreBody;

impl tower_service::Service<Request<Body>> for IgnoreBody {
    type Response = Response<http_body_util::Full<Bytes>>;
    type Error = std::convert::Infallible;
    type Future = std::future::Ready<Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<Body>) -> Self::Future {
        drop(req);
        std::future::ready(Ok(Response::new(http_body_util::Full::new(
            Bytes::from_static(b"ignored\n"),
        ))))
    }
}

/// base64url without padding (RFC 4648 §5), as `HTTP2-Settings` carries it.
pub fn base64url(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        let chars = chunk.len() + 1;
        for i in 0..chars {
            out.push(ALPHABET[((n >> (18 - 6 * i)) & 0x3f) as usize] as char);
        }
    }
    out
}

/// `HTTP2-Settings` value for `settings`.
pub fn http2_settings(settings: &[(u16, u32)]) -> String {
    base64url(&h2raw::settings_payload(settings))
}

/// The settings the upgrade tests announce unless they need others.
pub const CLIENT_SETTINGS: &[(u16, u32)] = &[
    (h2raw::SETTINGS_MAX_CONCURRENT_STREAMS, 100),
    (h2raw::SETTINGS_ENABLE_PUSH, 0),
];

/// The fields that ask for an h2c upgrade (RFC 7540 §3.2), announcing `settings`.
pub fn upgrade_fields(settings: &[(u16, u32)]) -> String {
    format!(
        "Connection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: {}\r\n",
        http2_settings(settings)
    )
}

/// A complete upgrade request: `method path`, Host, the upgrade fields announcing
/// [`CLIENT_SETTINGS`], `extra` fields (each ending in CRLF), and `body` with a
/// Content-Length when it is not empty.
pub fn upgrade_request(method: &str, path: &str, extra: &str, body: &[u8]) -> Vec<u8> {
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{}{extra}",
        upgrade_fields(CLIENT_SETTINGS)
    );
    if !body.is_empty() {
        req.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    req.push_str("\r\n");
    let mut out = req.into_bytes();
    out.extend_from_slice(body);
    out
}

/// Connects, sends the upgrade `request`, reads the `101` (asserting its status and
/// fields), and hands the socket to a hand-driven HTTP/2 client. Nothing of HTTP/2
/// is sent yet: the caller sends the preface.
pub async fn upgrade(addr: SocketAddr, request: &[u8]) -> (H1Response, H2Raw) {
    let mut conn = H1Conn::connect(addr).await;
    conn.send(request).await;
    let res = conn.read_head().await;
    assert_switching_protocols(&res);
    let (stream, leftover) = conn.into_parts();
    (res, H2Raw::new(stream, leftover))
}

/// A request whose body is still being written by its own task while the first
/// response head is read (see [`send_with_body`]).
pub struct Sending {
    /// The first response head.
    pub head: H1Response,
    /// The read half, positioned right after `head`.
    pub reader: H1Conn<OwnedReadHalf>,
    writer: JoinHandle<OwnedWriteHalf>,
}

impl Sending {
    /// Waits for the whole request to be written and makes the connection whole.
    pub async fn into_conn(self) -> H1Conn {
        let wr = within("the request body to be written", self.writer)
            .await
            .expect("writer task");
        let (rd, buf) = self.reader.into_parts();
        let stream = rd.reunite(wr).expect("halves of one socket");
        H1Conn::from_parts(stream, buf)
    }
}

/// Connects and sends `head` then `body`, written on their own task while the first
/// response head is read, so a server that reads (or answers) as the body streams
/// cannot deadlock the test.
pub async fn send_with_body(addr: SocketAddr, head: &[u8], body: Vec<u8>) -> Sending {
    let (mut reader, mut wr) = H1Conn::connect(addr).await.into_split();
    let mut all = head.to_vec();
    all.extend_from_slice(&body);
    let writer = tokio::spawn(async move {
        tokio::io::AsyncWriteExt::write_all(&mut wr, &all)
            .await
            .expect("write request and body");
        wr
    });
    let head = reader.read_head().await;
    Sending {
        head,
        reader,
        writer,
    }
}

/// Asserts a `101` switching to h2c (RFC 7540 §3.2).
pub fn assert_switching_protocols(res: &H1Response) {
    assert_eq!(res.status, 101, "expected 101, got {res:?}");
    assert_eq!(res.version, "HTTP/1.1");
    assert!(
        res.header("upgrade")
            .is_some_and(|v| v.eq_ignore_ascii_case("h2c")),
        "101 without upgrade: h2c: {res:?}"
    );
    assert!(
        res.connection_has("upgrade"),
        "101 without connection: upgrade: {res:?}"
    );
}

/// The bytes `/bytes/N` of the demo answers: `demo::PATTERN` repeated.
#[cfg(feature = "demo")]
pub fn pattern(n: usize) -> Vec<u8> {
    h2c_mux::demo::PATTERN
        .iter()
        .copied()
        .cycle()
        .take(n)
        .collect()
}
