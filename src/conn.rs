//! One connection from accept to close: sniff for prior knowledge, then HTTP/1.1,
//! possibly upgraded, or HTTP/2.

use std::fmt;
use std::future::{poll_fn, Future};
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::BytesMut;
use futures_util::task::AtomicWaker;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::time::Instant;
use tracing::{debug, field, Instrument};

use crate::builder::Config;
use crate::error::{Error, Kind};
use crate::h1::conn::{poll_read, Outcome, H1, SWITCHING_PROTOCOLS};
use crate::policy::Protocol;
use crate::service::HttpService;
use crate::sniff::{sniff, Rewind, Sniffed};
use crate::upgrade::io::UpgradeIo;

/// Initial read buffer: most request heads fit in one 8 KiB read.
const INITIAL_READ_BUF: usize = 8 * 1024;

/// A request to finish in-flight work and close, shared by a [`Connection`] and
/// the task driving it.
#[derive(Default)]
pub(crate) struct Shutdown {
    triggered: AtomicBool,
    waker: AtomicWaker,
}

impl Shutdown {
    pub(crate) fn trigger(&self) {
        self.triggered.store(true, Ordering::Release);
        self.waker.wake();
    }

    pub(crate) fn is_triggered(&self) -> bool {
        self.triggered.load(Ordering::Acquire)
    }

    pub(crate) fn poll(&self, cx: &mut Context<'_>) -> Poll<()> {
        if self.is_triggered() {
            return Poll::Ready(());
        }
        self.waker.register(cx.waker());
        if self.is_triggered() {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    }
}

/// A connection being served; a future that completes when the connection closes.
///
/// Returned by [`Builder::serve_connection`](crate::Builder::serve_connection). It
/// resolves to `Ok(())` when the connection ended normally (the client closed, a
/// keep-alive timeout, a graceful shutdown) and to an [`Error`] when it ended
/// because of the peer or the transport.
///
/// ```no_run
/// # async fn run(stream: tokio::net::TcpStream) {
/// let conn = h2c_mux::Builder::new().serve_connection(stream, h2c_mux::demo::Demo::new());
/// let mut conn = std::pin::pin!(conn);
/// tokio::select! {
///     res = conn.as_mut() => { let _ = res; }
///     _ = tokio::signal::ctrl_c() => {
///         conn.graceful_shutdown();
///         let _ = conn.await;
///     }
/// }
/// # }
/// ```
#[must_use = "a connection does nothing unless polled"]
pub struct Connection {
    fut: Pin<Box<dyn Future<Output = Result<(), Error>> + Send>>,
    shutdown: Arc<Shutdown>,
}

impl Connection {
    pub(crate) fn new<I, S>(io: I, svc: S, cfg: Arc<Config>, peer: Option<SocketAddr>) -> Self
    where
        I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
        S: HttpService,
    {
        let shutdown = Arc::new(Shutdown::default());
        let span = tracing::debug_span!("connection", peer = field::Empty, protocol = field::Empty);
        if let Some(p) = peer {
            span.record("peer", field::display(p));
        }
        let fut = run(io, svc, cfg, shutdown.clone(), peer, span.clone()).instrument(span);
        Connection {
            fut: Box::pin(fut),
            shutdown,
        }
    }

    /// Starts a graceful shutdown. HTTP/1.1: the request in flight is answered
    /// (with `connection: close`), then the connection closes; an idle one closes at
    /// once. HTTP/2: GOAWAY is sent, open streams finish, then it closes. Keep
    /// polling the connection until it completes.
    ///
    /// ```no_run
    /// # async fn run(stream: tokio::net::TcpStream) {
    /// let conn = h2c_mux::Builder::new().serve_connection(stream, h2c_mux::demo::Demo::new());
    /// conn.graceful_shutdown(); // finishes what is in flight, then closes
    /// let _ = conn.await;
    /// # }
    /// ```
    pub fn graceful_shutdown(&self) {
        self.shutdown.trigger();
    }
}

impl Future for Connection {
    type Output = Result<(), Error>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.fut.as_mut().poll(cx)
    }
}

