//! The HTTP/1.1 connection: keep-alive, pipelining, streamed request bodies,
//! `Expect: 100-continue`, and the hand-off of an accepted `Upgrade: h2c` request.
//!
//! One request at a time, in order (RFC 9112 §9.3.2): the head is parsed from the
//! read buffer, the service is called, and while its future and then its response
//! body are polled, the request body is fed from the socket into the request's
//! [`Body`] only as fast as the service reads it. Responses to pipelined requests
//! are batched: the output is flushed when the next head is not already buffered.

use std::future::{poll_fn, Future};
use std::net::SocketAddr;
use std::pin::{pin, Pin};
use std::task::{ready, Context, Poll};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures_util::future::Either;
use http::{header, HeaderMap, Method, Request, Response, StatusCode, Version};
use http_body::Frame;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::time::{Instant, Sleep};
use tracing::{debug, trace, Instrument};

use super::decode::{ChunkedLimits, DecodeError, Decoded, Decoder};
use super::encode::{self, Framing, Persistence};
use super::io::WriteBuf;
use super::parse::{self, BodyLength, Limits, RequestHead, UpgradeAsk};
use crate::body::{self, Body, Held, Sender};
use crate::config::Config;
use crate::error::{Error, Kind};
use crate::policy::{DeclineReason, Protocol, RemoteAddr, UpgradeDeclined};
use crate::service::{self, HttpService};
use crate::shutdown::Shutdown;
use crate::transport::{poll_read, poll_read_stack};
use crate::upgrade::handoff::{Handoff, Started, Stream1};
use crate::upgrade::{self, stream1};

/// Body frames handled in one poll before yielding, so one connection streaming a
/// large response cannot starve the others on its worker thread.
const MAX_TURNS: usize = 16;

/// Bytes read and discarded after answering with `connection: close`, so the peer
/// sees the response instead of a reset caused by its unread upload.
const LINGER_BYTES: usize = 256 * 1024;

/// How long that lingering read may take.
const LINGER_TIME: Duration = Duration::from_secs(2);

const CONTINUE: &[u8] = b"HTTP/1.1 100 Continue\r\n\r\n";

/// How the HTTP/1 phase of a connection ended.
pub(crate) enum Outcome<I, S: HttpService> {
    Closed,
    Upgrade(Box<Handoff<I, S, S::ResBody>>),
    /// Idle between requests: everything but what waiting needs is freed; the
    /// connection resumes with [`H1::resume`] when bytes arrive.
    Park(Parked<I, S>),
}

/// What an idle (parked) HTTP/1.1 connection keeps: no buffer, no request state.
pub(crate) struct Parked<I, S> {
    pub(crate) io: I,
    pub(crate) svc: S,
    /// Armed for the end of the keep-alive period.
    pub(crate) timer: Pin<Box<Sleep>>,
    /// When the connection went idle.
    pub(crate) since: Instant,
    /// Whether it went idle after a response (not waiting for its first request).
    pub(crate) after_response: bool,
}

pub(crate) struct H1<'a, I, S> {
    io: I,
    rbuf: BytesMut,
    wbuf: WriteBuf,
    svc: S,
    cfg: &'a Config,
    shutdown: &'a Shutdown,
    peer: Option<SocketAddr>,
    timer: Pin<Box<Sleep>>,
    /// The last idle gap was shorter than `idle_release_after`: keep the buffers
    /// through the next one for that long before parking.
    warm: bool,
    /// A response has been written on this connection.
    answered: bool,
    /// The last request said it was the client's last (`connection: close`, or
    /// HTTP/1.0 without keep-alive) and all of it, body included, was read: closing
    /// after it needs no lingering read (see [`H1::close`]).
    client_done: bool,
}

/// What waiting for (the rest of) a request head led to.
enum Next {
    /// More bytes were read: parse again.
    Read,
    TimedOut,
    Closed,
    /// Idle with nothing buffered since `since`: free the buffers (see
    /// [`Outcome::Park`]).
    Park {
        since: Instant,
    },
}

/// What [`H1::wait_head`] keeps across its calls for one request head.
#[derive(Default)]
struct HeadWait {
    /// Which bound the wait is under, and when it ends: None (unset), false idle,
    /// true head.
    armed: Option<(bool, Instant)>,
    /// When the connection went idle, if it did.
    idle_since: Option<Instant>,
}

enum Flow<B> {
    KeepAlive,
    Close,
    /// The upgrade is accepted; the transport and read buffer go with it.
    Upgrade {
        preamble: Bytes,
        stream1: Stream1<B>,
    },
}

/// The future of a request's rarer branches (see `H1::request`).
type BoxFlow<'a, B> = Pin<Box<dyn Future<Output = Result<Flow<B>, Error>> + Send + 'a>>;

/// The future of a response's rarer branches (see `H1::respond`).
type BoxRespond<'f> = Pin<Box<dyn Future<Output = Result<bool, Error>> + Send + 'f>>;

/// What the response must honour of its request.
#[derive(Debug, Clone, Copy)]
struct Reply {
    /// Whether the connection may stay open after this response, as far as the
    /// request (and then the service) said.
    keep_alive: bool,
    /// The request's version: HTTP/1.0 gets no chunked framing.
    version: Version,
    /// A response to HEAD carries no body.
    is_head: bool,
}

/// How a response starts (see `H1::start_response`).
enum Start<B> {
    /// The head is queued; `body` follows under `framing`.
    Body {
        body: B,
        framing: Framing,
        keep_alive: bool,
    },
    /// The client still waits for a `100 Continue` that the response body may
    /// ask for: nothing is queued yet (see `H1::respond_held`).
    Held(HeldResponse<B>),
}

/// A response whose head waits (see [`Start::Held`]).
struct HeldResponse<B> {
    parts: http::response::Parts,
    body: B,
    framing: Framing,
    keep_alive: bool,
    version: Version,
}

enum UpgradeBody {
    Complete(Bytes, Option<HeaderMap>),
    /// Over the bound: what was read so far, to be replayed to the service.
    TooLarge(Bytes),
}

