//! `decode_settings` (the `HTTP2-Settings` header value of the h2c upgrade).
//!
//! Checks:
//! * no panic on the raw input used as a header value;
//! * the input's bytes after the first are also read as a SETTINGS payload, which is
//!   base64url-encoded here (byte 0 picks padding and surrounding whitespace):
//!   `decode_settings` must accept it exactly when the payload is valid by
//!   RFC 9113 §6.5 / RFC 8441 §3 (length a multiple of 6 and at most 16384; ENABLE_PUSH
//!   and ENABLE_CONNECT_PROTOCOL 0 or 1; INITIAL_WINDOW_SIZE at most 2^31-1;
//!   MAX_FRAME_SIZE in 2^14..=2^24-1; other identifiers take any value);
//! * a value with a character outside the base64url alphabet inside it is refused.
#![no_main]

use h2c_mux::bench_api::decode_settings;
use libfuzzer_sys::fuzz_target;

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// base64url (RFC 4648 §5), with or without `=` padding.
fn encode(input: &[u8], pad: bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(input.len().div_ceil(3) * 4);
    for chunk in input.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        let chars = chunk.len() + 1;
        for i in 0..4 {
            if i < chars {
                out.push(ALPHABET[((n >> (18 - 6 * i)) & 0x3f) as usize]);
            } else if pad {
                out.push(b'=');
            }
        }
    }
    out
}

/// The validity of a decoded payload, written from the RFCs.
fn payload_ok(payload: &[u8]) -> bool {
    if !payload.len().is_multiple_of(6) || payload.len() > 16_384 {
        return false;
    }
    payload.chunks_exact(6).all(|e| {
        let id = u16::from_be_bytes([e[0], e[1]]);
        let value = u32::from_be_bytes([e[2], e[3], e[4], e[5]]);
        match id {
            0x2 | 0x8 => value <= 1,
            0x4 => value <= 0x7fff_ffff,
            0x5 => (0x4000..=0xff_ffff).contains(&value),
            _ => true,
        }
    })
}

fuzz_target!(|data: &[u8]| {
    let _ = decode_settings(data);

    let Some((&mode, payload)) = data.split_first() else {
        return;
    };
    let mut value = Vec::new();
    // Optional whitespace around a field value (RFC 9110 §5.6.3) is tolerated.
    let ows = if mode & 0x40 != 0 { b'\t' } else { b' ' };
    value.extend(std::iter::repeat_n(ows, usize::from((mode >> 2) & 3)));
    value.extend_from_slice(&encode(payload, mode & 1 != 0));
    value.extend(std::iter::repeat_n(b' ', usize::from((mode >> 4) & 3)));
    assert_eq!(
        decode_settings(&value),
        payload_ok(payload),
        "verdict differs from the RFC rules"
    );

    // A byte outside the alphabet (and not OWS or '=') inside the value is refused.
    if mode & 2 != 0 && !value.is_empty() {
        let bad = payload.first().copied().unwrap_or(b'!');
        if !ALPHABET.contains(&bad) && !matches!(bad, b' ' | b'\t' | b'=') {
            let at = value.len() / 2;
            value.insert(at, bad);
            assert!(!decode_settings(&value), "non-base64url byte accepted");
        }
    }
});
