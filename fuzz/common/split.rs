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
