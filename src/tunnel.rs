//! HTTP/2 extended CONNECT (RFC 8441): one stream of an HTTP/2 connection turned
//! into a two-way byte tunnel, the way WebSocket runs over HTTP/2 (RFC 8441 §5).
//!
//! ```text
//! client                                        server
//!   |                                    <---   | SETTINGS: ENABLE_CONNECT_PROTOCOL = 1
//!   | HEADERS :method CONNECT                   |
//!   |   :protocol echo  :path /echo      --->   | the service is called, the request
//!   |                                           | carries ConnectProtocol and OnTunnel
//!   |                                    <---   | HEADERS :status 200 (no END_STREAM)
//!   |                                           | OnTunnel resolves to the Tunnel
//!   | DATA ...                           <--->  | Tunnel: AsyncRead + AsyncWrite
//!   | DATA END_STREAM                    --->   | the Tunnel reads EOF
//!   |                                    <---   | DATA END_STREAM (Tunnel shut down)
//! ```
//!
//! Turn it on with [`Builder::enable_connect_protocol`](crate::Builder::enable_connect_protocol).
//! The service then sees every `CONNECT` that carries `:protocol` with two
//! extensions: the protocol, a [`ConnectProtocol`], and an [`OnTunnel`], a future
//! that resolves to the [`Tunnel`] once the service's answer has gone to `h2`.
//! Take it out of the request with [`on`], hand it to a task of its own, and answer
//! `200` with an empty body:
//!
//! ```no_run
//! use std::convert::Infallible;
//! use http::{Method, Request, Response, StatusCode};
//! use h2c_mux::{tunnel, Body};
//!
//! async fn handle(mut req: Request<Body>) -> Result<Response<Body>, Infallible> {
//!     let wanted = req.method() == Method::CONNECT
//!         && tunnel::ConnectProtocol::of(&req).is_some_and(|p| p == "echo");
//!     let mut res = Response::new(Body::empty());
//!     if !wanted {
//!         *res.status_mut() = StatusCode::NOT_FOUND;
//!         return Ok(res);
//!     }
//!     let on_tunnel = tunnel::on(&mut req);
//!     tokio::spawn(async move {
//!         // Resolves once the 200 below is sent.
//!         let Ok(mut tunnel) = on_tunnel.await else { return };
//!         let (mut rd, mut wr) = tokio::io::split(&mut tunnel);
//!         // Echo until the client ends its side, then end ours.
//!         if tokio::io::copy(&mut rd, &mut wr).await.is_ok() {
//!             let _ = tokio::io::AsyncWriteExt::shutdown(&mut tunnel).await;
//!         }
//!     });
//!     Ok(res)
//! }
//! ```
//!
//! # When the stream becomes a tunnel
//!
//! Only when the answer is a `2xx` with an empty body (one whose
//! [`is_end_stream`](http_body::Body::is_end_stream) is true at once: an empty
//! [`Body`](crate::Body), `String::new()`, `http_body_util::Empty`) and an
//! `OnTunnel` of the request is still alive to receive it. The head then goes out
//! without `END_STREAM` and without `Content-Length` or `Transfer-Encoding`, which
//! a `2xx` to `CONNECT` must not carry (RFC 9110 §9.3.6), and the `OnTunnel`
//! resolves. Any other answer goes out as it would for any request and ends the
//! stream: a non-`2xx`, a `2xx` with a body, or an answer nobody waits a tunnel
//! for (the service dropped the `OnTunnel`, or never took it out of the request).
//! An `OnTunnel` still waiting then resolves to an error for which
//! [`Error::is_no_tunnel`](crate::Error::is_no_tunnel) is true, and so does one
//! whose stream the client reset, or whose connection closed, before the answer.
//!
//! The request's own body is empty: the stream's DATA belongs to the tunnel. What
//! the client sends before the answer waits in the stream's receive window, and is
//! the first the tunnel reads.
//!
//! Do not await the `OnTunnel` in the service's own future before it returns the
//! response: it resolves only after that response has been sent.
//!
//! # The tunnel
//!
//! A [`Tunnel`] is the stream's DATA, both ways, under HTTP/2 flow control:
//!
//! - **reads** give the client's DATA in order; the client's `END_STREAM` is the
//!   end of file; a reset (`RST_STREAM`, or the connection failing) is an error of
//!   kind [`ConnectionReset`](std::io::ErrorKind::ConnectionReset). The receive
//!   window is given back to the client as bytes are read, not as they arrive, so a
//!   slow reader holds the client back: what waits unread is bounded by the
//!   [stream window](crate::Builder::initial_stream_window_size).
//! - **writes** wait for the client's window and accept at most what it allows,
//!   and at most the stream's [send buffer](crate::Builder::max_send_buffer_size):
//!   a fast writer is held back by a slow client. Flushing has nothing left to do:
//!   the connection's task writes the frames.
//! - **shutdown** of the write side sends `END_STREAM`: the client reads the end
//!   of the tunnel. Dropping a tunnel whose write side is still open resets the
//!   stream with `CANCEL`; one whose write side was shut down, while the client
//!   still sends, with `NO_ERROR` (RFC 9113 §8.1: the server needs no more).
//!
//! A tunnel is a stream of its connection: it counts against
//! [`max_concurrent_streams`](crate::Builder::max_concurrent_streams), and keeps the
//! connection from its idle timeout (the keep-alive PINGs go on). A graceful
//! shutdown sends `GOAWAY` and waits for open tunnels to end like any stream; the
//! [drain timeout](crate::Builder::drain_timeout) of `serve` cuts those still open
//! (their reads and writes then fail), and the warning it logs counts them. A
//! tunnel's opening, its reset and its end (with the bytes read and written) are
//! logged at `debug` in the request's span.
//!
//! # axum's `WebSocketUpgrade` over HTTP/2
//!
//! axum 0.8's `WebSocketUpgrade` extractor accepts an RFC 8441 request (`CONNECT`,
//! `sec-websocket-version: 13`), then takes hyper's `hyper::upgrade::OnUpgrade` out
//! of the request's extensions. Only hyper's own server can make one, and h2c-mux
//! serves HTTP/2 with `h2` directly, so it is missing and axum answers `426 Upgrade
//! Required` ("WebSocket request couldn't be upgraded since no upgrade state was
//! present"). With axum's `http2` feature on, the extractor first looks for
//! hyper's `hyper::ext::Protocol`, which h2c-mux does not insert either (it inserts
//! [`ConnectProtocol`]), and answers `400 Bad Request` ("`:protocol` pseudo-header
//! did not include 'websocket'"). A WebSocket over HTTP/2 is served through this
//! module instead: take the tunnel, answer `200` (RFC 8441 §5 has no
//! `Sec-WebSocket-Accept`), and run the WebSocket protocol over the tunnel, for
//! example with `tokio_tungstenite::WebSocketStream::from_raw_socket(tunnel,
//! Role::Server, None)`.

