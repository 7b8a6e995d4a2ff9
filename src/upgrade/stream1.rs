//! The HTTP/1.1 request that carried the h2c upgrade, re-encoded as the HTTP/2
//! request on stream 1 (RFC 7540 §3.2: "The HTTP/1.1 request that is sent prior to
//! upgrade is assigned a stream identifier of 1").
//!
//! The header block is fed to h2 as if the client had sent it, so it must decode
//! against h2's HPACK state, which starts in step with a client encoder that has not
//! sent anything yet. Every field is therefore a literal that is not indexed: nothing
//! enters either dynamic table.

use std::borrow::Cow;
use std::fmt;

use bytes::{BufMut, BytesMut};
use http::header::{self, HeaderName};
use http::uri::{Authority, Scheme};
use http::Method;

use super::frame;
use crate::field::list;

/// END_STREAM flag (RFC 7540 §6.2): the upgrade request's body is delivered by the
/// caller, not as DATA frames on stream 1.
const FLAG_END_STREAM: u8 = 0x1;
/// END_HEADERS flag (RFC 7540 §6.2, §6.10).
const FLAG_END_HEADERS: u8 = 0x4;
/// The stream the upgrade request becomes (RFC 7540 §3.2).
const STREAM_ID: u32 = 1;

/// Largest frame payload written. RFC 7540 §4.2: every endpoint accepts 2^14 octets,
/// and the peer's own SETTINGS_MAX_FRAME_SIZE is not known yet.
const MAX_FRAME_PAYLOAD: usize = 16_384;

/// HPACK per-field overhead in the header list size (RFC 7540 §6.5.2, RFC 7541 §4.1).
const FIELD_OVERHEAD: usize = 32;

/// Cap on the header list size, whatever the caller allows: h2's HPACK decoder
/// refuses integers longer than 5 octets (a string length of at most 2^7-1 + 2^28-1),
/// and a list smaller than 2^28 cannot contain a longer string.
const MAX_HPACK_LIST_SIZE: usize = 1 << 28;

/// Largest value that fits the 7-bit prefix of a string length (RFC 7541 §5.1).
const PREFIX_7_MAX: usize = 0x7F;

/// First octet of "Literal Header Field without Indexing — New Name" (RFC 7541 §6.2.2).
const LITERAL_NOT_INDEXED_NEW_NAME: u8 = 0x00;

/// Fields never carried into HTTP/2. RFC 9113 §8.2.2 forbids the connection-specific
/// ones; `http2-settings` was consumed by the upgrade itself; `host` became
/// `:authority` (RFC 9113 §8.3.1); `expect` was answered over HTTP/1.1; and
/// `content-length` would contradict END_STREAM on the HEADERS frame, which h2
/// resets (RFC 9113 §8.1.1), while the body reaches the handler out of band.
static DROPPED: [HeaderName; 9] = [
    header::CONNECTION,
    header::UPGRADE,
    HeaderName::from_static("http2-settings"),
    HeaderName::from_static("keep-alive"),
    HeaderName::from_static("proxy-connection"),
    header::TRANSFER_ENCODING,
    header::HOST,
    header::EXPECT,
    header::CONTENT_LENGTH,
];

/// Why a request cannot be carried as stream 1 (each is a reason to decline the upgrade and answer over HTTP/1.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Stream1Error {
    /// Neither an absolute-form target nor a `Host` field names the authority.
    NoAuthority,
    /// The `Host` field (or target authority) is not a valid authority, carries
    /// userinfo (RFC 9113 §8.3.1), or `Host` is repeated (RFC 9112 §3.2).
    BadAuthority,
    /// An absolute-form target whose scheme is not `http`; h2c is `http` only
    /// (RFC 7540 §3.1).
    BadScheme,
    /// A target that is not origin-form, absolute-form or `*` (e.g. authority-form).
    BadPath,
    /// CONNECT has no `:scheme` or `:path` (RFC 9113 §8.5) and no body can follow
    /// END_STREAM, so it cannot be stream 1.
    Connect,
    /// The header list is at least `limit` bytes as RFC 7540 §6.5.2 counts it.
    TooLarge {
        /// Size of the header list that would have been sent.
        size: usize,
        /// The limit it reached.
        limit: usize,
    },
}

