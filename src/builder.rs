//! Configuration: the `Builder`, its defaults, and the resolved `Config` a connection reads.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response};
use tokio::io::{AsyncRead, AsyncWrite};

use crate::body::Body;
use crate::conn::Connection;
use crate::error::BoxError;
use crate::policy::UpgradeDecision;

/// Largest HTTP/1 request head (request line and fields): 64 KiB. Large enough for
/// big cookies and tokens (a 40 KB header section is seen in the wild), small enough
/// that a connection's read buffer stays modest. HTTP/2's `max_header_list_size` is
/// set to the same value so a request gets the same answer on every path.
///
/// ```
/// h2c_mux::Builder::new().max_head_size(h2c_mux::DEFAULT_MAX_HEAD_SIZE / 2);
/// ```
pub const DEFAULT_MAX_HEAD_SIZE: usize = 64 * 1024;

/// Most header fields in one HTTP/1 request: 100, like common servers; more is
/// answered `431`.
///
/// ```
/// h2c_mux::Builder::new().max_headers(h2c_mux::DEFAULT_MAX_HEADERS / 2);
/// ```
pub const DEFAULT_MAX_HEADERS: usize = 100;

/// Longest HTTP/1 request line: 8 KiB. RFC 9112 §3 recommends supporting at least
/// 8000 octets; a longer line is answered `414`.
///
/// ```
/// h2c_mux::Builder::new().max_request_line(h2c_mux::DEFAULT_MAX_REQUEST_LINE / 2);
/// ```
pub const DEFAULT_MAX_REQUEST_LINE: usize = 8 * 1024;

/// Largest upgrade request body buffered when streaming is off
/// ([`Builder::stream_upgrade_body`]): 256 KiB. The buffered body is held in memory
/// until stream 1 is answered; a larger one is answered over HTTP/1.1 (nothing is
/// lost). With streaming on (the default) there is no such cap.
///
/// ```
/// h2c_mux::Builder::new().max_upgrade_body_size(h2c_mux::DEFAULT_MAX_UPGRADE_BODY_SIZE * 4);
/// ```
pub const DEFAULT_MAX_UPGRADE_BODY_SIZE: usize = 256 * 1024;

/// Response bytes held while an upgrade request's body is still arriving: 256 KiB.
/// The `101` may only follow the last request byte, so a response that starts early
/// is held until then; one that outgrows this bound is sent over HTTP/1.1 instead.
///
/// ```
/// h2c_mux::Builder::new().max_upgrade_response_hold(h2c_mux::DEFAULT_MAX_UPGRADE_RESPONSE_HOLD * 4);
/// ```
pub const DEFAULT_MAX_UPGRADE_RESPONSE_HOLD: usize = 256 * 1024;

/// How long a connection may sit idle (HTTP/1 between requests, HTTP/2 with no open
/// stream): 60 s, so idle connections do not pin memory forever.
///
/// ```
/// h2c_mux::Builder::new().keep_alive_timeout(h2c_mux::DEFAULT_KEEP_ALIVE_TIMEOUT / 2);
/// ```
pub const DEFAULT_KEEP_ALIVE_TIMEOUT: Duration = Duration::from_secs(60);

/// How long a client may take to send a whole request head once it started: 30 s,
/// the slowloris bound.
///
/// ```
/// h2c_mux::Builder::new().header_read_timeout(h2c_mux::DEFAULT_HEADER_READ_TIMEOUT / 2);
/// ```
pub const DEFAULT_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);

/// How long to wait for the rest of an HTTP/2 client preface, both when sniffing for
/// prior knowledge and after a `101`: 10 s. A real client sends its 24 bytes at once.
///
/// ```
/// h2c_mux::Builder::new().preface_timeout(h2c_mux::DEFAULT_PREFACE_TIMEOUT / 2);
/// ```
pub const DEFAULT_PREFACE_TIMEOUT: Duration = Duration::from_secs(10);

/// Concurrent HTTP/2 streams a client may open: 200. RFC 9113 §6.5.2 suggests at
/// least 100; `h2`'s own default is unlimited, which invites floods.
///
/// ```
/// h2c_mux::Builder::new().max_concurrent_streams(h2c_mux::DEFAULT_MAX_CONCURRENT_STREAMS / 2);
/// ```
pub const DEFAULT_MAX_CONCURRENT_STREAMS: u32 = 200;

