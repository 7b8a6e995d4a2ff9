//! The public `Builder`: every option's setter, and the entry points that serve a
//! connection or a listener with the [`Config`] it resolves to.

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response};
use tokio::io::{AsyncRead, AsyncWrite};

use crate::body::Body;
use crate::config::Config;
use crate::connection::Connection;
use crate::error::BoxError;
use crate::listener::Listener;
use crate::make::MakeConnectionService;
use crate::policy::{Transport, UpgradeDecision};
use crate::shutdown::Shutdown;

/// Configures and starts connections.
///
/// Every option has a default in a `DEFAULT_*` constant. A `Builder` is cheap to
/// clone and can serve any number of connections.
///
/// ```no_run
/// use std::convert::Infallible;
///
/// # async fn run() -> std::io::Result<()> {
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
/// let service = tower_service_fn(); // any `Service<Request<Body>>`, e.g. an axum Router
/// let mut builder = h2c_mux::Builder::new();
/// builder.max_concurrent_streams(100).prior_knowledge(false);
/// builder
///     .serve(listener, service, async { let _ = tokio::signal::ctrl_c().await; })
///     .await
/// # }
/// # fn tower_service_fn() -> h2c_mux::demo::Demo { h2c_mux::demo::Demo::new() }
/// ```
#[derive(Clone)]
pub struct Builder {
    config: Config,
}

impl Default for Builder {
    fn default() -> Self {
        Builder::new()
    }
}

impl Builder {
    /// A builder with every default: h2c upgrade and prior knowledge on, every limit at
    /// its `DEFAULT_*` value.
    ///
    /// ```
    /// let builder = h2c_mux::Builder::new();
    /// # let _ = builder;
    /// ```
    pub fn new() -> Builder {
        Builder {
            config: Config::default(),
        }
    }

    /// Whether `Upgrade: h2c` requests may switch the connection to HTTP/2
    /// (default: on). When off, such requests are answered over HTTP/1.1. Over
    /// TLS the upgrade is never done, whatever this says (see
    /// [`Transport`](crate::Transport)).
    ///
    /// ```
    /// h2c_mux::Builder::new().h2c_upgrade(false);
    /// ```
    pub fn h2c_upgrade(&mut self, enabled: bool) -> &mut Self {
        self.config.h2c_upgrade = enabled;
        self
    }

    /// Whether an `Upgrade: h2c` request that carries a forwarding field (`Via`,
    /// `Forwarded`, `X-Forwarded-For`, `X-Forwarded-Host`, `X-Forwarded-Proto`,
    /// `X-Real-IP`) may switch (default: off).
    ///
    /// Such a request came through a proxy that forwards upgrades, and switching it
    /// would turn the proxied connection into an HTTP/2 tunnel that bypasses the
    /// proxy's routing and access rules (h2c smuggling). So by default it is
    /// answered over HTTP/1.1, with [`DeclineReason::Proxied`](crate::DeclineReason::Proxied).
    /// Turn this on only behind a proxy that applies its rules to HTTP/2 as well.
    /// Other upgrades (WebSocket) through proxies are unaffected: proxies forward
    /// them on purpose. To decline by the proxy's address as well, see
    /// [`decline_proxied`](crate::decline_proxied).
    ///
    /// ```
    /// h2c_mux::Builder::new().h2c_through_proxies(true);
    /// ```
    pub fn h2c_through_proxies(&mut self, allowed: bool) -> &mut Self {
        self.config.h2c_through_proxies = allowed;
        self
    }

    /// Whether a cleartext connection that opens with the HTTP/2 preface is served
    /// as HTTP/2 (default: on). When off, the preface is parsed as HTTP/1 and
    /// answered `505`. Over TLS, ALPN chooses HTTP/2 and the preface alone never
    /// does, whatever this says (see [`Transport`](crate::Transport)).
    ///
    /// ```
    /// h2c_mux::Builder::new().prior_knowledge(false);
    /// ```
    pub fn prior_knowledge(&mut self, enabled: bool) -> &mut Self {
        self.config.prior_knowledge = enabled;
        self
    }

