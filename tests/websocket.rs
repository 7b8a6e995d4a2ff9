//! Every HTTP/1.1 upgrade, not only h2c: an axum `Router` with a `WebSocketUpgrade`
//! route served unchanged (first request, after keep-alive requests, 50 at once,
//! large messages, the close handshake); a service's own `101` through
//! `hyper::upgrade::on` (the demo's `/ws`, driven by tokio-tungstenite); a `101`
//! that cannot be honoured refused; the choice between h2c and another protocol
//! by the client's order; forwarding fields that decline h2c but not WebSocket;
//! and an upgraded connection counted until it closes, through shutdown and the
//! drain.
#![cfg(feature = "demo")] // the demo service (and the `upgrades` feature with it)

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::h1::H1Conn;
use common::h2c::{upgrade_fields, CLIENT_SETTINGS};
use common::h2raw::H2Raw;
use common::server::{Server, TestService};
use common::service::{answer, service_fn, text};
use common::within;
use common::ws::echo_app;
use futures_util::{SinkExt, StreamExt};
use h2c_mux::{Builder, DeclineReason, UpgradeDeclined};
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::WebSocketStream;

type Client = WebSocketStream<TcpStream>;

/// The WebSocket handshake for `path` over `stream`, already connected.
async fn ws_over(stream: TcpStream, addr: std::net::SocketAddr, path: &str) -> Client {
    let url = format!("ws://{addr}{path}");
    let (ws, res) = within(
        "websocket handshake",
        tokio_tungstenite::client_async(url, stream),
    )
    .await
    .expect("websocket handshake");
    assert_eq!(res.status(), StatusCode::SWITCHING_PROTOCOLS);
    ws
}

async fn ws_connect(addr: std::net::SocketAddr, path: &str) -> Client {
    let stream = TcpStream::connect(addr).await.expect("connect");
    ws_over(stream, addr, path).await
}

/// Sends `msg` and expects it back.
async fn echoes(ws: &mut Client, msg: WsMessage) {
    within("send", ws.send(msg.clone())).await.expect("send");
    let back = within("echo", ws.next())
        .await
        .expect("a message")
        .expect("ok");
    assert_eq!(back, msg);
}

/// Closes from the client and expects the server's close frame, then the end.
async fn close_handshake(mut ws: Client) {
    within("close", ws.close(None)).await.expect("close");
    match within("the server's close", ws.next()).await {
        Some(Ok(WsMessage::Close(_))) | None => {}
        Some(Ok(other)) => panic!("unexpected message after close: {other:?}"),
        Some(Err(e)) => panic!("close handshake failed: {e}"),
    }
}

#[tokio::test]
async fn axum_websocket_echoes_text_and_binary_and_closes_cleanly() {
    let server = Server::start(&Builder::new(), echo_app()).await;
    let mut ws = ws_connect(server.addr, "/ws").await;
    echoes(&mut ws, WsMessage::text("hello")).await;
    echoes(&mut ws, WsMessage::binary(vec![0u8, 1, 2, 255])).await;
    close_handshake(ws).await;
    server.stop().await.expect("serve");
}

#[tokio::test]
async fn axum_websocket_carries_a_200_kb_binary_message() {
    let server = Server::start(&Builder::new(), echo_app()).await;
    let mut ws = ws_connect(server.addr, "/ws").await;
    let big: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    echoes(&mut ws, WsMessage::binary(big)).await;
    close_handshake(ws).await;
}

#[tokio::test]
async fn axum_websocket_after_keep_alive_requests() {
    let server = Server::start(&Builder::new(), echo_app()).await;
    let mut conn = H1Conn::connect(server.addr).await;
    for _ in 0..3 {
        conn.send("GET / HTTP/1.1\r\nHost: x\r\n\r\n").await;
        let res = conn.read_response().await;
        assert_eq!(res.status, 200);
        assert_eq!(res.body_str(), "plain\n");
    }
    let (stream, leftover) = conn.into_parts();
    assert!(leftover.is_empty());
    let mut ws = ws_over(stream, server.addr, "/ws").await;
    echoes(&mut ws, WsMessage::text("after three requests")).await;
    close_handshake(ws).await;
}

