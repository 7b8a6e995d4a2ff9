//! HTTP/1 request head parsing (RFC 9112 §2-§3, §6; RFC 9110 §7.8, §10.1.1).
//!
//! No IO: the parser reads the connection's buffer and returns either "need more
//! bytes" or the decisions the connection acts on (body framing, keep-alive,
//! `Expect: 100-continue`, the upgrade request), and fills the head's `http` types
//! into the request it is given.
//!
//! Line endings: every line of the head must end in CRLF. RFC 9112 §2.2 lets a
//! recipient accept a bare LF, but a server behind a proxy that reads the same bytes
//! differently is the classic request-smuggling setup, so a bare LF (or a bare CR,
//! which httparse already refuses) is answered `400`. The chunked body decoder holds
//! the same rule.

use std::mem::MaybeUninit;

use bytes::BytesMut;
use http::header::{self, HeaderName, HeaderValue};
use http::{Method, Request, StatusCode, Uri, Version};

use crate::body::Body;
use crate::error::{Error, Kind};
use crate::field::list;

/// Header slots kept on the stack; a larger configured limit falls back to the heap.
const STACK_HEADERS: usize = 128;

/// The bounds a head must respect.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    pub(crate) max_head_size: usize,
    pub(crate) max_headers: usize,
    pub(crate) max_request_line: usize,
}

/// How the request body is framed (RFC 9112 §6.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BodyLength {
    /// Content-Length: n (0 means no body).
    Length(u64),
    /// Transfer-Encoding: chunked.
    Chunked,
}

/// What the `Upgrade` field asks for, as far as this server cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum UpgradeAsk {
    None,
    /// The list names `h2c`.
    H2c,
    /// The list names `h2` but not `h2c` (HTTP/2 over TLS, RFC 7540 §3.3).
    H2Tls,
}

/// Whether the `Upgrade` list also names a protocol other than `h2c` and `h2`
/// (WebSocket, say), and where: the list is in the client's order of preference
/// (RFC 9110 §7.8), and the connection offers the first protocol it can take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OtherUpgrade {
    None,
    /// Before any `h2c` (or with no `h2c` at all): preferred to h2c.
    First,
    /// Only after `h2c`: offered when h2c is declined.
    AfterH2c,
}

/// The decisions taken from a parsed request head; the head itself (method,
/// target, version, fields) is in the request [`parse_request`] filled in.
#[derive(Debug)]
pub(crate) struct RequestHead {
    pub(crate) body: BodyLength,
    /// Whether the client's message allows the connection to stay open afterwards.
    pub(crate) keep_alive: bool,
    pub(crate) expect_continue: bool,
    pub(crate) upgrade: UpgradeAsk,
    pub(crate) other_upgrade: OtherUpgrade,
    /// The head as it arrived, kept only when it asks for an upgrade other than
    /// h2c: such a request is replayed to the server that can switch it (see
    /// `crate::hyper_switch`).
    pub(crate) raw: Option<bytes::Bytes>,
    /// `Connection` lists `upgrade`.
    pub(crate) connection_upgrade: bool,
    /// `Connection` lists `http2-settings`.
    pub(crate) connection_settings: bool,
}

/// Why a head was refused; each maps to exactly one status (see [`error_status`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ParseError {
    Malformed(&'static str),
    RequestLineTooLong,
    HeadTooLarge,
    TooManyHeaders,
    UnsupportedVersion,
    UnsupportedCoding,
    Expectation,
}

/// The status an error of the HTTP/1.1 connection is answered with, when no byte
/// of a response has gone out yet: the one place that chooses it (RFC 9110 §15.5).
pub(crate) fn error_status(e: &Error) -> StatusCode {
    match e.kind() {
        Kind::Timeout => return StatusCode::REQUEST_TIMEOUT,
        Kind::TooLarge => return StatusCode::PAYLOAD_TOO_LARGE,
        _ => {}
    }
    match e.detail_as::<ParseError>() {
        Some(ParseError::RequestLineTooLong) => StatusCode::URI_TOO_LONG,
        Some(ParseError::HeadTooLarge | ParseError::TooManyHeaders) => {
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE
        }
        Some(ParseError::UnsupportedVersion) => StatusCode::HTTP_VERSION_NOT_SUPPORTED,
        Some(ParseError::UnsupportedCoding) => StatusCode::NOT_IMPLEMENTED,
        Some(ParseError::Expectation) => StatusCode::EXPECTATION_FAILED,
        // A malformed head, or a request body whose framing failed.
        Some(ParseError::Malformed(_)) | None => StatusCode::BAD_REQUEST,
    }
}

impl std::fmt::Display for ParseError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ParseError::Malformed(what) => f.write_str(what),
            ParseError::RequestLineTooLong => f.write_str("request line too long"),
            ParseError::HeadTooLarge => f.write_str("request head too large"),
            ParseError::TooManyHeaders => f.write_str("too many header fields"),
            ParseError::UnsupportedVersion => f.write_str("unsupported http version"),
            ParseError::UnsupportedCoding => f.write_str("unsupported transfer coding"),
            ParseError::Expectation => f.write_str("unsupported expectation"),
        }
    }
}

impl std::error::Error for ParseError {}