    /// Serves every connection as HTTP/2 and none as HTTP/1.1 (default: off).
    ///
    /// On, a cleartext connection must open with the HTTP/2 preface (prior
    /// knowledge, whatever [`prior_knowledge`](Builder::prior_knowledge) says),
    /// and a TLS connection must have chosen `h2` with ALPN (see
    /// [`Transport`](crate::Transport)); nothing is upgraded. Any other
    /// connection gets one answer, whatever it sent, and is closed: `505 HTTP
    /// Version Not Supported` with `connection: close` and a line saying what to
    /// do instead (open with the preface; over TLS, choose `h2` with ALPN). So a
    /// client that speaks HTTP/1.1 reads an HTTP/1.1 answer it understands, where
    /// a bare HTTP/2 server would send it a `SETTINGS` frame and a `GOAWAY`.
    ///
    /// It is cheap and bounded: nothing the client sent is parsed and no service
    /// is called. In cleartext the answer goes out at the first byte that is not
    /// the preface's; over TLS, once the client's first bytes arrive (the
    /// preface among them: over TLS, HTTP/2 needs ALPN, RFC 9113 §3.3). The wait
    /// for those bytes is bounded by the
    /// [keep-alive timeout](Builder::keep_alive_timeout) (a client that sends
    /// nothing is closed then, without an answer) and, once part of the preface
    /// has arrived, by the [preface timeout](Builder::preface_timeout); the close
    /// after the answer is bounded as every close is. The connection ends with an
    /// [`Error`](crate::Error) for which [`is_parse`](crate::Error::is_parse)
    /// holds.
    ///
    /// For HTTP/1.1 only, turn off the two ways to HTTP/2 instead:
    /// `builder.h2c_upgrade(false).prior_knowledge(false)` (and, over TLS,
    /// advertise only `http/1.1` with ALPN).
    ///
    /// ```
    /// h2c_mux::Builder::new().http2_only(true);
    /// ```
    pub fn http2_only(&mut self, enabled: bool) -> &mut Self {
        self.config.http2_only = enabled;
        self
    }

    /// Decides, per request, whether a valid `Upgrade: h2c` request is upgraded.
    ///
    /// The policy runs after every protocol check passed and before anything is written; it
    /// sees the request head. A declined request is answered over HTTP/1.1 and carries an
    /// [`UpgradeDeclined`](crate::UpgradeDeclined) extension with the reason.
    ///
    /// ```
    /// use h2c_mux::UpgradeDecision;
    ///
    /// let mut builder = h2c_mux::Builder::new();
    /// builder.upgrade_policy(|head: &http::request::Parts| {
    ///     if head.uri.path().starts_with("/legacy/") {
    ///         UpgradeDecision::decline("legacy endpoints stay on http/1.1")
    ///     } else {
    ///         UpgradeDecision::Upgrade
    ///     }
    /// });
    /// ```
    pub fn upgrade_policy<F>(&mut self, policy: F) -> &mut Self
    where
        F: Fn(&http::request::Parts) -> UpgradeDecision + Send + Sync + 'static,
    {
        self.config.policy = Some(Arc::new(policy));
        self
    }

    /// Whether an upgrade request's body is streamed to the service (default: on).
    ///
    /// **On:** a request with a body of any size, `Content-Length` or chunked, is
    /// upgraded. The service is called at once with a body that streams the HTTP/1.1
    /// body under backpressure; the `101` is written after the last body byte (RFC
    /// 7540 §3.2: the client sends the whole request first), and the response goes out
    /// as stream 1. A response that starts before the body ends is held, up to
    /// [`max_upgrade_response_hold`](Builder::max_upgrade_response_hold) bytes; one
    /// that outgrows it, or a service that answers and drops the body, is answered
    /// over HTTP/1.1 instead, and the connection stays HTTP/1.1. Choose this unless
    /// the service needs the whole body before it starts.
    ///
    /// **Off:** the body is read into memory first, up to
    /// [`max_upgrade_body_size`](Builder::max_upgrade_body_size), and a larger one is
    /// answered over HTTP/1.1. Choose this to give the service the whole body at once
    /// and to keep uploads above the cap on HTTP/1.1.
    ///
    /// Either way the client gets exactly one complete response.
    ///
    /// ```
    /// h2c_mux::Builder::new().stream_upgrade_body(false).max_upgrade_body_size(64 * 1024);
    /// ```
    pub fn stream_upgrade_body(&mut self, enabled: bool) -> &mut Self {
        self.config.stream_upgrade_body = enabled;
        self
    }

