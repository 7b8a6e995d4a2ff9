//! Connections over TLS (RFC 9113 §3.2, §3.3): what the transport negotiated
//! decides how a connection starts.
//!
//! - With the real curl against `examples/tls.rs` (included here, so the test
//!   runs the example's own listeners): ALPN `h2` is HTTP/2 (`Protocol::H2Tls`),
//!   ALPN `http/1.1` is HTTP/1.1, `Upgrade: h2c` over TLS gets no `101`, and the
//!   example's cleartext listener still upgrades.
//! - Without TLS, the decision itself: a pipe served with
//!   `serve_connection_with_transport`, and a listener whose `transport` says
//!   TLS, each standing for a TLS connection.

mod common;

#[allow(dead_code)] // the example's `main` and its command line are not used here
#[path = "../examples/tls.rs"]
mod example;

use std::io;
use std::net::SocketAddr;

use bytes::Bytes;
use common::curl::{assert_upgraded, curl};
use common::h1::H1Conn;
use common::h2c::{assert_switching_protocols, upgrade_request};
use common::h2client::{get, h2_client, roundtrip};
use common::server::{conn_result, duplex_conn_over, loopback, Server};
use common::service::{error_kind, inspect, recorder, text};
use common::within;
use h2c_mux::{Builder, DeclineReason, Listener, Protocol, Transport};
use http::StatusCode;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;

/// The HTTP/2 client preface (RFC 9113 §3.4).
const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// `examples/tls.rs` serving its Router on a TLS and a cleartext listener on
/// loopback, with a fresh self-signed certificate.
struct Example {
    tls: SocketAddr,
    plain: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<io::Result<()>>,
}

impl Example {
    async fn start() -> Example {
        let (chain, key) = example::self_signed().expect("self-signed certificate");
        let config = example::tls_config(chain, key).expect("tls config");
        let tcp = loopback().await;
        let tls = tcp.local_addr().expect("tls addr");
        let listener = example::TlsListener::new(tcp, TlsAcceptor::from(config)).expect("tls");
        let plain_listener = loopback().await;
        let plain = plain_listener.local_addr().expect("plain addr");
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let shutdown = async {
                let _ = stopped.await;
            };
            example::serve_both(
                &Builder::new(),
                listener,
                plain_listener,
                example::app(),
                shutdown,
            )
            .await
        });
        Example {
            tls,
            plain,
            stop: Some(stop),
            task,
        }
    }

    fn https(&self) -> String {
        format!("https://{}/", self.tls)
    }

    fn http(&self) -> String {
        format!("http://{}/", self.plain)
    }

    /// Stops both listeners and waits for `serve_both` to return.
    async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        within("serve_both to return", &mut self.task)
            .await
            .expect("serve task panicked")
            .expect("serve_both");
    }
}

/// curl's `--write-out` after the transfer: the HTTP version and status of its
/// answer, stable across curl versions, unlike the wording of its trace.
const VERSION_AND_STATUS: &str = "[%{http_version} %{http_code}]";

#[tokio::test]
async fn curl_http2_over_tls_is_http2_chosen_by_alpn() {
    let server = Example::start().await;
    let out = curl(&["-k", "--http2", "-w", VERSION_AND_STATUS, &server.https()]).await;
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "hello over h2-tls\n[2 200]"
    );
    assert!(!out.stderr.contains(" 101"), "{}", out.stderr);
    server.stop().await;
}

#[tokio::test]
async fn curl_http1_over_tls_is_http1() {
    let server = Example::start().await;
    let out = curl(&["-k", "--http1.1", "-w", VERSION_AND_STATUS, &server.https()]).await;
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "hello over http/1.1\n[1.1 200]"
    );
    server.stop().await;
}

#[tokio::test]
async fn curl_h2c_upgrade_over_tls_gets_no_101_and_an_http1_answer() {
    let server = Example::start().await;
    let out = curl(&[
        "-k",
        "--http1.1",
        "-H",
        "Upgrade: h2c",
        "-H",
        "HTTP2-Settings: AAMAAABkAAQAoAAAAAIAAAAA",
        "-H",
        "Connection: Upgrade, HTTP2-Settings",
        "-w",
        VERSION_AND_STATUS,
        &server.https(),
    ])
    .await;
    assert!(out.stderr.contains("> Upgrade: h2c"), "{}", out.stderr);
    assert!(!out.stderr.contains("< HTTP/1.1 101"), "{}", out.stderr);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "hello over http/1.1\n[1.1 200]"
    );
    server.stop().await;
}

