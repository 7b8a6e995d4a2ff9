//! Field values as lists (RFC 9110 §5.6.1): what the HTTP/1.1 parser, the
//! response writer, the upgrade's stream 1 and the hand-over for other upgrades
//! all read `Connection`, `Upgrade`, `Transfer-Encoding` and `TE` with.

/// Splits a field value into its comma-separated list members, trimmed of
/// optional whitespace, skipping empty members.
///
/// (`trim_ascii` trims more than RFC 9110's OWS, SP and HTAB, but a field value
/// holds no other ASCII whitespace: `http::HeaderValue` and the parser refuse
/// CR, LF and the other control characters.)
pub(crate) fn list(value: &[u8]) -> impl Iterator<Item = &[u8]> {
    value.split(|&b| b == b',').filter_map(|item| {
        let item = item.trim_ascii();
        (!item.is_empty()).then_some(item)
    })
}

#[cfg(test)]
mod tests {
    use super::list;

    #[test]
    fn members_are_trimmed_and_empty_ones_skipped() {
        let got: Vec<&[u8]> = list(b" upgrade ,, HTTP2-Settings\t,").collect();
        assert_eq!(got, [&b"upgrade"[..], b"HTTP2-Settings"]);
        assert_eq!(list(b"").count(), 0);
        assert_eq!(list(b" , ").count(), 0);
    }
}
