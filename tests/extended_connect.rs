//! HTTP/2 extended CONNECT (RFC 8441), opt-in with
//! `Builder::enable_connect_protocol`: the setting advertised on both ways into
//! HTTP/2 (prior knowledge and the h2c upgrade) and absent by default; a `CONNECT`
//! with `:protocol` reaching the service with its `ConnectProtocol` and `OnTunnel`;
//! the tunnel echoing bytes under flow control, ending and resetting as documented;
//! answers that leave no tunnel; a plain `CONNECT` as before; graceful shutdown
//! with a tunnel open; the demo's tunnel; and axum: a handler that takes the
//! tunnel, and what its `WebSocketUpgrade` answers over HTTP/2. What tunnels log,
//! the drain's cut included, is in `extended_connect_log.rs`.
//!
//! The `h2` client drives prior-knowledge connections; after an upgrade the raw
//! client does (the `h2` client cannot use a connection whose stream 1 it did not
//! open).

mod common;

use std::io;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use common::h2c::{upgrade, UPGRADE_GET};
use common::h2client::{
    extended_connect, get, h2_client, h2_connect, read_to_end, roundtrip, send_all,
};
use common::h2frame::{
    request_fields, Frame, NO_ERROR, PROTOCOL_ERROR, SETTINGS_ENABLE_CONNECT_PROTOCOL,
    WINDOW_UPDATE,
};
use common::h2raw::{Event, H2Raw, RAW_SETTINGS};
use common::server::{quiet, Server, TestService};
use common::service::{recorder, service_fn, text};
use common::tunnel::{
    bytes, client_past_settings, echo_service, enabled, open, open_tunnel, read_exactly, report,
    take_tunnel, Ended,
};
use common::within;
use h2c_mux::tunnel::{self, ConnectProtocol, OnTunnel, Tunnel};
use h2c_mux::Body;
use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};

/// The fields of an extended CONNECT for `path` asking for `protocol`.
fn connect_fields<'a>(protocol: &'a str, path: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        (":method", "CONNECT"),
        (":protocol", protocol),
        (":scheme", "http"),
        (":authority", "example"),
        (":path", path),
    ]
}

/// The `:status` of a HEADERS event on `stream`, and whether it ended the stream.
fn head_of(event: &Event) -> (u16, bool, Vec<(String, String)>) {
    match event {
        Event::Headers {
            fields, end_stream, ..
        } => {
            let status = fields
                .iter()
                .find(|(n, _)| n == ":status")
                .map(|(_, v)| v.parse().expect("numeric :status"))
                .expect(":status");
            (status, *end_stream, fields.clone())
        }
        other => panic!("expected HEADERS, got {other:?}"),
    }
}

/// The server's SETTINGS values: the first frame it sends.
async fn server_settings<S>(h2: &mut H2Raw<S>) -> Vec<(u16, u32)>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    match h2.next_event().await {
        Some(Event::Settings { ack: false, values }) => values,
        other => panic!("expected the server's SETTINGS first, got {other:?}"),
    }
}

#[tokio::test]
async fn a_tunnel_over_prior_knowledge_echoes_and_each_side_ends_it() {
    let (tx, mut reports) = mpsc::unbounded_channel();
    let server = Server::start(&enabled(), echo_service(tx)).await;
    let client = client_past_settings(&server).await;
    assert!(client.is_extended_connect_protocol_enabled());

    let (res, mut send) = open_tunnel(&client, "echo").await;
    let mut recv = res.into_body();
    send.send_data(Bytes::from_static(b"hello, tunnel"), false)
        .expect("send");
    assert_eq!(read_exactly(&mut recv, 13).await, b"hello, tunnel");
    send.send_data(Bytes::from_static(b"again"), false)
        .expect("send");
    assert_eq!(read_exactly(&mut recv, 5).await, b"again");

    // The client's END_STREAM is the service's end of file; its shutdown, the
    // client's END_STREAM (not a reset).
    send.send_data(Bytes::new(), true).expect("end stream");
    let rest = within("the tunnel's end", read_to_end(&mut recv))
        .await
        .expect("the stream ends without a reset");
    assert!(rest.is_empty(), "{rest:?}");
    assert_eq!(
        report(&mut reports).await,
        Ok(Ended {
            read: 18,
            end: Ok(())
        })
    );
    // The connection serves on.
    let mut client = client;
    assert_eq!(roundtrip(&mut client, get("/"), None).await.body, b"plain");
}

