//! The cleartext `Upgrade: h2c` switch (RFC 7540 §3.2), driven byte by byte over
//! loopback: what the server sends around the `101`, stream 1, the streams after
//! it, flow control, and every refusal answered over HTTP/1.1.
#![cfg(feature = "demo")] // the demo service is behind the `demo` feature (on by default)

mod common;

use common::h1::{chunked, send_with_body, H1Conn};
use common::h2c::{
    after_101, assert_switching_protocols, upgrade, upgrade_fields, upgrade_request,
    CLIENT_SETTINGS,
};
use common::h2frame::{request_fields, SETTINGS_ENABLE_PUSH, SETTINGS_INITIAL_WINDOW_SIZE};
use common::h2raw::{Event, H2Response};
use common::server::Server;
use common::service::{pattern, recorder, IgnoreBody};
use common::{read_to_eof, sha256};
use h2c_mux::demo::Demo;
use h2c_mux::{Builder, Protocol};

fn root_upgrade() -> Vec<u8> {
    upgrade_request("GET", "/", "", b"")
}

#[tokio::test]
async fn upgrade_get_is_answered_on_stream_1() {
    let server = Server::demo().await;
    let (res101, mut h2) = upgrade(server.addr, &root_upgrade()).await;
    assert!(res101.body.is_empty());
    h2.send_preface(CLIENT_SETTINGS).await;

    // RFC 7540 §3.5: the server's first frame after the 101 is its SETTINGS.
    match h2.next_event().await.expect("a frame after the 101") {
        Event::Settings { ack: false, .. } => {}
        other => panic!("first frame after the 101 is not SETTINGS: {other:?}"),
    }
    h2.send_settings_ack().await;

    let res = h2.response(1).await;
    assert_eq!(res.status, Some(200));
    assert_eq!(res.header("content-type"), Some("text/plain"));
    assert_eq!(res.body_str(), "hello world\n");
}

#[tokio::test]
async fn synthesized_settings_are_not_acknowledged() {
    let server = Server::demo().await;
    let (_, mut h2) = upgrade(server.addr, &root_upgrade()).await;

    // Send nothing yet: the server has received no SETTINGS frame from us, so it
    // must not send any SETTINGS ACK (the 101 acknowledges HTTP2-Settings, RFC 7540
    // §3.2.1). The small response to stream 1 is sent without waiting for us.
    let mut before = Vec::new();
    loop {
        let event = h2.next_event().await.expect("frames before the preface");
        let done = matches!(
            event,
            Event::Headers {
                stream: 1,
                end_stream: true,
                ..
            } | Event::Data {
                stream: 1,
                end_stream: true,
                ..
            }
        );
        before.push(event);
        if done {
            break;
        }
    }
    assert!(
        matches!(before[0], Event::Settings { ack: false, .. }),
        "first frame: {:?}",
        before[0]
    );
    let early_acks = before
        .iter()
        .filter(|e| matches!(e, Event::Settings { ack: true, .. }))
        .count();
    assert_eq!(
        early_acks, 0,
        "SETTINGS ACK before our SETTINGS: {before:?}"
    );
    let body: Vec<u8> = before
        .iter()
        .filter_map(|e| match e {
            Event::Data {
                stream: 1, data, ..
            } => Some(data.clone()),
            _ => None,
        })
        .flatten()
        .collect();
    assert_eq!(body, b"hello world\n");

    // Now our SETTINGS, then a PING as a barrier: exactly one ACK comes before the
    // PING's answer, the one for the SETTINGS we really sent.
    h2.send_preface(CLIENT_SETTINGS).await;
    h2.send_ping(*b"barrier1").await;
    let mut acks = 0;
    loop {
        match h2.next_event().await.expect("frames after the preface") {
            Event::Settings { ack: true, .. } => acks += 1,
            Event::Ping { ack: true, payload } => {
                assert_eq!(&payload, b"barrier1");
                break;
            }
            Event::GoAway { code, debug, .. } => {
                panic!("GOAWAY {code}: {}", String::from_utf8_lossy(&debug))
            }
            _ => {}
        }
    }
    assert_eq!(acks, 1, "SETTINGS ACKs after the client's SETTINGS");
}