    /// Response bytes held while a streamed upgrade body is still arriving (default:
    /// [`DEFAULT_MAX_UPGRADE_RESPONSE_HOLD`](crate::DEFAULT_MAX_UPGRADE_RESPONSE_HOLD)).
    ///
    /// ```
    /// h2c_mux::Builder::new().max_upgrade_response_hold(1 << 20);
    /// ```
    pub fn max_upgrade_response_hold(&mut self, bytes: usize) -> &mut Self {
        self.config.max_upgrade_response_hold = bytes;
        self
    }

    /// Largest upgrade request body buffered when streaming is off (default:
    /// [`DEFAULT_MAX_UPGRADE_BODY_SIZE`](crate::DEFAULT_MAX_UPGRADE_BODY_SIZE)). A larger
    /// body is answered over HTTP/1.1.
    ///
    /// ```
    /// h2c_mux::Builder::new().max_upgrade_body_size(1 << 20);
    /// ```
    pub fn max_upgrade_body_size(&mut self, bytes: usize) -> &mut Self {
        self.config.max_upgrade_body_size = bytes;
        self
    }

    /// Largest request head, HTTP/1 and HTTP/2 alike (default:
    /// [`DEFAULT_MAX_HEAD_SIZE`](crate::DEFAULT_MAX_HEAD_SIZE)). HTTP/1 answers `431` past
    /// it; HTTP/2 advertises it as `SETTINGS_MAX_HEADER_LIST_SIZE`.
    ///
    /// ```
    /// h2c_mux::Builder::new().max_head_size(16 * 1024);
    /// ```
    pub fn max_head_size(&mut self, bytes: usize) -> &mut Self {
        self.config.max_head_size = bytes;
        self
    }

    /// Most header fields in an HTTP/1 request (default:
    /// [`DEFAULT_MAX_HEADERS`](crate::DEFAULT_MAX_HEADERS)).
    ///
    /// ```
    /// h2c_mux::Builder::new().max_headers(64);
    /// ```
    pub fn max_headers(&mut self, count: usize) -> &mut Self {
        self.config.max_headers = count;
        self
    }

    /// Longest HTTP/1 request line (default:
    /// [`DEFAULT_MAX_REQUEST_LINE`](crate::DEFAULT_MAX_REQUEST_LINE)).
    ///
    /// ```
    /// h2c_mux::Builder::new().max_request_line(4096);
    /// ```
    pub fn max_request_line(&mut self, bytes: usize) -> &mut Self {
        self.config.max_request_line = bytes;
        self
    }

    /// How long a connection may be idle (default:
    /// [`DEFAULT_KEEP_ALIVE_TIMEOUT`](crate::DEFAULT_KEEP_ALIVE_TIMEOUT)): HTTP/1 between
    /// requests, HTTP/2 with no open stream (then GOAWAY).
    ///
    /// ```
    /// h2c_mux::Builder::new().keep_alive_timeout(std::time::Duration::from_secs(5));
    /// ```
    pub fn keep_alive_timeout(&mut self, timeout: Duration) -> &mut Self {
        self.config.keep_alive_timeout = timeout;
        self
    }

    /// How long an HTTP/1.1 connection used back to back keeps its buffers through an idle
    /// gap before it parks (default:
    /// [`DEFAULT_IDLE_RELEASE_AFTER`](crate::DEFAULT_IDLE_RELEASE_AFTER), which explains
    /// parking). Zero parks every idle connection at once: the least memory, at the cost of
    /// re-allocating the buffers for every request.
    ///
    /// ```
    /// h2c_mux::Builder::new().idle_release_after(std::time::Duration::ZERO);
    /// ```
    pub fn idle_release_after(&mut self, delay: Duration) -> &mut Self {
        self.config.idle_release_after = delay;
        self
    }

