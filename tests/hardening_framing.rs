//! HTTP/1.1 framing hardening: every ambiguous or malformed message gets its exact
//! status and the connection is closed afterwards (read to EOF), nothing after a
//! framing error is read as a request, and the HTTP/1 and HTTP/2 header limits
//! agree.
//!
//! Most cases run over `tokio::io::duplex` with `Builder::serve_connection`, so the
//! `Connection` future's result can be checked too; the HTTP/1-vs-HTTP/2 limit case
//! runs against `Builder::serve` on 127.0.0.1:0.

mod common;

use common::h1::{count_status_lines, h1_exchange, parse_responses};
use common::h2c::{raw_upgrade, UPGRADE_GET};
use common::h2client::{get, h2_client, h2_send};
use common::h2frame::PREFACE;
use common::server::{conn_result, duplex_conn, Server};
use common::service::inspect;
use common::{read_to_eof, WAIT};
use h2c_mux::demo::Demo;
use h2c_mux::Builder;
use http::{Request, StatusCode};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio::time::timeout;

/// Sends `request` to the demo service and expects exactly one response with
/// `status`, marked `connection: close`, then EOF, and a connection that ended
/// with a parse error.
async fn expect_refused(builder: &Builder, request: &[u8], status: u16) {
    let (bytes, res) = h1_exchange(builder, Demo::new(), request).await;
    let what = String::from_utf8_lossy(request);
    let what = if what.len() > 200 {
        format!("{}... ({} bytes)", &what[..200], request.len())
    } else {
        what.into_owned()
    };
    let rs = parse_responses(&bytes);
    assert_eq!(
        rs.len(),
        1,
        "{what:?}: want exactly one response, got {:?}",
        String::from_utf8_lossy(&bytes)
    );
    assert_eq!(rs[0].status, status, "{what:?}");
    assert!(rs[0].complete, "{what:?}: response cut off");
    assert!(
        rs[0].closes(),
        "{what:?}: response must say connection: close"
    );
    let e = res.expect_err(&format!("{what:?}: the connection must end with an error"));
    assert!(e.is_parse(), "{what:?}: want a parse error, got {e:?}");
}

/// Sends `request` (which should end with `Connection: close`) to the demo
/// service and returns the first response's status.
async fn accepted_status(builder: &Builder, request: &[u8]) -> u16 {
    let (bytes, res) = h1_exchange(builder, Demo::new(), request).await;
    let rs = parse_responses(&bytes);
    assert!(
        !rs.is_empty(),
        "{:?}: no response",
        String::from_utf8_lossy(request)
    );
    assert!(
        res.is_ok(),
        "{:?}: connection error {res:?}",
        String::from_utf8_lossy(request)
    );
    rs[0].status
}

/// `POST /echo` with `head_fields` (each ending in CRLF), then `body`.
fn req(head_fields: &str, body: &[u8]) -> Vec<u8> {
    let mut r = format!("POST /echo HTTP/1.1\r\nHost: a\r\n{head_fields}\r\n").into_bytes();
    r.extend_from_slice(body);
    r
}

/// [`expect_refused`] for `POST /echo` with each of `head_fields`, then `body`.
async fn expect_each_refused<F: AsRef<str>>(
    builder: &Builder,
    head_fields: impl IntoIterator<Item = F>,
    body: &[u8],
    status: u16,
) {
    for fields in head_fields {
        expect_refused(builder, &req(fields.as_ref(), body), status).await;
    }
}

const CHUNKED_BODY: &[u8] = b"5\r\nhello\r\n0\r\n\r\n";

#[tokio::test]
async fn transfer_encoding_with_content_length_is_400_and_closes() {
    let b = Builder::new();
    let both = [
        "Transfer-Encoding: chunked\r\nContent-Length: 5\r\n",
        "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n",
        "Content-Length: 0\r\nTransfer-Encoding: chunked\r\n",
    ];
    expect_each_refused(&b, both, CHUNKED_BODY, 400).await;
    // Control: the same body with only one of the two is fine.
    let ok = req(
        "Transfer-Encoding: chunked\r\nConnection: close\r\n",
        CHUNKED_BODY,
    );
    assert_eq!(accepted_status(&b, &ok).await, 200);
}

#[tokio::test]
async fn differing_content_lengths_are_400_and_close() {
    let b = Builder::new();
    let differing = [
        "Content-Length: 5\r\nContent-Length: 6\r\n",
        "Content-Length: 5, 6\r\n",
        "Content-Length: 5\r\nContent-Length: 5, 50\r\n",
    ];
    expect_each_refused(&b, differing, b"hello!", 400).await;
    // Control: repeated identical values are one length (RFC 9112 §6.3).
    let ok = req(
        "Content-Length: 5\r\nContent-Length: 5\r\nConnection: close\r\n",
        b"hello",
    );
    assert_eq!(accepted_status(&b, &ok).await, 200);
}

