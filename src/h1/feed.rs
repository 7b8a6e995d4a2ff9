//! Feeding the request body: from the socket, through the body decoder, into the
//! service's [`Body`](crate::Body), one piece per request from the service
//! (backpressure), with `Expect: 100-continue` decided on the way (RFC 9110
//! §10.1.1); and settling what is left of it once the response is written.

use std::future::{poll_fn, Future};
use std::pin::Pin;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http::StatusCode;
use http_body::Frame;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::time::{Instant, Sleep};
use tracing::debug;

use super::decode::{DecodeError, Decoded, Decoder};
use super::io::WriteBuf;
use super::parse::error_status;
use super::state::H1;
use crate::body::Sender;
use crate::config::Config;
use crate::error::{Error, Kind};
use crate::service::HttpService;
use crate::transport::poll_read;

/// The interim response that invites a body the client holds back.
pub(super) const CONTINUE: &[u8] = b"HTTP/1.1 100 Continue\r\n\r\n";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Expect {
    /// The client waits for `100 Continue` before sending the body.
    Pending,
    /// No expectation, or the 100 was sent.
    Done,
    /// A final non-2xx status went out instead of the 100: the body is not wanted.
    Refused,
}

/// Moves the request body from the socket into the service's
/// [`Body`](crate::Body), one piece per request from the service.
pub(super) struct Feeder {
    /// None once the service's body is gone or complete.
    pub(super) tx: Option<Sender>,
    pub(super) decoder: BodyReader,
    /// Bytes read before the service was called (a declined upgrade's body).
    pub(super) prefix: Option<Bytes>,
    pub(super) expect: Expect,
    /// Set when the body's framing failed or the peer vanished mid-body: the
    /// status that answers the request if no byte of its response is out yet.
    pub(super) failure: Option<StatusCode>,
}

impl Feeder {
    /// Feeds while the service wants more. Ready once there is nothing more to do.
    pub(super) fn poll_feed<I: AsyncRead + AsyncWrite + Unpin>(
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
            if let Some(p) = self.prefix.take() {
                tx.send(Frame::data(p));
                continue;
            }
            match self.decoder.poll_next(io, rbuf, cx) {
                Poll::Pending => {
                    // Waiting for the client: let what is queued (the 100 above,
                    // earlier responses) reach it first, or it may wait for it.
                    // Only now: a body already read, or already broken, is handed
                    // over before a response head behind it is committed.
                    if !wbuf.is_empty() {
                        if let Poll::Ready(Err(e)) = wbuf.poll_flush(io, cx) {
                            self.fail(Error::io(e));
                            return Poll::Ready(());
                        }
                    }
                    return Poll::Pending;
                }
                Poll::Ready(Ok(Decoded::Data(d))) => tx.send(Frame::data(d)),
                Poll::Ready(Ok(Decoded::Trailers(t))) => tx.send(Frame::trailers(t)),
                Poll::Ready(Ok(Decoded::End)) => {
                    if let Some(tx) = self.tx.take() {
                        tx.finish();
                    }
                    return Poll::Ready(());
                }
                Poll::Ready(Err(e)) => {
                    debug!(error = &e as &dyn std::error::Error, "request body failed");
                    self.fail(e);
                    return Poll::Ready(());
                }
            }
        }
    }

    /// Decides `Expect: 100-continue` just before the final head is queued: invite
    /// the body if it has been asked for, refuse it otherwise.
    pub(super) fn settle_expect(&mut self, wbuf: &mut WriteBuf) {
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
            tx.abort(
                Error::new(Kind::Incomplete).detail("request body refused before it was sent"),
            );
        }
    }

    /// The body can no longer be read.
    pub(super) fn is_broken(&self) -> bool {
        self.failure.is_some()
    }

    fn fail(&mut self, e: Error) {
        self.failure = Some(error_status(&e));
        if let Some(tx) = self.tx.take() {
            tx.abort(e);
        }
    }

    /// Reads and discards the rest of the body. Ready(true) when it ended within
    /// `limit` bytes, Ready(false) when it did not or failed.
    pub(super) fn poll_drain<I: AsyncRead + Unpin>(
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
pub(super) struct BodyReader {
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
    pub(super) fn new(decoder: Decoder, cfg: &Config) -> Self {
        BodyReader {
            decoder,
            timeout: cfg.body_read_timeout,
            timer: None,
            progressed: false,
            limit: cfg.max_request_body_size,
            seen: 0,
        }
    }

    pub(super) fn is_end(&self) -> bool {
        self.decoder.is_end()
    }

    pub(super) fn remaining(&self) -> Option<u64> {
        self.decoder.remaining()
    }

    /// Decodes the next piece of the body, reading from the socket when the buffer
    /// holds too little. The end of the stream before the end of the body, a body
    /// over the limit, and a wait of a whole timeout with no byte arriving are
    /// errors.
    pub(super) fn poll_next<I: AsyncRead + Unpin>(
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
                                Error::new(Kind::Parse).detail("request body too large")
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
                return Poll::Ready(Err(Error::new(Kind::Timeout).detail("request body stalled")));
            }
            self.progressed = false;
            timer.as_mut().reset(Instant::now() + self.timeout);
        }
    }
}

fn decode_error(e: DecodeError) -> Error {
    Error::new(Kind::Parse).detail(e)
}

impl<'a, I, S> H1<'a, I, S>
where
    I: AsyncRead + AsyncWrite + Unpin + Send,
    S: HttpService,
{
    /// Settles the rest of the request body after the response. Returns whether the
    /// connection stays open.
    pub(super) async fn settle(
        &mut self,
        feeder: &mut Option<Feeder>,
        keep_alive: bool,
    ) -> Result<bool, Error> {
        if let Some(f) = feeder {
            f.tx = None;
            if !f.decoder.is_end() {
                if f.is_broken() || !keep_alive || f.expect != Expect::Done {
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
}