#[tokio::test]
async fn fifty_axum_websockets_at_once() {
    let server = Server::start(&Builder::new(), echo_app()).await;
    let addr = server.addr;
    let clients = (0..50).map(|i| {
        tokio::spawn(async move {
            let mut ws = ws_connect(addr, "/ws").await;
            for j in 0..10 {
                echoes(&mut ws, WsMessage::text(format!("{i}/{j}"))).await;
            }
            close_handshake(ws).await;
        })
    });
    for c in clients.collect::<Vec<_>>() {
        c.await.expect("client");
    }
    server.stop().await.expect("serve");
}

/// Every way a WebSocket can end gives its connection slot back, whichever thread
/// the switch, the close and the drop race on: with room for 8 connections, 160
/// WebSockets, 8 at a time, end by the close handshake, by the client dropping
/// the socket after an echo, or by dropping it straight after the `101` (racing
/// the server's hand-over of the slot). A slot kept would stall a later wave
/// for good; at the end all 8 are open at once, and `serve` returns.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_way_a_websocket_ends_gives_its_slot_back() {
    const SLOTS: usize = 8;
    let mut builder = Builder::new();
    builder.max_connections(SLOTS);
    let server = Server::start(&builder, echo_app()).await;
    let addr = server.addr;
    for wave in 0..20 {
        let clients: Vec<_> = (0..SLOTS)
            .map(|i| {
                tokio::spawn(async move {
                    let mut ws = ws_connect(addr, "/ws").await;
                    match (wave + i) % 3 {
                        0 => drop(ws),
                        1 => {
                            echoes(&mut ws, WsMessage::text(format!("{wave}/{i}"))).await;
                            drop(ws);
                        }
                        _ => {
                            echoes(&mut ws, WsMessage::text(format!("{wave}/{i}"))).await;
                            close_handshake(ws).await;
                        }
                    }
                })
            })
            .collect();
        for c in clients {
            within("a wave of websockets", c).await.expect("client");
        }
    }
    let mut all: Vec<Client> = Vec::new();
    for _ in 0..SLOTS {
        all.push(ws_connect(addr, "/ws").await);
    }
    for (i, ws) in all.iter_mut().enumerate() {
        echoes(ws, WsMessage::text(format!("slot {i}"))).await;
    }
    for ws in all {
        close_handshake(ws).await;
    }
    server.stop().await.expect("serve");
}

/// The demo's `/ws` switches through `hyper::upgrade::on`, the documented way for
/// a service that is not axum, and echoes through tokio-tungstenite on both ends.
#[tokio::test]
async fn a_services_own_101_through_hyper_upgrade_on() {
    let server = Server::demo().await;
    let mut ws = ws_connect(server.addr, "/ws").await;
    echoes(&mut ws, WsMessage::text("demo")).await;
    echoes(&mut ws, WsMessage::binary(vec![7u8; 70_000])).await;
    close_handshake(ws).await;
}

/// A service that switches to `websocket` whenever the request can be switched
/// (hyper's `OnUpgrade` is there), writing `switched` on the raw transport, and
/// otherwise answers 200 with whether an h2c upgrade was declined and why.
fn switcher() -> impl TestService<Full<Bytes>> {
    service_fn(|mut req: Request<h2c_mux::Body>| {
        let declined = req
            .extensions()
            .get::<UpgradeDeclined>()
            .map(|d| d.reason.to_string());
        if req
            .extensions()
            .get::<hyper::upgrade::OnUpgrade>()
            .is_some()
        {
            let on = hyper::upgrade::on(&mut req);
            tokio::spawn(async move {
                let mut io = hyper_util::rt::TokioIo::new(on.await.expect("upgraded"));
                let _ = io.write_all(b"switched").await;
                let _ = io.shutdown().await;
            });
            let res = Response::builder()
                .status(101)
                .header("upgrade", "websocket")
                .header("x-declined", declined.unwrap_or_default())
                .body(Full::default())
                .unwrap();
            return std::future::ready(res);
        }
        let body = match declined {
            Some(reason) => format!("declined: {reason}"),
            None => "plain".to_string(),
        };
        std::future::ready(text(StatusCode::OK, body))
    })
}

/// Sends `request` and returns the response head and the connection after it.
async fn exchange(addr: std::net::SocketAddr, request: &str) -> (common::h1::H1Response, H1Conn) {
    let mut conn = H1Conn::connect(addr).await;
    conn.send(request).await;
    let head = conn.read_head().await;
    (head, conn)
}

