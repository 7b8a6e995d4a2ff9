//! `parse_head` on arbitrary bytes.
//!
//! Input: the first byte picks a split point (bits 0-6) and whether the rest is
//! expanded (bit 7); the rest is the request bytes. Expanded, a NUL byte (never valid
//! in a head) followed by a count byte `n` stands for the byte before it repeated
//! `64 * n` more times, up to 70000 bytes in all: long lines and heads reach the
//! size limits, which libFuzzer's mutations rarely do on their own.
//!
//! Checks:
//! * no panic, on the whole input and on the split pieces;
//! * a successful parse removes a non-empty head from the front of the buffer and
//!   leaves exactly the bytes after it;
//! * `parse_head` and `head_to_stream1` agree on whether the head parses;
//! * split at the chosen point: if the first piece alone already parses, the whole
//!   parses too, with the same head length (bytes after a complete head do not
//!   change the verdict); if the whole does not parse, neither does the first piece.
//!   (`parse_head` only returns a bool, so "incomplete" and "rejected" cannot be told
//!   apart for a piece that does not parse; the parser is stateless, so after an
//!   incomplete first piece a server re-parses the whole, which is the first check.)
//! * pipelining: a parsed head followed by a copy of itself parses twice, with the
//!   same length both times;
//! * an accepted head keeps the documented rules, checked on its bytes: it ends with
//!   an empty line, every CR is followed by LF and every LF preceded by CR, it fits
//!   the default limits (64 KiB head, 8 KiB request line, 100 fields), it never has
//!   both Transfer-Encoding and Content-Length, never Transfer-Encoding in HTTP/1.0,
//!   and an HTTP/1.1 head has exactly one Host field.
#![no_main]

use bytes::BytesMut;
use h2c_mux::bench_api::{head_to_stream1, parse_head};
use libfuzzer_sys::fuzz_target;

/// Length of the head parsed from the front of `input`, if it parses.
fn parse(input: &[u8]) -> Option<usize> {
    let mut buf = BytesMut::from(input);
    if !parse_head(&mut buf) {
        return None;
    }
    let len = input.len() - buf.len();
    assert!(len > 0, "empty head parsed");
    assert_eq!(&buf[..], &input[len..], "bytes after the head changed");
    check_accepted(&input[..len]);
    Some(len)
}

/// The rules every accepted head follows, from its raw bytes.
fn check_accepted(head: &[u8]) {
    assert!(
        head.ends_with(b"\r\n\r\n"),
        "head does not end with an empty line"
    );
    for (i, &b) in head.iter().enumerate() {
        if b == b'\n' {
            assert!(i > 0 && head[i - 1] == b'\r', "bare LF at {i} accepted");
        }
        if b == b'\r' {
            assert_eq!(head.get(i + 1), Some(&b'\n'), "bare CR at {i} accepted");
        }
    }
    assert!(head.len() <= 64 * 1024, "head over 64 KiB accepted");
    let mut lines = head
        .split(|&b| b == b'\n')
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l));
    // Empty lines before the request line are skipped (RFC 9112 §2.2).
    let request_line = lines.by_ref().find(|l| !l.is_empty()).unwrap_or_default();
    assert!(
        request_line.len() <= 8 * 1024,
        "request line of {} bytes accepted",
        request_line.len()
    );
    let fields: Vec<&[u8]> = lines.take_while(|l| !l.is_empty()).collect();
    assert!(fields.len() <= 100, "more than 100 fields accepted");
    let count = |name: &[u8]| {
        fields
            .iter()
            .filter(|l| {
                l.len() > name.len()
                    && l[..name.len()].eq_ignore_ascii_case(name)
                    && l[name.len()] == b':'
            })
            .count()
    };
    let te = count(b"transfer-encoding");
    assert!(
        te == 0 || count(b"content-length") == 0,
        "transfer-encoding with content-length accepted"
    );
    if request_line.ends_with(b"HTTP/1.0") {
        assert_eq!(te, 0, "transfer-encoding in http/1.0 accepted");
    } else {
        assert!(
            request_line.ends_with(b"HTTP/1.1"),
            "unknown version accepted"
        );
        assert_eq!(
            count(b"host"),
            1,
            "http/1.1 head without exactly one host accepted"
        );
    }
}

/// Most bytes an expanded input grows to: above the 64 KiB head limit.
const MAX_EXPANDED: usize = 70_000;

/// Replaces each NUL + count pair by `64 * count` copies of the byte before it.
fn expand(input: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(input.len());
    let mut i = 0;
    while i < input.len() && out.len() < MAX_EXPANDED {
        match (input[i], input.get(i + 1)) {
            (0, Some(&n)) => {
                let b = out.last().copied().unwrap_or(b'a');
                let n = (usize::from(n) * 64).min(MAX_EXPANDED - out.len());
                out.resize(out.len() + n, b);
                i += 2;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    out
}

fuzz_target!(|data: &[u8]| {
    let whole_raw = parse(data);
    assert_eq!(
        whole_raw.is_some(),
        head_to_stream1(data).is_some(),
        "parse_head and head_to_stream1 disagree"
    );

    let Some((&sel, rest)) = data.split_first() else {
        return;
    };
    let expanded;
    let input = if sel & 0x80 != 0 {
        expanded = expand(rest);
        &expanded[..]
    } else {
        rest
    };
    let whole = parse(input);
    assert_eq!(whole.is_some(), head_to_stream1(input).is_some());

    // Bits 0-6: 0 splits before the first byte, 127 after the last.
    let at = usize::from(sel & 0x7f) * input.len() / 127;
    let first = parse(&input[..at]);
    if let Some(len) = first {
        assert_eq!(whole, Some(len), "first piece parsed, whole did not agree");
    }
    if whole.is_none() {
        assert_eq!(first, None);
    }
    if let Some(len) = whole {
        if at < len {
            // A strict prefix of a head that parses cannot be a complete head.
            assert_eq!(first, None, "a strict prefix of the head parsed");
        }
        // Pipelining: the same head twice.
        let mut twice = BytesMut::with_capacity(2 * len);
        twice.extend_from_slice(&input[..len]);
        twice.extend_from_slice(&input[..len]);
        assert!(
            parse_head(&mut twice),
            "head did not parse with a copy after it"
        );
        assert_eq!(twice.len(), len);
        assert!(parse_head(&mut twice), "pipelined copy did not parse");
        assert!(twice.is_empty());
    }
});