#[tokio::test]
async fn upgrade_head_has_no_data() {
    let server = Server::demo().await;
    let (_, mut h2) = upgrade(server.addr, &upgrade_request("HEAD", "/", "", b"")).await;
    h2.send_preface(CLIENT_SETTINGS).await;
    let res = h2.response(1).await;
    assert_eq!(res.status, Some(200));
    assert!(
        res.end_on_headers,
        "HEAD response HEADERS without END_STREAM"
    );
    assert_eq!(res.data_frames, 0);
    assert!(res.body.is_empty());

    // Nothing else arrives on stream 1 before the answer to a later PING.
    h2.send_ping(*b"barrier2").await;
    loop {
        match h2.next_event().await.expect("PING ACK") {
            Event::Ping { ack: true, .. } => break,
            Event::Data { stream: 1, .. } | Event::Headers { stream: 1, .. } => {
                panic!("more frames on stream 1 after END_STREAM")
            }
            Event::Settings { ack: false, .. } => h2.send_settings_ack().await,
            _ => {}
        }
    }
}

#[tokio::test]
async fn upgrade_post_with_content_length_is_echoed_on_stream_1() {
    let (svc, mut seen) = recorder(Demo::new());
    let server = Server::start(&Builder::new(), svc).await;
    let body: Vec<u8> = (0..3000u32).map(|i| (i % 251) as u8).collect();
    let (_, mut h2) = upgrade(server.addr, &upgrade_request("POST", "/echo", "", &body)).await;
    h2.send_preface(CLIENT_SETTINGS).await;
    let res = h2.response(1).await;
    assert_eq!(res.status, Some(200));
    assert_eq!(res.body, body);

    let req = seen.next().await;
    assert_eq!(req.protocol, Some(Protocol::H2cUpgrade));
    assert_eq!(req.method, http::Method::POST);
    assert_eq!(req.path, "/echo");
    assert_eq!(
        req.headers.get("content-length").map(|v| v.as_bytes()),
        Some(b"3000".as_slice()),
        "the service sees the request's content-length"
    );
    assert!(req.headers.get("upgrade").is_none());
    assert!(req.headers.get("http2-settings").is_none());
}

#[tokio::test]
async fn upgrade_post_with_chunked_body_is_echoed_on_stream_1() {
    let server = Server::demo().await;
    let mut request = upgrade_request("POST", "/echo", "Transfer-Encoding: chunked\r\n", b"");
    request.extend_from_slice(b"5\r\nhello\r\n7;ext=1\r\n, world\r\n1\r\n!\r\n0\r\n\r\n");
    let (_, mut h2) = upgrade(server.addr, &request).await;
    h2.send_preface(CLIENT_SETTINGS).await;
    let res = h2.response(1).await;
    assert_eq!(res.status, Some(200));
    assert_eq!(res.body_str(), "hello, world!");
}

#[tokio::test]
async fn upgrade_chunked_body_trailers_reach_stream_1() {
    let server = Server::demo().await;
    let mut request = upgrade_request(
        "POST",
        "/echo",
        "Transfer-Encoding: chunked\r\nTE: trailers\r\n",
        b"",
    );
    request.extend_from_slice(b"3\r\nabc\r\n0\r\nX-Checksum: 42\r\n\r\n");
    let (_, mut h2) = upgrade(server.addr, &request).await;
    h2.send_preface(CLIENT_SETTINGS).await;
    let res = h2.response(1).await;
    assert_eq!(res.status, Some(200));
    assert_eq!(res.body_str(), "abc");
    // The echo service returns the request's trailers as its own.
    assert_eq!(
        res.trailers,
        vec![("x-checksum".to_string(), "42".to_string())]
    );
}