/// Parses one request head from the front of `buf`, removing it on success, into
/// `req`, a request as `Request::new` makes it. `Ok(None)`: the head is not
/// complete yet (and is still within the limits), and `req` is untouched.
///
/// The head goes into a request the caller holds, not a returned value: the
/// connection serves that same request, and every move of a request (a few
/// hundred bytes) on its way to the service is one more copy per request. Of the
/// connection's own type, not generic over the body: an instance made where it is
/// called would be compiled apart from the helpers below and not inline them
/// (about 150 Ir more per request).
pub(crate) fn parse_request(
    buf: &mut BytesMut,
    limits: &Limits,
    req: &mut Request<Body>,
) -> Result<Option<RequestHead>, ParseError> {
    parse_with(buf, limits, req)
}

/// Field positions kept on the stack between parsing the head and building its
/// `HeaderMap` (httparse borrows the buffer that is then split off and frozen): 32
/// covers ordinary requests; a head with more fields spills to the heap.
const INLINE_FIELDS: usize = 32;

/// Where one field's name and value lie in the head: `[name_start, name_end,
/// value_start, value_end]`.
type FieldAt = [u32; 4];

fn parse_with(
    buf: &mut BytesMut,
    limits: &Limits,
    req: &mut Request<Body>,
) -> Result<Option<RequestHead>, ParseError> {
    // RFC 9112 §2.2: empty lines before the request line are skipped (httparse
    // does), so they are not the line measured for the 414 (see `request_line`).
    let mut start = 0;
    while buf.get(start..start + 2) == Some(&b"\r\n"[..]) {
        start += 2;
    }
    // A bare LF is refused wherever it stands (see the module docs); refusing it
    // here keeps the line below from being measured from the wrong start.
    if buf.get(start) == Some(&b'\n') {
        return Err(ParseError::Malformed("bare lf in request head"));
    }

    let mut inline = [[0u32; 4]; INLINE_FIELDS];
    let mut spilled = Vec::new();
    let Some(raw) = scan_head(buf, limits, start, &mut inline, &mut spilled)? else {
        return Ok(None);
    };
    let at: &[FieldAt] = if raw.fields <= INLINE_FIELDS {
        &inline[..raw.fields]
    } else {
        &spilled
    };

    let head = buf.split_to(raw.len).freeze();
    let uri = parse_target(&raw.method, head.slice(raw.target.0..raw.target.1))?;
    *req.method_mut() = raw.method;
    *req.uri_mut() = uri;
    *req.version_mut() = raw.version;
    let headers = req.headers_mut();
    headers.reserve(at.len());
    let mut seen = Seen::new(raw.version == Version::HTTP_11);
    for &[ns, ne, vs, ve] in at {
        let (ns, ne, vs, ve) = (ns as usize, ne as usize, vs as usize, ve as usize);
        let name = field_name(head.get(ns..ne).unwrap_or_default())?;
        let value = HeaderValue::from_maybe_shared(head.slice(vs..ve))
            .map_err(|_| ParseError::Malformed("invalid header value"))?;
        seen.field(&name, value.as_bytes());
        headers.append(name, value);
    }
    let body = seen.decide()?;
    Ok(Some(RequestHead {
        body,
        keep_alive: !seen.close && (seen.http11 || seen.keep_alive_10),
        expect_continue: seen.http11 && seen.expect_continue,
        upgrade: seen.upgrade,
        other_upgrade: seen.other_upgrade,
        raw: (seen.other_upgrade != OtherUpgrade::None).then(|| head.clone()),
        connection_upgrade: seen.connection_upgrade,
        connection_settings: seen.connection_settings,
    }))
}

/// A field name as `http` spells it. `Host` is in every HTTP/1.1 request (RFC 9112
/// §3.2): matched directly, it skips the general lookup, which costs several times
/// as much.
fn field_name(name: &[u8]) -> Result<HeaderName, ParseError> {
    if name.eq_ignore_ascii_case(b"host") {
        return Ok(header::HOST);
    }
    HeaderName::from_bytes(name).map_err(|_| ParseError::Malformed("invalid header name"))
}

struct Raw {
    method: Method,
    target: (usize, usize),
    version: Version,
    /// The head's length, through its final CRLF.
    len: usize,
    /// How many fields `scan_head` recorded.
    fields: usize,
}

