//! `serve` on a `tokio::net::UnixListener`, and on a listener of the test's own
//! around one: HTTP/1.1, the h2c upgrade and prior knowledge over a Unix socket, the
//! same graceful shutdown and connection cap as TCP, and the Unix peer address
//! reaching a make-service (axum's `ConnectInfo` with a `Connected` of our own).
//!
//! The tests run on the current-thread runtime, where the accept loop, once it has
//! spawned a connection's task, goes on to its next `accept` call in the same poll,
//! before that task runs: the cap test relies on it (see there).
#![cfg(all(unix, feature = "demo"))] // Unix sockets; the demo service is behind `demo` (on by default)

mod common;

use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use axum::extract::connect_info::{ConnectInfo, Connected};
use axum::routing::get;
use axum::Router;
use common::h1::H1Conn;
use common::h2c::{raw_upgrade, UPGRADE_GET};
use common::h2client::assert_h2_hello_on;
use common::h2raw::{Event, H2Raw, RAW_SETTINGS};
use common::server::Server;
use common::service::recorder;
use common::within;
use h2c_mux::demo::Demo;
use h2c_mux::{Builder, Listener, RemoteAddr};
use tokio::net::unix::SocketAddr as UnixAddr;
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::mpsc;

/// A socket path of this test binary's own, removed again when dropped.
struct SocketPath(PathBuf);

impl SocketPath {
    fn new(name: &str) -> SocketPath {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let path =
            std::env::temp_dir().join(format!("h2c-mux-{}-{n}-{name}.sock", std::process::id()));
        let _ = std::fs::remove_file(&path);
        SocketPath(path)
    }

    fn bind(&self) -> UnixListener {
        UnixListener::bind(&self.0).expect("bind a unix socket")
    }
}

impl Drop for SocketPath {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

async fn connect(path: &Path) -> UnixStream {
    within("connect", UnixStream::connect(path))
        .await
        .expect("connect to the unix socket")
}

/// `GET /` over HTTP/1.1 on `conn`: the demo's hello, and the connection stays open.
async fn h1_hello(conn: &mut H1Conn<UnixStream>) {
    conn.send("GET / HTTP/1.1\r\nHost: a\r\n\r\n").await;
    let res = conn.read_response().await;
    assert_eq!(res.status, 200);
    assert_eq!(res.body_str(), "hello world\n");
    assert!(!res.closes());
}

#[tokio::test]
async fn unix_listener_over_http1() {
    let path = SocketPath::new("http1");
    let (svc, mut seen) = recorder(Demo::new());
    let server = Server::serve(path.bind(), &Builder::new(), svc);
    let mut conn = H1Conn::new(connect(&path.0).await);
    h1_hello(&mut conn).await;
    h1_hello(&mut conn).await;
    // A Unix peer has no socket address: no RemoteAddr.
    assert_eq!(seen.next().await.remote, None);
    drop(conn);
    server.stop().await.expect("serve result");
}

#[tokio::test]
async fn unix_listener_over_prior_knowledge() {
    let path = SocketPath::new("prior-knowledge");
    let server = Server::serve(path.bind(), &Builder::new(), Demo::new());
    assert_h2_hello_on(connect(&path.0).await).await;
    server.stop().await.expect("serve result");
}

#[tokio::test]
async fn unix_listener_over_h2c_upgrade() {
    let path = SocketPath::new("upgrade");
    let server = Server::serve(path.bind(), &Builder::new(), Demo::new());
    let mut h2 = raw_upgrade(connect(&path.0).await, UPGRADE_GET).await;
    let res = h2.response(1).await;
    assert_eq!(res.status, Some(200));
    assert_eq!(res.body_str(), "hello world\n");
    drop(h2);
    server.stop().await.expect("serve result");
}

/// The shutdown future ends `serve` as on TCP: idle HTTP/1.1 connections close,
/// HTTP/2 ones get a GOAWAY and close, `serve` returns, and the socket accepts no
/// more.
#[tokio::test]
async fn unix_listener_graceful_shutdown() {
    let path = SocketPath::new("shutdown");
    let mut server = Server::serve(path.bind(), &Builder::new(), Demo::new());
    let mut h1 = H1Conn::new(connect(&path.0).await);
    h1_hello(&mut h1).await;
    let mut h2 = H2Raw::open(connect(&path.0).await, RAW_SETTINGS).await;

    server.trigger_shutdown();
    h1.expect_closed().await;
    let events = h2.read_until_closed().await;
    assert!(
        events
            .iter()
            .any(|e| matches!(e, Event::GoAway { code: 0, .. })),
        "no graceful GOAWAY before close: {events:?}"
    );
    // The server closes its side first and lingers until ours closes too.
    drop((h1, h2));
    server.join().await.expect("serve result");
    // The listener is gone: the path refuses connections.
    let refused = UnixStream::connect(&path.0).await;
    assert!(refused.is_err(), "connected after serve returned");
}

/// A [`Listener`] around a Unix one that reports, at each call of `accept`, whether
/// the test had closed its first client by then.
struct Watched {
    inner: UnixListener,
    first_closed: Arc<AtomicBool>,
    calls: mpsc::UnboundedSender<bool>,
}

impl Listener for Watched {
    type Io = UnixStream;
    type Addr = UnixAddr;

