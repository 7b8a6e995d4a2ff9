//! What `serve` takes as its service: one service cloned for each connection, or a
//! make-service called once per connection with the peer's address.

use std::future::{ready, Future, Ready};
use std::task::{Context, Poll};

use futures_util::future::{ErrInto, TryFutureExt};

use crate::error::BoxError;
use crate::service::HttpService;

/// The service argument of [`Builder::serve`](crate::Builder::serve) and
/// [`serve`](crate::serve): how each accepted connection gets its service.
///
/// Two kinds of value fit, told apart by the `Via` marker the compiler infers:
///
/// - [`ViaClone`]: a `Service<Request<Body>>` that is `Clone`, such as an axum
///   `Router` or `h2c_mux::demo::Demo`, cloned for each connection;
/// - [`ViaMakeService`]: a make-service, a `Service<Addr>` (with `Addr` the
///   listener's [`Addr`](crate::Listener::Addr)) whose response is such a
///   service. It is called once per connection with the peer's address, as
///   `axum::serve` calls one, so axum's `Router::into_make_service_with_connect_info`
///   works and its `ConnectInfo` extractor sees the peer. `serve` waits for the
///   make-service to be ready before it accepts the next connection; an error from
///   its `poll_ready` ends `serve` (after the drain) with that error, and an error
///   from one call closes that one connection.
///
/// A type that is both (a service of every request type) leaves the marker
/// ambiguous and does not compile; serve it through a wrapper that is only one.
/// The trait is sealed: everything that fits implements it already.
///
/// ```no_run
/// use std::net::SocketAddr;
/// use axum::{extract::ConnectInfo, routing::get, Router};
///
/// # async fn run() -> std::io::Result<()> {
/// let app = Router::new().route(
///     "/",
///     get(|ConnectInfo(peer): ConnectInfo<SocketAddr>| async move { format!("{peer}\n") }),
/// );
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
/// h2c_mux::serve(
///     listener,
///     app.into_make_service_with_connect_info::<SocketAddr>(),
///     async { let _ = tokio::signal::ctrl_c().await; },
/// )
/// .await
/// # }
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` is neither a `Clone` service of `Request<h2c_mux::Body>` nor a make-service called with `{Addr}`",
    note = "serve takes a `tower_service::Service<http::Request<h2c_mux::Body>>` that is `Clone + Send + 'static`, or a `Service<{Addr}>` whose response is one"
)]
pub trait MakeConnectionService<Addr, Via>: sealed::Make<Addr, Via> {}

impl<T, Addr, Via> MakeConnectionService<Addr, Via> for T where T: sealed::Make<Addr, Via> {}

/// The [`MakeConnectionService`] marker for a service cloned for each connection.
///
/// Inferred, never written: `serve(listener, router, shutdown)`.
///
/// ```no_run
/// # async fn run() -> std::io::Result<()> {
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
/// // Demo is a `Service<Request<Body>>` and `Clone`: this is `ViaClone`.
/// h2c_mux::serve(listener, h2c_mux::demo::Demo::new(), std::future::pending()).await
/// # }
/// ```
#[derive(Debug)]
pub enum ViaClone {}

/// The [`MakeConnectionService`] marker for a make-service called once per
/// connection with the peer's address.
///
/// Inferred, never written: `serve(listener, router.into_make_service_with_connect_info::<SocketAddr>(), shutdown)`.
///
/// ```no_run
/// use std::net::SocketAddr;
/// use axum::{extract::ConnectInfo, routing::get, Router};
///
/// # async fn run() -> std::io::Result<()> {
/// let app = Router::new().route("/", get(|ConnectInfo(p): ConnectInfo<SocketAddr>| async move { p.to_string() }));
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
/// // A `Service<SocketAddr>` whose response is a service: this is `ViaMakeService`.
/// let make = app.into_make_service_with_connect_info::<SocketAddr>();
/// h2c_mux::serve(listener, make, std::future::pending()).await
/// # }
/// ```
#[derive(Debug)]
pub enum ViaMakeService {}

pub(crate) mod sealed {
    use super::*;

    /// What the accept loop needs of its service argument.
    pub trait Make<Addr, Via>: Send + 'static {
        /// The service one connection runs.
        type Service: HttpService;
        /// Resolves to the service for one connection.
        type Future: Future<Output = Result<Self::Service, BoxError>> + Send + 'static;

        /// Ready to make the next connection's service; an error means never again.
        fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>>;

        /// The service for the connection from `addr`.
        fn make(&mut self, addr: Addr) -> Self::Future;
    }
}

impl<S, Addr> sealed::Make<Addr, ViaClone> for S
where
    S: HttpService,
{
    type Service = S;
    type Future = Ready<Result<S, BoxError>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        Poll::Ready(Ok(()))
    }

    fn make(&mut self, _: Addr) -> Self::Future {
        ready(Ok(self.clone()))
    }
}

impl<M, Addr, S> sealed::Make<Addr, ViaMakeService> for M
where
    M: tower_service::Service<Addr, Response = S> + Send + 'static,
    M::Future: Send + 'static,
    M::Error: Into<BoxError>,
    S: HttpService,
{
    type Service = S;
    type Future = ErrInto<M::Future, BoxError>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        tower_service::Service::poll_ready(self, cx).map_err(Into::into)
    }

    fn make(&mut self, addr: Addr) -> Self::Future {
        tower_service::Service::call(self, addr).err_into()
    }
}
