//! The demo service served by the `h2c-mux` binary, and used by the tests and
//! benchmarks.
//!
//! | request | response |
//! |---|---|
//! | `GET /` (or `HEAD /`) | `200`, `content-type: text/plain`, body `hello world\n` |
//! | `POST /echo`, `PUT /echo` | `200`, the request body echoed back as it streams in |
//! | `GET /bytes/N` | `200`, N bytes (N up to 1 GiB, else `400`) of the repeating [`PATTERN`] |
//! | `POST /sha256`, `PUT /sha256` | `200`, `<hex SHA-256 of the body> <body length>\n`, read as it streams |
//! | `GET /ws` | a WebSocket echo of text and binary messages (up to [`MAX_WS_MESSAGE`]); `426` for a request that cannot switch |
//! | any method on `/drain` | `200`, `read <body length> bytes\n`, sent only once the whole request body is read (HTTP/2: `END_STREAM` seen) |
//! | HTTP/2 `CONNECT /echo` with `:protocol: echo` ([`enable_connect_protocol`](crate::Builder::enable_connect_protocol) on) | `200`, then a [`tunnel`] that echoes every byte until the client ends its side, then ends too |
//! | another path | `404`; another method on a known path: `405`, with `Allow` naming the route's methods |
//!
//! `/drain` is for conformance testers (h2spec runs with `-P /drain`, see
//! `interop/h2spec/`): every other route may answer, and end its response, while the
//! request is still open, after which the server resets the stream with `NO_ERROR`
//! (RFC 9113 §8.1) and may ignore frames the client then sends on it (§5.1). A tester
//! that sends a protocol violation after its request's HEADERS then races the
//! response. `/drain` keeps the stream open until the client ends it, so the server
//! has to deal with whatever arrives on it.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{header, HeaderValue, Method, Request, Response, StatusCode};
use http_body::{Body as _, Frame, SizeHint};
use sha2::{Digest, Sha256};

use crate::body::Body;
use crate::error::Error;
use crate::tunnel::{self, ConnectProtocol};

/// Largest `/bytes/N` answered: 1 GiB.
///
/// ```
/// assert_eq!(h2c_mux::demo::MAX_BYTES, 1 << 30);
/// ```
pub const MAX_BYTES: u64 = 1 << 30;

/// The bytes `/bytes/N` repeats: byte `i` of a response is `PATTERN[i % 32]`.
///
/// ```
/// let expected: Vec<u8> = (0..100).map(|i| h2c_mux::demo::PATTERN[i % 32]).collect();
/// # assert_eq!(expected.len(), 100);
/// ```
pub const PATTERN: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz012345";

const CHUNK_LEN: usize = 64 * 1024;

static CHUNK: [u8; CHUNK_LEN] = {
    let mut a = [0u8; CHUNK_LEN];
    let mut i = 0;
    while i < CHUNK_LEN {
        a[i] = PATTERN[i % PATTERN.len()];
        i += 1;
    }
    a
};

/// The demo service (see the module docs for its routes).
///
/// ```no_run
/// # async fn run() -> std::io::Result<()> {
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
/// h2c_mux::Builder::new()
///     .serve(listener, h2c_mux::demo::Demo::new(), std::future::pending())
///     .await
/// # }
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct Demo {
    _private: (),
}

impl Demo {
    /// The demo service.
    ///
    /// ```
    /// let demo = h2c_mux::demo::Demo::new();
    /// # let _ = demo;
    /// ```
    pub fn new() -> Demo {
        Demo { _private: () }
    }
}

impl tower_service::Service<Request<Body>> for Demo {
    type Response = Response<DemoBody>;
    type Error = Infallible;
    type Future = DemoFuture;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<Body>) -> DemoFuture {
        let path = req.uri().path();
        let method = req.method();
        let state = if path == "/" && (method == Method::GET || method == Method::HEAD) {
            State::Hello
        } else if path == "/sha256" && (method == Method::POST || method == Method::PUT) {
            State::Digest(Box::new(Hashing {
                body: req.into_body(),
                hasher: Sha256::new(),
                len: 0,
            }))
        } else if path == "/drain" {
            State::Drain(Box::new(Draining {
                body: req.into_body(),
                len: 0,
            }))
        } else {
            State::Ready(Some(Box::new(route(req))))
        };
        DemoFuture { state }
    }
}