impl<'a, I, S> H1<'a, I, S>
where
    I: AsyncRead + AsyncWrite + Unpin + Send,
    S: HttpService,
{
    pub(crate) fn new(
        io: I,
        rbuf: BytesMut,
        svc: S,
        cfg: &'a Config,
        shutdown: &'a Shutdown,
        peer: Option<SocketAddr>,
    ) -> Self {
        H1 {
            io,
            rbuf,
            wbuf: WriteBuf::default(),
            svc,
            cfg,
            shutdown,
            peer,
            timer: Box::pin(tokio::time::sleep_until(Instant::now())),
            warm: false,
            answered: false,
            client_done: false,
        }
    }

    /// Resumes a parked connection whose client sent `rbuf` after an idle gap.
    pub(crate) fn resume(
        parked: Parked<I, S>,
        rbuf: BytesMut,
        cfg: &'a Config,
        shutdown: &'a Shutdown,
        peer: Option<SocketAddr>,
    ) -> Self {
        // Back to back: the client answered a response quickly. The gap before a
        // connection's first request says nothing about that.
        let warm = parked.after_response && parked.since.elapsed() < cfg.idle_release_after;
        trace!(warm, "resuming a parked connection");
        H1 {
            io: parked.io,
            rbuf,
            wbuf: WriteBuf::default(),
            svc: parked.svc,
            cfg,
            shutdown,
            peer,
            timer: parked.timer,
            warm,
            answered: parked.after_response,
            client_done: false,
        }
    }

    /// Closes a parked connection (keep-alive timeout, shutdown, or the peer left).
    pub(crate) async fn close_parked(
        parked: Parked<I, S>,
        cfg: &'a Config,
        shutdown: &'a Shutdown,
    ) {
        let mut h = H1::resume(parked, BytesMut::new(), cfg, shutdown, None);
        h.close().await;
    }

    pub(crate) async fn run(mut self) -> Result<Outcome<I, S>, Error> {
        let limits = Limits {
            max_head_size: self.cfg.max_head_size,
            max_headers: self.cfg.max_headers,
            max_request_line: self.cfg.max_request_line,
        };
        loop {
            let mut wait = HeadWait::default();
            // Parsed here, not inside the future that reads: a parsed head is a few
            // hundred bytes, and every future output or enum it passed through was
            // one more copy of it per request.
            let mut head = loop {
                if !self.rbuf.is_empty() {
                    match parse::parse_request(&mut self.rbuf, &limits) {
                        Ok(Some(head)) => break head,
                        Ok(None) => {}
                        Err(e) => {
                            debug!(error = %e, status = e.status().as_u16(), "bad request head");
                            self.fail(e.status()).await;
                            return Err(Error::new(Kind::Parse).with(e));
                        }
                    }
                }
                match self.wait_head(&mut wait).await? {
                    Next::Read => {}
                    Next::Park { since } => {
                        trace!("idle: parking");
                        self.timer
                            .as_mut()
                            .reset(since + self.cfg.keep_alive_timeout);
                        return Ok(Outcome::Park(Parked {
                            io: self.io,
                            svc: self.svc,
                            timer: self.timer,
                            since,
                            after_response: self.answered,
                        }));
                    }
                    Next::Closed => {
                        self.close().await;
                        return Ok(Outcome::Closed);
                    }
                    Next::TimedOut => {
                        debug!("request head timed out");
                        self.fail(StatusCode::REQUEST_TIMEOUT).await;
                        return Err(Error::new(Kind::Timeout));
                    }
                }
            };
            let span = tracing::debug_span!(
                "request",
                method = %head.parts.method,
                path = %head.parts.uri.path(),
            );
            // Before the upgrade policy runs, so it can see the peer.
            if let Some(peer) = self.peer {
                head.parts.extensions.insert(RemoteAddr(peer));
            }
            // The common path's future is awaited here, not returned in one type with
            // the rare branches: that would be one more move of it per request.
            // Instrumenting costs a move of the request future and an enter and exit
            // per poll: only worth it when the span records something.
            let flow = if self.is_plain(&head) {
                let decoder = self.body_reader(head.body);
                if span.is_disabled() {
                    // The request, its service future and the response future live
                    // in this loop's own state: no future of their own to build and
                    // move into it (each a copy of about 1 KB per request).
                    let (mut req, mut feeder) = (None, None);
                    let reply =
                        self.prepare(head, decoder, None, false, None, &mut req, &mut feeder);
                    let mut fut = pin!(None);
                    let res =
                        poll_fn(|cx| self.poll_service(&mut req, fut.as_mut(), &mut feeder, cx))
                            .await;
                    // `respond_result`, spelled out: its `Either` costs about 70
                    // instructions per request here (S1 callgrind 7,825 against
                    // 7,895). The service's error is not `Send`: it is not kept
                    // across an await.
                    let start = res
                        .map(|res| self.start_response(res, reply, &mut feeder))
                        .map_err(Into::into);
                    let keep = match start {
                        Ok(Start::Body {
                            body,
                            framing,
                            keep_alive,
                        }) => self.finish(body, framing, keep_alive, &mut feeder).await?,
                        Ok(Start::Held(held)) => self.respond_held(held, &mut feeder).await?,
                        Err(e) => self.respond_failed(e, reply, &mut feeder).await?,
                    };
                    self.flow(keep, reply, &feeder)
                } else {
                    self.dispatch(head, decoder, None, false, None)
                        .instrument(span)
                        .await?
                }
            } else {
                let fut = self.request(head);
                if span.is_disabled() {
                    fut.await?
                } else {
                    fut.instrument(span).await?
                }
            };
            match flow {
                Flow::KeepAlive => {
                    self.answered = true;
                    continue;
                }
                Flow::Close => {
                    self.close().await;
                    return Ok(Outcome::Closed);
                }
                Flow::Upgrade { preamble, stream1 } => {
                    return Ok(Outcome::Upgrade(Box::new(Handoff {
                        io: self.io,
                        svc: self.svc,
                        leftover: self.rbuf.freeze(),
                        preamble,
                        stream1,
                    })));
                }
            }
        }
    }

    /// Waits for more of a request head: flushes pending output first, then reads.
    /// `wait` carries the timer's bound from one call to the next of the same head.
    async fn wait_head(&mut self, wait: &mut HeadWait) -> Result<Next, Error> {
        poll_fn(|cx| {
            // The pipelined batch ends here: write what was answered so far.
            if !self.wbuf.is_empty() {
                ready!(self.wbuf.poll_flush(&mut self.io, cx)).map_err(Error::io)?;
            }
            // Between requests a shutdown closes the connection. Its waker is only
            // registered once the read waits (below): a wait that ends with bytes
            // already there would register it twice per request.
            if self.rbuf.is_empty() && self.shutdown.is_triggered() {
                return Poll::Ready(Ok(Next::Closed));
            }
            match poll_read(&mut self.io, cx, &mut self.rbuf) {
                Poll::Ready(Ok(0)) => {
                    if !self.rbuf.is_empty() {
                        debug!(buffered = self.rbuf.len(), "peer closed mid head");
                    }
                    Poll::Ready(Ok(Next::Closed))
                }
                Poll::Ready(Ok(_)) => Poll::Ready(Ok(Next::Read)),
                Poll::Ready(Err(e)) => Poll::Ready(Err(Error::io(e))),
                Poll::Pending => {
                    // Idle between requests, or slow within one: two bounds.
                    let partial = !self.rbuf.is_empty();
                    if !partial && self.shutdown.poll(cx).is_ready() {
                        return Poll::Ready(Ok(Next::Closed));
                    }
                    if !partial && !self.warm {
                        // Not used back to back: idle now costs no buffer.
                        return Poll::Ready(Ok(Next::Park {
                            since: Instant::now(),
                        }));
                    }
                    let release = self.cfg.idle_release_after;
                    let deadline = match wait.armed {
                        Some((head, deadline)) if head == partial => deadline,
                        _ => {
                            let now = Instant::now();
                            let bound = if partial {
                                self.cfg.header_read_timeout
                            } else {
                                wait.idle_since = Some(now);
                                self.cfg.keep_alive_timeout.min(release)
                            };
                            let deadline = now + bound;
                            wait.armed = Some((partial, deadline));
                            // Resetting the timer costs more than the rest of an idle
                            // wait, and back-to-back requests would pay it for every
                            // one: a timer still due before this deadline is left to
                            // fire, and is moved on then (below).
                            if self.timer.deadline() > deadline {
                                self.timer.as_mut().reset(deadline);
                            }
                            deadline
                        }
                    };
                    loop {
                        ready!(self.timer.as_mut().poll(cx));
                        if self.timer.deadline() >= deadline {
                            break;
                        }
                        // It fired for an earlier bound: wait for this one.
                        self.timer.as_mut().reset(deadline);
                    }
                    if partial {
                        return Poll::Ready(Ok(Next::TimedOut));
                    }
                    if let Some(since) = wait
                        .idle_since
                        .filter(|_| release < self.cfg.keep_alive_timeout)
                    {
                        return Poll::Ready(Ok(Next::Park { since }));
                    }
                    trace!("keep-alive timeout");
                    Poll::Ready(Ok(Next::Closed))
                }
            }
        })
        .await
    }

    /// Whether `head` takes the common path: no upgrade asked for, and no declared
    /// body over the limit.
    fn is_plain(&self, head: &RequestHead) -> bool {
        head.upgrade == UpgradeAsk::None && self.body_over_limit(head).is_none()
    }

    /// The configured limit, when the body `head` declares is over it.
    fn body_over_limit(&self, head: &RequestHead) -> Option<u64> {
        match (self.cfg.max_request_body_size, head.body) {
            (Some(limit), BodyLength::Length(n)) if n > limit => Some(limit),
            _ => None,
        }
    }

    fn body_reader(&self, body: BodyLength) -> BodyReader {
        let decoder = match body {
            BodyLength::Length(n) => Decoder::length(n),
            BodyLength::Chunked => Decoder::chunked(ChunkedLimits::default()),
        };
        BodyReader::new(decoder, self.cfg)
    }

    /// Serves a request off the common path (see [`is_plain`](Self::is_plain)): a
    /// body over the limit, or an upgrade. Boxed, so these states do not inflate
    /// the future of a plain request, which `run` builds and moves on every call.
    fn request(&mut self, head: RequestHead) -> BoxFlow<'_, S::ResBody> {
        if let Some(limit) = self.body_over_limit(&head) {
            if let BodyLength::Length(n) = head.body {
                debug!(length = n, limit, "request body over the limit");
            }
            return Box::pin(async move {
                self.fail(StatusCode::PAYLOAD_TOO_LARGE).await;
                Err(Error::new(Kind::Parse).with("request body too large"))
            });
        }
        let decoder = self.body_reader(head.body);
        if head.upgrade != UpgradeAsk::None {
            return Box::pin(self.upgrade_request(head, decoder));
        }
        Box::pin(self.dispatch(head, decoder, None, false, None))
    }

    /// A request that asks for `Upgrade: h2c` (or `h2`): switch, or answer it over
    /// HTTP/1.1 with the reason it was declined.
    async fn upgrade_request(
        &mut self,
        head: RequestHead,
        mut decoder: BodyReader,
    ) -> Result<Flow<S::ResBody>, Error> {
        let cfg = self.cfg;
        let mut continue_sent = false;
        let mut prefix = None;
        let reason = match upgrade::prepare(&head, cfg) {
            Ok(preamble) => {
                // RFC 9110 §10.1.1: the client waits for 100 before the body, which
                // must be read before the 101 (RFC 7540 §3.2).
                if head.expect_continue && !decoder.is_end() {
                    self.wbuf.flat().extend_from_slice(CONTINUE);
                    continue_sent = true;
                }
                if cfg.stream_upgrade_body && !decoder.is_end() {
                    return self.streamed_upgrade(head, decoder, preamble).await;
                }
                match self.read_upgrade_body(&mut decoder).await {
                    Ok(UpgradeBody::Complete(body, trailers)) => {
                        poll_fn(|cx| self.wbuf.poll_flush(&mut self.io, cx))
                            .await
                            .map_err(Error::io)?;
                        debug!("switching to h2c");
                        let content_length = match head.body {
                            BodyLength::Length(n) => Some(n),
                            BodyLength::Chunked => None,
                        };
                        return Ok(Flow::Upgrade {
                            preamble,
                            stream1: Stream1::Buffered {
                                body,
                                trailers,
                                content_length,
                            },
                        });
                    }
                    Ok(UpgradeBody::TooLarge(read)) => {
                        prefix = Some(read);
                        DeclineReason::BodyTooLarge {
                            limit: cfg.max_upgrade_body_size,
                        }
                    }
                    Err(e) => {
                        debug!(error = %e, "upgrade request body failed");
                        if e.is_parse() {
                            self.fail(StatusCode::BAD_REQUEST).await;
                        }
                        return Err(e);
                    }
                }
            }
            Err(reason) => reason,
        };
        debug!(%reason, "h2c upgrade declined");
        self.dispatch(head, decoder, Some(reason), continue_sent, prefix)
            .await
    }

    /// An upgrade whose body streams to the service (see
    /// [`Builder::stream_upgrade_body`](crate::Builder::stream_upgrade_body)).
    ///
    /// ```text
    ///  client body ──HTTP/1.1──> feeder ──> service ──> response held (≤ hold bound)
    ///  last body byte read: 101, then the held (or still pending) response as stream 1
    ///  held response over the bound, or body dropped unread: answer over HTTP/1.1
    /// ```
    async fn streamed_upgrade(
        &mut self,
        mut head: RequestHead,
        reader: BodyReader,
        preamble: Bytes,
    ) -> Result<Flow<S::ResBody>, Error> {
        let mut view = match stream1::request_view(&head.parts) {
            Ok(v) => v,
            Err(e) => {
                // prepare() encoded the same head, so this is not expected; stay on
                // HTTP/1.1 rather than guess.
                let reason = DeclineReason::InvalidRequest(e.to_string());
                return self.dispatch(head, reader, Some(reason), true, None).await;
            }
        };
        let is_head = head.parts.method == Method::HEAD;
        view.extensions = std::mem::take(&mut head.parts.extensions);
        view.extensions.insert(Protocol::H2cUpgrade);
        let (tx, rx) = body::channel(reader.remaining());
        let mut feeder = Feeder {
            tx: Some(tx),
            decoder: reader,
            prefix: None,
            expect: Expect::Done,
            broken: false,
        };
        let req = Request::from_parts(view, Body::h1(rx));
        let mut svc = self.svc.clone();
        let mut fut: Pin<Box<dyn Future<Output = ServiceResult<S::ResBody>> + Send>> =
            Box::pin(async move { service::call(&mut svc, req).await });
        let hold = self.cfg.max_upgrade_response_hold as u64;
        let mut res: Option<Response<Held<S::ResBody>>> = None;

        let switch = {
            let H1 { io, rbuf, wbuf, .. } = self;
            poll_fn(|cx| loop {
                let _ = feeder.poll_feed(cx, io, rbuf, wbuf);
                if feeder.broken {
                    return Poll::Ready(false);
                }
                if feeder.tx.is_none() {
                    // Either the whole body was read (switch), or the service dropped
                    // it unread (it cannot be stream 1's request any more).
                    return Poll::Ready(feeder.decoder.is_end());
                }
                if res.is_none() {
                    res = Some(match ready!(fut.as_mut().poll(cx)) {
                        Ok(r) => r.map(|b| Held::new(Some(b))),
                        Err(e) => server_error(e),
                    });
                }
                let Some(r) = res.as_mut() else {
                    return Poll::Pending;
                };
                if r.body().held() > hold {
                    return Poll::Ready(false);
                }
                match r.body_mut().poll_hold(cx) {
                    Poll::Ready(true) => continue,
                    Poll::Ready(false) | Poll::Pending => return Poll::Pending,
                }
            })
            .await
        };

        if switch {
            poll_fn(|cx| self.wbuf.poll_flush(&mut self.io, cx))
                .await
                .map_err(Error::io)?;
            debug!("request body complete; switching to h2c");
            let started = match res {
                Some(r) => Started::Ready(r),
                None => Started::Pending(fut),
            };
            return Ok(Flow::Upgrade {
                preamble,
                stream1: Stream1::Started(started),
            });
        }

        debug!("streamed upgrade answered over http/1.1");
        let res = match res {
            Some(r) => r,
            None => {
                let H1 { io, rbuf, wbuf, .. } = self;
                poll_fn(|cx| {
                    let _ = feeder.poll_feed(cx, io, rbuf, wbuf);
                    fut.as_mut().poll(cx)
                })
                .await
                .map_or_else(server_error, |r| r.map(|b| Held::new(Some(b))))
            }
        };
        let reply = Reply {
            keep_alive: head.keep_alive,
            version: Version::HTTP_11,
            is_head,
        };
        let mut feeder = Some(feeder);
        let keep = self.respond(res, reply, &mut feeder).await?;
        Ok(self.flow(keep, reply, &feeder))
    }

    /// Reads a whole upgrade request body, up to the configured bound.
    async fn read_upgrade_body(&mut self, decoder: &mut BodyReader) -> Result<UpgradeBody, Error> {
        let limit = self.cfg.max_upgrade_body_size;
        let mut body = BytesMut::new();
        let mut trailers = None;
        loop {
            let step = poll_fn(|cx| {
                if !self.wbuf.is_empty() {
                    ready!(self.wbuf.poll_flush(&mut self.io, cx)).map_err(Error::io)?;
                }
                decoder.poll_next(&mut self.io, &mut self.rbuf, cx)
            })
            .await?;
            match step {
                Decoded::Data(d) => {
                    body.extend_from_slice(&d);
                    if body.len() > limit {
                        return Ok(UpgradeBody::TooLarge(body.freeze()));
                    }
                }
                Decoded::Trailers(t) => trailers = Some(t),
                Decoded::End => return Ok(UpgradeBody::Complete(body.freeze(), trailers)),
            }
        }
    }

    /// Serves one request over HTTP/1.1: builds the service's request, then
    /// [`serve`](Self::serve)s it.
    fn dispatch(
        &mut self,
        head: RequestHead,
        decoder: BodyReader,
        declined: Option<DeclineReason>,
        continue_sent: bool,
        prefix: Option<Bytes>,
    ) -> impl Future<Output = Result<Flow<S::ResBody>, Error>> + Send + use<'_, 'a, I, S> {
        let (mut req, mut feeder) = (None, None);
        let reply = self.prepare(
            head,
            decoder,
            declined,
            continue_sent,
            prefix,
            &mut req,
            &mut feeder,
        );
        self.serve(req, feeder, reply)
    }

    /// Puts the service's request for `head` in `req` and the feeder of its body
    /// (if it has one) in `feeder`, in place: both are a few hundred bytes, and each
    /// return through a value is one more copy. Returns what the response must
    /// honour.
    #[allow(clippy::too_many_arguments)]
    fn prepare(
        &self,
        head: RequestHead,
        decoder: BodyReader,
        declined: Option<DeclineReason>,
        continue_sent: bool,
        prefix: Option<Bytes>,
        req: &mut Option<Request<Body>>,
        feeder: &mut Option<Feeder>,
    ) -> Reply {
        let RequestHead {
            mut parts,
            keep_alive,
            expect_continue,
            ..
        } = head;
        let version = parts.version;
        let is_head = parts.method == Method::HEAD;

        let body = if decoder.is_end() && prefix.is_none() {
            Body::empty()
        } else {
            let prefix_len = prefix.as_ref().map_or(0, |p| p.len() as u64);
            let (tx, rx) = body::channel(decoder.remaining().map(|r| r + prefix_len));
            let expect = if expect_continue && !continue_sent {
                Expect::Pending
            } else {
                Expect::Done
            };
            *feeder = Some(Feeder {
                tx: Some(tx),
                decoder,
                prefix,
                expect,
                broken: false,
            });
            Body::h1(rx)
        };

        // No `Protocol` extension: the request's version says HTTP/1 (see
        // `Protocol::of`), and an insert would cost an allocation per request.
        if let Some(reason) = declined {
            parts.extensions.insert(UpgradeDeclined { reason });
        }
        *req = Some(Request::from_parts(parts, body));
        Reply {
            keep_alive,
            version,
            is_head,
        }
    }

    /// Calls the service with `req`, feeding it the request body meanwhile, and
    /// writes its response.
    // Not an `async fn`: see the note inside.
    #[allow(clippy::manual_async_fn)]
    fn serve(
        &mut self,
        mut req: Option<Request<Body>>,
        mut feeder: Option<Feeder>,
        reply: Reply,
    ) -> impl Future<Output = Result<Flow<S::ResBody>, Error>> + Send + use<'_, 'a, I, S> {
        // An async block, not an `async fn`: the arguments of an `async fn` are moved
        // into locals when it starts, and its state keeps both copies.
        async move {
            let mut fut = pin!(None);
            let res =
                poll_fn(|cx| self.poll_service(&mut req, fut.as_mut(), &mut feeder, cx)).await;
            let keep = self.respond_result(res, reply, &mut feeder).await?;
            Ok(self.flow(keep, reply, &feeder))
        }
    }

    /// Where an answered request leaves the connection. On a close, notes whether
    /// the client said the request was its last and all of it was read (see
    /// `client_done`).
    fn flow<B>(&mut self, keep: bool, reply: Reply, feeder: &Option<Feeder>) -> Flow<B> {
        self.client_done =
            !keep && !reply.keep_alive && feeder.as_ref().is_none_or(|f| f.decoder.is_end());
        if keep {
            Flow::KeepAlive
        } else {
            Flow::Close
        }
    }

    /// Polls the service for the response to `req` (see [`service::poll_call`]),
    /// feeding it the request body meanwhile.
    fn poll_service(
        &mut self,
        req: &mut Option<Request<Body>>,
        fut: Pin<&mut Option<S::Future>>,
        feeder: &mut Option<Feeder>,
        cx: &mut Context<'_>,
    ) -> Poll<Result<Response<S::ResBody>, S::Error>> {
        let H1 {
            io,
            rbuf,
            wbuf,
            svc,
            ..
        } = self;
        if let Some(f) = feeder.as_mut() {
            let _ = f.poll_feed(cx, io, rbuf, wbuf);
        }
        service::poll_call(svc, req, fut, cx)
    }

    /// [`respond`](Self::respond) with what the service gave: its response, or a
    /// `500` for its error (and then the connection closes).
    fn respond_result<'f>(
        &'f mut self,
        res: Result<Response<S::ResBody>, S::Error>,
        reply: Reply,
        feeder: &'f mut Option<Feeder>,
    ) -> Either<BoxRespond<'f>, impl Future<Output = Result<bool, Error>> + Send + use<'f, 'a, I, S>>
    {
        match res {
            Ok(res) => self.respond(res, reply, feeder),
            Err(e) => Either::Left(self.respond_failed(e.into(), reply, feeder)),
        }
    }

    /// Answers `500` for a service that failed, and closes.
    fn respond_failed<'f>(
        &'f mut self,
        e: crate::error::BoxError,
        reply: Reply,
        feeder: &'f mut Option<Feeder>,
    ) -> BoxRespond<'f> {
        // Boxed: a second body type would double the response future's size. It takes
        // the place of respond's own boxed branch, so the common future is not
        // wrapped (and moved) once more.
        let reply = Reply {
            keep_alive: false,
            ..reply
        };
        let res = server_error::<S::ResBody>(e);
        Box::pin(self.respond(res, reply, feeder))
    }

    /// Writes the response, keeps feeding the request body meanwhile, then settles
    /// what is left of the request body. Its future resolves to whether the
    /// connection stays open.
    fn respond<'f, B>(
        &'f mut self,
        res: Response<B>,
        reply: Reply,
        feeder: &'f mut Option<Feeder>,
    ) -> Either<
        BoxRespond<'f>,
        impl Future<Output = Result<bool, Error>> + Send + use<'f, 'a, I, S, B>,
    >
    where
        B: http_body::Body<Data = Bytes> + Send + 'f,
        B::Error: Into<crate::error::BoxError>,
    {
        match self.start_response(res, reply, feeder) {
            Start::Body {
                body,
                framing,
                keep_alive,
            } => Either::Right(self.finish(body, framing, keep_alive, feeder)),
            Start::Held(held) => Either::Left(self.respond_held(held, feeder)),
        }
    }

    /// Settles the response's framing and, unless a 100-continue is still owed (see
    /// [`Start::Held`]), queues its head.
    fn start_response<B>(
        &mut self,
        res: Response<B>,
        reply: Reply,
        feeder: &mut Option<Feeder>,
    ) -> Start<B>
    where
        B: http_body::Body<Data = Bytes>,
    {
        let (parts, body) = res.into_parts();
        let status = parts.status;
        let version = reply.version;
        let (declared, close) = framing_fields(&parts.headers);
        let no_body = reply.is_head
            || status.is_informational()
            || status == StatusCode::NO_CONTENT
            || status == StatusCode::NOT_MODIFIED;
        let framing = if no_body {
            let length = if status == StatusCode::NOT_MODIFIED {
                declared
            } else {
                declared.or(body.size_hint().exact())
            };
            Framing::NoBody { length }
        } else if let Some(n) = declared.or(body.size_hint().exact()) {
            Framing::Length(n)
        } else if version == Version::HTTP_11 {
            Framing::Chunked
        } else {
            Framing::Close
        };

        let mut keep_alive = reply.keep_alive && !close;
        if self.shutdown.is_triggered() || framing == Framing::Close {
            keep_alive = false;
        }
        // RFC 9110 §10.1.1: a client that sent `Expect: 100-continue` holds its body
        // back until it sees a 100 or a final status, and no 100 may follow the final
        // head. If the body has not been asked for yet, poll the response body once:
        // when that asks for the request body (an echo), the 100 goes out ahead of the
        // head; otherwise the body is refused.
        let awaiting = feeder
            .as_ref()
            .is_some_and(|f| f.expect == Expect::Pending && !f.decoder.is_end());
        if awaiting && !no_body {
            return Start::Held(HeldResponse {
                parts,
                body,
                framing,
                keep_alive,
                version,
            });
        }
        if let Some(f) = feeder.as_mut() {
            f.settle_expect(&mut self.wbuf);
        }
        let keep_alive = self.write_head(&parts, version, framing, keep_alive, feeder);
        Start::Body {
            body,
            framing,
            keep_alive,
        }
    }

    /// The rest of a [`Start::Held`] response. Boxed, as it writes another body type
    /// (see `serve`).
    fn respond_held<'f, B>(
        &'f mut self,
        held: HeldResponse<B>,
        feeder: &'f mut Option<Feeder>,
    ) -> BoxRespond<'f>
    where
        B: http_body::Body<Data = Bytes> + Send + 'f,
        B::Error: Into<crate::error::BoxError>,
    {
        Box::pin(async move {
            let HeldResponse {
                parts,
                body,
                framing,
                keep_alive,
                version,
            } = held;
            let mut held = Held::new(Some(body));
            poll_fn(|cx| {
                let _ = held.poll_hold(cx);
                Poll::Ready(())
            })
            .await;
            if let Some(f) = feeder.as_mut() {
                f.settle_expect(&mut self.wbuf);
            }
            let keep_alive = self.write_head(&parts, version, framing, keep_alive, feeder);
            self.finish(held, framing, keep_alive, feeder).await
        })
    }

    /// Queues the response head once the framing is settled. Returns whether the
    /// connection stays open.
    fn write_head(
        &mut self,
        parts: &http::response::Parts,
        version: Version,
        framing: Framing,
        mut keep_alive: bool,
        feeder: &Option<Feeder>,
    ) -> bool {
        if let Some(f) = feeder {
            // A refused body may or may not follow: the connection cannot be reused
            // safely, nor after a broken body.
            if f.broken || f.expect == Expect::Refused {
                keep_alive = false;
            }
        }
        let persistence = if !keep_alive {
            Persistence::Close
        } else if version == Version::HTTP_10 {
            Persistence::KeepAlive10
        } else {
            Persistence::Default
        };
        encode::write_head(
            self.wbuf.flat(),
            parts.status,
            &parts.headers,
            framing,
            persistence,
        );
        trace!(
            status = parts.status.as_u16(),
            ?framing,
            keep_alive,
            "response head"
        );
        keep_alive
    }

    /// Writes the response body after its head, then settles what is left of the
    /// request body. Returns whether the connection stays open.
    // Not an `async fn`: see the note in `serve`.
    #[allow(clippy::manual_async_fn)]
    fn finish<'f, B>(
        &'f mut self,
        body: B,
        framing: Framing,
        keep_alive: bool,
        feeder: &'f mut Option<Feeder>,
    ) -> impl Future<Output = Result<bool, Error>> + use<'f, 'a, I, S, B>
    where
        B: http_body::Body<Data = Bytes> + 'f,
        B::Error: Into<crate::error::BoxError>,
    {
        async move {
            if matches!(framing, Framing::NoBody { .. }) {
                // Whatever the body holds is let go before the request body is
                // settled.
                drop(body);
            } else {
                let mut body = pin!(body);
                let mut sent = 0;
                poll_fn(|cx| self.poll_body(body.as_mut(), framing, &mut sent, feeder, cx))
                    .await
                    .map_err(|e| self.body_failed(e))?;
            }
            if feeder.is_none() {
                return Ok(keep_alive);
            }
            self.settle(feeder, keep_alive).await
        }
    }

    /// The response body failed after its head went out: no error response can
    /// follow. Closing without the end of the framing tells the client the body is
    /// incomplete.
    fn body_failed(&mut self, e: Error) -> Error {
        debug!(error = %e, "response body failed");
        self.wbuf.clear();
        e
    }

    /// Settles the rest of the request body after the response. Returns whether the
    /// connection stays open.
    async fn settle(
        &mut self,
        feeder: &mut Option<Feeder>,
        keep_alive: bool,
    ) -> Result<bool, Error> {
        if let Some(f) = feeder {
            f.tx = None;
            if !f.decoder.is_end() {
                if f.broken || !keep_alive || f.expect != Expect::Done {
                    return Ok(false);
                }
                let limit = self.cfg.max_drain_size;
                let drained = {
                    let H1 { io, rbuf, .. } = self;
                    poll_fn(|cx| f.poll_drain(cx, io, rbuf, limit)).await
                };
                if !drained {
                    debug!("unread request body over the drain bound; closing");
                    return Ok(false);
                }
            }
        }
        Ok(keep_alive)
    }

    /// Writes the response body (`sent` bytes of it so far) to the write buffer,
    /// flushing past the high-water mark, and feeds the request body meanwhile.
    fn poll_body<B>(
        &mut self,
        mut body: Pin<&mut B>,
        framing: Framing,
        sent: &mut u64,
        feeder: &mut Option<Feeder>,
        cx: &mut Context<'_>,
    ) -> Poll<Result<(), Error>>
    where
        B: http_body::Body<Data = Bytes>,
        B::Error: Into<crate::error::BoxError>,
    {
        // At least one byte, so a zero setting means "write every piece".
        let high_water = self.cfg.max_write_buffer_size.max(1);
        let H1 { io, rbuf, wbuf, .. } = self;
        for _ in 0..MAX_TURNS {
            if let Some(f) = feeder.as_mut() {
                let _ = f.poll_feed(cx, io, rbuf, wbuf);
            }
            if wbuf.len() >= high_water {
                ready!(wbuf.poll_flush(io, cx)).map_err(Error::io)?;
            }
            let frame = match body.as_mut().poll_frame(cx) {
                Poll::Ready(Some(Ok(frame))) => frame,
                Poll::Ready(Some(Err(e))) => {
                    return Poll::Ready(Err(Error::new(Kind::Body).with(e)));
                }
                Poll::Ready(None) => {
                    return Poll::Ready(finish_body(wbuf, framing, *sent, None));
                }
                Poll::Pending => {
                    // Let what is ready reach the client while the body waits.
                    if !wbuf.is_empty() {
                        if let Poll::Ready(Err(e)) = wbuf.poll_flush(io, cx) {
                            return Poll::Ready(Err(Error::io(e)));
                        }
                    }
                    return Poll::Pending;
                }
            };
            match frame.into_data() {
                Ok(data) => {
                    if data.is_empty() {
                        continue;
                    }
                    *sent += data.len() as u64;
                    match framing {
                        Framing::Length(n) if *sent > n => {
                            return Poll::Ready(Err(Error::new(Kind::Body)
                                .with("response body longer than its content-length")));
                        }
                        Framing::Chunked => {
                            encode::chunk_head(wbuf.flat(), data.len());
                            wbuf.push(data);
                            wbuf.flat().extend_from_slice(b"\r\n");
                        }
                        _ => wbuf.push(data),
                    }
                }
                Err(frame) => {
                    if let Ok(trailers) = frame.into_trailers() {
                        return Poll::Ready(finish_body(wbuf, framing, *sent, Some(&trailers)));
                    }
                }
            }
        }
        // Yield after a bounded number of frames (see MAX_TURNS).
        cx.waker().wake_by_ref();
        Poll::Pending
    }

    /// Writes a status-only response with `connection: close` and closes, unless the
    /// transport is already gone. Nothing of another response may be in flight.
    async fn fail(&mut self, status: StatusCode) {
        encode::write_error(self.wbuf.flat(), status);
        self.close().await;
    }

    /// Flushes what is buffered, closes the write side, and reads what the client
    /// still sends for a short, bounded while so the response is not lost to a reset
    /// (RFC 9112 §9.6).
    ///
    /// The read is skipped when the client said its request was its last and all
    /// of it was read, with nothing after it: RFC 9112 §9.6 forbids it to send more,
    /// so nothing is left unread to cause a reset. That is the common close (a
    /// client's `connection: close`), and the lingering read cost a wake-up, a
    /// timer and a `recvfrom` per connection. As Go's `net/http`, which lingers
    /// only when it left request body unread.
    async fn close(&mut self) {
        let H1 {
            io,
            wbuf,
            rbuf,
            client_done,
            ..
        } = self;
        if poll_fn(|cx| wbuf.poll_flush(io, cx)).await.is_err() {
            return;
        }
        if io.shutdown().await.is_err() {
            return;
        }
        if *client_done && rbuf.is_empty() {
            trace!("client's last request read in full: closing without lingering");
            return;
        }
        // Nothing read now is used: drop the buffer, read through the stack.
        *rbuf = BytesMut::new();
        let linger = async {
            let mut seen = 0;
            loop {
                match poll_fn(|cx| poll_read_stack(io, cx, |_| {})).await {
                    Ok(n) if n > 0 && seen < LINGER_BYTES => seen += n,
                    _ => break,
                }
            }
        };
        let _ = tokio::time::timeout(LINGER_TIME, linger).await;
    }
}