#[tokio::test]
async fn content_length_that_is_not_plain_decimal_is_400_and_closes() {
    let b = Builder::new();
    let values = [
        "+5",
        "0x5",
        "5 5",
        "-5",
        "5.0",
        " ",
        "99999999999999999999999",
    ];
    let fields = values.map(|value| format!("Content-Length: {value}\r\n"));
    expect_each_refused(&b, fields, b"hello", 400).await;
    let ok = req("Content-Length: 05\r\nConnection: close\r\n", b"hello");
    assert_eq!(accepted_status(&b, &ok).await, 200);
}

#[tokio::test]
async fn transfer_coding_not_ending_in_chunked_is_400_and_closes() {
    let b = Builder::new();
    let codings = [
        "Transfer-Encoding: gzip\r\n",
        "Transfer-Encoding: chunked, gzip\r\n",
        "Transfer-Encoding: identity\r\n",
        "Transfer-Encoding: chunked\r\nTransfer-Encoding: gzip\r\n",
        "Transfer-Encoding: chunked, chunked\r\n",
    ];
    expect_each_refused(&b, codings, CHUNKED_BODY, 400).await;
}

#[tokio::test]
async fn unknown_coding_before_chunked_is_501_and_closes() {
    let b = Builder::new();
    let codings = [
        "Transfer-Encoding: gzip, chunked\r\n",
        "Transfer-Encoding: deflate, chunked\r\n",
        "Transfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n",
    ];
    expect_each_refused(&b, codings, CHUNKED_BODY, 501).await;
}

const CHUNKED_HEAD: &str = "POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n";

/// Chunked bodies whose framing is broken, each with a name.
/// Each with the decoder's reason, as the body error's text shows it.
fn broken_chunked_bodies() -> Vec<(&'static str, Vec<u8>, &'static str)> {
    let mut ext_over = b"1;".to_vec();
    ext_over.extend(vec![b'a'; 4096]); // 4097 extension bytes
    ext_over.extend_from_slice(b"\r\nx\r\n0\r\n\r\n");
    // 5 x 1000 extension bytes: the budget is per message, not per chunk.
    let mut ext_spread = Vec::new();
    for _ in 0..5 {
        ext_spread.extend_from_slice(b"1;");
        ext_spread.extend(vec![b'e'; 999]);
        ext_spread.extend_from_slice(b"\r\nx\r\n");
    }
    ext_spread.extend_from_slice(b"0\r\n\r\n");
    // One trailer line of 8193 bytes (CRLF included).
    let mut trailers_over = b"3\r\nabc\r\n0\r\nx-t: ".to_vec();
    trailers_over.extend(vec![b'v'; 8193 - 7]);
    trailers_over.extend_from_slice(b"\r\n\r\n");
    vec![
        (
            "size overflow",
            b"ffffffffffffffffff\r\nabc\r\n0\r\n\r\n".to_vec(),
            "chunk size overflow",
        ),
        (
            "non-hex size",
            b"zz\r\nab\r\n0\r\n\r\n".to_vec(),
            "invalid chunk size",
        ),
        (
            "signed size",
            b"+3\r\nabc\r\n0\r\n\r\n".to_vec(),
            "invalid chunk size",
        ),
        (
            "missing crlf after data",
            b"3\r\nabcXY0\r\n\r\n".to_vec(),
            "missing crlf",
        ),
        (
            "bare lf after size",
            b"3\nabc\r\n0\r\n\r\n".to_vec(),
            "missing crlf",
        ),
        (
            "bare lf after data",
            b"3\r\nabc\n0\r\n\r\n".to_vec(),
            "missing crlf",
        ),
        (
            "bare lf ending the trailers",
            b"3\r\nabc\r\n0\r\n\n".to_vec(),
            "missing crlf",
        ),
        (
            "extensions over 4096 bytes",
            ext_over,
            "chunk extensions too long",
        ),
        (
            "extensions over 4096 bytes in total",
            ext_spread,
            "chunk extensions too long",
        ),
        (
            "trailers over 8192 bytes",
            trailers_over,
            "trailer section too large",
        ),
    ]
}

