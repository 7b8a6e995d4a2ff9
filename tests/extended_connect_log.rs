//! What an RFC 8441 tunnel logs: its opening and its end in its request's span,
//! and its count in the warning of a connection the drain bound cuts. A test
//! binary of its own, whose one subscriber sees every test's events (see
//! `common::log`).

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use common::h2client::{get, h2_client, read_to_end, roundtrip};
use common::log::captured;
use common::server::Server;
use common::tunnel::{echo_service, enabled, open_tunnel, report};
use common::within;
use tokio::net::TcpStream;
use tokio::sync::mpsc;

/// A prior-knowledge `h2` client of `server` past the server's SETTINGS, and its
/// address: the peer its connection's log lines name.
async fn client(server: &Server) -> (h2::client::SendRequest<Bytes>, SocketAddr) {
    let tcp = within("connect", TcpStream::connect(server.addr))
        .await
        .expect("connect");
    let peer = tcp.local_addr().expect("local addr");
    let mut client = within("h2 handshake", h2_client(tcp))
        .await
        .expect("handshake");
    assert_eq!(roundtrip(&mut client, get("/"), None).await.status, 200);
    (client, peer)
}

/// The first of `lines` that contains `what`.
fn line<'a>(lines: &'a [String], what: &str) -> &'a str {
    lines
        .iter()
        .find(|l| l.contains(what))
        .unwrap_or_else(|| panic!("no {what:?} in:\n{}", lines.join("\n")))
}

#[tokio::test]
async fn a_tunnel_is_logged_in_its_requests_span() {
    let log = captured();
    let (tx, mut reports) = mpsc::unbounded_channel();
    let server = Server::start(&enabled(), echo_service(tx)).await;
    let (client, peer) = client(&server).await;
    let (res, mut send) = open_tunnel(&client, "echo").await;
    send.send_data(Bytes::from_static(b"12345"), true)
        .expect("data with END_STREAM");
    let echoed = within("the echo", read_to_end(&mut res.into_body()))
        .await
        .expect("echo");
    assert_eq!(echoed, b"12345");
    // The tunnel is dropped, and its end logged, before its task reports.
    report(&mut reports).await.expect("the tunnel opened");

    let lines = log.lines_of(peer);
    let open = line(&lines, "tunnel open");
    assert!(
        open.contains("request{method=CONNECT path=/echo stream=3}"),
        "{open}"
    );
    assert!(
        open.contains("protocol=echo") && open.contains("status=200"),
        "{open}"
    );
    let closed = line(&lines, "tunnel closed");
    assert!(
        closed.contains("request{method=CONNECT path=/echo stream=3}"),
        "{closed}"
    );
    assert!(
        closed.contains("read=5") && closed.contains("written=5") && closed.contains("ended=true"),
        "{closed}"
    );
}

#[tokio::test]
async fn the_drain_bound_cuts_an_open_tunnel_and_says_so() {
    let log = captured();
    let (tx, mut reports) = mpsc::unbounded_channel();
    let mut builder = enabled();
    builder.drain_timeout(Duration::from_millis(100));
    let mut server = Server::start(&builder, echo_service(tx)).await;
    let (client, peer) = client(&server).await;
    let (_res, _send) = open_tunnel(&client, "echo").await;

    // The client keeps the tunnel open: only the drain bound ends it.
    server.trigger_shutdown();
    server.join().await.expect("serve");
    let ended = report(&mut reports).await.expect("the tunnel opened");
    assert_eq!(ended.read, 0);
    assert!(ended.end.is_err(), "{ended:?}");
    let lines = log.lines_of(peer);
    let cut = line(&lines, "http/2 connection cut with streams unfinished");
    assert!(cut.contains("tunnels=1"), "{cut}");
    assert!(cut.contains("streams=0"), "{cut}");
}
