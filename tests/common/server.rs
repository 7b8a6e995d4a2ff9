//! The server under test, two ways:
//!
//! - [`Server`]: `Builder::serve` on `127.0.0.1:0` (or a given listener, TCP or
//!   not, with a service or a make-service) on its own task, stopped through the
//!   shutdown future it was handed;
//! - [`duplex_conn`]: one connection over `tokio::io::duplex`, driven by
//!   `Builder::serve_connection` on its own task, so the `Connection` future's
//!   result can be checked ([`conn_result`]) and paused-clock tests see every byte
//!   ([`duplex_conn_over`]: one that stands for TLS).

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use h2c_mux::{Body, BoxError, Builder, Listener, MakeConnectionService, Transport};
use http::{Request, Response};
use tokio::io::DuplexStream;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use super::within;

/// A service `Builder::serve` and `Builder::serve_connection` accept, answering with
/// bodies of type `B`: their bounds, written once.
pub trait TestService<B>:
    tower_service::Service<
        Request<Body>,
        Response = Response<B>,
        Future: Send + 'static,
        Error: Into<BoxError>,
    > + Clone
    + Send
    + 'static
{
}

impl<S, B> TestService<B> for S
where
    S: tower_service::Service<Request<Body>, Response = Response<B>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<BoxError>,
{
}

/// A response body the server accepts.
pub trait TestBody: http_body::Body<Data = Bytes, Error: Into<BoxError>> + Send + 'static {}

impl<B> TestBody for B
where
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
}

/// `Builder::serve` on its own task, listening on `addr` (a TCP listener's unless
/// [`Server::serve`] was given another). Dropping it aborts the task.
pub struct Server<A = SocketAddr> {
    pub addr: A,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<io::Result<()>>>,
}

impl Server {
    /// Serves `svc` with `builder` on `127.0.0.1:0` until [`Server::trigger_shutdown`].
    pub async fn start<S: TestService<B>, B: TestBody>(builder: &Builder, svc: S) -> Server {
        Server::on(loopback().await, builder, svc)
    }

    /// Serves `svc` with `builder` on `listener` until [`Server::trigger_shutdown`].
    pub fn on<S: TestService<B>, B: TestBody>(
        listener: TcpListener,
        builder: &Builder,
        svc: S,
    ) -> Server {
        let (tx, rx) = oneshot::channel::<()>();
        let (addr, task) = serve_on(listener, builder, svc, async {
            let _ = rx.await;
        });
        Server {
            addr,
            stop: Some(tx),
            task: Some(task),
        }
    }

    /// The demo service with the default builder.
    #[cfg(feature = "demo")]
    pub async fn demo() -> Server {
        Server::start(&Builder::new(), h2c_mux::demo::Demo::new()).await
    }
}

impl<A: Send + 'static> Server<A> {
    /// Serves `service` (anything `serve` takes: a service or a make-service) with
    /// `builder` on any `listener` until [`Server::trigger_shutdown`].
    pub fn serve<L, M, Via>(listener: L, builder: &Builder, service: M) -> Server<A>
    where
        L: Listener<Addr = A>,
        M: MakeConnectionService<A, Via>,
    {
        let addr = listener.local_addr().expect("local addr");
        let (tx, rx) = oneshot::channel::<()>();
        let builder = builder.clone();
        let task = tokio::spawn(async move {
            builder
                .serve(listener, service, async {
                    let _ = rx.await;
                })
                .await
        });
        Server {
            addr,
            stop: Some(tx),
            task: Some(task),
        }
    }

    /// Completes the shutdown future handed to `serve`, without waiting.
    pub fn trigger_shutdown(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
    }

    /// Waits (bounded) for `serve` to return, and returns its result.
    pub async fn join(&mut self) -> io::Result<()> {
        let task = self.task.take().expect("serve task already joined");
        within("Builder::serve to return", task)
            .await
            .expect("serve task panicked")
    }

    /// Triggers the shutdown and waits (bounded) for `serve` to return.
    pub async fn stop(mut self) -> io::Result<()> {
        self.trigger_shutdown();
        self.join().await
    }
}