#[tokio::test]
async fn a_tunnel_over_the_h2c_upgrade_echoes_a_megabyte() {
    let (tx, mut reports) = mpsc::unbounded_channel();
    let server = Server::start(&enabled(), echo_service(tx)).await;
    let (_, mut h2) = upgrade(server.addr, UPGRADE_GET.as_bytes()).await;
    h2.send_preface(RAW_SETTINGS).await;
    // The SETTINGS that came with the 101 offer extended CONNECT.
    let settings = server_settings(&mut h2).await;
    assert!(
        settings.contains(&(SETTINGS_ENABLE_CONNECT_PROTOCOL, 1)),
        "{settings:?}"
    );
    h2.send_settings_ack().await;
    assert_eq!(h2.response(1).await.body_str(), "plain");

    h2.send_headers(3, &connect_fields("echo", "/echo"), false)
        .await;
    let (status, ended, fields) = head_of(&h2.next_on(3).await);
    assert_eq!((status, ended), (200, false), "{fields:?}");
    assert!(
        !fields.iter().any(|(n, _)| n == "content-length"),
        "{fields:?}"
    );

    // Within the server's 1 MiB stream window: sent whole, then read back while
    // the read returns the client's window to the server.
    let data = bytes(1_000_000, 3);
    h2.send_data(3, &data, true).await;
    let (echoed, _) = h2.read_response(3).await;
    assert_eq!(echoed.reset, None);
    assert!(echoed.ended, "no END_STREAM after the echo");
    assert!(
        echoed.body == data[..],
        "the echo differs from what was sent"
    );
    assert_eq!(
        report(&mut reports).await,
        Ok(Ended {
            read: 1_000_000,
            end: Ok(())
        })
    );
}

/// A megabyte each way at once through windows of 64 KiB on both ends and a
/// 16 KiB send buffer: the tunnel writes only what the client's window allows (a
/// write past it would be a FLOW_CONTROL_ERROR) and reads only as the windows it
/// returns allow.
#[tokio::test]
async fn a_megabyte_each_way_through_small_windows() {
    let (tx, mut reports) = mpsc::unbounded_channel();
    let mut builder = enabled();
    builder
        .initial_stream_window_size(65_535)
        .initial_connection_window_size(65_535)
        .max_send_buffer_size(16 * 1024);
    let server = Server::start(&builder, echo_service(tx)).await;
    let tcp = within("connect", TcpStream::connect(server.addr))
        .await
        .expect("connect");
    let (client, conn) = within(
        "h2 handshake",
        h2::client::Builder::new()
            .initial_window_size(65_535)
            .initial_connection_window_size(65_535)
            .handshake::<_, Bytes>(tcp),
    )
    .await
    .expect("h2 handshake");
    tokio::spawn(async move {
        let _ = conn.await;
    });

    let (res, mut send) = open_tunnel(&client, "echo").await;
    let mut recv = res.into_body();
    let data = bytes(1_000_000, 9);
    let sent = data.clone();
    let sender = tokio::spawn(async move { send_all(&mut send, sent, true).await });
    let echoed = within("the echo", read_to_end(&mut recv))
        .await
        .expect("the echo ends without a reset");
    within("the sender", sender)
        .await
        .expect("sender task")
        .expect("send");
    assert_eq!(echoed.len(), data.len());
    assert!(echoed == data[..], "the echo differs from what was sent");
    assert_eq!(
        report(&mut reports).await,
        Ok(Ended {
            read: 1_000_000,
            end: Ok(())
        })
    );
}