#[tokio::test]
async fn broken_chunked_framing_is_a_body_error_for_the_service_and_closes() {
    let b = Builder::new();
    for (name, body, reason) in broken_chunked_bodies() {
        let (tx, mut rx) = mpsc::unbounded_channel();
        let mut r = CHUNKED_HEAD.as_bytes().to_vec();
        r.extend_from_slice(&body);
        // A pipelined request after it must never be served.
        r.extend_from_slice(b"GET /second HTTP/1.1\r\nHost: a\r\n\r\n");
        let (bytes, _res) = h1_exchange(&b, inspect(tx), &r).await;
        let seen = timeout(WAIT, rx.recv())
            .await
            .expect("bound")
            .expect("the service was called");
        assert_eq!(seen.body.as_ref().err(), Some(&"parse"), "{name}: {seen:?}");
        let text = seen.error_text.clone().unwrap_or_default();
        assert!(text.contains(reason), "{name}: {text:?}");
        let rs = parse_responses(&bytes);
        assert_eq!(rs.len(), 1, "{name}: {:?}", String::from_utf8_lossy(&bytes));
        assert_eq!(rs[0].status, 200, "{name}");
        assert!(rs[0].body_str().contains("error=parse"), "{name}");
        assert!(rs[0].closes(), "{name}: the connection must be closed");
        assert!(
            rx.try_recv().is_err(),
            "{name}: the pipelined request was served"
        );
    }
}