/// Streams a client may reset before the server accepted them: 20 (the rapid-reset
/// defence, CVE-2023-44487); more is a connection error.
///
/// ```
/// h2c_mux::Builder::new().max_pending_accept_reset_streams(h2c_mux::DEFAULT_MAX_PENDING_ACCEPT_RESET_STREAMS / 2);
/// ```
pub const DEFAULT_MAX_PENDING_ACCEPT_RESET_STREAMS: usize = 20;

/// Bytes of response data `h2` buffers per stream before the service is pushed back:
/// 400 KiB, `h2`'s tested default, stated here so it is bounded on purpose.
///
/// ```
/// h2c_mux::Builder::new().max_send_buffer_size(h2c_mux::DEFAULT_MAX_SEND_BUFFER_SIZE / 2);
/// ```
pub const DEFAULT_MAX_SEND_BUFFER_SIZE: usize = 400 * 1024;

/// HTTP/2 receive window per stream: 1 MiB, so one upload is not limited to one
/// 64 KiB window per round trip.
///
/// ```
/// h2c_mux::Builder::new().initial_stream_window_size(h2c_mux::DEFAULT_INITIAL_STREAM_WINDOW_SIZE * 2);
/// ```
pub const DEFAULT_INITIAL_STREAM_WINDOW_SIZE: u32 = 1024 * 1024;

/// HTTP/2 receive window for the whole connection: 2 MiB (two full streams in flight).
///
/// ```
/// h2c_mux::Builder::new().initial_connection_window_size(h2c_mux::DEFAULT_INITIAL_CONNECTION_WINDOW_SIZE * 2);
/// ```
pub const DEFAULT_INITIAL_CONNECTION_WINDOW_SIZE: u32 = 2 * 1024 * 1024;

/// How long an HTTP/1.1 connection that is being used back to back keeps its
/// buffers through an idle gap: 100 ms. An idle HTTP/1.1 connection *parks*: its read
/// and write buffers and its request state are freed, leaving the socket, the
/// service and a timer (about 1 KiB). A connection parks as soon as it goes idle,
/// unless its last gap between a response and the next request was shorter than
/// this; then it waits this long first, so a client sending requests back to back
/// does not pay for freeing and re-allocating them (a few hundred nanoseconds) on
/// every request. 100 ms covers back-to-back requests over most internet round trips.
/// Zero parks at once after every response.
///
/// ```
/// h2c_mux::Builder::new().idle_release_after(h2c_mux::DEFAULT_IDLE_RELEASE_AFTER * 2);
/// ```
pub const DEFAULT_IDLE_RELEASE_AFTER: Duration = Duration::from_millis(100);

/// Response bytes an HTTP/1.1 connection queues before it stops producing and waits
/// for the socket: 64 KiB. Keeps a large or pipelined response streaming without
/// holding more than that per connection (a body chunk larger than this is queued as
/// it is, without a copy, and written before the next one is taken).
///
/// ```
/// h2c_mux::Builder::new().max_write_buffer_size(h2c_mux::DEFAULT_MAX_WRITE_BUFFER_SIZE / 2);
/// ```
pub const DEFAULT_MAX_WRITE_BUFFER_SIZE: usize = 64 * 1024;

/// Unread HTTP/1 request body the server reads and discards to keep a connection
/// alive after the service answered without reading it: 64 KiB. Past that it closes.
///
/// ```
/// h2c_mux::Builder::new().max_drain_size(h2c_mux::DEFAULT_MAX_DRAIN_SIZE * 4);
/// ```
pub const DEFAULT_MAX_DRAIN_SIZE: u64 = 64 * 1024;

/// How long a request body may go without a byte arriving while the server is
/// reading it: 30 s. Covers uploads, including an upgrade request's body before the
/// `101`, so no stage between accept and the first HTTP/2 frame waits unbounded.
///
/// ```
/// h2c_mux::Builder::new().body_read_timeout(h2c_mux::DEFAULT_BODY_READ_TIMEOUT / 2);
/// ```
pub const DEFAULT_BODY_READ_TIMEOUT: Duration = Duration::from_secs(30);

/// Interval between HTTP/2 keep-alive PINGs: 30 s. A peer that vanished without a
/// FIN (a dead NAT entry, a pulled cable) is found even while streams are open.
///
/// ```
/// h2c_mux::Builder::new().h2_keep_alive_interval(Some(h2c_mux::DEFAULT_H2_KEEP_ALIVE_INTERVAL * 2));
/// ```
pub const DEFAULT_H2_KEEP_ALIVE_INTERVAL: Duration = Duration::from_secs(30);

