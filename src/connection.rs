//! One connection from accept to close: sniff for prior knowledge, then HTTP/1.1,
//! possibly upgraded, or HTTP/2. The one place that knows both protocols: it
//! decides how a connection starts from what its transport negotiated (cleartext,
//! or TLS and its ALPN protocol: [`Opening`]), and turns the HTTP/1.1
//! connection's [`Handoff`](crate::upgrade::handoff::Handoff) into the HTTP/2
//! stage.

use std::fmt;
use std::future::{poll_fn, Future};
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};

use bytes::{Bytes, BytesMut};
use futures_util::FutureExt;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::time::Instant;
use tracing::{debug, field, trace, Instrument};

use crate::config::Config;
use crate::error::{Error, Kind};
#[cfg(feature = "upgrades")]
use crate::h1::state::Handover;
use crate::h1::state::{Outcome, Parked, H1};
#[cfg(feature = "upgrades")]
use crate::handover::Upgraded;
use crate::policy::{Alpn, Protocol, Transport};
use crate::read::{poll_read_stack, Rewind};
use crate::service::HttpService;
use crate::shutdown::Shutdown;
use crate::sniff::{sniff, Sniffed};
use crate::upgrade::adapter::{StartGate, UpgradeIo};
use crate::upgrade::handoff::{Stream1, SWITCHING_PROTOCOLS};

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
    state: State,
    shutdown: Arc<Shutdown>,
}

/// One phase of a connection, boxed so each is as large as it needs: sniffing,
/// HTTP/1.1, HTTP/2. A phase ends by closing or by naming the next.
type Stage = Pin<Box<dyn Future<Output = Result<Step, Error>> + Send>>;

enum Step {
    Closed,
    Next(Stage),
    /// An idle HTTP/1.1 connection, waiting with no buffer (see
    /// [`DEFAULT_IDLE_RELEASE_AFTER`](crate::DEFAULT_IDLE_RELEASE_AFTER)).
    Park(Box<dyn Wait + Send>),
    /// The service took the transport of an upgrade other than h2c.
    #[cfg(feature = "upgrades")]
    Switched(Upgraded),
}

enum State {
    Running(Stage),
    Parked(Box<dyn Wait + Send>),
    /// Waiting for the service to let the upgraded transport go.
    #[cfg(feature = "upgrades")]
    Switched(Upgraded),
    Done,
}

/// How [`Connection::poll_until_switch`] ends.
pub(crate) enum Ended {
    /// The connection closed.
    Closed,
    /// The service holds the transport of an upgrade other than h2c; the
    /// connection lasts until it lets it go.
    #[cfg(feature = "upgrades")]
    Switched(Upgraded),
}

