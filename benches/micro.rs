//! Micro-benchmarks of the hot per-request and per-upgrade steps, through the hidden
//! `h2c_mux::bench_api` entry points. Run with `cargo bench --bench micro`; the full
//! harness (`benches/run`) runs them too and tabulates the estimates.
//!
//! - `parse_head/*`: one HTTP/1.1 request head parsed (and validated) from a buffer.
//!   The buffer is refilled outside the timed part (`iter_batched_ref`).
//! - `httparse_only/*`: reference, httparse alone on the same bytes.
//! - `encode_head/get_root`: the response head of the demo's `GET /` (status line,
//!   content-type, date, content-length) written into a cleared buffer.
//! - `decode_settings/*`: an `HTTP2-Settings` value decoded and every setting checked.
//! - `stream1_headers/*`: an upgrade request head re-encoded as stream 1's HEADERS.

use std::hint::black_box;
use std::time::Duration;

use bytes::BytesMut;
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use h2c_mux::bench_api;

/// What wrk sends: the smallest realistic keep-alive request.
const WRK_GET: &[u8] = b"GET / HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n\r\n";

/// What `curl` sends.
const CURL_GET: &[u8] =
    b"GET / HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nUser-Agent: curl/7.88.1\r\nAccept: */*\r\n\r\n";

/// A browser-like request: 11 fields, about 600 bytes.
const BROWSER_GET: &[u8] = b"GET /static/app.js?v=1234 HTTP/1.1\r\n\
Host: example.com:8080\r\n\
User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0\r\n\
Accept: text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8\r\n\
Accept-Language: en-US,en;q=0.5\r\n\
Accept-Encoding: gzip, deflate\r\n\
Connection: keep-alive\r\n\
Referer: http://example.com:8080/index.html\r\n\
Cookie: session=0123456789abcdef0123456789abcdef; theme=dark; lang=en\r\n\
Upgrade-Insecure-Requests: 1\r\n\
Cache-Control: no-cache\r\n\
Pragma: no-cache\r\n\r\n";

/// What `curl --http2` sends to ask for h2c.
const CURL_UPGRADE: &[u8] = b"GET / HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n\
User-Agent: curl/7.88.1\r\nAccept: */*\r\n\
Connection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\n\
HTTP2-Settings: AAMAAABkAAQCAAAAAAIAAAAA\r\n\r\n";

fn parse_head(c: &mut Criterion) {
    let mut g = c.benchmark_group("parse_head");
    for (name, req) in [
        ("wrk_get", WRK_GET),
        ("curl_get", CURL_GET),
        ("browser_get", BROWSER_GET),
        ("curl_upgrade", CURL_UPGRADE),
    ] {
        assert!(bench_api::parse_head(&mut BytesMut::from(req)), "{name}");
        g.throughput(Throughput::Bytes(req.len() as u64));
        g.bench_function(name, |b| {
            b.iter_batched_ref(
                || BytesMut::from(req),
                |buf| black_box(bench_api::parse_head(buf)),
                BatchSize::SmallInput,
            )
        });
    }
    g.finish();
    // Reference: httparse alone on the same bytes (no `http` types, no validation),
    // the floor under any parser built on it.
    let mut g = c.benchmark_group("httparse_only");
    for (name, req) in [("wrk_get", WRK_GET), ("curl_upgrade", CURL_UPGRADE)] {
        g.throughput(Throughput::Bytes(req.len() as u64));
        g.bench_function(name, |b| {
            b.iter(|| {
                let mut headers = [httparse::EMPTY_HEADER; 100];
                let mut r = httparse::Request::new(&mut headers);
                black_box(r.parse(black_box(req)).map(|s| s.is_complete()))
            })
        });
    }
    g.finish();
}

fn encode_head(c: &mut Criterion) {
    let mut g = c.benchmark_group("encode_head");
    let mut dst = BytesMut::with_capacity(256);
    g.bench_function("get_root", |b| {
        b.iter(|| {
            dst.clear();
            bench_api::encode_head(&mut dst);
            black_box(dst.len())
        })
    });
    g.finish();
}

fn decode_settings(c: &mut Criterion) {
    let mut g = c.benchmark_group("decode_settings");
    for (name, value) in [
        // curl: MAX_CONCURRENT_STREAMS 100, INITIAL_WINDOW_SIZE 32 MiB, ENABLE_PUSH 0.
        ("curl_3_settings", &b"AAMAAABkAAQCAAAAAAIAAAAA"[..]),
        // The empty value: no settings at all.
        ("empty", &b""[..]),
        // All six RFC 7540 settings.
        (
            "six_settings",
            &b"AAEAABAAAAIAAAAAAAMAAABkAAQAAP__AAUAAEAAAAYAAQAA"[..],
        ),
    ] {
        assert!(bench_api::decode_settings(value), "{name}");
        g.bench_function(name, |b| {
            b.iter(|| black_box(bench_api::decode_settings(black_box(value))))
        });
    }
    g.finish();
}

fn upgrade_parts(host: &str, path: &str, extra: &[(&str, &str)]) -> http::request::Parts {
    let mut req = http::Request::builder()
        .method(http::Method::GET)
        .uri(path)
        .header("host", host)
        .header("connection", "Upgrade, HTTP2-Settings")
        .header("upgrade", "h2c")
        .header("http2-settings", "AAMAAABkAAQCAAAAAAIAAAAA");
    for (k, v) in extra {
        req = req.header(*k, *v);
    }
    req.body(()).unwrap().into_parts().0
}

fn stream1_headers(c: &mut Criterion) {
    let mut g = c.benchmark_group("stream1_headers");
    let curl = upgrade_parts(
        "127.0.0.1:8080",
        "/",
        &[("user-agent", "curl/7.88.1"), ("accept", "*/*")],
    );
    let browser = upgrade_parts(
        "example.com:8080",
        "/static/app.js?v=1234",
        &[
            (
                "user-agent",
                "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
            ),
            (
                "accept",
                "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
            ),
            ("accept-language", "en-US,en;q=0.5"),
            ("accept-encoding", "gzip, deflate"),
            ("referer", "http://example.com:8080/index.html"),
            (
                "cookie",
                "session=0123456789abcdef0123456789abcdef; theme=dark; lang=en",
            ),
            ("cache-control", "no-cache"),
        ],
    );
    let mut dst = BytesMut::with_capacity(4096);
    for (name, parts) in [("curl_upgrade", &curl), ("browser_upgrade", &browser)] {
        dst.clear();
        assert!(bench_api::stream1_headers(parts, &mut dst), "{name}");
        g.bench_function(name, |b| {
            b.iter(|| {
                dst.clear();
                black_box(bench_api::stream1_headers(black_box(parts), &mut dst))
            })
        });
    }
    g.finish();
}

fn config() -> Criterion {
    // Short but stable enough on a shared 2-core machine; `benches/run` pins the
    // process to one core.
    Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .sample_size(50)
}

criterion_group! {
    name = micro;
    config = config();
    targets = parse_head, encode_head, decode_settings, stream1_headers
}
criterion_main!(micro);
