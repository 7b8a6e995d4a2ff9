//! Serving an HTTP/2 connection with `h2`: prior knowledge, or after an upgrade
//! with stream 1 already carrying the original request.
//!
//! Streams are driven inside the connection's task: every ready stream is accepted
//! before the service futures run, so a burst of requests is answered in one batch
//! and its responses leave in as few writes as possible.

mod stream;

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use futures_util::stream::{FuturesUnordered, StreamExt};
use h2::Reason;
use pin_project_lite::pin_project;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::time::{Instant, Sleep};
use tracing::{debug, warn};

use crate::config::Config;
use crate::error::{Error, Kind};
use crate::linger::{Lingering, LINGER_TIME};
use crate::policy::Protocol;
use crate::service::HttpService;
use crate::shutdown::Shutdown;
use crate::tunnel::Census;
use crate::upgrade::adapter::{Gate, StartGate};
use crate::upgrade::handoff::Stream1;
use stream::{stream_task, Task};

/// Accept/run rounds in one poll before yielding to other connections.
const MAX_TURNS: usize = 16;

/// How long a connection that ends on its own decision (an unanswered keep-alive
/// `PING`, a client that ignores `GOAWAY`) may take to send its `GOAWAY` and close
/// (the close lingers for up to [`LINGER_TIME`] of it); past it, it is dropped.
const ABRUPT_CLOSE_TIME: Duration = LINGER_TIME.saturating_mul(2);

/// Serves an HTTP/2 connection: `h2`'s handshake, then the [`Driver`].
///
/// A plain function returning a state machine rather than an `async fn`: an
/// `async fn` keeps its arguments for its whole life and lays the handshake out
/// beside the connection, where here the two share their space (the future is
/// boxed with the connection and kept while it is open).
///
/// The handshake is made at the first poll, not here: making it allocates `h2`'s
/// buffers (16 KiB to write, 8 KiB to read, 4 KiB of HPACK, mostly never touched),
/// and after an upgrade this runs while the HTTP/1.1 stage still holds its state.
/// Made while that state is alive, the write buffer lands on the pages it leaves
/// at the top of the heap, already touched, and an idle upgraded connection keeps
/// about 0.8 KiB more of RSS; at the first poll that state is gone and the buffers
/// go where a prior-knowledge connection's go.
#[allow(clippy::too_many_arguments)]
pub(crate) fn run<T, S>(
    io: T,
    svc: S,
    cfg: Arc<Config>,
    protocol: Protocol,
    stream1: Option<Stream1<S::ResBody>>,
    shutdown: Arc<Shutdown>,
    peer: Option<SocketAddr>,
) -> impl Future<Output = Result<(), Error>> + Send + 'static
where
    T: AsyncRead + AsyncWrite + Unpin + Send + StartGate + 'static,
    S: HttpService,
{
    // After an upgrade, the `101` waits until stream 1's service has been polled
    // once, so that an answer ready at once goes out in the same write.
    let gate = io.start_gate();
    if let Some(g) = &gate {
        g.engage();
    }
    Serve::Starting {
        io: Some(Lingering::new(io)),
        rest: Some(Rest {
            svc,
            cfg,
            protocol,
            // Boxed: 160 bytes the connection would otherwise keep while open,
            // for the one stream that uses them (an allocation per upgrade).
            stream1: stream1.map(Box::new),
            shutdown,
            peer,
            gate,
            tunnels: Census::default(),
        }),
    }
}

/// What the [`Driver`] needs besides the connection.
struct Rest<S: HttpService> {
    svc: S,
    cfg: Arc<Config>,
    protocol: Protocol,
    stream1: Option<Box<Stream1<S::ResBody>>>,
    shutdown: Arc<Shutdown>,
    peer: Option<SocketAddr>,
    gate: Option<Gate>,
    tunnels: Census,
}

pin_project! {
    #[project = ServeProj]
    enum Serve<T, S>
    where
        S: HttpService,
    {
        // Until the first poll (see `run`).
        Starting {
            io: Option<Lingering<T>>,
            rest: Option<Rest<S>>,
        },
        Handshaking {
            #[pin]
            handshake: h2::server::Handshake<Lingering<T>, Bytes>,
            rest: Option<Rest<S>>,
        },
        Driving {
            #[pin]
            driver: Driver<Lingering<T>, S>,
        },
    }
}

