//! The `Date` field (RFC 9110 §6.6.1) of the current second, formatted once per
//! second and thread for both protocols.

use std::cell::RefCell;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::{BufMut, BytesMut};
use http::HeaderValue;

/// The length of an IMF-fixdate (RFC 9110 §5.6.7): `Sun, 06 Nov 1994 08:49:37 GMT`.
const DATE_LEN: usize = 29;

/// The `Date` of the current second, in the two forms it is used in.
struct CachedDate {
    /// The second it is valid for: [start, end).
    start: SystemTime,
    end: SystemTime,
    /// For HTTP/1 heads: a copy of known length is a few moves, not a call.
    bytes: [u8; DATE_LEN],
    /// For HTTP/2 responses: cloning it is a reference count.
    value: HeaderValue,
}

thread_local! {
    // The formatted date changes once a second; formatting it per response would
    // cost more than the rest of a small response head. A check is two comparisons
    // of `SystemTime`.
    static DATE: RefCell<CachedDate> = const {
        RefCell::new(CachedDate {
            start: UNIX_EPOCH,
            end: UNIX_EPOCH,
            bytes: [b' '; DATE_LEN],
            value: HeaderValue::from_static(""),
        })
    };
}

/// Calls `f` with the `Date` of the current second (RFC 9110 §6.6.1).
fn with_date<R>(f: impl FnOnce(&CachedDate) -> R) -> R {
    let now = SystemTime::now();
    DATE.with(|cell| {
        let mut cached = cell.borrow_mut();
        // Also refreshed when the clock went back.
        if now < cached.start || now >= cached.end {
            let secs = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
            let start = UNIX_EPOCH + Duration::from_secs(secs);
            let text = httpdate::fmt_http_date(now);
            if let (Ok(bytes), Ok(value)) = (
                <[u8; DATE_LEN]>::try_from(text.as_bytes()),
                HeaderValue::from_str(&text),
            ) {
                *cached = CachedDate {
                    start,
                    end: start + Duration::from_secs(1),
                    bytes,
                    value,
                };
            }
        }
        f(&cached)
    })
}

/// The current `Date` value, for an HTTP/2 response's fields.
pub(crate) fn value() -> HeaderValue {
    with_date(|d| d.value.clone())
}

/// Appends the current `Date` value to an HTTP/1.1 head.
pub(crate) fn put(dst: &mut BytesMut) {
    with_date(|d| dst.put_slice(&d.bytes));
}