#[tokio::test]
async fn upgrade_request_pipelined_after_a_plain_request() {
    let server = Server::demo().await;
    let mut conn = H1Conn::connect(server.addr).await;
    let mut both = b"GET /bytes/4 HTTP/1.1\r\nHost: a\r\n\r\n".to_vec();
    both.extend_from_slice(&root_upgrade());
    conn.send(&both).await;
    let first = conn.read_response().await;
    assert_eq!(first.status, 200);
    assert_eq!(first.body, pattern(4));
    let switching = conn.read_head().await;
    assert_switching_protocols(&switching);
    let mut h2 = after_101(conn);
    h2.send_preface(CLIENT_SETTINGS).await;
    assert_eq!(h2.response(1).await.body_str(), "hello world\n");
}

#[tokio::test]
async fn wrong_preface_after_101_closes_the_connection() {
    use tokio::io::AsyncWriteExt;
    let server = Server::demo().await;
    let (_, h2) = upgrade(server.addr, &root_upgrade()).await;
    let mut tcp = h2.io;
    tcp.write_all(b"PRI * HTTP/1.1\r\n\r\nXX\r\n\r\n")
        .await
        .expect("write");
    read_to_eof(&mut tcp).await;
}

#[tokio::test]
async fn upgrade_with_expect_100_continue_sends_100_then_101_after_the_body() {
    for streamed in [true, false] {
        let mut builder = Builder::new();
        builder.stream_upgrade_body(streamed);
        let server = Server::start(&builder, Demo::new()).await;
        let mut conn = H1Conn::connect(server.addr).await;
        conn.send(upgrade_request(
            "POST",
            "/echo",
            "Expect: 100-continue\r\nContent-Length: 11\r\n",
            b"",
        ))
        .await;
        let interim = conn.read_head().await;
        assert_eq!(
            interim.status, 100,
            "expected 100 Continue first (streamed: {streamed}): {interim:?}"
        );

        conn.send(b"hello world").await;
        let switching = conn.read_head().await;
        assert_switching_protocols(&switching);

        let mut h2 = after_101(conn);
        h2.send_preface(CLIENT_SETTINGS).await;
        let res = h2.response(1).await;
        assert_eq!(res.status, Some(200));
        assert_eq!(res.body_str(), "hello world", "streamed: {streamed}");
    }
}

#[tokio::test]
async fn buffered_upgrade_post_is_echoed_on_stream_1() {
    let mut builder = Builder::new();
    builder.stream_upgrade_body(false);
    let (svc, mut seen) = recorder(Demo::new());
    let server = Server::start(&builder, svc).await;

    let body: Vec<u8> = (0..5000u32).map(|i| (i % 241) as u8).collect();
    let (_, mut h2) = upgrade(server.addr, &upgrade_request("POST", "/echo", "", &body)).await;
    h2.send_preface(CLIENT_SETTINGS).await;
    assert_eq!(h2.response(1).await.body, body);
    let req = seen.next().await;
    assert_eq!(req.protocol, Some(Protocol::H2cUpgrade));
    assert_eq!(
        req.headers.get("content-length").map(|v| v.as_bytes()),
        Some(b"5000".as_slice())
    );

    let mut chunked = upgrade_request("POST", "/echo", "Transfer-Encoding: chunked\r\n", b"");
    chunked.extend_from_slice(b"6\r\nchunks\r\n5\r\n, too\r\n0\r\n\r\n");
    let (_, mut h2) = upgrade(server.addr, &chunked).await;
    h2.send_preface(CLIENT_SETTINGS).await;
    assert_eq!(h2.response(1).await.body_str(), "chunks, too");
}

/// Sends `head` then `body` (written on their own task), expects the `101` once
/// the whole body was read, and returns stream 1's `200` response.
async fn stream_1_after_streamed_body(server: &Server, head: &[u8], body: Vec<u8>) -> H2Response {
    let sending = send_with_body(server.addr, head, body).await;
    assert_switching_protocols(&sending.head);
    // Every body byte was read as HTTP/1.1 before the switch: whatever followed
    // would have been taken for the HTTP/2 preface.
    let mut h2 = after_101(sending.into_conn().await);
    h2.send_preface(CLIENT_SETTINGS).await;
    let res = h2.response(1).await;
    assert_eq!(res.status, Some(200));
    res
}