impl fmt::Debug for Connection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connection")
            .field("shutting_down", &self.shutdown.is_triggered())
            .finish_non_exhaustive()
    }
}

async fn run<I, S>(
    mut io: I,
    svc: S,
    cfg: Arc<Config>,
    shutdown: Arc<Shutdown>,
    peer: Option<SocketAddr>,
    span: tracing::Span,
) -> Result<(), Error>
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    S: HttpService,
{
    let mut rbuf = BytesMut::with_capacity(INITIAL_READ_BUF);
    let first = if cfg.prior_knowledge {
        sniff_io(&mut io, &mut rbuf, &cfg, &shutdown).await?
    } else {
        Sniffed::Http1
    };
    match first {
        Sniffed::NeedMore => Ok(()),
        Sniffed::H2 => {
            span.record("protocol", Protocol::H2PriorKnowledge.as_str());
            let io = Rewind::new(io, rbuf.freeze());
            crate::h2::serve(
                io,
                svc,
                &cfg,
                Protocol::H2PriorKnowledge,
                None,
                &shutdown,
                peer,
            )
            .await
        }
        Sniffed::Http1 => {
            span.record("protocol", Protocol::Http1.as_str());
            let outcome = H1::new(io, rbuf, svc.clone(), &cfg, &shutdown, peer)
                .run()
                .await?;
            let h = match outcome {
                Outcome::Closed => return Ok(()),
                Outcome::Upgrade(h) => *h,
            };
            span.record("protocol", Protocol::H2cUpgrade.as_str());
            let io = UpgradeIo::new(
                Rewind::new(h.io, h.leftover),
                SWITCHING_PROTOCOLS,
                h.preamble,
                cfg.preface_timeout,
            );
            crate::h2::serve(
                io,
                svc,
                &cfg,
                Protocol::H2cUpgrade,
                Some(h.stream1),
                &shutdown,
                peer,
            )
            .await
        }
    }
}

/// Reads until the first bytes tell HTTP/2 prior knowledge from HTTP/1. Returns
/// `NeedMore` when the peer left (or shutdown came) before saying anything.
async fn sniff_io<I: AsyncRead + Unpin>(
    io: &mut I,
    rbuf: &mut BytesMut,
    cfg: &Config,
    shutdown: &Shutdown,
) -> Result<Sniffed, Error> {
    let idle = tokio::time::sleep(cfg.keep_alive_timeout);
    let mut idle = std::pin::pin!(idle);
    let mut preface_deadline: Option<Instant> = None;
    poll_fn(|cx| loop {
        match sniff(rbuf) {
            Sniffed::NeedMore => {}
            decided => return Poll::Ready(Ok(decided)),
        }
        if rbuf.is_empty() && shutdown.poll(cx).is_ready() {
            return Poll::Ready(Ok(Sniffed::NeedMore));
        }
        match poll_read(io, cx, rbuf) {
            Poll::Ready(Ok(0)) => {
                if !rbuf.is_empty() {
                    debug!("peer closed mid preface");
                }
                return Poll::Ready(Ok(Sniffed::NeedMore));
            }
            Poll::Ready(Ok(_)) => continue,
            Poll::Ready(Err(e)) => return Poll::Ready(Err(Error::io(e))),
            Poll::Pending => {
                if !rbuf.is_empty() && preface_deadline.is_none() {
                    // A strict prefix of the preface: the rest must come soon.
                    let at = Instant::now() + cfg.preface_timeout;
                    preface_deadline = Some(at);
                    idle.as_mut().reset(at);
                }
                if idle.as_mut().poll(cx).is_ready() {
                    if rbuf.is_empty() {
                        return Poll::Ready(Ok(Sniffed::NeedMore));
                    }
                    debug!("timed out waiting for the rest of the preface");
                    return Poll::Ready(Err(Error::new(Kind::Timeout)));
                }
                return Poll::Pending;
            }
        }
    })
    .await
}
