//! Entry points for the micro-benchmarks in `benches/` and the fuzz targets in
//! `fuzz/`. Not part of the public API: hidden, unstable, and only a thin call into
//! the internal layer it names.

use bytes::BytesMut;

use crate::config::{DEFAULT_MAX_HEADERS, DEFAULT_MAX_HEAD_SIZE, DEFAULT_MAX_REQUEST_LINE};

/// Parses one HTTP/1 request head from the front of `buf` with the default limits.
/// True when a complete, valid head was parsed (and removed from `buf`).
pub fn parse_head(buf: &mut BytesMut) -> bool {
    let limits = crate::h1::parse::Limits {
        max_head_size: DEFAULT_MAX_HEAD_SIZE,
        max_headers: DEFAULT_MAX_HEADERS,
        max_request_line: DEFAULT_MAX_REQUEST_LINE,
    };
    let mut req = http::Request::default();
    matches!(
        crate::h1::parse::parse_request(buf, &limits, &mut req),
        Ok(Some(_))
    )
}

/// Encodes the response head of the demo's `GET /` (200, content-type,
/// content-length, date) into `dst`.
pub fn encode_head(dst: &mut BytesMut) {
    let mut headers = http::HeaderMap::new();
    headers.insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("text/plain"),
    );
    crate::h1::encode::write_head(
        dst,
        http::StatusCode::OK,
        &headers,
        crate::h1::encode::Framing::Length(12),
        crate::h1::encode::Persistence::Default,
    );
}

/// Decodes and validates an `HTTP2-Settings` value. True when it is valid.
pub fn decode_settings(value: &[u8]) -> bool {
    crate::upgrade::settings::decode_http2_settings(value).is_ok()
}

/// Encodes stream 1's HEADERS frames for an upgrade request head into `dst`.
/// True when the request can be carried as stream 1.
pub fn stream1_headers(parts: &http::request::Parts, dst: &mut BytesMut) -> bool {
    crate::upgrade::stream1::encode_stream1_headers(parts, DEFAULT_MAX_HEAD_SIZE, dst).is_ok()
}

/// Parses a request head from `input` and, when it parses, encodes it as stream 1's
/// HEADERS frames. `Some(true)` when both steps succeed.
pub fn head_to_stream1(input: &[u8]) -> Option<bool> {
    let mut buf = BytesMut::from(input);
    let limits = crate::h1::parse::Limits {
        max_head_size: DEFAULT_MAX_HEAD_SIZE,
        max_headers: DEFAULT_MAX_HEADERS,
        max_request_line: DEFAULT_MAX_REQUEST_LINE,
    };
    let mut req = http::Request::default();
    crate::h1::parse::parse_request(&mut buf, &limits, &mut req).ok()??;
    let mut dst = BytesMut::new();
    Some(stream1_headers(&req.into_parts().0, &mut dst))
}

/// Feeds `pieces` one after the other to a chunked body decoder (or a
/// Content-Length decoder of `length` bytes). Returns the body, the number of
/// trailer fields and the bytes left after the body, or `Err(())` on a framing error.
/// `Ok(None)`: the input ended before the body did.
#[allow(clippy::type_complexity, clippy::result_unit_err)]
pub fn decode_body(
    length: Option<u64>,
    pieces: &[&[u8]],
) -> Result<Option<(Vec<u8>, usize, Vec<u8>)>, ()> {
    use crate::h1::decode::{ChunkedLimits, Decoded, Decoder};
    let mut d = match length {
        Some(n) => Decoder::length(n),
        None => Decoder::chunked(ChunkedLimits::default()),
    };
    let mut buf = BytesMut::new();
    let mut body = Vec::new();
    let mut trailers = 0;
    for piece in pieces {
        buf.extend_from_slice(piece);
        loop {
            match d.decode(&mut buf).map_err(|_| ())? {
                None => break,
                Some(Decoded::Data(b)) => body.extend_from_slice(&b),
                Some(Decoded::Trailers(t)) => trailers += t.len(),
                Some(Decoded::End) => return Ok(Some((body, trailers, buf.to_vec()))),
            }
        }
    }
    Ok(None)
}

/// The prior-knowledge sniffer: 0 = need more, 1 = HTTP/1, 2 = HTTP/2.
pub fn sniff(input: &[u8]) -> u8 {
    match crate::sniff::sniff(input) {
        crate::sniff::Sniffed::NeedMore => 0,
        crate::sniff::Sniffed::Http1 => 1,
        crate::sniff::Sniffed::H2 => 2,
    }
}

/// The upgrade adapter's write-side filter (drops the first SETTINGS ACK) over
/// `pieces` written one after the other. Returns what would reach the socket.
pub fn filter_acks(pieces: &[&[u8]]) -> Vec<u8> {
    let mut f = crate::upgrade::adapter::AckFilter::default();
    let mut out = BytesMut::new();
    for p in pieces {
        f.feed(p, &mut out);
    }
    out.to_vec()
}
