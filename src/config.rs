//! The resolved configuration every layer reads, and the `DEFAULT_*` value of each
//! option. The public [`Builder`](crate::Builder) fills a [`Config`]; nothing
//! below the builder needs the builder itself.

use std::sync::Arc;
use std::time::Duration;

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
/// ([`Builder::stream_upgrade_body`](crate::Builder::stream_upgrade_body)): 256 KiB. The buffered body is held in memory
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

/// Largest HTTP/2 frame payload the server accepts (`SETTINGS_MAX_FRAME_SIZE`):
/// 16 KiB, the size every peer must accept (RFC 9113 §4.2), so a client need not
/// buffer larger frames; what the server sends is bounded by the client's setting.
///
/// ```
/// h2c_mux::Builder::new().max_frame_size(h2c_mux::DEFAULT_MAX_FRAME_SIZE * 4);
/// ```
pub const DEFAULT_MAX_FRAME_SIZE: u32 = 16 * 1024;

/// The range RFC 9113 §6.5.2 allows for `SETTINGS_MAX_FRAME_SIZE`.
const FRAME_SIZES: std::ops::RangeInclusive<u32> = DEFAULT_MAX_FRAME_SIZE..=(1 << 24) - 1;

/// How long an HTTP/1.1 connection that is being used back to back keeps its
/// buffers through an idle gap: 100 ms. An idle HTTP/1.1 connection *parks*: its read
/// and write buffers and its request state are freed, leaving the socket, the
/// service and a timer: about 1.2 KiB per connection (940 B of heap measured with
/// DHAT, `benches/profile idle-h1`; 1.2 KiB of RSS each with 1,000 parked
/// connections open to the release binary, `benches/run --only S6`). A connection
/// parks as soon as it goes idle,
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
/// for the socket: 256 KiB. Keeps a large or pipelined response streaming without
/// holding more than that per connection (a body chunk larger than this is queued as
/// it is, without a copy, and written before the next one is taken). It is also how
/// much one write takes when the body is ready faster than the socket drains: four
/// of the 64 KiB chunks a streaming body typically yields (queued, not copied) go
/// out in one `writev`. At 64 KiB every chunk was a write of its own, and a 1 GiB
/// download cost about twice the server CPU per MB (0.229 against 0.117 ms, nearly
/// all of it in the kernel; `benches/README.md`, S8); hyper queues up to about
/// 400 KiB.
///
/// ```
/// h2c_mux::Builder::new().max_write_buffer_size(h2c_mux::DEFAULT_MAX_WRITE_BUFFER_SIZE / 2);
/// ```
pub const DEFAULT_MAX_WRITE_BUFFER_SIZE: usize = 256 * 1024;

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

/// Connections [`Builder::serve`](crate::Builder::serve) keeps open at once: 20,000. Past it, accepting
/// pauses (the kernel's backlog holds new ones) so memory stays bounded.
///
/// ```
/// h2c_mux::Builder::new().max_connections(h2c_mux::DEFAULT_MAX_CONNECTIONS / 2);
/// ```
pub const DEFAULT_MAX_CONNECTIONS: usize = 20_000;

/// How long [`Builder::serve`](crate::Builder::serve) waits for open connections to finish after shutdown
/// was signalled: 10 s. Connections still open then are closed.
///
/// ```
/// h2c_mux::Builder::new().drain_timeout(h2c_mux::DEFAULT_DRAIN_TIMEOUT * 3);
/// ```
pub const DEFAULT_DRAIN_TIMEOUT: Duration = Duration::from_secs(10);
/// The embedder's upgrade policy (see [`Builder::upgrade_policy`](crate::Builder::upgrade_policy)).
pub(crate) type Policy = Arc<dyn Fn(&http::request::Parts) -> UpgradeDecision + Send + Sync>;

/// Everything a connection reads, resolved once from the [`Builder`](crate::Builder).
#[derive(Clone)]
pub(crate) struct Config {
    pub(crate) h2c_upgrade: bool,
    /// Whether an h2c upgrade may switch a request that carries forwarding fields.
    pub(crate) h2c_through_proxies: bool,
    pub(crate) prior_knowledge: bool,
    pub(crate) http2_only: bool,
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
    pub(crate) max_frame_size: u32,
    pub(crate) http1_keep_alive: bool,
    pub(crate) max_drain_size: u64,
    pub(crate) drain_timeout: Duration,
    pub(crate) body_read_timeout: Duration,
    pub(crate) max_request_body_size: Option<u64>,
    pub(crate) h2_keep_alive_interval: Option<Duration>,
    pub(crate) h2_keep_alive_timeout: Duration,
    pub(crate) max_local_error_reset_streams: usize,
    pub(crate) max_connections: usize,
    pub(crate) enable_connect_protocol: bool,
}

impl Config {
    /// The `h2` server settings, every one set explicitly (none is left to `h2`'s
    /// defaults, which a release of `h2` may change).
    pub(crate) fn h2_builder(&self) -> h2::server::Builder {
        let mut b = h2::server::Builder::new();
        b.max_concurrent_streams(self.max_concurrent_streams)
            .max_header_list_size(u32::try_from(self.max_head_size).unwrap_or(u32::MAX))
            .max_pending_accept_reset_streams(self.max_pending_accept_reset_streams)
            .max_local_error_reset_streams(Some(self.max_local_error_reset_streams))
            .max_send_buffer_size(self.max_send_buffer_size)
            .initial_window_size(self.initial_stream_window_size)
            .initial_connection_window_size(self.initial_connection_window_size)
            // h2 panics outside the RFC's range; the setter keeps the value in it.
            .max_frame_size(
                self.max_frame_size
                    .clamp(*FRAME_SIZES.start(), *FRAME_SIZES.end()),
            );
        // RFC 8441 §3: without the setting, h2 resets every stream that carries
        // `:protocol`, so the opt-in is the setting alone. The same builder makes
        // prior-knowledge and upgraded connections, so both advertise it.
        if self.enable_connect_protocol {
            b.enable_connect_protocol();
        }
        b
    }
}

impl Default for Config {
    /// Every option at its `DEFAULT_*` value: h2c upgrade and prior knowledge on,
    /// extended CONNECT off.
    fn default() -> Self {
        Config {
            h2c_upgrade: true,
            h2c_through_proxies: false,
            prior_knowledge: true,
            http2_only: false,
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
            max_frame_size: DEFAULT_MAX_FRAME_SIZE,
            http1_keep_alive: true,
            max_drain_size: DEFAULT_MAX_DRAIN_SIZE,
            drain_timeout: DEFAULT_DRAIN_TIMEOUT,
            body_read_timeout: DEFAULT_BODY_READ_TIMEOUT,
            max_request_body_size: None,
            h2_keep_alive_interval: Some(DEFAULT_H2_KEEP_ALIVE_INTERVAL),
            h2_keep_alive_timeout: DEFAULT_H2_KEEP_ALIVE_TIMEOUT,
            max_local_error_reset_streams: DEFAULT_MAX_LOCAL_ERROR_RESET_STREAMS,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            enable_connect_protocol: false,
        }
    }
}
