//! The HTTP/1.1 connection's state: what it holds, its named states and where a
//! request leaves it ([`Flow`]), and how it ends (an error response, the close).
//! Every phase of the connection works on this [`H1`]; the loop between the
//! phases is in `cycle.rs`.

use std::future::poll_fn;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::Waker;

use bytes::{Bytes, BytesMut};
use http::StatusCode;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::time::{Instant, Sleep};
use tracing::trace;

use super::encode;
use super::io::WriteBuf;
use super::parse::{error_status, ParseError};
use crate::config::Config;
use crate::error::{Error, Kind};
use crate::linger::Linger;
use crate::policy::DeclineReason;
use crate::service::HttpService;
use crate::shutdown::Shutdown;
use crate::upgrade::handoff::{Handoff, Stream1};

/// How the HTTP/1 phase of a connection ended.
pub(crate) enum Outcome<I, S: HttpService> {
    Closed,
    Upgrade(Box<Handoff<I, S, S::ResBody>>),
    /// A request asks for an upgrade to a protocol other than h2c: the connection
    /// goes to the server that can switch it (see [`Handover`]).
    #[cfg_attr(not(feature = "upgrades"), allow(dead_code))]
    Handover(Box<Handover<I, S>>),
    /// Idle between requests: everything but what waiting needs is freed; the
    /// connection resumes with [`H1::resume`] when bytes arrive.
    Park(Parked<I, S>),
}

/// A connection handed over for a request that asks for an upgrade other than h2c
/// (WebSocket, say): nothing of the request has been answered or consumed, so
/// `replay` (the request's head as it arrived, then everything read after it) is
/// served again from its first byte.
#[cfg_attr(not(feature = "upgrades"), allow(dead_code))]
pub(crate) struct Handover<I, S> {
    pub(crate) io: I,
    pub(crate) svc: S,
    pub(crate) replay: Bytes,
    /// Why h2c, which the client preferred, was declined (see
    /// [`UpgradeDeclined`](crate::UpgradeDeclined)).
    pub(crate) declined: Option<DeclineReason>,
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
    /// The connection is TLS (see [`H1::over_tls`]).
    pub(crate) over_tls: bool,
}

pub(crate) struct H1<'a, I, S> {
    pub(super) io: I,
    pub(super) rbuf: BytesMut,
    pub(super) wbuf: WriteBuf,
    pub(super) svc: S,
    pub(super) cfg: &'a Config,
    pub(super) shutdown: &'a Shutdown,
    pub(super) peer: Option<SocketAddr>,
    /// The connection is TLS: `Upgrade` never switches it (see
    /// [`Transport`](crate::Transport)).
    pub(super) over_tls: bool,
    pub(super) timer: Pin<Box<Sleep>>,
    /// The waker an idle wait for a request head last polled the shutdown and the
    /// timer with, until a wait that polls them differently (see `H1::wait_head`).
    pub(super) idle_waker: Option<Waker>,
    pub(super) pace: Pace,
}

/// How the connection has been used so far, which decides how it waits for its
/// next request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Pace {
    /// No response written yet.
    Fresh,
    /// Answered, with no gap or a long one before the last request: an idle wait
    /// parks at once.
    Answered,
    /// Answered, and the client came back within `idle_release_after`: an idle
    /// wait keeps the buffers that long before it parks.
    BackToBack,
}

/// How a connection that closes after a response ends its read side.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Closing {
    /// The last request said it was the client's last (`connection: close`, or
    /// HTTP/1.0 without keep-alive) and all of it, body included, was read: RFC
    /// 9112 §9.6 forbids the client to send more, so no lingering read is needed
    /// (see [`H1::close`]).
    ClientDone,
    /// The client closed its side (a read returned 0): everything it sent has been
    /// read, and nothing more can arrive, so no lingering read is needed either.
    PeerDone,
    /// The client may still be sending: read and discard for a bounded while.
    MaySendMore,
}