    /// Response bytes an HTTP/1.1 connection queues before it waits for the socket
    /// (default: [`DEFAULT_MAX_WRITE_BUFFER_SIZE`](crate::DEFAULT_MAX_WRITE_BUFFER_SIZE)).
    /// At least 1 byte is queued: zero writes after every piece.
    ///
    /// ```
    /// h2c_mux::Builder::new().max_write_buffer_size(16 * 1024);
    /// ```
    pub fn max_write_buffer_size(&mut self, bytes: usize) -> &mut Self {
        self.config.max_write_buffer_size = bytes;
        self
    }

    /// How long a client may take to send a request head (default:
    /// [`DEFAULT_HEADER_READ_TIMEOUT`](crate::DEFAULT_HEADER_READ_TIMEOUT)).
    ///
    /// ```
    /// h2c_mux::Builder::new().header_read_timeout(std::time::Duration::from_secs(10));
    /// ```
    pub fn header_read_timeout(&mut self, timeout: Duration) -> &mut Self {
        self.config.header_read_timeout = timeout;
        self
    }

    /// How long to wait for the rest of the HTTP/2 client preface (default:
    /// [`DEFAULT_PREFACE_TIMEOUT`](crate::DEFAULT_PREFACE_TIMEOUT)).
    ///
    /// ```
    /// h2c_mux::Builder::new().preface_timeout(std::time::Duration::from_secs(2));
    /// ```
    pub fn preface_timeout(&mut self, timeout: Duration) -> &mut Self {
        self.config.preface_timeout = timeout;
        self
    }

    /// `SETTINGS_MAX_CONCURRENT_STREAMS` (default:
    /// [`DEFAULT_MAX_CONCURRENT_STREAMS`](crate::DEFAULT_MAX_CONCURRENT_STREAMS)). Stream 1
    /// of an upgraded connection counts against it.
    ///
    /// ```
    /// h2c_mux::Builder::new().max_concurrent_streams(100);
    /// ```
    pub fn max_concurrent_streams(&mut self, max: u32) -> &mut Self {
        self.config.max_concurrent_streams = max;
        self
    }

    /// Streams a client may reset before they are accepted (default:
    /// [`DEFAULT_MAX_PENDING_ACCEPT_RESET_STREAMS`](crate::DEFAULT_MAX_PENDING_ACCEPT_RESET_STREAMS)).
    ///
    /// ```
    /// h2c_mux::Builder::new().max_pending_accept_reset_streams(10);
    /// ```
    pub fn max_pending_accept_reset_streams(&mut self, max: usize) -> &mut Self {
        self.config.max_pending_accept_reset_streams = max;
        self
    }

    /// Response bytes buffered per HTTP/2 stream (default:
    /// [`DEFAULT_MAX_SEND_BUFFER_SIZE`](crate::DEFAULT_MAX_SEND_BUFFER_SIZE)).
    ///
    /// ```
    /// h2c_mux::Builder::new().max_send_buffer_size(64 * 1024);
    /// ```
    pub fn max_send_buffer_size(&mut self, bytes: usize) -> &mut Self {
        self.config.max_send_buffer_size = bytes;
        self
    }

    /// HTTP/2 receive window per stream (default:
    /// [`DEFAULT_INITIAL_STREAM_WINDOW_SIZE`](crate::DEFAULT_INITIAL_STREAM_WINDOW_SIZE)).
    ///
    /// ```
    /// h2c_mux::Builder::new().initial_stream_window_size(65_535);
    /// ```
    pub fn initial_stream_window_size(&mut self, bytes: u32) -> &mut Self {
        self.config.initial_stream_window_size = bytes;
        self
    }

    /// HTTP/2 receive window for a connection (default:
    /// [`DEFAULT_INITIAL_CONNECTION_WINDOW_SIZE`](crate::DEFAULT_INITIAL_CONNECTION_WINDOW_SIZE)).
    ///
    /// ```
    /// h2c_mux::Builder::new().initial_connection_window_size(1 << 20);
    /// ```
    pub fn initial_connection_window_size(&mut self, bytes: u32) -> &mut Self {
        self.config.initial_connection_window_size = bytes;
        self
    }