#[tokio::test]
async fn ten_tunnels_at_once_on_one_connection_each_echo_their_own_bytes() {
    let (tx, mut reports) = mpsc::unbounded_channel();
    let mut builder = enabled();
    builder.initial_stream_window_size(65_535);
    let server = Server::start(&builder, echo_service(tx)).await;
    let client = client_past_settings(&server).await;
    let mut tasks = Vec::new();
    for i in 0..10u8 {
        let client = client.clone();
        tasks.push(tokio::spawn(async move {
            let (res, mut send) = open_tunnel(&client, "echo").await;
            let data = bytes(100_000 + usize::from(i), i);
            let sent = data.clone();
            let sender = tokio::spawn(async move { send_all(&mut send, sent, true).await });
            let echoed = read_to_end(&mut res.into_body()).await.expect("echo");
            sender.await.expect("sender task").expect("send");
            assert!(echoed == data[..], "tunnel {i}: the echo differs");
        }));
    }
    for task in tasks {
        within("a tunnel", task).await.expect("tunnel task");
    }
    let mut lengths = Vec::new();
    for _ in 0..10 {
        let ended = report(&mut reports).await.expect("a tunnel");
        assert_eq!(ended.end, Ok(()));
        lengths.push(ended.read);
    }
    lengths.sort_unstable();
    assert_eq!(lengths, (100_000..100_010).collect::<Vec<u64>>());
}

/// The stream window of [`an_unread_tunnel_holds_the_client_and_reading_gives_back_what_was_read`].
const WINDOW: usize = 65_535;
/// What its service reads before it reports.
const FIRST_READ: usize = 40_000;

/// Two PING round trips; the frames read on the way, with the window updates of
/// `stream` summed. After the first the server has read every frame sent before
/// it; what it wrote in answer comes before the second PING's ACK at the latest.
async fn settle(h2: &mut H2Raw, stream: u32) -> (u32, Vec<Frame>) {
    let mut frames = h2.exchange_until_pong(&[]).await;
    frames.extend(h2.exchange_until_pong(&[]).await);
    let credit = frames
        .iter()
        .filter(|f| f.ty == WINDOW_UPDATE && f.stream == stream)
        .map(|f| u32::from_be_bytes(f.payload[..4].try_into().expect("4 bytes")))
        .sum();
    (credit, frames)
}

#[tokio::test]
async fn an_unread_tunnel_holds_the_client_and_reading_gives_back_what_was_read() {
    // The service reads nothing until told, then FIRST_READ bytes, then nothing
    // until told again, then the rest.
    let (go_tx, go_rx) = oneshot::channel::<()>();
    let (more_tx, more_rx) = oneshot::channel::<()>();
    let go = Arc::new(Mutex::new(Some((go_rx, more_rx))));
    let (tx, mut reports) = mpsc::unbounded_channel();
    let (read_tx, mut first_read) = mpsc::unbounded_channel();
    let svc = service_fn(move |mut req: Request<Body>| {
        let (tx, read_tx, go) = (tx.clone(), read_tx.clone(), go.clone());
        async move {
            if req.method() != Method::CONNECT {
                return text(StatusCode::OK, "plain");
            }
            let go = go.lock().expect("go").take();
            take_tunnel(&mut req, tx, move |mut t: Tunnel| async move {
                let (go, more) = go.expect("one tunnel");
                let _ = go.await;
                let mut first = vec![0u8; FIRST_READ];
                t.read_exact(&mut first).await.expect("first read");
                let _ = read_tx.send(());
                let _ = more.await;
                let mut rest = Vec::new();
                t.read_to_end(&mut rest).await.expect("the rest");
                t.shutdown().await.expect("shutdown");
                FIRST_READ + rest.len()
            });
            text(StatusCode::OK, "")
        }
    });
    let mut builder = enabled();
    builder.initial_stream_window_size(WINDOW as u32);
    let server = Server::start(&builder, svc).await;
    let mut h2 = H2Raw::connect(server.addr).await;
    h2.send_headers(1, &connect_fields("hold", "/hold"), false)
        .await;
    assert_eq!(head_of(&h2.next_on(1).await).0, 200);

    // The whole window, unread: no credit comes back, so the client can send no
    // more (a byte more would be a FLOW_CONTROL_ERROR).
    h2.send_data(1, &bytes(WINDOW, 1), false).await;
    let (credit, frames) = settle(&mut h2, 1).await;
    assert_eq!(credit, 0, "window given back for unread bytes: {frames:?}");

    go_tx.send(()).expect("go");
    within("the first read", first_read.recv())
        .await
        .expect("the first read");
    let (credit, frames) = settle(&mut h2, 1).await;
    assert!(
        credit > 0 && credit as usize <= FIRST_READ,
        "credit {credit} after reading {FIRST_READ}: {frames:?}"
    );

    more_tx.send(()).expect("more");
    h2.send_data(1, &[], true).await;
    loop {
        match h2.next_on(1).await {
            Event::Data {
                end_stream: true, ..
            } => break,
            Event::Data { .. } => {}
            other => panic!("expected the tunnel's end, got {other:?}"),
        }
    }
    assert_eq!(report(&mut reports).await, Ok(WINDOW));
}