use std::fmt;
use std::future::Future;
use std::hash::{Hash, Hasher};
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{ready, Context, Poll};

use bytes::{Buf, Bytes};
use h2::{RecvStream, SendStream};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::oneshot;
use tracing::debug;

use crate::error::{Error, Kind};

/// The `:protocol` of an extended CONNECT request (RFC 8441 §4), such as
/// `websocket`: in the extensions of every request that carries one.
///
/// h2c-mux's own type, so that a service need not depend on `h2` to read it (`h2`
/// puts its `h2::ext::Protocol` in the extensions too). Compared byte for byte, as
/// the client sent it: RFC 8441 §4 takes the value from the registry of HTTP
/// upgrade tokens (`websocket` for WebSocket, RFC 8441 §5).
///
/// ```
/// use h2c_mux::tunnel::ConnectProtocol;
///
/// let mut req = http::Request::connect("http://example/chat").body(()).unwrap();
/// assert_eq!(ConnectProtocol::of(&req), None);
/// req.extensions_mut().insert(ConnectProtocol::from_static("websocket"));
/// assert!(ConnectProtocol::of(&req).is_some_and(|p| p == "websocket"));
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct ConnectProtocol(h2::ext::Protocol);

impl ConnectProtocol {
    /// A protocol named by a static string.
    ///
    /// ```
    /// const WS: h2c_mux::tunnel::ConnectProtocol =
    ///     h2c_mux::tunnel::ConnectProtocol::from_static("websocket");
    /// assert_eq!(WS.as_str(), "websocket");
    /// ```
    pub const fn from_static(name: &'static str) -> ConnectProtocol {
        ConnectProtocol(h2::ext::Protocol::from_static(name))
    }

