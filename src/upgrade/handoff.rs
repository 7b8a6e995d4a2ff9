//! What the switch from HTTP/1.1 to HTTP/2 hands over: the HTTP/1.1 connection
//! makes a [`Handoff`] when it accepts an upgrade, the top-level driver turns it
//! into the HTTP/2 stage, and HTTP/2 serves [`Stream1`] as stream 1. Neither
//! protocol layer knows the other: both know this.

use std::future::Future;
use std::pin::Pin;

use bytes::Bytes;
use http::{HeaderMap, Response};

use crate::body::Prefetched;
use crate::error::BoxError;

/// The `101` of RFC 7540 §3.2, sent in one write with h2's first SETTINGS frame.
pub(crate) const SWITCHING_PROTOCOLS: &[u8] =
    b"HTTP/1.1 101 Switching Protocols\r\nconnection: Upgrade\r\nupgrade: h2c\r\n\r\n";

/// An accepted upgrade: everything the HTTP/2 phase needs.
pub(crate) struct Handoff<I, S, B> {
    pub(crate) io: I,
    pub(crate) svc: S,
    /// Bytes read past the upgrade request (the start of the client's preface).
    pub(crate) leftover: Bytes,
    /// Synthesized client preface, SETTINGS and stream-1 HEADERS.
    pub(crate) preamble: Bytes,
    pub(crate) stream1: Stream1<B>,
}

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
    /// The service answered; the start of its body is prefetched.
    Ready(Response<Prefetched<B>>),
}