#[tokio::test]
async fn the_clients_end_stream_is_the_services_end_of_file_and_its_shutdown_the_clients() {
    let (tx, mut reports) = mpsc::unbounded_channel();
    let svc = service_fn(move |mut req: Request<Body>| {
        let tx = tx.clone();
        async move {
            if req.method() != Method::CONNECT {
                return text(StatusCode::OK, "plain");
            }
            take_tunnel(&mut req, tx, |mut t: Tunnel| async move {
                let mut got = Vec::new();
                let read = t.read_to_end(&mut got).await.map_err(|e| e.kind());
                let reply = format!("read {} bytes", got.len());
                t.write_all(reply.as_bytes()).await.expect("reply");
                t.shutdown().await.expect("shutdown");
                (read, got)
            });
            text(StatusCode::OK, "")
        }
    });
    let server = Server::start(&enabled(), svc).await;
    let client = client_past_settings(&server).await;
    let (res, mut send) = open_tunnel(&client, "summary").await;
    send.send_data(Bytes::from_static(b"abc"), true)
        .expect("data with END_STREAM");
    let reply = within("the reply", read_to_end(&mut res.into_body()))
        .await
        .expect("the stream ends without a reset");
    assert_eq!(reply, b"read 3 bytes");
    assert_eq!(report(&mut reports).await, Ok((Ok(3), b"abc".to_vec())));
}

#[tokio::test]
async fn a_tunnel_the_service_ends_first_reaches_the_client_whole() {
    let (tx, mut reports) = mpsc::unbounded_channel();
    let svc = service_fn(move |mut req: Request<Body>| {
        let tx = tx.clone();
        async move {
            if req.method() != Method::CONNECT {
                return text(StatusCode::OK, "plain");
            }
            // Written, shut down and dropped at once, the client still sending.
            take_tunnel(&mut req, tx, |mut t: Tunnel| async move {
                t.write_all(b"bye").await.expect("write");
                t.shutdown().await.expect("shutdown");
            });
            text(StatusCode::OK, "")
        }
    });
    let server = Server::start(&enabled(), svc).await;
    let client = client_past_settings(&server).await;
    let (res, mut send) = open_tunnel(&client, "bye").await;
    report(&mut reports).await.expect("the tunnel opened");
    let got = within("the tunnel's end", read_to_end(&mut res.into_body()))
        .await
        .expect("END_STREAM, before any reset");
    assert_eq!(got, b"bye");
    // Then, the tunnel dropped, the server stops the client's side with NO_ERROR
    // (RFC 9113 §8.1), not an error.
    let reason = within("the reset", std::future::poll_fn(|cx| send.poll_reset(cx)))
        .await
        .expect("a reset");
    assert_eq!(reason, h2::Reason::NO_ERROR);
}

#[tokio::test]
async fn a_tunnel_dropped_without_shutdown_resets_the_stream_with_cancel() {
    let (tx, mut reports) = mpsc::unbounded_channel();
    let svc = service_fn(move |mut req: Request<Body>| {
        let tx = tx.clone();
        async move {
            if req.method() != Method::CONNECT {
                return text(StatusCode::OK, "plain");
            }
            take_tunnel(&mut req, tx, |mut t: Tunnel| async move {
                t.write_all(b"partial").await.expect("write");
            });
            text(StatusCode::OK, "")
        }
    });
    let server = Server::start(&enabled(), svc).await;
    let client = client_past_settings(&server).await;
    let (res, _send) = open_tunnel(&client, "abandon").await;
    report(&mut reports).await.expect("the tunnel opened");
    let mut recv = res.into_body();
    let e = within("the reset", async {
        loop {
            match recv.data().await {
                Some(Ok(chunk)) => {
                    let _ = recv.flow_control().release_capacity(chunk.len());
                }
                Some(Err(e)) => return e,
                None => panic!("END_STREAM from a tunnel that was not shut down"),
            }
        }
    })
    .await;
    assert_eq!(e.reason(), Some(h2::Reason::CANCEL), "{e}");
}

