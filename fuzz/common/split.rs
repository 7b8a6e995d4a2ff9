//! Shared by the targets that feed their input in pieces.

/// Splits `input` at `cuts` (each taken modulo `input.len() + 1`, then sorted).
pub fn pieces<'a>(input: &'a [u8], cuts: &[u16]) -> Vec<&'a [u8]> {
    let mut at: Vec<usize> = cuts
        .iter()
        .map(|&c| usize::from(c) % (input.len() + 1))
        .collect();
    at.sort_unstable();
    let mut out = Vec::with_capacity(at.len() + 1);
    let mut start = 0;
    for a in at {
        out.push(&input[start..a]);
        start = a;
    }
    out.push(&input[start..]);
    out
}

/// Reads `n` cut positions (big-endian `u16`s) from the front of `data`; returns them
/// and the rest, or `None` when `data` is too short.
pub fn cuts(data: &[u8], n: usize) -> Option<(Vec<u16>, &[u8])> {
    if data.len() < 2 * n {
        return None;
    }
    let (sel, rest) = data.split_at(2 * n);
    let cuts = sel
        .chunks_exact(2)
        .map(|c| u16::from_be_bytes([c[0], c[1]]))
        .collect();
    Some((cuts, rest))
}