/// A parked connection: waits for the client, the keep-alive timeout or shutdown,
/// and then names the stage that handles it.
trait Wait {
    fn poll_wake(&mut self, cx: &mut Context<'_>) -> Poll<Result<Stage, Error>>;
}

impl Connection {
    /// A connection of `io` to `svc`, whose requests carry `peer` as their
    /// [`RemoteAddr`](crate::RemoteAddr), which starts as `transport` says (see
    /// [`Opening`]), and which closes gracefully once `shutdown` is triggered
    /// (through [`graceful_shutdown`](Self::graceful_shutdown) or by the accept
    /// loop, which keeps the other handle).
    pub(crate) fn new<I, S>(
        io: I,
        svc: S,
        cfg: Arc<Config>,
        peer: Option<SocketAddr>,
        transport: Transport,
        shutdown: Arc<Shutdown>,
    ) -> Self
    where
        I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
        S: HttpService,
    {
        let span = tracing::debug_span!("connection", peer = field::Empty, protocol = field::Empty);
        if let Some(p) = peer {
            span.record("peer", field::display(p));
        }
        let opening = Opening::of(transport, &cfg);
        let ctx = Ctx {
            cfg,
            shutdown: shutdown.clone(),
            peer,
            span,
        };
        let state = match opening {
            Opening::Sniff => {
                let span = ctx.span.clone();
                State::Running(Box::pin(sniff_stage(io, svc, ctx).instrument(span)))
            }
            Opening::H2Tls => {
                ctx.span.record("protocol", Protocol::H2Tls.as_str());
                let io = Rewind::new(io, Bytes::new());
                State::Running(h2_stage(io, svc, ctx, Protocol::H2Tls, None))
            }
            Opening::Http1 => {
                // Nothing to sniff, so the connection starts parked and holds no
                // buffer until its client speaks.
                ctx.span.record("protocol", Protocol::Http1.as_str());
                let since = Instant::now();
                let parked = Parked {
                    io,
                    svc,
                    timer: Box::pin(tokio::time::sleep_until(since + ctx.cfg.keep_alive_timeout)),
                    since,
                    after_response: false,
                    over_tls: matches!(transport, Transport::Tls { .. }),
                };
                State::Parked(Box::new(ParkedH1 {
                    inner: Some((parked, ctx)),
                }))
            }
            Opening::Refuse => {
                let span = ctx.span.clone();
                State::Running(Box::pin(refuse_stage(io, svc, ctx).instrument(span)))
            }
        };
        Connection { state, shutdown }
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

impl Connection {
    /// Serves the connection until it closes or, after an upgrade other than h2c,
    /// until the service holds its transport. The accept loop polls this rather
    /// than the future, so that an upgraded connection needs no task of its own
    /// (see [`Upgraded::detach`]).
    pub(crate) fn poll_until_switch(&mut self, cx: &mut Context<'_>) -> Poll<Result<Ended, Error>> {
        loop {
            let next = match &mut self.state {
                State::Running(stage) => match ready!(stage.as_mut().poll(cx)) {
                    Ok(Step::Next(stage)) => State::Running(stage),
                    Ok(Step::Park(wait)) => State::Parked(wait),
                    #[cfg(feature = "upgrades")]
                    Ok(Step::Switched(upgraded)) => {
                        self.state = State::Done;
                        return Poll::Ready(Ok(Ended::Switched(upgraded)));
                    }
                    Ok(Step::Closed) => {
                        self.state = State::Done;
                        return Poll::Ready(Ok(Ended::Closed));
                    }
                    Err(e) => {
                        self.state = State::Done;
                        return Poll::Ready(Err(e));
                    }
                },
                State::Parked(wait) => match ready!(wait.poll_wake(cx)) {
                    Ok(stage) => State::Running(stage),
                    Err(e) => {
                        self.state = State::Done;
                        return Poll::Ready(Err(e));
                    }
                },
                #[cfg(feature = "upgrades")]
                State::Switched(_) => unreachable!("a switched connection is polled as a future"),
                State::Done => return Poll::Ready(Ok(Ended::Closed)),
            };
            self.state = next;
        }
    }
}

impl Future for Connection {
    type Output = Result<(), Error>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        #[cfg(feature = "upgrades")]
        if let State::Switched(upgraded) = &mut self.state {
            ready!(Pin::new(upgraded).poll(cx));
            self.state = State::Done;
            return Poll::Ready(Ok(()));
        }
        match ready!(self.poll_until_switch(cx))? {
            Ended::Closed => Poll::Ready(Ok(())),
            #[cfg(feature = "upgrades")]
            Ended::Switched(upgraded) => {
                self.state = State::Switched(upgraded);
                self.poll(cx)
            }
        }
    }
}

impl fmt::Debug for Connection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match self.state {
            State::Running(_) => "running",
            State::Parked(_) => "parked",
            #[cfg(feature = "upgrades")]
            State::Switched(_) => "switched",
            State::Done => "done",
        };
        f.debug_struct("Connection")
            .field("state", &state)
            .field("shutting_down", &self.shutdown.is_triggered())
            .finish_non_exhaustive()
    }
}

