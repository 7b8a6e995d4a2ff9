//! Graceful shutdown through `Builder::serve`'s shutdown future: in-flight requests
//! finish (HTTP/1.1 with `connection: close`, HTTP/2 after GOAWAY), idle
//! connections close, the listener stops accepting, and `serve` returns.
//!
//! The tests know the server has taken the shutdown in hand without sleeping:
//! the shutdown future reports `Fired` when `serve` completes it, and the gated
//! service reports every poll of its response future. `serve` signals its
//! connections in the same poll in which its shutdown future completes, and each
//! connection task acts on that signal in the first poll after it, so a `Polled`
//! event seen after `Fired` proves the connection has started its shutdown before
//! the gate opens. (The tests run on the current-thread runtime, where no other
//! task runs between those two steps of `serve`.)
#![cfg(feature = "demo")] // the demo service is behind the `demo` feature (on by default)

mod common;

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use bytes::Bytes;
use common::h1::H1Conn;
use common::h2c::{upgrade, upgrade_request, CLIENT_SETTINGS};
use common::h2frame::request_fields;
use common::h2raw::{Event, H2Raw};
use common::server::{loopback, serve_on, Server};
use common::within;
use h2c_mux::{Body, Builder};
use http::{Request, Response};
use http_body_util::Full;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};

#[derive(Debug, PartialEq, Eq)]
enum Ev {
    /// The service was called for this path.
    Called(String),
    /// The gated response future was polled.
    Polled,
    /// `serve` completed its shutdown future.
    Fired,
}

/// `/gate` answers `released\n` once the test opens the gate; any other path
/// answers `quick\n` at once.
#[derive(Clone)]
struct Gate {
    events: mpsc::UnboundedSender<Ev>,
    release: Arc<Mutex<Option<oneshot::Receiver<()>>>>,
}

type GateFuture = Pin<Box<dyn Future<Output = Result<Response<Full<Bytes>>, Infallible>> + Send>>;

impl tower_service::Service<Request<Body>> for Gate {
    type Response = Response<Full<Bytes>>;
    type Error = Infallible;
    type Future = GateFuture;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<Body>) -> GateFuture {
        let path = req.uri().path().to_string();
        let _ = self.events.send(Ev::Called(path.clone()));
        if path != "/gate" {
            return Box::pin(std::future::ready(Ok(Response::new(Full::new(
                Bytes::from_static(b"quick\n"),
            )))));
        }
        let mut release = self
            .release
            .lock()
            .expect("lock")
            .take()
            .expect("one gated request per test");
        let events = self.events.clone();
        Box::pin(std::future::poll_fn(move |cx| {
            let _ = events.send(Ev::Polled);
            match Pin::new(&mut release).poll(cx) {
                Poll::Ready(_) => Poll::Ready(Ok(Response::new(Full::new(Bytes::from_static(
                    b"released\n",
                ))))),
                Poll::Pending => Poll::Pending,
            }
        }))
    }
}

/// A server running [`Gate`], with the handles to drive a shutdown.
struct Gated {
    addr: std::net::SocketAddr,
    events: mpsc::UnboundedReceiver<Ev>,
    stop: Option<oneshot::Sender<()>>,
    open: Option<oneshot::Sender<()>>,
    serve: tokio::task::JoinHandle<io::Result<()>>,
}

impl Gated {
    async fn start() -> Gated {
        Gated::start_with(&Builder::new()).await
    }

    async fn start_with(builder: &Builder) -> Gated {
        let (events_tx, events) = mpsc::unbounded_channel();
        let (open, release) = oneshot::channel();
        let gate = Gate {
            events: events_tx.clone(),
            release: Arc::new(Mutex::new(Some(release))),
        };
        let (stop, stopped) = oneshot::channel::<()>();
        let shutdown = async move {
            let _ = stopped.await;
            let _ = events_tx.send(Ev::Fired);
        };
        let (addr, serve) = serve_on(loopback().await, builder, gate, shutdown);
        Gated {
            addr,
            events,
            stop: Some(stop),
            open: Some(open),
            serve,
        }
    }

    async fn next_event(&mut self) -> Ev {
        within("a service event", self.events.recv())
            .await
            .expect("event channel closed")
    }

    async fn wait_for(&mut self, want: Ev) {
        loop {
            if self.next_event().await == want {
                return;
            }
        }
    }

    /// Completes the shutdown future and waits until the connection holding the
    /// gated request has seen the shutdown (see the module docs).
    async fn shut_down_under_the_gate(&mut self) {
        let _ = self.stop.take().expect("shutdown once").send(());
        self.wait_for(Ev::Fired).await;
        self.wait_for(Ev::Polled).await;
    }

    fn open_gate(&mut self) {
        let _ = self.open.take().expect("open once").send(());
    }

    async fn join(self) -> io::Result<()> {
        within("Builder::serve to return", self.serve)
            .await
            .expect("serve task panicked")
    }
}

#[tokio::test(flavor = "current_thread")]
async fn in_flight_http1_request_completes_with_connection_close() {
    let mut server = Gated::start().await;
    let mut conn = H1Conn::connect(server.addr).await;
    conn.send("GET /gate HTTP/1.1\r\nHost: a\r\n\r\n").await;
    server.wait_for(Ev::Called("/gate".into())).await;

    server.shut_down_under_the_gate().await;
    server.open_gate();

    let res = conn.read_response().await;
    assert_eq!(res.status, 200);
    assert_eq!(res.body_str(), "released\n");
    assert!(res.connection_has("close"), "{res:?}");
    conn.expect_closed().await;
    // Closing our side ends the server's lingering read at once.
    drop(conn);
    server.join().await.expect("serve result");
}

