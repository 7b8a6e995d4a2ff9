//! Serving an HTTP/2 connection with `h2`: prior knowledge, or after an upgrade
//! with stream 1 already carrying the original request.
//!
//! Streams are driven inside the connection's task: every ready stream is accepted
//! before the service futures run, so a burst of requests is answered in one batch
//! and its responses leave in as few writes as possible.

use std::future::{poll_fn, Future};
use std::net::SocketAddr;
use std::pin::{pin, Pin};
use std::task::{ready, Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use futures_util::stream::{FuturesUnordered, StreamExt};
use h2::server::SendResponse;
use h2::{Reason, RecvStream, SendStream};
use http::header::HeaderName;
use http::{header, HeaderMap, Method, Request, Response, StatusCode};
use http_body::Body as _;
use pin_project_lite::pin_project;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::time::{Instant, Sleep};
use tracing::debug;

use crate::body::{Body, Held};
use crate::builder::Config;
use crate::conn::Shutdown;
use crate::error::{BoxError, Error, Kind};
use crate::policy::{Protocol, RemoteAddr};
use crate::service::HttpService;
use crate::upgrade::io::StartUpHold;

/// Accept/run rounds in one poll before yielding to other connections.
const MAX_TURNS: usize = 16;

/// Stream 1 of an upgraded connection: the request arrived over HTTP/1.1.
pub(crate) enum Stream1<B> {
    /// The body was read whole before the switch; the service is called when `h2`
    /// presents stream 1.
    Buffered {
        body: Bytes,
        trailers: Option<HeaderMap>,
        content_length: Option<u64>,
    },
    /// The body was streamed to the service before the switch.
    Started(Started<B>),
}

/// A streamed upgrade's answer, as far as it got before the `101`.
pub(crate) enum Started<B> {
    /// The service has not answered yet.
    Pending(Pin<Box<dyn Future<Output = Result<Response<B>, BoxError>> + Send>>),
    /// The service answered; the start of its body is held.
    Ready(Response<Held<B>>),
}

pub(crate) async fn serve<T, S>(
    io: T,
    svc: S,
    cfg: &Config,
    protocol: Protocol,
    mut stream1: Option<Stream1<S::ResBody>>,
    shutdown: &Shutdown,
    peer: Option<SocketAddr>,
) -> Result<(), Error>
where
    T: AsyncRead + AsyncWrite + Unpin + Send + StartUpHold,
    S: HttpService,
{
    // After an upgrade, the `101` waits until stream 1's service has been polled
    // once, so that an answer ready at once goes out in the same write.
    let mut hold = io.start_up_hold();
    if let Some(h) = &hold {
        h.engage();
    }
    let mut conn = cfg
        .h2_builder()
        .handshake::<T, Bytes>(io)
        .await
        .map_err(Error::h2)?;
    let mut streams = pin!(InFlight::new());
    let mut closing = false;
    let mut accepting = true;
    let mut svc = svc;
    // Captured as `&mut`, so the future is Send without asking the service to be Sync.
    let svc = &mut svc;
    // Both timers live in this future rather than in allocations of their own.
    let ping_timer = pin!(tokio::time::sleep(
        cfg.h2_keep_alive_interval.unwrap_or(Duration::MAX / 4)
    ));
    let mut keep_alive = KeepAlive::new(&mut conn, cfg, ping_timer);
    let idle_timeout = cfg.keep_alive_timeout;
    // After GOAWAY with nothing open, the peer gets one more idle period to close.
    let goaway_grace = idle_timeout;
    let mut idle = pin!(tokio::time::sleep(idle_timeout));
    let mut was_idle = true;
    // The closure borrows the connection and the stream set rather than taking
    // them: moved in, the 1.5 KB connection was copied twice more.
    let conn = &mut conn;
    let stream1 = &mut stream1;

    poll_fn(move |cx| {
        if !closing && shutdown.poll(cx).is_ready() {
            debug!("graceful shutdown: sending goaway");
            conn.graceful_shutdown();
            closing = true;
            was_idle = false;
        }
        for _ in 0..MAX_TURNS {
            let mut progressed = false;
            while accepting {
                match conn.poll_accept(cx) {
                    Poll::Ready(Some(Ok((req, respond)))) => {
                        let first = if u32::from(respond.stream_id()) == 1 {
                            stream1.take()
                        } else {
                            None
                        };
                        let task = stream_task(svc, req, respond, first, protocol, peer);
                        streams.as_mut().push(task);
                        progressed = true;
                        // A stream, however short, restarts the idle clock.
                        was_idle = false;
                    }
                    Poll::Ready(Some(Err(e))) => {
                        debug!(error = %e, "http/2 connection error");
                        return Poll::Ready(Err(Error::h2(e)));
                    }
                    Poll::Ready(None) => accepting = false,
                    Poll::Pending => break,
                }
            }
            // Run the streams; a stream that produced frames wakes this task, and the
            // next turn's poll_accept writes them.
            progressed |= streams.as_mut().poll_run(cx);
            if let Some(h) = hold.take() {
                // Stream 1 (if h2 accepted it) has had its first poll: the next write
                // or flush of h2's, in the next turn, takes the 101 out.
                h.release();
                progressed = true;
            }
            if !accepting && streams.is_empty() {
                return Poll::Ready(Ok(()));
            }
            if !progressed {
                // An idle connection (no stream in flight) is closed with GOAWAY.
                let is_idle = streams.is_empty();
                if is_idle && !was_idle {
                    let wait = if closing { goaway_grace } else { idle_timeout };
                    idle.as_mut().reset(Instant::now() + wait);
                }
                was_idle = is_idle;
                if is_idle && idle.as_mut().poll(cx).is_ready() {
                    if closing {
                        // GOAWAY went out and nothing is open, yet the peer keeps
                        // the connection (h2 waits for its PING ACK): end it.
                        debug!("peer ignored goaway; closing");
                        conn.abrupt_shutdown(Reason::NO_ERROR);
                        return Poll::Ready(Ok(()));
                    }
                    debug!("idle timeout: sending goaway");
                    conn.graceful_shutdown();
                    closing = true;
                    idle.as_mut().reset(Instant::now() + goaway_grace);
                    continue;
                }
                if let Poll::Ready(e) = keep_alive.poll(cx) {
                    debug!("keep-alive ping unanswered; closing");
                    conn.abrupt_shutdown(Reason::NO_ERROR);
                    return Poll::Ready(Err(e));
                }
                return Poll::Pending;
            }
        }
        cx.waker().wake_by_ref();
        Poll::Pending
    })
    .await
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

/// HTTP/2 keep-alive: a PING every interval; no acknowledgement within the timeout
/// ends the connection.
struct KeepAlive<'t> {
    ping: Option<h2::PingPong>,
    interval: Option<Duration>,
    timeout: Duration,
    timer: Pin<&'t mut Sleep>,
    waiting: bool,
}

impl<'t> KeepAlive<'t> {
    fn new<T, B>(
        conn: &mut h2::server::Connection<T, B>,
        cfg: &Config,
        timer: Pin<&'t mut Sleep>,
    ) -> Self
    where
        T: AsyncRead + AsyncWrite + Unpin,
        B: bytes::Buf,
    {
        let interval = cfg.h2_keep_alive_interval;
        KeepAlive {
            ping: interval.and_then(|_| conn.ping_pong()),
            interval,
            timeout: cfg.h2_keep_alive_timeout,
            timer,
            waiting: false,
        }
    }

    /// Ready with an error when the peer failed to answer a PING in time.
    fn poll(&mut self, cx: &mut Context<'_>) -> Poll<Error> {
        let (Some(ping), Some(interval)) = (self.ping.as_mut(), self.interval) else {
            return Poll::Pending;
        };
        loop {
            if self.waiting {
                match ping.poll_pong(cx) {
                    Poll::Ready(Ok(_)) => {
                        self.waiting = false;
                        self.timer.as_mut().reset(Instant::now() + interval);
                        continue;
                    }
                    Poll::Ready(Err(_)) => return Poll::Pending,
                    Poll::Pending => {}
                }
            }
            ready!(self.timer.as_mut().poll(cx));
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
            self.timer.as_mut().reset(Instant::now() + self.timeout);
        }
    }
}

pin_project! {
    /// One stream, from its request to the end of its response. Written out by hand
    /// rather than as nested `async fn`s: those keep every argument twice and every
    /// awaited future's state beside its caller's (3.3 KB per stream), which
    /// `FuturesUnordered` copies on every push and sizes its stub task by.
    #[project = TaskProj]
    enum Task<S>
    where
        S: HttpService,
    {
        /// A request the service answers.
        Service {
            #[pin]
            respond: Respond<Call<S>, S::ResBody>,
        },
        /// Stream 1 of a streamed upgrade, answered (or being answered) before the
        /// switch: once per connection at most, so boxed.
        Started {
            fut: Pin<Box<dyn Future<Output = ()> + Send>>,
        },
    }
}

impl<S: HttpService> Future for Task<S> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        match self.project() {
            TaskProj::Service { respond } => respond.poll(cx),
            TaskProj::Started { fut } => fut.as_mut().poll(cx),
        }
    }
}

