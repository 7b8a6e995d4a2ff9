//! Shared helpers for the hardening suites (`tests/hardening_*.rs`).
//!
//! - services: the demo, a closure service, and an `Inspect` service that reads
//!   the whole request body and reports what it saw (body error kind, trailers,
//!   upgrade decline reason) both in its response and on a channel;
//! - transports: a connection over `tokio::io::duplex` driven by
//!   `Builder::serve_connection` (so its `Connection` future can be awaited), and
//!   `Builder::serve` on 127.0.0.1:0;
//! - an HTTP/1 response parser that splits a byte stream into responses, so a test
//!   can count them;
//! - a raw HTTP/2 frame client (HPACK literals without indexing, no Huffman) and a
//!   minimal `:status` decoder for response header blocks;
//! - the well-behaved clients used to show the server still serves others.
//!
//! Every wait in here is bounded with `tokio::time::timeout`.

#![allow(dead_code)]

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use h2c_mux::{Body, Builder, Protocol, UpgradeDeclined};
use http::{HeaderMap, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, DuplexStream};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio::time::timeout;

/// Bound on any single wait for the peer in these tests (real or paused time).
pub const WAIT: Duration = Duration::from_secs(20);

/// A request that asks for the h2c upgrade; `HTTP2-Settings` carries
/// MAX_CONCURRENT_STREAMS = 100.
pub const UPGRADE_GET: &str = "GET / HTTP/1.1\r\nHost: example\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABk\r\n\r\n";

/// The HTTP/2 client connection preface.
pub const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

// ---------------------------------------------------------------------------
// Services
// ---------------------------------------------------------------------------

pub type Resp = Response<Full<Bytes>>;
pub type BoxFut = Pin<Box<dyn Future<Output = Result<Resp, Infallible>> + Send>>;
pub type RespFut = Pin<Box<dyn Future<Output = Resp> + Send>>;

/// A service from an async closure.
#[derive(Clone)]
pub struct FnService<F>(pub F);

pub fn service_fn<F, Fut>(f: F) -> FnService<F>
where
    F: Fn(Request<Body>) -> Fut + Clone + Send + 'static,
    Fut: Future<Output = Resp> + Send + 'static,
{
    FnService(f)
}

impl<F, Fut> tower_service::Service<Request<Body>> for FnService<F>
where
    F: Fn(Request<Body>) -> Fut + Clone + Send + 'static,
    Fut: Future<Output = Resp> + Send + 'static,
{
    type Response = Resp;
    type Error = Infallible;
    type Future = BoxFut;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<Body>) -> BoxFut {
        let fut = (self.0)(req);
        Box::pin(async move { Ok(fut.await) })
    }
}

pub fn text(status: StatusCode, body: impl Into<Bytes>) -> Resp {
    let mut r = Response::new(Full::new(body.into()));
    *r.status_mut() = status;
    r
}

/// The kind of an `h2c_mux::Error`, by its predicates.
pub fn error_kind(e: &h2c_mux::Error) -> &'static str {
    if e.is_parse() {
        "parse"
    } else if e.is_timeout() {
        "timeout"
    } else if e.is_incomplete() {
        "incomplete"
    } else if e.is_io() {
        "io"
    } else if e.is_h2() {
        "h2"
    } else if e.is_body() {
        "body"
    } else if e.is_service() {
        "service"
    } else {
        "other"
    }
}

/// What the `Inspect` service saw of one request.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    pub uri: String,
    pub headers: HeaderMap,
    /// The whole body, or the kind of the error the body yielded.
    pub body: Result<Bytes, &'static str>,
    /// The error's text, when the body failed.
    pub error_text: Option<String>,
    pub trailers: Option<HeaderMap>,
    pub declined: Option<String>,
    pub protocol: Option<Protocol>,
}

/// A service that collects the whole request body (with `http_body_util`) and
/// reports what it saw: on `tx`, and in a `200` response body made of lines
/// `key=value` (`body-len`, `error`, `trailer:<name>`, `declined`, `protocol`).
pub fn inspect(
    tx: mpsc::UnboundedSender<Seen>,
) -> FnService<impl Fn(Request<Body>) -> RespFut + Clone> {
    inspect_inner(tx, false)
}

/// [`inspect`], except that `GET /` is answered like the demo (`hello world\n`),
/// so the well-behaved clients' check works against it.
pub fn inspect_with_hello(
    tx: mpsc::UnboundedSender<Seen>,
) -> FnService<impl Fn(Request<Body>) -> RespFut + Clone> {
    inspect_inner(tx, true)
}

