//! HTTP/1.1 response heads and chunked framing (RFC 9112 §4, §7.1).

use bytes::{BufMut, BytesMut};
use http::header::{self, HeaderMap};
use http::StatusCode;

/// How a response body is delimited on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Framing {
    /// No body bytes follow (HEAD, 1xx, 204, 304); `length` is advertised when known.
    NoBody { length: Option<u64> },
    /// Content-Length: n.
    Length(u64),
    /// Transfer-Encoding: chunked.
    Chunked,
    /// The body ends when the connection closes (HTTP/1.0 peer, unknown length).
    Close,
}

/// The connection-level fields the server writes itself; a service's own copies are
/// dropped so the framing on the wire is always the one the server enforces.
fn is_managed(name: &header::HeaderName) -> bool {
    name == header::CONNECTION
        || name == header::TRANSFER_ENCODING
        || name == header::CONTENT_LENGTH
        || name == "keep-alive"
        || name == "proxy-connection"
}

/// Appends a complete response head to `dst`.
pub(crate) fn write_head(
    dst: &mut BytesMut,
    status: StatusCode,
    headers: &HeaderMap,
    framing: Framing,
    persistence: Persistence,
) {
    dst.reserve(128 + headers.len() * 32);
    if status == StatusCode::OK {
        // Most responses: one copy of a constant instead of five pieces.
        dst.put_slice(b"HTTP/1.1 200 OK\r\n");
    } else {
        dst.put_slice(b"HTTP/1.1 ");
        dst.put_slice(status.as_str().as_bytes());
        dst.put_u8(b' ');
        dst.put_slice(status.canonical_reason().unwrap_or("").as_bytes());
        dst.put_slice(b"\r\n");
    }
    let mut has_date = false;
    for (name, value) in headers {
        if is_managed(name) {
            continue;
        }
        has_date |= name == header::DATE;
        dst.put_slice(name.as_str().as_bytes());
        dst.put_slice(b": ");
        dst.put_slice(value.as_bytes());
        dst.put_slice(b"\r\n");
    }
    match framing {
        Framing::Length(n) | Framing::NoBody { length: Some(n) } => {
            // RFC 9110 §8.6: no Content-Length in a 1xx or 204 response.
            if !(status.is_informational() || status == StatusCode::NO_CONTENT) {
                dst.put_slice(b"content-length: ");
                put_decimal(dst, n);
                dst.put_slice(b"\r\n");
            }
        }
        Framing::Chunked => dst.put_slice(b"transfer-encoding: chunked\r\n"),
        Framing::NoBody { length: None } | Framing::Close => {}
    }
    match persistence {
        Persistence::Close => dst.put_slice(b"connection: close\r\n"),
        Persistence::KeepAlive10 => dst.put_slice(b"connection: keep-alive\r\n"),
        Persistence::Default => {}
    }
    if !has_date {
        dst.put_slice(b"date: ");
        crate::date::put(dst);
        dst.put_slice(b"\r\n");
    }
    dst.put_slice(b"\r\n");
}

/// What the response says about the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Persistence {
    /// HTTP/1.1 default: persistent, nothing to say.
    Default,
    /// RFC 9112 §9.3: an HTTP/1.0 client that asked for keep-alive is told it holds.
    KeepAlive10,
    /// The server closes after this response.
    Close,
}

/// A complete small error response, the only kind the server writes on its own.
pub(crate) fn write_error(dst: &mut BytesMut, status: StatusCode) {
    write_error_text(dst, status, status.canonical_reason().unwrap_or("Error"));
}

/// [`write_error`] with a text of its own as the body (followed by a newline).
pub(crate) fn write_error_text(dst: &mut BytesMut, status: StatusCode, text: &str) {
    let mut headers = HeaderMap::new();
    headers.insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    write_head(
        dst,
        status,
        &headers,
        Framing::Length(text.len() as u64 + 1),
        Persistence::Close,
    );
    dst.put_slice(text.as_bytes());
    dst.put_u8(b'\n');
}

/// The size line that opens a chunk of `len` bytes.
pub(crate) fn chunk_head(dst: &mut BytesMut, len: usize) {
    let mut digits = [0u8; 16];
    let mut n = len;
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b"0123456789abcdef"[n & 0xf];
        n >>= 4;
        if n == 0 {
            break;
        }
    }
    dst.put_slice(&digits[i..]);
    dst.put_slice(b"\r\n");
}

/// The last-chunk, optional trailer fields, and the final CRLF (RFC 9112 §7.1).
pub(crate) fn chunked_end(dst: &mut BytesMut, trailers: Option<&HeaderMap>) {
    dst.put_slice(b"0\r\n");
    if let Some(t) = trailers {
        for (name, value) in t {
            dst.put_slice(name.as_str().as_bytes());
            dst.put_slice(b": ");
            dst.put_slice(value.as_bytes());
            dst.put_slice(b"\r\n");
        }
    }
    dst.put_slice(b"\r\n");
}

