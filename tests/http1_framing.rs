//! HTTP/1.1 message framing (RFC 9112): every ambiguous or malformed message gets
//! its exact status (the one refusal table: each case through
//! [`assert_refused`]) and the connection is closed afterwards; broken chunked
//! bodies are body errors for the service; nothing after a framing error is read
//! as a request; and the controls next to each rule are accepted.
//!
//! Refusals run over a real loopback socket with `Builder::serve_connection`, so
//! both the bytes on the wire and the `Connection` future's result are checked;
//! the rest over `tokio::io::duplex`.
#![cfg(feature = "demo")] // the demo service is behind the `demo` feature (on by default)

mod common;

use common::h1::{
    accepted_status, assert_refused, count_status_lines, h1_exchange, parse_responses,
};
use common::h2c::UPGRADE_GET;
use common::service::inspect;
use common::WAIT;
use h2c_mux::demo::Demo;
use h2c_mux::Builder;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio::time::timeout;

/// `POST /echo` with `head_fields` (each ending in CRLF), then `body`.
fn req(head_fields: &str, body: &[u8]) -> Vec<u8> {
    let mut r = format!("POST /echo HTTP/1.1\r\nHost: a\r\n{head_fields}\r\n").into_bytes();
    r.extend_from_slice(body);
    r
}