fn inspect_inner(
    tx: mpsc::UnboundedSender<Seen>,
    hello: bool,
) -> FnService<impl Fn(Request<Body>) -> RespFut + Clone> {
    FnService(move |req: Request<Body>| -> RespFut {
        let tx = tx.clone();
        Box::pin(async move {
            let is_hello = hello && req.method() == http::Method::GET && req.uri().path() == "/";
            let (parts, body) = req.into_parts();
            let declined = parts
                .extensions
                .get::<UpgradeDeclined>()
                .map(|d| d.reason.to_string());
            let protocol = parts.extensions.get::<Protocol>().copied();
            let (body, error_text, trailers) = match body.collect().await {
                Ok(c) => {
                    let trailers = c.trailers().cloned();
                    (Ok(c.to_bytes()), None, trailers)
                }
                Err(e) => (Err(error_kind(&e)), Some(e.to_string()), None),
            };
            let mut report = String::new();
            report.push_str(&format!("method={}\n", parts.method));
            report.push_str(&format!("uri={}\n", parts.uri));
            match &body {
                Ok(b) => report.push_str(&format!("body-len={}\n", b.len())),
                Err(k) => report.push_str(&format!("error={k}\n")),
            }
            if let Some(t) = &trailers {
                for (k, v) in t {
                    report.push_str(&format!("trailer:{}={}\n", k, v.to_str().unwrap_or("?")));
                }
            }
            if let Some(d) = &declined {
                report.push_str(&format!("declined={d}\n"));
            }
            if let Some(p) = protocol {
                report.push_str(&format!("protocol={p}\n"));
            }
            let _ = tx.send(Seen {
                method: parts.method.to_string(),
                uri: parts.uri.to_string(),
                headers: parts.headers.clone(),
                body,
                error_text,
                trailers,
                declined,
                protocol,
            });
            if is_hello {
                return text(StatusCode::OK, "hello world\n");
            }
            text(StatusCode::OK, report)
        })
    })
}

// ---------------------------------------------------------------------------
// Transports
// ---------------------------------------------------------------------------

pub type ConnHandle = JoinHandle<Result<(), h2c_mux::Error>>;

/// One connection over an in-memory pipe, served by `serve_connection` on its
/// own task. The task's result is the `Connection` future's output.
pub fn duplex_conn<S, B>(builder: &Builder, svc: S) -> (DuplexStream, ConnHandle)
where
    S: tower_service::Service<Request<Body>, Response = Response<B>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<h2c_mux::BoxError>,
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<h2c_mux::BoxError>,
{
    let (client, server) = tokio::io::duplex(1 << 20);
    let conn = builder.serve_connection(server, svc);
    (client, tokio::spawn(conn))
}

/// [`duplex_conn`] with a pipe of `size` bytes each way, so a peer that stops
/// reading pushes back quickly.
pub fn duplex_conn_sized<S, B>(builder: &Builder, svc: S, size: usize) -> (DuplexStream, ConnHandle)
where
    S: tower_service::Service<Request<Body>, Response = Response<B>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<h2c_mux::BoxError>,
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<h2c_mux::BoxError>,
{
    let (client, server) = tokio::io::duplex(size);
    let conn = builder.serve_connection(server, svc);
    (client, tokio::spawn(conn))
}

/// Waits (bounded) for a connection task and returns the connection's result.
pub async fn conn_result(h: ConnHandle) -> Result<(), h2c_mux::Error> {
    timeout(WAIT, h)
        .await
        .expect("the connection future did not resolve within the bound")
        .expect("connection task panicked")
}

/// `Builder::serve` on 127.0.0.1:0 on its own task.
pub struct Server {
    pub addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    handle: Option<JoinHandle<io::Result<()>>>,
}

impl Server {
    pub async fn start<S, B>(builder: &Builder, svc: S) -> Server
    where
        S: tower_service::Service<Request<Body>, Response = Response<B>> + Clone + Send + 'static,
        S::Future: Send + 'static,
        S::Error: Into<h2c_mux::BoxError>,
        B: http_body::Body<Data = Bytes> + Send + 'static,
        B::Error: Into<h2c_mux::BoxError>,
    {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        Server::on(listener, builder, svc)
    }