/// The future serving the stream `h2` presented.
fn stream_task<S: HttpService>(
    svc: &S,
    req: Request<RecvStream>,
    respond: SendResponse<Bytes>,
    first: Option<Stream1<S::ResBody>>,
    protocol: Protocol,
    peer: Option<SocketAddr>,
) -> Task<S> {
    let (mut parts, recv) = req.into_parts();
    let span = tracing::debug_span!(
        "request",
        method = %parts.method,
        path = %parts.uri.path(),
        stream = u32::from(respond.stream_id()),
    );
    let is_head = parts.method == Method::HEAD;
    let body = match first {
        Some(Stream1::Started(started)) => {
            drop(recv);
            let fut: Pin<Box<dyn Future<Output = ()> + Send>> = match started {
                Started::Pending(fut) => Box::pin(Respond::new(fut, respond, span, is_head)),
                Started::Ready(res) => Box::pin(Respond::new(
                    std::future::ready(Ok::<_, BoxError>(res)),
                    respond,
                    span,
                    is_head,
                )),
            };
            return Task::Started { fut };
        }
        Some(Stream1::Buffered {
            body,
            trailers,
            content_length,
        }) => {
            drop(recv);
            // The length of a body that was sent. Most upgrades are GETs without
            // one, where the HTTP/1 request had no Content-Length either (and
            // inserting one cost four allocations per upgrade).
            if let Some(n) = content_length.filter(|&n| n > 0) {
                parts.headers.insert(header::CONTENT_LENGTH, n.into());
            }
            Body::buffered(body, trailers)
        }
        None => Body::h2(recv),
    };
    parts.extensions.insert(protocol);
    if let Some(p) = peer {
        parts.extensions.insert(RemoteAddr(p));
    }
    let call = Call::Ready {
        svc: svc.clone(),
        req: Some(Request::from_parts(parts, body)),
    };
    Task::Service {
        respond: Respond::new(call, respond, span, is_head),
    }
}

