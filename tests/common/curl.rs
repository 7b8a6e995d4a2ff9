//! The real curl (`/usr/bin/curl`, nghttp2 inside), as the interoperability tests
//! run it: one runner, [`curl`], and the checks on its verbose trace.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use super::WAIT;

/// Where the tests expect curl; the CI image installs it there.
pub const CURL: &str = "/usr/bin/curl";

/// curl's own bound on one run (`--max-time`), unless a test asks for more.
pub const MAX_TIME: Duration = Duration::from_secs(10);

/// The curl binary. Fails the test (never skips it) when curl is missing.
pub fn curl_path() -> &'static Path {
    let path = Path::new(CURL);
    assert!(
        path.exists(),
        "curl not found at {CURL}: install curl (apt-get install -y curl)"
    );
    path
}

/// What curl wrote: the bodies on stdout, its `--verbose` trace on stderr.
pub struct Output {
    pub stdout: Vec<u8>,
    pub stderr: String,
}

/// Runs `curl --silent --show-error --verbose --max-time 10 ARGS`, failing the test
/// when curl is missing, fails or does not finish within its own bound.
pub async fn curl(args: &[&str]) -> Output {
    curl_for(MAX_TIME, args).await
}

/// [`curl`] with `--max-time` set to `max_time`, for large uploads.
pub async fn curl_for(max_time: Duration, args: &[&str]) -> Output {
    let child = tokio::process::Command::new(curl_path())
        .args(["--silent", "--show-error", "--verbose", "--max-time"])
        .arg(max_time.as_secs().to_string())
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {CURL}: {e}"));
    // curl stops itself at `max_time`; this bound only catches a curl that hangs.
    let out = tokio::time::timeout(max_time + WAIT, child.wait_with_output())
        .await
        .unwrap_or_else(|_| panic!("curl {args:?} did not finish"))
        .expect("curl output");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        out.status.success(),
        "curl {args:?} failed with {}:\n{stderr}",
        out.status
    );
    Output {
        stdout: out.stdout,
        stderr,
    }
}

/// A fresh directory for the files curl uploads, one per test process and thread.
pub fn upload_dir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "h2c-mux-curl-{}-{:?}",
        std::process::id(),
        std::thread::current().id()
    ));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

/// Writes `body` to a fresh file for `--data-binary @file`.
pub fn body_file(name: &str, body: &[u8]) -> PathBuf {
    let file = upload_dir().join(name);
    std::fs::write(&file, body).expect("write body file");
    file
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