impl<T, S> Future for Serve<T, S>
where
    T: AsyncRead + AsyncWrite + Unpin,
    S: HttpService,
{
    type Output = Result<(), Error>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        loop {
            match self.as_mut().project() {
                ServeProj::Starting { io, rest } => {
                    let (Some(io), Some(rest)) = (io.take(), rest.take()) else {
                        return Poll::Ready(Err(Error::new(Kind::H2).with("polled after the end")));
                    };
                    let handshake = rest.cfg.h2_builder().handshake::<_, Bytes>(io);
                    self.set(Serve::Handshaking {
                        handshake,
                        rest: Some(rest),
                    });
                }
                ServeProj::Handshaking { handshake, rest } => {
                    let conn = match ready!(handshake.poll(cx)) {
                        Ok(conn) => conn,
                        Err(e) => return Poll::Ready(Err(Error::h2(e))),
                    };
                    let Some(rest) = rest.take() else {
                        return Poll::Ready(Err(Error::new(Kind::H2).with("polled after the end")));
                    };
                    self.set(Serve::Driving {
                        driver: Driver::new(conn, rest),
                    });
                }
                ServeProj::Driving { driver } => return driver.poll(cx),
            }
        }
    }
}

pin_project! {
    /// The connection once `h2`'s handshake is done: accepts streams and runs them,
    /// keeps the idle and keep-alive clocks, and closes.
    ///
    /// Every close goes through `h2`: it sends `GOAWAY`, flushes, and shuts the
    /// transport down, which lingers (see [`Lingering`]), so what was written
    /// reaches the client. The driver returns only once `h2` has closed, or, for a
    /// close of its own, once [`ABRUPT_CLOSE_TIME`] has passed.
    struct Driver<T, S>
    where
        S: HttpService,
    {
        conn: h2::server::Connection<T, Bytes>,
        #[pin]
        streams: InFlight<S>,
        // The idle clock; once the driver ends the connection itself, the bound on
        // that close.
        #[pin]
        idle: Sleep,
        #[pin]
        ping_timer: Sleep,
        keep_alive: KeepAlive,
        rest: Rest<S>,
        closing: bool,
        accepting: bool,
        was_idle: bool,
        // The driver ended the connection (abruptly): waiting for `h2` to close it,
        // with the error to return then.
        ending: Option<Result<(), Error>>,
        // Returned `Ready`: dropped after that, nothing was cut.
        done: bool,
    }

    impl<T, S> PinnedDrop for Driver<T, S>
    where
        S: HttpService,
    {
        fn drop(this: Pin<&mut Self>) {
            // Dropped before it finished: cancelled by its owner (the drain bound of
            // `serve`, or a dropped `Connection`) with streams still in flight.
            let this = this.project();
            if *this.done {
                return;
            }
            let streams = this.streams.as_ref().get_ref();
            // Tunnels are streams too, served by tasks of the service's own.
            let tunnels = this.rest.tunnels.open();
            if !streams.is_empty() || tunnels > 0 {
                let (count, unsent) = streams.unsent();
                warn!(
                    streams = count,
                    unsent_bytes = unsent.known,
                    streams_of_unknown_length = unsent.unknown,
                    tunnels,
                    "http/2 connection cut with streams unfinished"
                );
            }
        }
    }
}

impl<T, S> Driver<T, S>
where
    T: AsyncRead + AsyncWrite + Unpin,
    S: HttpService,
{
    #[inline(always)]
    fn new(mut conn: h2::server::Connection<T, Bytes>, rest: Rest<S>) -> Self {
        let cfg = &*rest.cfg;
        let keep_alive = KeepAlive::new(&mut conn, cfg);
        Driver {
            conn,
            streams: InFlight::new(),
            idle: tokio::time::sleep(cfg.keep_alive_timeout),
            ping_timer: tokio::time::sleep(cfg.h2_keep_alive_interval.unwrap_or(Duration::MAX / 4)),
            keep_alive,
            rest,
            closing: false,
            accepting: true,
            was_idle: true,
            ending: None,
            done: false,
        }
    }
}