    /// Largest HTTP/2 frame payload the server accepts, advertised as
    /// `SETTINGS_MAX_FRAME_SIZE` (default:
    /// [`DEFAULT_MAX_FRAME_SIZE`](crate::DEFAULT_MAX_FRAME_SIZE)). Values outside
    /// the range RFC 9113 §6.5.2 allows, 16,384 to 16,777,215, are taken as the
    /// nearest end of it. The frames the server sends are sized by the client's
    /// own setting.
    ///
    /// ```
    /// h2c_mux::Builder::new().max_frame_size(1 << 20);
    /// ```
    pub fn max_frame_size(&mut self, bytes: u32) -> &mut Self {
        self.config.max_frame_size = bytes;
        self
    }

    /// Whether HTTP/2 connections accept extended CONNECT (RFC 8441), the way
    /// WebSocket and other protocols run over one HTTP/2 stream (default: off).
    ///
    /// On, every HTTP/2 connection, with prior knowledge or after an h2c upgrade,
    /// advertises `SETTINGS_ENABLE_CONNECT_PROTOCOL = 1`, and a `CONNECT` request
    /// with a `:protocol` reaches the service with the protocol as a
    /// [`ConnectProtocol`](crate::tunnel::ConnectProtocol) extension and an
    /// [`OnTunnel`](crate::tunnel::OnTunnel) that gives the stream as a byte
    /// [`Tunnel`](crate::tunnel::Tunnel) once the service has answered `2xx`: the
    /// [`tunnel`](crate::tunnel) module says how. Off, the setting is not sent, and
    /// `h2` resets a stream that carries `:protocol` with `PROTOCOL_ERROR` before the
    /// service sees it. A `CONNECT` without `:protocol` is served the same either
    /// way. HTTP/1.1 is not affected.
    ///
    /// ```
    /// h2c_mux::Builder::new().enable_connect_protocol(true);
    /// ```
    pub fn enable_connect_protocol(&mut self, enabled: bool) -> &mut Self {
        self.config.enable_connect_protocol = enabled;
        self
    }

    /// Whether an HTTP/1.1 connection serves more than one request (default:
    /// on). Off, every response says `connection: close` and the connection
    /// closes after it, whatever the client asked; HTTP/2 is not affected.
    ///
    /// ```
    /// h2c_mux::Builder::new().http1_keep_alive(false);
    /// ```
    pub fn http1_keep_alive(&mut self, enabled: bool) -> &mut Self {
        self.config.http1_keep_alive = enabled;
        self
    }

    /// Unread request body discarded to keep an HTTP/1 connection alive (default:
    /// [`DEFAULT_MAX_DRAIN_SIZE`](crate::DEFAULT_MAX_DRAIN_SIZE)).
    ///
    /// ```
    /// h2c_mux::Builder::new().max_drain_size(0); // close instead of draining
    /// ```
    pub fn max_drain_size(&mut self, bytes: u64) -> &mut Self {
        self.config.max_drain_size = bytes;
        self
    }

    /// How long a request body may go without progress while being read (default:
    /// [`DEFAULT_BODY_READ_TIMEOUT`](crate::DEFAULT_BODY_READ_TIMEOUT)). The body then
    /// yields a timeout error and the connection is closed.
    ///
    /// ```
    /// h2c_mux::Builder::new().body_read_timeout(std::time::Duration::from_secs(10));
    /// ```
    pub fn body_read_timeout(&mut self, timeout: Duration) -> &mut Self {
        self.config.body_read_timeout = timeout;
        self
    }

    /// Largest request body accepted (default: no limit: bodies are streamed, so
    /// memory does not grow with them). A larger `Content-Length` is answered `413`
    /// before the service is called; a chunked body that grows past it yields an
    /// error to the service and the connection is closed.
    ///
    /// ```
    /// h2c_mux::Builder::new().max_request_body_size(Some(10 << 20));
    /// ```
    pub fn max_request_body_size(&mut self, bytes: Option<u64>) -> &mut Self {
        self.config.max_request_body_size = bytes;
        self
    }