    async fn accept(&mut self) -> io::Result<(UnixStream, UnixAddr)> {
        let _ = self.calls.send(self.first_closed.load(Ordering::SeqCst));
        Listener::accept(&mut self.inner).await
    }

    fn local_addr(&self) -> io::Result<UnixAddr> {
        Listener::local_addr(&self.inner)
    }
}

/// The next call of [`Watched::accept`]: whether the first client had closed.
async fn next_call(calls: &mut mpsc::UnboundedReceiver<bool>) -> bool {
    within("a call of accept", calls.recv())
        .await
        .expect("listener dropped")
}

/// With `max_connections(1)`, a second client waits in the backlog until the first
/// closes: the accept loop calls `accept` again only after the first connection
/// ended, and only then is the second client's request answered.
///
/// Without the cap, the loop would call `accept` a second time in the very poll that
/// spawned the first connection's task (current-thread runtime), so before the first
/// client could read its response: the check after that response catches it, with
/// no timing involved.
#[tokio::test(flavor = "current_thread")]
async fn unix_listener_connection_cap() {
    let path = SocketPath::new("cap");
    let first_closed = Arc::new(AtomicBool::new(false));
    let (tx, mut calls) = mpsc::unbounded_channel();
    let listener = Watched {
        inner: path.bind(),
        first_closed: first_closed.clone(),
        calls: tx,
    };
    let mut builder = Builder::new();
    builder.max_connections(1);
    let server = Server::serve(listener, &builder, Demo::new());
    assert!(!next_call(&mut calls).await, "the first accept");

    let mut first = H1Conn::new(connect(&path.0).await);
    h1_hello(&mut first).await;
    assert!(
        calls.try_recv().is_err(),
        "accept was called again while the first connection is open"
    );

    // The second client connects and asks; it waits in the backlog.
    let mut second = H1Conn::new(connect(&path.0).await);
    second.send("GET / HTTP/1.1\r\nHost: a\r\n\r\n").await;

    first_closed.store(true, Ordering::SeqCst);
    drop(first);
    assert!(
        next_call(&mut calls).await,
        "the second accept came before the first client closed"
    );
    let res = second.read_response().await;
    assert_eq!(res.status, 200);
    assert_eq!(res.body_str(), "hello world\n");
    drop(second);
    server.stop().await.expect("serve result");
}

/// What the handler learns of a Unix peer through axum's `ConnectInfo`.
#[derive(Clone, Debug)]
struct UnixPeer {
    unnamed: bool,
}

impl Connected<UnixAddr> for UnixPeer {
    fn connect_info(addr: UnixAddr) -> Self {
        UnixPeer {
            unnamed: addr.is_unnamed(),
        }
    }
}

/// A make-service is called with the listener's own address type: over a Unix
/// socket axum's `ConnectInfo` works with a `Connected<tokio::net::unix::SocketAddr>`.
#[tokio::test]
async fn unix_listener_peer_reaches_a_make_service() {
    let path = SocketPath::new("connect-info");
    let app = Router::new().route(
        "/peer",
        get(
            |ConnectInfo(peer): ConnectInfo<UnixPeer>, req: axum::extract::Request| async move {
                let remote = req.extensions().get::<RemoteAddr>();
                format!("unnamed={} remote-addr={remote:?}", peer.unnamed)
            },
        ),
    );
    let server = Server::serve(
        path.bind(),
        &Builder::new(),
        app.into_make_service_with_connect_info::<UnixPeer>(),
    );
    let mut conn = H1Conn::new(connect(&path.0).await);
    conn.send("GET /peer HTTP/1.1\r\nHost: a\r\n\r\n").await;
    let res = conn.read_response().await;
    assert_eq!(res.status, 200);
    // A client socket that was never bound is unnamed.
    assert_eq!(res.body_str(), "unnamed=true remote-addr=None");
    drop(conn);
    server.stop().await.expect("serve result");
}
