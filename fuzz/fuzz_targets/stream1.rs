//! `head_to_stream1`: an HTTP/1.1 request head re-encoded as stream 1's HEADERS.
//!
//! Input: when byte 0 is odd, the rest is the raw head; when it is even, the rest is
//! placed after an h2c upgrade request line and Host field and before the head's end
//! (so that most inputs parse and reach the HTTP/2 encoder; byte 0 also picks the
//! method, the target form and whether the Host field is sent).
//!
//! Checks:
//! * no panic;
//! * `head_to_stream1` returns `Some` exactly when `parse_head` accepts the head.
#![no_main]

use bytes::BytesMut;
use h2c_mux::bench_api::{head_to_stream1, parse_head};
use libfuzzer_sys::fuzz_target;

const METHODS: [&str; 8] = [
    "GET", "POST", "OPTIONS", "CONNECT", "PUT", "HEAD", "DELETE", "PATCH",
];
const TARGETS: [&str; 4] = ["/", "*", "http://example.com:80/a?b", "example.com:443"];

fn check(input: &[u8]) {
    let converted = head_to_stream1(input);
    let mut buf = BytesMut::from(input);
    assert_eq!(
        parse_head(&mut buf),
        converted.is_some(),
        "head_to_stream1 and parse_head disagree"
    );
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        check(data);
        return;
    };
    if mode & 1 == 1 {
        check(rest);
        return;
    }
    let method = METHODS[usize::from(mode >> 1) % METHODS.len()];
    let target = TARGETS[usize::from(mode >> 4) % TARGETS.len()];
    let mut head = Vec::with_capacity(rest.len() + 128);
    head.extend_from_slice(method.as_bytes());
    head.push(b' ');
    head.extend_from_slice(target.as_bytes());
    head.extend_from_slice(b" HTTP/1.1\r\n");
    if mode & 0x40 == 0 {
        head.extend_from_slice(b"Host: example.com\r\n");
    }
    head.extend_from_slice(b"Connection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\n");
    head.extend_from_slice(rest);
    head.extend_from_slice(b"\r\n\r\n");
    check(&head);
});