impl fmt::Display for Stream1Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Stream1Error::NoAuthority => f.write_str("request has no host"),
            Stream1Error::BadAuthority => f.write_str("request host is invalid"),
            Stream1Error::BadScheme => f.write_str("request target scheme is not http"),
            Stream1Error::BadPath => f.write_str("request target has no http/2 path"),
            Stream1Error::Connect => f.write_str("connect request cannot be upgraded"),
            Stream1Error::TooLarge { size, limit } => {
                write!(f, "header list of {size} bytes reaches limit of {limit}")
            }
        }
    }
}

impl std::error::Error for Stream1Error {}

/// Encodes the request head `parts` (as parsed from HTTP/1.1) as an HTTP/2 header block on stream 1,
/// framed as one HEADERS frame with END_STREAM, followed by CONTINUATION frames when the block is larger
/// than 16384 bytes (the frame size every peer accepts), END_HEADERS on the last frame. Appends the frames to dst.
/// `max_header_list_size` is the server's SETTINGS_MAX_HEADER_LIST_SIZE: a list larger than that (size as RFC 7540 §6.5.2 counts it:
/// name + value + 32 per field, pseudo-headers included) is refused with TooLarge, because h2 would refuse it after the 101.
///
/// A list of exactly `max_header_list_size` is refused too: h2 0.4.20 treats
/// reaching the limit as exceeding it. A `te` field is kept as `te: trailers` when
/// any `te` element is `trailers` (case-insensitive) and dropped otherwise, even when
/// `Connection` names it (RFC 9110 §10.1.4 requires that). On error `dst` is unchanged.
pub(crate) fn encode_stream1_headers(
    parts: &http::request::Parts,
    max_header_list_size: usize,
    dst: &mut BytesMut,
) -> Result<(), Stream1Error> {
    if parts.method == Method::CONNECT {
        return Err(Stream1Error::Connect);
    }
    let authority = authority(parts)?;
    let path = path(&parts.uri)?;

    // RFC 9113 §8.3: pseudo-header fields first, then the regular ones. Two passes
    // over the fields (size, then bytes) rather than a list of them: no allocation
    // when the block fits one frame, as it nearly always does.
    let pseudo: [(&[u8], &[u8]); 4] = [
        (b":method", parts.method.as_str().as_bytes()),
        (b":scheme", b"http"),
        (b":authority", authority.as_bytes()),
        (b":path", path.as_bytes()),
    ];
    let (mut size, mut block_len) = (0usize, 0usize);
    let mut measure = |name: &[u8], value: &[u8]| {
        size = size
            .saturating_add(name.len())
            .saturating_add(value.len())
            .saturating_add(FIELD_OVERHEAD);
        block_len = block_len.saturating_add(literal_len(name, value));
    };
    for (name, value) in pseudo {
        measure(name, value);
    }
    regular_fields(&parts.headers, &mut measure);

    let limit = max_header_list_size.min(MAX_HPACK_LIST_SIZE);
    if size >= limit {
        return Err(Stream1Error::TooLarge { size, limit });
    }

    let write = |dst: &mut BytesMut| {
        for (name, value) in pseudo {
            put_literal(name, value, dst);
        }
        regular_fields(&parts.headers, |name, value| put_literal(name, value, dst));
    };
    if block_len <= MAX_FRAME_PAYLOAD {
        dst.reserve(frame::HEADER_LEN + block_len);
        frame::put_header(
            block_len,
            frame::TYPE_HEADERS,
            FLAG_END_STREAM | FLAG_END_HEADERS,
            STREAM_ID,
            dst,
        );
        write(dst);
    } else {
        let mut block = BytesMut::with_capacity(block_len);
        write(&mut block);
        put_frames(&block, dst);
    }
    Ok(())
}

/// Bytes [`put_literal`] writes for one field.
fn literal_len(name: &[u8], value: &[u8]) -> usize {
    1 + int_7_len(name.len()) + name.len() + int_7_len(value.len()) + value.len()
}

/// Bytes [`put_int_7`] writes for `value`.
fn int_7_len(value: usize) -> usize {
    if value < PREFIX_7_MAX {
        return 1;
    }
    let mut n = 2;
    let mut rest = (value - PREFIX_7_MAX) >> 7;
    while rest > 0 {
        n += 1;
        rest >>= 7;
    }
    n
}