fn put_decimal(dst: &mut BytesMut, n: u64) {
    let mut digits = [0u8; 20];
    // A few digits: byte by byte is cheaper than a copy of unknown length.
    for &d in crate::decimal::digits(n, &mut digits) {
        dst.put_u8(d);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(status: u16, headers: &[(&str, &str)], framing: Framing, p: Persistence) -> String {
        let mut map = HeaderMap::new();
        for (k, v) in headers {
            map.append(
                header::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                header::HeaderValue::from_str(v).unwrap(),
            );
        }
        map.insert(header::DATE, header::HeaderValue::from_static("D"));
        let mut dst = BytesMut::new();
        write_head(
            &mut dst,
            StatusCode::from_u16(status).unwrap(),
            &map,
            framing,
            p,
        );
        String::from_utf8(dst.to_vec()).unwrap()
    }

    #[test]
    fn heads() {
        let cases = [
            (
                head(200, &[("content-type", "text/plain")], Framing::Length(12), Persistence::Default),
                "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ndate: D\r\ncontent-length: 12\r\n\r\n",
            ),
            (
                head(200, &[("transfer-encoding", "gzip"), ("connection", "x")], Framing::Chunked, Persistence::Close),
                "HTTP/1.1 200 OK\r\ndate: D\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n",
            ),
            (
                head(204, &[], Framing::NoBody { length: Some(0) }, Persistence::KeepAlive10),
                "HTTP/1.1 204 No Content\r\ndate: D\r\nconnection: keep-alive\r\n\r\n",
            ),
            (
                head(200, &[("content-length", "999")], Framing::NoBody { length: Some(5) }, Persistence::Default),
                "HTTP/1.1 200 OK\r\ndate: D\r\ncontent-length: 5\r\n\r\n",
            ),
            // Every connection-level field a service sets is dropped, among others.
            (
                head(
                    200,
                    &[
                        ("a", "1"),
                        ("keep-alive", "timeout=5"),
                        ("b", "2"),
                        ("proxy-connection", "keep-alive"),
                        ("c", "3"),
                        ("connection", "upgrade"),
                        ("d", "4"),
                        ("transfer-encoding", "chunked"),
                        ("e", "5"),
                        ("content-length", "1"),
                        ("f", "6"),
                    ],
                    Framing::Length(2),
                    Persistence::Default,
                ),
                "HTTP/1.1 200 OK\r\na: 1\r\nb: 2\r\nc: 3\r\nd: 4\r\ne: 5\r\nf: 6\r\ndate: D\r\ncontent-length: 2\r\n\r\n",
            ),
            (
                head(599, &[], Framing::Close, Persistence::Close),
                "HTTP/1.1 599 \r\ndate: D\r\nconnection: close\r\n\r\n",
            ),
        ];
        for (got, want) in cases {
            assert_eq!(got, want);
        }
    }

    #[test]
    fn date_is_added_when_absent() {
        let mut dst = BytesMut::new();
        write_head(
            &mut dst,
            StatusCode::OK,
            &HeaderMap::new(),
            Framing::Length(0),
            Persistence::Default,
        );
        let text = String::from_utf8(dst.to_vec()).unwrap();
        let date = text.lines().find_map(|l| l.strip_prefix("date: ")).unwrap();
        assert!(httpdate::parse_http_date(date).is_ok(), "{date}");
    }

    #[test]
    fn chunk_framing() {
        let mut dst = BytesMut::new();
        for (len, want) in [
            (0usize, "0\r\n"),
            (1, "1\r\n"),
            (255, "ff\r\n"),
            (65536, "10000\r\n"),
        ] {
            dst.clear();
            chunk_head(&mut dst, len);
            assert_eq!(&dst[..], want.as_bytes());
        }
        dst.clear();
        let mut t = HeaderMap::new();
        t.insert("x-sum", header::HeaderValue::from_static("1"));
        chunked_end(&mut dst, Some(&t));
        assert_eq!(&dst[..], b"0\r\nx-sum: 1\r\n\r\n");
    }

    #[test]
    fn error_response_is_complete() {
        let mut dst = BytesMut::new();
        write_error(&mut dst, StatusCode::URI_TOO_LONG);
        let text = String::from_utf8(dst.to_vec()).unwrap();
        assert!(text.starts_with("HTTP/1.1 414 URI Too Long\r\n"));
        assert!(text.contains("content-length: 13\r\n"));
        assert!(text.contains("connection: close\r\n"));
        assert!(text.ends_with("\r\n\r\nURI Too Long\n"));
    }
}