/// `<hex sha-256> <length>\n`, what the demo's `/sha256` answers for `body`.
fn digest_line(body: &[u8]) -> String {
    format!("{} {}\n", sha256::sha256_hex(body), body.len())
}

#[tokio::test]
async fn streamed_upgrade_of_a_large_body_switches_after_the_body() {
    let server = Server::demo().await;
    let body = pattern(1 << 20);
    let head = upgrade_request(
        "POST",
        "/sha256",
        &format!("Content-Length: {}\r\n", body.len()),
        b"",
    );
    let res = stream_1_after_streamed_body(&server, &head, body.clone()).await;
    assert_eq!(res.body_str(), digest_line(&body));
}

#[tokio::test]
async fn streamed_upgrade_of_a_large_chunked_body_switches_after_the_body() {
    let server = Server::demo().await;
    let body: Vec<u8> = (0..(3 << 19)).map(|i: u32| (i % 253) as u8).collect();
    let head = upgrade_request("POST", "/sha256", "Transfer-Encoding: chunked\r\n", b"");
    let res = stream_1_after_streamed_body(&server, &head, chunked(&body, 40_000)).await;
    assert_eq!(res.body_str(), digest_line(&body));
}

#[tokio::test]
async fn streamed_upgrade_echo_within_the_hold_is_answered_on_stream_1() {
    let server = Server::demo().await;
    let body = pattern(100_000);
    let head = upgrade_request(
        "POST",
        "/echo",
        &format!("Content-Length: {}\r\n", body.len()),
        b"",
    );
    let res = stream_1_after_streamed_body(&server, &head, body.clone()).await;
    assert!(res.body == body, "echo differs ({} bytes)", res.body.len());
}

#[tokio::test]
async fn streamed_upgrade_echo_over_the_hold_is_answered_over_http1() {
    let mut builder = Builder::new();
    builder.max_upgrade_response_hold(1024);
    let server = Server::start(&builder, Demo::new()).await;
    let body = pattern(64 * 1024);
    let head = upgrade_request(
        "POST",
        "/echo",
        &format!("Content-Length: {}\r\n", body.len()),
        b"",
    );
    let mut sending = send_with_body(server.addr, &head, body.clone()).await;
    // The echo outgrew what may be held before the 101: it goes out over HTTP/1.1,
    // complete, and the connection stays HTTP/1.1.
    assert_eq!(sending.head.status, 200, "{:?}", sending.head);
    assert!(sending.head.header("upgrade").is_none());
    let first = sending.head.clone();
    let res = sending.reader.read_body(first, false).await;
    assert!(res.body == body, "echo differs ({} bytes)", res.body.len());
    let mut conn = sending.into_conn().await;
    conn.send("GET / HTTP/1.1\r\nHost: a\r\n\r\n").await;
    let next = conn.read_response().await;
    assert_eq!(next.status, 200);
    assert_eq!(next.body_str(), "hello world\n");
}

#[tokio::test]
async fn streamed_upgrade_whose_body_is_not_read_is_answered_over_http1() {
    let server = Server::start(&Builder::new(), IgnoreBody).await;
    let body = pattern(10_000);
    let head = upgrade_request(
        "POST",
        "/upload",
        &format!("Content-Length: {}\r\n", body.len()),
        b"",
    );
    let mut sending = send_with_body(server.addr, &head, body).await;
    // Stream 1's request can no longer be whole: the answer stays on HTTP/1.1.
    assert_eq!(sending.head.status, 200, "{:?}", sending.head);
    let first = sending.head.clone();
    let res = sending.reader.read_body(first, false).await;
    assert_eq!(res.body_str(), "ignored\n");
    // The unread body was skipped, and the connection serves the next request.
    let mut conn = sending.into_conn().await;
    conn.send("GET /next HTTP/1.1\r\nHost: a\r\n\r\n").await;
    let next = conn.read_response().await;
    assert_eq!(next.status, 200);
    assert_eq!(next.body_str(), "ignored\n");
}