#[tokio::test]
async fn curl_http2_on_the_cleartext_listener_upgrades() {
    let server = Example::start().await;
    let out = curl(&["--http2", "-w", VERSION_AND_STATUS, &server.http()]).await;
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "hello over h2c-upgrade\n[2 200]"
    );
    assert_upgraded(&out.stderr);
    server.stop().await;
}

#[tokio::test]
async fn curl_prior_knowledge_on_the_cleartext_listener() {
    let server = Example::start().await;
    let out = curl(&[
        "--http2-prior-knowledge",
        "-w",
        VERSION_AND_STATUS,
        &server.http(),
    ])
    .await;
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "hello over h2-prior-knowledge\n[2 200]"
    );
    server.stop().await;
}

#[tokio::test]
async fn a_client_stalled_in_its_handshake_does_not_hold_up_the_next() {
    let server = Example::start().await;
    // Connected, and silent: its handshake waits on a task of its own.
    let mut stalled = within("connect", TcpStream::connect(server.tls))
        .await
        .expect("connect");
    let out = curl(&["-k", "--http2", &server.https()]).await;
    assert_eq!(out.stdout, b"hello over h2-tls\n");
    stalled.shutdown().await.expect("close the stalled client");
    server.stop().await;
}

/// What each TLS connection that did not choose `h2` may be: ALPN `http/1.1`,
/// another protocol, or none.
fn tls_without_h2() -> [Transport; 3] {
    [
        Transport::tls(Some(b"http/1.1")),
        Transport::tls(Some(b"acme-tls/1")),
        Transport::tls(None),
    ]
}

#[tokio::test]
async fn over_tls_an_h2c_upgrade_is_declined_and_its_request_answered_over_http1() {
    for transport in tls_without_h2() {
        let (tx, mut seen) = mpsc::unbounded_channel();
        let (io, conn) = duplex_conn_over(&Builder::new(), inspect(tx), transport);
        let mut client = H1Conn::new(io);
        let body = b"the whole body, over http/1.1";
        let mut request = upgrade_request("POST", "/upload", "", body);
        // Pipelined behind it: the connection stays HTTP/1.1.
        request.extend_from_slice(b"GET /next HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        client.send(&request).await;
        let res = client.read_response().await;
        assert_eq!(res.status, 200, "{transport:?}: {res:?}");
        assert_eq!(res.version, "HTTP/1.1");
        let upload = seen.recv().await.expect("the upload reached the service");
        assert_eq!(upload.body.as_deref(), Ok(&body[..]), "{transport:?}");
        assert_eq!(
            upload.declined,
            Some(DeclineReason::Tls.to_string()),
            "{transport:?}"
        );
        assert_eq!(upload.protocol, Some(Protocol::Http1));
        let next = client.read_response().await;
        assert_eq!(next.status, 200, "{transport:?}: {next:?}");
        assert_eq!(seen.recv().await.expect("next").uri, "/next");
        client.expect_closed().await;
        conn_result(conn).await.expect("a clean close");
    }
}

#[tokio::test]
async fn over_tls_an_upgrade_to_h2_is_declined_for_tls_too() {
    // `Upgrade: h2` names HTTP/2 over TLS, yet over TLS too only ALPN chooses it.
    let (svc, mut seen) = recorder(common::service::answer(|_| {
        text(StatusCode::OK, "over http/1.1\n")
    }));
    let (io, _conn) = duplex_conn_over(&Builder::new(), svc, Transport::tls(Some(b"http/1.1")));
    let mut client = H1Conn::new(io);
    client
        .send(
            "GET / HTTP/1.1\r\nHost: x\r\nConnection: Upgrade, HTTP2-Settings\r\n\
             Upgrade: h2\r\nHTTP2-Settings: AAMAAABk\r\n\r\n",
        )
        .await;
    let res = client.read_response().await;
    assert_eq!(res.status, 200, "{res:?}");
    assert_eq!(seen.next().await.declined, Some(DeclineReason::Tls));
}

#[tokio::test]
async fn over_tls_without_h2_the_preface_is_answered_505() {
    for transport in tls_without_h2() {
        let (svc, seen) = recorder(common::service::answer(|_| text(StatusCode::OK, "never\n")));
        let (io, conn) = duplex_conn_over(&Builder::new(), svc, transport);
        let mut client = H1Conn::new(io);
        client.send(PREFACE).await;
        let res = client.read_response().await;
        assert_eq!(res.status, 505, "{transport:?}: {res:?}");
        assert!(res.closes(), "{res:?}");
        client.expect_closed().await;
        // Closed on this side too, so the server's close need not linger.
        drop(client);
        let e = conn_result(conn).await.expect_err("refused");
        assert_eq!(error_kind(&e), "parse");
        seen.assert_no_more().await;
    }
}

#[tokio::test]
async fn over_tls_alpn_h2_is_http2_from_the_first_byte() {
    // Prior knowledge and the upgrade concern cleartext: off, ALPN still decides.
    let mut builder = Builder::new();
    builder.prior_knowledge(false).h2c_upgrade(false);
    let (svc, mut seen) = recorder(common::service::answer(|req| {
        let protocol = Protocol::of(req).map_or("none", |p| p.as_str());
        text(StatusCode::OK, Bytes::from(format!("{protocol}\n")))
    }));
    let (io, conn) = duplex_conn_over(&builder, svc, Transport::tls(Some(b"h2")));
    let mut send = within("h2 handshake", h2_client(io))
        .await
        .expect("h2 handshake");
    let reply = roundtrip(&mut send, get("/"), None).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.body, b"h2-tls\n");
    assert_eq!(seen.next().await.protocol, Some(Protocol::H2Tls));
    drop(send);
    conn_result(conn).await.expect("a clean close");
}