/// The response future of [`Demo`].
///
/// ```
/// use tower_service::Service;
///
/// # async fn run() {
/// let req = http::Request::get("/").body(h2c_mux::Body::empty()).unwrap();
/// let res = h2c_mux::demo::Demo::new().call(req).await.unwrap();
/// assert_eq!(res.status(), 200);
/// # }
/// ```
#[derive(Debug)]
pub struct DemoFuture {
    state: State,
}

// The common route's response is built when polled, and the others are boxed: the
// future stays a few bytes, so moving it costs nothing.
#[derive(Debug)]
enum State {
    /// `GET` or `HEAD /`.
    Hello,
    Ready(Option<Box<Response<DemoBody>>>),
    Digest(Box<Hashing>),
    /// `/drain`: reading the request body to its end.
    Drain(Box<Draining>),
}

#[derive(Debug)]
struct Hashing {
    body: Body,
    hasher: Sha256,
    len: u64,
}

#[derive(Debug)]
struct Draining {
    body: Body,
    len: u64,
}

impl Future for DemoFuture {
    type Output = Result<Response<DemoBody>, Infallible>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match &mut self.state {
            State::Hello => Poll::Ready(Ok(hello())),
            State::Ready(res) => Poll::Ready(Ok(res
                .take()
                .map_or_else(|| status(StatusCode::INTERNAL_SERVER_ERROR), |r| *r))),
            State::Digest(digest) => loop {
                let Hashing { body, hasher, len } = &mut **digest;
                match std::task::ready!(Pin::new(&mut *body).poll_frame(cx)) {
                    Some(Ok(frame)) => {
                        if let Some(d) = frame.data_ref() {
                            hasher.update(d);
                            *len += d.len() as u64;
                        }
                    }
                    Some(Err(_)) => return Poll::Ready(Ok(status(StatusCode::BAD_REQUEST))),
                    None => {
                        let digest = std::mem::take(hasher).finalize();
                        let mut text = String::with_capacity(90);
                        for b in digest {
                            text.push_str(&format!("{b:02x}"));
                        }
                        text.push_str(&format!(" {len}\n"));
                        let mut res = Response::new(DemoBody::full(Bytes::from(text)));
                        res.headers_mut()
                            .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
                        return Poll::Ready(Ok(res));
                    }
                }
            },
            State::Drain(drain) => loop {
                let Draining { body, len } = &mut **drain;
                match std::task::ready!(Pin::new(&mut *body).poll_frame(cx)) {
                    Some(Ok(frame)) => {
                        if let Some(d) = frame.data_ref() {
                            *len += d.len() as u64;
                        }
                    }
                    Some(Err(_)) => return Poll::Ready(Ok(status(StatusCode::BAD_REQUEST))),
                    None => {
                        let text = format!("read {len} bytes\n");
                        let mut res = Response::new(DemoBody::full(Bytes::from(text)));
                        res.headers_mut()
                            .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
                        return Poll::Ready(Ok(res));
                    }
                }
            },
        }
    }
}

/// `200`, `hello world\n`.
fn hello() -> Response<DemoBody> {
    let mut res = Response::new(DemoBody::full(Bytes::from_static(b"hello world\n")));
    res.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    res
}