/// How long to wait for the PING's acknowledgement before closing: 20 s.
///
/// ```
/// h2c_mux::Builder::new().h2_keep_alive_timeout(h2c_mux::DEFAULT_H2_KEEP_ALIVE_TIMEOUT / 2);
/// ```
pub const DEFAULT_H2_KEEP_ALIVE_TIMEOUT: Duration = Duration::from_secs(20);

/// Streams the server may reset because of the client's errors before the
/// connection is closed: 1024 (h2's value, set explicitly), the MadeYouReset
/// defence (CVE-2025-8671).
///
/// ```
/// h2c_mux::Builder::new().max_local_error_reset_streams(h2c_mux::DEFAULT_MAX_LOCAL_ERROR_RESET_STREAMS / 4);
/// ```
pub const DEFAULT_MAX_LOCAL_ERROR_RESET_STREAMS: usize = 1024;

/// Connections [`Builder::serve`] keeps open at once: 20,000. Past it, accepting
/// pauses (the kernel's backlog holds new ones) so memory stays bounded.
///
/// ```
/// h2c_mux::Builder::new().max_connections(h2c_mux::DEFAULT_MAX_CONNECTIONS / 2);
/// ```
pub const DEFAULT_MAX_CONNECTIONS: usize = 20_000;

/// How long [`Builder::serve`] waits for open connections to finish after shutdown
/// was signalled: 10 s. Connections still open then are closed.
///
/// ```
/// h2c_mux::Builder::new().drain_timeout(h2c_mux::DEFAULT_DRAIN_TIMEOUT * 3);
/// ```
pub const DEFAULT_DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

pub(crate) type Policy = Arc<dyn Fn(&http::request::Parts) -> UpgradeDecision + Send + Sync>;

/// Everything a connection reads, resolved once.
#[derive(Clone)]
pub(crate) struct Config {
    pub(crate) h2c_upgrade: bool,
    pub(crate) prior_knowledge: bool,
    pub(crate) policy: Option<Policy>,
    pub(crate) max_upgrade_body_size: usize,
    pub(crate) stream_upgrade_body: bool,
    pub(crate) max_upgrade_response_hold: usize,
    pub(crate) max_head_size: usize,
    pub(crate) max_headers: usize,
    pub(crate) max_request_line: usize,
    pub(crate) keep_alive_timeout: Duration,
    pub(crate) idle_release_after: Duration,
    pub(crate) max_write_buffer_size: usize,
    pub(crate) header_read_timeout: Duration,
    pub(crate) preface_timeout: Duration,
    pub(crate) max_concurrent_streams: u32,
    pub(crate) max_pending_accept_reset_streams: usize,
    pub(crate) max_send_buffer_size: usize,
    pub(crate) initial_stream_window_size: u32,
    pub(crate) initial_connection_window_size: u32,
    pub(crate) max_drain_size: u64,
    pub(crate) drain_timeout: Duration,
    pub(crate) body_read_timeout: Duration,
    pub(crate) max_request_body_size: Option<u64>,
    pub(crate) h2_keep_alive_interval: Option<Duration>,
    pub(crate) h2_keep_alive_timeout: Duration,
    pub(crate) max_local_error_reset_streams: usize,
    pub(crate) max_connections: usize,
}

