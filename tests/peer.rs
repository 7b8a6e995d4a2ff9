//! The peer's address on a connection served by hand: `Builder::serve_connection_with_peer`
//! gives every request the `RemoteAddr` extension over HTTP/1.1, after the h2c
//! upgrade and with prior knowledge, and the upgrade policy sees it;
//! `serve_connection` gives none.
#![cfg(feature = "demo")] // the demo service is behind the `demo` feature (on by default)

mod common;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use common::h1::H1Conn;
use common::h2c::{raw_upgrade, upgrade_request, UPGRADE_GET};
use common::h2client::{get, h2_client, roundtrip};
use common::h2frame::request_fields;
use common::server::{quiet, ConnHandle};
use common::service::{recorder, Recorder, Requests};
use common::within;
use h2c_mux::demo::Demo;
use h2c_mux::{decline_proxied, Builder, DeclineReason, Protocol};
use tokio::io::DuplexStream;

/// The address the connections below claim to come from (RFC 5737 TEST-NET-1).
const PEER: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 10)), 4321);

/// The pipe each connection runs over: larger than anything in flight.
const PIPE: usize = 1 << 20;

/// One connection from [`PEER`] over an in-memory pipe, served by
/// `serve_connection_with_peer` on its own task, with a recording demo service.
fn conn_from_peer(builder: &Builder) -> (DuplexStream, ConnHandle, Requests) {
    let (svc, seen) = recorder(Demo::new());
    let (client, server) = tokio::io::duplex(PIPE);
    let conn = builder.serve_connection_with_peer(server, svc, PEER);
    (client, tokio::spawn(conn), seen)
}

#[tokio::test]
async fn serve_connection_with_peer_over_http1() {
    let (io, _conn, mut seen) = conn_from_peer(&quiet());
    let mut conn = H1Conn::new(io);
    for _ in 0..2 {
        // Every request of the connection, not only the first.
        conn.send("GET / HTTP/1.1\r\nHost: a\r\n\r\n").await;
        assert_eq!(conn.read_response().await.status, 200);
        let req = seen.next().await;
        assert_eq!(req.protocol, Some(Protocol::Http1));
        assert_eq!(req.remote, Some(PEER));
    }
}

#[tokio::test]
async fn serve_connection_with_peer_over_h2c_upgrade() {
    let (io, _conn, mut seen) = conn_from_peer(&quiet());
    let mut h2 = raw_upgrade(io, UPGRADE_GET).await;
    assert_eq!(h2.response(1).await.status, Some(200));
    h2.send_headers(3, &request_fields("GET", "/"), true).await;
    assert_eq!(h2.response(3).await.status, Some(200));
    // Stream 1 (the upgrade request, seen before the 101) and stream 3.
    for _ in 0..2 {
        let req = seen.next().await;
        assert_eq!(req.protocol, Some(Protocol::H2cUpgrade));
        assert_eq!(req.remote, Some(PEER));
    }
}

#[tokio::test]
async fn serve_connection_with_peer_over_prior_knowledge() {
    let (io, _conn, mut seen) = conn_from_peer(&quiet());
    let mut client = within("h2 handshake", h2_client(io))
        .await
        .expect("h2 handshake");
    let res = roundtrip(&mut client, get("/"), None).await;
    assert_eq!(res.status, 200);
    let req = seen.next().await;
    assert_eq!(req.protocol, Some(Protocol::H2PriorKnowledge));
    assert_eq!(req.remote, Some(PEER));
}

/// The upgrade policy runs on the request head with the peer in it, so
/// `decline_proxied` keeps a listed proxy's connection on HTTP/1.1.
#[tokio::test]
async fn serve_connection_with_peer_reaches_the_upgrade_policy() {
    let mut builder = quiet();
    builder.upgrade_policy(decline_proxied([PEER.ip()]));
    let (io, _conn, mut seen) = conn_from_peer(&builder);
    let mut conn = H1Conn::new(io);
    conn.send(upgrade_request("GET", "/", "", b"")).await;
    let res = conn.read_response().await;
    assert_eq!(res.status, 200, "answered over HTTP/1.1, not switched");
    let req = seen.next().await;
    assert_eq!(req.remote, Some(PEER));
    assert!(
        matches!(&req.declined, Some(DeclineReason::Policy(why)) if why.contains("listed proxy")),
        "declined: {:?}",
        req.declined
    );
}

#[tokio::test]
async fn serve_connection_gives_no_peer() {
    let (svc, mut seen): (Recorder<Demo>, _) = recorder(Demo::new());
    let (client, server) = tokio::io::duplex(PIPE);
    let _conn = tokio::spawn(quiet().serve_connection(server, svc));
    let mut conn = H1Conn::new(client);
    conn.send("GET / HTTP/1.1\r\nHost: a\r\n\r\n").await;
    assert_eq!(conn.read_response().await.status, 200);
    assert_eq!(seen.next().await.remote, None);
}