/// Runs httparse over `buf` and records where the fields lie: in `inline` when they
/// fit, else in `spilled`. `Ok(None)`: the head is not complete yet.
fn scan_head(
    buf: &BytesMut,
    limits: &Limits,
    start: usize,
    inline: &mut [FieldAt; INLINE_FIELDS],
    spilled: &mut Vec<FieldAt>,
) -> Result<Option<Raw>, ParseError> {
    let mut stack = [const { MaybeUninit::<httparse::Header<'_>>::uninit() }; STACK_HEADERS];
    let mut heap;
    let slots: &mut [MaybeUninit<httparse::Header<'_>>] = if limits.max_headers <= STACK_HEADERS {
        &mut stack[..limits.max_headers]
    } else {
        heap = Vec::with_capacity(limits.max_headers);
        heap.resize_with(limits.max_headers, MaybeUninit::uninit);
        &mut heap
    };
    let mut req = httparse::Request::new(&mut []);
    let status = req.parse_with_uninit_headers(buf, slots);
    let Ok(httparse::Status::Complete(len)) = status else {
        // An incomplete or refused head: the request line is judged first, found
        // by scanning for its end.
        let line = buf.get(start..).unwrap_or_default();
        let scan = limits.max_request_line.saturating_add(2);
        match line.iter().take(scan).position(|&b| b == b'\n') {
            Some(lf) => request_line(buf, start, start + lf, limits)?,
            None if line.len() >= scan => return Err(ParseError::RequestLineTooLong),
            None => true,
        };
        return match status {
            Err(httparse::Error::TooManyHeaders) => Err(ParseError::TooManyHeaders),
            Err(httparse::Error::Version) => Err(ParseError::UnsupportedVersion),
            Err(httparse::Error::Token) => Err(ParseError::Malformed("invalid token")),
            Err(httparse::Error::HeaderName) => Err(ParseError::Malformed("invalid header name")),
            Err(httparse::Error::HeaderValue) => Err(ParseError::Malformed("invalid header value")),
            Err(_) => Err(ParseError::Malformed("malformed request head")),
            Ok(_) if buf.len() >= limits.max_head_size => Err(ParseError::HeadTooLarge),
            Ok(_) => Ok(None),
        };
    };
    let base = buf.as_ptr() as usize;
    // A complete head: its request line ends where the first field line (or else
    // the empty last line) starts.
    let line_end = match req.headers.first() {
        Some(h) => (h.name.as_ptr() as usize - base).checked_sub(1),
        None => len.checked_sub(2 + usize::from(buf.get(len.wrapping_sub(2)) == Some(&b'\r'))),
    };
    let request_line_crlf = request_line(buf, start, line_end.unwrap_or(start), limits)?;
    // The field positions are kept as u32.
    if len > limits.max_head_size || u32::try_from(len).is_err() {
        return Err(ParseError::HeadTooLarge);
    }
    // A bare LF can only end a line (httparse refuses it elsewhere): check the end
    // of the request line (above), of each field line (its LF follows the value and
    // at most some whitespace), and of the empty last line.
    let crlf_at = |lf: usize| lf > 0 && buf.get(lf - 1) == Some(&b'\r');
    let fields_crlf = req.headers.iter().all(|h| {
        let end = h.value.as_ptr() as usize - base + h.value.len();
        let rest = buf.get(end..len).unwrap_or_default();
        rest.iter()
            .position(|&b| b == b'\n')
            .is_some_and(|lf| crlf_at(end + lf))
    });
    if !request_line_crlf || !fields_crlf || !crlf_at(len - 1) {
        return Err(ParseError::Malformed("bare lf in request head"));
    }
    // Every slice httparse returns lies within the head, below u32::MAX (above).
    let at = |s: &[u8]| {
        let start = s.as_ptr() as usize - base;
        (start as u32, (start + s.len()) as u32)
    };
    let method = Method::from_bytes(req.method.unwrap_or_default().as_bytes())
        .map_err(|_| ParseError::Malformed("invalid method"))?;
    let (ts, te) = at(req.path.unwrap_or_default().as_bytes());
    let version = match req.version {
        Some(0) => Version::HTTP_10,
        Some(1) => Version::HTTP_11,
        _ => return Err(ParseError::UnsupportedVersion),
    };
    let fields = req.headers.len();
    if fields > INLINE_FIELDS {
        spilled.reserve_exact(fields);
    }
    for (i, h) in req.headers.iter().enumerate() {
        let (ns, ne) = at(h.name.as_bytes());
        let (vs, ve) = at(h.value);
        match inline.get_mut(i) {
            Some(slot) if fields <= INLINE_FIELDS => *slot = [ns, ne, vs, ve],
            _ => spilled.push([ns, ne, vs, ve]),
        }
    }
    Ok(Some(Raw {
        method,
        target: (ts as usize, te as usize),
        version,
        len,
        fields,
    }))
}

/// RFC 9112 §3.2: origin-form, absolute-form, authority-form (CONNECT only) and
/// asterisk-form (OPTIONS only).
fn parse_target(method: &Method, target: bytes::Bytes) -> Result<Uri, ParseError> {
    let asterisk = target.as_ref() == b"*";
    if asterisk && method != Method::OPTIONS {
        return Err(ParseError::Malformed("asterisk-form is only for options"));
    }
    let uri = Uri::from_maybe_shared(target)
        .map_err(|_| ParseError::Malformed("invalid request target"))?;
    if asterisk {
        return Ok(uri);
    }
    let authority_only = uri.scheme().is_none() && uri.authority().is_some();
    if *method == Method::CONNECT {
        if !authority_only {
            return Err(ParseError::Malformed("connect needs authority-form"));
        }
    } else if authority_only {
        return Err(ParseError::Malformed("authority-form is only for connect"));
    } else if uri.scheme().is_none() && !uri.path().starts_with('/') {
        return Err(ParseError::Malformed("invalid request target"));
    }
    Ok(uri)
}

/// What the fields that steer the connection said, gathered in the one pass that
/// builds the `HeaderMap` (a hashed lookup per field name would cost more than the
/// pass). Errors are kept and reported by [`Seen::decide`] in a fixed order, so the
/// status does not depend on the order of the fields.
struct Seen {
    http11: bool,
    hosts: usize,
    // Connection (RFC 9112 §9.6, §9.3).
    close: bool,
    keep_alive_10: bool,
    connection_upgrade: bool,
    connection_settings: bool,
    // Transfer-Encoding (RFC 9112 §6.1).
    has_te: bool,
    codings: usize,
    last_chunked: bool,
    chunked_count: usize,
    other_coding: bool,
    // Content-Length (RFC 9112 §6.2): the first invalid value wins.
    length: Option<u64>,
    length_error: Option<ParseError>,
    // Expect (RFC 9110 §10.1.1).
    expect_continue: bool,
    expect_other: bool,
    upgrade: UpgradeAsk,
    other_upgrade: OtherUpgrade,
}

impl Seen {
    fn new(http11: bool) -> Self {
        Seen {
            http11,
            hosts: 0,
            close: false,
            keep_alive_10: false,
            connection_upgrade: false,
            connection_settings: false,
            has_te: false,
            codings: 0,
            last_chunked: false,
            chunked_count: 0,
            other_coding: false,
            length: None,
            length_error: None,
            expect_continue: false,
            expect_other: false,
            upgrade: UpgradeAsk::None,
            other_upgrade: OtherUpgrade::None,
        }
    }

    /// Takes note of one field, in the order the fields came.
    fn field(&mut self, name: &HeaderName, value: &[u8]) {
        if *name == header::HOST {
            self.hosts += 1;
        } else if *name == header::CONNECTION {
            for t in list(value) {
                if t.eq_ignore_ascii_case(b"close") {
                    self.close = true;
                } else if t.eq_ignore_ascii_case(b"keep-alive") {
                    // RFC 9112 §9.3: an HTTP/1.0 client asks for persistence this way.
                    self.keep_alive_10 = true;
                } else if t.eq_ignore_ascii_case(b"upgrade") {
                    self.connection_upgrade = true;
                } else if t.eq_ignore_ascii_case(b"http2-settings") {
                    self.connection_settings = true;
                }
            }
        } else if *name == header::TRANSFER_ENCODING {
            self.has_te = true;
            for t in list(value) {
                self.codings += 1;
                self.last_chunked = t.eq_ignore_ascii_case(b"chunked");
                if self.last_chunked {
                    self.chunked_count += 1;
                } else {
                    self.other_coding = true;
                }
            }
        } else if *name == header::CONTENT_LENGTH {
            if self.length_error.is_none() {
                if let Err(e) = self.content_length(value) {
                    self.length_error = Some(e);
                }
            }
        } else if *name == header::EXPECT {
            // RFC 9110 §10.1.1: 100-continue is the only expectation.
            if value.trim_ascii().eq_ignore_ascii_case(b"100-continue") {
                self.expect_continue = true;
            } else {
                self.expect_other = true;
            }
        } else if *name == header::UPGRADE {
            for t in list(value) {
                if t.eq_ignore_ascii_case(b"h2c") {
                    self.upgrade = UpgradeAsk::H2c;
                } else if t.eq_ignore_ascii_case(b"h2") {
                    if self.upgrade == UpgradeAsk::None {
                        self.upgrade = UpgradeAsk::H2Tls;
                    }
                } else if self.other_upgrade == OtherUpgrade::None {
                    self.other_upgrade = if self.upgrade == UpgradeAsk::H2c {
                        OtherUpgrade::AfterH2c
                    } else {
                        OtherUpgrade::First
                    };
                }
            }
        }
    }

    /// RFC 9112 §6.3 item 5: a list of identical lengths is one length.
    fn content_length(&mut self, value: &[u8]) -> Result<(), ParseError> {
        let mut any = false;
        for t in list(value) {
            any = true;
            let n = parse_decimal(t).ok_or(ParseError::Malformed("invalid content-length"))?;
            if self.length.is_some_and(|l| l != n) {
                return Err(ParseError::Malformed("conflicting content-length"));
            }
            self.length = Some(n);
        }
        if !any {
            return Err(ParseError::Malformed("invalid content-length"));
        }
        Ok(())
    }

    /// The checks on what was seen, in their fixed order; the body framing if the
    /// head passes them.
    fn decide(&self) -> Result<BodyLength, ParseError> {
        // RFC 9112 §3.2: exactly one Host in HTTP/1.1.
        if self.http11 && self.hosts != 1 {
            return Err(ParseError::Malformed("http/1.1 needs exactly one host"));
        }
        let body = self.framing()?;
        // RFC 9110 §10.1.1: an HTTP/1.0 server ignores Expect.
        if self.http11 && self.expect_other {
            return Err(ParseError::Expectation);
        }
        Ok(body)
    }

    /// RFC 9112 §6.1-§6.3: the body length, refusing every ambiguous framing.
    fn framing(&self) -> Result<BodyLength, ParseError> {
        if let Some(e) = self.length_error {
            return Err(e);
        }
        if self.has_te {
            // RFC 9112 §6.1: Transfer-Encoding in an HTTP/1.0 message means faulty
            // framing; with Content-Length it is a smuggling attempt (§6.3 item 3).
            if !self.http11 {
                return Err(ParseError::Malformed("transfer-encoding in http/1.0"));
            }
            if self.length.is_some() {
                return Err(ParseError::Malformed(
                    "transfer-encoding with content-length",
                ));
            }
            if self.codings == 0 || !self.last_chunked || self.chunked_count > 1 {
                // RFC 9112 §6.3 item 4: a request whose final coding is not chunked
                // cannot be delimited.
                return Err(ParseError::Malformed(
                    "transfer-encoding must end in chunked",
                ));
            }
            if self.other_coding {
                return Err(ParseError::UnsupportedCoding);
            }
            return Ok(BodyLength::Chunked);
        }
        Ok(BodyLength::Length(self.length.unwrap_or(0)))
    }
}

/// RFC 9112 §3: a request line longer than we accept is 414, decided before the
/// whole head has to arrive. The line starts at `start` and its LF is at `lf`; the
/// limit counts it without its CRLF. Returns whether the line ends in CRLF.
fn request_line(buf: &[u8], start: usize, lf: usize, limits: &Limits) -> Result<bool, ParseError> {
    let crlf = lf > start && buf.get(lf - 1) == Some(&b'\r');
    if lf.saturating_sub(start + usize::from(crlf)) > limits.max_request_line {
        return Err(ParseError::RequestLineTooLong);
    }
    Ok(crlf)
}

/// A Content-Length: 1*DIGIT, without overflow.
fn parse_decimal(s: &[u8]) -> Option<u64> {
    if s.is_empty() {
        return None;
    }
    s.iter().try_fold(0u64, |acc, &b| {
        if !b.is_ascii_digit() {
            return None;
        }
        acc.checked_mul(10)?.checked_add(u64::from(b - b'0'))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: Limits = Limits {
        max_head_size: 1024,
        max_headers: 8,
        max_request_line: 64,
    };

    /// A parsed head with the request parts it filled in.
    #[derive(Debug)]
    struct Parsed {
        head: RequestHead,
        parts: http::request::Parts,
    }

    impl std::ops::Deref for Parsed {
        type Target = RequestHead;
        fn deref(&self) -> &RequestHead {
            &self.head
        }
    }

    fn parse_request(b: &mut BytesMut, limits: &Limits) -> Result<Option<Parsed>, ParseError> {
        let mut req = Request::default();
        let head = super::parse_request(b, limits, &mut req)?;
        Ok(head.map(|head| Parsed {
            head,
            parts: req.into_parts().0,
        }))
    }

    fn parse(s: &str) -> Result<Option<Parsed>, ParseError> {
        let mut b = BytesMut::from(s);
        parse_request(&mut b, &LIMITS)
    }

    fn ok(s: &str) -> Parsed {
        match parse(s) {
            Ok(Some(h)) => h,
            other => panic!("{s:?}: {other:?}"),
        }
    }

    #[test]
    fn simple_get() {
        let h = ok("GET /a?b=c HTTP/1.1\r\nHost: x\r\n\r\n");
        assert_eq!(h.parts.method, Method::GET);
        assert_eq!(h.parts.uri, "/a?b=c");
        assert_eq!(h.parts.version, Version::HTTP_11);
        assert_eq!(h.parts.headers["host"], "x");
        assert_eq!(h.body, BodyLength::Length(0));
        assert!(h.keep_alive);
        assert!(!h.expect_continue);
        assert_eq!(h.upgrade, UpgradeAsk::None);
    }

    #[test]
    fn leaves_pipelined_bytes() {
        let mut b = BytesMut::from("GET / HTTP/1.1\r\nHost: x\r\n\r\nGET /2 HTTP/1.1\r\n");
        assert!(parse_request(&mut b, &LIMITS).unwrap().is_some());
        assert_eq!(&b[..], b"GET /2 HTTP/1.1\r\n");
    }

    #[test]
    fn partial_needs_more() {
        for s in [
            "",
            "GE",
            "GET / HTTP/1.1\r\n",
            "GET / HTTP/1.1\r\nHost: x\r\n",
        ] {
            assert!(matches!(parse(s), Ok(None)), "{s:?}");
        }
    }

    #[test]
    fn decisions() {
        let cases: &[(&str, BodyLength, bool, bool)] = &[
            (
                "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\n",
                BodyLength::Length(5),
                true,
                false,
            ),
            (
                "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5, 5\r\n\r\n",
                BodyLength::Length(5),
                true,
                false,
            ),
            (
                "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n",
                BodyLength::Chunked,
                true,
                false,
            ),
            (
                "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
                BodyLength::Length(0),
                false,
                false,
            ),
            (
                "GET / HTTP/1.0\r\n\r\n",
                BodyLength::Length(0),
                false,
                false,
            ),
            (
                "GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n",
                BodyLength::Length(0),
                true,
                false,
            ),
            (
                "PUT / HTTP/1.1\r\nHost: x\r\nExpect: 100-Continue\r\nContent-Length: 1\r\n\r\n",
                BodyLength::Length(1),
                true,
                true,
            ),
            // RFC 9110 §10.1.1: HTTP/1.0 Expect is ignored.
            (
                "PUT / HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\n",
                BodyLength::Length(1),
                false,
                false,
            ),
            (
                "PUT / HTTP/1.0\r\nExpect: later\r\nContent-Length: 1\r\n\r\n",
                BodyLength::Length(1),
                false,
                false,
            ),
            // Any close wins, wherever it stands.
            (
                "GET / HTTP/1.0\r\nConnection: close, keep-alive\r\n\r\n",
                BodyLength::Length(0),
                false,
                false,
            ),
            (
                "GET / HTTP/1.0\r\nConnection: keep-alive\r\nConnection: close\r\n\r\n",
                BodyLength::Length(0),
                false,
                false,
            ),
        ];
        for (s, body, ka, expect) in cases {
            let h = ok(s);
            assert_eq!(h.body, *body, "{s:?}");
            assert_eq!(h.keep_alive, *ka, "{s:?}");
            assert_eq!(h.expect_continue, *expect, "{s:?}");
        }
    }

    #[test]
    fn upgrade_tokens() {
        use OtherUpgrade::{AfterH2c, First};
        let cases = [
            ("Upgrade: h2c", UpgradeAsk::H2c, OtherUpgrade::None),
            ("Upgrade: websocket, H2C", UpgradeAsk::H2c, First),
            ("Upgrade: h2c, websocket", UpgradeAsk::H2c, AfterH2c),
            ("Upgrade: h2", UpgradeAsk::H2Tls, OtherUpgrade::None),
            (
                "Upgrade: h2\r\nUpgrade: h2c",
                UpgradeAsk::H2c,
                OtherUpgrade::None,
            ),
            ("Upgrade: websocket", UpgradeAsk::None, First),
            ("Upgrade: h2, websocket/13", UpgradeAsk::H2Tls, First),
            (
                "Upgrade: h2c\r\nUpgrade: foo, bar",
                UpgradeAsk::H2c,
                AfterH2c,
            ),
        ];
        for (field, want, other) in cases {
            let h = ok(&format!(
                "GET / HTTP/1.1\r\nHost: x\r\n{field}\r\nConnection: Upgrade, HTTP2-Settings\r\n\r\n"
            ));
            assert_eq!(h.upgrade, want, "{field}");
            assert_eq!(h.other_upgrade, other, "{field}");
            // The head is kept, as it arrived, exactly when it is to be replayed.
            let raw = h.raw.as_deref().map(|r| std::str::from_utf8(r).unwrap());
            let kept = raw.is_some_and(|r| r.contains(field) && r.ends_with("\r\n\r\n"));
            assert_eq!(kept, other != OtherUpgrade::None, "{field}: {raw:?}");
            assert!(h.connection_upgrade && h.connection_settings);
        }
    }

    #[test]
    fn errors_map_to_statuses() {
        let long_line = format!("GET /{} HTTP/1.1\r\nHost: x\r\n\r\n", "a".repeat(80));
        let big_head = format!(
            "GET / HTTP/1.1\r\nHost: x\r\nA: {}\r\n\r\n",
            "a".repeat(1100)
        );
        let many = format!("GET / HTTP/1.1\r\nHost: x\r\n{}\r\n", "A: b\r\n".repeat(9));
        let cases: Vec<(String, u16)> = vec![
            ("GARBAGE\r\n\r\n".into(), 400),
            ("GET / HTTP/1.1\r\n\r\n".into(), 400),
            ("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n".into(), 400),
            ("GET / HTTP/2.0\r\nHost: a\r\n\r\n".into(), 505),
            ("GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n".into(), 400),
            ("GET / HTTP/1.1\r\nHost: a\r\nContent-Length: +1\r\n\r\n".into(), 400),
            ("GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 99999999999999999999\r\n\r\n".into(), 400),
            ("GET / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 1\r\n\r\n".into(), 400),
            ("GET / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n".into(), 400),
            ("GET / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n".into(), 501),
            ("GET / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, chunked\r\n\r\n".into(), 400),
            ("GET / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n".into(), 400),
            ("GET / HTTP/1.1\r\nHost: a\r\nExpect: later\r\n\r\n".into(), 417),
            ("GET * HTTP/1.1\r\nHost: a\r\n\r\n".into(), 400),
            ("GET a:80 HTTP/1.1\r\nHost: a\r\n\r\n".into(), 400),
            ("CONNECT / HTTP/1.1\r\nHost: a\r\n\r\n".into(), 400),
            ("GET / HTTP/1.1\r\nHost: a\r\nBad Name: x\r\n\r\n".into(), 400),
            ("GET / HTTP/1.1\r\nHost: a\r\nA: \x01\r\n\r\n".into(), 400),
            // Bare LF, bare CR, obs-fold, space before the colon, NUL.
            ("GET / HTTP/1.1\nHost: a\n\n".into(), 400),
            ("GET / HTTP/1.1\r\nHost: a\n\r\n".into(), 400),
            ("\nGET / HTTP/1.1\r\nHost: a\r\n\r\n".into(), 400),
            ("GET / HTTP/1.1\r\nHost: a\r\n\n".into(), 400),
            ("GET / HTTP/1.1\r\nHost: a \t\nX: b\r\n\r\n".into(), 400),
            ("GET / HTTP/1.1\r\nHost: a\r\nX:\nY: b\r\n\r\n".into(), 400),
            // A value longer than its line's distance to the previous LF.
            ("GET / HTTP/1.1\r\nHost: a\r\nX: abcdefghij\n\r\n".into(), 400),
            ("\r\nGET / HTTP/1.1\nHost: a\r\n\r\n".into(), 400),
            ("GET / HTTP/1.1\r\nHost: a\r\nX: a\rb\r\n\r\n".into(), 400),
            ("GET / HTTP/1.1\r\nHost: a\r\nX: a\r\n b\r\n\r\n".into(), 400),
            ("GET / HTTP/1.1\r\nHost: a\r\nX : a\r\n\r\n".into(), 400),
            ("GET / HTTP/1.1\r\nHost: a\r\nX: \0\r\n\r\n".into(), 400),
            // The framing is judged before the expectation, whatever the order.
            ("GET / HTTP/1.1\r\nExpect: later\r\nHost: a\r\nContent-Length: x\r\n\r\n".into(), 400),
            ("GET / HTTP/1.1\r\nHost: a\r\nExpect: later\r\nTransfer-Encoding: gzip, chunked\r\n\r\n".into(), 501),
            (long_line, 414),
            (big_head, 431),
            (many, 431),
        ];
        for (s, status) in cases {
            match parse(&s) {
                Err(e) => assert_eq!(
                    error_status(&Error::new(Kind::Parse).detail(e)).as_u16(),
                    status,
                    "{s:?}: {e}"
                ),
                other => panic!("{s:?}: {other:?}"),
            }
        }
    }

    #[test]
    fn error_status_of_each_kind_and_detail() {
        // (error, status): the kind decides before any detail does.
        let cases = [
            (Error::new(Kind::Timeout), 408),
            (
                Error::new(Kind::Timeout).detail(ParseError::HeadTooLarge),
                408,
            ),
            (Error::new(Kind::TooLarge), 413),
            (Error::new(Kind::Parse), 400),
            (Error::new(Kind::Parse).detail(ParseError::Expectation), 417),
            (
                Error::new(Kind::Parse).detail(ParseError::UnsupportedCoding),
                501,
            ),
        ];
        for (e, status) in cases {
            assert_eq!(error_status(&e).as_u16(), status, "{e:?}");
        }
    }

    #[test]
    fn parse_errors_display() {
        let cases = [
            (ParseError::Malformed("invalid method"), "invalid method"),
            (ParseError::RequestLineTooLong, "request line too long"),
            (ParseError::HeadTooLarge, "request head too large"),
            (ParseError::TooManyHeaders, "too many header fields"),
            (ParseError::UnsupportedVersion, "unsupported http version"),
            (ParseError::UnsupportedCoding, "unsupported transfer coding"),
            (ParseError::Expectation, "unsupported expectation"),
        ];
        for (err, want) in cases {
            assert_eq!(err.to_string(), want);
        }
    }

    #[test]
    fn every_line_must_end_in_crlf() {
        // Each line of the head ends in CRLF or a bare LF: any bare LF is a 400.
        let lines = ["GET / HTTP/1.1", "Host: a", "X: b \t", "Y:", ""];
        for mask in 0..(1u32 << lines.len()) {
            let mut msg = String::new();
            for (i, line) in lines.iter().enumerate() {
                msg.push_str(line);
                msg.push_str(if mask & (1 << i) != 0 { "\n" } else { "\r\n" });
            }
            match parse(&msg) {
                Ok(Some(_)) => assert_eq!(mask, 0, "{msg:?}"),
                Err(ParseError::Malformed(_)) => assert_ne!(mask, 0, "{msg:?}"),
                other => panic!("{msg:?}: {other:?}"),
            }
        }
    }

    #[test]
    fn many_fields_spill_past_the_inline_slots() {
        let limits = Limits {
            max_headers: INLINE_FIELDS * 2,
            ..LIMITS
        };
        let extra: String = (0..INLINE_FIELDS + 3)
            .map(|i| format!("X-{i}: {i}\r\n"))
            .collect();
        let mut b = BytesMut::from(
            format!("POST / HTTP/1.1\r\nHost: h\r\n{extra}Content-Length: 2\r\n\r\nab").as_str(),
        );
        let h = parse_request(&mut b, &limits).unwrap().unwrap();
        assert_eq!(h.parts.headers.len(), INLINE_FIELDS + 5);
        assert_eq!(h.parts.headers["x-34"], "34");
        assert_eq!(h.parts.headers["host"], "h");
        assert_eq!(h.body, BodyLength::Length(2));
        assert_eq!(&b[..], b"ab");
    }

    #[test]
    fn target_forms() {
        assert_eq!(ok("OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n").parts.uri, "*");
        assert_eq!(
            ok("CONNECT a:443 HTTP/1.1\r\nHost: a\r\n\r\n").parts.uri,
            "a:443"
        );
        let h = ok("GET http://a:8/p?q HTTP/1.1\r\nHost: a\r\n\r\n");
        assert_eq!(h.parts.uri.authority().map(|a| a.as_str()), Some("a:8"));
    }

    #[test]
    fn incomplete_huge_head_is_refused_early() {
        let s = format!("GET / HTTP/1.1\r\nHost: x\r\nA: {}", "a".repeat(1100));
        assert_eq!(parse(&s).unwrap_err(), ParseError::HeadTooLarge);
        let s = format!("GET /{}", "a".repeat(100));
        assert_eq!(parse(&s).unwrap_err(), ParseError::RequestLineTooLong);
    }

    #[test]
    fn request_line_limit_is_exact() {
        // LIMITS.max_request_line is 64: "GET /" + path + " HTTP/1.1" of 64 octets.
        let at = format!("GET /{} HTTP/1.1\r\nHost: x\r\n\r\n", "a".repeat(64 - 14));
        assert!(parse(&at).unwrap().is_some());
        let over = format!("GET /{} HTTP/1.1\r\nHost: x\r\n\r\n", "a".repeat(65 - 14));
        assert_eq!(parse(&over).unwrap_err(), ParseError::RequestLineTooLong);
        // Empty lines before the request line do not hide its length.
        let lead = format!(
            "\r\n\r\nGET /{} HTTP/1.1\r\nHost: x\r\n\r\n",
            "a".repeat(65 - 14)
        );
        assert_eq!(parse(&lead).unwrap_err(), ParseError::RequestLineTooLong);
        let lead_ok = format!(
            "\r\nGET /{} HTTP/1.1\r\nHost: x\r\n\r\n",
            "a".repeat(64 - 14)
        );
        assert!(parse(&lead_ok).unwrap().is_some());
        // A leading bare LF is refused at once, before the line behind it arrives.
        assert_eq!(
            parse("\nGET /").unwrap_err(),
            ParseError::Malformed("bare lf in request head")
        );
        // Incomplete: 64 octets and a CR are still within the limit.
        let partial = format!("GET /{} HTTP/1.1\r", "a".repeat(64 - 14));
        assert!(parse(&partial).unwrap().is_none());
    }

    #[test]
    fn head_size_limit_is_exact() {
        // A complete head of exactly max_head_size bytes passes; one byte more is 431.
        let head = |len: usize| {
            let fixed = "GET / HTTP/1.1\r\nHost: x\r\nA: \r\n\r\n".len();
            format!(
                "GET / HTTP/1.1\r\nHost: x\r\nA: {}\r\n\r\n",
                "a".repeat(len - fixed)
            )
        };
        let at = head(LIMITS.max_head_size);
        assert_eq!(at.len(), LIMITS.max_head_size);
        assert!(parse(&at).unwrap().is_some());
        let over = head(LIMITS.max_head_size + 1);
        assert_eq!(parse(&over).unwrap_err(), ParseError::HeadTooLarge);
    }

    #[test]
    fn request_line_is_judged_before_the_rest_of_the_head() {
        // Incomplete, refused for its fields or its bare LF, or after empty lines:
        // 414 all the same.
        for end in ["\r\n", "\n"] {
            let line = format!("GET /{} HTTP/1.1{end}", "a".repeat(65 - 14));
            for rest in ["Host: x\r\n", "Host: x\r\nBad Name: y\r\n\r\n"] {
                for lead in ["", "\r\n", "\r\n\r\n"] {
                    let s = format!("{lead}{line}{rest}");
                    assert_eq!(
                        parse(&s).unwrap_err(),
                        ParseError::RequestLineTooLong,
                        "{s:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn request_line_limit_is_exact_without_fields() {
        // HTTP/1.0 needs no Host: the request line is followed by the empty line.
        let at = format!("GET /{} HTTP/1.0\r\n\r\n", "a".repeat(64 - 14));
        assert!(parse(&at).unwrap().is_some());
        let over = format!("GET /{} HTTP/1.0\r\n\r\n", "a".repeat(65 - 14));
        assert_eq!(parse(&over).unwrap_err(), ParseError::RequestLineTooLong);
    }

    #[test]
    fn more_headers_than_the_stack_slots() {
        let limits = Limits {
            max_headers: STACK_HEADERS + 50,
            max_head_size: 64 * 1024,
            ..LIMITS
        };
        let extra: String = (0..STACK_HEADERS + 40)
            .map(|i| format!("X-{i}: {i}\r\n"))
            .collect();
        let mut b = BytesMut::from(format!("GET / HTTP/1.1\r\nHost: h\r\n{extra}\r\n").as_str());
        let h = parse_request(&mut b, &limits).unwrap().unwrap();
        assert_eq!(h.parts.headers.len(), STACK_HEADERS + 41);
        assert_eq!(h.parts.headers["x-167"], "167");
        // One field more than the configured count is refused.
        let limits = Limits {
            max_headers: STACK_HEADERS + 40,
            ..limits
        };
        let mut b = BytesMut::from(format!("GET / HTTP/1.1\r\nHost: h\r\n{extra}\r\n").as_str());
        assert_eq!(
            parse_request(&mut b, &limits).unwrap_err(),
            ParseError::TooManyHeaders
        );
    }

    #[test]
    fn split_at_every_byte_parses_the_same() {
        let msg = b"POST /x HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nX: y\r\n\r\nabc";
        let whole = {
            let mut b = BytesMut::from(&msg[..]);
            parse_request(&mut b, &LIMITS).unwrap().unwrap()
        };
        for cut in 0..msg.len() {
            let mut b = BytesMut::from(&msg[..cut]);
            let first = parse_request(&mut b, &LIMITS).unwrap();
            let head = match first {
                Some(h) => h,
                None => {
                    b.extend_from_slice(&msg[cut..]);
                    parse_request(&mut b, &LIMITS).unwrap().unwrap()
                }
            };
            assert_eq!(head.parts.uri, whole.parts.uri);
            assert_eq!(head.parts.headers, whole.parts.headers);
            assert_eq!(head.body, whole.body);
        }
    }
}