/// The request as `h2` presents stream 1 when it decodes the HEADERS that
/// [`encode_stream1_headers`] writes: version HTTP/2, an absolute `http` URI, the
/// same fields. A streamed upgrade calls the service before `h2` has seen the
/// request, with this view, so the service sees one shape on every upgrade path.
/// `content-length` is kept here: the body still arrives with that length.
pub(crate) fn request_view(
    parts: &http::request::Parts,
) -> Result<http::request::Parts, Stream1Error> {
    let authority = authority(parts)?;
    let path = path(&parts.uri)?;
    let uri = http::Uri::builder()
        .scheme(Scheme::HTTP)
        .authority(authority)
        .path_and_query(path.as_ref())
        .build()
        .map_err(|_| Stream1Error::BadPath)?;
    let mut headers = http::HeaderMap::with_capacity(parts.headers.len() + 1);
    regular_fields(&parts.headers, |name, value| {
        if let (Ok(n), Ok(v)) = (
            http::HeaderName::from_bytes(name),
            http::HeaderValue::from_bytes(value),
        ) {
            headers.append(n, v);
        }
    });
    if let Some(len) = parts.headers.get(header::CONTENT_LENGTH) {
        headers.insert(header::CONTENT_LENGTH, len.clone());
    }
    let (mut view, ()) = http::Request::builder()
        .method(parts.method.clone())
        .uri(uri)
        .version(http::Version::HTTP_2)
        .body(())
        .map_err(|_| Stream1Error::BadPath)?
        .into_parts();
    view.headers = headers;
    Ok(view)
}

/// Picks the `:authority`: RFC 9112 §3.2.3 says an absolute-form target's authority
/// overrides `Host`; otherwise `Host` is the only source.
fn authority(parts: &http::request::Parts) -> Result<&str, Stream1Error> {
    let mut hosts = parts.headers.get_all(header::HOST).iter();
    let host = hosts.next();
    // RFC 9112 §3.2: more than one Host is a 400 over HTTP/1.1, so it is no request to upgrade.
    if hosts.next().is_some() {
        return Err(Stream1Error::BadAuthority);
    }
    let authority = match (parts.uri.authority(), host) {
        (Some(authority), _) => authority.as_str(),
        (None, Some(host)) => {
            // h2 parses :authority with the same parser and resets the stream on failure.
            Authority::try_from(host.as_bytes()).map_err(|_| Stream1Error::BadAuthority)?;
            host.to_str().map_err(|_| Stream1Error::BadAuthority)?
        }
        (None, None) => return Err(Stream1Error::NoAuthority),
    };
    // RFC 9113 §8.3.1: ":authority MUST NOT include the deprecated userinfo subcomponent".
    if authority.is_empty() || authority.contains('@') || !port_is_digits(authority) {
        return Err(Stream1Error::BadAuthority);
    }
    Ok(authority)
}

/// Whether the port, if any, is `*DIGIT` (RFC 3986 §3.2.3); `http::uri::Authority`
/// (and so h2) accepts any port text and only fails later, in `port_u16`.
fn port_is_digits(authority: &str) -> bool {
    // The colons of an IP-literal are inside its brackets (RFC 3986 §3.2.2).
    let after_host = match authority.rfind(']') {
        Some(end) => authority.get(end + 1..).unwrap_or(""),
        None => authority,
    };
    match after_host.rfind(':') {
        Some(colon) => after_host
            .get(colon + 1..)
            .is_some_and(|port| port.bytes().all(|b| b.is_ascii_digit())),
        None => true,
    }
}

/// Builds `:path` from the target (RFC 9113 §8.3.1): path and query, `*` for an
/// asterisk-form OPTIONS, and `/` for an absolute-form target with an empty path.
fn path(uri: &http::Uri) -> Result<Cow<'_, str>, Stream1Error> {
    match uri.scheme() {
        Some(scheme) if *scheme != Scheme::HTTP => return Err(Stream1Error::BadScheme),
        // Authority-form (no scheme, an authority, no path) has no :path.
        None if uri.authority().is_some() => return Err(Stream1Error::BadPath),
        _ => {}
    }
    // `Uri::path` already yields "/" for an absolute-form target with an empty path.
    let path = uri.path();
    if path.is_empty() {
        return Err(Stream1Error::BadPath);
    }
    Ok(match uri.query() {
        None => Cow::Borrowed(path),
        Some(query) => Cow::Owned(format!("{path}?{query}")),
    })
}

