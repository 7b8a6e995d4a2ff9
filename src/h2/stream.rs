//! One HTTP/2 stream, from the request `h2` presents to the end of its response.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::AtomicUsize;
use std::sync::Arc;
use std::task::{ready, Context, Poll};

use bytes::Bytes;
use h2::server::SendResponse;
use h2::{Reason, RecvStream, SendStream};
use http::header::HeaderName;
use http::{header, Method, Request, Response, StatusCode};
use http_body::Body as _;
use pin_project_lite::pin_project;
use tracing::debug;

use crate::body::Body;
use crate::error::{BoxError, Error, Kind};
use crate::policy::{Protocol, RemoteAddr};
use crate::service::HttpService;
use crate::tunnel::{self, Census, ConnectProtocol, Opener, Tunnel};
use crate::upgrade::handoff::{Started, Stream1};

pin_project! {
    /// One stream, from its request to the end of its response. Written out by hand
    /// rather than as nested `async fn`s: those keep every argument twice and every
    /// awaited future's state beside its caller's (3.3 KB per stream), which
    /// `FuturesUnordered` copies on every push and sizes its stub task by.
    #[project = TaskProj]
    pub(crate) enum Task<S>
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

impl<S: HttpService> Task<S> {
    /// The response body bytes not yet handed to `h2`, where that is known.
    pub(crate) fn unsent(&self) -> Option<u64> {
        match self {
            Task::Service { respond } => respond.unsent(),
            Task::Started { .. } => None,
        }
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

/// The future serving the stream `h2` presented. A ready service is called at
/// once, so the stream keeps its future, not the request waiting for it.
#[allow(clippy::too_many_arguments)]
pub(crate) fn stream_task<S: HttpService>(
    cx: &mut Context<'_>,
    svc: &S,
    req: Request<RecvStream>,
    respond: SendResponse<Bytes>,
    first: Option<Stream1<S::ResBody>>,
    protocol: Protocol,
    peer: Option<SocketAddr>,
    tunnels: &mut Census,
) -> Task<S> {
    let (mut parts, recv) = req.into_parts();
    let span = tracing::debug_span!(
        "request",
        method = %parts.method,
        path = %parts.uri.path(),
        stream = u32::from(respond.stream_id()),
    );
    let is_head = parts.method == Method::HEAD;
    let mut connect = None;
    let body = match first {
        Some(Stream1::Started(started)) => {
            drop(recv);
            let fut: Pin<Box<dyn Future<Output = ()> + Send>> = match started {
                Started::Pending(fut) => Box::pin(Respond::new(fut, respond, span, is_head, None)),
                Started::Ready(res) => Box::pin(Respond::new(
                    std::future::ready(Ok::<_, BoxError>(res)),
                    respond,
                    span,
                    is_head,
                    None,
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
            // inserting one would cost four allocations per upgrade).
            if let Some(n) = content_length.filter(|&n| n > 0) {
                parts
                    .headers
                    .insert(header::CONTENT_LENGTH, length_value(n));
            }
            Body::buffered(body, trailers)
        }
        None => match extended_connect(&mut parts, recv, tunnels) {
            Ok(c) => {
                connect = Some(c);
                // RFC 8441 §5: after the answer the stream's DATA is the
                // tunnel's, so the request itself has no body.
                Body::empty()
            }
            Err(recv) => Body::h2(recv),
        },
    };
    parts.extensions.insert(protocol);
    if let Some(p) = peer {
        parts.extensions.insert(RemoteAddr(p));
    }
    let req = Request::from_parts(parts, body);
    let mut svc = svc.clone();
    let call = match svc.poll_ready(cx) {
        // The service clone is dropped here; its future is 'static.
        Poll::Ready(Ok(())) => Call::Called { fut: svc.call(req) },
        Poll::Ready(Err(e)) => Call::Failed {
            error: Some(e.into()),
        },
        // Rare (services are nearly always ready): the wait is boxed, so that
        // every stream does not carry room for the request beside the future.
        Poll::Pending => Call::Waiting {
            parked: Some(Box::new((svc, req))),
        },
    };
    Task::Service {
        respond: Respond::new(call, respond, span, is_head, connect),
    }
}

/// An extended CONNECT's stream until it is answered: the client's side of the
/// stream, kept for the tunnel, and the way to the request's [`OnTunnel`](tunnel::OnTunnel).
struct Connect {
    recv: RecvStream,
    opener: Opener,
    tunnels: Arc<AtomicUsize>,
    protocol: ConnectProtocol,
}

/// When `parts` is an extended CONNECT (RFC 8441 §4; `h2` gives `:protocol` only
/// when the setting is on, and only on a CONNECT), adds its [`ConnectProtocol`]
/// and an [`OnTunnel`](tunnel::OnTunnel) to its extensions and keeps the stream
/// for the tunnel. Otherwise the stream goes back, to be the request's body.
fn extended_connect(
    parts: &mut http::request::Parts,
    recv: RecvStream,
    tunnels: &mut Census,
) -> Result<Box<Connect>, RecvStream> {
    if parts.method != Method::CONNECT {
        return Err(recv);
    }
    let Some(protocol) = parts.extensions.get::<h2::ext::Protocol>() else {
        return Err(recv);
    };
    let protocol = ConnectProtocol::from_h2(protocol.clone());
    let (on_tunnel, opener) = tunnel::pair();
    parts.extensions.insert(protocol.clone());
    parts.extensions.insert(on_tunnel);
    Ok(Box::new(Connect {
        recv,
        opener,
        tunnels: tunnels.counter(),
        protocol,
    }))
}

/// Answers an extended CONNECT: with a tunnel when the answer is a `2xx` with an
/// empty body and an `OnTunnel` of the request waits for it; `Ok(None)` then.
/// Otherwise the response is given back, to be sent as any other, and a waiting
/// `OnTunnel` is told why there is no tunnel.
fn answer_connect<B: http_body::Body>(
    res: Response<B>,
    respond: &mut SendResponse<Bytes>,
    connect: Connect,
    span: &tracing::Span,
) -> Result<Option<Response<B>>, Error> {
    let Connect {
        recv,
        opener,
        tunnels,
        protocol,
    } = connect;
    let status = res.status();
    let refusal = if !status.is_success() {
        Some(tunnel::refused(format!("answered {status}, not 2xx")))
    } else if !res.body().is_end_stream() {
        Some(tunnel::refused("the 2xx answer has a body"))
    } else {
        None
    };
    if let Some(why) = refusal {
        debug!(%protocol, reason = %why, "extended connect answered without a tunnel");
        opener.refuse(why);
        return Ok(Some(res));
    }
    if !opener.is_wanted() {
        debug!(%protocol, "extended connect answered without a tunnel: its OnTunnel was dropped");
        return Ok(Some(res));
    }
    let (mut parts, _) = res.into_parts();
    for name in [
        header::CONNECTION,
        header::TRANSFER_ENCODING,
        header::UPGRADE,
        KEEP_ALIVE.clone(),
        PROXY_CONNECTION.clone(),
        // RFC 9110 §9.3.6: a 2xx to CONNECT carries neither framing field.
        header::CONTENT_LENGTH,
    ] {
        parts.headers.remove(name);
    }
    if !parts.headers.contains_key(header::DATE) {
        parts.headers.insert(header::DATE, crate::date::value());
    }
    let send = respond
        .send_response(Response::from_parts(parts, ()), false)
        .map_err(Error::h2)?;
    debug!(%protocol, status = status.as_u16(), "tunnel open");
    if let Some(mut unwanted) = opener.open(Tunnel::new(send, recv, span.clone(), tunnels)) {
        // The OnTunnel went away after the check above: end the stream as an
        // empty tunnel rather than reset it.
        let _ = unwanted.end();
    }
    Ok(None)
}

pin_project! {
    /// The service's answer to one request.
    #[project = CallProj]
    enum Call<S>
    where
        S: HttpService,
    {
        /// Called: its future.
        Called {
            #[pin]
            fut: S::Future,
        },
        /// The service was not ready when the stream came.
        Waiting {
            parked: Option<Box<(S, Request<Body>)>>,
        },
        /// The service failed before it was called.
        Failed {
            error: Option<BoxError>,
        },
    }
}

impl<S: HttpService> Future for Call<S> {
    type Output = Result<Response<S::ResBody>, BoxError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        loop {
            match self.as_mut().project() {
                CallProj::Called { fut } => return fut.poll(cx).map_err(Into::into),
                CallProj::Waiting { parked } => {
                    let Some(waiting) = parked.as_mut() else {
                        return Poll::Ready(Err("service called twice".into()));
                    };
                    ready!(waiting.0.poll_ready(cx)).map_err(Into::into)?;
                    let Some(waiting) = parked.take() else {
                        return Poll::Ready(Err("service called twice".into()));
                    };
                    let (mut svc, req) = *waiting;
                    let fut = svc.call(req);
                    self.set(Call::Called { fut });
                }
                CallProj::Failed { error } => {
                    let e = error.take().unwrap_or_else(|| "service failed".into());
                    return Poll::Ready(Err(e));
                }
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
        // An extended CONNECT, until it is answered. Boxed: rare, and every
        // other stream carries only the pointer.
        connect: Option<Box<Connect>>,
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
    fn new(
        fut: F,
        respond: SendResponse<Bytes>,
        span: tracing::Span,
        is_head: bool,
        connect: Option<Box<Connect>>,
    ) -> Self {
        Respond {
            phase: Phase::Answer { fut },
            respond,
            span,
            is_head,
            connect,
        }
    }
}

impl<F, B: http_body::Body> Respond<F, B> {
    /// See [`Task::unsent`]: known once the body has begun, if it tells its length.
    fn unsent(&self) -> Option<u64> {
        match &self.phase {
            Phase::Body { body, data, .. } => body
                .size_hint()
                .exact()
                .map(|rest| rest + data.len() as u64),
            Phase::Done => Some(0),
            Phase::Answer { .. } => None,
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
        let done = loop {
            match this.phase.as_mut().project() {
                PhaseProj::Answer { fut } => {
                    if let Poll::Ready(r) = this.respond.poll_reset(cx) {
                        debug!(reason = ?r.ok(), "stream reset before the response");
                        this.phase.set(Phase::Done);
                        return Poll::Ready(());
                    }
                    match ready!(fut.poll(cx)) {
                        Ok(res) => {
                            // A 2xx to an extended CONNECT sent as a plain
                            // response still goes without Content-Length.
                            let mut no_length = false;
                            let res = match this.connect.take() {
                                None => res,
                                Some(c) => match answer_connect(res, this.respond, *c, this.span) {
                                    Ok(None) => break Ok(()),
                                    Ok(Some(res)) => {
                                        no_length = res.status().is_success();
                                        res
                                    }
                                    Err(e) => break Err(e),
                                },
                            };
                            match send_head(res, this.respond, *this.is_head, no_length) {
                                Ok(Some((stream, body))) => {
                                    // The body is polled at once, by the arm below.
                                    this.phase.set(Phase::Body {
                                        body,
                                        stream,
                                        data: Bytes::new(),
                                        end: false,
                                    });
                                }
                                Ok(None) => break Ok(()),
                                Err(e) => break Err(e),
                            }
                        }
                        Err(e) => {
                            let e = Error::service(e.into());
                            debug!(error = &e as &dyn std::error::Error, "service error");
                            if let Some(c) = this.connect.take() {
                                c.opener
                                    .refuse(tunnel::refused("the service failed: answered 500"));
                            }
                            let mut res = Response::new(());
                            *res.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
                            break this
                                .respond
                                .send_response(res, true)
                                .map(drop)
                                .map_err(Error::h2);
                        }
                    }
                }
                PhaseProj::Body {
                    body,
                    stream,
                    data,
                    end,
                } => break ready!(poll_body(body, stream, data, end, cx)),
                PhaseProj::Done => return Poll::Ready(()),
            }
        };
        if let Err(e) = done {
            debug!(error = &e as &dyn std::error::Error, "response failed");
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

/// A Content-Length value in one allocation: `HeaderValue::from(u64)` writes into
/// a growable buffer and freezes it, which allocates a second time.
fn length_value(n: u64) -> header::HeaderValue {
    let mut digits = [0u8; 20];
    let bytes = Bytes::copy_from_slice(crate::decimal::digits(n, &mut digits));
    header::HeaderValue::from_maybe_shared(bytes).unwrap_or_else(|_| n.into())
}

/// Sends the response head; returns the stream and body when a body follows.
/// `no_length`: the head must carry no Content-Length (a 2xx to CONNECT).
fn send_head<B>(
    res: Response<B>,
    respond: &mut SendResponse<Bytes>,
    is_head: bool,
    no_length: bool,
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
    if no_length {
        if has_length {
            parts.headers.remove(header::CONTENT_LENGTH);
        }
    } else if !has_length {
        if let Some(n) = body.size_hint().exact() {
            parts
                .headers
                .insert(header::CONTENT_LENGTH, length_value(n));
        }
    }
    if !has_date {
        parts.headers.insert(header::DATE, crate::date::value());
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
                None => return Poll::Ready(Err(Error::new(Kind::H2).detail("stream closed"))),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn length_values() {
        for n in [0, 7, 10, 12, 99, 100, 65_535, 1 << 40, u64::MAX] {
            assert_eq!(length_value(n), header::HeaderValue::from(n), "{n}");
        }
    }
}