pin_project! {
    /// Waits until the service is ready, then calls it.
    #[project = CallProj]
    enum Call<S>
    where
        S: HttpService,
    {
        Ready {
            svc: S,
            req: Option<Request<Body>>,
        },
        Called {
            #[pin]
            fut: S::Future,
        },
    }
}

impl<S: HttpService> Future for Call<S> {
    type Output = Result<Response<S::ResBody>, BoxError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        loop {
            match self.as_mut().project() {
                CallProj::Ready { svc, req } => {
                    ready!(svc.poll_ready(cx)).map_err(Into::into)?;
                    let Some(req) = req.take() else {
                        return Poll::Ready(Err("service called twice".into()));
                    };
                    let fut = svc.call(req);
                    // The service clone is dropped here; its future is 'static.
                    self.set(Call::Called { fut });
                }
                CallProj::Called { fut } => return fut.poll(cx).map_err(Into::into),
            }
        }
    }
}

pin_project! {
    /// Waits for the answer `F` (or the client's reset), then sends its head and
    /// its body `B`, within the request's span.
    struct Respond<F, B> {
        #[pin]
        phase: Phase<F, B>,
        respond: SendResponse<Bytes>,
        span: tracing::Span,
        is_head: bool,
    }
}

pin_project! {
    #[project = PhaseProj]
    enum Phase<F, B> {
        Answer {
            #[pin]
            fut: F,
        },
        Body {
            #[pin]
            body: B,
            stream: SendStream<Bytes>,
            // Data waiting for flow-control capacity, and whether it ends the body.
            data: Bytes,
            end: bool,
        },
        Done,
    }
}

