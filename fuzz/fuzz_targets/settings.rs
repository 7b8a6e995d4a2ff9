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

/// base64url (RFC 4648 §5), with or without `=` padding.
fn encode(input: &[u8], pad: bool) -> Vec<u8> {
    use base64::engine::general_purpose::{URL_SAFE, URL_SAFE_NO_PAD};
    use base64::Engine as _;
    let engine = if pad { &URL_SAFE } else { &URL_SAFE_NO_PAD };
    engine.encode(input).into_bytes()
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
        let in_alphabet = bad.is_ascii_alphanumeric() || bad == b'-' || bad == b'_';
        if !in_alphabet && !matches!(bad, b' ' | b'\t' | b'=') {
            let at = value.len() / 2;
            value.insert(at, bad);
            assert!(!decode_settings(&value), "non-base64url byte accepted");
        }
    }
});
