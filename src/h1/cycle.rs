//! The HTTP/1.1 connection loop: wait for a request head, route it, call the
//! service, write the response, and again, until the connection closes, parks
//! or is upgraded.
//!
//! One request at a time, in order (RFC 9112 §9.3.2): the head is parsed from the
//! read buffer, the service is called, and while its future and then its response
//! body are polled, the request body is fed from the socket into the request's
//! [`Body`](crate::Body) only as fast as the service reads it. Responses to
//! pipelined requests are batched: the output is flushed when the next head is not
//! already buffered.

use std::future::{poll_fn, Future};
use std::pin::{pin, Pin};
use std::task::{ready, Poll};

use bytes::{Bytes, BytesMut};
use http::Request;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::time::Instant;
use tracing::{debug, trace, Span};

use super::dispatch::{flow, Call, Route, Routed};
use super::parse::{self, error_status, Limits};
use super::state::{Closing, Flow, Handover, Outcome, Pace, Parked, H1};
use crate::body::Body;
use crate::config::Config;
use crate::error::{Error, Kind};
use crate::policy::{DeclineReason, RemoteAddr};
use crate::read::poll_read;
use crate::service::HttpService;
use crate::shutdown::Shutdown;
use crate::upgrade::handoff::{Handoff, Stream1};

/// What waiting for (the rest of) a request head led to.
enum Next {
    /// More bytes were read: parse again.
    Read,
    TimedOut,
    /// To be closed, ending its read side as said.
    Closed(Closing),
    /// Idle with nothing buffered since `since`: free the buffers (see
    /// [`Outcome::Park`]).
    Park {
        since: Instant,
    },
}

/// The bound a wait for one request head is under, kept by [`H1::wait_head`]
/// from one call to the next of the same head.
#[derive(Debug, Clone, Copy)]
enum HeadWait {
    /// Not armed yet.
    Unarmed,
    /// Nothing of the head has arrived since `since`: the idle bound (the
    /// keep-alive timeout, or the release of the buffers if that comes first).
    Idle { since: Instant, until: Instant },
    /// Part of the head has arrived: the header read timeout.
    Head { until: Instant },
}