impl<F, B> Respond<F, B> {
    fn new(fut: F, respond: SendResponse<Bytes>, span: tracing::Span, is_head: bool) -> Self {
        Respond {
            phase: Phase::Answer { fut },
            respond,
            span,
            is_head,
        }
    }
}

impl<F, B, E> Future for Respond<F, B>
where
    F: Future<Output = Result<Response<B>, E>>,
    E: Into<BoxError>,
    B: http_body::Body<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let mut this = self.project();
        let _entered = this.span.enter();
        let done = match this.phase.as_mut().project() {
            PhaseProj::Answer { fut } => {
                if let Poll::Ready(r) = this.respond.poll_reset(cx) {
                    debug!(reason = ?r.ok(), "stream reset before the response");
                    this.phase.set(Phase::Done);
                    return Poll::Ready(());
                }
                match ready!(fut.poll(cx)) {
                    Ok(res) => match send_head(res, this.respond, *this.is_head) {
                        Ok(Some((stream, body))) => {
                            this.phase.set(Phase::Body {
                                body,
                                stream,
                                data: Bytes::new(),
                                end: false,
                            });
                            match this.phase.as_mut().project() {
                                PhaseProj::Body {
                                    body,
                                    stream,
                                    data,
                                    end,
                                } => ready!(poll_body(body, stream, data, end, cx)),
                                _ => Ok(()),
                            }
                        }
                        Ok(None) => Ok(()),
                        Err(e) => Err(e),
                    },
                    Err(e) => {
                        let e = e.into();
                        debug!(error = %e, "service error");
                        let mut res = Response::new(());
                        *res.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
                        this.respond
                            .send_response(res, true)
                            .map(drop)
                            .map_err(Error::h2)
                    }
                }
            }
            PhaseProj::Body {
                body,
                stream,
                data,
                end,
            } => ready!(poll_body(body, stream, data, end, cx)),
            PhaseProj::Done => return Poll::Ready(()),
        };
        if let Err(e) = done {
            debug!(error = %e, "response failed");
        }
        this.phase.set(Phase::Done);
        Poll::Ready(())
    }
}

/// `keep-alive` and `proxy-connection`: connection-specific fields without a
/// constant in `http`.
static KEEP_ALIVE: HeaderName = HeaderName::from_static("keep-alive");
static PROXY_CONNECTION: HeaderName = HeaderName::from_static("proxy-connection");

/// Connection-specific fields are malformed in HTTP/2 (RFC 9113 §8.2.2).
fn is_connection_field(name: &HeaderName) -> bool {
    name == header::CONNECTION
        || name == header::TRANSFER_ENCODING
        || name == header::UPGRADE
        || *name == KEEP_ALIVE
        || *name == PROXY_CONNECTION
}

