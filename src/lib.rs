//! # h2c-mux
//!
//! Serve HTTP/1.1, the cleartext `Upgrade: h2c` switch to HTTP/2 (RFC 7540 §3.2) and
//! HTTP/2 with prior knowledge (RFC 9113 §3.3) on one port, with any
//! `tower_service::Service` over `http` types (an axum `Router` as it is).
//!
//! ```text
//! accept(io)
//!   |
//!   sniff first bytes --- "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" ---> HTTP/2 (prior knowledge)
//!   |  (first mismatching byte => HTTP/1; a preface split over many reads is still
//!   |   found; the wait is bounded)
//!   v
//! HTTP/1.1 request loop (keep-alive, pipelining)
//!   |
//!   request's Upgrade names another protocol first (websocket, ...) ?
//!   |-- yes (feature `upgrades`) --> hyper serves that request: the service may
//!   |                                answer 101 and take the transport
//!   request carries Upgrade: h2c ?
//!   |-- no / invalid / policy declines --> answered as HTTP/1.1, loop
//!   |                                      (or, if the client listed another
//!   |                                       protocol after h2c, as above)
//!   |-- yes:
//!         [Expect: 100-continue => "100 Continue" first]
//!         the service is called at once; the request body streams to it
//!         (its response waits, bounded, for the body's last byte;
//!          over the bound => answered as HTTP/1.1)
//!         after the last body byte: "101 Switching Protocols" together with
//!         the server's SETTINGS
//!         stream 1 = the original request, its response sent as HTTP/2
//!         streams 3, 5, ... = later requests, as plain HTTP/2
//! ```
//!
//! Every check on an upgrade request happens before the `101`: a request with two
//! `HTTP2-Settings`, a bad base64url value, an out-of-range setting, `Upgrade: h2`
//! (TLS only), HTTP/1.0, a connection over TLS (see [below](#tls)), or a policy
//! that says no is answered over HTTP/1.1 and the connection stays HTTP/1.1; so is a request whose response outgrows
//! [`max_upgrade_response_hold`](Builder::max_upgrade_response_hold) before its
//! body ends, or, with [`stream_upgrade_body`](Builder::stream_upgrade_body) off
//! (the body is then read whole before the `101`), a body over the bound. The
//! request carries an [`UpgradeDeclined`] extension saying why, and the reason is
//! logged at `debug`.
//!
//! ## Example
//!
//! ```no_run
//! use std::convert::Infallible;
//! use http::{Request, Response};
//! use h2c_mux::{Body, Builder, Protocol};
//!
//! #[derive(Clone)]
//! struct Hello;
//!
//! impl tower_service::Service<Request<Body>> for Hello {
//!     type Response = Response<String>;
//!     type Error = Infallible;
//!     type Future = std::future::Ready<Result<Response<String>, Infallible>>;
//!
//!     fn poll_ready(&mut self, _: &mut std::task::Context<'_>) -> std::task::Poll<Result<(), Infallible>> {
//!         std::task::Poll::Ready(Ok(()))
//!     }
//!
//!     fn call(&mut self, req: Request<Body>) -> Self::Future {
//!         let proto = Protocol::of(&req);
//!         std::future::ready(Ok(Response::new(format!("hello over {proto:?}\n"))))
//!     }
//! }
//!
//! #[tokio::main]
//! async fn main() -> std::io::Result<()> {
//!     let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
//!     Builder::new()
//!         .serve(listener, Hello, async { let _ = tokio::signal::ctrl_c().await; })
//!         .await
//! }
//! ```
//!
//! An axum `Router` is served the same way: `builder.serve(listener, router, shutdown)`,
//! or, for its `ConnectInfo<SocketAddr>` extractor, as with `axum::serve`:
//! `builder.serve(listener, router.into_make_service_with_connect_info::<SocketAddr>(), shutdown)`
//! (see [`MakeConnectionService`]). The listener is any [`Listener`]: TCP, a Unix
//! socket, or one of your own, such as TCP wrapped in TLS.
//!
//! ## TLS
//!
//! h2c-mux depends on no TLS crate. A listener that terminates TLS tells, through
//! [`Listener::transport`], what the handshake chose (a [`Transport`]), and that
//! decides how each connection starts: ALPN `h2` is HTTP/2 from the first byte
//! ([`Protocol::H2Tls`]); ALPN `http/1.1`, another protocol or none is HTTP/1.1
//! only, where `Upgrade: h2c` never switches (h2c is the cleartext protocol: the
//! request is answered over HTTP/1.1 with [`DeclineReason::Tls`]) and the HTTP/2
//! preface is answered `505`. Cleartext connections are sniffed and upgraded as
//! above. A connection served by hand says the same with
//! [`Builder::serve_connection_with_transport`].
//!
//! ## Extended CONNECT
//!
//! With [`Builder::enable_connect_protocol`] on, HTTP/2 connections (prior
//! knowledge and upgraded alike) accept RFC 8441's extended CONNECT, the way
//! WebSocket runs over one HTTP/2 stream: the service answers `200` and takes the
//! stream as a byte [`Tunnel`](tunnel::Tunnel) (`AsyncRead + AsyncWrite`). The
//! [`tunnel`] module says how, and what axum's `WebSocketUpgrade` does over HTTP/2
//! (it answers `426`: it needs hyper's own upgrade handle).
//!
//! ## Memory
//!
//! Every buffer is bounded by a [`Builder`] setting (the README lists them). An idle
//! HTTP/1.1 connection *parks*: it frees its read and write buffers and its request
//! state and keeps only the socket, the service and its keep-alive timer (its size:
//! [`DEFAULT_IDLE_RELEASE_AFTER`]). Whether freed memory goes
//! back to the operating system is the allocator's choice; the `h2c-mux` binary
//! trims glibc's heap when enough of it is free.
//!
//! ## Tracing
//!
//! Each connection runs in a `connection` span (`peer`, `protocol`: `http/1.1`,
//! `h2c-upgrade`, `h2-prior-knowledge` or `h2-tls`), each request in a `request` span
//! (`method`, `path`, and `stream` for HTTP/2). An upgraded connection records
//! `protocol` twice: `http/1.1` while the upgrade request is read, `h2c-upgrade`
//! once it switches (`tracing-subscriber`'s `fmt` prints both values, in that
//! order). Both spans are at `debug` level: with no subscriber that enables
//! them, they cost nothing. Peer misbehaviour is logged at `debug`, never as a
//! server error.

