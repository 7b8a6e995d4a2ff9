//! A request that asks to switch to a protocol other than h2c (WebSocket, or any
//! other `Upgrade` token): hyper's HTTP/1.1 server serves that one request.
//!
//! A service switches a connection by answering `101` and taking the transport,
//! and the way the ecosystem takes it is hyper's: `hyper::upgrade::on(&mut req)`
//! (axum's `WebSocketUpgrade` calls it), which needs hyper's `OnUpgrade` in the
//! request's extensions, and only hyper's own server can put one there. So the
//! HTTP/1.1 connection hands the transport over, with the request's head and
//! whatever was read after it, and hyper serves the request again from its first
//! byte, with upgrades on and keep-alive off:
//!
//! ```text
//!  request head asks Upgrade: websocket (Connection: upgrade, HTTP/1.1)
//!    └─> hyper serves it ──> service answers 101 + Upgrade ──> transport goes to
//!        the service (with the bytes read past the head); the connection lasts
//!        until the service drops it
//!                        └─> service answers anything else ──> response, close
//! ```
//!
//! A `101` goes out only if its `Upgrade` names a protocol the request offered;
//! else the service's answer is replaced by a `500`. The upgraded transport is the
//! connection's still: it counts against `max_connections` and the drain until it
//! is dropped, and when the connection is cut (the drain bound passed, or the
//! [`Connection`](crate::Connection) future dropped) its next use fails and closes
//! it. Under the accept loop the connection's task ends at the switch: the
//! registry entry holds the connection's permit until the transport releases it
//! (see [`Upgraded::detach`]), so an idle WebSocket costs no task beside the
//! service's own.

use std::future::{poll_fn, Future};
use std::io;
use std::net::SocketAddr;
use std::pin::{pin, Pin};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};

use bytes::Bytes;
use futures_util::task::AtomicWaker;
use http::{header, HeaderValue, Request, Response, StatusCode};
use http_body::{Frame, SizeHint};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tracing::{debug, warn, Instrument};

use crate::body::Body;
use crate::error::{BoxError, Error};
use crate::field::list;
use crate::policy::{DeclineReason, RemoteAddr, UpgradeDeclined};
use crate::read::Rewind;
use crate::service::{self, HttpService};
use crate::shutdown::Shutdown;

/// Serves the request at the front of `replay` through hyper. Resolves to the
/// connection's upgraded transport, to wait on, if the service switched it.
pub(crate) async fn serve<I, S>(
    io: I,
    replay: Bytes,
    svc: S,
    peer: Option<SocketAddr>,
    declined: Option<DeclineReason>,
    shutdown: &Shutdown,
) -> Result<Option<Upgraded>, Error>
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    S: HttpService,
{
    let link = Arc::new(Link {
        cut: AtomicBool::new(false),
        reader: AtomicWaker::new(),
        owner: Mutex::new(Owner::Connection(None)),
    });
    let io = Watched {
        inner: Some(Rewind::new(io, replay)),
        link: link.clone(),
    };
    let adapter = Adapter {
        svc,
        peer,
        declined: std::sync::Mutex::new(declined),
    };
    // One request, then switch or close: the connection came here for it alone.
    // Every answer but a 101 says `connection: close` (see `checked`), which ends
    // hyper's connection after it; hyper's own `keep_alive(false)` would also put
    // `close` into the 101's `Connection`, which WebSocket clients refuse.
    let conn = hyper::server::conn::http1::Builder::new()
        // Its head is already in `replay`, read under this crate's own bounds.
        .header_read_timeout(None)
        .serve_connection(TokioIo::new(io), adapter)
        .with_upgrades();
    let mut conn = pin!(conn);
    let mut asked_to_stop = false;
    poll_fn(|cx| {
        if !asked_to_stop && shutdown.poll(cx).is_ready() {
            asked_to_stop = true;
            conn.as_mut().graceful_shutdown();
        }
        conn.as_mut().poll(cx)
    })
    .await
    .map_err(Error::hyper)?;
    // The transport is either dropped (answered and closed) or held by the service
    // that took the upgrade: then the connection lives as long as it does.
    if Arc::strong_count(&link) > 1 {
        debug!("switched: the service holds the connection");
        Ok(Some(Upgraded {
            link: Some(link),
            span: tracing::Span::current(),
        }))
    } else {
        Ok(None)
    }
}

/// What the connection and its upgraded transport share.
struct Link {
    /// The connection is cut: the transport fails and closes at its next use.
    cut: AtomicBool,
    /// The task that last read the transport, woken when it is cut.
    reader: AtomicWaker,
    /// Who is told when the transport is dropped.
    owner: Mutex<Owner>,
}

/// Who counts an upgraded connection as open, told once when its transport goes.
enum Owner {
    /// The [`Connection`](crate::Connection) future, which resolves then (woken
    /// with this, once it has waited).
    Connection(Option<Waker>),
    /// The accept loop's registry, which let the connection's task end at the
    /// switch: the transport releases entry `id` itself.
    Registry(Arc<dyn Release>, usize),
    /// No one: the transport is gone, or the registry cut it and let it go.
    Gone,
}

