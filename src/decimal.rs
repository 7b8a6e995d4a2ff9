//! Decimal ASCII for the numbers the server writes into fields: the HTTP/1.1
//! head encoder's `content-length` and HTTP/2's `content-length` values.

/// `n` in decimal ASCII, written at the end of `buf` (20 bytes hold any `u64`):
/// the slice written.
pub(crate) fn digits(mut n: u64, buf: &mut [u8; 20]) -> &[u8] {
    let mut at = buf.len();
    loop {
        at -= 1;
        // `n % 10` is a digit: the cast cannot truncate.
        buf[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            return &buf[at..];
        }
    }
}