async fn expect_switched(conn: H1Conn) {
    let (mut stream, mut rest) = conn.into_parts();
    within("the switched transport", stream.read_to_end(&mut rest))
        .await
        .expect("read");
    assert_eq!(rest, b"switched");
}

#[tokio::test]
async fn websocket_listed_before_h2c_wins() {
    let server = Server::start(&Builder::new(), switcher()).await;
    let req = format!(
        "GET / HTTP/1.1\r\nHost: x\r\n{}",
        upgrade_fields(CLIENT_SETTINGS).replace("Upgrade: h2c", "Upgrade: websocket, h2c")
    ) + "\r\n";
    let (head, conn) = exchange(server.addr, &req).await;
    assert_eq!(head.status, 101);
    assert_eq!(head.header("upgrade"), Some("websocket"));
    assert!(head.connection_has("upgrade"));
    assert_eq!(head.header("x-declined"), Some(""));
    expect_switched(conn).await;
}

#[tokio::test]
async fn h2c_listed_before_websocket_wins() {
    let server = Server::start(&Builder::new(), switcher()).await;
    let req = format!(
        "GET / HTTP/1.1\r\nHost: x\r\n{}\r\n",
        upgrade_fields(CLIENT_SETTINGS).replace("Upgrade: h2c", "Upgrade: h2c, websocket")
    );
    let (head, conn) = exchange(server.addr, &req).await;
    assert_eq!(head.status, 101);
    assert_eq!(head.header("upgrade"), Some("h2c"));
    let (stream, leftover) = conn.into_parts();
    let mut h2 = H2Raw::new(stream, leftover);
    h2.send_preface(CLIENT_SETTINGS).await;
    let res = h2.response(1).await;
    assert_eq!(res.status, Some(200));
    assert_eq!(res.body_str(), "plain");
}

#[tokio::test]
async fn a_declined_h2c_falls_back_to_the_next_protocol_listed() {
    let server = Server::start(&Builder::new(), switcher()).await;
    // Two HTTP2-Settings: h2c is declined, websocket is next.
    let req = format!(
        "GET / HTTP/1.1\r\nHost: x\r\n{}HTTP2-Settings: AAMAAABk\r\n\r\n",
        upgrade_fields(CLIENT_SETTINGS).replace("Upgrade: h2c", "Upgrade: h2c, websocket")
    );
    let (head, conn) = exchange(server.addr, &req).await;
    assert_eq!(head.status, 101);
    assert_eq!(head.header("upgrade"), Some("websocket"));
    assert_eq!(
        head.header("x-declined"),
        Some(DeclineReason::SettingsCount(2).to_string().as_str())
    );
    expect_switched(conn).await;
}

#[tokio::test]
async fn forwarding_fields_decline_h2c_but_not_websocket() {
    let server = Server::start(&Builder::new(), echo_app()).await;
    for field in common::h2c::FORWARDING_FIELDS {
        let (name, value) = field.split_once(": ").unwrap();
        let mut req =
            tokio_tungstenite::tungstenite::client::IntoClientRequest::into_client_request(
                format!("ws://{}/ws", server.addr),
            )
            .unwrap();
        req.headers_mut()
            .insert(name, http::HeaderValue::from_static(value));
        let stream = TcpStream::connect(server.addr).await.unwrap();
        let (mut ws, res) = within("handshake", tokio_tungstenite::client_async(req, stream))
            .await
            .expect("websocket through a proxy");
        assert_eq!(res.status(), 101, "{field}");
        echoes(&mut ws, WsMessage::text(field)).await;
    }
}

/// A service that answers `101` with `upgrade: {upgrade}` (none if empty) however
/// it was asked.
fn false_switch(upgrade: &'static str) -> impl TestService<String> {
    answer(move |_| {
        let mut b = Response::builder().status(101);
        if !upgrade.is_empty() {
            b = b.header("upgrade", upgrade);
        }
        b.body(String::new()).unwrap()
    })
}