/// One write of a megabyte takes no more than the client's window (65,535 bytes
/// by default, here with nothing read yet) and the send buffer allow: the rest
/// waits for the next writes, as the client reads.
#[tokio::test]
async fn a_write_takes_no_more_than_the_clients_window() {
    const SIZE: usize = 1_000_000;
    let (tx, mut reports) = mpsc::unbounded_channel();
    let (first_tx, mut first_write) = mpsc::unbounded_channel();
    let svc = service_fn(move |mut req: Request<Body>| {
        let (tx, first_tx) = (tx.clone(), first_tx.clone());
        async move {
            if req.method() != Method::CONNECT {
                return text(StatusCode::OK, "plain");
            }
            take_tunnel(&mut req, tx, |mut t: Tunnel| async move {
                let data = bytes(SIZE, 5);
                let first = t.write(&data).await.expect("write");
                let _ = first_tx.send(first);
                t.write_all(&data[first..]).await.expect("the rest");
                t.shutdown().await.expect("shutdown");
            });
            text(StatusCode::OK, "")
        }
    });
    let server = Server::start(&enabled(), svc).await;
    let client = client_past_settings(&server).await;
    let (res, _send) = open_tunnel(&client, "download").await;
    let first = within("the first write", first_write.recv())
        .await
        .expect("the first write");
    assert!(first > 0 && first <= 65_535, "one write took {first} bytes");
    let got = within("the download", read_to_end(&mut res.into_body()))
        .await
        .expect("the stream ends without a reset");
    assert!(got == bytes(SIZE, 5)[..], "the download differs");
    report(&mut reports).await.expect("the tunnel opened");
}

#[tokio::test]
async fn a_reset_from_the_client_is_an_error_for_the_services_read() {
    let (tx, mut reports) = mpsc::unbounded_channel();
    let server = Server::start(&enabled(), echo_service(tx)).await;
    let client = client_past_settings(&server).await;
    let (res, mut send) = open_tunnel(&client, "echo").await;
    let mut recv = res.into_body();
    send.send_data(Bytes::from_static(b"x"), false)
        .expect("send");
    // Echoed: the service reads the tunnel now.
    assert_eq!(read_exactly(&mut recv, 1).await, b"x");
    send.send_reset(h2::Reason::CANCEL);
    assert_eq!(
        report(&mut reports).await,
        Ok(Ended {
            read: 1,
            end: Err(io::ErrorKind::ConnectionReset)
        })
    );
}

