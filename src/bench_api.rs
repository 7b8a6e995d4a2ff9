//! Entry points for the micro-benchmarks in `benches/`. Not part of the public API:
//! hidden, unstable, and only a thin call into the internal layer it names.

use bytes::BytesMut;

use crate::builder::{DEFAULT_MAX_HEADERS, DEFAULT_MAX_HEAD_SIZE, DEFAULT_MAX_REQUEST_LINE};

/// Parses one HTTP/1 request head from the front of `buf` with the default limits.
/// True when a complete, valid head was parsed (and removed from `buf`).
pub fn parse_head(buf: &mut BytesMut) -> bool {
    let limits = crate::h1::parse::Limits {
        max_head_size: DEFAULT_MAX_HEAD_SIZE,
        max_headers: DEFAULT_MAX_HEADERS,
        max_request_line: DEFAULT_MAX_REQUEST_LINE,
    };
    matches!(crate::h1::parse::parse_request(buf, &limits), Ok(Some(_)))
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
