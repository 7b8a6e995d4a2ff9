//! The real curl (`/usr/bin/curl`, nghttp2 inside), as the interoperability tests
//! run it.

use std::path::Path;

/// Where the tests expect curl; the CI image installs it there.
pub const CURL: &str = "/usr/bin/curl";

/// The curl binary. Fails the test (never skips it) when curl is missing.
pub fn curl_path() -> &'static Path {
    let path = Path::new(CURL);
    assert!(
        path.exists(),
        "curl not found at {CURL}: install curl (apt-get install -y curl)"
    );
    path
}

/// Asserts curl's `--verbose` trace shows the h2c upgrade: a `101`, then the
/// HTTP/2 `200`.
pub fn assert_upgraded(trace: &str) {
    let switch = trace
        .find("< HTTP/1.1 101")
        .unwrap_or_else(|| panic!("no 101 in: {trace}"));
    let h2 = trace
        .find("< HTTP/2 200")
        .unwrap_or_else(|| panic!("no HTTP/2 200 in: {trace}"));
    assert!(switch < h2, "101 before the HTTP/2 response: {trace}");
}