    pub fn on<S, B>(listener: TcpListener, builder: &Builder, svc: S) -> Server
    where
        S: tower_service::Service<Request<Body>, Response = Response<B>> + Clone + Send + 'static,
        S::Future: Send + 'static,
        S::Error: Into<h2c_mux::BoxError>,
        B: http_body::Body<Data = Bytes> + Send + 'static,
        B::Error: Into<h2c_mux::BoxError>,
    {
        let addr = listener.local_addr().expect("local addr");
        let (tx, rx) = oneshot::channel::<()>();
        let builder = builder.clone();
        let handle = tokio::spawn(async move {
            builder
                .serve(listener, svc, async move {
                    let _ = rx.await;
                })
                .await
        });
        Server {
            addr,
            stop: Some(tx),
            handle: Some(handle),
        }
    }

    /// Signals shutdown without waiting.
    pub fn trigger_shutdown(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
    }

    /// Signals shutdown and waits (bounded) for `serve` to return.
    pub async fn stop(mut self) -> io::Result<()> {
        self.trigger_shutdown();
        self.join().await
    }

    pub async fn join(&mut self) -> io::Result<()> {
        let h = self.handle.take().expect("joined twice");
        timeout(WAIT, h)
            .await
            .expect("serve did not return within the bound")
            .expect("serve task panicked")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(h) = &self.handle {
            h.abort();
        }
    }
}

// ---------------------------------------------------------------------------
// Raw HTTP/1
// ---------------------------------------------------------------------------