    /// The protocol's name.
    ///
    /// ```
    /// let p = h2c_mux::tunnel::ConnectProtocol::from("echo");
    /// assert_eq!(p.as_str(), "echo");
    /// ```
    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }

    /// The protocol `req` asks for, if it is an extended CONNECT.
    ///
    /// ```
    /// let req = http::Request::connect("http://example/").body(()).unwrap();
    /// assert!(h2c_mux::tunnel::ConnectProtocol::of(&req).is_none());
    /// ```
    pub fn of<B>(req: &http::Request<B>) -> Option<&ConnectProtocol> {
        req.extensions().get::<ConnectProtocol>()
    }

    pub(crate) fn from_h2(protocol: h2::ext::Protocol) -> ConnectProtocol {
        ConnectProtocol(protocol)
    }
}

impl From<&str> for ConnectProtocol {
    fn from(name: &str) -> ConnectProtocol {
        ConnectProtocol(h2::ext::Protocol::from(name))
    }
}

impl PartialEq<str> for ConnectProtocol {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for ConnectProtocol {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl Hash for ConnectProtocol {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.as_str().hash(state);
    }
}

impl fmt::Debug for ConnectProtocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("ConnectProtocol")
            .field(&self.as_str())
            .finish()
    }
}

impl fmt::Display for ConnectProtocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What the stream hands the `OnTunnel`: the tunnel, or why there is none.
type Outcome = Result<Tunnel, Error>;

/// Takes the [`OnTunnel`] out of `req`'s extensions. On a request that has none
/// (not an extended CONNECT, or taken already) it resolves at once to an error
/// for which [`Error::is_no_tunnel`](crate::Error::is_no_tunnel) is true.
///
/// ```no_run
/// async fn handle(mut req: http::Request<h2c_mux::Body>) -> http::Response<h2c_mux::Body> {
///     let on_tunnel = h2c_mux::tunnel::on(&mut req);
///     tokio::spawn(async move {
///         if let Ok(tunnel) = on_tunnel.await {
///             // read and write `tunnel`
/// #           drop(tunnel);
///         }
///     });
///     http::Response::new(h2c_mux::Body::empty())
/// }
/// ```
pub fn on<B>(req: &mut http::Request<B>) -> OnTunnel {
    req.extensions_mut()
        .remove::<OnTunnel>()
        .unwrap_or(OnTunnel {
            shared: None,
            owned: None,
        })
}

/// A future that resolves to the [`Tunnel`] of an extended CONNECT once the
/// service's `2xx` answer has been sent, or to an error for which
/// [`Error::is_no_tunnel`](crate::Error::is_no_tunnel) is true when there is none
/// (the [module docs](self) say when).
///
/// It is in the extensions of every extended CONNECT request; take it with [`on`]
/// (or `extensions_mut().remove::<OnTunnel>()`) and await it on a task of its
/// own. Keeping it alive until the answer is what asks for the tunnel: an answer
/// whose request's `OnTunnel` was dropped goes out as a plain response. It is
/// `Clone` because request extensions must be; the clones share one tunnel, which
/// the first of them to be polled waits for, and the others resolve to an error.
///
/// ```no_run
/// # async fn run(mut req: http::Request<h2c_mux::Body>) {
/// let on_tunnel: h2c_mux::tunnel::OnTunnel = h2c_mux::tunnel::on(&mut req);
/// match on_tunnel.await {
///     // The 2xx has been sent: read and write `tunnel`.
///     Ok(tunnel) => drop(tunnel),
///     Err(e) => assert!(e.is_no_tunnel()),
/// }
/// # }
/// ```
pub struct OnTunnel {
    /// Shared by the clones until one of them is polled, which takes the receiver.
    shared: Option<Arc<Mutex<Option<oneshot::Receiver<Outcome>>>>>,
    /// The receiver of the clone that took it.
    owned: Option<oneshot::Receiver<Outcome>>,
}

impl Clone for OnTunnel {
    fn clone(&self) -> OnTunnel {
        OnTunnel {
            shared: self.shared.clone(),
            owned: None,
        }
    }
}

impl fmt::Debug for OnTunnel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OnTunnel").finish_non_exhaustive()
    }
}