impl<A> Drop for Server<A> {
    fn drop(&mut self) {
        if let Some(task) = &self.task {
            task.abort();
        }
    }
}

/// A listener on `127.0.0.1:0`.
pub async fn loopback() -> TcpListener {
    TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind a loopback port")
}

/// Spawns `builder.serve(listener, svc, shutdown)`.
pub fn serve_on<S, B, F>(
    listener: TcpListener,
    builder: &Builder,
    svc: S,
    shutdown: F,
) -> (SocketAddr, JoinHandle<io::Result<()>>)
where
    S: TestService<B>,
    B: TestBody,
    F: Future<Output = ()> + Send + 'static,
{
    let addr = listener.local_addr().expect("local addr");
    let builder = builder.clone();
    let task = tokio::spawn(async move { builder.serve(listener, svc, shutdown).await });
    (addr, task)
}

/// The task driving one `serve_connection` future; its output is the future's.
pub type ConnHandle = JoinHandle<Result<(), h2c_mux::Error>>;

/// The pipe size of [`duplex_conn`]: larger than anything a test has in flight, so
/// only [`duplex_conn_sized`] pushes back.
const DUPLEX_SIZE: usize = 1 << 20;

/// One connection over an in-memory pipe, served by `serve_connection` on its own
/// task. Returns the client end.
pub fn duplex_conn<S: TestService<B>, B: TestBody>(
    builder: &Builder,
    svc: S,
) -> (DuplexStream, ConnHandle) {
    duplex_conn_sized(builder, svc, DUPLEX_SIZE)
}

/// [`duplex_conn`] with a pipe of `size` bytes each way, so a peer that stops
/// reading pushes back quickly.
pub fn duplex_conn_sized<S: TestService<B>, B: TestBody>(
    builder: &Builder,
    svc: S,
    size: usize,
) -> (DuplexStream, ConnHandle) {
    let (client, server) = tokio::io::duplex(size);
    let conn = builder.serve_connection(server, svc);
    (client, tokio::spawn(conn))
}

/// [`duplex_conn`] for a pipe that stands for a transport that negotiated
/// `transport` (TLS and its ALPN protocol, say), served by
/// `serve_connection_with_transport`.
pub fn duplex_conn_over<S: TestService<B>, B: TestBody>(
    builder: &Builder,
    svc: S,
    transport: Transport,
) -> (DuplexStream, ConnHandle) {
    let (client, server) = tokio::io::duplex(DUPLEX_SIZE);
    let conn = builder.serve_connection_with_transport(server, svc, transport, None);
    (client, tokio::spawn(conn))
}

/// One connection over a real loopback socket, served by `serve_connection` on its
/// own task, so a test sees both what TCP does (a close with unread input, a
/// reset) and the connection future's result. Returns the client end.
pub async fn tcp_conn<S: TestService<B>, B: TestBody>(
    builder: &Builder,
    svc: S,
) -> (TcpStream, ConnHandle) {
    let listener = loopback().await;
    let addr = listener.local_addr().expect("local addr");
    let builder = builder.clone();
    let conn = tokio::spawn(async move {
        let (io, _) = listener.accept().await.expect("accept");
        builder.serve_connection(io, svc).await
    });
    let client = within("connect", TcpStream::connect(addr))
        .await
        .expect("connect to the test server");
    client.set_nodelay(true).expect("nodelay");
    (client, conn)
}

/// Waits (bounded) for a connection task and returns the connection's result.
pub async fn conn_result(conn: ConnHandle) -> Result<(), h2c_mux::Error> {
    within("the connection future to resolve", conn)
        .await
        .expect("connection task panicked")
}

/// Far enough away that a timer set to it never fires within a test.
pub const FAR: Duration = Duration::from_secs(3600);

/// A builder with every timer [`FAR`] away; a test brings the one it tests close,
/// so only that one can end the connection.
pub fn quiet() -> Builder {
    let mut b = Builder::new();
    b.keep_alive_timeout(FAR)
        .header_read_timeout(FAR)
        .preface_timeout(FAR)
        .body_read_timeout(FAR)
        .h2_keep_alive_interval(None)
        .h2_keep_alive_timeout(FAR);
    b
}