/// Sends the response head; returns the stream and body when a body follows.
fn send_head<B>(
    res: Response<B>,
    respond: &mut SendResponse<Bytes>,
    is_head: bool,
) -> Result<Option<(SendStream<Bytes>, B)>, Error>
where
    B: http_body::Body<Data = Bytes>,
{
    let (mut parts, body) = res.into_parts();
    // One pass over the names (a response has few) instead of a hashed lookup for
    // each field looked for: measured at ~1,100 instructions per response.
    let (mut has_length, mut has_date, mut strip) = (false, false, false);
    for name in parts.headers.keys() {
        has_length |= name == header::CONTENT_LENGTH;
        has_date |= name == header::DATE;
        strip |= is_connection_field(name);
    }
    if strip {
        for name in [
            header::CONNECTION,
            header::TRANSFER_ENCODING,
            header::UPGRADE,
            KEEP_ALIVE.clone(),
            PROXY_CONNECTION.clone(),
        ] {
            parts.headers.remove(name);
        }
    }
    // As over HTTP/1.1: the length when known (HEAD included: RFC 9110 §9.3.2), and
    // a Date (RFC 9110 §6.6.1).
    if !has_length {
        if let Some(n) = body.size_hint().exact() {
            parts.headers.insert(header::CONTENT_LENGTH, n.into());
        }
    }
    if !has_date {
        parts
            .headers
            .insert(header::DATE, crate::h1::encode::date_value());
    }
    let end = is_head || body.is_end_stream();
    let stream = respond
        .send_response(Response::from_parts(parts, ()), end)
        .map_err(Error::h2)?;
    Ok((!end).then_some((stream, body)))
}

/// Sends the body: frame by frame, each data frame as flow control allows.
fn poll_body<B>(
    mut body: Pin<&mut B>,
    stream: &mut SendStream<Bytes>,
    data: &mut Bytes,
    end: &mut bool,
    cx: &mut Context<'_>,
) -> Poll<Result<(), Error>>
where
    B: http_body::Body<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    loop {
        if *end && !data.is_empty() {
            // The last chunk is in memory already: h2 sends it as the windows
            // allow, without the reserve / poll_capacity round (hyper's way too).
            stream
                .send_data(std::mem::take(data), true)
                .map_err(Error::h2)?;
            return Poll::Ready(Ok(()));
        }
        while !data.is_empty() {
            stream.reserve_capacity(data.len());
            let granted = match ready!(stream.poll_capacity(cx)) {
                Some(Ok(n)) => n,
                Some(Err(e)) => return Poll::Ready(Err(Error::h2(e))),
                None => return Poll::Ready(Err(Error::new(Kind::H2).with("stream closed"))),
            };
            if granted == 0 {
                continue;
            }
            let chunk = data.split_to(granted.min(data.len()));
            stream.send_data(chunk, false).map_err(Error::h2)?;
        }
        if *end {
            return Poll::Ready(Ok(()));
        }
        if let Poll::Ready(r) = stream.poll_reset(cx) {
            let e = match r {
                Ok(reason) => Error::new(Kind::H2).with(h2::Error::from(reason)),
                Err(e) => Error::h2(e),
            };
            return Poll::Ready(Err(e));
        }
        let frame = match ready!(body.as_mut().poll_frame(cx)) {
            None => {
                stream.send_data(Bytes::new(), true).map_err(Error::h2)?;
                return Poll::Ready(Ok(()));
            }
            Some(Err(e)) => {
                stream.send_reset(Reason::INTERNAL_ERROR);
                return Poll::Ready(Err(Error::new(Kind::Body).with(e.into())));
            }
            Some(Ok(frame)) => frame,
        };
        match frame.into_data() {
            Ok(chunk) => {
                *end = body.is_end_stream();
                if chunk.is_empty() && *end {
                    stream.send_data(chunk, true).map_err(Error::h2)?;
                    return Poll::Ready(Ok(()));
                }
                *data = chunk;
            }
            Err(frame) => {
                if let Ok(trailers) = frame.into_trailers() {
                    return Poll::Ready(stream.send_trailers(trailers).map_err(Error::h2));
                }
            }
        }
    }
}