/// [`assert_refused`] for `POST /echo` with each of `head_fields`, then `body`.
async fn assert_each_refused<F: AsRef<str>>(
    builder: &Builder,
    head_fields: impl IntoIterator<Item = F>,
    body: &[u8],
    status: u16,
) {
    for fields in head_fields {
        assert_refused(builder, &req(fields.as_ref(), body), status).await;
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
    assert_each_refused(&b, both, CHUNKED_BODY, 400).await;
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
    assert_each_refused(&b, differing, b"hello!", 400).await;
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
    assert_each_refused(&b, fields, b"hello", 400).await;
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
    assert_each_refused(&b, codings, CHUNKED_BODY, 400).await;
}

#[tokio::test]
async fn unknown_coding_before_chunked_is_501_and_closes() {
    let b = Builder::new();
    let codings = [
        "Transfer-Encoding: gzip, chunked\r\n",
        "Transfer-Encoding: deflate, chunked\r\n",
        "Transfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n",
    ];
    assert_each_refused(&b, codings, CHUNKED_BODY, 501).await;
    assert_each_refused(
        &b,
        ["Transfer-Encoding: gzip, chunked\r\n"],
        b"0\r\n\r\n",
        501,
    )
    .await;
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

/// RFC 9112 §7.1: the cases of a broken chunk size or chunk that the issue named,
/// besides the table's: a non-hex size, a `0x` prefix, 20 hex digits, and chunk
/// data longer than its size.
fn broken_chunk_lines() -> Vec<(&'static str, &'static [u8])> {
    vec![
        ("size Z", b"Z\r\nabc\r\n0\r\n\r\n"),
        ("size 0x5", b"0x5\r\nhello\r\n0\r\n\r\n"),
        (
            "a size of 20 hex digits",
            b"10000000000000000000\r\nhello\r\n0\r\n\r\n",
        ),
        ("data longer than its size", b"5\r\nhelloEXTRA\r\n0\r\n\r\n"),
    ]
}

#[tokio::test]
async fn broken_chunked_framing_under_a_streamed_echo_is_a_400_while_no_response_byte_is_out() {
    let b = Builder::new();
    let table = broken_chunked_bodies()
        .into_iter()
        .map(|(name, body, _)| (name, body))
        .chain(
            broken_chunk_lines()
                .into_iter()
                .map(|(n, b)| (n, b.to_vec())),
        );
    for (name, body) in table {
        // The whole request arrives at once: the broken framing is found before the
        // echo's response has sent a byte, even after a good chunk it already took.
        for good_first in [false, true] {
            let mut r = CHUNKED_HEAD.as_bytes().to_vec();
            if good_first {
                r.extend_from_slice(b"4\r\ngood\r\n");
            }
            r.extend_from_slice(&body);
            r.extend_from_slice(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n");
            let (bytes, res) = h1_exchange(&b, Demo::new(), &r).await;
            let rs = parse_responses(&bytes);
            let what = format!("{name} (good chunk first: {good_first})");
            assert_eq!(
                rs.len(),
                1,
                "{what}: want exactly one response, got {:?}",
                String::from_utf8_lossy(&bytes)
            );
            assert_eq!(rs[0].status, 400, "{what}");
            assert!(rs[0].complete, "{what}: the 400 must be whole");
            assert!(rs[0].closes(), "{what}: the 400 must close");
            assert!(
                res.is_err(),
                "{what}: the connection must end with an error"
            );
        }
    }
}

#[tokio::test]
async fn broken_chunked_framing_after_the_echo_has_answered_cuts_its_response_and_closes() {
    for (name, body) in broken_chunk_lines() {
        let (mut client, conn) = common::server::duplex_conn(&Builder::new(), Demo::new());
        // A good chunk, and its echo read back: the response is committed.
        client
            .write_all(format!("{CHUNKED_HEAD}4\r\ngood\r\n").as_bytes())
            .await
            .expect("write");
        let mut got = Vec::new();
        while !got.ends_with(b"4\r\ngood\r\n") {
            let mut buf = [0u8; 1024];
            let n = timeout(WAIT, client.read(&mut buf))
                .await
                .expect("bound")
                .expect("read");
            assert!(
                n > 0,
                "{name}: closed early: {:?}",
                String::from_utf8_lossy(&got)
            );
            got.extend_from_slice(&buf[..n]);
        }
        client.write_all(body).await.expect("write");
        client
            .write_all(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
            .await
            .expect("write");
        let rest = common::read_to_eof(&mut client).await;
        got.extend_from_slice(&rest);
        assert_eq!(
            count_status_lines(&got),
            1,
            "{name}: a second response followed: {:?}",
            String::from_utf8_lossy(&got)
        );
        let rs = parse_responses(&got);
        assert_eq!(rs[0].status, 200, "{name}");
        assert!(
            !rs[0].complete,
            "{name}: a response to a broken body must not look complete"
        );
        drop(client);
        let res = common::server::conn_result(conn).await;
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
        ("not a request line", b"\x01\x02\x03 nonsense\r\n\r\n"),
    ];
    // Each with a request after it, which must never be answered.
    for (name, r) in cases {
        // Printed before the case, so a failure's captured output names it.
        eprintln!("case: {name}");
        let mut with_next = r.to_vec();
        with_next.extend_from_slice(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n");
        assert_refused(&b, &with_next, 400).await;
    }
}

#[tokio::test]
async fn http11_without_exactly_one_host_is_400_and_closes() {
    let b = Builder::new();
    assert_refused(&b, b"GET / HTTP/1.1\r\n\r\n", 400).await;
    assert_refused(&b, b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400).await;
    assert_refused(&b, b"GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n", 400).await;
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
        assert_refused(&b, r, 400).await;
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
async fn http_1_2_and_http_2_0_request_lines_are_505() {
    let b = Builder::new();
    assert_refused(&b, b"GET / HTTP/1.2\r\nHost: a\r\n\r\n", 505).await;
    assert_refused(&b, b"GET / HTTP/2.0\r\nHost: a\r\n\r\n", 505).await;
    assert_refused(&b, b"GET / HTTP/3.0\r\nHost: a\r\n\r\n", 505).await;
    // With prior knowledge off: prior_knowledge.rs.
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

#[tokio::test]
async fn broken_upgrade_requests_never_switch_and_get_one_http1_response() {
    // Head-level framing errors on an upgrade request: refused before any 101.
    let b = Builder::new();
    let r = UPGRADE_GET.replace(
        "\r\n\r\n",
        "\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
    );
    assert_refused(&b, r.as_bytes(), 400).await;

    // A broken chunked body, with the body buffered before the switch: 400.
    let broken = UPGRADE_GET.replace(
        "\r\n\r\n",
        "\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\nzz\r\nabc\r\n0\r\n\r\n",
    );
    let mut buffered = Builder::new();
    buffered.stream_upgrade_body(false);
    assert_refused(&buffered, broken.as_bytes(), 400).await;

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
