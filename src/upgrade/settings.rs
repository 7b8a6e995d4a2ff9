//! The `HTTP2-Settings` request header of the h2c upgrade (RFC 7540 §3.2.1):
//! decoding, validation, and re-framing as the client's first SETTINGS frame.

use std::fmt;

use base64::alphabet;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::DecodePaddingMode;
use base64::Engine as _;
use bytes::{BufMut, Bytes, BytesMut};

use super::frame;

/// Size of one setting entry: 16-bit identifier + 32-bit value (RFC 7540 §6.5.1).
const ENTRY_LEN: usize = 6;

/// Largest payload accepted. The payload is replayed to h2 as one SETTINGS frame, and
/// RFC 7540 §4.2 makes a frame larger than the receiver's SETTINGS_MAX_FRAME_SIZE
/// (16384 until our own SETTINGS are acknowledged) a FRAME_SIZE_ERROR.
const MAX_PAYLOAD_LEN: usize = 16_384;

/// Longest trimmed header value that can decode to at most [`MAX_PAYLOAD_LEN`] bytes:
/// 16384 bytes are 21846 base64 characters, plus up to two `=` of padding. Checked
/// before decoding so that a huge header value does not cost a huge allocation.
const MAX_ENCODED_LEN: usize = 21_848;

/// SETTINGS_ENABLE_PUSH (RFC 7540 §6.5.2).
const SETTINGS_ENABLE_PUSH: u16 = 0x2;
/// SETTINGS_INITIAL_WINDOW_SIZE (RFC 7540 §6.5.2).
const SETTINGS_INITIAL_WINDOW_SIZE: u16 = 0x4;
/// SETTINGS_MAX_FRAME_SIZE (RFC 7540 §6.5.2).
const SETTINGS_MAX_FRAME_SIZE: u16 = 0x5;
/// SETTINGS_ENABLE_CONNECT_PROTOCOL (RFC 8441 §3).
const SETTINGS_ENABLE_CONNECT_PROTOCOL: u16 = 0x8;

/// Largest flow-control window (RFC 7540 §6.9.1: 2^31-1).
const MAX_WINDOW_SIZE: u32 = (1 << 31) - 1;
/// Smallest legal SETTINGS_MAX_FRAME_SIZE (RFC 7540 §6.5.2: 2^14).
const MIN_MAX_FRAME_SIZE: u32 = 1 << 14;
/// Largest legal SETTINGS_MAX_FRAME_SIZE (RFC 7540 §6.5.2: 2^24-1).
const MAX_MAX_FRAME_SIZE: u32 = (1 << 24) - 1;

/// base64url (RFC 4648 §5). RFC 7540 §3.2.1 says "with any trailing '=' characters
/// omitted", but padding is accepted too because it is unambiguous and some
/// encoders add it. Non-zero trailing bits stay an error (RFC 4648 §3.5).
const BASE64URL: GeneralPurpose = GeneralPurpose::new(
    &alphabet::URL_SAFE,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Why an HTTP2-Settings value was refused (each is a reason to decline the upgrade and answer over HTTP/1.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum SettingsError {
    /// The value is not base64url (wrong alphabet, inner whitespace, bad padding, ...).
    NotBase64,
    /// The decoded payload length (carried) is not a multiple of 6 (RFC 7540 §6.5.1).
    BadLength(usize),
    /// The decoded payload (carried: its length, or a lower bound when the value was
    /// too long to be worth decoding) would not fit in one 16384-byte frame.
    TooLarge(usize),
    /// A known setting carries a value RFC 7540 §6.5.2 / RFC 8441 §3 forbids.
    InvalidValue {
        /// The setting identifier.
        id: u16,
        /// The refused value.
        value: u32,
    },
}

impl fmt::Display for SettingsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SettingsError::NotBase64 => f.write_str("http2-settings is not base64url"),
            SettingsError::BadLength(len) => write!(
                f,
                "http2-settings payload of {len} bytes is not a multiple of 6"
            ),
            SettingsError::TooLarge(len) => write!(
                f,
                "http2-settings payload of {len} bytes exceeds {MAX_PAYLOAD_LEN}"
            ),
            SettingsError::InvalidValue { id, value } => write!(
                f,
                "http2-settings has invalid value {value} for setting {id:#x}"
            ),
        }
    }
}

impl std::error::Error for SettingsError {}