fn route(req: Request<Body>) -> Response<DemoBody> {
    let path = req.uri().path();
    let method = req.method();
    if path == "/" {
        if method == Method::GET || method == Method::HEAD {
            return hello();
        }
        return not_allowed("GET, HEAD");
    }
    if path == "/echo" {
        if method == Method::CONNECT && ConnectProtocol::of(&req).is_some_and(|p| p == "echo") {
            let mut req = req;
            let on_tunnel = tunnel::on(&mut req);
            tokio::spawn(echo_tunnel(on_tunnel));
            // An empty 2xx: the stream becomes the tunnel.
            return Response::new(DemoBody {
                kind: Kind::Full(None),
            });
        }
        if method == Method::POST || method == Method::PUT {
            let mut res = Response::new(DemoBody {
                kind: Kind::Echo(req.into_body()),
            });
            res.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/octet-stream"),
            );
            return res;
        }
        return not_allowed("POST, PUT");
    }
    if path == "/sha256" {
        // `call` took POST and PUT already.
        return not_allowed("POST, PUT");
    }
    if path == "/ws" {
        if method != Method::GET {
            return not_allowed("GET");
        }
        return websocket(req);
    }
    if let Some(n) = path.strip_prefix("/bytes/") {
        if method != Method::GET && method != Method::HEAD {
            return not_allowed("GET, HEAD");
        }
        return match n.parse::<u64>() {
            Ok(n) if n <= MAX_BYTES => {
                let mut res = Response::new(DemoBody {
                    kind: Kind::Pattern { sent: 0, len: n },
                });
                res.headers_mut().insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("application/octet-stream"),
                );
                res
            }
            _ => status(StatusCode::BAD_REQUEST),
        };
    }
    status(StatusCode::NOT_FOUND)
}

/// `CONNECT /echo` with `:protocol: echo`: every byte the tunnel reads goes back
/// until the client ends its side; then the tunnel ends its own.
async fn echo_tunnel(on_tunnel: tunnel::OnTunnel) {
    let Ok(mut tunnel) = on_tunnel.await else {
        return;
    };
    let (mut rd, mut wr) = tokio::io::split(&mut tunnel);
    if tokio::io::copy(&mut rd, &mut wr).await.is_ok() {
        let _ = tokio::io::AsyncWriteExt::shutdown(&mut tunnel).await;
    }
}

/// Largest WebSocket message `/ws` takes (and frame): 1 MiB, so one client
/// cannot make the echo hold more.
///
/// ```
/// assert_eq!(h2c_mux::demo::MAX_WS_MESSAGE, 1 << 20);
/// ```
pub const MAX_WS_MESSAGE: usize = 1 << 20;

/// `GET /ws`: a WebSocket (RFC 6455) that echoes every text and binary message.
/// The switch goes through `hyper::upgrade::on`, as any service's does under
/// h2c-mux (see the crate's `upgrades` feature); a request that cannot switch
/// (not a WebSocket handshake, or not HTTP/1.1 with `Connection: upgrade`) is
/// answered `426` (RFC 9110 §15.5.22).
fn websocket(mut req: Request<Body>) -> Response<DemoBody> {
    use tokio_tungstenite::tungstenite::handshake::derive_accept_key;

    let headers = req.headers();
    let asks = |name, want: &str| {
        headers
            .get(name)
            .is_some_and(|v: &HeaderValue| v.as_bytes().eq_ignore_ascii_case(want.as_bytes()))
    };
    let key = headers.get(header::SEC_WEBSOCKET_KEY).cloned();
    let handshake = asks(header::UPGRADE, "websocket") && asks(header::SEC_WEBSOCKET_VERSION, "13");
    let on_upgrade = req.extensions_mut().remove::<hyper::upgrade::OnUpgrade>();
    let (Some(key), Some(on_upgrade), true) = (key, on_upgrade, handshake) else {
        let mut res = status(StatusCode::UPGRADE_REQUIRED);
        res.headers_mut()
            .insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        res.headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
        res.headers_mut().insert(
            header::SEC_WEBSOCKET_VERSION,
            HeaderValue::from_static("13"),
        );
        return res;
    };
    tokio::spawn(echo_websocket(on_upgrade));
    let mut res = Response::new(DemoBody::full(Bytes::new()));
    *res.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let accept = derive_accept_key(key.as_bytes());
    let h = res.headers_mut();
    h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    h.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    if let Ok(accept) = HeaderValue::try_from(accept) {
        h.insert(header::SEC_WEBSOCKET_ACCEPT, accept);
    }
    res
}

