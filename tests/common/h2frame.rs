//! HTTP/2 frames as bytes (RFC 9113 §4 and §6): the numbers the tests need, a
//! frame as it was read ([`Frame`]), and builders that write any frame, valid or
//! not, so a test can put any sequence in one write. Header blocks are HPACK
//! literals ([`hpack::encode`]).

use super::hpack;

pub const PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

// Frame types (RFC 9113 §6).
pub const DATA: u8 = 0x0;
pub const HEADERS: u8 = 0x1;
pub const PRIORITY: u8 = 0x2;
pub const RST_STREAM: u8 = 0x3;
pub const SETTINGS: u8 = 0x4;
pub const PUSH_PROMISE: u8 = 0x5;
pub const PING: u8 = 0x6;
pub const GOAWAY: u8 = 0x7;
pub const WINDOW_UPDATE: u8 = 0x8;
pub const CONTINUATION: u8 = 0x9;

// Flags.
pub const END_STREAM: u8 = 0x1;
pub const ACK: u8 = 0x1;
pub const END_HEADERS: u8 = 0x4;
pub const PADDED: u8 = 0x8;
pub const PRIORITY_FLAG: u8 = 0x20;

// Error codes (RFC 9113 §7).
pub const NO_ERROR: u32 = 0x0;
pub const PROTOCOL_ERROR: u32 = 0x1;
pub const FLOW_CONTROL_ERROR: u32 = 0x3;
pub const REFUSED_STREAM: u32 = 0x7;
pub const CANCEL: u32 = 0x8;
pub const COMPRESSION_ERROR: u32 = 0x9;
pub const ENHANCE_YOUR_CALM: u32 = 0xb;

// Settings (RFC 9113 §6.5.2).
pub const SETTINGS_HEADER_TABLE_SIZE: u16 = 0x1;
pub const SETTINGS_ENABLE_PUSH: u16 = 0x2;
pub const SETTINGS_MAX_CONCURRENT_STREAMS: u16 = 0x3;
pub const SETTINGS_INITIAL_WINDOW_SIZE: u16 = 0x4;
pub const SETTINGS_MAX_FRAME_SIZE: u16 = 0x5;
/// RFC 8441 §3.
pub const SETTINGS_ENABLE_CONNECT_PROTOCOL: u16 = 0x8;

/// The largest frame payload before SETTINGS raise it (RFC 9113 §4.2): what a
/// client may send without asking.
pub const MAX_FRAME_SIZE: usize = 16_384;

/// One frame as it was on the wire.
#[derive(Debug, Clone)]
pub struct Frame {
    pub ty: u8,
    pub flags: u8,
    pub stream: u32,
    pub payload: Vec<u8>,
    /// The decoded header block this frame completed: set on a HEADERS,
    /// PUSH_PROMISE or CONTINUATION frame with END_HEADERS.
    pub fields: Option<Vec<(String, String)>>,
}

impl Frame {
    /// A DATA, HEADERS or PUSH_PROMISE payload without its padding (RFC 9113
    /// §6.1).
    pub fn unpadded(&self) -> Vec<u8> {
        if self.flags & PADDED == 0 {
            return self.payload.clone();
        }
        let pad = usize::from(self.payload[0]);
        self.payload[1..self.payload.len() - pad].to_vec()
    }

    /// The error code of a RST_STREAM or GOAWAY.
    pub fn error_code(&self) -> u32 {
        let at = match self.ty {
            RST_STREAM => 0,
            GOAWAY => 4,
            _ => panic!("no error code in frame type {}", self.ty),
        };
        u32::from_be_bytes(self.payload[at..at + 4].try_into().expect("4 bytes"))
    }
}

/// The 9-octet frame header (RFC 9113 §4.1), as read off the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameHead {
    /// The payload's length.
    pub len: usize,
    pub ty: u8,
    pub flags: u8,
    pub stream: u32,
}

/// The header of the frame at the front of `buf`, once its 9 octets are there
/// (the payload may still be on its way).
pub fn frame_head(buf: &[u8]) -> Option<FrameHead> {
    let h = buf.get(..9)?;
    Some(FrameHead {
        len: (usize::from(h[0]) << 16) | (usize::from(h[1]) << 8) | usize::from(h[2]),
        ty: h[3],
        flags: h[4],
        stream: u32::from_be_bytes([h[5], h[6], h[7], h[8]]) & 0x7fff_ffff,
    })
}

/// Appends a frame to `dst`: its 9-octet header (RFC 9113 §4.1) and payload.
pub fn put_frame(dst: &mut Vec<u8>, ty: u8, flags: u8, stream: u32, payload: &[u8]) {
    let len = payload.len();
    assert!(len < 1 << 24);
    dst.extend_from_slice(&[(len >> 16) as u8, (len >> 8) as u8, len as u8, ty, flags]);
    dst.extend_from_slice(&(stream & 0x7fff_ffff).to_be_bytes());
    dst.extend_from_slice(payload);
}

/// A frame's bytes: 9-octet header (RFC 9113 §4.1) and payload.
pub fn frame(ty: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(9 + payload.len());
    put_frame(&mut out, ty, flags, stream, payload);
    out
}

/// A SETTINGS payload (RFC 9113 §6.5.1): 6 octets per setting.
pub fn settings_payload(settings: &[(u16, u32)]) -> Vec<u8> {
    let mut out = Vec::with_capacity(settings.len() * 6);
    for (id, value) in settings {
        out.extend_from_slice(&id.to_be_bytes());
        out.extend_from_slice(&value.to_be_bytes());
    }
    out
}

pub fn settings_frame(settings: &[(u16, u32)]) -> Vec<u8> {
    frame(SETTINGS, 0, 0, &settings_payload(settings))
}

pub fn settings_ack() -> Vec<u8> {
    frame(SETTINGS, ACK, 0, &[])
}

pub fn ping_frame(payload: [u8; 8]) -> Vec<u8> {
    frame(PING, 0, 0, &payload)
}

pub fn rst_frame(stream: u32, code: u32) -> Vec<u8> {
    frame(RST_STREAM, 0, stream, &code.to_be_bytes())
}

pub fn window_update_frame(stream: u32, increment: u32) -> Vec<u8> {
    frame(WINDOW_UPDATE, 0, stream, &increment.to_be_bytes())
}

/// A HEADERS frame (END_HEADERS; END_STREAM when `end_stream`) carrying `fields`.
pub fn headers_frame(stream: u32, end_stream: bool, fields: &[(&str, &str)]) -> Vec<u8> {
    let block = hpack::encode(fields);
    assert!(
        block.len() <= MAX_FRAME_SIZE,
        "header block needs CONTINUATION"
    );
    let flags = END_HEADERS | if end_stream { END_STREAM } else { 0 };
    frame(HEADERS, flags, stream, &block)
}

/// The pseudo-header fields of a request for `path` on `http://example`.
pub fn request_fields<'a>(method: &'a str, path: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        (":method", method),
        (":scheme", "http"),
        (":authority", "example"),
        (":path", path),
    ]
}

/// (type, flags, stream, error code if any) of each frame, for messages.
pub fn summarize(frames: &[Frame]) -> Vec<(u8, u8, u32, Option<u32>)> {
    frames
        .iter()
        .map(|f| {
            let code = matches!(f.ty, RST_STREAM | GOAWAY).then(|| f.error_code());
            (f.ty, f.flags, f.stream, code)
        })
        .collect()
}
