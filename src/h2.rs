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
use http::{header, HeaderMap, Method, Request, Response, StatusCode};
use http_body::Body as _;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::time::{Instant, Sleep};
use tracing::{debug, Instrument};

use crate::body::{Body, Held};
use crate::builder::Config;
use crate::conn::Shutdown;
use crate::error::{BoxError, Error, Kind};
use crate::policy::{Protocol, RemoteAddr};
use crate::service::{self, HttpService};

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
    T: AsyncRead + AsyncWrite + Unpin + Send,
    S: HttpService,
{
    let mut conn = cfg
        .h2_builder()
        .handshake::<T, Bytes>(io)
        .await
        .map_err(Error::h2)?;
    let mut streams = FuturesUnordered::new();
    let mut closing = false;
    let mut accepting = true;
    let mut svc = svc;
    // Captured as `&mut`, so the future is Send without asking the service to be Sync.
    let svc = &mut svc;
    let mut keep_alive = KeepAlive::new(&mut conn, cfg);
    let idle_timeout = cfg.keep_alive_timeout;
    // After GOAWAY with nothing open, the peer gets one more idle period to close.
    let goaway_grace = idle_timeout;
    let mut idle = Box::pin(tokio::time::sleep(idle_timeout));
    let mut was_idle = true;

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
                        streams.push(handle(svc.clone(), req, respond, first, protocol, peer));
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
            while let Poll::Ready(Some(())) = streams.poll_next_unpin(cx) {
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

/// HTTP/2 keep-alive: a PING every interval; no acknowledgement within the timeout
/// ends the connection.
struct KeepAlive {
    ping: Option<h2::PingPong>,
    interval: Option<Duration>,
    timeout: Duration,
    timer: Pin<Box<Sleep>>,
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
            timer: Box::pin(tokio::time::sleep(interval.unwrap_or(Duration::MAX / 4))),
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

async fn handle<S: HttpService>(
    mut svc: S,
    req: Request<RecvStream>,
    mut respond: SendResponse<Bytes>,
    first: Option<Stream1<S::ResBody>>,
    protocol: Protocol,
    peer: Option<SocketAddr>,
) {
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
            async move {
                let done = match started {
                    Started::Pending(fut) => answer(fut, &mut respond, is_head).await,
                    Started::Ready(res) => send(res, &mut respond, is_head).await,
                };
                if let Err(e) = done {
                    debug!(error = %e, "response failed");
                }
            }
            .instrument(span)
            .await;
            return;
        }
        Some(Stream1::Buffered {
            body,
            trailers,
            content_length,
        }) => {
            drop(recv);
            if let Some(n) = content_length {
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
    let req = Request::from_parts(parts, body);
    async move {
        if let Err(e) = answer(service::call(&mut svc, req), &mut respond, is_head).await {
            debug!(error = %e, "response failed");
        }
    }
    .instrument(span)
    .await
}

/// Waits for the service's response (or the client's reset) and sends it.
async fn answer<F, B>(fut: F, respond: &mut SendResponse<Bytes>, is_head: bool) -> Result<(), Error>
where
    F: Future<Output = Result<Response<B>, BoxError>>,
    B: http_body::Body<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    let result = {
        let mut fut = pin!(fut);
        poll_fn(|cx| {
            if let Poll::Ready(r) = respond.poll_reset(cx) {
                return Poll::Ready(Err(r.ok()));
            }
            fut.as_mut().poll(cx).map(Ok)
        })
        .await
    };
    match result {
        Err(reason) => {
            debug!(?reason, "stream reset before the response");
            Ok(())
        }
        Ok(Ok(res)) => send(res, respond, is_head).await,
        Ok(Err(e)) => {
            debug!(error = %e, "service error");
            let mut res = Response::new(());
            *res.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
            respond
                .send_response(res, true)
                .map(drop)
                .map_err(Error::h2)
        }
    }
}

/// Connection-specific fields are malformed in HTTP/2 (RFC 9113 §8.2.2).
fn strip_connection_fields(headers: &mut HeaderMap) {
    for name in [
        header::CONNECTION,
        header::TRANSFER_ENCODING,
        header::UPGRADE,
        header::HeaderName::from_static("keep-alive"),
        header::HeaderName::from_static("proxy-connection"),
    ] {
        headers.remove(name);
    }
}

async fn send<B>(
    res: Response<B>,
    respond: &mut SendResponse<Bytes>,
    is_head: bool,
) -> Result<(), Error>
where
    B: http_body::Body<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    let (mut parts, body) = res.into_parts();
    strip_connection_fields(&mut parts.headers);
    // As over HTTP/1.1: the length when known (HEAD included: RFC 9110 §9.3.2), and
    // a Date (RFC 9110 §6.6.1).
    if !parts.headers.contains_key(header::CONTENT_LENGTH) {
        if let Some(n) = body.size_hint().exact() {
            parts.headers.insert(header::CONTENT_LENGTH, n.into());
        }
    }
    if !parts.headers.contains_key(header::DATE) {
        parts
            .headers
            .insert(header::DATE, crate::h1::encode::date_value());
    }
    let end = is_head || body.is_end_stream();
    let stream = respond
        .send_response(Response::from_parts(parts, ()), end)
        .map_err(Error::h2)?;
    if end {
        return Ok(());
    }
    send_body(stream, body).await
}

async fn send_body<B>(mut stream: SendStream<Bytes>, body: B) -> Result<(), Error>
where
    B: http_body::Body<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    let mut body = pin!(body);
    loop {
        let frame = poll_fn(|cx| {
            if let Poll::Ready(r) = stream.poll_reset(cx) {
                let e = match r {
                    Ok(reason) => Error::new(Kind::H2).with(h2::Error::from(reason)),
                    Err(e) => Error::h2(e),
                };
                return Poll::Ready(Err(e));
            }
            // The error is boxed at once so the future never holds `B::Error`.
            let frame = std::task::ready!(body.as_mut().poll_frame(cx));
            Poll::Ready(Ok(frame.map(|r| r.map_err(Into::<BoxError>::into))))
        })
        .await?;
        let frame = match frame {
            None => {
                stream.send_data(Bytes::new(), true).map_err(Error::h2)?;
                return Ok(());
            }
            Some(Err(e)) => {
                stream.send_reset(Reason::INTERNAL_ERROR);
                return Err(Error::new(Kind::Body).with(e));
            }
            Some(Ok(frame)) => frame,
        };
        match frame.into_data() {
            Ok(mut data) => {
                let end = body.is_end_stream();
                while !data.is_empty() {
                    stream.reserve_capacity(data.len());
                    let granted = match poll_fn(|cx| stream.poll_capacity(cx)).await {
                        Some(Ok(n)) => n,
                        Some(Err(e)) => return Err(Error::h2(e)),
                        None => return Err(Error::new(Kind::H2).with("stream closed")),
                    };
                    if granted == 0 {
                        continue;
                    }
                    let chunk = data.split_to(granted.min(data.len()));
                    stream
                        .send_data(chunk, end && data.is_empty())
                        .map_err(Error::h2)?;
                }
                if end {
                    return Ok(());
                }
            }
            Err(frame) => {
                if let Ok(trailers) = frame.into_trailers() {
                    return stream.send_trailers(trailers).map_err(Error::h2);
                }
            }
        }
    }
}