/// Hands each regular field that may cross into HTTP/2 to `f`, in their HTTP/1.1
/// order.
fn regular_fields<'a>(headers: &'a http::HeaderMap, mut f: impl FnMut(&'a [u8], &'a [u8])) {
    // RFC 9110 §7.6.1: Connection names further fields that are hop-by-hop only.
    let connection = headers.get_all(header::CONNECTION);
    let named_by_connection = |name: &HeaderName| {
        connection
            .iter()
            .flat_map(|value| list(value.as_bytes()))
            .any(|token| token.eq_ignore_ascii_case(name.as_str().as_bytes()))
    };
    let mut te_sent = false;
    for (name, value) in headers {
        if *name == header::TE {
            // RFC 9113 §8.2.2: TE may only carry "trailers". The other transfer codings
            // are HTTP/1.1 hop-by-hop matters; h2 (comparing case-sensitively) resets the
            // stream over anything else, so send the canonical value at most once.
            if !te_sent && has_trailers(value.as_bytes()) {
                f(b"te", b"trailers");
                te_sent = true;
            }
            continue;
        }
        if DROPPED.contains(name) || named_by_connection(name) {
            continue;
        }
        f(name.as_str().as_bytes(), value.as_bytes());
    }
}

/// Whether a TE value lists the `trailers` element (RFC 9110 §10.1.4).
fn has_trailers(value: &[u8]) -> bool {
    list(value).any(|element| element.eq_ignore_ascii_case(b"trailers"))
}

/// Appends one "Literal Header Field without Indexing — New Name" (RFC 7541 §6.2.2).
fn put_literal(name: &[u8], value: &[u8], dst: &mut BytesMut) {
    dst.put_u8(LITERAL_NOT_INDEXED_NEW_NAME);
    put_string(name, dst);
    put_string(value, dst);
}

/// Appends a string literal without Huffman coding (RFC 7541 §5.2: H bit 0).
fn put_string(s: &[u8], dst: &mut BytesMut) {
    put_int_7(s.len(), dst);
    dst.put_slice(s);
}

/// Appends an integer with a 7-bit prefix and the H bit clear (RFC 7541 §5.1).
fn put_int_7(value: usize, dst: &mut BytesMut) {
    if value < PREFIX_7_MAX {
        // Fits the prefix: the cast cannot truncate.
        dst.put_u8(value as u8);
        return;
    }
    // RFC 7541 §5.1: all prefix bits set, then the rest 7 bits at a time, least
    // significant group first, with the high bit marking "more follows".
    dst.put_u8(PREFIX_7_MAX as u8);
    let mut rest = value - PREFIX_7_MAX;
    while rest >= 0x80 {
        dst.put_u8((rest & 0x7F) as u8 | 0x80);
        rest >>= 7;
    }
    dst.put_u8(rest as u8);
}