#[tokio::test]
async fn a_101_that_cannot_be_honoured_is_refused_with_500() {
    let cases = [
        // A plain request: nothing to switch to.
        ("websocket", "GET / HTTP/1.1\r\nHost: x\r\n\r\n"),
        // Upgrade without `Connection: upgrade`: not a request to switch (RFC 9110 §7.8).
        (
            "websocket",
            "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n\r\n",
        ),
        // A protocol the client did not offer.
        (
            "foo",
            "GET / HTTP/1.1\r\nHost: x\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n",
        ),
        // No `Upgrade` in the 101.
        (
            "",
            "GET / HTTP/1.1\r\nHost: x\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n",
        ),
    ];
    for (answer, request) in cases {
        let server = Server::start(&Builder::new(), false_switch(answer)).await;
        let mut conn = H1Conn::connect(server.addr).await;
        conn.send(request).await;
        let res = conn.read_response().await;
        assert_eq!(
            res.status, 500,
            "{request:?} answered 101 with upgrade {answer:?}"
        );
        // Complete, and the end of the connection: nothing else follows.
        let (mut stream, rest) = conn.into_parts();
        assert!(rest.is_empty());
        let mut more = Vec::new();
        let _ = within("close", stream.read_to_end(&mut more)).await;
        assert!(more.is_empty(), "{:?}", String::from_utf8_lossy(&more));
    }
}

/// The service switched, but the server shuts down: the upgraded connection goes
/// on working through the drain, holds `serve` open, and is cut when the drain
/// bound passes.
#[tokio::test]
async fn an_upgraded_connection_is_drained_then_cut() {
    let mut builder = Builder::new();
    builder.drain_timeout(Duration::from_millis(300));
    let mut server = Server::start(&builder, echo_app()).await;
    let mut ws = ws_connect(server.addr, "/ws").await;
    echoes(&mut ws, WsMessage::text("before")).await;
    server.trigger_shutdown();
    echoes(&mut ws, WsMessage::text("during the drain")).await;
    server.join().await.expect("serve");
    // Cut: the next read ends (a close, an end or a reset, as the cut happened).
    match within("the cut", ws.next()).await {
        None | Some(Err(_)) => {}
        Some(Ok(m)) => panic!("message after the cut: {m:?}"),
    }
}

/// An upgraded connection is counted until it closes: with room for one
/// connection, a second client is served only once the WebSocket has ended.
#[tokio::test]
async fn an_upgraded_connection_holds_its_slot_until_it_closes() {
    let mut builder = Builder::new();
    builder.max_connections(1);
    let server = Server::start(&builder, echo_app()).await;
    let mut ws = ws_connect(server.addr, "/ws").await;
    echoes(&mut ws, WsMessage::text("one")).await;
    // The second client waits in the backlog while the WebSocket is open...
    let mut second = H1Conn::connect(server.addr).await;
    second.send("GET / HTTP/1.1\r\nHost: x\r\n\r\n").await;
    let waiting = tokio::spawn(async move { second.read_response().await });
    echoes(&mut ws, WsMessage::text("still the only one")).await;
    assert!(
        !waiting.is_finished(),
        "served while the websocket held the slot"
    );
    // ...and is served once it closes.
    close_handshake(ws).await;
    let res = within("the second client", waiting).await.expect("task");
    assert_eq!(res.body_str(), "plain\n");
}

/// A service that takes the upgraded transport and holds it without reading
/// until told to; then it reads once and reports what the read gave.
fn holder(
    go: std::sync::Arc<tokio::sync::Notify>,
    report: tokio::sync::mpsc::UnboundedSender<std::io::Result<usize>>,
) -> impl TestService<Full<Bytes>> {
    service_fn(move |mut req: Request<h2c_mux::Body>| {
        let on = hyper::upgrade::on(&mut req);
        let (go, report) = (go.clone(), report.clone());
        tokio::spawn(async move {
            let mut io = hyper_util::rt::TokioIo::new(on.await.expect("upgraded"));
            go.notified().await;
            let mut buf = [0u8; 16];
            let _ = report.send(io.read(&mut buf).await);
        });
        std::future::ready(
            Response::builder()
                .status(101)
                .header("upgrade", "websocket")
                .body(Full::default())
                .unwrap(),
        )
    })
}