impl Link {
    fn owner(&self) -> MutexGuard<'_, Owner> {
        // Every change to `Owner` is a single assignment: a poisoned lock holds a
        // whole value.
        self.owner.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn cut(&self) {
        self.cut.store(true, Ordering::Release);
        self.reader.wake();
    }
}

/// The accept loop's registry as an upgraded transport sees it.
pub(crate) trait Release: Send + Sync {
    /// The upgraded connection in entry `id` has closed: it no longer counts.
    fn release(&self, id: usize);
}

/// The connection after a switch: resolves once the service has dropped the
/// transport. Dropped before that (the drain bound passed, or the connection
/// future dropped), it cuts the transport, unless it was [`detach`](Self::detach)ed.
pub(crate) struct Upgraded {
    link: Option<Arc<Link>>,
    /// The connection's, for what is logged when the transport goes.
    span: tracing::Span,
}

impl Upgraded {
    /// Hands the connection to the accept loop's registry (its entry `id`), so the
    /// connection's task can end while the service holds the transport: the
    /// transport releases the entry when it is dropped, and the [`Cut`] closes it
    /// at the drain bound. `None` if the transport is gone already: the entry is
    /// the caller's to remove.
    pub(crate) fn detach(mut self, registry: Arc<dyn Release>, id: usize) -> Option<Cut> {
        let link = self.link.take()?;
        let mut owner = link.owner();
        if matches!(*owner, Owner::Gone) {
            return None;
        }
        *owner = Owner::Registry(registry, id);
        drop(owner);
        Some(Cut(link))
    }
}

impl Future for Upgraded {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let Some(link) = self.link.as_ref() else {
            return Poll::Ready(());
        };
        if let Owner::Connection(waker) = &mut *link.owner() {
            match waker {
                Some(w) if w.will_wake(cx.waker()) => {}
                _ => *waker = Some(cx.waker().clone()),
            }
            return Poll::Pending;
        }
        debug!(parent: &self.span, "upgraded connection closed");
        self.link = None;
        Poll::Ready(())
    }
}

impl Drop for Upgraded {
    fn drop(&mut self) {
        if let Some(link) = self.link.take() {
            if !matches!(*link.owner(), Owner::Gone) {
                debug!(parent: &self.span, "cutting the upgraded connection");
                link.cut();
            }
        }
    }
}

/// How the registry closes an upgraded connection it was handed.
pub(crate) struct Cut(Arc<Link>);

impl Cut {
    /// Cuts the transport: it fails and closes at its next use, and a read that
    /// waits is woken for that. `true` if the registry is to remove the entry now;
    /// `false` if the transport, dropped meanwhile, is releasing it.
    pub(crate) fn cut(&self) -> bool {
        self.0.cut();
        let mut owner = self.0.owner();
        let held = matches!(*owner, Owner::Registry(..));
        if held {
            *owner = Owner::Gone;
        }
        held
    }
}

/// The transport as hyper, and after a switch the service, holds it: it tells
/// the connection when it is dropped, and closes when the connection is cut.
struct Watched<T> {
    /// Taken (and so closed) when the connection is cut.
    inner: Option<T>,
    link: Arc<Link>,
}

impl<T> Watched<T> {
    /// The transport, unless the connection has been cut: then it is closed now,
    /// and this use fails.
    fn live(&mut self) -> io::Result<Pin<&mut T>>
    where
        T: Unpin,
    {
        if self.link.cut.load(Ordering::Acquire) {
            self.inner = None;
        }
        match self.inner.as_mut() {
            Some(t) => Ok(Pin::new(t)),
            None => Err(io::Error::new(
                io::ErrorKind::ConnectionAborted,
                "the server closed the upgraded connection",
            )),
        }
    }
}

impl<T> Drop for Watched<T> {
    fn drop(&mut self) {
        // Taken out first, so neither waking nor releasing runs under the lock
        // (the registry takes its own lock to release, and cuts under it).
        let owner = std::mem::replace(&mut *self.link.owner(), Owner::Gone);
        match owner {
            Owner::Connection(waker) => waker.into_iter().for_each(Waker::wake),
            Owner::Registry(registry, id) => {
                debug!("upgraded connection closed");
                registry.release(id);
            }
            Owner::Gone => {}
        }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Watched<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let read = self.live()?.poll_read(cx, buf);
        if read.is_pending() {
            // Only a read that waits needs waking by a cut (a read that got bytes is
            // polled again anyway). Checked again once registered, so a cut between
            // the read and the registration is not missed.
            self.link.reader.register(cx.waker());
            self.live()?;
        }
        read
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Watched<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.live()?.poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.live()?.poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.as_ref().is_some_and(|t| t.is_write_vectored())
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.live()?.poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.live()?.poll_shutdown(cx)
    }
}

/// The service as hyper calls it: the request in this crate's types, and the
/// answer checked before it goes out.
struct Adapter<S> {
    svc: S,
    peer: Option<SocketAddr>,
    /// Handed to the one request this serves.
    declined: std::sync::Mutex<Option<DeclineReason>>,
}

