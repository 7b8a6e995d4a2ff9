//! Interoperability with the real curl (`/usr/bin/curl`, nghttp2 inside): the h2c
//! upgrade, connection reuse on stream 3, prior knowledge, and HTTP/1.1 keep-alive.
#![cfg(feature = "demo")] // the demo service is behind the `demo` feature (on by default)

mod common;

use common::curl::{assert_upgraded, body_file, curl};
use common::server::Server;
use common::service::pattern;

fn url(server: &Server, path: &str) -> String {
    format!("http://{}{path}", server.addr)
}

#[tokio::test]
async fn curl_http2_upgrade_get() {
    let server = Server::demo().await;
    let out = curl(&["--http2", &url(&server, "/")]).await;
    assert_eq!(out.stdout, b"hello world\n");
    assert!(out.stderr.contains("Upgrade: h2c"), "{}", out.stderr);
    assert_upgraded(&out.stderr);
}

#[tokio::test]
async fn curl_http2_upgrade_post_echo() {
    let server = Server::demo().await;
    let out = curl(&["--http2", "-d", "posted=over+h2c", &url(&server, "/echo")]).await;
    assert_eq!(out.stdout, b"posted=over+h2c");
    assert_upgraded(&out.stderr);
}

#[tokio::test]
async fn curl_http2_two_urls_share_the_upgraded_connection() {
    let server = Server::demo().await;
    let out = curl(&[
        "--http2",
        "-w",
        CONNECTS,
        &url(&server, "/"),
        &url(&server, "/bytes/64"),
    ])
    .await;
    // One connection made, both answers over HTTP/2: the second request went on
    // the upgraded connection (as its stream 3).
    let mut want = b"hello world\n[1 2]".to_vec();
    want.extend_from_slice(&pattern(64));
    want.extend_from_slice(b"[0 2]");
    assert_eq!(out.stdout, want);
    assert_eq!(
        out.stderr.matches("< HTTP/1.1 101").count(),
        1,
        "{}",
        out.stderr
    );
}

/// curl's `--write-out` after each transfer: how many connections it opened for it
/// and the HTTP version of its answer. Stable across curl versions, unlike the
/// wording of its verbose log.
const CONNECTS: &str = "[%{num_connects} %{http_version}]";

#[tokio::test]
async fn curl_http2_prior_knowledge_get() {
    let server = Server::demo().await;
    let out = curl(&["--http2-prior-knowledge", &url(&server, "/")]).await;
    assert_eq!(out.stdout, b"hello world\n");
    assert!(out.stderr.contains("< HTTP/2 200"), "{}", out.stderr);
    assert!(!out.stderr.contains("101"), "{}", out.stderr);
}

#[tokio::test]
async fn curl_http11_two_urls_reuse_the_connection() {
    let server = Server::demo().await;
    let out = curl(&[
        "--http1.1",
        "-w",
        CONNECTS,
        &url(&server, "/"),
        &url(&server, "/bytes/5"),
    ])
    .await;
    let mut want = b"hello world\n[1 1.1]".to_vec();
    want.extend_from_slice(&pattern(5));
    want.extend_from_slice(b"[0 1.1]");
    assert_eq!(out.stdout, want);
    assert_eq!(
        out.stderr.matches("< HTTP/1.1 200").count(),
        2,
        "{}",
        out.stderr
    );
}

#[tokio::test]
async fn curl_http2_upgrade_large_post_to_sha256() {
    // Over 1 MiB: curl sends `Expect: 100-continue` and streams the body before
    // the 101.
    let server = Server::demo().await;
    let body = pattern(3_000_000);
    let file = body_file("upgrade-sha256-body", &body);
    let data = format!("@{}", file.display());
    let out = curl(&["--http2", "--data-binary", &data, &url(&server, "/sha256")]).await;
    let _ = std::fs::remove_file(&file);
    let want = format!("{} {}\n", common::sha256::sha256_hex(&body), body.len());
    assert_eq!(String::from_utf8_lossy(&out.stdout), want);
    assert_upgraded(&out.stderr);
}

#[tokio::test]
async fn curl_http11_large_post_echo() {
    // curl asks `Expect: 100-continue` for bodies over 1 MiB.
    let server = Server::demo().await;
    let body: Vec<u8> = pattern(2_000_000);
    let file = body_file("large-post-body", &body);
    let data = format!("@{}", file.display());
    let out = curl(&["--http1.1", "--data-binary", &data, &url(&server, "/echo")]).await;
    let _ = std::fs::remove_file(&file);
    assert!(
        out.stderr.contains("Expect: 100-continue"),
        "{}",
        out.stderr
    );
    assert_eq!(out.stdout.len(), body.len());
    assert!(
        out.stdout == body,
        "echoed body differs from what was sent; it starts with {:?}",
        String::from_utf8_lossy(&out.stdout[..out.stdout.len().min(40)])
    );
}