type ServiceResult<B> = Result<Response<B>, crate::error::BoxError>;

/// The response for a service that failed: `500`, no body.
fn server_error<B>(e: crate::error::BoxError) -> Response<Held<B>>
where
    B: http_body::Body<Data = Bytes>,
    B::Error: Into<crate::error::BoxError>,
{
    debug!(error = %e, "service error");
    let mut r = Response::new(Held::new(None));
    *r.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
    r
}

fn finish_body(
    wbuf: &mut WriteBuf,
    framing: Framing,
    sent: u64,
    trailers: Option<&HeaderMap>,
) -> Result<(), Error> {
    match framing {
        Framing::Chunked => encode::chunked_end(wbuf.flat(), trailers),
        Framing::Length(n) if sent != n => {
            return Err(
                Error::new(Kind::Body).with("response body shorter than its content-length")
            );
        }
        _ => {}
    }
    Ok(())
}

/// What the service's fields say about the framing: a single valid Content-Length,
/// if any, and whether `Connection` lists `close`. One pass over the fields: a
/// response has few, and each lookup by name would hash.
fn framing_fields(headers: &HeaderMap) -> (Option<u64>, bool) {
    let mut length = None;
    let mut lengths = 0;
    let mut close = false;
    for (name, value) in headers {
        if name == header::CONTENT_LENGTH {
            lengths += 1;
            length = value.to_str().ok().and_then(|v| v.trim().parse().ok());
        } else if name == header::CONNECTION && !close {
            close = parse::list(value.as_bytes()).any(|t| t.eq_ignore_ascii_case(b"close"));
        }
    }
    (length.filter(|_| lengths == 1), close)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    /// The client waits for `100 Continue` before sending the body.
    Pending,
    /// No expectation, or the 100 was sent.
    Done,
    /// A final non-2xx status went out instead of the 100: the body is not wanted.
    Refused,
}

