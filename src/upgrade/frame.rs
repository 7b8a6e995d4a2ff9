//! The few HTTP/2 framing facts the upgrade path writes and parses itself
//! (RFC 7540 §4.1, §6): everything else is `h2`'s.

use bytes::{BufMut, BytesMut};

/// Length of a frame header: 24-bit length, type, flags, 31-bit stream id.
pub(crate) const HEADER_LEN: usize = 9;
/// HEADERS (RFC 7540 §6.2).
pub(crate) const TYPE_HEADERS: u8 = 0x1;
/// SETTINGS (RFC 7540 §6.5).
pub(crate) const TYPE_SETTINGS: u8 = 0x4;
/// CONTINUATION (RFC 7540 §6.10).
pub(crate) const TYPE_CONTINUATION: u8 = 0x9;
/// ACK on SETTINGS (RFC 7540 §6.5).
pub(crate) const FLAG_ACK: u8 = 0x1;

/// Appends a frame header. `len` must fit in 24 bits (callers cap payloads at 16 KiB).
pub(crate) fn put_header(len: usize, kind: u8, flags: u8, stream: u32, dst: &mut BytesMut) {
    debug_assert!(len <= 0x00FF_FFFF, "frame payload too long");
    // The low three octets of a big-endian u32 are the 24-bit length.
    let len = u32::try_from(len).unwrap_or(u32::MAX).to_be_bytes();
    dst.put_slice(&len[1..]);
    dst.put_u8(kind);
    dst.put_u8(flags);
    // The reserved bit is 0.
    dst.put_u32(stream & 0x7FFF_FFFF);
}

/// The payload length in a frame header.
pub(crate) fn payload_len(header: &[u8; HEADER_LEN]) -> usize {
    (usize::from(header[0]) << 16) | (usize::from(header[1]) << 8) | usize::from(header[2])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_round_trip() {
        let mut dst = BytesMut::new();
        put_header(0x01_02_03, TYPE_HEADERS, 0x5, 0x8000_0001, &mut dst);
        assert_eq!(&dst[..], &[1, 2, 3, 1, 5, 0, 0, 0, 1]);
        let h: [u8; HEADER_LEN] = dst[..].try_into().unwrap();
        assert_eq!(payload_len(&h), 0x01_02_03);
    }
}