#[tokio::test]
async fn request_on_stream_3_after_upgrade_is_answered() {
    let (svc, mut seen) = recorder(Demo::new());
    let server = Server::start(&Builder::new(), svc).await;
    let (_, mut h2) = upgrade(server.addr, &root_upgrade()).await;
    h2.send_preface(CLIENT_SETTINGS).await;
    assert_eq!(h2.response(1).await.body_str(), "hello world\n");

    h2.send_headers(3, &request_fields("POST", "/echo"), false)
        .await;
    h2.send_data(3, b"on stream three", true).await;
    let res = h2.response(3).await;
    assert_eq!(res.status, Some(200));
    assert_eq!(res.body_str(), "on stream three");

    h2.send_headers(5, &request_fields("GET", "/bytes/1000"), true)
        .await;
    let res = h2.response(5).await;
    assert_eq!(res.status, Some(200));
    assert_eq!(res.body, pattern(1000));

    for path in ["/", "/echo", "/bytes/1000"] {
        let req = seen.next().await;
        assert_eq!(req.path, path);
        assert_eq!(req.protocol, Some(Protocol::H2cUpgrade));
        assert_eq!(req.declined, None);
    }
}

#[tokio::test]
async fn upgrade_honours_the_initial_window_of_http2_settings() {
    let server = Server::demo().await;
    let settings = [
        (SETTINGS_INITIAL_WINDOW_SIZE, 16_384),
        (SETTINGS_ENABLE_PUSH, 0),
    ];
    let request = format!(
        "GET /bytes/40000 HTTP/1.1\r\nHost: 127.0.0.1\r\n{}\r\n",
        upgrade_fields(&settings)
    );
    let (_, mut h2) = upgrade(server.addr, request.as_bytes()).await;
    // An empty SETTINGS changes nothing (RFC 9113 §6.5): the 16 KiB window comes
    // from HTTP2-Settings alone.
    h2.send_preface(&[]).await;

    let mut granted: u64 = 16_384;
    let mut received: u64 = 0;
    let mut updates = 0;
    let mut status = None;
    let mut body = Vec::new();
    let mut barrier: Option<[u8; 8]> = None;
    loop {
        match h2.next_event().await.expect("stream 1 to finish") {
            Event::Settings { ack: false, .. } => h2.send_settings_ack().await,
            Event::Headers {
                stream: 1, fields, ..
            } => {
                status = fields
                    .iter()
                    .find(|(n, _)| n == ":status")
                    .map(|(_, v)| v.clone());
            }
            Event::Data {
                stream: 1,
                data,
                flow_len,
                end_stream,
            } => {
                received += u64::from(flow_len);
                assert!(
                    received <= granted,
                    "{received} bytes of DATA on stream 1 with a window of {granted}"
                );
                body.extend_from_slice(&data);
                if end_stream {
                    break;
                }
                if received == granted {
                    // The window is used up. A PING answered before any more DATA
                    // shows the server waits; only then is more credit given.
                    let payload = (updates as u64).to_be_bytes();
                    h2.send_ping(payload).await;
                    barrier = Some(payload);
                }
            }
            Event::Ping { ack: true, payload } if Some(payload) == barrier => {
                barrier = None;
                h2.send_window_update(0, 16_384).await;
                h2.send_window_update(1, 16_384).await;
                granted += 16_384;
                updates += 1;
            }
            Event::RstStream { stream, code } => panic!("RST_STREAM {code} on {stream}"),
            Event::GoAway { code, debug, .. } => {
                panic!("GOAWAY {code}: {}", String::from_utf8_lossy(&debug))
            }
            _ => {}
        }
    }
    assert_eq!(status.as_deref(), Some("200"));
    assert_eq!(body, pattern(40_000));
    assert_eq!(updates, 2, "the server waited for each WINDOW_UPDATE");
}