#[tokio::test]
async fn broken_chunked_framing_under_a_streamed_echo_never_gets_a_second_response() {
    let b = Builder::new();
    for (name, body, _) in broken_chunked_bodies() {
        let mut r = CHUNKED_HEAD.as_bytes().to_vec();
        // A good chunk first, so the echo has started its response.
        r.extend_from_slice(b"4\r\ngood\r\n");
        r.extend_from_slice(&body);
        r.extend_from_slice(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n");
        let (bytes, res) = h1_exchange(&b, Demo::new(), &r).await;
        assert!(
            count_status_lines(&bytes) <= 1,
            "{name}: a second response followed: {:?}",
            String::from_utf8_lossy(&bytes)
        );
        let rs = parse_responses(&bytes);
        if let Some(first) = rs.first() {
            assert_eq!(first.status, 200, "{name}");
            assert!(
                !first.complete,
                "{name}: a response to a broken body must not look complete"
            );
        }
        assert!(
            res.is_err(),
            "{name}: the connection must end with an error"
        );
    }
}

#[tokio::test]
async fn chunked_extensions_and_trailers_at_their_limits_are_accepted() {
    let b = Builder::new();
    let mut ext = b"1;".to_vec();
    ext.extend(vec![b'a'; 4095]); // exactly 4096 extension bytes
    ext.extend_from_slice(b"\r\nx\r\n0\r\n\r\n");
    let mut trailers = b"3\r\nabc\r\n0\r\nx-t: ".to_vec();
    trailers.extend(vec![b'v'; 8192 - 7]); // exactly 8192 bytes
    trailers.extend_from_slice(b"\r\n\r\n");
    for (name, body, len) in [("extensions", ext, 1), ("trailers", trailers, 3)] {
        let (tx, mut rx) = mpsc::unbounded_channel();
        let mut r = CHUNKED_HEAD
            .replace("\r\n\r\n", "\r\nConnection: close\r\n\r\n")
            .into_bytes();
        r.extend_from_slice(&body);
        let (bytes, res) = h1_exchange(&b, inspect(tx), &r).await;
        let seen = rx.recv().await.expect("service called");
        assert_eq!(seen.body.as_ref().map(|b| b.len()), Ok(len), "{name}");
        let rs = parse_responses(&bytes);
        assert_eq!(rs[0].status, 200, "{name}");
        res.expect("clean close");
    }
}

#[tokio::test]
async fn accepted_trailers_reach_the_service_as_body_trailers() {
    let b = Builder::new();
    let (tx, mut rx) = mpsc::unbounded_channel();
    let mut r = CHUNKED_HEAD.as_bytes().to_vec();
    r.extend_from_slice(
        b"5\r\nhello\r\n6\r\n world\r\n0\r\nX-Checksum: abc123\r\nx-other: 1\r\nContent-Type: text/evil\r\n\r\n",
    );
    // Keep-alive still works after the trailer section: the framing was consumed
    // exactly.
    r.extend_from_slice(b"GET /next HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n");
    let (bytes, res) = h1_exchange(&b, inspect(tx), &r).await;
    let seen = rx.recv().await.expect("service called");
    assert_eq!(seen.body.as_deref().ok(), Some(&b"hello world"[..]));
    let t = seen.trailers.expect("trailers reached the service");
    assert_eq!(
        t.get("x-checksum").map(|v| v.as_bytes()),
        Some(&b"abc123"[..])
    );
    assert_eq!(t.get("x-other").map(|v| v.as_bytes()), Some(&b"1"[..]));
    assert!(
        t.get("content-type").is_none(),
        "a framing/format field must not be applied from a trailer"
    );
    let rs = parse_responses(&bytes);
    assert_eq!(rs.len(), 2, "{:?}", String::from_utf8_lossy(&bytes));
    assert!(rs[0].body_str().contains("trailer:x-checksum=abc123"));
    assert!(rs[1].body_str().contains("uri=/next"));
    let second = rx.recv().await.expect("second request served");
    assert_eq!(second.uri, "/next");
    res.expect("clean close");
}

#[tokio::test]
async fn malformed_head_lines_are_400_and_close() {
    let b = Builder::new();
    let cases: &[(&str, &[u8])] = &[
        (
            "obs-fold",
            b"GET / HTTP/1.1\r\nHost: a\r\nX: a\r\n b\r\n\r\n",
        ),
        (
            "obs-fold with tab",
            b"GET / HTTP/1.1\r\nHost: a\r\nX: a\r\n\tb\r\n\r\n",
        ),
        (
            "space before colon",
            b"GET / HTTP/1.1\r\nHost: a\r\nX : a\r\n\r\n",
        ),
        (
            "bare cr in value",
            b"GET / HTTP/1.1\r\nHost: a\r\nX: a\rb\r\n\r\n",
        ),
        (
            "nul in value",
            b"GET / HTTP/1.1\r\nHost: a\r\nX: a\0b\r\n\r\n",
        ),
        ("bare lf line endings", b"GET / HTTP/1.1\nHost: a\n\n"),
        ("one bare lf", b"GET / HTTP/1.1\r\nHost: a\nX: b\r\n\r\n"),
        (
            "bare lf ending the head",
            b"GET / HTTP/1.1\r\nHost: a\r\n\n",
        ),
        ("leading bare lf", b"\nGET / HTTP/1.1\r\nHost: a\r\n\r\n"),
    ];
    for (name, r) in cases {
        let mut with_next = r.to_vec();
        with_next.extend_from_slice(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n");
        let (bytes, res) = h1_exchange(&b, Demo::new(), &with_next).await;
        let rs = parse_responses(&bytes);
        assert_eq!(rs.len(), 1, "{name}: {:?}", String::from_utf8_lossy(&bytes));
        assert_eq!(rs[0].status, 400, "{name}");
        assert!(rs[0].closes(), "{name}");
        assert!(res.is_err_and(|e| e.is_parse()), "{name}");
    }
}

#[tokio::test]
async fn http11_without_exactly_one_host_is_400_and_closes() {
    let b = Builder::new();
    expect_refused(&b, b"GET / HTTP/1.1\r\n\r\n", 400).await;
    expect_refused(&b, b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400).await;
    expect_refused(&b, b"GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n", 400).await;
    // Controls: one Host in HTTP/1.1; none needed in HTTP/1.0.
    assert_eq!(
        accepted_status(
            &b,
            b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"
        )
        .await,
        200
    );
    assert_eq!(accepted_status(&b, b"GET / HTTP/1.0\r\n\r\n").await, 200);
}

#[tokio::test]
async fn asterisk_form_only_with_options_and_authority_form_only_with_connect() {
    let b = Builder::new();
    for r in [
        &b"GET * HTTP/1.1\r\nHost: a\r\n\r\n"[..],
        b"POST * HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n",
        b"GET example.com:80 HTTP/1.1\r\nHost: a\r\n\r\n",
        b"OPTIONS example.com:80 HTTP/1.1\r\nHost: a\r\n\r\n",
        b"CONNECT / HTTP/1.1\r\nHost: a\r\n\r\n",
        b"CONNECT * HTTP/1.1\r\nHost: a\r\n\r\n",
        b"CONNECT http://example.com/ HTTP/1.1\r\nHost: a\r\n\r\n",
    ] {
        expect_refused(&b, r, 400).await;
    }
    // Controls: each form with the one method it belongs to reaches the service.
    for (r, uri) in [
        (&b"OPTIONS * HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"[..], "*"),
        (
            b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\nConnection: close\r\n\r\n",
            "example.com:443",
        ),
    ] {
        let (tx, mut rx) = mpsc::unbounded_channel();
        let (bytes, _) = h1_exchange(&b, inspect(tx), r).await;
        assert_eq!(parse_responses(&bytes)[0].status, 200);
        assert_eq!(rx.recv().await.expect("served").uri, uri);
    }
}

#[tokio::test]
async fn request_line_over_max_request_line_is_414() {
    let mut b = Builder::new();
    b.max_request_line(256);
    // "GET /aaa... HTTP/1.1" of 257 bytes.
    let long = format!("GET /{} HTTP/1.1", "a".repeat(257 - 14));
    assert_eq!(long.len(), 257);
    expect_refused(&b, format!("{long}\r\nHost: a\r\n\r\n").as_bytes(), 414).await;
    // Decided before the line ends: an unterminated long line gets 414 at once.
    expect_refused(&b, format!("GET /{}", "a".repeat(400)).as_bytes(), 414).await;
    // Control: a shorter line is within the bound (the demo answers 404).
    let fits = format!("GET /{} HTTP/1.1", "a".repeat(200 - 14));
    let r = format!("{fits}\r\nHost: a\r\nConnection: close\r\n\r\n");
    assert_eq!(accepted_status(&b, r.as_bytes()).await, 404);

    // The default bound, 8 KiB.
    let d = Builder::new();
    let over = format!("GET /{} HTTP/1.1\r\nHost: a\r\n\r\n", "a".repeat(8 * 1024));
    expect_refused(&d, over.as_bytes(), 414).await;
    let under = format!(
        "GET /{} HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
        "a".repeat(8000)
    );
    assert_eq!(accepted_status(&d, under.as_bytes()).await, 404);
}

/// RFC 9112 §3: the request line is `method SP request-target SP HTTP-version`,
/// without its CRLF; a line of exactly `max_request_line` octets is within the
/// bound ("a longer line is answered 414").
#[tokio::test]
async fn request_line_of_exactly_max_request_line_octets_is_accepted() {
    let mut b = Builder::new();
    b.max_request_line(256);
    let exact = format!("GET /{} HTTP/1.1", "a".repeat(256 - 14));
    assert_eq!(exact.len(), 256);
    let r = format!("{exact}\r\nHost: a\r\nConnection: close\r\n\r\n");
    assert_eq!(accepted_status(&b, r.as_bytes()).await, 404);
}

#[tokio::test]
async fn head_over_max_head_size_is_431() {
    let mut b = Builder::new();
    b.max_head_size(4096);
    let big = format!(
        "GET / HTTP/1.1\r\nHost: a\r\nX: {}\r\n\r\n",
        "v".repeat(4100)
    );
    expect_refused(&b, big.as_bytes(), 431).await;
    // Decided before the head ends.
    let unterminated = format!("GET / HTTP/1.1\r\nHost: a\r\nX: {}", "v".repeat(5000));
    expect_refused(&b, unterminated.as_bytes(), 431).await;
    // Exactly at the bound is fine; one octet more is not.
    let head = |n: usize| {
        format!(
            "GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\nX: {}\r\n\r\n",
            "v".repeat(n)
        )
    };
    assert_eq!(head(4045).len(), 4096);
    assert_eq!(accepted_status(&b, head(4045).as_bytes()).await, 200);
    expect_refused(&b, head(4046).as_bytes(), 431).await;

    // The default bound, 64 KiB.
    let d = Builder::new();
    let over = format!(
        "GET / HTTP/1.1\r\nHost: a\r\nX: {}\r\n\r\n",
        "v".repeat(64 * 1024)
    );
    expect_refused(&d, over.as_bytes(), 431).await;
    let under = format!(
        "GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\nX: {}\r\n\r\n",
        "v".repeat(60 * 1024)
    );
    assert_eq!(accepted_status(&d, under.as_bytes()).await, 200);
}

fn with_fields(n: usize, close: bool) -> String {
    // Host (and Connection) count as fields.
    let mut r = String::from("GET / HTTP/1.1\r\nHost: a\r\n");
    let mut count = 1;
    if close {
        r.push_str("Connection: close\r\n");
        count += 1;
    }
    for i in count..n {
        r.push_str(&format!("X-F{i}: v\r\n"));
    }
    r.push_str("\r\n");
    r
}

#[tokio::test]
async fn more_fields_than_max_headers_is_431() {
    let mut b = Builder::new();
    b.max_headers(10);
    expect_refused(&b, with_fields(11, false).as_bytes(), 431).await;
    assert_eq!(
        accepted_status(&b, with_fields(10, true).as_bytes()).await,
        200
    );

    let d = Builder::new();
    expect_refused(&d, with_fields(101, false).as_bytes(), 431).await;
    assert_eq!(
        accepted_status(&d, with_fields(100, true).as_bytes()).await,
        200
    );
}

#[tokio::test]
async fn content_length_over_max_request_body_size_is_413() {
    let mut b = Builder::new();
    b.max_request_body_size(Some(100));
    // 413 before the service is called.
    let (tx, mut rx) = mpsc::unbounded_channel();
    let mut r = b"POST /up HTTP/1.1\r\nHost: a\r\nContent-Length: 101\r\n\r\n".to_vec();
    r.extend(vec![b'x'; 101]);
    let (bytes, res) = h1_exchange(&b, inspect(tx), &r).await;
    let rs = parse_responses(&bytes);
    assert_eq!(rs.len(), 1);
    assert_eq!(rs[0].status, 413);
    assert!(rs[0].closes());
    assert!(res.is_err_and(|e| e.is_parse()));
    assert!(rx.try_recv().is_err(), "the service must not be called");

    // Exactly the limit is fine.
    let (tx, mut rx) = mpsc::unbounded_channel();
    let mut r = b"POST /up HTTP/1.1\r\nHost: a\r\nContent-Length: 100\r\nConnection: close\r\n\r\n"
        .to_vec();
    r.extend(vec![b'x'; 100]);
    let (bytes, _) = h1_exchange(&b, inspect(tx), &r).await;
    assert_eq!(parse_responses(&bytes)[0].status, 200);
    assert_eq!(
        rx.recv().await.expect("served").body.map(|b| b.len()),
        Ok(100)
    );

    // A chunked body that grows past the limit is a body error and closes.
    let (tx, mut rx) = mpsc::unbounded_channel();
    let mut r = b"POST /up HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
    for _ in 0..3 {
        r.extend_from_slice(b"32\r\n");
        r.extend(vec![b'x'; 50]);
        r.extend_from_slice(b"\r\n");
    }
    r.extend_from_slice(b"0\r\n\r\nGET /second HTTP/1.1\r\nHost: a\r\n\r\n");
    let (bytes, _) = h1_exchange(&b, inspect(tx), &r).await;
    let seen = rx.recv().await.expect("served");
    assert_eq!(seen.body.err(), Some("parse"));
    let rs = parse_responses(&bytes);
    assert_eq!(rs.len(), 1);
    assert!(rs[0].closes());
    assert!(rx.try_recv().is_err());

    // Without the option, the same 101-byte body is accepted.
    let d = Builder::new();
    let mut r =
        b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 101\r\nConnection: close\r\n\r\n"
            .to_vec();
    r.extend(vec![b'x'; 101]);
    assert_eq!(accepted_status(&d, &r).await, 200);
}

#[tokio::test]
async fn http_1_2_and_http_2_0_request_lines_are_505() {
    let b = Builder::new();
    expect_refused(&b, b"GET / HTTP/1.2\r\nHost: a\r\n\r\n", 505).await;
    expect_refused(&b, b"GET / HTTP/2.0\r\nHost: a\r\n\r\n", 505).await;
    expect_refused(&b, b"GET / HTTP/3.0\r\nHost: a\r\n\r\n", 505).await;
    // With prior knowledge off, the HTTP/2 preface is an HTTP/1 request line with
    // version HTTP/2.0.
    let mut off = Builder::new();
    off.prior_knowledge(false);
    expect_refused(&off, PREFACE, 505).await;
    expect_refused(&off, b"PRI * HTTP/2.0\r\n\r\n", 505).await;
}

#[tokio::test]
async fn nothing_is_read_after_a_framing_error() {
    let b = Builder::new();
    let bad_then_good: &[(&str, &[u8])] = &[
        (
            "bad content-length",
            b"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: +5\r\n\r\n",
        ),
        (
            "te + cl smuggling",
            b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        ),
        ("no host", b"GET / HTTP/1.1\r\n\r\n"),
        ("bad version", b"GET / HTTP/1.2\r\nHost: a\r\n\r\n"),
    ];
    for (name, bad) in bad_then_good {
        let (tx, mut rx) = mpsc::unbounded_channel();
        let mut r = b"GET /first HTTP/1.1\r\nHost: a\r\n\r\n".to_vec();
        r.extend_from_slice(bad);
        r.extend_from_slice(b"GET /admin HTTP/1.1\r\nHost: a\r\n\r\n");
        let (bytes, res) = h1_exchange(&b, inspect(tx), &r).await;
        let rs = parse_responses(&bytes);
        assert_eq!(
            rs.iter().map(|r| r.status).collect::<Vec<_>>(),
            vec![200, if *name == "bad version" { 505 } else { 400 }],
            "{name}: {:?}",
            String::from_utf8_lossy(&bytes)
        );
        assert_eq!(count_status_lines(&bytes), 2, "{name}");
        assert_eq!(rx.recv().await.expect("first served").uri, "/first");
        assert!(
            rx.try_recv().is_err(),
            "{name}: /admin must never be served"
        );
        assert!(res.is_err_and(|e| e.is_parse()), "{name}");
    }
}

/// 20 fields of 4000 bytes: an 80 KB header section, over the default 64 KiB on
/// every path (HTTP/1 head size, HTTP/2 SETTINGS_MAX_HEADER_LIST_SIZE).
fn big_fields(n: usize) -> Vec<(String, String)> {
    (0..n)
        .map(|i| (format!("x-big-{i}"), "a".repeat(4000)))
        .collect()
}

async fn h1_status_with(addr: std::net::SocketAddr, fields: &[(String, String)]) -> u16 {
    let mut r = String::from("GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n");
    for (k, v) in fields {
        r.push_str(&format!("{k}: {v}\r\n"));
    }
    r.push_str("\r\n");
    let mut s = TcpStream::connect(addr).await.expect("connect");
    s.write_all(r.as_bytes()).await.expect("write");
    let bytes = read_to_eof(&mut s).await;
    let rs = parse_responses(&bytes);
    assert_eq!(rs.len(), 1);
    rs[0].status
}

async fn h2_outcome_with(
    addr: std::net::SocketAddr,
    fields: &[(String, String)],
) -> Result<u16, h2::Error> {
    let s = TcpStream::connect(addr).await.expect("connect");
    let mut send = h2_client(s).await?;
    // One round trip first, so the request below is not in the client's first
    // flight (see the test's comment).
    let hello = h2_send(&mut send, get("/"), None).await?;
    assert_eq!(hello.status, StatusCode::OK);
    let mut req = Request::builder().uri("http://example/");
    for (k, v) in fields {
        req = req.header(k.as_str(), v.as_str());
    }
    let r = h2_send(&mut send, req.body(()).expect("request"), None).await?;
    Ok(r.status.as_u16())
}

async fn h2_first_flight_with(
    addr: std::net::SocketAddr,
    fields: &[(String, String)],
) -> Result<u16, h2::Error> {
    let s = TcpStream::connect(addr).await.expect("connect");
    let mut send = h2_client(s).await?;
    let mut req = Request::builder().uri("http://example/");
    for (k, v) in fields {
        req = req.header(k.as_str(), v.as_str());
    }
    let r = h2_send(&mut send, req.body(()).expect("request"), None).await?;
    Ok(r.status.as_u16())
}

/// The same header set gets the same answer on every path. `h2` 0.4.20 applies
/// SETTINGS_MAX_HEADER_LIST_SIZE to its decoder at the handshake (not only once
/// the client acknowledged it) and answers a larger (< 4x) header list with a
/// `431` HEADERS frame (END_STREAM) and never hands the request to the service.
#[tokio::test]
async fn oversized_header_set_is_431_over_http1_and_refused_over_h2_prior_knowledge() {
    let (tx, mut rx) = mpsc::unbounded_channel();
    let server = Server::start(&Builder::new(), inspect(tx)).await;
    let addr = server.addr;
    let over = big_fields(20);
    let under = big_fields(10);

    let run = async {
        // HTTP/1.1.
        assert_eq!(h1_status_with(addr, &over).await, 431);
        assert_eq!(h1_status_with(addr, &under).await, 200);
        // HTTP/2 prior knowledge, after the SETTINGS exchange and in the first
        // flight.
        assert_eq!(
            h2_outcome_with(addr, &over).await.expect("h2 response"),
            431
        );
        assert_eq!(
            h2_first_flight_with(addr, &over)
                .await
                .expect("h2 response"),
            431
        );
        assert_eq!(
            h2_outcome_with(addr, &under).await.expect("h2 response"),
            200
        );
        // The h2c upgrade request carrying the same fields: 431 over HTTP/1.1,
        // never a 101.
        let mut r = UPGRADE_GET.trim_end_matches("\r\n").to_string();
        r.push_str("\r\n");
        for (k, v) in &over {
            r.push_str(&format!("{k}: {v}\r\n"));
        }
        r.push_str("\r\n");
        let mut s = TcpStream::connect(addr).await.expect("connect");
        s.write_all(r.as_bytes()).await.expect("write");
        let bytes = read_to_eof(&mut s).await;
        let rs = parse_responses(&bytes);
        assert_eq!(rs.len(), 1);
        assert_eq!(rs[0].status, 431);
    };
    timeout(WAIT, run).await.expect("bounded");

    // The service only ever saw the requests under the limit (and h2's GET /).
    let mut sizes = Vec::new();
    while let Ok(seen) = rx.try_recv() {
        sizes.push(seen.headers.len());
    }
    assert!(
        sizes.iter().all(|n| *n < 20),
        "an oversized header set reached the service: {sizes:?}"
    );
    assert_eq!(sizes.iter().filter(|n| **n >= 10).count(), 2, "{sizes:?}");
    server.stop().await.expect("serve");
}

#[tokio::test]
async fn broken_upgrade_requests_never_switch_and_get_one_http1_response() {
    // Head-level framing errors on an upgrade request: refused before any 101.
    let b = Builder::new();
    let r = UPGRADE_GET.replace(
        "\r\n\r\n",
        "\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
    );
    expect_refused(&b, r.as_bytes(), 400).await;

    // A broken chunked body, with the body buffered before the switch: 400.
    let broken = UPGRADE_GET.replace(
        "\r\n\r\n",
        "\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\nzz\r\nabc\r\n0\r\n\r\n",
    );
    let mut buffered = Builder::new();
    buffered.stream_upgrade_body(false);
    expect_refused(&buffered, broken.as_bytes(), 400).await;

    // Streamed to the service (the default): a service that reads the body sees
    // the framing error; its answer goes out over HTTP/1.1 and the connection
    // closes. Never a 101, never a second response.
    let (tx, mut rx) = mpsc::unbounded_channel();
    let mut r = broken.clone().into_bytes();
    r.extend_from_slice(b"GET /second HTTP/1.1\r\nHost: a\r\n\r\n");
    let (bytes, _) = h1_exchange(&b, inspect(tx), &r).await;
    let seen = rx.recv().await.expect("service called");
    assert_eq!(seen.body.as_ref().err(), Some(&"parse"), "{seen:?}");
    let rs = parse_responses(&bytes);
    assert_eq!(rs.len(), 1, "{:?}", String::from_utf8_lossy(&bytes));
    assert_ne!(rs[0].status, 101);
    assert!(rs[0].closes());
    assert_eq!(count_status_lines(&bytes), 1);
    assert!(rx.try_recv().is_err(), "the pipelined request was served");

    // A service that answers without reading: one HTTP/1.1 response, then the
    // unread broken body closes the connection.
    let (bytes, _) = h1_exchange(&b, Demo::new(), &r).await;
    let rs = parse_responses(&bytes);
    assert_eq!(rs.len(), 1, "{:?}", String::from_utf8_lossy(&bytes));
    assert_eq!(rs[0].status, 200);
    assert_eq!(count_status_lines(&bytes), 1);
}

/// A streamed upgrade holds the response that starts before the body ends; the
/// hold is bounded by `max_upgrade_response_hold`, past which the exchange stays on
/// HTTP/1.1 and the response is still delivered whole.
#[tokio::test]
async fn upgrade_response_outgrowing_the_hold_bound_is_answered_whole_over_http1() {
    let mut b = Builder::new();
    b.max_upgrade_response_hold(4096);
    let body: Vec<u8> = (0..100_000u32).map(|i| b'a' + (i % 26) as u8).collect();
    let mut r = UPGRADE_GET
        .replace("GET / ", "POST /echo ")
        .replace(
            "\r\n\r\n",
            &format!(
                "\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            ),
        )
        // A second Connection field: the upgrade tokens in the first still count.
        .into_bytes();
    r.extend_from_slice(&body);
    let (bytes, _) = h1_exchange(&b, Demo::new(), &r).await;
    assert!(
        !bytes.starts_with(b"HTTP/1.1 101"),
        "switched past the hold bound"
    );
    let rs = parse_responses(&bytes);
    assert_eq!(rs.len(), 1);
    assert_eq!(rs[0].status, 200);
    assert!(rs[0].complete);
    assert!(
        rs[0].body == body,
        "echo corrupted: {} bytes",
        rs[0].body.len()
    );

    // Control: a body whose echo fits the hold is upgraded and answered on stream 1.
    let (c, conn) = duplex_conn(&b, Demo::new());
    let small = UPGRADE_GET
        .replace("GET / ", "POST /echo ")
        .replace("\r\n\r\n", "\r\nContent-Length: 5\r\n\r\nhello");
    let mut c = raw_upgrade(c, &small).await;
    let (r1, _) = c.read_response(1).await;
    assert_eq!(r1.body, b"hello");
    drop(c);
    let _ = conn_result(conn).await;
}
