//! An axum `Router`, served as it is by `Builder::serve`, over HTTP/1.1, the h2c
//! upgrade and HTTP/2 with prior knowledge; and served through
//! `into_make_service_with_connect_info`, whose `ConnectInfo` extractor sees the
//! peer on all three, as with `axum::serve`.

mod common;

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, Path};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use axum::Router;
use bytes::Bytes;
use common::h1::H1Conn;
use common::h2c::{upgrade, upgrade_on, upgrade_request, CLIENT_SETTINGS};
use common::h2client::{get as h2_get, h2_client, h2_connect, request, roundtrip};
use common::h2frame::request_fields;
use common::server::{loopback, Server};
use common::within;
use h2c_mux::{Builder, Protocol, RemoteAddr};
use http::Method;
use tokio::net::TcpStream;

/// Routes with a path parameter and a plain-text body; the handler for `/proto`
/// reports the protocol extension the server put on the request.
fn router() -> Router {
    Router::new()
        .route("/", get(|| async { "axum root\n" }))
        .route(
            "/hello/{name}",
            get(|Path(name): Path<String>| async move { format!("hello, {name}!\n") }),
        )
        .route(
            "/shout",
            post(|body: String| async move { (StatusCode::CREATED, body.to_uppercase()) }),
        )
        .route(
            "/proto",
            get(|req: axum::extract::Request| async move {
                let proto = Protocol::of(&req);
                format!("{proto:?}")
            }),
        )
        .route(
            "/headers",
            get(|headers: HeaderMap| async move {
                headers
                    .get("x-probe")
                    .map(|v| v.to_str().unwrap_or("").to_string())
                    .unwrap_or_default()
            }),
        )
}

async fn start() -> Server {
    Server::start(&Builder::new(), router()).await
}

#[tokio::test]
async fn axum_router_over_http1() {
    let server = start().await;
    let mut conn = H1Conn::connect(server.addr).await;

    conn.send("GET /hello/world HTTP/1.1\r\nHost: a\r\n\r\n")
        .await;
    let res = conn.read_response().await;
    assert_eq!(res.status, 200);
    assert_eq!(
        res.header("content-type"),
        Some("text/plain; charset=utf-8")
    );
    assert_eq!(res.body_str(), "hello, world!\n");

    conn.send("POST /shout HTTP/1.1\r\nHost: a\r\nContent-Type: text/plain\r\nContent-Length: 9\r\n\r\nquiet now")
        .await;
    let res = conn.read_response().await;
    assert_eq!(res.status, 201);
    assert_eq!(res.body_str(), "QUIET NOW");

    conn.send("GET /proto HTTP/1.1\r\nHost: a\r\n\r\n").await;
    assert_eq!(conn.read_response().await.body_str(), "Some(Http1)");

    conn.send("GET /missing HTTP/1.1\r\nHost: a\r\n\r\n").await;
    assert_eq!(conn.read_response().await.status, 404);
}

#[tokio::test]
async fn axum_router_over_h2c_upgrade() {
    let server = start().await;
    // The upgrade request's own fields reach the handler on stream 1.
    let (_, mut h2) = upgrade(
        server.addr,
        &upgrade_request("GET", "/headers", "X-Probe: seen on stream 1\r\n", b""),
    )
    .await;
    h2.send_preface(CLIENT_SETTINGS).await;
    let res = h2.response(1).await;
    assert_eq!(res.status, Some(200));
    assert_eq!(res.body_str(), "seen on stream 1");

    h2.send_headers(3, &request_fields("GET", "/hello/upgrade"), true)
        .await;
    assert_eq!(h2.response(3).await.body_str(), "hello, upgrade!\n");

    let mut post = request_fields("POST", "/shout");
    post.push(("content-type", "text/plain"));
    h2.send_headers(5, &post, false).await;
    h2.send_data(5, b"over h2c", true).await;
    let res = h2.response(5).await;
    assert_eq!(res.status, Some(201));
    assert_eq!(res.body_str(), "OVER H2C");

    h2.send_headers(7, &request_fields("GET", "/proto"), true)
        .await;
    assert_eq!(h2.response(7).await.body_str(), "Some(H2cUpgrade)");
}

