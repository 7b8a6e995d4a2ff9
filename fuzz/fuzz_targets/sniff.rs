//! `sniff`: the HTTP/2 prior-knowledge preface detector (0 need more, 1 HTTP/1,
//! 2 HTTP/2).
//!
//! Input: byte 0 picks how many bytes of the preface (0 to 24) go before the rest of
//! the input, so that long matching prefixes are common.
//!
//! Checks, for every prefix of the built input (the empty one included):
//! * the answer is 2 exactly when the prefix starts with the whole 24-byte preface,
//!   0 exactly when it is a strict prefix of the preface, and 1 otherwise;
//! * once the answer is 1 or 2 it stays the same for every longer prefix.
#![no_main]

use h2c_mux::bench_api::sniff;
use libfuzzer_sys::fuzz_target;

/// RFC 9113 §3.4.
const PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

fuzz_target!(|data: &[u8]| {
    let (n, rest) = match data.split_first() {
        Some((&b, rest)) => (usize::from(b) % (PREFACE.len() + 1), rest),
        None => (0, data),
    };
    let mut input = PREFACE[..n].to_vec();
    input.extend_from_slice(rest);

    let mut decided = None;
    for k in 0..=input.len() {
        let prefix = &input[..k];
        let got = sniff(prefix);
        let want = if prefix.starts_with(PREFACE) {
            2
        } else if PREFACE.starts_with(prefix) {
            0
        } else {
            1
        };
        assert_eq!(got, want, "sniff of {k} bytes");
        match decided {
            Some(d) => assert_eq!(got, d, "answer changed after {k} bytes"),
            None if got != 0 => decided = Some(got),
            None => {}
        }
    }
});