#[tokio::test(flavor = "current_thread")]
async fn drain_timeout_closes_what_is_still_open_and_serve_returns() {
    let mut b = Builder::new();
    b.drain_timeout(std::time::Duration::from_millis(100));
    let mut server = Gated::start_with(&b).await;
    let mut conn = H1Conn::connect(server.addr).await;
    conn.send("GET /gate HTTP/1.1\r\nHost: a\r\n\r\n").await;
    server.wait_for(Ev::Called("/gate".into())).await;

    server.shut_down_under_the_gate().await;
    // The gate stays shut: only the drain timeout can end the connection.
    let open = server.open.take().expect("gate");
    server.join().await.expect("serve result");
    // The in-flight response future was dropped with its connection.
    assert!(open.is_closed(), "the gated request outlived serve");
    conn.expect_closed().await;
}

#[tokio::test(flavor = "current_thread")]
async fn idle_keep_alive_connection_is_closed_and_serve_returns() {
    let mut server = Server::demo().await;
    let mut conn = H1Conn::connect(server.addr).await;
    conn.send("GET / HTTP/1.1\r\nHost: a\r\n\r\n").await;
    let res = conn.read_response().await;
    assert_eq!(res.body_str(), "hello world\n");
    assert!(!res.connection_has("close"));

    server.trigger_shutdown();
    conn.expect_closed().await;
    drop(conn);
    server.join().await.expect("serve result");
}

#[tokio::test(flavor = "current_thread")]
async fn http2_connection_gets_goaway_and_the_in_flight_stream_completes() {
    let mut server = Gated::start().await;
    let tcp = within("connect", TcpStream::connect(server.addr))
        .await
        .expect("connect");
    let mut h2 = H2Raw::new(tcp, Vec::new());
    h2.send_preface(CLIENT_SETTINGS).await;
    h2.send_headers(1, &request_fields("GET", "/gate"), true)
        .await;
    server.wait_for(Ev::Called("/gate".into())).await;

    let _ = server.stop.take().expect("stop").send(());
    // The GOAWAY arrives while stream 1 is still waiting.
    loop {
        match h2
            .next_event()
            .await
            .expect("a GOAWAY before the connection closes")
        {
            Event::GoAway { code, .. } => {
                assert_eq!(code, 0, "graceful GOAWAY carries NO_ERROR");
                break;
            }
            Event::Settings { ack: false, .. } => h2.send_settings_ack().await,
            Event::Headers { stream: 1, .. } | Event::Data { stream: 1, .. } => {
                panic!("stream 1 answered before the gate opened")
            }
            _ => {}
        }
    }
    server.open_gate();

    let res = h2.response(1).await;
    assert_eq!(res.status, Some(200));
    assert_eq!(res.body_str(), "released\n");

    h2.read_until_closed().await;
    let (last_stream, code) = *h2.goaways.last().expect("GOAWAY");
    assert_eq!(code, 0);
    assert!(
        last_stream >= 1,
        "final GOAWAY must cover stream 1: {last_stream}"
    );
    server.join().await.expect("serve result");
}

#[tokio::test(flavor = "current_thread")]
async fn upgraded_connection_gets_goaway_and_serve_returns() {
    let mut server = Server::demo().await;
    let (_, mut h2) = upgrade(server.addr, &upgrade_request("GET", "/", "", b"")).await;
    h2.send_preface(CLIENT_SETTINGS).await;
    assert_eq!(h2.response(1).await.body_str(), "hello world\n");

    server.trigger_shutdown();
    let events = h2.read_until_closed().await;
    let goaways: Vec<(u32, u32)> = events
        .iter()
        .filter_map(|e| match e {
            Event::GoAway {
                last_stream, code, ..
            } => Some((*last_stream, *code)),
            _ => None,
        })
        .collect();
    assert!(!goaways.is_empty(), "no GOAWAY before close: {events:?}");
    assert!(goaways.iter().all(|(_, code)| *code == 0), "{goaways:?}");
    assert_eq!(goaways.last().map(|g| g.0), Some(1), "{goaways:?}");
    drop(h2);
    server.join().await.expect("serve result");
}

/// Connecting fails, or the connection is closed without a byte of response.
async fn assert_not_served(addr: std::net::SocketAddr) {
    let mut tcp = match within("connect", TcpStream::connect(addr)).await {
        Err(e) => {
            assert_eq!(e.kind(), io::ErrorKind::ConnectionRefused, "{e}");
            return;
        }
        Ok(tcp) => tcp,
    };
    let _ = tcp.write_all(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n").await;
    let mut got = Vec::new();
    match within("a refused connection to close", tcp.read_to_end(&mut got)).await {
        Ok(_) => assert!(
            got.is_empty(),
            "a connection after shutdown was answered: {:?}",
            String::from_utf8_lossy(&got)
        ),
        Err(e) => assert_eq!(e.kind(), io::ErrorKind::ConnectionReset, "{e}"),
    }
}

#[tokio::test(flavor = "current_thread")]
async fn new_connections_are_refused_after_shutdown() {
    let mut server = Gated::start().await;
    let addr = server.addr;
    let mut conn = H1Conn::connect(addr).await;
    conn.send("GET /gate HTTP/1.1\r\nHost: a\r\n\r\n").await;
    server.wait_for(Ev::Called("/gate".into())).await;

    server.shut_down_under_the_gate().await;
    // While the in-flight request holds `serve` in its drain, nothing new is served.
    assert_not_served(addr).await;

    server.open_gate();
    let res = conn.read_response().await;
    assert_eq!(res.body_str(), "released\n");
    conn.expect_closed().await;
    drop(conn);
    server.join().await.expect("serve result");
    // And after `serve` returned.
    assert_not_served(addr).await;
}