#[tokio::test]
async fn axum_router_over_prior_knowledge() {
    let server = start().await;
    let mut client = h2_connect(server.addr).await;

    async fn call(
        client: &mut h2::client::SendRequest<Bytes>,
        method: Method,
        path: &str,
        body: Option<&'static [u8]>,
    ) -> (u16, String) {
        let res = roundtrip(client, request(method, path), body.map(Bytes::from_static)).await;
        (
            res.status.as_u16(),
            String::from_utf8(res.body).expect("utf-8"),
        )
    }

    assert_eq!(
        call(&mut client, Method::GET, "/hello/h2", None).await,
        (200, "hello, h2!\n".to_string())
    );
    assert_eq!(
        call(
            &mut client,
            Method::POST,
            "/shout",
            Some(b"prior knowledge")
        )
        .await,
        (201, "PRIOR KNOWLEDGE".to_string())
    );
    assert_eq!(
        call(&mut client, Method::GET, "/proto", None).await,
        (200, "Some(H2PriorKnowledge)".to_string())
    );
    assert_eq!(
        call(&mut client, Method::GET, "/", None).await,
        (200, "axum root\n".to_string())
    );
}

/// `/peer` answers with what the `ConnectInfo` extractor and the `RemoteAddr`
/// extension say of the peer: `connect-info=<addr> remote-addr=<addr>`.
fn peer_router() -> Router {
    Router::new().route(
        "/peer",
        get(
            |ConnectInfo(peer): ConnectInfo<SocketAddr>, req: axum::extract::Request| async move {
                let remote = req.extensions().get::<RemoteAddr>().map(|a| a.0);
                format!("connect-info={peer} remote-addr={remote:?}")
            },
        ),
    )
}

/// `h2c_mux::serve`-style serving of the router's connect-info make-service.
async fn start_with_connect_info() -> Server {
    Server::serve(
        loopback().await,
        &Builder::new(),
        peer_router().into_make_service_with_connect_info::<SocketAddr>(),
    )
}

/// A new client connection and its own address, which the server sees as the peer.
async fn connect(addr: SocketAddr) -> (TcpStream, String) {
    let tcp = within("connect", TcpStream::connect(addr))
        .await
        .expect("connect");
    let me = tcp.local_addr().expect("client address");
    (tcp, format!("connect-info={me} remote-addr=Some({me})"))
}

#[tokio::test]
async fn axum_connect_info_over_http1() {
    let server = start_with_connect_info().await;
    let (tcp, expected) = connect(server.addr).await;
    let mut conn = H1Conn::new(tcp);
    for _ in 0..2 {
        // Every request on the connection, not only the first.
        conn.send("GET /peer HTTP/1.1\r\nHost: a\r\n\r\n").await;
        let res = conn.read_response().await;
        assert_eq!(res.status, 200);
        assert_eq!(res.body_str(), expected);
    }
}

#[tokio::test]
async fn axum_connect_info_over_h2c_upgrade() {
    let server = start_with_connect_info().await;
    let (tcp, expected) = connect(server.addr).await;
    let (_, mut h2) = upgrade_on(tcp, &upgrade_request("GET", "/peer", "", b"")).await;
    h2.send_preface(CLIENT_SETTINGS).await;
    // Stream 1 is the upgrade request itself; stream 3 a later one.
    let res = h2.response(1).await;
    assert_eq!(res.status, Some(200));
    assert_eq!(res.body_str(), expected);
    h2.send_headers(3, &request_fields("GET", "/peer"), true)
        .await;
    assert_eq!(h2.response(3).await.body_str(), expected);
}

#[tokio::test]
async fn axum_connect_info_over_prior_knowledge() {
    let server = start_with_connect_info().await;
    let (tcp, expected) = connect(server.addr).await;
    let mut client = within("h2 handshake", h2_client(tcp))
        .await
        .expect("h2 handshake");
    let res = roundtrip(&mut client, h2_get("/peer"), None).await;
    assert_eq!(res.status, 200);
    assert_eq!(String::from_utf8(res.body).expect("utf-8"), expected);
}

/// Each connection's make-service call sees its own peer: two clients, two answers.
#[tokio::test]
async fn axum_connect_info_is_per_connection() {
    let server = start_with_connect_info().await;
    let (a, expected_a) = connect(server.addr).await;
    let (b, expected_b) = connect(server.addr).await;
    assert_ne!(expected_a, expected_b);
    let (mut a, mut b) = (H1Conn::new(a), H1Conn::new(b));
    b.send("GET /peer HTTP/1.1\r\nHost: a\r\n\r\n").await;
    a.send("GET /peer HTTP/1.1\r\nHost: a\r\n\r\n").await;
    assert_eq!(b.read_response().await.body_str(), expected_b);
    assert_eq!(a.read_response().await.body_str(), expected_a);
}