/// How a connection starts: decided once, from what its transport negotiated
/// and what the builder allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Opening {
    /// Cleartext, HTTP/2 allowed from the first byte: read until the first
    /// bytes tell the preface from HTTP/1.1 (which is refused when HTTP/2 is
    /// all the builder allows).
    Sniff,
    /// TLS whose ALPN chose `h2`: HTTP/2 at once (RFC 9113 §3.2).
    H2Tls,
    /// HTTP/1.1 at once: cleartext with prior knowledge off, or TLS without
    /// ALPN `h2`, where the preface is not HTTP/2's to start (RFC 9113 §3.3) and
    /// is answered as a request of an unknown version would be.
    Http1,
    /// TLS without ALPN `h2` when HTTP/2 is all the builder allows: whatever
    /// comes is refused.
    Refuse,
}

impl Opening {
    fn of(transport: Transport, cfg: &Config) -> Opening {
        match transport {
            Transport::Tls {
                alpn: Some(Alpn::H2),
            } => Opening::H2Tls,
            Transport::Tls { .. } if cfg.http2_only => Opening::Refuse,
            Transport::Tls { .. } => Opening::Http1,
            Transport::Cleartext if cfg.http2_only || cfg.prior_knowledge => Opening::Sniff,
            Transport::Cleartext => Opening::Http1,
        }
    }
}

/// What every stage of one connection shares.
struct Ctx {
    cfg: Arc<Config>,
    shutdown: Arc<Shutdown>,
    peer: Option<SocketAddr>,
    span: tracing::Span,
}

async fn sniff_stage<I, S>(mut io: I, svc: S, ctx: Ctx) -> Result<Step, Error>
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    S: HttpService,
{
    let mut rbuf = BytesMut::new();
    match sniff_io(&mut io, &mut rbuf, &ctx.cfg, &ctx.shutdown).await? {
        Sniffed::NeedMore => Ok(Step::Closed),
        Sniffed::H2 => {
            ctx.span
                .record("protocol", Protocol::H2PriorKnowledge.as_str());
            let io = Rewind::new(io, rbuf.freeze());
            Ok(Step::Next(h2_stage(
                io,
                svc,
                ctx,
                Protocol::H2PriorKnowledge,
                None,
            )))
        }
        Sniffed::Http1 if ctx.cfg.http2_only => {
            debug!("http/1.1 refused: the server speaks http/2 only");
            let h1 = H1::new(io, rbuf, svc, &ctx.cfg, &ctx.shutdown, None, false);
            Err(h1.refuse(REFUSAL_CLEARTEXT).await)
        }
        Sniffed::Http1 => {
            ctx.span.record("protocol", Protocol::Http1.as_str());
            Ok(Step::Next(h1_run(H1Start::New(io, rbuf, svc), ctx)))
        }
    }
}

/// What a cleartext client that does not open with the preface is told when
/// the server speaks HTTP/2 only (see [`Opening::Sniff`]).
const REFUSAL_CLEARTEXT: &str = "This server speaks HTTP/2 only: open the connection with the HTTP/2 preface (prior knowledge).";

/// What a TLS client that did not choose `h2` with ALPN is told when the server
/// speaks HTTP/2 only (see [`Opening::Refuse`]).
const REFUSAL_TLS: &str = "This server speaks HTTP/2 only: choose h2 with ALPN.";

/// A TLS connection without ALPN `h2` when the server speaks HTTP/2 only: waits
/// for the client's first bytes, as sniffing does, then refuses it whatever they
/// are (the preface too: RFC 9113 §3.3).
async fn refuse_stage<I, S>(mut io: I, svc: S, ctx: Ctx) -> Result<Step, Error>
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    S: HttpService,
{
    let mut rbuf = BytesMut::new();
    if sniff_io(&mut io, &mut rbuf, &ctx.cfg, &ctx.shutdown).await? == Sniffed::NeedMore {
        return Ok(Step::Closed);
    }
    debug!("refused: the server speaks http/2 only, and alpn did not choose h2");
    let h1 = H1::new(io, rbuf, svc, &ctx.cfg, &ctx.shutdown, None, true);
    Err(h1.refuse(REFUSAL_TLS).await)
}