/// Splits the header block into HEADERS + CONTINUATION frames (RFC 7540 §6.2, §6.10).
fn put_frames(block: &[u8], dst: &mut BytesMut) {
    let frames = block.len().div_ceil(MAX_FRAME_PAYLOAD).max(1);
    dst.reserve(block.len() + frames * 9);
    let mut chunks = block.chunks(MAX_FRAME_PAYLOAD).peekable();
    let mut first = true;
    while let Some(chunk) = chunks.next() {
        let (kind, mut flags) = if first {
            (frame::TYPE_HEADERS, FLAG_END_STREAM)
        } else {
            // RFC 7540 §6.10: CONTINUATION defines END_HEADERS only.
            (frame::TYPE_CONTINUATION, 0)
        };
        if chunks.peek().is_none() {
            flags |= FLAG_END_HEADERS;
        }
        frame::put_header(chunk.len(), kind, flags, STREAM_ID, dst);
        dst.put_slice(chunk);
        first = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (field, value, what it becomes: None when dropped)
    type FilterCase = (
        &'static str,
        &'static [u8],
        Option<(&'static str, &'static str)>,
    );

    /// (method, target, host, expected :authority, expected :path)
    type TargetCase = (
        &'static str,
        &'static str,
        Option<&'static [u8]>,
        &'static str,
        &'static str,
    );

    /// Parts of a request as an HTTP/1.1 parser would build them.
    fn parts(method: &str, target: &str, headers: &[(&str, &[u8])]) -> http::request::Parts {
        let mut builder = http::Request::builder().method(method).uri(target);
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        match builder.body(()) {
            Ok(req) => req.into_parts().0,
            Err(e) => panic!("bad test request: {e}"),
        }
    }

    /// Encodes with h2's default header list limit (16 MiB).
    fn encode(p: &http::request::Parts) -> Result<BytesMut, Stream1Error> {
        let mut dst = BytesMut::new();
        encode_stream1_headers(p, 16 << 20, &mut dst).map(|()| dst)
    }

    /// Our own HPACK encoding of a field list, to compare blocks with.
    fn block(fields: &[(&str, &str)]) -> Vec<u8> {
        let mut dst = BytesMut::new();
        for (name, value) in fields {
            put_literal(name.as_bytes(), value.as_bytes(), &mut dst);
        }
        dst.to_vec()
    }

    /// Splits frames into (type, flags, stream, payload), checking the framing.
    fn frames(mut buf: &[u8]) -> Vec<(u8, u8, u32, Vec<u8>)> {
        let mut out = Vec::new();
        while !buf.is_empty() {
            assert!(buf.len() >= 9, "truncated frame header");
            let len = usize::from(buf[0]) << 16 | usize::from(buf[1]) << 8 | usize::from(buf[2]);
            let stream = u32::from_be_bytes([buf[5], buf[6], buf[7], buf[8]]);
            assert!(buf.len() >= 9 + len, "truncated frame payload");
            out.push((buf[3], buf[4], stream, buf[9..9 + len].to_vec()));
            buf = &buf[9 + len..];
        }
        out
    }

    /// Decodes a block made only of not-indexed new-name literals without Huffman.
    fn decode_block(mut buf: &[u8]) -> Vec<(String, String)> {
        fn int(buf: &mut &[u8]) -> usize {
            let first = buf[0];
            *buf = &buf[1..];
            assert_eq!(first & 0x80, 0, "huffman bit set");
            let mut v = usize::from(first & 0x7F);
            if v < 0x7F {
                return v;
            }
            let mut shift = 0;
            loop {
                let b = buf[0];
                *buf = &buf[1..];
                v += usize::from(b & 0x7F) << shift;
                shift += 7;
                if b & 0x80 == 0 {
                    return v;
                }
            }
        }
        fn string(buf: &mut &[u8]) -> String {
            let len = int(buf);
            let s = String::from_utf8(buf[..len].to_vec()).unwrap_or_default();
            *buf = &buf[len..];
            s
        }
        let mut out = Vec::new();
        while !buf.is_empty() {
            assert_eq!(buf[0], 0x00, "not a literal without indexing, new name");
            buf = &buf[1..];
            let name = string(&mut buf);
            let value = string(&mut buf);
            out.push((name, value));
        }
        out
    }

    /// Encodes and decodes back to the field list, checking single-frame framing.
    fn fields_of(p: &http::request::Parts) -> Vec<(String, String)> {
        let out = match encode(p) {
            Ok(out) => out,
            Err(e) => panic!("encode failed: {e}"),
        };
        let frames = frames(&out);
        assert_eq!(frames.len(), 1);
        decode_block(&frames[0].3)
    }

    /// A field list in the shape [`decode_block`] returns.
    fn owned(fields: &[(&str, &str)]) -> Vec<(String, String)> {
        fields
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn integer_encoding() {
        // RFC 7541 §5.1 with N = 7, including C.1.2's 1337 (which is for N = 5:
        // here 1337 - 127 = 1210 = 0b1001_0111010 -> 0xBA 0x09).
        let cases: &[(usize, &[u8])] = &[
            (0, &[0x00]),
            (10, &[0x0A]),
            (126, &[0x7E]),
            (127, &[0x7F, 0x00]),
            (128, &[0x7F, 0x01]),
            (254, &[0x7F, 0x7F]),
            (255, &[0x7F, 0x80, 0x01]),
            (1337, &[0x7F, 0xBA, 0x09]),
            (16_511, &[0x7F, 0x80, 0x80, 0x01]),
            (40_000, &[0x7F, 0xC1, 0xB7, 0x02]),
        ];
        for (value, want) in cases {
            let mut dst = BytesMut::new();
            put_int_7(*value, &mut dst);
            assert_eq!(&dst[..], *want, "value {value}");
            assert_eq!(int_7_len(*value), want.len(), "length of {value}");
        }
        for value in (0..70_000).chain([1 << 21, (1 << 28) - 1, 1 << 28]) {
            let mut dst = BytesMut::new();
            put_int_7(value, &mut dst);
            assert_eq!(int_7_len(value), dst.len(), "length of {value}");
        }
    }

    #[test]
    fn small_get_exact_bytes() {
        let p = parts("GET", "/", &[("host", b"a.b"), ("accept", b"*/*")]);
        let out = match encode(&p) {
            Ok(out) => out,
            Err(e) => panic!("{e}"),
        };
        #[rustfmt::skip]
        let want: &[u8] = &[
            // HEADERS, length 64, END_STREAM | END_HEADERS, stream 1
            0x00, 0x00, 0x40, 0x01, 0x05, 0x00, 0x00, 0x00, 0x01,
            0x00, 0x07, b':', b'm', b'e', b't', b'h', b'o', b'd', 0x03, b'G', b'E', b'T',
            0x00, 0x07, b':', b's', b'c', b'h', b'e', b'm', b'e', 0x04, b'h', b't', b't', b'p',
            0x00, 0x0A, b':', b'a', b'u', b't', b'h', b'o', b'r', b'i', b't', b'y', 0x03, b'a', b'.', b'b',
            0x00, 0x05, b':', b'p', b'a', b't', b'h', 0x01, b'/',
            0x00, 0x06, b'a', b'c', b'c', b'e', b'p', b't', 0x03, b'*', b'/', b'*',
        ];
        assert_eq!(&out[..], want);
    }

    #[test]
    fn header_filtering() {
        // (field, value, kept as)
        let cases: &[FilterCase] = &[
            ("connection", b"keep-alive", None),
            ("upgrade", b"h2c", None),
            ("http2-settings", b"AAMAAABkAAQAAP__", None),
            ("keep-alive", b"timeout=5", None),
            ("proxy-connection", b"keep-alive", None),
            ("transfer-encoding", b"chunked", None),
            ("expect", b"100-continue", None),
            ("content-length", b"12", None),
            ("te", b"trailers", Some(("te", "trailers"))),
            ("te", b"Trailers", Some(("te", "trailers"))),
            ("te", b"gzip, trailers", Some(("te", "trailers"))),
            ("te", b"trailers;q=1", None),
            ("te", b"gzip", None),
            ("te", b"", None),
            ("accept", b"*/*", Some(("accept", "*/*"))),
            ("x-empty", b"", Some(("x-empty", ""))),
            ("cookie", b"a=b; c=d", Some(("cookie", "a=b; c=d"))),
        ];
        for (name, value, kept) in cases {
            let p = parts("POST", "/x", &[("host", b"h"), (*name, *value)]);
            let mut want = owned(&[
                (":method", "POST"),
                (":scheme", "http"),
                (":authority", "h"),
                (":path", "/x"),
            ]);
            want.extend(kept.iter().map(|(n, v)| (n.to_string(), v.to_string())));
            assert_eq!(fields_of(&p), want, "field {name}: {:?}", value);
        }
    }

    #[test]
    fn te_sent_once() {
        let p = parts(
            "GET",
            "/",
            &[
                ("host", b"h"),
                ("te", b"gzip"),
                ("te", b"trailers"),
                ("te", b"TRAILERS"),
            ],
        );
        let fields = fields_of(&p);
        let te: Vec<_> = fields.iter().filter(|(n, _)| n == "te").collect();
        assert_eq!(te, [&("te".to_string(), "trailers".to_string())]);
    }

    #[test]
    fn connection_named_fields_dropped() {
        let p = parts(
            "GET",
            "/",
            &[
                ("host", b"h"),
                ("connection", b"Upgrade, HTTP2-Settings,\tX-Hop , te"),
                ("connection", b",,close,X-Other"),
                ("x-hop", b"1"),
                ("x-other", b"2"),
                ("x-keep", b"3"),
                ("close", b"4"),
                ("te", b"trailers"),
            ],
        );
        assert_eq!(
            fields_of(&p),
            owned(&[
                (":method", "GET"),
                (":scheme", "http"),
                (":authority", "h"),
                (":path", "/"),
                ("x-keep", "3"),
                // RFC 9110 §10.1.4 makes senders list TE in Connection; it is kept.
                ("te", "trailers"),
            ])
        );
    }

    #[test]
    fn order_and_repeats_kept() {
        let p = parts(
            "GET",
            "/a/b?q=1&r",
            &[
                ("host", b"example.com:8080"),
                ("b", b"1"),
                ("a", b"2"),
                ("b", b"3"),
                ("x-bin", b"\x80\xff tab\there"),
            ],
        );
        let out = match encode(&p) {
            Ok(out) => out,
            Err(e) => panic!("{e}"),
        };
        let frames = frames(&out);
        let mut want = block(&[
            (":method", "GET"),
            (":scheme", "http"),
            (":authority", "example.com:8080"),
            (":path", "/a/b?q=1&r"),
            ("b", "1"),
            ("b", "3"),
            ("a", "2"),
        ]);
        let mut tail = BytesMut::new();
        put_literal(b"x-bin", b"\x80\xff tab\there", &mut tail);
        want.extend_from_slice(&tail);
        assert_eq!(frames.len(), 1);
        assert_eq!(frames[0].3, want);
    }

    #[test]
    fn authority_and_path() {
        // (method, target, host, :authority, :path)
        let cases: &[TargetCase] = &[
            ("GET", "/", Some(b"h"), "h", "/"),
            ("GET", "/p?", Some(b"h"), "h", "/p?"),
            ("GET", "/p?q", Some(b"[::1]:80"), "[::1]:80", "/p?q"),
            ("GET", "/", Some(b"[::1]"), "[::1]", "/"),
            // The colons of an IP-literal are not a port's, up to its last one.
            ("GET", "/", Some(b"[::]"), "[::]", "/"),
            ("GET", "/", Some(b"[::]:8"), "[::]:8", "/"),
            ("GET", "/", Some(b"h:"), "h:", "/"),
            // RFC 9112 §3.2.3: the absolute-form authority wins over Host.
            (
                "GET",
                "http://abs:8080/a?q",
                Some(b"host"),
                "abs:8080",
                "/a?q",
            ),
            ("GET", "http://abs", None, "abs", "/"),
            ("GET", "http://abs?q", Some(b"host"), "abs", "/?q"),
            // nghttp -u upgrades with OPTIONS *.
            (
                "OPTIONS",
                "*",
                Some(b"localhost:8080"),
                "localhost:8080",
                "*",
            ),
        ];
        for (method, target, host, authority, path) in cases {
            let headers: Vec<(&str, &[u8])> = host.iter().map(|h| ("host", *h)).collect();
            let p = parts(method, target, &headers);
            let fields = fields_of(&p);
            assert_eq!(
                fields[..4],
                owned(&[
                    (":method", method),
                    (":scheme", "http"),
                    (":authority", authority),
                    (":path", path),
                ])[..],
                "target {target}"
            );
        }
    }

    #[test]
    fn refused_requests() {
        // (method, target, hosts, error)
        let cases: &[(&str, &str, &[&[u8]], Stream1Error)] = &[
            ("GET", "/", &[], Stream1Error::NoAuthority),
            ("OPTIONS", "*", &[], Stream1Error::NoAuthority),
            ("GET", "/", &[b""], Stream1Error::BadAuthority),
            ("GET", "/", &[b"a b"], Stream1Error::BadAuthority),
            ("GET", "/", &[b"h/x"], Stream1Error::BadAuthority),
            ("GET", "/", &[b"user@h"], Stream1Error::BadAuthority),
            ("GET", "/", &[b"h:port"], Stream1Error::BadAuthority),
            ("GET", "/", &[b"[::1]:8x"], Stream1Error::BadAuthority),
            ("GET", "/", &[b"h:1:2"], Stream1Error::BadAuthority),
            ("GET", "/", &[b"\xffh"], Stream1Error::BadAuthority),
            ("GET", "/", &[b"a", b"b"], Stream1Error::BadAuthority),
            (
                "GET",
                "http://user@abs/",
                &[b"h"],
                Stream1Error::BadAuthority,
            ),
            ("GET", "https://abs/", &[b"h"], Stream1Error::BadScheme),
            ("GET", "ftp://abs/", &[b"h"], Stream1Error::BadScheme),
            ("GET", "abs:80", &[b"h"], Stream1Error::BadPath),
            ("CONNECT", "abs:443", &[b"abs:443"], Stream1Error::Connect),
        ];
        for (method, target, hosts, want) in cases {
            let headers: Vec<(&str, &[u8])> = hosts.iter().map(|h| ("host", *h)).collect();
            let p = parts(method, target, &headers);
            let mut dst = BytesMut::from(&b"keep"[..]);
            let got = encode_stream1_headers(&p, 16 << 20, &mut dst);
            assert_eq!(got.as_ref(), Err(want), "{method} {target} {hosts:?}");
            assert_eq!(&dst[..], b"keep", "dst must be unchanged on error");
        }
    }

    #[test]
    fn large_header_uses_continuation() {
        let big = "v".repeat(40 * 1024);
        let p = parts("GET", "/", &[("host", b"h"), ("x-big", big.as_bytes())]);
        let out = match encode(&p) {
            Ok(out) => out,
            Err(e) => panic!("{e}"),
        };
        let frames = frames(&out);
        assert_eq!(frames.len(), 3);
        let flags: Vec<(u8, u8, u32)> = frames.iter().map(|f| (f.0, f.1, f.2)).collect();
        assert_eq!(flags, [(0x1, 0x1, 1), (0x9, 0x0, 1), (0x9, 0x4, 1)]);
        assert!(frames.iter().all(|f| f.3.len() <= 16_384));
        assert_eq!(frames[0].3.len(), 16_384);
        assert_eq!(frames[1].3.len(), 16_384);
        let joined: Vec<u8> = frames.iter().flat_map(|f| f.3.clone()).collect();
        assert_eq!(
            joined,
            block(&[
                (":method", "GET"),
                (":scheme", "http"),
                (":authority", "h"),
                (":path", "/"),
                ("x-big", &big),
            ])
        );
        assert_eq!(decode_block(&joined)[4].1.len(), 40 * 1024);
    }

    #[test]
    fn block_of_exactly_one_frame() {
        // Pseudo-headers: 13 + 14 + 14 + 9 = 50 octets; x-pad: 0x00, 1 + 5 for the name,
        // a 3-octet value length, then the value.
        let value = "p".repeat(16_384 - 50 - 10);
        let p = parts("GET", "/", &[("host", b"h"), ("x-pad", value.as_bytes())]);
        let out = match encode(&p) {
            Ok(out) => out,
            Err(e) => panic!("{e}"),
        };
        let frames = frames(&out);
        assert_eq!(frames.len(), 1);
        assert_eq!((frames[0].0, frames[0].1), (0x1, 0x5));
        assert_eq!(frames[0].3.len(), 16_384);
    }

    #[test]
    fn too_large() {
        let p = parts("GET", "/", &[("host", b"h"), ("x", b"12345")]);
        // :method GET 7+3+32, :scheme http 7+4+32, :authority h 10+1+32,
        // :path / 5+1+32, x 12345 1+5+32 = 204.
        let size = 204;
        // (limit, result)
        let cases = [
            (size + 1, Ok(())),
            (size, Err(Stream1Error::TooLarge { size, limit: size })),
            (100, Err(Stream1Error::TooLarge { size, limit: 100 })),
            (0, Err(Stream1Error::TooLarge { size, limit: 0 })),
            (usize::MAX, Ok(())),
        ];
        for (limit, want) in cases {
            let mut dst = BytesMut::new();
            assert_eq!(
                encode_stream1_headers(&p, limit, &mut dst),
                want,
                "limit {limit}"
            );
            assert_eq!(dst.is_empty(), want.is_err());
        }
    }

    #[test]
    fn errors_display() {
        let cases = [
            (Stream1Error::NoAuthority, "request has no host"),
            (Stream1Error::BadAuthority, "request host is invalid"),
            (Stream1Error::BadScheme, "request target scheme is not http"),
            (Stream1Error::BadPath, "request target has no http/2 path"),
            (Stream1Error::Connect, "connect request cannot be upgraded"),
            (
                Stream1Error::TooLarge { size: 9, limit: 8 },
                "header list of 9 bytes reaches limit of 8",
            ),
        ];
        for (err, want) in cases {
            assert_eq!(err.to_string(), want);
        }
    }
}