/// Moves the request body from the socket into the service's [`Body`], one piece
/// per request from the service.
struct Feeder {
    /// None once the service's body is gone or complete.
    tx: Option<Sender>,
    decoder: BodyReader,
    /// Bytes read before the service was called (a declined upgrade's body).
    prefix: Option<Bytes>,
    expect: Expect,
    /// The body's framing failed or the peer vanished mid-body.
    broken: bool,
}

impl Feeder {
    /// Feeds while the service wants more. Ready once there is nothing more to do.
    fn poll_feed<I: AsyncRead + AsyncWrite + Unpin>(
        &mut self,
        cx: &mut Context<'_>,
        io: &mut I,
        rbuf: &mut BytesMut,
        wbuf: &mut WriteBuf,
    ) -> Poll<()> {
        loop {
            let Some(tx) = self.tx.as_mut() else {
                return Poll::Ready(());
            };
            match tx.poll_want(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Err(())) => {
                    // The service dropped the body: stop reading it.
                    self.tx = None;
                    return Poll::Ready(());
                }
                Poll::Ready(Ok(())) => {}
            }
            if self.expect == Expect::Pending {
                // RFC 9110 §10.1.1: the service asked for the body; invite it.
                wbuf.flat().extend_from_slice(CONTINUE);
                self.expect = Expect::Done;
            }
            if !wbuf.is_empty() {
                match wbuf.poll_flush(io, cx) {
                    Poll::Ready(Ok(())) => {}
                    Poll::Ready(Err(e)) => {
                        self.fail(Error::io(e));
                        return Poll::Ready(());
                    }
                    Poll::Pending => return Poll::Pending,
                }
            }
            if let Some(p) = self.prefix.take() {
                tx.send(Frame::data(p));
                continue;
            }
            match self.decoder.poll_next(io, rbuf, cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Ok(Decoded::Data(d))) => tx.send(Frame::data(d)),
                Poll::Ready(Ok(Decoded::Trailers(t))) => tx.send(Frame::trailers(t)),
                Poll::Ready(Ok(Decoded::End)) => {
                    if let Some(tx) = self.tx.take() {
                        tx.finish();
                    }
                    return Poll::Ready(());
                }
                Poll::Ready(Err(e)) => {
                    debug!(error = %e, "request body failed");
                    self.fail(e);
                    return Poll::Ready(());
                }
            }
        }
    }

    /// Decides `Expect: 100-continue` just before the final head is queued: invite
    /// the body if it has been asked for, refuse it otherwise.
    fn settle_expect(&mut self, wbuf: &mut WriteBuf) {
        if self.expect != Expect::Pending || self.decoder.is_end() {
            return;
        }
        if self.tx.as_ref().is_some_and(Sender::is_wanted) {
            wbuf.flat().extend_from_slice(CONTINUE);
            self.expect = Expect::Done;
        } else {
            self.refuse();
        }
    }

    /// The final response refused the body (see [`Expect::Refused`]): a reader of it
    /// gets an error instead of waiting for bytes the client may never send.
    fn refuse(&mut self) {
        self.expect = Expect::Refused;
        if let Some(tx) = self.tx.take() {
            tx.abort(Error::new(Kind::Incomplete).with("request body refused before it was sent"));
        }
    }

    fn fail(&mut self, e: Error) {
        self.broken = true;
        if let Some(tx) = self.tx.take() {
            tx.abort(e);
        }
    }

    /// Reads and discards the rest of the body. Ready(true) when it ended within
    /// `limit` bytes, Ready(false) when it did not or failed.
    fn poll_drain<I: AsyncRead + Unpin>(
        &mut self,
        cx: &mut Context<'_>,
        io: &mut I,
        rbuf: &mut BytesMut,
        limit: u64,
    ) -> Poll<bool> {
        if self.decoder.remaining().is_some_and(|r| r > limit) {
            return Poll::Ready(false);
        }
        let mut seen = 0u64;
        loop {
            match ready!(self.decoder.poll_next(io, rbuf, cx)) {
                Ok(Decoded::Data(d)) => {
                    seen += d.len() as u64;
                    if seen > limit {
                        return Poll::Ready(false);
                    }
                }
                Ok(Decoded::Trailers(_)) => {}
                Ok(Decoded::End) => return Poll::Ready(true),
                Err(_) => return Poll::Ready(false),
            }
        }
    }
}