    /// Interval between HTTP/2 keep-alive PINGs, or `None` for none (default:
    /// [`DEFAULT_H2_KEEP_ALIVE_INTERVAL`](crate::DEFAULT_H2_KEEP_ALIVE_INTERVAL)).
    ///
    /// ```
    /// h2c_mux::Builder::new().h2_keep_alive_interval(None);
    /// ```
    pub fn h2_keep_alive_interval(&mut self, interval: Option<Duration>) -> &mut Self {
        self.config.h2_keep_alive_interval = interval;
        self
    }

    /// How long a keep-alive PING may go unanswered before the connection is closed
    /// (default: [`DEFAULT_H2_KEEP_ALIVE_TIMEOUT`](crate::DEFAULT_H2_KEEP_ALIVE_TIMEOUT)).
    ///
    /// ```
    /// h2c_mux::Builder::new().h2_keep_alive_timeout(std::time::Duration::from_secs(5));
    /// ```
    pub fn h2_keep_alive_timeout(&mut self, timeout: Duration) -> &mut Self {
        self.config.h2_keep_alive_timeout = timeout;
        self
    }

    /// Streams the server may reset for the client's errors before closing the connection
    /// (default:
    /// [`DEFAULT_MAX_LOCAL_ERROR_RESET_STREAMS`](crate::DEFAULT_MAX_LOCAL_ERROR_RESET_STREAMS)).
    ///
    /// ```
    /// h2c_mux::Builder::new().max_local_error_reset_streams(256);
    /// ```
    pub fn max_local_error_reset_streams(&mut self, max: usize) -> &mut Self {
        self.config.max_local_error_reset_streams = max;
        self
    }

    /// Connections [`Builder::serve`] keeps open at once, on any listener (default:
    /// [`DEFAULT_MAX_CONNECTIONS`](crate::DEFAULT_MAX_CONNECTIONS)). At the cap it
    /// stops accepting, and new clients wait in the listener's backlog.
    ///
    /// ```
    /// h2c_mux::Builder::new().max_connections(1000);
    /// ```
    pub fn max_connections(&mut self, max: usize) -> &mut Self {
        self.config.max_connections = max;
        self
    }

    /// How long [`Builder::serve`] waits for connections after shutdown (default:
    /// [`DEFAULT_DRAIN_TIMEOUT`](crate::DEFAULT_DRAIN_TIMEOUT)).
    ///
    /// ```
    /// h2c_mux::Builder::new().drain_timeout(std::time::Duration::from_secs(30));
    /// ```
    pub fn drain_timeout(&mut self, timeout: Duration) -> &mut Self {
        self.config.drain_timeout = timeout;
        self
    }

    /// Serves one connection over any transport.
    ///
    /// The returned future drives the connection to its end: HTTP/1.1 with
    /// keep-alive and pipelining, the h2c upgrade, or HTTP/2 with prior knowledge.
    /// Call [`Connection::graceful_shutdown`] to finish in-flight work and close.
    /// Its requests carry no [`RemoteAddr`](crate::RemoteAddr): use
    /// [`serve_connection_with_peer`](Builder::serve_connection_with_peer) to give
    /// them one.
    ///
    /// ```no_run
    /// # async fn run(stream: tokio::net::TcpStream) {
    /// let conn = h2c_mux::Builder::new().serve_connection(stream, h2c_mux::demo::Demo::new());
    /// if let Err(e) = conn.await {
    ///     eprintln!("connection ended: {e}");
    /// }
    /// # }
    /// ```
    pub fn serve_connection<I, S, B>(&self, io: I, service: S) -> Connection
    where
        I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
        S: tower_service::Service<Request<Body>, Response = Response<B>> + Clone + Send + 'static,
        S::Future: Send + 'static,
        S::Error: Into<BoxError>,
        B: http_body::Body<Data = Bytes> + Send + 'static,
        B::Error: Into<BoxError>,
    {
        self.serve_connection_with_transport(io, service, Transport::Cleartext, None)
    }