impl Future for OnTunnel {
    type Output = Result<Tunnel, Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        if this.owned.is_none() {
            // The receiver moves into this clone, so one waker waits on it.
            this.owned = this
                .shared
                .take()
                .and_then(|shared| shared.lock().unwrap_or_else(PoisonError::into_inner).take());
        }
        let Some(rx) = this.owned.as_mut() else {
            return Poll::Ready(Err(refused(
                "not an extended CONNECT, or its tunnel was taken already",
            )));
        };
        let outcome = ready!(Pin::new(rx).poll(cx));
        this.owned = None;
        Poll::Ready(
            outcome.unwrap_or_else(|_| Err(refused("the stream ended before it was answered"))),
        )
    }
}

/// The HTTP/2 side's half of an [`OnTunnel`]: made with the request, kept until
/// the answer.
pub(crate) struct Opener {
    tx: oneshot::Sender<Outcome>,
}

/// A new pair: the `OnTunnel` for the request's extensions, the `Opener` for the
/// stream.
pub(crate) fn pair() -> (OnTunnel, Opener) {
    let (tx, rx) = oneshot::channel();
    let on = OnTunnel {
        shared: Some(Arc::new(Mutex::new(Some(rx)))),
        owned: None,
    };
    (on, Opener { tx })
}

impl Opener {
    /// Whether an `OnTunnel` of the request is still alive to take a tunnel.
    pub(crate) fn is_wanted(&self) -> bool {
        !self.tx.is_closed()
    }

    /// Hands the tunnel over; gives it back if the `OnTunnel` went away meanwhile.
    pub(crate) fn open(self, tunnel: Tunnel) -> Option<Tunnel> {
        match self.tx.send(Ok(tunnel)) {
            Ok(()) => None,
            Err(Ok(tunnel)) => Some(tunnel),
            // `send` gives back what it was given, which was a tunnel.
            Err(Err(_)) => None,
        }
    }

    /// Tells a waiting `OnTunnel` why the stream was answered without a tunnel.
    pub(crate) fn refuse(self, why: Error) {
        let _ = self.tx.send(Err(why));
    }
}

/// Why an answer to an extended CONNECT carries no tunnel: for the waiting
/// [`OnTunnel`].
pub(crate) fn refused(detail: impl Into<crate::error::BoxError>) -> Error {
    Error::new(Kind::NoTunnel).detail(detail)
}

/// The open tunnels of one connection, counted for the warning of a connection
/// cut while some are open. Nothing is allocated until its first extended
/// CONNECT.
#[derive(Default)]
pub(crate) struct Census(Option<Arc<AtomicUsize>>);

impl Census {
    /// The counter a tunnel of this connection joins while it is open.
    pub(crate) fn counter(&mut self) -> Arc<AtomicUsize> {
        self.0.get_or_insert_with(Default::default).clone()
    }

    /// How many tunnels are open.
    pub(crate) fn open(&self) -> usize {
        self.0.as_ref().map_or(0, |n| n.load(Ordering::Relaxed))
    }
}

/// The stream of an extended CONNECT once answered `2xx`: the client's DATA to
/// read, DATA to the client to write, under HTTP/2 flow control (the
/// [module docs](self) say how it reads, writes, ends and resets).
///
/// ```no_run
/// use tokio::io::{AsyncReadExt, AsyncWriteExt};
///
/// async fn greet(mut tunnel: h2c_mux::tunnel::Tunnel) -> std::io::Result<()> {
///     tunnel.write_all(b"hello\n").await?;
///     let mut name = Vec::new();
///     tunnel.read_to_end(&mut name).await?; // until the client's END_STREAM
///     tunnel.shutdown().await // END_STREAM to the client
/// }
/// ```
pub struct Tunnel {
    send: SendStream<Bytes>,
    recv: RecvStream,
    /// DATA received and not yet read. Its window is given back as it is read.
    unread: Bytes,
    /// The client's END_STREAM has been read.
    read_done: bool,
    /// Our END_STREAM has been sent.
    write_done: bool,
    read: u64,
    written: u64,
    span: tracing::Span,
    /// Its connection's count of open tunnels, which counts it while it lives.
    census: Arc<AtomicUsize>,
}