/// Reads one request body: the decoder, plus the bounds on reading it (progress
/// timeout, size limit).
struct BodyReader {
    decoder: Decoder,
    timeout: Duration,
    /// Armed the first time a read has to wait; see `poll_next`.
    timer: Option<Pin<Box<Sleep>>>,
    /// Bytes arrived since the timer was last armed.
    progressed: bool,
    limit: Option<u64>,
    seen: u64,
}

impl BodyReader {
    fn new(decoder: Decoder, cfg: &Config) -> Self {
        BodyReader {
            decoder,
            timeout: cfg.body_read_timeout,
            timer: None,
            progressed: false,
            limit: cfg.max_request_body_size,
            seen: 0,
        }
    }

    fn is_end(&self) -> bool {
        self.decoder.is_end()
    }

    fn remaining(&self) -> Option<u64> {
        self.decoder.remaining()
    }

    /// Decodes the next piece of the body, reading from the socket when the buffer
    /// holds too little. The end of the stream before the end of the body, a body
    /// over the limit, and a wait of a whole timeout with no byte arriving are
    /// errors.
    fn poll_next<I: AsyncRead + Unpin>(
        &mut self,
        io: &mut I,
        rbuf: &mut BytesMut,
        cx: &mut Context<'_>,
    ) -> Poll<Result<Decoded, Error>> {
        loop {
            match self.decoder.decode(rbuf) {
                Ok(Some(d)) => {
                    if let Decoded::Data(data) = &d {
                        self.seen += data.len() as u64;
                        if self.limit.is_some_and(|l| self.seen > l) {
                            return Poll::Ready(Err(
                                Error::new(Kind::Parse).with("request body too large")
                            ));
                        }
                    }
                    return Poll::Ready(Ok(d));
                }
                Ok(None) => {}
                Err(e) => return Poll::Ready(Err(decode_error(e))),
            }
            match poll_read(io, cx, rbuf) {
                Poll::Ready(Ok(0)) => return Poll::Ready(Err(Error::new(Kind::Incomplete))),
                Poll::Ready(Ok(_)) => self.progressed = true,
                Poll::Ready(Err(e)) => return Poll::Ready(Err(Error::io(e))),
                Poll::Pending => return self.poll_stall(cx),
            }
        }
    }

    /// The read is waiting. The timer is armed once and re-armed only when it fires
    /// after some progress, so a flowing body costs no timer work per read; a stalled
    /// one fails within two timeouts at most.
    fn poll_stall(&mut self, cx: &mut Context<'_>) -> Poll<Result<Decoded, Error>> {
        if self.timer.is_none() {
            self.progressed = false;
            self.timer = Some(Box::pin(tokio::time::sleep(self.timeout)));
        }
        let Some(timer) = self.timer.as_mut() else {
            return Poll::Pending;
        };
        loop {
            ready!(timer.as_mut().poll(cx));
            if !self.progressed {
                debug!("request body stalled");
                return Poll::Ready(Err(Error::new(Kind::Timeout).with("request body stalled")));
            }
            self.progressed = false;
            timer.as_mut().reset(Instant::now() + self.timeout);
        }
    }
}

fn decode_error(e: DecodeError) -> Error {
    Error::new(Kind::Parse).with(e)
}
