//! The crate's one public error type.

use std::fmt;

/// A boxed error from a service, a response body or the transport.
///
/// ```
/// let e: h2c_mux::BoxError = "service unavailable".into();
/// assert_eq!(e.to_string(), "service unavailable");
/// ```
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// An error that ended a connection or a request body.
///
/// Errors caused by the peer (a malformed request, a vanished client) are part of
/// normal operation for a server; they are logged at `debug` and reported here so an
/// embedder can count them. Use the `is_*` predicates to tell the kinds apart and
/// [`std::error::Error::source`] for the cause: the error of the transport, of
/// `h2`, or of the response body. `Display` is the kind, with the server's own
/// account where it has one (a malformed chunk size, a stalled body), and does not
/// repeat the source.
///
/// ```
/// # async fn run(conn: h2c_mux::Connection) {
/// if let Err(e) = conn.await {
///     if e.is_timeout() {
///         // a slow or silent peer
///     }
/// }
/// # }
/// ```
pub struct Error {
    kind: Kind,
    /// The crate's own account of what went wrong (a parse or framing error, a
    /// short message): part of the `Display`, not a `source`.
    detail: Option<BoxError>,
    /// The error of another layer that caused this one (the transport's, `h2`'s,
    /// the service's or the response body's): the `source`, not in the `Display`.
    source: Option<BoxError>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// Reading from or writing to the transport failed.
    Io,
    /// The peer sent an HTTP/1 message that could not be parsed or framed.
    Parse,
    /// The peer declared an HTTP/1 request body over the configured limit.
    TooLarge,
    /// The HTTP/2 connection or a stream failed.
    H2,
    /// A wait on the peer took longer than the configured bound.
    Timeout,
    /// The peer closed the connection before a message was complete.
    Incomplete,
    /// The service returned an error. It is answered (`500`, or a reset of
    /// the HTTP/2 stream) and logged, and ends no connection.
    Service,
    /// The response body returned an error.
    Body,
    /// An extended CONNECT stream did not become a tunnel.
    NoTunnel,
}

impl Error {
    pub(crate) fn new(kind: Kind) -> Self {
        Error {
            kind,
            detail: None,
            source: None,
        }
    }

    /// Sets the error that caused this one (see [`source`](std::error::Error::source)).
    pub(crate) fn with<E: Into<BoxError>>(mut self, source: E) -> Self {
        self.source = Some(source.into());
        self
    }

    /// Says more precisely what went wrong, in the crate's own terms: shown after
    /// the kind by `Display`.
    pub(crate) fn detail<D: Into<BoxError>>(mut self, detail: D) -> Self {
        self.detail = Some(detail.into());
        self
    }