//! ## Layout
//!
//! One file per layer, from the top:
//!
//! ```text
//! lib.rs, builder.rs   the public face: Builder and its setters, the re-exports
//! server.rs            the accept loop: a task per connection, the cap, the
//!                      bounded drain
//! listener.rs, make.rs where connections come from (Listener, ListenerAddr) and
//!                      how each gets its service (cloned or made per connection)
//! connection.rs        one connection: sniff, HTTP/1.1 (parked while idle), HTTP/2
//! bench_api.rs         entry points for the benchmarks and fuzz targets (hidden)
//! h1/                  HTTP/1.1; the connection by phase: cycle.rs (the loop),
//!                      switch.rs (accepting an upgrade), respond.rs (the
//!                      response), dispatch.rs (a request to the service),
//!                      feed.rs (the request body), state.rs (the connection and
//!                      its named states); below them parse.rs, decode.rs,
//!                      encode.rs (no IO) and io.rs (the write buffer)
//! h2/                  HTTP/2 with h2: mod.rs (the connection), stream.rs
//! handover.rs          a request that asks for another upgrade (WebSocket),
//!                      served by hyper so the service can take the transport
//! upgrade/             the switch: handoff.rs (what HTTP/1.1 hands HTTP/2),
//!                      adapter.rs (the transport h2 sees), settings.rs,
//!                      stream1.rs, frame.rs
//! service.rs, demo.rs  the service bound; the demo service
//! body.rs, config.rs   the request body; the resolved configuration and defaults
//! tunnel.rs            an extended CONNECT stream as a byte tunnel (public:
//!                      `tunnel`), made by h2/
//! error.rs, policy.rs, shutdown.rs, read.rs (reads, Rewind), linger.rs
//! (a close that keeps what was written), sniff.rs, date.rs, decimal.rs,
//! field.rs (list-valued fields)
//!                      what every layer needs
//! ```
//!
//! The one rule: a file imports only files below it, never one above. `h1/` and
//! `h2/` (and `handover.rs`) are siblings and never import each other: the hand-off between them is a
//! type of the upgrade layer, and `connection.rs` is the one place that knows
//! both. Nothing below `builder.rs` imports it; the layers read the `Config`
//! (`config.rs`) it resolves to.