/// Reads until EOF (a reset counts as the end), bounded.
pub async fn read_to_eof<T: AsyncRead + Unpin>(io: &mut T) -> Vec<u8> {
    let mut out = Vec::new();
    let r = timeout(WAIT, async {
        let mut buf = [0u8; 16 * 1024];
        loop {
            match io.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => out.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    assert!(
        r.is_ok(),
        "connection was not closed within the bound; got so far: {:?}",
        String::from_utf8_lossy(&out)
    );
    out
}

/// Reads until a whole response head (`\r\n\r\n`) is in `buf`, one byte at a time
/// so nothing past it is consumed. None on EOF.
pub async fn read_head<T: AsyncRead + Unpin>(io: &mut T) -> Option<String> {
    let mut head = Vec::new();
    timeout(WAIT, async {
        let mut b = [0u8; 1];
        loop {
            match io.read(&mut b).await {
                Ok(0) | Err(_) => return None,
                Ok(_) => head.push(b[0]),
            }
            if head.ends_with(b"\r\n\r\n") {
                return Some(String::from_utf8_lossy(&head).into_owned());
            }
        }
    })
    .await
    .expect("no response head within the bound")
}

/// One HTTP/1 response as found in a byte stream.
#[derive(Debug, Clone)]
pub struct H1Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// The body's framing ended (Content-Length reached, last chunk seen, or no
    /// body). False for a response cut off by the end of the stream.
    pub complete: bool,
}

impl H1Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn closes(&self) -> bool {
        self.header("connection")
            .is_some_and(|v| v.eq_ignore_ascii_case("close"))
    }

    pub fn body_str(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Splits `data` into the responses it holds. Parsing stops after a `101` (what
/// follows is not HTTP/1) and at the first response that is cut off.
pub fn parse_responses(data: &[u8]) -> Vec<H1Response> {
    let mut out = Vec::new();
    let mut rest = data;
    while !rest.is_empty() {
        let Some(end) = find(rest, b"\r\n\r\n") else {
            panic!(
                "bytes that are not a response head: {:?}",
                String::from_utf8_lossy(rest)
            );
        };
        let head = std::str::from_utf8(&rest[..end]).expect("utf-8 head");
        let mut lines = head.split("\r\n");
        let status_line = lines.next().unwrap_or_default();
        assert!(
            status_line.starts_with("HTTP/1.1 ") || status_line.starts_with("HTTP/1.0 "),
            "not a status line: {status_line:?}"
        );
        let status: u16 = status_line[9..12].parse().expect("status code");
        let headers: Vec<(String, String)> = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
            .collect();
        rest = &rest[end + 4..];
        let mut r = H1Response {
            status,
            headers,
            body: Vec::new(),
            complete: true,
        };
        if status == 101 {
            out.push(r);
            break;
        }
        if (100..200).contains(&status) || status == 204 || status == 304 {
            out.push(r);
            continue;
        }
        if r.header("transfer-encoding")
            .is_some_and(|v| v.eq_ignore_ascii_case("chunked"))
        {
            let mut complete = false;
            while let Some(line_end) = find(rest, b"\r\n") {
                let size_str = std::str::from_utf8(&rest[..line_end]).expect("chunk size");
                let size =
                    usize::from_str_radix(size_str.split(';').next().unwrap_or("").trim(), 16)
                        .expect("chunk size");
                if size == 0 {
                    // Trailer section up to the empty line.
                    let after = &rest[line_end + 2..];
                    if after.starts_with(b"\r\n") {
                        rest = &after[2..];
                        complete = true;
                    } else if let Some(t) = find(after, b"\r\n\r\n") {
                        rest = &after[t + 4..];
                        complete = true;
                    }
                    break;
                }
                let data_start = line_end + 2;
                if rest.len() < data_start + size + 2 {
                    r.body
                        .extend_from_slice(&rest[data_start..rest.len().min(data_start + size)]);
                    rest = &[];
                    break;
                }
                r.body
                    .extend_from_slice(&rest[data_start..data_start + size]);
                rest = &rest[data_start + size + 2..];
            }
            r.complete = complete;
            let stop = !complete;
            out.push(r);
            if stop {
                break;
            }
        } else if let Some(len) = r.header("content-length") {
            let len: usize = len.parse().expect("content-length");
            let n = len.min(rest.len());
            r.body.extend_from_slice(&rest[..n]);
            rest = &rest[n..];
            r.complete = n == len;
            let stop = !r.complete;
            out.push(r);
            if stop {
                break;
            }
        } else {
            // Delimited by the end of the connection.
            r.body.extend_from_slice(rest);
            rest = &[];
            out.push(r);
        }
    }
    out
}

pub fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Number of HTTP/1 status lines in `data`: `HTTP/1.x NNN ` anywhere (response
/// bodies in these tests never contain one).
pub fn count_status_lines(data: &[u8]) -> usize {
    data.windows(13)
        .filter(|w| {
            w.starts_with(b"HTTP/1.")
                && w[8] == b' '
                && w[9..12].iter().all(u8::is_ascii_digit)
                && w[12] == b' '
        })
        .count()
}

/// Sends `request` on a fresh duplex connection, reads to EOF, closes the client
/// end, and returns the bytes and the connection's result.
pub async fn h1_exchange<S, B>(
    builder: &Builder,
    svc: S,
    request: &[u8],
) -> (Vec<u8>, Result<(), h2c_mux::Error>)
where
    S: tower_service::Service<Request<Body>, Response = Response<B>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<h2c_mux::BoxError>,
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<h2c_mux::BoxError>,
{
    let (mut client, conn) = duplex_conn(builder, svc);
    timeout(WAIT, client.write_all(request))
        .await
        .expect("write bound")
        .expect("write");
    let bytes = read_to_eof(&mut client).await;
    drop(client);
    let res = conn_result(conn).await;
    (bytes, res)
}

/// `GET /` over HTTP/1.1 on a new TCP connection: must be `hello world\n`.
pub async fn assert_h1_hello(addr: SocketAddr) {
    let mut s = timeout(WAIT, TcpStream::connect(addr))
        .await
        .expect("connect bound")
        .expect("connect");
    s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .expect("write");
    let bytes = read_to_eof(&mut s).await;
    let rs = parse_responses(&bytes);
    assert_eq!(rs.len(), 1, "{:?}", String::from_utf8_lossy(&bytes));
    assert_eq!(rs[0].status, 200);
    assert_eq!(rs[0].body, b"hello world\n");
}

// ---------------------------------------------------------------------------
// Well-behaved HTTP/2 client (the h2 crate)
// ---------------------------------------------------------------------------

/// A response read whole by the `h2` client.
#[derive(Debug)]
pub struct H2Response {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
    pub trailers: Option<HeaderMap>,
}

/// Starts an `h2` client over `io` (prior knowledge); the connection is driven
/// on its own task.
pub async fn h2_client<T>(io: T) -> Result<h2::client::SendRequest<Bytes>, h2::Error>
where
    T: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (send, conn) = h2::client::handshake(io).await?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(send)
}

/// Sends one request and reads the whole response.
pub async fn h2_send(
    send: &mut h2::client::SendRequest<Bytes>,
    req: Request<()>,
    body: Option<Bytes>,
) -> Result<H2Response, h2::Error> {
    let mut ready = send.clone().ready().await?;
    let end = body.is_none();
    let (resp, mut stream) = ready.send_request(req, end)?;
    if let Some(b) = body {
        stream.send_data(b, true)?;
    }
    let resp = resp.await?;
    let (parts, mut recv) = resp.into_parts();
    let mut body = BytesMut::new();
    while let Some(chunk) = recv.data().await {
        let chunk = chunk?;
        let _ = recv.flow_control().release_capacity(chunk.len());
        body.extend_from_slice(&chunk);
    }
    let trailers = recv.trailers().await?;
    Ok(H2Response {
        status: parts.status,
        headers: parts.headers,
        body: body.freeze(),
        trailers,
    })
}

pub fn get(path: &str) -> Request<()> {
    Request::builder()
        .uri(format!("http://example{path}"))
        .body(())
        .expect("request")
}

/// `GET /` over HTTP/2 prior knowledge on `io`: must be `hello world\n`.
pub async fn assert_h2_hello_on<T>(io: T)
where
    T: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let r = timeout(WAIT, async {
        let mut send = h2_client(io).await?;
        h2_send(&mut send, get("/"), None).await
    })
    .await
    .expect("h2 GET / within the bound")
    .expect("h2 GET /");
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(&r.body[..], b"hello world\n");
}

/// `GET /` over HTTP/2 prior knowledge on a new TCP connection.
pub async fn assert_h2_hello(addr: SocketAddr) {
    let s = timeout(WAIT, TcpStream::connect(addr))
        .await
        .expect("connect bound")
        .expect("connect");
    assert_h2_hello_on(s).await;
}

// ---------------------------------------------------------------------------
// Raw HTTP/2 frames
// ---------------------------------------------------------------------------

pub const DATA: u8 = 0x0;
pub const HEADERS: u8 = 0x1;
pub const PRIORITY: u8 = 0x2;
pub const RST_STREAM: u8 = 0x3;
pub const SETTINGS: u8 = 0x4;
pub const PING: u8 = 0x6;
pub const GOAWAY: u8 = 0x7;
pub const WINDOW_UPDATE: u8 = 0x8;
pub const CONTINUATION: u8 = 0x9;

pub const END_STREAM: u8 = 0x1;
pub const ACK: u8 = 0x1;
pub const END_HEADERS: u8 = 0x4;

pub const NO_ERROR: u32 = 0x0;
pub const PROTOCOL_ERROR: u32 = 0x1;
pub const FLOW_CONTROL_ERROR: u32 = 0x3;
pub const REFUSED_STREAM: u32 = 0x7;
pub const CANCEL: u32 = 0x8;
pub const COMPRESSION_ERROR: u32 = 0x9;
pub const ENHANCE_YOUR_CALM: u32 = 0xb;

pub const SETTINGS_HEADER_TABLE_SIZE: u16 = 0x1;
pub const SETTINGS_MAX_CONCURRENT_STREAMS: u16 = 0x3;
pub const SETTINGS_INITIAL_WINDOW_SIZE: u16 = 0x4;

/// One HTTP/2 frame.
#[derive(Debug, Clone)]
pub struct Frame {
    pub ty: u8,
    pub flags: u8,
    pub stream: u32,
    pub payload: Bytes,
}

impl Frame {
    /// The error code of a RST_STREAM or GOAWAY.
    pub fn error_code(&self) -> u32 {
        let at = match self.ty {
            RST_STREAM => 0,
            GOAWAY => 4,
            _ => panic!("no error code in frame type {}", self.ty),
        };
        u32::from_be_bytes(self.payload[at..at + 4].try_into().expect("4 bytes"))
    }

    pub fn is(&self, ty: u8) -> bool {
        self.ty == ty
    }
}

pub fn frame(ty: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let len = payload.len();
    assert!(len < 1 << 24);
    let mut f = Vec::with_capacity(9 + len);
    f.extend_from_slice(&[(len >> 16) as u8, (len >> 8) as u8, len as u8, ty, flags]);
    f.extend_from_slice(&(stream & 0x7fff_ffff).to_be_bytes());
    f.extend_from_slice(payload);
    f
}

pub fn settings_frame(settings: &[(u16, u32)]) -> Vec<u8> {
    let mut p = Vec::new();
    for (id, v) in settings {
        p.extend_from_slice(&id.to_be_bytes());
        p.extend_from_slice(&v.to_be_bytes());
    }
    frame(SETTINGS, 0, 0, &p)
}

pub fn settings_ack() -> Vec<u8> {
    frame(SETTINGS, ACK, 0, &[])
}

pub fn ping_frame(data: [u8; 8]) -> Vec<u8> {
    frame(PING, 0, 0, &data)
}

pub fn rst_frame(stream: u32, code: u32) -> Vec<u8> {
    frame(RST_STREAM, 0, stream, &code.to_be_bytes())
}

pub fn window_update_frame(stream: u32, inc: u32) -> Vec<u8> {
    frame(WINDOW_UPDATE, 0, stream, &inc.to_be_bytes())
}

/// HPACK integer with an `n`-bit prefix (RFC 7541 §5.1); `first` holds the
/// representation's flag bits.
pub fn hpack_int(out: &mut Vec<u8>, first: u8, n: u32, mut v: usize) {
    let max = (1usize << n) - 1;
    if v < max {
        out.push(first | v as u8);
        return;
    }
    out.push(first | max as u8);
    v -= max;
    while v >= 128 {
        out.push((v % 128) as u8 | 0x80);
        v /= 128;
    }
    out.push(v as u8);
}

/// A string literal without Huffman coding.
pub fn hpack_str(out: &mut Vec<u8>, s: &[u8]) {
    hpack_int(out, 0x00, 7, s.len());
    out.extend_from_slice(s);
}

/// A header block of literals without indexing, new names, no Huffman
/// (RFC 7541 §6.2.2): nothing enters either dynamic table.
pub fn hpack_block(fields: &[(&str, &str)]) -> Vec<u8> {
    let mut out = Vec::new();
    for (k, v) in fields {
        out.push(0x00);
        hpack_str(&mut out, k.as_bytes());
        hpack_str(&mut out, v.as_bytes());
    }
    out
}

/// The pseudo-header fields of a request.
pub fn request_fields<'a>(method: &'a str, path: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        (":method", method),
        (":scheme", "http"),
        (":authority", "example"),
        (":path", path),
    ]
}

/// A HEADERS frame (END_HEADERS set) carrying `fields`.
pub fn headers_frame(stream: u32, end_stream: bool, fields: &[(&str, &str)]) -> Vec<u8> {
    let flags = END_HEADERS | if end_stream { END_STREAM } else { 0 };
    frame(HEADERS, flags, stream, &hpack_block(fields))
}

/// Huffman codes of the ASCII digits (RFC 7541 Appendix B): enough to read a
/// `:status` value.
const HUFFMAN_DIGITS: [(u32, u32); 10] = [
    (0b00000, 5),
    (0b00001, 5),
    (0b00010, 5),
    (0b011001, 6),
    (0b011010, 6),
    (0b011011, 6),
    (0b011100, 6),
    (0b011101, 6),
    (0b011110, 6),
    (0b011111, 6),
];

fn read_int(block: &[u8], pos: &mut usize, n: u32) -> Option<usize> {
    let max = (1usize << n) - 1;
    let mut v = usize::from(*block.get(*pos)?) & max;
    *pos += 1;
    if v < max {
        return Some(v);
    }
    let mut m = 0;
    loop {
        let b = *block.get(*pos)?;
        *pos += 1;
        v += usize::from(b & 0x7f) << m;
        m += 7;
        if b & 0x80 == 0 {
            return Some(v);
        }
    }
}

fn huffman_digits(data: &[u8]) -> Option<String> {
    let mut bits: u64 = 0;
    let mut nbits = 0u32;
    let mut out = String::new();
    let mut iter = data.iter();
    loop {
        while nbits < 6 {
            match iter.next() {
                Some(b) => {
                    bits = (bits << 8) | u64::from(*b);
                    nbits += 8;
                }
                None => break,
            }
        }
        if nbits < 5 {
            return Some(out);
        }
        let mut matched = false;
        for (d, (code, len)) in HUFFMAN_DIGITS.iter().enumerate() {
            if nbits >= *len && ((bits >> (nbits - len)) & ((1 << len) - 1)) as u32 == *code {
                out.push(char::from(b'0' + d as u8));
                nbits -= len;
                bits &= (1u64 << nbits) - 1;
                matched = true;
                break;
            }
        }
        if !matched {
            // Padding (all ones, shorter than 8 bits) or a non-digit.
            return Some(out);
        }
    }
}

/// The `:status` of a response header block, when it is the first field (as `h2`
/// writes it) and encoded from the static table or as a literal.
pub fn decode_status(block: &[u8]) -> Option<u16> {
    let mut pos = 0;
    loop {
        let b = *block.get(pos)?;
        if b & 0xe0 == 0x20 {
            // Dynamic table size update.
            read_int(block, &mut pos, 5)?;
            continue;
        }
        if b & 0x80 != 0 {
            let idx = read_int(block, &mut pos, 7)?;
            return match idx {
                8 => Some(200),
                9 => Some(204),
                10 => Some(206),
                11 => Some(304),
                12 => Some(400),
                13 => Some(404),
                14 => Some(500),
                _ => None,
            };
        }
        let n = if b & 0x40 != 0 { 6 } else { 4 };
        let idx = read_int(block, &mut pos, n)?;
        if !(8..=14).contains(&idx) {
            return None;
        }
        let huff = *block.get(pos)? & 0x80 != 0;
        let len = read_int(block, &mut pos, 7)?;
        let raw = block.get(pos..pos + len)?;
        let s = if huff {
            huffman_digits(raw)?
        } else {
            String::from_utf8(raw.to_vec()).ok()?
        };
        return s.parse().ok();
    }
}

/// Reads one frame. `Ok(None)` on EOF (or a reset: the peer is gone).
pub async fn read_frame<T: AsyncRead + Unpin>(io: &mut T) -> io::Result<Option<Frame>> {
    let mut head = [0u8; 9];
    match io.read_exact(&mut head).await {
        Ok(_) => {}
        Err(e)
            if matches!(
                e.kind(),
                io::ErrorKind::UnexpectedEof
                    | io::ErrorKind::ConnectionReset
                    | io::ErrorKind::BrokenPipe
            ) =>
        {
            return Ok(None)
        }
        Err(e) => return Err(e),
    }
    let len = (usize::from(head[0]) << 16) | (usize::from(head[1]) << 8) | usize::from(head[2]);
    let mut payload = vec![0u8; len];
    match io.read_exact(&mut payload).await {
        Ok(_) => {}
        Err(e)
            if matches!(
                e.kind(),
                io::ErrorKind::UnexpectedEof | io::ErrorKind::ConnectionReset
            ) =>
        {
            return Ok(None)
        }
        Err(e) => return Err(e),
    }
    Ok(Some(Frame {
        ty: head[3],
        flags: head[4],
        stream: u32::from_be_bytes([head[5], head[6], head[7], head[8]]) & 0x7fff_ffff,
        payload: Bytes::from(payload),
    }))
}

/// Reads frames until `stop` says so or the connection ends; returns every frame
/// read (the stopping one last) and whether the connection ended. Bounded.
pub async fn read_frames_until<T, F>(io: &mut T, mut stop: F) -> (Vec<Frame>, bool)
where
    T: AsyncRead + Unpin,
    F: FnMut(&Frame) -> bool,
{
    let mut frames = Vec::new();
    let r = timeout(WAIT, async {
        loop {
            match read_frame(io).await {
                Ok(Some(f)) => {
                    let done = stop(&f);
                    frames.push(f);
                    if done {
                        return false;
                    }
                }
                Ok(None) | Err(_) => return true,
            }
        }
    })
    .await;
    match r {
        Ok(ended) => (frames, ended),
        Err(_) => panic!(
            "no stopping frame or end within the bound; frames so far: {:?}",
            frames
                .iter()
                .map(|f| (f.ty, f.flags, f.stream))
                .collect::<Vec<_>>()
        ),
    }
}

/// Opens a prior-knowledge connection by hand: preface, our SETTINGS, then reads
/// until the server's SETTINGS and acknowledges it. Returns the frames the server
/// sent before its SETTINGS was complete (its SETTINGS included).
pub async fn raw_h2_handshake<T>(io: &mut T, settings: &[(u16, u32)]) -> Vec<Frame>
where
    T: AsyncRead + AsyncWrite + Unpin,
{
    let mut hello = PREFACE.to_vec();
    hello.extend_from_slice(&settings_frame(settings));
    timeout(WAIT, io.write_all(&hello))
        .await
        .expect("write bound")
        .expect("write preface");
    let (frames, ended) = read_frames_until(io, |f| f.ty == SETTINGS && f.flags & ACK == 0).await;
    assert!(!ended, "server closed during the handshake: {frames:?}");
    timeout(WAIT, io.write_all(&settings_ack()))
        .await
        .expect("write bound")
        .expect("write settings ack");
    frames
}

/// The settings our raw clients announce: no dynamic table for the server's
/// encoder, so response header blocks can be read with [`decode_status`].
pub const RAW_SETTINGS: &[(u16, u32)] = &[(SETTINGS_HEADER_TABLE_SIZE, 0)];

/// Writes `bytes` and a PING, then reads until that PING's ACK: every frame the
/// server wrote in answer to `bytes` is returned. Panics if the connection ends.
pub async fn exchange_until_pong<T>(io: &mut T, bytes: &[u8]) -> Vec<Frame>
where
    T: AsyncRead + AsyncWrite + Unpin,
{
    let marker = *b"hardpong";
    let mut out = bytes.to_vec();
    out.extend_from_slice(&ping_frame(marker));
    timeout(WAIT, io.write_all(&out))
        .await
        .expect("write bound")
        .expect("write");
    let (frames, ended) = read_frames_until(io, |f| {
        f.ty == PING && f.flags & ACK != 0 && f.payload[..] == marker[..]
    })
    .await;
    assert!(!ended, "connection ended: {:?}", summarize(&frames));
    frames
}

/// (type, flags, stream, error code if any) of each frame, for messages.
pub fn summarize(frames: &[Frame]) -> Vec<(u8, u8, u32, Option<u32>)> {
    frames
        .iter()
        .map(|f| {
            let code = matches!(f.ty, RST_STREAM | GOAWAY).then(|| f.error_code());
            (f.ty, f.flags, f.stream, code)
        })
        .collect()
}

// ---------------------------------------------------------------------------
// Raw h2c upgrade client
// ---------------------------------------------------------------------------

/// A response read by hand on one stream: `:status` and the DATA payload.
#[derive(Debug, Default, Clone)]
pub struct RawResponse {
    pub status: Option<u16>,
    pub body: Vec<u8>,
    pub ended: bool,
    pub reset: Option<u32>,
}

/// Reads frames until `stream` ends (END_STREAM or RST_STREAM), answering the
/// server's SETTINGS and PINGs. Returns the response and every other frame seen.
pub async fn read_response<T>(io: &mut T, stream: u32) -> (RawResponse, Vec<Frame>)
where
    T: AsyncRead + AsyncWrite + Unpin,
{
    let mut resp = RawResponse::default();
    let mut others = Vec::new();
    let r = timeout(WAIT, async {
        loop {
            let Some(f) = read_frame(io).await.ok().flatten() else {
                return;
            };
            match f.ty {
                SETTINGS if f.flags & ACK == 0 => {
                    let _ = io.write_all(&settings_ack()).await;
                }
                PING if f.flags & ACK == 0 => {
                    let _ = io.write_all(&frame(PING, ACK, 0, &f.payload)).await;
                }
                HEADERS if f.stream == stream => {
                    if resp.status.is_none() {
                        resp.status = decode_status(&f.payload);
                    }
                    if f.flags & END_STREAM != 0 {
                        resp.ended = true;
                        return;
                    }
                }
                DATA if f.stream == stream => {
                    resp.body.extend_from_slice(&f.payload);
                    if !f.payload.is_empty() {
                        // Keep the windows open for large bodies.
                        let inc = f.payload.len() as u32;
                        let mut wu = window_update_frame(0, inc);
                        wu.extend_from_slice(&window_update_frame(stream, inc));
                        let _ = io.write_all(&wu).await;
                    }
                    if f.flags & END_STREAM != 0 {
                        resp.ended = true;
                        return;
                    }
                }
                RST_STREAM if f.stream == stream => {
                    resp.reset = Some(f.error_code());
                    return;
                }
                _ => others.push(f),
            }
        }
    })
    .await;
    assert!(r.is_ok(), "stream {stream} did not end within the bound");
    (resp, others)
}

/// Sends [`UPGRADE_GET`] (or `request`), checks the `101`, sends the preface and
/// our SETTINGS. Returns the `101` head. Panics if the upgrade is not accepted.
pub async fn raw_upgrade<T>(io: &mut T, request: &str) -> String
where
    T: AsyncRead + AsyncWrite + Unpin,
{
    timeout(WAIT, io.write_all(request.as_bytes()))
        .await
        .expect("write bound")
        .expect("write upgrade");
    let head = read_head(io).await.expect("a response head");
    assert!(head.starts_with("HTTP/1.1 101 "), "not upgraded: {head:?}");
    let mut hello = PREFACE.to_vec();
    hello.extend_from_slice(&settings_frame(RAW_SETTINGS));
    timeout(WAIT, io.write_all(&hello))
        .await
        .expect("write bound")
        .expect("write preface");
    head
}

/// The resident set size of this process, in KiB, from /proc/self/status.
pub fn rss_kib(field: &str) -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    s.lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
}

/// Appends `s` to a buffer as bytes (helper for building requests).
pub fn put(buf: &mut BytesMut, s: &str) {
    buf.put_slice(s.as_bytes());
}