/// Echoes text and binary messages until the client closes (the close handshake
/// is the WebSocket library's) or the connection fails.
async fn echo_websocket(on_upgrade: hyper::upgrade::OnUpgrade) {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};

    let Ok(upgraded) = on_upgrade.await else {
        return;
    };
    let config = WebSocketConfig::default()
        .max_message_size(Some(MAX_WS_MESSAGE))
        .max_frame_size(Some(MAX_WS_MESSAGE));
    let io = hyper_util::rt::TokioIo::new(upgraded);
    let mut ws =
        tokio_tungstenite::WebSocketStream::from_raw_socket(io, Role::Server, Some(config)).await;
    while let Some(Ok(msg)) = ws.next().await {
        if (msg.is_text() || msg.is_binary()) && ws.send(msg).await.is_err() {
            return;
        }
    }
}

/// `405`, with the `Allow` header RFC 9110 §15.5.6 requires: the route's methods.
fn not_allowed(allow: &'static str) -> Response<DemoBody> {
    let mut res = status(StatusCode::METHOD_NOT_ALLOWED);
    res.headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static(allow));
    res
}

fn status(code: StatusCode) -> Response<DemoBody> {
    let text = format!("{}\n", code.canonical_reason().unwrap_or(""));
    let mut res = Response::new(DemoBody::full(Bytes::from(text)));
    *res.status_mut() = code;
    res.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    res
}

/// The response body of [`Demo`].
///
/// ```
/// use http_body::Body as _;
/// use tower_service::Service;
///
/// # async fn run() {
/// let req = http::Request::get("/bytes/10").body(h2c_mux::Body::empty()).unwrap();
/// let res = h2c_mux::demo::Demo::new().call(req).await.unwrap();
/// assert_eq!(res.body().size_hint().exact(), Some(10));
/// # }
/// ```
#[derive(Debug)]
pub struct DemoBody {
    kind: Kind,
}

#[derive(Debug)]
enum Kind {
    Full(Option<Bytes>),
    Echo(Body),
    Pattern { sent: u64, len: u64 },
}

impl DemoBody {
    fn full(b: Bytes) -> DemoBody {
        DemoBody {
            kind: Kind::Full(Some(b)),
        }
    }
}