impl Tunnel {
    pub(crate) fn new(
        send: SendStream<Bytes>,
        recv: RecvStream,
        span: tracing::Span,
        census: Arc<AtomicUsize>,
    ) -> Tunnel {
        census.fetch_add(1, Ordering::Relaxed);
        Tunnel {
            send,
            recv,
            unread: Bytes::new(),
            read_done: false,
            write_done: false,
            read: 0,
            written: 0,
            span,
            census,
        }
    }

    /// Ends the write side: an empty DATA frame with `END_STREAM`.
    pub(crate) fn end(&mut self) -> io::Result<()> {
        if self.write_done {
            return Ok(());
        }
        self.write_done = true;
        self.send
            .send_data(Bytes::new(), true)
            .map_err(|e| self.io_error(e))
    }

    /// The error of a failed stream as an `io::Error`: a reset, or a connection
    /// that failed or went away, is a `ConnectionReset`.
    fn io_error(&self, e: h2::Error) -> io::Error {
        debug!(parent: &self.span, error = %e, "tunnel failed");
        if e.is_io() {
            return e
                .into_io()
                .unwrap_or_else(|| io::Error::from(io::ErrorKind::ConnectionReset));
        }
        io::Error::new(io::ErrorKind::ConnectionReset, e)
    }

    /// The write side cannot go on: the client reset the stream, or it is closed.
    fn write_closed(&mut self, cx: &mut Context<'_>) -> io::Error {
        match self.send.poll_reset(cx) {
            Poll::Ready(Ok(reason)) => self.io_error(h2::Error::from(reason)),
            Poll::Ready(Err(e)) => self.io_error(e),
            Poll::Pending => {
                io::Error::new(io::ErrorKind::BrokenPipe, "the tunnel's stream is closed")
            }
        }
    }
}

impl AsyncRead for Tunnel {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        loop {
            if !this.unread.is_empty() {
                let n = this.unread.len().min(buf.remaining());
                buf.put_slice(&this.unread[..n]);
                this.unread.advance(n);
                this.read += n as u64;
                // RFC 9113 §5.2: the window reopens as the reader consumes, so
                // the client sends no faster than the tunnel is read.
                let _ = this.recv.flow_control().release_capacity(n);
                return Poll::Ready(Ok(()));
            }
            if this.read_done || buf.remaining() == 0 {
                return Poll::Ready(Ok(()));
            }
            match ready!(this.recv.poll_data(cx)) {
                Some(Ok(data)) => this.unread = data,
                Some(Err(e)) => return Poll::Ready(Err(this.io_error(e))),
                None => {
                    this.read_done = true;
                    debug!(parent: &this.span, "tunnel: the client ended its side");
                }
            }
        }
    }
}

impl AsyncWrite for Tunnel {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        if this.write_done {
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::BrokenPipe,
                "the tunnel's write side was shut down",
            )));
        }
        if buf.is_empty() {
            return Poll::Ready(Ok(0));
        }
        loop {
            // Asks for window for this write; what h2 grants is bounded by the
            // client's window and by the stream's send buffer.
            this.send.reserve_capacity(buf.len());
            let granted = this.send.capacity();
            if granted > 0 {
                let n = granted.min(buf.len());
                if let Err(e) = this
                    .send
                    .send_data(Bytes::copy_from_slice(&buf[..n]), false)
                {
                    return Poll::Ready(Err(this.io_error(e)));
                }
                this.written += n as u64;
                // Window assigned beyond what is buffered goes back to the
                // connection, so a tunnel that stops writing holds none that
                // other streams could use.
                this.send.reserve_capacity(0);
                return Poll::Ready(Ok(n));
            }
            match ready!(this.send.poll_capacity(cx)) {
                Some(Ok(_)) => continue,
                Some(Err(e)) => return Poll::Ready(Err(this.io_error(e))),
                None => return Poll::Ready(Err(this.write_closed(cx))),
            }
        }
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        // What was written is in h2's send buffer already; the connection's task
        // writes it as the client's window allows.
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(self.end())
    }
}

impl fmt::Debug for Tunnel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tunnel")
            .field("stream", &u32::from(self.send.stream_id()))
            .field("read", &self.read)
            .field("written", &self.written)
            .field("read_done", &self.read_done)
            .field("write_done", &self.write_done)
            .finish()
    }
}