/// Where an answered request leaves the connection.
pub(super) enum Flow<B> {
    KeepAlive,
    Close(Closing),
    /// The upgrade is accepted; the transport and read buffer go with it.
    Upgrade {
        preamble: Bytes,
        stream1: Stream1<B>,
    },
    /// The request asks for another upgrade, and goes, unanswered, with the
    /// connection to the server that can switch it (see [`Handover`]).
    Handover {
        head: Bytes,
        declined: Option<DeclineReason>,
    },
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
        over_tls: bool,
    ) -> Self {
        H1 {
            io,
            rbuf,
            wbuf: WriteBuf::default(),
            svc,
            cfg,
            shutdown,
            peer,
            over_tls,
            timer: Box::pin(tokio::time::sleep_until(Instant::now())),
            idle_waker: None,
            pace: Pace::Fresh,
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
        let pace = if !parked.after_response {
            Pace::Fresh
        } else if parked.since.elapsed() < cfg.idle_release_after {
            Pace::BackToBack
        } else {
            Pace::Answered
        };
        trace!(?pace, "resuming a parked connection");
        H1 {
            io: parked.io,
            rbuf,
            wbuf: WriteBuf::default(),
            svc: parked.svc,
            cfg,
            shutdown,
            peer,
            over_tls: parked.over_tls,
            timer: parked.timer,
            idle_waker: None,
            pace,
        }
    }

    /// Answers a connection that is not to be served over HTTP/1.1 at all with
    /// `505 HTTP Version Not Supported` and `why` (RFC 9110 §15.6.6: what the
    /// server supports instead), and closes it. What the client sent is not
    /// parsed: whatever it is, this one answer is all it gets. The close is
    /// bounded as every close is (see [`H1::close`]).
    pub(crate) async fn refuse(mut self, why: &str) -> Error {
        encode::write_error_text(
            self.wbuf.flat(),
            StatusCode::HTTP_VERSION_NOT_SUPPORTED,
            why,
        );
        self.close(Closing::MaySendMore).await;
        Error::new(Kind::Parse).detail(ParseError::UnsupportedVersion)
    }

    /// Answers `e` with a status-only response and `connection: close` (see
    /// [`error_status`]) and closes, unless the transport is already gone. Nothing
    /// of another response may be in flight.
    pub(super) async fn fail(&mut self, e: &Error) {
        encode::write_error(self.wbuf.flat(), error_status(e));
        self.close(Closing::MaySendMore).await;
    }

    /// Flushes what is buffered, closes the write side, and reads what the client
    /// still sends for a short, bounded while so the response is not lost to a reset
    /// (RFC 9112 §9.6).
    ///
    /// The read is skipped for [`Closing::ClientDone`] with nothing read after the
    /// request, and for [`Closing::PeerDone`]: nothing is left unread to cause a
    /// reset. Those are the common closes (a client's `connection: close`, or a
    /// keep-alive client that leaves), where the lingering read would cost a
    /// wake-up, a timer and a `recvfrom` per connection. As Go's `net/http`, which
    /// lingers only when it left request body unread.
    pub(super) async fn close(&mut self, closing: Closing) {
        trace!(?closing, "closing");
        let H1 { io, wbuf, rbuf, .. } = self;
        if poll_fn(|cx| wbuf.poll_flush(io, cx)).await.is_err() {
            return;
        }
        if io.shutdown().await.is_err() {
            return;
        }
        let done = match closing {
            Closing::ClientDone => rbuf.is_empty(),
            Closing::PeerDone => true,
            Closing::MaySendMore => false,
        };
        if done {
            trace!("nothing more to read from the client: closing without lingering");
            return;
        }
        // Nothing read now is used: drop the buffer, read through the stack.
        *rbuf = BytesMut::new();
        let mut linger = Linger::new();
        poll_fn(|cx| linger.poll_drain(io, cx)).await;
    }
}