type AdapterFuture<B> = Pin<Box<dyn Future<Output = Result<Response<Answer<B>>, BoxError>> + Send>>;

impl<S: HttpService> hyper::service::Service<Request<hyper::body::Incoming>> for Adapter<S> {
    type Response = Response<Answer<S::ResBody>>;
    type Error = BoxError;
    type Future = AdapterFuture<S::ResBody>;

    fn call(&self, req: Request<hyper::body::Incoming>) -> Self::Future {
        let mut svc = self.svc.clone();
        let mut req = req.map(Body::hyper);
        if let Some(peer) = self.peer {
            req.extensions_mut().insert(RemoteAddr(peer));
        }
        let declined = self.declined.lock().map(|mut d| d.take()).unwrap_or(None);
        if let Some(reason) = declined {
            req.extensions_mut().insert(UpgradeDeclined { reason });
        }
        // The same span as every other request's (the connection's span is the
        // parent: hyper polls this inside it).
        let span = tracing::debug_span!(
            "request",
            method = %req.method(),
            path = %req.uri().path(),
        );
        let offered = req
            .headers()
            .get_all(header::UPGRADE)
            .iter()
            .cloned()
            .collect::<Vec<_>>();
        Box::pin(
            async move {
                let res = match service::call(&mut svc, req).await {
                    Ok(res) => res,
                    Err(e) => {
                        warn!(
                            error = &*e as &dyn std::error::Error,
                            "service failed; answering 500"
                        );
                        return Ok(status_only(StatusCode::INTERNAL_SERVER_ERROR));
                    }
                };
                Ok(checked(res, &offered))
            }
            .instrument(span),
        )
    }
}

/// The service's response, unless it is a `1xx` this connection cannot honour:
/// a `101` must name in `Upgrade` one protocol the request offered (RFC 9110
/// §15.2.2), and carries `Connection: upgrade` (§7.8), added if the service left it
/// out; any other `1xx` is no final answer. Those are replaced by a `500`. Every
/// answer but a `101` closes the connection.
fn checked<B>(res: Response<B>, offered: &[HeaderValue]) -> Response<Answer<B>> {
    let mut res = switch_checked(res, offered);
    if res.status() != StatusCode::SWITCHING_PROTOCOLS {
        res.headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    res
}

fn switch_checked<B>(res: Response<B>, offered: &[HeaderValue]) -> Response<Answer<B>> {
    let status = res.status();
    if status == StatusCode::SWITCHING_PROTOCOLS {
        let chosen = res.headers().get(header::UPGRADE);
        match chosen.filter(|c| names_one_of(c, offered)) {
            Some(_) => {
                let mut res = res.map(|b| Answer::Service(Box::pin(b)));
                if !lists(res.headers(), header::CONNECTION, b"upgrade") {
                    res.headers_mut()
                        .append(header::CONNECTION, HeaderValue::from_static("upgrade"));
                }
                return res;
            }
            None => {
                warn!(
                    upgrade = ?chosen,
                    "the service answered 101 without naming an offered protocol; answering 500"
                );
                return status_only(StatusCode::INTERNAL_SERVER_ERROR);
            }
        }
    }
    if status.is_informational() {
        warn!(%status, "the service answered 1xx as its final response; answering 500");
        return status_only(StatusCode::INTERNAL_SERVER_ERROR);
    }
    res.map(|b| Answer::Service(Box::pin(b)))
}

/// Whether `chosen` is exactly one protocol, and one of those `offered` (names
/// compare case-insensitively).
fn names_one_of(chosen: &HeaderValue, offered: &[HeaderValue]) -> bool {
    let mut named = list(chosen.as_bytes());
    let (Some(chosen), None) = (named.next(), named.next()) else {
        return false;
    };
    offered
        .iter()
        .flat_map(|v| list(v.as_bytes()))
        .any(|t| t.eq_ignore_ascii_case(chosen))
}

fn lists(headers: &http::HeaderMap, name: header::HeaderName, token: &[u8]) -> bool {
    headers
        .get_all(name)
        .iter()
        .flat_map(|v| list(v.as_bytes()))
        .any(|t| t.eq_ignore_ascii_case(token))
}

fn status_only<B>(status: StatusCode) -> Response<Answer<B>> {
    let mut res = Response::new(Answer::Empty);
    *res.status_mut() = status;
    res
}

/// A response body: the service's, or none for an answer made here.
enum Answer<B> {
    /// Boxed to be `Unpin`: this path is taken once per connection at most.
    Service(Pin<Box<B>>),
    Empty,
}

impl<B> http_body::Body for Answer<B>
where
    B: http_body::Body<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        match self.get_mut() {
            Answer::Service(b) => b.as_mut().poll_frame(cx).map_err(Into::into),
            Answer::Empty => Poll::Ready(None),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            Answer::Service(b) => b.is_end_stream(),
            Answer::Empty => true,
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            Answer::Service(b) => b.size_hint(),
            Answer::Empty => SizeHint::with_exact(0),
        }
    }
}