#[tokio::test]
async fn off_by_default_the_setting_is_absent_and_h2_refuses_protocol() {
    // Prior knowledge: no setting, and an extended CONNECT is reset before the
    // service sees it, while the connection serves on.
    let (svc, mut seen) = recorder(echo_service(mpsc::unbounded_channel().0));
    let server = Server::start(&quiet(), svc).await;
    let mut raw = H2Raw::new(
        within("connect", TcpStream::connect(server.addr))
            .await
            .expect("connect"),
        Vec::new(),
    );
    let frames = raw.handshake(RAW_SETTINGS).await;
    let settings = frames.last().expect("the server's SETTINGS");
    assert!(
        !settings
            .payload
            .chunks(6)
            .any(|c| u16::from_be_bytes([c[0], c[1]]) == SETTINGS_ENABLE_CONNECT_PROTOCOL),
        "setting 0x8 sent: {:?}",
        settings.payload
    );
    raw.send_headers(1, &connect_fields("echo", "/echo"), false)
        .await;
    match raw.next_on(1).await {
        Event::RstStream { code, .. } => assert_eq!(code, PROTOCOL_ERROR),
        other => panic!("expected RST_STREAM, got {other:?}"),
    }

    let mut client = h2_connect(server.addr).await;
    assert_eq!(roundtrip(&mut client, get("/"), None).await.status, 200);
    assert!(!client.is_extended_connect_protocol_enabled());
    let refused = within(
        "the reset",
        open(&client, extended_connect("echo", "/echo")),
    )
    .await
    .expect_err("an extended CONNECT without the setting");
    assert_eq!(
        refused.reason(),
        Some(h2::Reason::PROTOCOL_ERROR),
        "{refused}"
    );
    assert_eq!(roundtrip(&mut client, get("/"), None).await.status, 200);

    // The service saw the two GETs of the h2 client, and no CONNECT.
    for _ in 0..2 {
        assert_eq!(seen.next().await.method, Method::GET);
    }

    // After the upgrade: no setting either, and the same reset.
    let (_, mut h2) = upgrade(server.addr, UPGRADE_GET.as_bytes()).await;
    h2.send_preface(RAW_SETTINGS).await;
    let settings = server_settings(&mut h2).await;
    assert!(
        !settings
            .iter()
            .any(|(id, _)| *id == SETTINGS_ENABLE_CONNECT_PROTOCOL),
        "{settings:?}"
    );
    h2.send_settings_ack().await;
    assert_eq!(h2.response(1).await.body_str(), "plain");
    h2.send_headers(3, &connect_fields("echo", "/echo"), false)
        .await;
    match h2.next_on(3).await {
        Event::RstStream { code, .. } => assert_eq!(code, PROTOCOL_ERROR),
        other => panic!("expected RST_STREAM, got {other:?}"),
    }
    assert_eq!(seen.next().await.method, Method::GET, "the upgrade request");
    h2.send_headers(5, &request_fields("GET", "/"), true).await;
    assert_eq!(h2.response(5).await.body_str(), "plain");
    assert_eq!(seen.next().await.method, Method::GET);
}

#[tokio::test]
async fn on_the_setting_is_in_the_prior_knowledge_settings() {
    let server = Server::start(&enabled(), echo_service(mpsc::unbounded_channel().0)).await;
    let mut raw = H2Raw::new(
        within("connect", TcpStream::connect(server.addr))
            .await
            .expect("connect"),
        Vec::new(),
    );
    raw.send_preface(RAW_SETTINGS).await;
    let settings = server_settings(&mut raw).await;
    assert!(
        settings.contains(&(SETTINGS_ENABLE_CONNECT_PROTOCOL, 1)),
        "{settings:?}"
    );
}

/// Answers an extended CONNECT as its path says, after taking its `OnTunnel`
/// (except on `/untaken`), and reports what the `OnTunnel` resolved to: the
/// error's text, or `Ok` for a tunnel.
fn answering(tx: mpsc::UnboundedSender<Result<(), String>>) -> impl TestService<Full<Bytes>> {
    service_fn(move |mut req: Request<Body>| {
        let tx = tx.clone();
        async move {
            if req.method() != Method::CONNECT {
                return text(StatusCode::OK, "plain");
            }
            let answer = match req.uri().path() {
                "/forbidden" => text(StatusCode::FORBIDDEN, "forbidden"),
                "/with-body" => text(StatusCode::OK, "not a tunnel"),
                "/untaken" => return text(StatusCode::OK, ""),
                _ => text(StatusCode::NOT_FOUND, ""),
            };
            take_tunnel(&mut req, tx, |_| async {});
            answer
        }
    })
}