#![deny(missing_docs, missing_debug_implementations)]
#![forbid(unsafe_code)]
#![warn(unreachable_pub)]

#[doc(hidden)]
pub mod bench_api;
mod body;
mod builder;
mod config;
mod connection;
mod date;
mod decimal;
#[cfg(feature = "demo")]
pub mod demo;
mod error;
mod field;
mod h1;
mod h2;
#[cfg(feature = "upgrades")]
mod handover;
mod linger;
mod listener;
mod make;
mod policy;
mod read;
mod server;
mod service;
mod shutdown;
mod sniff;
pub mod tunnel;
mod upgrade;

pub use body::Body;
pub use builder::Builder;
pub use config::{
    DEFAULT_BODY_READ_TIMEOUT, DEFAULT_DRAIN_TIMEOUT, DEFAULT_H2_KEEP_ALIVE_INTERVAL,
    DEFAULT_H2_KEEP_ALIVE_TIMEOUT, DEFAULT_HEADER_READ_TIMEOUT, DEFAULT_IDLE_RELEASE_AFTER,
    DEFAULT_INITIAL_CONNECTION_WINDOW_SIZE, DEFAULT_INITIAL_STREAM_WINDOW_SIZE,
    DEFAULT_KEEP_ALIVE_TIMEOUT, DEFAULT_MAX_CONCURRENT_STREAMS, DEFAULT_MAX_CONNECTIONS,
    DEFAULT_MAX_DRAIN_SIZE, DEFAULT_MAX_FRAME_SIZE, DEFAULT_MAX_HEADERS, DEFAULT_MAX_HEAD_SIZE,
    DEFAULT_MAX_LOCAL_ERROR_RESET_STREAMS, DEFAULT_MAX_PENDING_ACCEPT_RESET_STREAMS,
    DEFAULT_MAX_REQUEST_LINE, DEFAULT_MAX_SEND_BUFFER_SIZE, DEFAULT_MAX_UPGRADE_BODY_SIZE,
    DEFAULT_MAX_UPGRADE_RESPONSE_HOLD, DEFAULT_MAX_WRITE_BUFFER_SIZE, DEFAULT_PREFACE_TIMEOUT,
};
pub use connection::Connection;
pub use error::{BoxError, Error};
pub use listener::{Listener, ListenerAddr};
pub use make::{MakeConnectionService, ViaClone, ViaMakeService};
pub use policy::{
    decline_proxied, Alpn, AnsweredOver, DeclineReason, Protocol, RemoteAddr, Transport,
    UpgradeDecision, UpgradeDeclined,
};

/// Serves `service` on `listener` with the default [`Builder`] until `shutdown`
/// completes: [`Builder::serve`] says how.
///
/// `listener` is any [`Listener`] (TCP, a Unix socket, TLS of your own making);
/// `service` is a service cloned for each connection, such as an axum `Router`, or a
/// make-service called with each peer's address (see [`MakeConnectionService`]).
///
/// ```no_run
/// # async fn run() -> std::io::Result<()> {
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
/// h2c_mux::serve(listener, h2c_mux::demo::Demo::new(), async {
///     let _ = tokio::signal::ctrl_c().await;
/// })
/// .await
/// # }
/// ```
///
/// axum's `ConnectInfo`, as with `axum::serve`:
///
/// ```no_run
/// use std::net::SocketAddr;
/// use axum::{extract::ConnectInfo, routing::get, Router};
///
/// # async fn run() -> std::io::Result<()> {
/// let app = Router::new().route(
///     "/",
///     get(|ConnectInfo(peer): ConnectInfo<SocketAddr>| async move { format!("you are {peer}\n") }),
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
pub async fn serve<L, M, Via, F>(listener: L, service: M, shutdown: F) -> std::io::Result<()>
where
    L: Listener,
    M: MakeConnectionService<L::Addr, Via>,
    F: std::future::Future<Output = ()>,
{
    Builder::new().serve(listener, service, shutdown).await
}