/// How an HTTP/1.1 stage begins.
enum H1Start<I, S> {
    /// A new connection, with what sniffing read: cleartext, the only kind that
    /// is sniffed (see [`Opening`]).
    New(I, BytesMut, S),
    /// A parked connection whose client sent these bytes.
    Resume(Parked<I, S>, BytesMut),
}

/// Runs the HTTP/1.1 phase and names what follows it.
fn h1_run<I, S>(start: H1Start<I, S>, ctx: Ctx) -> Stage
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    S: HttpService,
{
    let span = ctx.span.clone();
    Box::pin(
        async move {
            let h1 = match start {
                H1Start::New(io, rbuf, svc) => {
                    H1::new(io, rbuf, svc, &ctx.cfg, &ctx.shutdown, ctx.peer, false)
                }
                H1Start::Resume(parked, rbuf) => {
                    H1::resume(parked, rbuf, &ctx.cfg, &ctx.shutdown, ctx.peer)
                }
            };
            let outcome = h1.run().await?;
            Ok(match outcome {
                Outcome::Closed => Step::Closed,
                Outcome::Park(parked) => Step::Park(Box::new(ParkedH1 {
                    inner: Some((parked, ctx)),
                })),
                Outcome::Upgrade(h) => {
                    let h = *h;
                    ctx.span.record("protocol", Protocol::H2cUpgrade.as_str());
                    let io = UpgradeIo::new(
                        h.io,
                        SWITCHING_PROTOCOLS,
                        h.preamble,
                        &h.leftover,
                        ctx.cfg.preface_timeout,
                    );
                    Step::Next(h2_stage(
                        io,
                        h.svc,
                        ctx,
                        Protocol::H2cUpgrade,
                        Some(h.stream1),
                    ))
                }
                #[cfg(feature = "upgrades")]
                Outcome::Handover(h) => Step::Next(handover_stage(*h, ctx)),
                // `H1::handover_head` hands nothing over without the feature.
                #[cfg(not(feature = "upgrades"))]
                Outcome::Handover(_) => Step::Closed,
            })
        }
        .instrument(span),
    )
}

fn h2_stage<I, S>(
    io: I,
    svc: S,
    ctx: Ctx,
    protocol: Protocol,
    stream1: Option<Stream1<S::ResBody>>,
) -> Stage
where
    I: AsyncRead + AsyncWrite + Unpin + Send + StartGate + 'static,
    S: HttpService,
{
    let Ctx {
        cfg,
        shutdown,
        peer,
        span,
        ..
    } = ctx;
    // Boxed as it is (no async block around it, which would keep the arguments a
    // second time for the connection's whole life).
    let h2 = crate::h2::run(io, svc, cfg, protocol, stream1, shutdown, peer);
    Box::pin(h2.map(|r| r.map(|()| Step::Closed)).instrument(span))
}

/// A request that asks for an upgrade other than h2c, served by hyper; then, if
/// the service switched, the wait for it to let the transport go.
#[cfg(feature = "upgrades")]
fn handover_stage<I, S>(h: Handover<I, S>, ctx: Ctx) -> Stage
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    S: HttpService,
{
    let span = ctx.span.clone();
    Box::pin(
        async move {
            let Handover {
                io,
                svc,
                replay,
                declined,
            } = h;
            let upgraded =
                crate::handover::serve(io, replay, svc, ctx.peer, declined, &ctx.shutdown).await?;
            // What served the request is freed while the upgraded connection lasts.
            Ok(upgraded.map_or(Step::Closed, Step::Switched))
        }
        .instrument(span),
    )
}

/// An idle HTTP/1.1 connection: the socket, the service, the keep-alive timer.
struct ParkedH1<I, S> {
    /// Taken when the connection wakes.
    inner: Option<(Parked<I, S>, Ctx)>,
}

/// Why a parked connection wakes.
enum Wake {
    /// The client sent these bytes: serve them.
    Request(BytesMut),
    /// The keep-alive timeout, a shutdown, or the client left: close.
    Close,
}

