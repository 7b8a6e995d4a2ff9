//! Recognising HTTP/2 with prior knowledge (RFC 9113 §3.3) from a connection's
//! first bytes. The bytes read while looking are replayed through
//! [`Rewind`](crate::read::Rewind).

/// The HTTP/2 client connection preface (RFC 9113 §3.4).
pub(crate) const PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// What the first bytes of a connection say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Sniffed {
    /// The whole preface: HTTP/2 with prior knowledge.
    H2,
    /// A byte differs from the preface: HTTP/1.
    Http1,
    /// Every byte so far matches the preface, but it is not complete.
    NeedMore,
}

/// Decides from the bytes read so far. The first mismatching byte decides HTTP/1,
/// so an HTTP/1 request is recognised from its first byte (no method starts "PRI "
/// except the preface's own).
pub(crate) fn sniff(buf: &[u8]) -> Sniffed {
    let n = buf.len().min(PREFACE.len());
    if buf[..n] != PREFACE[..n] {
        Sniffed::Http1
    } else if n == PREFACE.len() {
        Sniffed::H2
    } else {
        Sniffed::NeedMore
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn preface_fed_one_byte_at_a_time() {
        let mut seen = Vec::new();
        for (i, b) in PREFACE.iter().enumerate() {
            seen.push(*b);
            let want = if i + 1 == PREFACE.len() {
                Sniffed::H2
            } else {
                Sniffed::NeedMore
            };
            assert_eq!(sniff(&seen), want, "after {} bytes", i + 1);
        }
        seen.extend_from_slice(b"\x00\x00\x00\x04");
        assert_eq!(sniff(&seen), Sniffed::H2);
    }

    #[test]
    fn first_mismatch_is_http1() {
        let cases: &[&[u8]] = &[
            b"G",
            b"GET / HTTP/1.1\r\n",
            b"POST",
            b"PRI / HTTP/1.1",
            b"PRI * HTTP/2.0\r\n\r\nXX",
            b"pri",
        ];
        for c in cases {
            assert_eq!(sniff(c), Sniffed::Http1, "{c:?}");
        }
        assert_eq!(sniff(b""), Sniffed::NeedMore);
    }

    #[test]
    fn every_mismatch_position_is_http1() {
        for i in 0..PREFACE.len() {
            let mut v = PREFACE[..=i].to_vec();
            v[i] ^= 0x20;
            assert_eq!(sniff(&v), Sniffed::Http1, "mismatch at {i}");
        }
    }
}