/// Decodes an `HTTP2-Settings` header value (RFC 7540 §3.2.1: base64url, RFC 4648 §5, without padding)
/// into the SETTINGS frame payload, validating every entry.
pub(crate) fn decode_http2_settings(value: &[u8]) -> Result<Bytes, SettingsError> {
    // RFC 9110 §5.5: a field value has no leading or trailing whitespace, but a
    // lenient parser may hand it over with OWS still attached.
    let value = trim_ows(value);
    if value.len() > MAX_ENCODED_LEN {
        return Err(SettingsError::TooLarge(base64::decoded_len_estimate(
            value.len(),
        )));
    }
    let payload = BASE64URL
        .decode(value)
        .map_err(|_| SettingsError::NotBase64)?;
    if payload.len() > MAX_PAYLOAD_LEN {
        return Err(SettingsError::TooLarge(payload.len()));
    }
    // RFC 7540 §6.5: a length that is not a multiple of 6 is a FRAME_SIZE_ERROR.
    if payload.len() % ENTRY_LEN != 0 {
        return Err(SettingsError::BadLength(payload.len()));
    }
    for entry in payload.chunks_exact(ENTRY_LEN) {
        if let [i0, i1, v0, v1, v2, v3] = *entry {
            validate(
                u16::from_be_bytes([i0, i1]),
                u32::from_be_bytes([v0, v1, v2, v3]),
            )?;
        }
    }
    Ok(Bytes::from(payload))
}

/// Checks one setting. The rules are exactly those h2 0.4.20 enforces in
/// `frame::Settings::load`, whose failure would be a connection error after the 101.
fn validate(id: u16, value: u32) -> Result<(), SettingsError> {
    let ok = match id {
        // RFC 7540 §6.5.2: any value other than 0 or 1 is a PROTOCOL_ERROR.
        SETTINGS_ENABLE_PUSH => value <= 1,
        // RFC 7540 §6.5.2: above 2^31-1 is a FLOW_CONTROL_ERROR.
        SETTINGS_INITIAL_WINDOW_SIZE => value <= MAX_WINDOW_SIZE,
        // RFC 7540 §6.5.2: outside 2^14..=2^24-1 is a PROTOCOL_ERROR.
        SETTINGS_MAX_FRAME_SIZE => (MIN_MAX_FRAME_SIZE..=MAX_MAX_FRAME_SIZE).contains(&value),
        // RFC 8441 §3: any value other than 0 or 1 is a PROTOCOL_ERROR.
        SETTINGS_ENABLE_CONNECT_PROTOCOL => value <= 1,
        // HEADER_TABLE_SIZE, MAX_CONCURRENT_STREAMS and MAX_HEADER_LIST_SIZE take any
        // value; RFC 7540 §6.5.2: unknown identifiers MUST be ignored.
        _ => true,
    };
    if ok {
        Ok(())
    } else {
        Err(SettingsError::InvalidValue { id, value })
    }
}

