//! The chunked body decoder (`decode_body(None, ..)`) fed in pieces.
//!
//! Input: byte 0 picks the number of split points (1 to 3), then two bytes per
//! point pick its position; the rest is the body bytes.
//!
//! Checks:
//! * no panic;
//! * split at the chosen points, the decoder gives the same result as in one
//!   piece: the same error / need-more verdict, or the same body, the same trailer
//!   count and the same place where the body ends (the bytes after it are left
//!   untouched: in one piece they are exactly the input's tail);
//! * the same for a Content-Length decoder whose length is the first point's value.
#![no_main]

use h2c_mux::bench_api::decode_body;
use libfuzzer_sys::fuzz_target;

type Outcome = Result<Option<(Vec<u8>, usize, Vec<u8>)>, ()>;

#[path = "../common/split.rs"]
mod split;
use split::{cuts, pieces};

/// Compares the split result with the one-piece result. `decode_body` returns as
/// soon as the body ends, so with pieces the bytes left after the body are only those
/// of the piece it ended in.
fn check(length: Option<u64>, input: &[u8], parts: &[&[u8]]) {
    let whole: Outcome = decode_body(length, &[input]);
    let split: Outcome = decode_body(length, parts);
    match (&whole, &split) {
        (Ok(Some((wb, wt, wrest))), Ok(Some((sb, st, srest)))) => {
            assert_eq!(wb, sb, "body differs when split");
            assert_eq!(wt, st, "trailer count differs when split");
            assert!(input.ends_with(wrest), "bytes after the body were changed");
            let consumed = input.len() - wrest.len();
            assert!(wb.len() <= consumed);
            if let Some(n) = length {
                assert_eq!(u64::try_from(consumed).ok(), Some(n));
                assert_eq!(&wb[..], &input[..consumed]);
            }
            // The body ends in the first piece that reaches `consumed`.
            let mut end = 0;
            for p in parts {
                end += p.len();
                if end >= consumed {
                    break;
                }
            }
            assert_eq!(
                &srest[..],
                &input[consumed..end],
                "body ends elsewhere when split"
            );
        }
        _ => assert_eq!(whole, split, "verdict differs when split"),
    }
    if let (Some(n), Ok(None)) = (length, &whole) {
        assert!((input.len() as u64) < n, "content-length body not ended");
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&n, rest)) = data.split_first() else {
        return;
    };
    let n = 1 + usize::from(n % 3);
    let Some((cuts, input)) = cuts(rest, n) else {
        return;
    };
    let parts = pieces(input, &cuts);
    check(None, input, &parts);
    check(Some(u64::from(cuts[0]) % 512), input, &parts);
});