    /// The detail, when it is a `D`.
    pub(crate) fn detail_as<D: std::error::Error + 'static>(&self) -> Option<&D> {
        self.detail.as_ref().and_then(|d| d.downcast_ref::<D>())
    }

    pub(crate) fn kind(&self) -> Kind {
        self.kind
    }

    /// A service's error, as it is logged before it is answered.
    pub(crate) fn service(e: BoxError) -> Self {
        Error::new(Kind::Service).with(e)
    }

    pub(crate) fn io(e: std::io::Error) -> Self {
        if e.kind() == std::io::ErrorKind::TimedOut {
            return Error::new(Kind::Timeout).with(e);
        }
        Error::new(Kind::Io).with(e)
    }

    /// An error of hyper's HTTP/1.1 server, which serves a request handed over for
    /// an upgrade (see `crate::handover`), in this crate's kinds.
    #[cfg(feature = "upgrades")]
    pub(crate) fn hyper(e: hyper::Error) -> Self {
        let kind = if e.is_parse() || e.is_parse_status() {
            Kind::Parse
        } else if e.is_timeout() {
            Kind::Timeout
        } else if e.is_incomplete_message() || e.is_body_write_aborted() {
            Kind::Incomplete
        } else if e.is_user() {
            Kind::Service
        } else {
            Kind::Io
        };
        Error::new(kind).with(e)
    }

    pub(crate) fn h2(e: h2::Error) -> Self {
        if e.is_io() {
            if let Some(io) = e.get_io() {
                if io.kind() == std::io::ErrorKind::TimedOut {
                    return Error::new(Kind::Timeout).with(e);
                }
            }
        }
        Error::new(Kind::H2).with(e)
    }

    /// The transport failed (a reset, a broken pipe).
    ///
    /// ```
    /// fn count(e: &h2c_mux::Error) -> bool {
    ///     e.is_io()
    /// }
    /// ```
    pub fn is_io(&self) -> bool {
        self.kind == Kind::Io
    }

    /// The peer sent an HTTP/1 message that could not be parsed or framed, or
    /// declared a body over
    /// [`max_request_body_size`](crate::Builder::max_request_body_size); it was
    /// answered with a 4xx/5xx status where no response had started.
    ///
    /// ```
    /// fn count(e: &h2c_mux::Error) -> bool {
    ///     e.is_parse()
    /// }
    /// ```
    pub fn is_parse(&self) -> bool {
        matches!(self.kind, Kind::Parse | Kind::TooLarge)
    }

    /// The HTTP/2 connection or stream failed (a protocol error, a reset).
    ///
    /// ```
    /// fn count(e: &h2c_mux::Error) -> bool {
    ///     e.is_h2()
    /// }
    /// ```
    pub fn is_h2(&self) -> bool {
        self.kind == Kind::H2
    }

    /// A configured time bound ran out while waiting on the peer.
    ///
    /// ```
    /// fn count(e: &h2c_mux::Error) -> bool {
    ///     e.is_timeout()
    /// }
    /// ```
    pub fn is_timeout(&self) -> bool {
        self.kind == Kind::Timeout
    }

    /// The peer closed the connection, or stopped, before a message was complete.
    ///
    /// ```
    /// fn count(e: &h2c_mux::Error) -> bool {
    ///     e.is_incomplete()
    /// }
    /// ```
    pub fn is_incomplete(&self) -> bool {
        self.kind == Kind::Incomplete
    }

    /// The service returned an error instead of a response. Such an error is
    /// answered and logged, and ends no connection: a [`Connection`](crate::Connection)
    /// does not resolve to it.
    ///
    /// ```
    /// fn count(e: &h2c_mux::Error) -> bool {
    ///     e.is_service()
    /// }
    /// ```
    pub fn is_service(&self) -> bool {
        self.kind == Kind::Service
    }

    /// The response body returned an error while it was being sent.
    ///
    /// ```
    /// fn count(e: &h2c_mux::Error) -> bool {
    ///     e.is_body()
    /// }
    /// ```
    pub fn is_body(&self) -> bool {
        self.kind == Kind::Body
    }

    /// The tunnel an [`OnTunnel`](crate::tunnel::OnTunnel) waited for did not
    /// open: the request was no extended CONNECT, the tunnel was taken already,
    /// the answer was not a `2xx` with an empty body, or the stream ended first.
    ///
    /// ```
    /// fn count(e: &h2c_mux::Error) -> bool {
    ///     e.is_no_tunnel()
    /// }
    /// ```
    pub fn is_no_tunnel(&self) -> bool {
        self.kind == Kind::NoTunnel
    }

    /// The h2 reason code, when this error carries one.
    ///
    /// ```
    /// fn flooded(e: &h2c_mux::Error) -> bool {
    ///     e.h2_reason() == Some(h2::Reason::ENHANCE_YOUR_CALM)
    /// }
    /// ```
    pub fn h2_reason(&self) -> Option<h2::Reason> {
        self.source
            .as_ref()
            .and_then(|s| s.downcast_ref::<h2::Error>())
            .and_then(h2::Error::reason)
    }

    fn description(&self) -> &'static str {
        match self.kind {
            Kind::Io => "connection i/o failed",
            Kind::Parse => "invalid http/1 message",
            Kind::TooLarge => "request body over the limit",
            Kind::H2 => "http/2 error",
            Kind::Timeout => "timed out waiting on the peer",
            Kind::Incomplete => "message ended early",
            Kind::Service => "service error",
            Kind::Body => "response body error",
            Kind::NoTunnel => "no tunnel",
        }
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Error");
        d.field("kind", &self.kind);
        if let Some(s) = &self.detail {
            d.field("detail", s);
        }
        if let Some(s) = &self.source {
            d.field("source", s);
        }
        d.finish()
    }
}

/// The kind, and the crate's own detail if there is one; never the
/// [`source`](std::error::Error::source), which a reporter prints after it.
impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.detail {
            Some(d) => write!(f, "{}: {}", self.description(), d),
            None => f.write_str(self.description()),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_ref()
            .map(|s| &**s as &(dyn std::error::Error + 'static))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn predicates_match_kind() {
        let cases = [
            (Kind::Io, "connection i/o failed"),
            (Kind::Parse, "invalid http/1 message"),
            (Kind::TooLarge, "request body over the limit"),
            (Kind::H2, "http/2 error"),
            (Kind::Timeout, "timed out waiting on the peer"),
            (Kind::Incomplete, "message ended early"),
            (Kind::Service, "service error"),
            (Kind::Body, "response body error"),
            (Kind::NoTunnel, "no tunnel"),
        ];
        for (kind, text) in cases {
            let e = Error::new(kind);
            assert_eq!(e.to_string(), text);
            let flags = [
                e.is_io(),
                e.is_parse(),
                e.is_h2(),
                e.is_timeout(),
                e.is_incomplete(),
                e.is_service(),
                e.is_body(),
                e.is_no_tunnel(),
            ];
            assert_eq!(flags.iter().filter(|f| **f).count(), 1, "{kind:?}");
        }
    }

    #[test]
    fn timed_out_io_is_a_timeout() {
        let e = Error::io(std::io::Error::new(std::io::ErrorKind::TimedOut, "x"));
        assert!(e.is_timeout());
        assert!(std::error::Error::source(&e).is_some());
    }

    #[test]
    fn display_shows_the_detail_and_never_the_source() {
        let io = Error::io(std::io::Error::new(std::io::ErrorKind::BrokenPipe, "pipe"));
        assert_eq!(io.to_string(), "connection i/o failed");
        let source = std::error::Error::source(&io).map(|s| s.to_string());
        assert_eq!(source.as_deref(), Some("pipe"));
        let parse = Error::new(Kind::Parse).detail("bad chunk size");
        assert_eq!(parse.to_string(), "invalid http/1 message: bad chunk size");
        assert!(std::error::Error::source(&parse).is_none());
    }
}