impl<T, S> Future for Driver<T, S>
where
    T: AsyncRead + AsyncWrite + Unpin,
    S: HttpService,
{
    type Output = Result<(), Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        let conn = this.conn;
        let rest = this.rest;
        let idle_timeout = rest.cfg.keep_alive_timeout;
        // After GOAWAY with nothing open, the peer gets one more idle period to close.
        let goaway_grace = idle_timeout;
        if !*this.closing && rest.shutdown.poll(cx).is_ready() {
            debug!("graceful shutdown: sending goaway");
            conn.graceful_shutdown();
            *this.closing = true;
            *this.was_idle = false;
        }
        for _ in 0..MAX_TURNS {
            let mut progressed = false;
            while *this.accepting {
                match conn.poll_accept(cx) {
                    Poll::Ready(Some(Ok((req, respond)))) => {
                        let first = if u32::from(respond.stream_id()) == 1 {
                            rest.stream1.take().map(|s| *s)
                        } else {
                            None
                        };
                        let task = stream_task(
                            cx,
                            &rest.svc,
                            req,
                            respond,
                            first,
                            rest.protocol,
                            rest.peer,
                            &mut rest.tunnels,
                        );
                        this.streams.as_mut().push(task);
                        progressed = true;
                        // A stream, however short, restarts the idle clock.
                        *this.was_idle = false;
                    }
                    Poll::Ready(Some(Err(e))) => {
                        debug!(error = %e, "http/2 connection error");
                        *this.done = true;
                        return Poll::Ready(Err(Error::h2(e)));
                    }
                    Poll::Ready(None) => *this.accepting = false,
                    Poll::Pending => break,
                }
            }
            // Run the streams; a stream that produced frames wakes this task, and the
            // next turn's poll_accept writes them.
            progressed |= this.streams.as_mut().poll_run(cx);
            if let Some(g) = rest.gate.take() {
                // Stream 1 (if h2 accepted it) has had its first poll: the next write
                // or flush of h2's, in the next turn, takes the 101 out.
                g.release();
                progressed = true;
            }
            if !*this.accepting && this.streams.is_empty() {
                *this.done = true;
                return Poll::Ready(this.ending.take().unwrap_or(Ok(())));
            }
            if progressed {
                continue;
            }
            if this.ending.is_some() {
                // h2 is sending the GOAWAY and closing; a peer that reads nothing
                // cannot hold the connection past the bound.
                if this.idle.as_mut().poll(cx).is_ready() {
                    debug!("close did not complete in time; dropping the connection");
                    *this.done = true;
                    return Poll::Ready(this.ending.take().unwrap_or(Ok(())));
                }
                return Poll::Pending;
            }
            // An idle connection (no stream in flight) is closed with GOAWAY. A
            // stream whose task has finished may still have response bytes in h2's
            // send buffer, waiting for the socket or the client's window: h2 still
            // counts it, and an abrupt close now would discard those bytes.
            let is_idle = this.streams.is_empty() && !conn.has_streams();
            if is_idle && !*this.was_idle {
                let wait = if *this.closing {
                    goaway_grace
                } else {
                    idle_timeout
                };
                this.idle.as_mut().reset(Instant::now() + wait);
            }
            *this.was_idle = is_idle;
            let end = if is_idle && this.idle.as_mut().poll(cx).is_ready() {
                if *this.closing {
                    // GOAWAY went out and nothing is open, yet the peer keeps
                    // the connection (h2 waits for its PING ACK): end it.
                    debug!("peer ignored goaway; closing");
                    Ok(())
                } else {
                    debug!("idle timeout: sending goaway");
                    conn.graceful_shutdown();
                    *this.closing = true;
                    this.idle.as_mut().reset(Instant::now() + goaway_grace);
                    continue;
                }
            } else if let Poll::Ready(e) = this.keep_alive.poll(this.ping_timer.as_mut(), cx) {
                debug!("keep-alive ping unanswered; closing");
                Err(e)
            } else {
                return Poll::Pending;
            };
            // Closed through h2 like every other close: it sends GOAWAY and shuts
            // the transport down, and poll_accept says when that is done.
            conn.abrupt_shutdown(Reason::NO_ERROR);
            *this.ending = Some(end);
            this.idle.as_mut().reset(Instant::now() + ABRUPT_CLOSE_TIME);
        }
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

pin_project! {
    /// The streams in flight. The first is kept in place and polled whenever the
    /// connection is; the others go to a `FuturesUnordered`, made when a second
    /// stream is in flight at once, which polls only those woken. A connection that
    /// never runs two streams at a time (one request per connection above all)
    /// allocates nothing for them: `FuturesUnordered::new` allocates its queue and
    /// a stub task, and each push a task.
    struct InFlight<S>
    where
        S: HttpService,
    {
        #[pin]
        lone: Option<Task<S>>,
        more: Option<FuturesUnordered<Task<S>>>,
    }
}

impl<S: HttpService> InFlight<S> {
    fn new() -> Self {
        InFlight {
            lone: None,
            more: None,
        }
    }

    fn push(self: Pin<&mut Self>, task: Task<S>) {
        let mut this = self.project();
        if this.lone.is_none() {
            this.lone.set(Some(task));
        } else {
            this.more
                .get_or_insert_with(FuturesUnordered::new)
                .push(task);
        }
    }

    fn is_empty(&self) -> bool {
        self.lone.is_none() && self.more.as_ref().is_none_or(|m| m.is_empty())
    }

    /// How many streams are in flight and what of their responses is not sent.
    fn unsent(&self) -> (usize, Unsent) {
        let mut total = Unsent::default();
        let more = self.more.iter().flat_map(|m| Pin::new(m).iter_pin_ref());
        let tasks = self.lone.iter().chain(more.map(|t| t.get_ref()));
        let mut count = 0;
        for task in tasks {
            count += 1;
            match task.unsent() {
                Some(n) => total.known += n,
                None => total.unknown += 1,
            }
        }
        (count, total)
    }

    /// Runs the streams that can make progress; true when one of them finished.
    fn poll_run(self: Pin<&mut Self>, cx: &mut Context<'_>) -> bool {
        let mut this = self.project();
        let mut finished = false;
        if let Some(task) = this.lone.as_mut().as_pin_mut() {
            if task.poll(cx).is_ready() {
                this.lone.set(None);
                finished = true;
            }
        }
        if let Some(more) = this.more {
            while let Poll::Ready(Some(())) = more.poll_next_unpin(cx) {
                finished = true;
            }
        }
        finished
    }
}

/// What the responses of streams cut short had left to send.
#[derive(Default)]
struct Unsent {
    /// Body bytes of the responses whose length is known.
    known: u64,
    /// Streams whose response had not begun or has no known length.
    unknown: usize,
}

/// HTTP/2 keep-alive: a PING every interval; no acknowledgement within the timeout
/// ends the connection.
struct KeepAlive {
    ping: Option<h2::PingPong>,
    interval: Option<Duration>,
    timeout: Duration,
    waiting: bool,
}

impl KeepAlive {
    fn new<T, B>(conn: &mut h2::server::Connection<T, B>, cfg: &Config) -> Self
    where
        T: AsyncRead + AsyncWrite + Unpin,
        B: bytes::Buf,
    {
        let interval = cfg.h2_keep_alive_interval;
        KeepAlive {
            ping: interval.and_then(|_| conn.ping_pong()),
            interval,
            timeout: cfg.h2_keep_alive_timeout,
            waiting: false,
        }
    }

    /// Ready with an error when the peer failed to answer a PING in time.
    fn poll(&mut self, mut timer: Pin<&mut Sleep>, cx: &mut Context<'_>) -> Poll<Error> {
        let (Some(ping), Some(interval)) = (self.ping.as_mut(), self.interval) else {
            return Poll::Pending;
        };
        loop {
            if self.waiting {
                match ping.poll_pong(cx) {
                    Poll::Ready(Ok(_)) => {
                        self.waiting = false;
                        timer.as_mut().reset(Instant::now() + interval);
                        continue;
                    }
                    Poll::Ready(Err(_)) => return Poll::Pending,
                    Poll::Pending => {}
                }
            }
            ready!(timer.as_mut().poll(cx));
            if self.waiting {
                return Poll::Ready(
                    Error::new(Kind::Timeout).with("keep-alive ping not acknowledged"),
                );
            }
            if ping.send_ping(h2::Ping::opaque()).is_err() {
                // The connection is closing; nothing to watch.
                return Poll::Pending;
            }
            self.waiting = true;
            timer.as_mut().reset(Instant::now() + self.timeout);
        }
    }
}
