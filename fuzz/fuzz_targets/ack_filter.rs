//! `filter_acks`: the upgrade adapter's write filter, which drops the first
//! SETTINGS frame with the ACK flag from what `h2` writes.
//!
//! Input: byte 0 picks the number of split points (0 to 7), then two bytes per
//! point pick its position; the rest is read twice: as raw bytes, and as a
//! description of a sequence of frames.
//!
//! Checks:
//! * raw bytes: filtering them split at the chosen points gives the same output as
//!   filtering them in one piece;
//! * frames: for a well-formed sequence of frames built from the input, split at the
//!   chosen points, the output is the sequence without exactly the first frame of
//!   type SETTINGS (0x4) whose flags have ACK (0x1); every other frame, payload
//!   included, passes unchanged and in order.
#![no_main]

use h2c_mux::bench_api::filter_acks;
use libfuzzer_sys::fuzz_target;

#[path = "../common/split.rs"]
mod split;
use split::{cuts, pieces};

/// Reads bytes, then zeros once the input is used up.
struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn byte(&mut self) -> u8 {
        match self.0.split_first() {
            Some((&b, rest)) => {
                self.0 = rest;
                b
            }
            None => 0,
        }
    }
}

/// Builds frames from `desc`: per frame a type byte (below 0x60 means SETTINGS, so
/// that SETTINGS are common), a flags byte, a stream byte, a length byte (0xfe: a
/// length above 65535 follows from one more byte, 0xff: two more bytes give it) and
/// then the payload, taken from the input and padded with a counter.
/// Returns the whole sequence and the sequence without the first SETTINGS ACK.
fn frames(desc: &[u8]) -> (Vec<u8>, Vec<u8>) {
    let mut r = Reader(desc);
    let mut all = Vec::new();
    let mut expected = Vec::new();
    let mut dropped = false;
    let mut count = 0;
    while !r.0.is_empty() && count < 64 {
        count += 1;
        let t = r.byte();
        let ty = if t < 0x60 { 0x4 } else { t & 0x0f };
        let flags = r.byte();
        let stream = u32::from(r.byte()) * 0x0101_0101;
        let len = match r.byte() {
            0xfe => 0x1_0000 + usize::from(r.byte()) * 0x101,
            0xff => usize::from(u16::from_be_bytes([r.byte(), r.byte()])),
            n => usize::from(n),
        };
        let mut frame = Vec::with_capacity(9 + len);
        frame.extend_from_slice(&u32::try_from(len).unwrap_or(0).to_be_bytes()[1..]);
        frame.push(ty);
        frame.push(flags);
        frame.extend_from_slice(&stream.to_be_bytes());
        let take = len.min(r.0.len());
        frame.extend_from_slice(&r.0[..take]);
        r.0 = &r.0[take..];
        for i in take..len {
            frame.push(i as u8);
        }
        all.extend_from_slice(&frame);
        if !dropped && ty == 0x4 && flags & 0x1 != 0 {
            dropped = true;
        } else {
            expected.extend_from_slice(&frame);
        }
    }
    (all, expected)
}

fuzz_target!(|data: &[u8]| {
    let Some((&n, rest)) = data.split_first() else {
        return;
    };
    let n = usize::from(n % 8);
    let Some((cuts, input)) = cuts(rest, n) else {
        return;
    };

    let whole = filter_acks(&[input]);
    assert_eq!(
        filter_acks(&pieces(input, &cuts)),
        whole,
        "raw bytes: output differs when split"
    );
    assert!(whole.len() <= input.len());

    let (all, expected) = frames(input);
    let got = filter_acks(&pieces(&all, &cuts));
    assert!(
        got == expected,
        "frames: output ({} bytes) is not the input ({} bytes) minus the first SETTINGS ACK ({} bytes expected)",
        got.len(),
        all.len(),
        expected.len()
    );
});