    /// [`serve_connection`](Builder::serve_connection) for a connection from `peer`:
    /// every request carries it as the [`RemoteAddr`](crate::RemoteAddr) extension,
    /// over HTTP/1.1, after an h2c upgrade and with prior knowledge alike, as a
    /// connection from [`serve`](Builder::serve) does (and
    /// [`decline_proxied`](crate::decline_proxied) sees it).
    ///
    /// ```no_run
    /// # async fn run() -> std::io::Result<()> {
    /// let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
    /// let builder = h2c_mux::Builder::new();
    /// loop {
    ///     let (stream, peer) = listener.accept().await?;
    ///     let conn = builder.serve_connection_with_peer(stream, h2c_mux::demo::Demo::new(), peer);
    ///     tokio::spawn(conn);
    /// }
    /// # }
    /// ```
    pub fn serve_connection_with_peer<I, S, B>(
        &self,
        io: I,
        service: S,
        peer: SocketAddr,
    ) -> Connection
    where
        I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
        S: tower_service::Service<Request<Body>, Response = Response<B>> + Clone + Send + 'static,
        S::Future: Send + 'static,
        S::Error: Into<BoxError>,
        B: http_body::Body<Data = Bytes> + Send + 'static,
        B::Error: Into<BoxError>,
    {
        self.serve_connection_with_transport(io, service, Transport::Cleartext, Some(peer))
    }

    /// [`serve_connection`](Builder::serve_connection) for a transport that may be
    /// TLS: `transport` says what it negotiated, and decides how the connection
    /// starts (see [`Transport`]: over TLS, ALPN `h2` is HTTP/2 at once and
    /// anything else HTTP/1.1 that no `Upgrade: h2c` switches), and `peer`, when
    /// given, is every request's [`RemoteAddr`](crate::RemoteAddr). With
    /// [`Transport::Cleartext`] this is
    /// [`serve_connection`](Builder::serve_connection) (no `peer`) or
    /// [`serve_connection_with_peer`](Builder::serve_connection_with_peer).
    ///
    /// ```no_run
    /// use std::sync::Arc;
    ///
    /// # async fn run(tls_config: Arc<tokio_rustls::rustls::ServerConfig>) -> std::io::Result<()> {
    /// let listener = tokio::net::TcpListener::bind("127.0.0.1:8443").await?;
    /// let acceptor = tokio_rustls::TlsAcceptor::from(tls_config);
    /// let builder = h2c_mux::Builder::new();
    /// loop {
    ///     let (tcp, peer) = listener.accept().await?;
    ///     let (acceptor, builder) = (acceptor.clone(), builder.clone());
    ///     tokio::spawn(async move {
    ///         let Ok(tls) = acceptor.accept(tcp).await else { return };
    ///         let transport = h2c_mux::Transport::tls(tls.get_ref().1.alpn_protocol());
    ///         let service = h2c_mux::demo::Demo::new();
    ///         let conn = builder.serve_connection_with_transport(tls, service, transport, Some(peer));
    ///         let _ = conn.await;
    ///     });
    /// }
    /// # }
    /// ```
    pub fn serve_connection_with_transport<I, S, B>(
        &self,
        io: I,
        service: S,
        transport: Transport,
        peer: Option<SocketAddr>,
    ) -> Connection
    where
        I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
        S: tower_service::Service<Request<Body>, Response = Response<B>> + Clone + Send + 'static,
        S::Future: Send + 'static,
        S::Error: Into<BoxError>,
        B: http_body::Body<Data = Bytes> + Send + 'static,
        B::Error: Into<BoxError>,
    {
        let cfg = Arc::new(self.config.clone());
        Connection::new(
            io,
            service,
            cfg,
            peer,
            transport,
            Arc::new(Shutdown::default()),
        )
    }