#[tokio::test]
async fn over_tls_alpn_h2_answers_http1_with_no_http1() {
    let (io, conn) = duplex_conn_over(
        &Builder::new(),
        common::service::answer(|_| text(StatusCode::OK, "never\n")),
        Transport::tls(Some(b"h2")),
    );
    let mut client = H1Conn::new(io);
    client
        .send("GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await;
    let got = client.read_to_eof().await;
    assert!(
        !got.starts_with(b"HTTP/"),
        "an HTTP/1 answer on an h2 connection: {:?}",
        String::from_utf8_lossy(&got)
    );
    let e = conn_result(conn).await.expect_err("not an HTTP/2 preface");
    assert_eq!(error_kind(&e), "h2");
}

#[tokio::test]
async fn a_cleartext_transport_still_upgrades() {
    let (svc, mut seen) = recorder(common::service::answer(|_| text(StatusCode::OK, "hello\n")));
    let (io, _conn) = duplex_conn_over(&Builder::new(), svc, Transport::Cleartext);
    let mut client = H1Conn::new(io);
    client.send(upgrade_request("GET", "/", "", b"")).await;
    let res = client.read_head().await;
    assert_switching_protocols(&res);
    assert_eq!(seen.next().await.protocol, Some(Protocol::H2cUpgrade));
}

/// TCP whose `transport` says TLS with `alpn`, as a listener that terminates TLS
/// would: what it reports reaches every connection `serve` accepts from it.
struct SaysTls {
    tcp: TcpListener,
    alpn: &'static [u8],
}

impl Listener for SaysTls {
    type Io = TcpStream;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> io::Result<(TcpStream, SocketAddr)> {
        Listener::accept(&mut self.tcp).await
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.tcp.local_addr()
    }

    fn transport(&self, _: &TcpStream) -> Transport {
        Transport::tls(Some(self.alpn))
    }
}

#[tokio::test]
async fn serve_starts_each_connection_as_its_listener_says() {
    let (svc, mut seen) = recorder(common::service::answer(|_| text(StatusCode::OK, "hello\n")));
    let http1 = SaysTls {
        tcp: loopback().await,
        alpn: b"http/1.1",
    };
    let server = Server::serve(http1, &Builder::new(), svc.clone());
    let mut client = H1Conn::connect(server.addr).await;
    client.send(upgrade_request("GET", "/", "", b"")).await;
    let res = client.read_response().await;
    assert_eq!(res.status, 200, "{res:?}");
    let first = seen.next().await;
    assert_eq!(first.declined, Some(DeclineReason::Tls));
    assert_eq!(first.remote.map(|a| a.ip()), Some([127, 0, 0, 1].into()));
    drop(client);
    server.stop().await.expect("serve");

    let h2 = SaysTls {
        tcp: loopback().await,
        alpn: b"h2",
    };
    let server = Server::serve(h2, &Builder::new(), svc);
    let tcp = within("connect", TcpStream::connect(server.addr))
        .await
        .expect("connect");
    let mut send = within("h2 handshake", h2_client(tcp))
        .await
        .expect("h2 handshake");
    let reply = roundtrip(&mut send, get("/"), None).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(seen.next().await.protocol, Some(Protocol::H2Tls));
    drop(send);
    server.stop().await.expect("serve");
}