impl http_body::Body for DemoBody {
    type Data = Bytes;
    type Error = Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Error>>> {
        match &mut self.kind {
            Kind::Full(b) => Poll::Ready(b.take().map(|b| Ok(Frame::data(b)))),
            Kind::Echo(body) => Pin::new(body).poll_frame(cx),
            Kind::Pattern { sent, len } => {
                if *sent >= *len {
                    return Poll::Ready(None);
                }
                // CHUNK_LEN is a multiple of the pattern length, so every chunk
                // starts where the pattern does.
                let n = (*len - *sent).min(CHUNK_LEN as u64) as usize;
                *sent += n as u64;
                Poll::Ready(Some(Ok(Frame::data(Bytes::from_static(&CHUNK[..n])))))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.kind {
            Kind::Full(b) => b.is_none(),
            Kind::Echo(body) => body.is_end_stream(),
            Kind::Pattern { sent, len } => sent >= len,
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.kind {
            Kind::Full(b) => SizeHint::with_exact(b.as_ref().map_or(0, |b| b.len() as u64)),
            Kind::Echo(body) => body.size_hint(),
            Kind::Pattern { sent, len } => SizeHint::with_exact(len - sent),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tower_service::Service as _;

    fn collect(mut body: DemoBody) -> Vec<u8> {
        let mut out = Vec::new();
        let mut cx = Context::from_waker(std::task::Waker::noop());
        while let Poll::Ready(Some(Ok(f))) = Pin::new(&mut body).poll_frame(&mut cx) {
            out.extend_from_slice(&f.into_data().unwrap_or_default());
        }
        out
    }

    fn get(method: Method, path: &str) -> Response<DemoBody> {
        route(
            Request::builder()
                .method(method)
                .uri(path)
                .body(Body::empty())
                .unwrap(),
        )
    }

    #[test]
    fn routes() {
        let r = get(Method::GET, "/");
        assert_eq!(r.status(), 200);
        assert_eq!(r.headers()["content-type"], "text/plain");
        assert_eq!(collect(r.into_body()), b"hello world\n");
        assert_eq!(get(Method::DELETE, "/").status(), 405);
        assert_eq!(get(Method::GET, "/echo").status(), 405);
        assert_eq!(get(Method::GET, "/nope").status(), 404);
        assert_eq!(get(Method::GET, "/bytes/x").status(), 400);
        assert_eq!(
            get(Method::GET, &format!("/bytes/{}", MAX_BYTES + 1)).status(),
            400
        );
    }

    /// RFC 9110 §15.5.6: a 405 names the methods the route allows.
    #[test]
    fn every_405_says_what_is_allowed() {
        let cases = [
            (Method::POST, "/", "GET, HEAD"),
            (Method::DELETE, "/", "GET, HEAD"),
            (Method::GET, "/echo", "POST, PUT"),
            (Method::DELETE, "/echo", "POST, PUT"),
            (Method::GET, "/sha256", "POST, PUT"),
            (Method::HEAD, "/sha256", "POST, PUT"),
            (Method::POST, "/bytes/3", "GET, HEAD"),
            (Method::PUT, "/bytes/x", "GET, HEAD"),
        ];
        for (method, path, allow) in cases {
            // Through the service, as a client reaches it.
            let req = Request::builder()
                .method(method.clone())
                .uri(path)
                .body(Body::empty())
                .unwrap();
            let mut fut = Demo::new().call(req);
            let mut cx = Context::from_waker(std::task::Waker::noop());
            let Poll::Ready(Ok(res)) = Pin::new(&mut fut).poll(&mut cx) else {
                panic!("{method} {path}: a 405 is ready at once");
            };
            assert_eq!(res.status(), 405, "{method} {path}");
            assert_eq!(res.headers()["allow"], allow, "{method} {path}");
        }
        // Other statuses carry none.
        assert!(!get(Method::GET, "/nope").headers().contains_key("allow"));
        assert!(!get(Method::GET, "/").headers().contains_key("allow"));
    }

    #[test]
    fn bytes_follow_the_pattern() {
        for n in [0u64, 1, 31, 32, 65_535, 65_536, 200_001] {
            let r = get(Method::GET, &format!("/bytes/{n}"));
            assert_eq!(r.body().size_hint().exact(), Some(n));
            let body = collect(r.into_body());
            assert_eq!(body.len() as u64, n);
            assert!(body.iter().enumerate().all(|(i, b)| *b == PATTERN[i % 32]));
        }
    }

    #[test]
    fn sha256_digests_the_body() {
        let req = Request::builder()
            .method(Method::PUT)
            .uri("/sha256")
            .body(Body::from(Bytes::from_static(b"abc")))
            .unwrap();
        let mut fut = Demo::new().call(req);
        let mut cx = Context::from_waker(std::task::Waker::noop());
        let Poll::Ready(Ok(res)) = Pin::new(&mut fut).poll(&mut cx) else {
            panic!("the body is in memory: the digest is ready at once");
        };
        // FIPS 180-2 test vector for "abc".
        assert_eq!(
            collect(res.into_body()),
            b"ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad 3\n"
        );
    }

    #[test]
    fn echo_returns_the_request_body() {
        let req = Request::builder()
            .method(Method::POST)
            .uri("/echo")
            .body(Body::from(Bytes::from_static(b"abc")))
            .unwrap();
        let r = route(req);
        assert_eq!(r.body().size_hint().exact(), Some(3));
        assert_eq!(collect(r.into_body()), b"abc");
    }

    #[test]
    fn drain_answers_only_once_the_body_has_ended() {
        let (mut tx, rx) = crate::body::channel(None);
        let req = Request::builder()
            .method(Method::POST)
            .uri("/drain")
            .body(Body::h1(rx))
            .unwrap();
        let mut fut = Demo::new().call(req);
        let mut cx = Context::from_waker(std::task::Waker::noop());
        assert!(Pin::new(&mut fut).poll(&mut cx).is_pending(), "no body yet");
        assert!(matches!(tx.poll_want(&mut cx), Poll::Ready(Ok(()))));
        tx.send(Frame::data(Bytes::from_static(b"abcde")));
        assert!(
            Pin::new(&mut fut).poll(&mut cx).is_pending(),
            "body read, not ended"
        );
        tx.finish();
        let Poll::Ready(Ok(res)) = Pin::new(&mut fut).poll(&mut cx) else {
            panic!("the body has ended: the answer is ready");
        };
        assert_eq!(res.status(), 200);
        assert_eq!(res.headers()["content-type"], "text/plain");
        assert_eq!(collect(res.into_body()), b"read 5 bytes\n");
    }

    #[test]
    fn drain_answers_any_method_with_an_empty_body_at_once() {
        for method in [Method::GET, Method::HEAD, Method::POST, Method::DELETE] {
            let req = Request::builder()
                .method(method)
                .uri("/drain")
                .body(Body::empty())
                .unwrap();
            let mut fut = Demo::new().call(req);
            let mut cx = Context::from_waker(std::task::Waker::noop());
            let Poll::Ready(Ok(res)) = Pin::new(&mut fut).poll(&mut cx) else {
                panic!("an empty body has ended: the answer is ready");
            };
            assert_eq!(res.status(), 200);
            assert_eq!(collect(res.into_body()), b"read 0 bytes\n");
        }
    }

    #[test]
    fn drain_answers_400_when_the_body_fails() {
        let (tx, rx) = crate::body::channel(Some(10));
        let req = Request::builder()
            .method(Method::PUT)
            .uri("/drain")
            .body(Body::h1(rx))
            .unwrap();
        let mut fut = Demo::new().call(req);
        let mut cx = Context::from_waker(std::task::Waker::noop());
        assert!(Pin::new(&mut fut).poll(&mut cx).is_pending());
        // The connection went away before the 10 bytes came.
        drop(tx);
        let Poll::Ready(Ok(res)) = Pin::new(&mut fut).poll(&mut cx) else {
            panic!("a failed body ends the wait");
        };
        assert_eq!(res.status(), 400);
    }

    /// Over HTTP/2 (prior knowledge): no HEADERS until the client's `END_STREAM`. The
    /// clock is paused, so the timeout below fires only once the server is idle.
    #[tokio::test(start_paused = true)]
    async fn drain_over_h2_waits_for_end_stream() {
        use std::time::Duration;
        let (client, server) = tokio::io::duplex(1 << 16);
        let conn = crate::Builder::new().serve_connection(server, Demo::new());
        let conn = tokio::spawn(conn);
        let (send, h2conn) = h2::client::handshake(client).await.unwrap();
        tokio::spawn(async move {
            let _ = h2conn.await;
        });
        let mut send = send.ready().await.unwrap();
        let req = Request::get("http://example/drain").body(()).unwrap();
        let (mut resp, mut body) = send.send_request(req, false).unwrap();
        body.send_data(Bytes::from_static(b"xyz"), false).unwrap();
        assert!(
            tokio::time::timeout(Duration::from_secs(5), &mut resp)
                .await
                .is_err(),
            "answered before the request ended"
        );
        body.send_data(Bytes::from_static(b"!"), true).unwrap();
        let resp = tokio::time::timeout(Duration::from_secs(5), resp)
            .await
            .expect("answered once the request ended")
            .unwrap();
        assert_eq!(resp.status(), 200);
        let mut recv = resp.into_body();
        let mut got = Vec::new();
        while let Some(chunk) = recv.data().await {
            got.extend_from_slice(&chunk.unwrap());
        }
        assert_eq!(got, b"read 4 bytes\n");
        drop(send);
        drop(recv);
        conn.abort();
    }
}