impl Config {
    /// The `h2` server settings of DESIGN §5, all set explicitly.
    pub(crate) fn h2_builder(&self) -> h2::server::Builder {
        let mut b = h2::server::Builder::new();
        b.max_concurrent_streams(self.max_concurrent_streams)
            .max_header_list_size(u32::try_from(self.max_head_size).unwrap_or(u32::MAX))
            .max_pending_accept_reset_streams(self.max_pending_accept_reset_streams)
            .max_local_error_reset_streams(Some(self.max_local_error_reset_streams))
            .max_send_buffer_size(self.max_send_buffer_size)
            .initial_window_size(self.initial_stream_window_size)
            .initial_connection_window_size(self.initial_connection_window_size);
        b
    }
}

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
            config: Config {
                h2c_upgrade: true,
                prior_knowledge: true,
                policy: None,
                max_upgrade_body_size: DEFAULT_MAX_UPGRADE_BODY_SIZE,
                stream_upgrade_body: true,
                max_upgrade_response_hold: DEFAULT_MAX_UPGRADE_RESPONSE_HOLD,
                max_head_size: DEFAULT_MAX_HEAD_SIZE,
                max_headers: DEFAULT_MAX_HEADERS,
                max_request_line: DEFAULT_MAX_REQUEST_LINE,
                keep_alive_timeout: DEFAULT_KEEP_ALIVE_TIMEOUT,
                idle_release_after: DEFAULT_IDLE_RELEASE_AFTER,
                max_write_buffer_size: DEFAULT_MAX_WRITE_BUFFER_SIZE,
                header_read_timeout: DEFAULT_HEADER_READ_TIMEOUT,
                preface_timeout: DEFAULT_PREFACE_TIMEOUT,
                max_concurrent_streams: DEFAULT_MAX_CONCURRENT_STREAMS,
                max_pending_accept_reset_streams: DEFAULT_MAX_PENDING_ACCEPT_RESET_STREAMS,
                max_send_buffer_size: DEFAULT_MAX_SEND_BUFFER_SIZE,
                initial_stream_window_size: DEFAULT_INITIAL_STREAM_WINDOW_SIZE,
                initial_connection_window_size: DEFAULT_INITIAL_CONNECTION_WINDOW_SIZE,
                max_drain_size: DEFAULT_MAX_DRAIN_SIZE,
                drain_timeout: DEFAULT_DRAIN_TIMEOUT,
                body_read_timeout: DEFAULT_BODY_READ_TIMEOUT,
                max_request_body_size: None,
                h2_keep_alive_interval: Some(DEFAULT_H2_KEEP_ALIVE_INTERVAL),
                h2_keep_alive_timeout: DEFAULT_H2_KEEP_ALIVE_TIMEOUT,
                max_local_error_reset_streams: DEFAULT_MAX_LOCAL_ERROR_RESET_STREAMS,
                max_connections: DEFAULT_MAX_CONNECTIONS,
            },
        }
    }

    #[cfg(test)]
    pub(crate) fn config(&self) -> &Config {
        &self.config
    }

    /// Whether `Upgrade: h2c` requests may switch the connection to HTTP/2
    /// (default: on). When off, such requests are answered over HTTP/1.1.
    ///
    /// ```
    /// h2c_mux::Builder::new().h2c_upgrade(false);
    /// ```
    pub fn h2c_upgrade(&mut self, enabled: bool) -> &mut Self {
        self.config.h2c_upgrade = enabled;
        self
    }

    /// Whether a connection that opens with the HTTP/2 preface is served as HTTP/2
    /// (default: on). When off, the preface is parsed as HTTP/1 and answered `505`.
    ///
    /// ```
    /// h2c_mux::Builder::new().prior_knowledge(false);
    /// ```
    pub fn prior_knowledge(&mut self, enabled: bool) -> &mut Self {
        self.config.prior_knowledge = enabled;
        self
    }

    /// Decides, per request, whether a valid `Upgrade: h2c` request is upgraded.
    ///
    /// The policy runs after every protocol check passed and before anything is
    /// written; it sees the request head. A declined request is answered over HTTP/1.1
    /// and carries an [`UpgradeDeclined`](crate::UpgradeDeclined) extension with the reason.
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
    /// [`DEFAULT_MAX_UPGRADE_RESPONSE_HOLD`]).
    ///
    /// ```
    /// h2c_mux::Builder::new().max_upgrade_response_hold(1 << 20);
    /// ```
    pub fn max_upgrade_response_hold(&mut self, bytes: usize) -> &mut Self {
        self.config.max_upgrade_response_hold = bytes;
        self
    }

    /// Largest upgrade request body buffered when streaming is off (default:
    /// [`DEFAULT_MAX_UPGRADE_BODY_SIZE`]). A larger body is answered over HTTP/1.1.
    ///
    /// ```
    /// h2c_mux::Builder::new().max_upgrade_body_size(1 << 20);
    /// ```
    pub fn max_upgrade_body_size(&mut self, bytes: usize) -> &mut Self {
        self.config.max_upgrade_body_size = bytes;
        self
    }

    /// Largest request head, HTTP/1 and HTTP/2 alike (default:
    /// [`DEFAULT_MAX_HEAD_SIZE`]). HTTP/1 answers `431` past it; HTTP/2 advertises it as
    /// `SETTINGS_MAX_HEADER_LIST_SIZE`.
    ///
    /// ```
    /// h2c_mux::Builder::new().max_head_size(16 * 1024);
    /// ```
    pub fn max_head_size(&mut self, bytes: usize) -> &mut Self {
        self.config.max_head_size = bytes;
        self
    }

    /// Most header fields in an HTTP/1 request (default: [`DEFAULT_MAX_HEADERS`]).
    ///
    /// ```
    /// h2c_mux::Builder::new().max_headers(64);
    /// ```
    pub fn max_headers(&mut self, count: usize) -> &mut Self {
        self.config.max_headers = count;
        self
    }

    /// Longest HTTP/1 request line (default: [`DEFAULT_MAX_REQUEST_LINE`]).
    ///
    /// ```
    /// h2c_mux::Builder::new().max_request_line(4096);
    /// ```
    pub fn max_request_line(&mut self, bytes: usize) -> &mut Self {
        self.config.max_request_line = bytes;
        self
    }

    /// How long a connection may be idle (default: [`DEFAULT_KEEP_ALIVE_TIMEOUT`]):
    /// HTTP/1 between requests, HTTP/2 with no open stream (then GOAWAY).
    ///
    /// ```
    /// h2c_mux::Builder::new().keep_alive_timeout(std::time::Duration::from_secs(5));
    /// ```
    pub fn keep_alive_timeout(&mut self, timeout: Duration) -> &mut Self {
        self.config.keep_alive_timeout = timeout;
        self
    }

    /// How long an HTTP/1.1 connection used back to back keeps its buffers through
    /// an idle gap before it parks (default: [`DEFAULT_IDLE_RELEASE_AFTER`], which
    /// explains parking). Zero parks every idle connection at once: the least
    /// memory, at the cost of re-allocating the buffers for every request.
    ///
    /// ```
    /// h2c_mux::Builder::new().idle_release_after(std::time::Duration::ZERO);
    /// ```
    pub fn idle_release_after(&mut self, delay: Duration) -> &mut Self {
        self.config.idle_release_after = delay;
        self
    }

    /// Response bytes an HTTP/1.1 connection queues before it waits for the socket
    /// (default: [`DEFAULT_MAX_WRITE_BUFFER_SIZE`]). At least 1 byte is queued: zero
    /// writes after every piece.
    ///
    /// ```
    /// h2c_mux::Builder::new().max_write_buffer_size(16 * 1024);
    /// ```
    pub fn max_write_buffer_size(&mut self, bytes: usize) -> &mut Self {
        self.config.max_write_buffer_size = bytes;
        self
    }

    /// How long a client may take to send a request head (default:
    /// [`DEFAULT_HEADER_READ_TIMEOUT`]).
    ///
    /// ```
    /// h2c_mux::Builder::new().header_read_timeout(std::time::Duration::from_secs(10));
    /// ```
    pub fn header_read_timeout(&mut self, timeout: Duration) -> &mut Self {
        self.config.header_read_timeout = timeout;
        self
    }

    /// How long to wait for the rest of the HTTP/2 client preface (default:
    /// [`DEFAULT_PREFACE_TIMEOUT`]).
    ///
    /// ```
    /// h2c_mux::Builder::new().preface_timeout(std::time::Duration::from_secs(2));
    /// ```
    pub fn preface_timeout(&mut self, timeout: Duration) -> &mut Self {
        self.config.preface_timeout = timeout;
        self
    }

    /// `SETTINGS_MAX_CONCURRENT_STREAMS` (default: [`DEFAULT_MAX_CONCURRENT_STREAMS`]).
    /// Stream 1 of an upgraded connection counts against it.
    ///
    /// ```
    /// h2c_mux::Builder::new().max_concurrent_streams(100);
    /// ```
    pub fn max_concurrent_streams(&mut self, max: u32) -> &mut Self {
        self.config.max_concurrent_streams = max;
        self
    }

    /// Streams a client may reset before they are accepted (default:
    /// [`DEFAULT_MAX_PENDING_ACCEPT_RESET_STREAMS`]).
    ///
    /// ```
    /// h2c_mux::Builder::new().max_pending_accept_reset_streams(10);
    /// ```
    pub fn max_pending_accept_reset_streams(&mut self, max: usize) -> &mut Self {
        self.config.max_pending_accept_reset_streams = max;
        self
    }

    /// Response bytes buffered per HTTP/2 stream (default:
    /// [`DEFAULT_MAX_SEND_BUFFER_SIZE`]).
    ///
    /// ```
    /// h2c_mux::Builder::new().max_send_buffer_size(64 * 1024);
    /// ```
    pub fn max_send_buffer_size(&mut self, bytes: usize) -> &mut Self {
        self.config.max_send_buffer_size = bytes;
        self
    }

    /// HTTP/2 receive window per stream (default:
    /// [`DEFAULT_INITIAL_STREAM_WINDOW_SIZE`]).
    ///
    /// ```
    /// h2c_mux::Builder::new().initial_stream_window_size(65_535);
    /// ```
    pub fn initial_stream_window_size(&mut self, bytes: u32) -> &mut Self {
        self.config.initial_stream_window_size = bytes;
        self
    }

    /// HTTP/2 receive window for a connection (default:
    /// [`DEFAULT_INITIAL_CONNECTION_WINDOW_SIZE`]).
    ///
    /// ```
    /// h2c_mux::Builder::new().initial_connection_window_size(1 << 20);
    /// ```
    pub fn initial_connection_window_size(&mut self, bytes: u32) -> &mut Self {
        self.config.initial_connection_window_size = bytes;
        self
    }

    /// Unread request body discarded to keep an HTTP/1 connection alive (default:
    /// [`DEFAULT_MAX_DRAIN_SIZE`]).
    ///
    /// ```
    /// h2c_mux::Builder::new().max_drain_size(0); // close instead of draining
    /// ```
    pub fn max_drain_size(&mut self, bytes: u64) -> &mut Self {
        self.config.max_drain_size = bytes;
        self
    }

    /// How long a request body may go without progress while being read (default:
    /// [`DEFAULT_BODY_READ_TIMEOUT`]). The body then yields a timeout error and the
    /// connection is closed.
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
    /// [`DEFAULT_H2_KEEP_ALIVE_INTERVAL`]).
    ///
    /// ```
    /// h2c_mux::Builder::new().h2_keep_alive_interval(None);
    /// ```
    pub fn h2_keep_alive_interval(&mut self, interval: Option<Duration>) -> &mut Self {
        self.config.h2_keep_alive_interval = interval;
        self
    }

    /// How long a keep-alive PING may go unanswered before the connection is closed
    /// (default: [`DEFAULT_H2_KEEP_ALIVE_TIMEOUT`]).
    ///
    /// ```
    /// h2c_mux::Builder::new().h2_keep_alive_timeout(std::time::Duration::from_secs(5));
    /// ```
    pub fn h2_keep_alive_timeout(&mut self, timeout: Duration) -> &mut Self {
        self.config.h2_keep_alive_timeout = timeout;
        self
    }

    /// Streams the server may reset for the client's errors before closing the
    /// connection (default: [`DEFAULT_MAX_LOCAL_ERROR_RESET_STREAMS`]).
    ///
    /// ```
    /// h2c_mux::Builder::new().max_local_error_reset_streams(256);
    /// ```
    pub fn max_local_error_reset_streams(&mut self, max: usize) -> &mut Self {
        self.config.max_local_error_reset_streams = max;
        self
    }

    /// Connections [`Builder::serve`] keeps open at once (default:
    /// [`DEFAULT_MAX_CONNECTIONS`]).
    ///
    /// ```
    /// h2c_mux::Builder::new().max_connections(1000);
    /// ```
    pub fn max_connections(&mut self, max: usize) -> &mut Self {
        self.config.max_connections = max;
        self
    }

    /// How long [`Builder::serve`] waits for connections after shutdown (default:
    /// [`DEFAULT_DRAIN_TIMEOUT`]).
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
        Connection::new(io, service, Arc::new(self.config.clone()), None)
    }

    /// Accepts connections from `listener` until `shutdown` completes, serving each
    /// on its own task.
    ///
    /// Sets `TCP_NODELAY` on every connection (an upgrade writes the `101` and the
    /// first HTTP/2 frames as one small segment that must not wait on Nagle). When
    /// `shutdown` completes it stops accepting, asks every connection to shut down
    /// gracefully, and waits up to the drain timeout for them before closing the rest.
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
    pub async fn serve<S, B, F>(
        &self,
        listener: tokio::net::TcpListener,
        service: S,
        shutdown: F,
    ) -> std::io::Result<()>
    where
        S: tower_service::Service<Request<Body>, Response = Response<B>> + Clone + Send + 'static,
        S::Future: Send + 'static,
        S::Error: Into<BoxError>,
        B: http_body::Body<Data = Bytes> + Send + 'static,
        B::Error: Into<BoxError>,
        F: std::future::Future<Output = ()>,
    {
        crate::server::serve(listener, service, Arc::new(self.config.clone()), shutdown).await
    }
}

impl fmt::Debug for Builder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let c = &self.config;
        f.debug_struct("Builder")
            .field("h2c_upgrade", &c.h2c_upgrade)
            .field("prior_knowledge", &c.prior_knowledge)
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