impl<I, S> Wait for ParkedH1<I, S>
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    S: HttpService,
{
    fn poll_wake(&mut self, cx: &mut Context<'_>) -> Poll<Result<Stage, Error>> {
        let Some((parked, ctx)) = self.inner.as_mut() else {
            // Woken already; the connection moved on to the stage it was given.
            return Poll::Ready(Ok(Box::pin(async { Ok(Step::Closed) })));
        };
        let wake = {
            let _entered = ctx.span.enter();
            poll_parked(parked, &ctx.shutdown, cx)
        };
        let wake = ready!(wake)?;
        let Some((parked, ctx)) = self.inner.take() else {
            return Poll::Ready(Ok(Box::pin(async { Ok(Step::Closed) })));
        };
        Poll::Ready(Ok(match wake {
            Wake::Request(rbuf) => h1_run(H1Start::Resume(parked, rbuf), ctx),
            Wake::Close => {
                let span = ctx.span.clone();
                Box::pin(
                    async move {
                        H1::close_parked(parked, &ctx.cfg, &ctx.shutdown).await;
                        Ok(Step::Closed)
                    }
                    .instrument(span),
                )
            }
        }))
    }
}

fn poll_parked<I: AsyncRead + Unpin, S>(
    parked: &mut Parked<I, S>,
    shutdown: &Shutdown,
    cx: &mut Context<'_>,
) -> Poll<Result<Wake, Error>> {
    if shutdown.poll(cx).is_ready() {
        trace!("shutdown while idle");
        return Poll::Ready(Ok(Wake::Close));
    }
    let mut rbuf = BytesMut::new();
    match poll_read_small(&mut parked.io, cx, &mut rbuf) {
        Poll::Ready(Ok(0)) => {
            trace!("peer closed while idle");
            Poll::Ready(Ok(Wake::Close))
        }
        Poll::Ready(Ok(_)) => Poll::Ready(Ok(Wake::Request(rbuf))),
        Poll::Ready(Err(e)) => Poll::Ready(Err(Error::io(e))),
        Poll::Pending => {
            ready!(parked.timer.as_mut().poll(cx));
            trace!("keep-alive timeout");
            Poll::Ready(Ok(Wake::Close))
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
        match poll_read_small(io, cx, rbuf) {
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

/// Sniffing a new connection and waking a parked one read through the stack and
/// keep a read buffer of just the size that arrived, so a connection holds no more
/// than its client sent. Later reads grow the buffer as they need.
fn poll_read_small<I: AsyncRead + Unpin>(
    io: &mut I,
    cx: &mut Context<'_>,
    buf: &mut BytesMut,
) -> Poll<std::io::Result<usize>> {
    poll_read_stack(io, cx, |bytes| buf.extend_from_slice(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn how_each_transport_opens() {
        let h2 = Transport::tls(Some(b"h2"));
        let h1 = Transport::tls(Some(b"http/1.1"));
        let other = Transport::tls(Some(b"acme-tls/1"));
        let none = Transport::tls(None);
        // (transport, prior_knowledge, http2_only, opening)
        let cases = [
            (Transport::Cleartext, true, false, Opening::Sniff),
            (Transport::Cleartext, false, false, Opening::Http1),
            (Transport::Cleartext, true, true, Opening::Sniff),
            (Transport::Cleartext, false, true, Opening::Sniff),
            (h2, true, false, Opening::H2Tls),
            (h2, false, false, Opening::H2Tls),
            (h2, false, true, Opening::H2Tls),
            (h1, true, false, Opening::Http1),
            (other, true, false, Opening::Http1),
            (none, true, false, Opening::Http1),
            (h1, true, true, Opening::Refuse),
            (other, false, true, Opening::Refuse),
            (none, true, true, Opening::Refuse),
        ];
        for (transport, prior_knowledge, http2_only, want) in cases {
            let cfg = Config {
                prior_knowledge,
                http2_only,
                ..Config::default()
            };
            assert_eq!(
                Opening::of(transport, &cfg),
                want,
                "{transport:?}, prior_knowledge {prior_knowledge}, http2_only {http2_only}"
            );
        }
    }
}