#[tokio::test]
async fn answers_that_leave_no_tunnel_go_out_as_usual() {
    let (tx, mut reports) = mpsc::unbounded_channel();
    let server = Server::start(&enabled(), answering(tx)).await;
    let client = client_past_settings(&server).await;

    let (res, _send) = within("403", open(&client, extended_connect("echo", "/forbidden")))
        .await
        .expect("answer");
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    let body = read_to_end(&mut res.into_body()).await.expect("body");
    assert_eq!(body, b"forbidden");
    let refusal = report(&mut reports).await.expect_err("no tunnel for a 403");
    assert!(refusal.starts_with("no tunnel: answered 403"), "{refusal}");

    // A 2xx with a body is a response, not a tunnel, and it carries no
    // Content-Length (RFC 9110 §9.3.6).
    let (res, _send) = within(
        "200 with a body",
        open(&client, extended_connect("echo", "/with-body")),
    )
    .await
    .expect("answer");
    assert_eq!(res.status(), StatusCode::OK);
    assert!(res.headers().get("content-length").is_none(), "{res:?}");
    let body = read_to_end(&mut res.into_body()).await.expect("body");
    assert_eq!(body, b"not a tunnel");
    let refusal = report(&mut reports)
        .await
        .expect_err("no tunnel with a body");
    assert_eq!(refusal, "no tunnel: the 2xx answer has a body");

    // Nobody took the OnTunnel: the 200 ends the stream at once.
    let (res, _send) = within(
        "200 untaken",
        open(&client, extended_connect("echo", "/untaken")),
    )
    .await
    .expect("answer");
    assert_eq!(res.status(), StatusCode::OK);
    assert!(res.headers().get("content-length").is_none(), "{res:?}");
    let body = read_to_end(&mut res.into_body()).await.expect("body");
    assert!(body.is_empty());
}

#[tokio::test]
async fn a_plain_connect_is_served_as_before() {
    let (tx, mut seen) = mpsc::unbounded_channel();
    let svc = service_fn(move |req: Request<Body>| {
        let tx = tx.clone();
        async move {
            let has_protocol = ConnectProtocol::of(&req).is_some();
            let has_tunnel = req.extensions().get::<OnTunnel>().is_some();
            let body = req.into_body().collect().await.expect("body").to_bytes();
            let _ = tx.send((has_protocol, has_tunnel, body.clone()));
            text(StatusCode::OK, body)
        }
    });
    let server = Server::start(&enabled(), svc).await;
    let mut client = client_past_settings(&server).await;
    // The GET that showed the client the server's SETTINGS.
    let _ = seen.recv().await;
    let req = Request::builder()
        .method(Method::CONNECT)
        .uri("example:443")
        .body(())
        .expect("request");
    let reply = roundtrip(&mut client, req, Some(Bytes::from_static(b"abc"))).await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.body, b"abc");
    let (has_protocol, has_tunnel, body) = within("the request", seen.recv()).await.expect("seen");
    assert!(!has_protocol && !has_tunnel);
    assert_eq!(&body[..], b"abc", "the DATA is the request's body");
}

#[tokio::test]
async fn graceful_shutdown_waits_for_an_open_tunnel() {
    let (tx, mut reports) = mpsc::unbounded_channel();
    let mut server = Server::start(&enabled(), echo_service(tx)).await;
    let mut h2 = H2Raw::connect(server.addr).await;
    h2.send_headers(1, &connect_fields("echo", "/echo"), false)
        .await;
    assert_eq!(head_of(&h2.next_on(1).await).0, 200);

    server.trigger_shutdown();
    // h2's graceful close: a GOAWAY for every stream, a PING, then the GOAWAY
    // naming the last stream, stream 1 (next_on answers the PING).
    h2.send_data(1, b"before", false).await;
    let mut echoed = Vec::new();
    while !h2.goaways.contains(&(1, NO_ERROR)) || echoed.len() < 6 {
        match h2.next_on(1).await {
            Event::Data { data, .. } => echoed.extend_from_slice(&data),
            other => panic!("expected tunnel data, got {other:?}"),
        }
    }
    assert_eq!(echoed, b"before");

    // The tunnel still works after the last GOAWAY.
    h2.send_data(1, b"after goaway", true).await;
    let mut echoed = Vec::new();
    loop {
        match h2.next_on(1).await {
            Event::Data {
                data, end_stream, ..
            } => {
                echoed.extend_from_slice(&data);
                if end_stream {
                    break;
                }
            }
            other => panic!("expected tunnel data, got {other:?}"),
        }
    }
    assert_eq!(echoed, b"after goaway");
    assert_eq!(
        report(&mut reports).await,
        Ok(Ended {
            read: 18,
            end: Ok(())
        })
    );
    // With the tunnel closed the connection closes, and serve returns.
    within("the connection to close", h2.count_until_closed()).await;
    // Closed on this side too, so the server's close need not linger.
    drop(h2);
    server.join().await.expect("serve");
}