    /// Accepts connections from `listener` until `shutdown` completes, serving each
    /// on its own task.
    ///
    /// `listener` is any [`Listener`]: a `tokio::net::TcpListener` (every stream
    /// gets `TCP_NODELAY`: an upgrade writes the `101` and the first HTTP/2 frames
    /// as one small segment that must not wait on Nagle), a
    /// `tokio::net::UnixListener`, or one of your own, such as TCP wrapped in TLS.
    /// `service` is a service cloned for each connection, or a make-service called
    /// with each connection's peer address (see [`MakeConnectionService`]; axum's
    /// `into_make_service_with_connect_info` is one).
    ///
    /// At most [`max_connections`](Builder::max_connections) connections are open at
    /// once; at the cap, new ones wait in the listener's backlog. When `shutdown`
    /// completes it stops accepting, asks every connection to shut down gracefully,
    /// and waits up to the [drain timeout](Builder::drain_timeout) for them before
    /// closing the rest. Every request carries the peer as its
    /// [`RemoteAddr`](crate::RemoteAddr) when the listener's address has one (see
    /// [`ListenerAddr`](crate::ListenerAddr)).
    ///
    /// Returns `Ok(())` after the drain, or, after the drain too, the error of a
    /// make-service that failed to get ready.
    ///
    /// ```no_run
    /// # async fn run() -> std::io::Result<()> {
    /// let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
    /// h2c_mux::Builder::new()
    ///     .serve(listener, h2c_mux::demo::Demo::new(), async {
    ///         let _ = tokio::signal::ctrl_c().await;
    ///     })
    ///     .await
    /// # }
    /// ```
    ///
    /// A Unix socket:
    ///
    /// ```no_run
    /// # async fn run() -> std::io::Result<()> {
    /// let listener = tokio::net::UnixListener::bind("/run/app.sock")?;
    /// h2c_mux::Builder::new()
    ///     .max_connections(64)
    ///     .serve(listener, h2c_mux::demo::Demo::new(), async {
    ///         let _ = tokio::signal::ctrl_c().await;
    ///     })
    ///     .await
    /// # }
    /// ```
    pub async fn serve<L, M, Via, F>(
        &self,
        listener: L,
        service: M,
        shutdown: F,
    ) -> std::io::Result<()>
    where
        L: Listener,
        M: MakeConnectionService<L::Addr, Via>,
        F: std::future::Future<Output = ()>,
    {
        crate::server::accept_loop(listener, service, Arc::new(self.config.clone()), shutdown).await
    }
}

impl fmt::Debug for Builder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let c = &self.config;
        f.debug_struct("Builder")
            .field("h2c_upgrade", &c.h2c_upgrade)
            .field("prior_knowledge", &c.prior_knowledge)
            .field("http2_only", &c.http2_only)
            .field("upgrade_policy", &c.policy.as_ref().map(|_| "custom"))
            .field("max_upgrade_body_size", &c.max_upgrade_body_size)
            .field("stream_upgrade_body", &c.stream_upgrade_body)
            .field("max_upgrade_response_hold", &c.max_upgrade_response_hold)
            .field("max_head_size", &c.max_head_size)
            .field("max_headers", &c.max_headers)
            .field("max_request_line", &c.max_request_line)
            .field("keep_alive_timeout", &c.keep_alive_timeout)
            .field("idle_release_after", &c.idle_release_after)
            .field("max_write_buffer_size", &c.max_write_buffer_size)
            .field("header_read_timeout", &c.header_read_timeout)
            .field("preface_timeout", &c.preface_timeout)
            .field("max_concurrent_streams", &c.max_concurrent_streams)
            .field(
                "max_pending_accept_reset_streams",
                &c.max_pending_accept_reset_streams,
            )
            .field("max_send_buffer_size", &c.max_send_buffer_size)
            .field("initial_stream_window_size", &c.initial_stream_window_size)
            .field(
                "initial_connection_window_size",
                &c.initial_connection_window_size,
            )
            .field("max_frame_size", &c.max_frame_size)
            .field("enable_connect_protocol", &c.enable_connect_protocol)
            .field("http1_keep_alive", &c.http1_keep_alive)
            .field("max_drain_size", &c.max_drain_size)
            .field("drain_timeout", &c.drain_timeout)
            .field("body_read_timeout", &c.body_read_timeout)
            .field("max_request_body_size", &c.max_request_body_size)
            .field("h2_keep_alive_interval", &c.h2_keep_alive_interval)
            .field("h2_keep_alive_timeout", &c.h2_keep_alive_timeout)
            .field(
                "max_local_error_reset_streams",
                &c.max_local_error_reset_streams,
            )
            .field("max_connections", &c.max_connections)
            .finish()
    }
}
