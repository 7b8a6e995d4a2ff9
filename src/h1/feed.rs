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
use crate::read::{poll_read_at_most, READ_CHUNK};
use crate::service::HttpService;

/// The largest read of a request body: 256 KiB. A body whose reads come back full
/// has them doubled from [`READ_CHUNK`] up to this, so a fast upload is read in
/// pieces as large as what has arrived since the last wake-up (64 KB on average on
/// loopback), each one `recvfrom` and one hand-over to the service. At 8 KiB a piece
/// an upload cost about 1.3× hyper's CPU per MB (`benches/README.md`, S9). A slow
/// body never fills a read and stays at 8 KiB; a read never takes more than the body
/// still holds, unless that is under 8 KiB (as a read for a head would take).
const MAX_BODY_READ: usize = 256 * 1024;

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
    /// The size of the next read: grows while reads come back full (see
    /// [`MAX_BODY_READ`]).
    read_size: usize,
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
            read_size: READ_CHUNK,
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
            // No further than the body reaches, unless that is less than a read of
            // a request head would take anyway.
            let due = usize::try_from(self.decoder.data_due()).unwrap_or(usize::MAX);
            let max = self.read_size.min(due.max(READ_CHUNK));
            match poll_read_at_most(io, cx, rbuf, max) {
                Poll::Ready(Ok(0)) => return Poll::Ready(Err(Error::new(Kind::Incomplete))),
                Poll::Ready(Ok(n)) => {
                    self.progressed = true;
                    if n == self.read_size {
                        self.read_size = (n * 2).min(MAX_BODY_READ);
                    }
                }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::read::recorder::poll_now;
    use tokio::io::ReadBuf;

    /// A client sending `data`, at most `per_read` bytes a read (as a slow one
    /// would), recording the room each read offered.
    struct Client {
        data: Vec<u8>,
        at: usize,
        per_read: usize,
        offered: Vec<usize>,
    }

    impl AsyncRead for Client {
        fn poll_read(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
            buf: &mut ReadBuf<'_>,
        ) -> Poll<std::io::Result<()>> {
            self.offered.push(buf.remaining());
            let n = buf
                .remaining()
                .min(self.per_read)
                .min(self.data.len() - self.at);
            let at = self.at;
            buf.put_slice(&self.data[at..at + n]);
            self.at += n;
            Poll::Ready(Ok(()))
        }
    }

    /// Reads a body of `len` bytes (Content-Length, then `after` bytes of the next
    /// request) to its end; returns the size of each piece and of each read offered.
    fn read_body(len: usize, after: usize, per_read: usize) -> (Vec<usize>, Vec<usize>, usize) {
        let mut client = Client {
            data: vec![7; len + after],
            at: 0,
            per_read,
            offered: Vec::new(),
        };
        let mut reader = BodyReader::new(Decoder::length(len as u64), &Config::default());
        let mut rbuf = BytesMut::new();
        let mut pieces = Vec::new();
        loop {
            match poll_now(|cx| reader.poll_next(&mut client, &mut rbuf, cx)) {
                Ok(Decoded::Data(d)) => pieces.push(d.len()),
                Ok(Decoded::End) => break,
                other => panic!("{other:?}"),
            }
        }
        (pieces, client.offered, rbuf.len())
    }

    #[test]
    fn a_fast_body_is_read_in_doubling_pieces_up_to_the_largest_read() {
        let k = 1024;
        let len = (1 << 20) + 32 * k;
        let (pieces, offered, left) = read_body(len, 100, usize::MAX);
        assert_eq!(offered, pieces, "every read was full");
        assert_eq!(
            pieces,
            [
                8 * k,
                16 * k,
                32 * k,
                64 * k,
                128 * k,
                256 * k,
                256 * k,
                256 * k,
                40 * k
            ]
        );
        assert_eq!(pieces.iter().sum::<usize>(), len);
        // The last read was bounded by the body: the next request was not read.
        assert_eq!(left, 0);
    }

    #[test]
    fn a_slow_body_is_read_in_small_pieces() {
        let (pieces, offered, _) = read_body(100_000, 0, 1000);
        assert!(pieces.iter().all(|&n| n == 1000), "{pieces:?}");
        // It never filled a read, so the reads did not grow.
        assert!(offered.iter().all(|&n| n == READ_CHUNK), "{offered:?}");
    }

    #[test]
    fn the_last_small_part_of_a_body_is_read_as_a_head_would_be() {
        // Less than a read of 8 KiB is due: that read may take the next request
        // too, which then waits in the buffer, as after a request without a body.
        let (pieces, offered, left) = read_body(100, 50, usize::MAX);
        assert_eq!(pieces, [100]);
        assert_eq!(offered, [READ_CHUNK]);
        assert_eq!(left, 50);
    }
}