/// The drain bound frees an upgraded connection's slot even while its service
/// never touches the transport: `serve` returns, and the transport's next use
/// fails.
#[tokio::test]
async fn the_drain_bound_cuts_an_upgraded_connection_its_service_never_reads() {
    let go = std::sync::Arc::new(tokio::sync::Notify::new());
    let (report, mut reports) = tokio::sync::mpsc::unbounded_channel();
    let mut builder = Builder::new();
    builder.drain_timeout(Duration::from_millis(200));
    let mut server = Server::start(&builder, holder(go.clone(), report)).await;
    let (head, conn) = exchange(
        server.addr,
        "GET / HTTP/1.1\r\nHost: x\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n",
    )
    .await;
    assert_eq!(head.status, 101);
    server.trigger_shutdown();
    server.join().await.expect("serve");
    go.notify_one();
    let read = within("the held transport's read", reports.recv())
        .await
        .expect("a report");
    let err = read.expect_err("a read after the cut fails");
    assert_eq!(err.kind(), std::io::ErrorKind::ConnectionAborted);
    // And the client sees the connection close.
    let (mut stream, _) = conn.into_parts();
    let mut rest = Vec::new();
    let _ = within("the close", stream.read_to_end(&mut rest)).await;
}

/// Once its service holds the transport, an upgraded connection has no task of
/// its own: an idle WebSocket costs the service's task and nothing beside it.
#[tokio::test]
async fn an_open_websocket_keeps_only_the_services_task() {
    // A current-thread runtime (the test's): the count is exact, and a task that
    // ends is gone from it before any other task runs.
    let tasks = || {
        tokio::runtime::Handle::current()
            .metrics()
            .num_alive_tasks()
    };
    let server = Server::start(&Builder::new(), echo_app()).await;
    let before = tasks();
    let mut ws = ws_connect(server.addr, "/ws").await;
    echoes(&mut ws, WsMessage::text("one")).await;
    assert_eq!(tasks() - before, 1, "tasks alive beside the accept loop");
    close_handshake(ws).await;
}

/// Served by `serve_connection`, the connection future lasts as long as the
/// WebSocket, and dropping it cuts the WebSocket.
#[tokio::test]
async fn dropping_the_connection_future_cuts_its_websocket() {
    let (io, conn) = common::server::duplex_conn_over(
        &Builder::new(),
        echo_app(),
        h2c_mux::Transport::Cleartext,
    );
    let (mut ws, _) = within(
        "websocket handshake",
        tokio_tungstenite::client_async("ws://example/ws", io),
    )
    .await
    .expect("websocket handshake");
    within("send", ws.send(WsMessage::text("one")))
        .await
        .expect("send");
    let back = within("echo", ws.next()).await.expect("a message");
    assert_eq!(back.expect("ok"), WsMessage::text("one"));
    assert!(
        !conn.is_finished(),
        "the connection ended with the websocket open"
    );
    conn.abort();
    match within("the cut", ws.next()).await {
        None | Some(Err(_)) => {}
        Some(Ok(m)) => panic!("message after the cut: {m:?}"),
    }
}

#[tokio::test]
async fn a_plain_get_of_the_demo_websocket_route_is_426() {
    let server = Server::demo().await;
    let mut conn = H1Conn::connect(server.addr).await;
    conn.send("GET /ws HTTP/1.1\r\nHost: x\r\n\r\n").await;
    let res = conn.read_response().await;
    assert_eq!(res.status, 426);
    assert_eq!(res.header("upgrade"), Some("websocket"));
}

/// Over TLS h2c never switches (ALPN chooses HTTP/2), but other upgrades do: a
/// WebSocket on a connection whose TLS handshake chose `http/1.1`, or no ALPN.
#[tokio::test]
async fn a_websocket_over_tls_switches() {
    for transport in [
        h2c_mux::Transport::tls(Some(b"http/1.1")),
        h2c_mux::Transport::tls(None),
    ] {
        let (io, conn) = common::server::duplex_conn_over(&Builder::new(), echo_app(), transport);
        let (mut ws, res) = within(
            "websocket handshake",
            tokio_tungstenite::client_async("wss://example/ws", io),
        )
        .await
        .expect("websocket handshake");
        assert_eq!(
            res.status(),
            StatusCode::SWITCHING_PROTOCOLS,
            "{transport:?}"
        );
        within("send", ws.send(WsMessage::text("over tls")))
            .await
            .expect("send");
        let back = within("echo", ws.next())
            .await
            .expect("a message")
            .expect("ok");
        assert_eq!(back, WsMessage::text("over tls"), "{transport:?}");
        within("close", ws.close(None)).await.expect("close");
        drop(ws);
        within("the connection to end", conn)
            .await
            .expect("join")
            .expect("a clean end");
    }
}