/// Strips optional whitespace (RFC 9110 §5.6.3: SP / HTAB) from both ends.
fn trim_ows(mut value: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = value {
        value = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = value {
        value = rest;
    }
    value
}

/// Writes a complete SETTINGS frame (9-byte header: 24-bit length, type 0x4, flags 0, stream 0; then the payload) to dst.
///
/// `payload` must be at most 2^24-1 bytes (RFC 7540 §4.1); one from
/// [`decode_http2_settings`] is at most 16384.
pub(crate) fn write_settings_frame(payload: &[u8], dst: &mut BytesMut) {
    dst.reserve(frame::HEADER_LEN + payload.len());
    // RFC 7540 §6.5: no ACK flag; SETTINGS always belongs to stream 0.
    frame::put_header(payload.len(), frame::TYPE_SETTINGS, 0, 0, dst);
    dst.put_slice(payload);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One setting entry, as RFC 7540 §6.5.1 lays it out.
    fn entry(id: u16, value: u32) -> Vec<u8> {
        let mut v = id.to_be_bytes().to_vec();
        v.extend_from_slice(&value.to_be_bytes());
        v
    }

    /// The header value a client would send for `payload`.
    fn encode(payload: &[u8]) -> String {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(payload)
    }

    #[test]
    fn accepts_valid_values() {
        let curl = [entry(0x3, 100), entry(0x4, 0x0200_0000), entry(0x2, 0)].concat();
        let nghttp = [entry(0x3, 100), entry(0x4, 0x4000_0000)].concat();
        let nghttp_old = [entry(0x3, 100), entry(0x4, 0xFFFF)].concat();
        let cases: &[(&str, &[u8])] = &[
            // curl 8.x
            ("AAMAAABkAAQCAAAAAAIAAAAA", &curl),
            // nghttp -u
            ("AAMAAABkAARAAAAA", &nghttp),
            // older nghttp; exercises '-' and '_' of the URL-safe alphabet
            ("AAMAAABkAAQAAP__", &nghttp_old),
            ("", b""),
            ("   ", b""),
            // optional whitespace around the value
            (" \tAAMAAABkAAQAAP__\t ", &nghttp_old),
        ];
        for (value, want) in cases {
            let got = decode_http2_settings(value.as_bytes());
            assert_eq!(got.as_deref(), Ok(*want), "value {value:?}");
        }
    }

    #[test]
    fn padding_is_optional() {
        // A whole number of 6-byte entries never needs padding, so values that
        // need it are refused, but for their length, not for the padding.
        for value in ["AAMAAABkAA", "AAMAAABkAA=", "AAMAAABkAA=="] {
            assert_eq!(
                decode_http2_settings(value.as_bytes()),
                Err(SettingsError::BadLength(7)),
                "value {value:?}"
            );
        }
        for value in ["AAMAAABkAAQAAA", "AAMAAABkAAQAAA="] {
            assert_eq!(
                decode_http2_settings(value.as_bytes()),
                Err(SettingsError::BadLength(10)),
                "value {value:?}"
            );
        }
    }

    #[test]
    fn rejects_non_base64url() {
        let cases: &[&[u8]] = &[
            b"AAMAAABkAAQAAP//",     // standard alphabet '/'
            b"AAMAAABkAAQAAP++",     // standard alphabet '+'
            b"AAMAAABk AAQAAP__",    // inner space
            b"AAMAAABk\tAAQAAP__",   // inner tab
            b"AAMAAABk\r\nAAQAAP__", // inner line break
            b"AAMAAABkAAQAAP__\r",   // CR is not OWS
            b"AAMAAABkAAQAAP_*",     // not in any alphabet
            b"AAMAAABk=AAQAAP__",    // padding in the middle
            b"AAMAAABkAAQAAP__==",   // padding after a complete quantum
            b"AAMAAABkAA===",        // too much padding
            b"=",                    // padding only
            b"A",                    // impossible length
            b"AAMAAABkAB",           // non-zero pad bits (RFC 4648 §3.5)
            b"AAMAAABk\xffAAQAAP__", // not even ASCII
        ];
        for value in cases {
            assert_eq!(
                decode_http2_settings(value),
                Err(SettingsError::NotBase64),
                "value {:?}",
                String::from_utf8_lossy(value)
            );
        }
    }

    #[test]
    fn rejects_bad_length() {
        for len in [1, 5, 7, 11, 13] {
            let value = encode(&vec![0u8; len]);
            assert_eq!(
                decode_http2_settings(value.as_bytes()),
                Err(SettingsError::BadLength(len)),
                "len {len}"
            );
        }
    }

    #[test]
    fn size_limit() {
        // 2730 entries = 16380 bytes fit; one more entry does not.
        let fits = entry(0x3, 1).repeat(16_380 / 6);
        let got = decode_http2_settings(encode(&fits).as_bytes());
        assert_eq!(got.map(|b| b.len()), Ok(16_380));

        let over = entry(0x3, 1).repeat(16_386 / 6);
        assert_eq!(
            decode_http2_settings(encode(&over).as_bytes()),
            Err(SettingsError::TooLarge(16_386))
        );
        // 16384 bytes (not a multiple of 6) is within the size limit but bad length.
        assert_eq!(
            decode_http2_settings(encode(&[0u8; 16_384]).as_bytes()),
            Err(SettingsError::BadLength(16_384))
        );
        // Far too long: refused before decoding, even though it is not base64.
        let huge = vec![b'!'; 100_000];
        assert!(matches!(
            decode_http2_settings(&huge),
            Err(SettingsError::TooLarge(n)) if n > 16_384
        ));
    }

    #[test]
    fn encoded_length_limit_is_that_of_a_padded_full_payload() {
        // 16384 bytes with padding are exactly MAX_ENCODED_LEN characters: decoded
        // (and refused for their length, not their size), where one character more
        // is refused undecoded.
        let padded = base64::engine::general_purpose::URL_SAFE.encode([0u8; 16_384]);
        assert_eq!(padded.len(), MAX_ENCODED_LEN);
        // (value, expected)
        let cases: Vec<(Vec<u8>, SettingsError)> = vec![
            (
                padded.clone().into_bytes(),
                SettingsError::BadLength(16_384),
            ),
            // OWS does not count towards the limit.
            (
                format!(" \t{padded} ").into_bytes(),
                SettingsError::BadLength(16_384),
            ),
            (vec![b'!'; MAX_ENCODED_LEN], SettingsError::NotBase64),
            (
                vec![b'!'; MAX_ENCODED_LEN + 1],
                SettingsError::TooLarge(base64::decoded_len_estimate(MAX_ENCODED_LEN + 1)),
            ),
        ];
        for (value, want) in cases {
            assert_eq!(
                decode_http2_settings(&value),
                Err(want),
                "{} bytes",
                value.len()
            );
        }
    }

    #[test]
    fn value_boundaries() {
        // (id, value, valid)
        let cases: &[(u16, u32, bool)] = &[
            (0x2, 0, true),
            (0x2, 1, true),
            (0x2, 2, false),
            (0x2, u32::MAX, false),
            (0x4, 0, true),
            (0x4, (1 << 31) - 1, true),
            (0x4, 1 << 31, false),
            (0x4, u32::MAX, false),
            (0x5, 0, false),
            (0x5, 16_383, false),
            (0x5, 16_384, true),
            (0x5, 16_777_215, true),
            (0x5, 16_777_216, false),
            (0x5, u32::MAX, false),
            (0x8, 0, true),
            (0x8, 1, true),
            (0x8, 2, false),
            // Any value is fine for these.
            (0x1, 0, true),
            (0x1, u32::MAX, true),
            (0x3, 0, true),
            (0x3, u32::MAX, true),
            (0x6, 0, true),
            (0x6, u32::MAX, true),
            // Unknown identifiers are ignored (RFC 7540 §6.5.2).
            (0x0, u32::MAX, true),
            (0x7, u32::MAX, true),
            (0x9, u32::MAX, true),
            (0xFFFF, u32::MAX, true),
        ];
        for &(id, value, valid) in cases {
            // Put the entry after a valid one so every position is checked.
            let payload = [entry(0x3, 100), entry(id, value)].concat();
            let got = decode_http2_settings(encode(&payload).as_bytes());
            if valid {
                assert_eq!(got.as_deref(), Ok(&payload[..]), "id {id:#x} value {value}");
            } else {
                assert_eq!(
                    got,
                    Err(SettingsError::InvalidValue { id, value }),
                    "id {id:#x} value {value}"
                );
            }
        }
    }

    #[test]
    fn errors_display() {
        let cases = [
            (SettingsError::NotBase64, "http2-settings is not base64url"),
            (
                SettingsError::BadLength(7),
                "http2-settings payload of 7 bytes is not a multiple of 6",
            ),
            (
                SettingsError::TooLarge(16_386),
                "http2-settings payload of 16386 bytes exceeds 16384",
            ),
            (
                SettingsError::InvalidValue { id: 2, value: 5 },
                "http2-settings has invalid value 5 for setting 0x2",
            ),
        ];
        for (err, want) in cases {
            assert_eq!(err.to_string(), want);
        }
    }

    #[test]
    fn settings_frame_bytes() {
        let mut dst = BytesMut::from(&b"xy"[..]);
        write_settings_frame(&[0x00, 0x03, 0x00, 0x00, 0x00, 0x64], &mut dst);
        assert_eq!(
            &dst[..],
            &[
                b'x', b'y', // existing content is kept
                0x00, 0x00, 0x06, // length
                0x04, // type SETTINGS
                0x00, // flags
                0x00, 0x00, 0x00, 0x00, // stream 0
                0x00, 0x03, 0x00, 0x00, 0x00, 0x64, // payload
            ][..]
        );

        let mut dst = BytesMut::new();
        write_settings_frame(&[], &mut dst);
        assert_eq!(&dst[..], &[0, 0, 0, 4, 0, 0, 0, 0, 0][..]);

        let payload = vec![0xAB; 16_380];
        let mut dst = BytesMut::new();
        write_settings_frame(&payload, &mut dst);
        assert_eq!(&dst[..9], &[0x00, 0x3F, 0xFC, 4, 0, 0, 0, 0, 0][..]);
        assert_eq!(&dst[9..], &payload[..]);
    }
}