impl<'a, I, S> H1<'a, I, S>
where
    I: AsyncRead + AsyncWrite + Unpin + Send,
    S: HttpService,
{
    /// Closes a parked connection (keep-alive timeout, shutdown, or the peer left).
    pub(crate) async fn close_parked(
        parked: Parked<I, S>,
        cfg: &'a Config,
        shutdown: &'a Shutdown,
    ) {
        let mut h = H1::resume(parked, BytesMut::new(), cfg, shutdown, None);
        h.close(Closing::MaySendMore).await;
    }

    /// Serves requests until the connection closes, parks or is upgraded.
    pub(crate) async fn run(mut self) -> Result<Outcome<I, S>, Error> {
        let limits = Limits {
            max_head_size: self.cfg.max_head_size,
            max_headers: self.cfg.max_headers,
            max_request_line: self.cfg.max_request_line,
        };
        loop {
            let mut wait = HeadWait::Unarmed;
            // The one request path. The request is parsed into the call that the
            // service is called with, and its futures are made in place and polled
            // inside the span through a reference: a request is a few hundred
            // bytes and the futures about 1 KB, and every return value, enum,
            // `Instrumented` or `.await` of a returned future they passed through
            // would be one more copy of them per request.
            let mut call = Call::default();
            let req = call.req.insert(Request::new(Body::empty()));
            let head = loop {
                if !self.rbuf.is_empty() {
                    match parse::parse_request(&mut self.rbuf, &limits, req) {
                        Ok(Some(head)) => break head,
                        Ok(None) => {}
                        Err(refused) => {
                            let e = Error::new(Kind::Parse).detail(refused);
                            let status = error_status(&e).as_u16();
                            debug!(error = %refused, status, "bad request head");
                            self.fail(&e).await;
                            return Err(e);
                        }
                    }
                }
                match self.wait_head(&mut wait).await? {
                    Next::Read => {}
                    Next::Park { since } => return Ok(self.park(since)),
                    Next::Closed(closing) => {
                        self.close(closing).await;
                        return Ok(Outcome::Closed);
                    }
                    Next::TimedOut => {
                        debug!("request head timed out");
                        let e = Error::new(Kind::Timeout);
                        self.fail(&e).await;
                        return Err(e);
                    }
                }
            };
            trace!("request head read");
            let span = tracing::debug_span!(
                "request",
                method = %req.method(),
                path = %req.uri().path(),
            );
            // Before the upgrade policy runs, so it can see the peer.
            if let Some(peer) = self.peer {
                req.extensions_mut().insert(RemoteAddr(peer));
            }
            let routed = match self.route(head, &mut call) {
                Route::Service(reply) => Routed::Service(reply),
                Route::Other(mut other) => in_span(&span, other.as_mut()).await?,
            };
            let flow = match routed {
                Routed::Done(flow) => flow,
                Routed::Service(reply) => {
                    let mut fut = pin!(None);
                    let res = poll_fn(|cx| {
                        let _in = span.enter();
                        self.poll_service(&mut call, fut.as_mut(), cx)
                    })
                    .await;
                    let keep = {
                        let respond = pin!(self.respond_result(res, reply, &mut call.feeder));
                        in_span(&span, respond).await?
                    };
                    flow(keep, reply, &call.feeder)
                }
            };
            match flow {
                Flow::KeepAlive => self.kept_alive(),
                Flow::Close(closing) => {
                    self.close(closing).await;
                    return Ok(Outcome::Closed);
                }
                Flow::Upgrade { preamble, stream1 } => {
                    return Ok(self.hand_off(preamble, stream1));
                }
                Flow::Handover { head, declined } => {
                    return Ok(self.handover(head, declined));
                }
            }
        }
    }

    /// A response went out and the connection stays open for the next request.
    fn kept_alive(&mut self) {
        if self.pace == Pace::Fresh {
            self.pace = Pace::Answered;
        }
        trace!(pace = ?self.pace, "keep-alive: next request");
    }

    /// Idle since `since` with nothing buffered: everything but the socket, the
    /// service and the keep-alive timer is let go.
    fn park(mut self, since: Instant) -> Outcome<I, S> {
        trace!("idle: parking");
        self.timer
            .as_mut()
            .reset(since + self.cfg.keep_alive_timeout);
        Outcome::Park(Parked {
            io: self.io,
            svc: self.svc,
            timer: self.timer,
            since,
            after_response: self.pace != Pace::Fresh,
            over_tls: self.over_tls,
        })
    }

    /// The upgrade is accepted: the transport, and what was read past the request,
    /// go to HTTP/2 with the 101 still to send.
    fn hand_off(self, preamble: Bytes, stream1: Stream1<S::ResBody>) -> Outcome<I, S> {
        trace!("upgrade accepted: handing the connection to http/2");
        Outcome::Upgrade(Box::new(Handoff {
            io: self.io,
            svc: self.svc,
            leftover: self.rbuf.freeze(),
            preamble,
            stream1,
        }))
    }

    /// A request asks for an upgrade the service may take: the connection goes to
    /// the server that can switch it, with the request's head and what was read
    /// after it to be served again.
    fn handover(self, head: Bytes, declined: Option<DeclineReason>) -> Outcome<I, S> {
        trace!("handing the connection over for an upgrade");
        let replay = if self.rbuf.is_empty() {
            head
        } else {
            let mut all = BytesMut::with_capacity(head.len() + self.rbuf.len());
            all.extend_from_slice(&head);
            all.extend_from_slice(&self.rbuf);
            all.freeze()
        };
        Outcome::Handover(Box::new(Handover {
            io: self.io,
            svc: self.svc,
            replay,
            declined,
        }))
    }

    /// Waits for more of a request head: flushes pending output first, then reads.
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
                return Poll::Ready(Ok(Next::Closed(Closing::MaySendMore)));
            }
            match poll_read(&mut self.io, cx, &mut self.rbuf) {
                Poll::Ready(Ok(0)) => {
                    if !self.rbuf.is_empty() {
                        debug!(buffered = self.rbuf.len(), "peer closed mid head");
                    }
                    Poll::Ready(Ok(Next::Closed(Closing::PeerDone)))
                }
                Poll::Ready(Ok(_)) => Poll::Ready(Ok(Next::Read)),
                Poll::Ready(Err(e)) => Poll::Ready(Err(Error::io(e))),
                Poll::Pending => {
                    // Idle between requests, or slow within one: two bounds.
                    let partial = !self.rbuf.is_empty();
                    // Polled again by the same task, with the timer neither fired nor
                    // reset since, the shutdown and the timer would only register the
                    // waker they already hold: that costs more than the rest of an
                    // idle wait, and back-to-back requests would pay it for every one.
                    let mut registered = !partial
                        && !self.timer.is_elapsed()
                        && (self.idle_waker.as_ref()).is_some_and(|w| w.will_wake(cx.waker()));
                    if !partial && !registered && self.shutdown.poll(cx).is_ready() {
                        return Poll::Ready(Ok(Next::Closed(Closing::MaySendMore)));
                    }
                    if !partial && self.pace != Pace::BackToBack {
                        // Not used back to back: idle now costs no buffer.
                        return Poll::Ready(Ok(Next::Park {
                            since: Instant::now(),
                        }));
                    }
                    let release = self.cfg.idle_release_after;
                    let deadline = match (*wait, partial) {
                        (HeadWait::Idle { until, .. }, false)
                        | (HeadWait::Head { until }, true) => until,
                        _ => {
                            let now = Instant::now();
                            let (next, until) = if partial {
                                let until = now + self.cfg.header_read_timeout;
                                (HeadWait::Head { until }, until)
                            } else {
                                let until = now + self.cfg.keep_alive_timeout.min(release);
                                (HeadWait::Idle { since: now, until }, until)
                            };
                            trace!(?next, "waiting for a request head");
                            *wait = next;
                            // Resetting the timer costs more than the rest of an idle
                            // wait, and back-to-back requests would pay it for every
                            // one: a timer still due before this deadline is left to
                            // fire, and is moved on then (below).
                            if self.timer.deadline() > until {
                                self.timer.as_mut().reset(until);
                                registered = false;
                            }
                            until
                        }
                    };
                    if registered {
                        return Poll::Pending;
                    }
                    loop {
                        if self.timer.as_mut().poll(cx).is_pending() {
                            // Only an idle wait polled the shutdown as well.
                            self.idle_waker = (!partial).then(|| cx.waker().clone());
                            return Poll::Pending;
                        }
                        if self.timer.deadline() >= deadline {
                            break;
                        }
                        // It fired for an earlier bound: wait for this one.
                        self.timer.as_mut().reset(deadline);
                    }
                    if partial {
                        return Poll::Ready(Ok(Next::TimedOut));
                    }
                    if let HeadWait::Idle { since, .. } = *wait {
                        if release < self.cfg.keep_alive_timeout {
                            return Poll::Ready(Ok(Next::Park { since }));
                        }
                    }
                    trace!("keep-alive timeout");
                    Poll::Ready(Ok(Next::Closed(Closing::MaySendMore)))
                }
            }
        })
        .await
    }
}

/// Polls `fut` inside `span`, in place: the one request path's futures are not
/// moved into an `Instrumented` (see [`H1::run`]).
fn in_span<'s, F: Future + ?Sized>(
    span: &'s Span,
    mut fut: Pin<&'s mut F>,
) -> impl Future<Output = F::Output> + 's {
    poll_fn(move |cx| {
        let _in = span.enter();
        fut.as_mut().poll(cx)
    })
}