impl Drop for Tunnel {
    fn drop(&mut self) {
        self.census.fetch_sub(1, Ordering::Relaxed);
        debug!(
            parent: &self.span,
            read = self.read,
            written = self.written,
            ended = self.write_done,
            "tunnel closed"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connect_protocol_compares_hashes_and_prints_its_name() {
        use std::collections::hash_map::DefaultHasher;
        let hash = |p: &ConnectProtocol| {
            let mut h = DefaultHasher::new();
            p.hash(&mut h);
            h.finish()
        };
        let a = ConnectProtocol::from_static("websocket");
        let b = ConnectProtocol::from("websocket");
        assert_eq!(a, b);
        assert_eq!(hash(&a), hash(&b));
        assert!(a == "websocket" && a != "WebSocket");
        assert_eq!(a.to_string(), "websocket");
        assert_eq!(format!("{a:?}"), r#"ConnectProtocol("websocket")"#);
        let h2 = ConnectProtocol::from_h2(h2::ext::Protocol::from_static("echo"));
        assert_eq!(h2.as_str(), "echo");
    }

    #[tokio::test]
    async fn a_request_without_an_on_tunnel_resolves_to_no_tunnel() {
        let mut req = http::Request::connect("http://example/").body(()).unwrap();
        let e = on(&mut req).await.unwrap_err();
        assert!(e.is_no_tunnel());
        assert_eq!(
            e.to_string(),
            "no tunnel: not an extended CONNECT, or its tunnel was taken already"
        );
    }

    #[tokio::test]
    async fn on_takes_the_extension_out_of_the_request() {
        let (on_tunnel, opener) = pair();
        let mut req = http::Request::connect("http://example/").body(()).unwrap();
        req.extensions_mut().insert(on_tunnel);
        let taken = on(&mut req);
        assert!(req.extensions().get::<OnTunnel>().is_none());
        opener.refuse(refused("answered 404 Not Found, not 2xx"));
        let e = taken.await.unwrap_err();
        assert!(e.is_no_tunnel());
        assert_eq!(e.to_string(), "no tunnel: answered 404 Not Found, not 2xx");
    }

    #[tokio::test]
    async fn a_stream_gone_before_its_answer_is_no_tunnel() {
        let (on_tunnel, opener) = pair();
        drop(opener);
        let e = on_tunnel.await.unwrap_err();
        assert_eq!(
            e.to_string(),
            "no tunnel: the stream ended before it was answered"
        );
    }

    #[tokio::test]
    async fn the_first_clone_polled_waits_for_the_tunnel_and_the_others_get_none() {
        let (on_tunnel, opener) = pair();
        let mut first = on_tunnel.clone();
        let second = on_tunnel.clone();
        drop(on_tunnel);
        // Polled once, the first clone holds the receiver.
        let polled = std::future::poll_fn(|cx| Poll::Ready(Pin::new(&mut first).poll(cx))).await;
        assert!(polled.is_pending());
        let e = second.await.unwrap_err();
        assert!(e.to_string().contains("taken already"), "{e}");
        assert!(opener.is_wanted());
        opener.refuse(refused("why"));
        assert_eq!(first.await.unwrap_err().to_string(), "no tunnel: why");
    }

    #[test]
    fn dropping_every_on_tunnel_says_nobody_wants_the_tunnel() {
        let (on_tunnel, opener) = pair();
        let clone = on_tunnel.clone();
        drop(on_tunnel);
        assert!(opener.is_wanted());
        drop(clone);
        assert!(!opener.is_wanted());
    }

    #[test]
    fn a_tunnel_moves_between_tasks_and_its_on_tunnel_fits_in_extensions() {
        fn task_io<T: AsyncRead + AsyncWrite + Send + Sync + Unpin + 'static>() {}
        fn extension<T: Clone + Send + Sync + 'static>() {}
        task_io::<Tunnel>();
        extension::<OnTunnel>();
        extension::<ConnectProtocol>();
    }

    #[test]
    fn the_census_allocates_nothing_until_asked() {
        let mut census = Census::default();
        assert!(census.0.is_none());
        assert_eq!(census.open(), 0);
        let counter = census.counter();
        counter.fetch_add(2, Ordering::Relaxed);
        assert_eq!(census.open(), 2);
    }
}