/// axum 0.8's `WebSocketUpgrade` over HTTP/2 (its `http2` feature off, as by
/// default): it accepts the RFC 8441 request, finds no `hyper::upgrade::OnUpgrade`
/// (only hyper's server makes one) and answers `426`.
#[tokio::test]
async fn axums_websocket_upgrade_answers_426_over_http2() {
    use axum::extract::ws::WebSocketUpgrade;
    use axum::routing::any;

    let app = axum::Router::new().route(
        "/ws",
        any(|ws: WebSocketUpgrade| async move { ws.on_upgrade(|_socket| async {}) }),
    );
    let server = Server::start(&enabled(), app).await;
    let tcp = within("connect", TcpStream::connect(server.addr))
        .await
        .expect("connect");
    let client = within("h2 handshake", h2_client(tcp))
        .await
        .expect("handshake");
    let mut req = extended_connect("websocket", "/ws");
    req.headers_mut().insert(
        "sec-websocket-version",
        http::HeaderValue::from_static("13"),
    );
    let (res, _send) = within("axum's answer", open(&client, req))
        .await
        .expect("answer");
    assert_eq!(res.status(), StatusCode::UPGRADE_REQUIRED);
    let body = read_to_end(&mut res.into_body()).await.expect("body");
    assert_eq!(
        String::from_utf8_lossy(&body),
        "WebSocket request couldn't be upgraded since no upgrade state was present"
    );
}

/// The README's axum route: a handler takes the tunnel and answers `200` with
/// axum's empty body, and the stream becomes the tunnel.
#[tokio::test]
async fn an_axum_handler_takes_the_tunnel() {
    use axum::extract::Request;
    use axum::routing::any;

    let app: axum::Router = axum::Router::new().route(
        "/echo",
        any(|mut req: Request| async move {
            let wanted = ConnectProtocol::of(&req).is_some_and(|p| p == "echo");
            if !wanted {
                return StatusCode::NOT_FOUND;
            }
            let on_tunnel = tunnel::on(&mut req);
            tokio::spawn(async move {
                let Ok(mut tunnel) = on_tunnel.await else {
                    return;
                };
                let (mut rd, mut wr) = tokio::io::split(&mut tunnel);
                if tokio::io::copy(&mut rd, &mut wr).await.is_ok() {
                    let _ = tunnel.shutdown().await;
                }
            });
            StatusCode::OK
        }),
    );
    let server = Server::start(&enabled(), app).await;
    let tcp = within("connect", TcpStream::connect(server.addr))
        .await
        .expect("connect");
    let client = within("h2 handshake", h2_client(tcp))
        .await
        .expect("handshake");
    let (res, mut send) = open_tunnel(&client, "echo").await;
    let data = bytes(200_000, 7);
    let sent = data.clone();
    let sender = tokio::spawn(async move { send_all(&mut send, sent, true).await });
    let echoed = within("the echo", read_to_end(&mut res.into_body()))
        .await
        .expect("the echo ends without a reset");
    within("the sender", sender)
        .await
        .expect("sender task")
        .expect("send");
    assert!(echoed == data[..], "the echo differs");
}

/// The demo's tunnel (`h2c-mux --enable-connect-protocol`): `CONNECT /echo` with
/// `:protocol: echo` echoes until the client ends its side.
#[tokio::test]
async fn the_demo_echoes_a_tunnel() {
    let server = Server::start(&enabled(), h2c_mux::demo::Demo::new()).await;
    let client = client_past_settings(&server).await;
    let (res, mut send) = open_tunnel(&client, "echo").await;
    let data = bytes(100_000, 11);
    let sent = data.clone();
    let sender = tokio::spawn(async move { send_all(&mut send, sent, true).await });
    let echoed = within("the echo", read_to_end(&mut res.into_body()))
        .await
        .expect("the echo ends without a reset");
    within("the sender", sender)
        .await
        .expect("sender task")
        .expect("send");
    assert!(echoed == data[..], "the echo differs");
}
