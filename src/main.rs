//! `h2c-mux`: the demo server. HTTP/1.1, h2c upgrade and HTTP/2 prior knowledge on
//! one port; see `h2c-mux --help`.

use std::convert::Infallible;
use std::future::Future;
use std::io::IsTerminal;
use std::net::SocketAddr;
use std::pin::Pin;
use std::process::ExitCode;
use std::task::{Context, Poll};

use clap::Parser;
use h2c_mux::demo::{Demo, DemoBody};
use h2c_mux::{AnsweredOver, Body, Builder, Protocol};
use http::{Request, Response};
use tracing::info;

/// Serve the h2c-mux demo service: HTTP/1.1, the h2c upgrade and HTTP/2 with prior
/// knowledge, all on one port.
///
/// Routes: GET / (hello world), POST|PUT /echo (echoes the body), GET /bytes/N (N
/// bytes, N up to 1 GiB), POST|PUT /sha256 (the body's SHA-256), GET /ws (a WebSocket
/// echo), any method on /drain (answers only once the whole request body is read),
/// and with --enable-connect-protocol an HTTP/2 CONNECT /echo with :protocol echo (a
/// tunnel that echoes its bytes). Stops gracefully on Ctrl-C or SIGTERM.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// Address to listen on, as IP:PORT (`127.0.0.1:8080`, `[::1]:8080`, port 0 for
    /// any free one) or HOST:PORT (`localhost:8080`: the host's first address,
    /// IPv4 preferred).
    #[arg(long, value_name = "IP:PORT", default_value = "127.0.0.1:8080", value_parser = listen_addr)]
    listen: SocketAddr,

    /// Connections the kernel may hold for this server before it accepts them (the
    /// listen backlog; Linux caps it at net.core.somaxconn). tokio's default, 1,024,
    /// overflows when a thousand clients connect at once.
    #[arg(long, value_name = "N", default_value_t = 4096)]
    backlog: u32,

    /// Answer `Upgrade: h2c` requests over HTTP/1.1 instead of switching to HTTP/2.
    #[arg(long)]
    no_upgrade: bool,

    /// Do not accept HTTP/2 with prior knowledge (the preface is answered 505).
    #[arg(long)]
    no_prior_knowledge: bool,

    /// Buffer an upgrade request's body, up to BYTES, before switching to HTTP/2;
    /// a larger body is answered over HTTP/1.1. Without this flag upgrade bodies of
    /// any size stream to the service and are upgraded (the library's default,
    /// `stream_upgrade_body`).
    #[arg(long, value_name = "BYTES")]
    max_upgrade_body: Option<usize>,

    /// Accept HTTP/2 extended CONNECT (RFC 8441): the demo echoes a tunnel opened
    /// with `CONNECT /echo` and `:protocol: echo`.
    #[arg(long)]
    enable_connect_protocol: bool,

    /// Concurrent HTTP/2 streams a client may open.
    #[arg(long, value_name = "N", default_value_t = h2c_mux::DEFAULT_MAX_CONCURRENT_STREAMS)]
    max_concurrent_streams: u32,

    /// Do not log a line per request (for load tests).
    #[arg(long)]
    quiet: bool,

    /// Never hand memory freed by closed connections back to the system. By default,
    /// every 5 s, once the allocator holds 8 MiB or more free, it is returned with
    /// `malloc_trim` (Linux with glibc only).
    #[arg(long)]
    no_heap_trim: bool,

    /// Log filter, in `RUST_LOG` syntax (the RUST_LOG variable wins when set).
    #[arg(long, value_name = "FILTER", default_value = "info")]
    log: String,
}

/// `--listen`: an IP:PORT as it is, else a HOST:PORT resolved to its first IPv4
/// address (the default listens on IPv4 loopback, and so does `localhost:PORT`),
/// else its first address.
fn listen_addr(s: &str) -> Result<SocketAddr, String> {
    if let Ok(addr) = s.parse() {
        return Ok(addr);
    }
    let expected = "expected IP:PORT (such as 127.0.0.1:8080) or HOST:PORT";
    if s.rsplit_once(':')
        .is_none_or(|(_, port)| port.parse::<u16>().is_err())
    {
        return Err(expected.to_string());
    }
    let addrs: Vec<SocketAddr> = std::net::ToSocketAddrs::to_socket_addrs(s)
        .map_err(|e| format!("{expected}; cannot resolve {s}: {e}"))?
        .collect();
    addrs
        .iter()
        .find(|a| a.is_ipv4())
        .or(addrs.first())
        .copied()
        .ok_or_else(|| format!("{expected}; {s} has no address"))
}

fn main() -> ExitCode {
    let args = Args::parse();
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(&args.log));
    // The log goes to stdout: colour it only when that is a terminal, and never when
    // NO_COLOR is set to anything but "" (https://no-color.org).
    let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stdout().is_terminal() && !no_color)
        .init();

    let done = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))
        .and_then(|rt| rt.block_on(run(args)));
    match done {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // What a person reads: the error's Display, not its Debug form.
            eprintln!("h2c-mux: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The listening socket, with the backlog asked for.
fn listen(addr: SocketAddr, backlog: u32) -> std::io::Result<tokio::net::TcpListener> {
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    // A restarted server can bind while its old connections sit in TIME_WAIT.
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(backlog)
}

async fn run(args: Args) -> Result<(), String> {
    let listener = listen(args.listen, args.backlog)
        .map_err(|e| format!("cannot listen on {}: {e}", args.listen))?;
    let local = listener
        .local_addr()
        .map_err(|e| format!("cannot listen on {}: {e}", args.listen))?;
    info!(
        addr = %local,
        upgrade = !args.no_upgrade,
        prior_knowledge = !args.no_prior_knowledge,
        "listening"
    );
    let mut builder = Builder::new();
    builder
        .h2c_upgrade(!args.no_upgrade)
        .prior_knowledge(!args.no_prior_knowledge)
        .max_concurrent_streams(args.max_concurrent_streams)
        .enable_connect_protocol(args.enable_connect_protocol);
    if let Some(bytes) = args.max_upgrade_body {
        builder
            .stream_upgrade_body(false)
            .max_upgrade_body_size(bytes);
    }
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    if !args.no_heap_trim {
        tokio::spawn(heap_trim::run());
    }
    if args.quiet {
        // No log line to write, so no wrapper to pay for on every request.
        builder
            .serve(listener, Demo::new(), shutdown_signal())
            .await
            .map_err(|e| format!("serving {local}: {e}"))?;
    } else {
        let service = Logged { inner: Demo::new() };
        builder
            .serve(listener, service, shutdown_signal())
            .await
            .map_err(|e| format!("serving {local}: {e}"))?;
    }
    info!("stopped");
    Ok(())
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
    info!("shutdown signal received");
}

/// Logs one line per request: method, path, protocol, status. The protocol is the
/// one that carried the answer: for a streamed upgrade's stream 1 that is decided
/// only after the service answered (see [`AnsweredOver`]), so its line is written
/// once the response body is dropped.
#[derive(Clone)]
struct Logged {
    inner: Demo,
}

impl tower_service::Service<Request<Body>> for Logged {
    type Response = Response<LoggedBody>;
    type Error = Infallible;
    type Future = LogFuture;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<Body>) -> LogFuture {
        let proto = Protocol::of(&req).map_or("unknown", |p| p.as_str());
        let answered = req.extensions().get::<AnsweredOver>().cloned();
        let line = Some(Line {
            method: req.method().clone(),
            path: req.uri().path().to_owned(),
            proto,
            answered,
            status: 0,
        });
        LogFuture {
            inner: self.inner.call(req),
            line,
        }
    }
}

/// One request's log line.
struct Line {
    method: http::Method,
    path: String,
    /// How the request arrived ([`Protocol::of`]).
    proto: &'static str,
    /// Set for a streamed upgrade's stream 1: the protocol that carried the answer.
    answered: Option<AnsweredOver>,
    status: u16,
}

impl Line {
    fn write(self) {
        let proto = match &self.answered {
            Some(a) => a.get().map_or("unknown", |p| p.as_str()),
            None => self.proto,
        };
        let Line {
            method,
            path,
            status,
            ..
        } = self;
        info!(%method, %path, protocol = proto, status, "request");
    }
}

struct LogFuture {
    inner: <Demo as tower_service::Service<Request<Body>>>::Future,
    line: Option<Line>,
}

impl Future for LogFuture {
    type Output = Result<Response<LoggedBody>, Infallible>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let res = std::task::ready!(Pin::new(&mut self.inner).poll(cx));
        Poll::Ready(res.map(|r| {
            let mut line = self.line.take();
            if let Some(l) = line.as_mut() {
                l.status = r.status().as_u16();
            }
            // Undecided: the line waits for the response body to go.
            let line = match line {
                Some(l) if l.answered.as_ref().is_some_and(|a| a.get().is_none()) => Some(l),
                Some(l) => {
                    l.write();
                    None
                }
                None => None,
            };
            r.map(|inner| LoggedBody { inner, line })
        }))
    }
}

/// The demo's response body, with the log line it may still owe.
struct LoggedBody {
    inner: DemoBody,
    line: Option<Line>,
}

impl http_body::Body for LoggedBody {
    type Data = bytes::Bytes;
    type Error = h2c_mux::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<bytes::Bytes>, h2c_mux::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for LoggedBody {
    fn drop(&mut self) {
        if let Some(line) = self.line.take() {
            line.write();
        }
    }
}

/// glibc's allocator keeps the memory that closed connections freed: after a load, the
/// server's RSS stays at its peak, all of it free inside the allocator. `malloc_trim`
/// hands free pages back (the figures, measured with `tests/load.rs`'s mixed load
/// against this binary, are in the README's Quick start). This task checks every [`INTERVAL`] how much the allocator
/// holds free and trims when that is at least [`FREE_THRESHOLD`], so a server that was
/// busy returns to its idle size a few seconds after the load ends, without trimming
/// (and re-faulting pages) while a steady load recycles its memory.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
// `mallinfo2` and `malloc_trim` have no safe wrapper: two FFI calls, each with
// its SAFETY note.
#[allow(unsafe_code)]
mod heap_trim {
    use std::time::{Duration, Instant};

    use tracing::debug;

    /// How often the free memory is checked: a `mallinfo2` call, microseconds.
    const INTERVAL: Duration = Duration::from_secs(5);

    /// Free bytes inside the allocator worth a trim: 8 MiB, about 300 closed idle
    /// HTTP/2 connections' worth.
    const FREE_THRESHOLD: usize = 8 << 20;

    /// glibc's `struct mallinfo2` (glibc 2.33 and later).
    #[repr(C)]
    struct MallInfo2 {
        arena: usize,
        ordblks: usize,
        smblks: usize,
        hblks: usize,
        hblkhd: usize,
        usmblks: usize,
        fsmblks: usize,
        uordblks: usize,
        fordblks: usize,
        keepcost: usize,
    }

    extern "C" {
        fn mallinfo2() -> MallInfo2;
        fn malloc_trim(pad: usize) -> std::ffi::c_int;
    }

    pub(crate) async fn run() {
        let mut tick = tokio::time::interval(INTERVAL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            // SAFETY: mallinfo2 takes no arguments and returns a plain struct by value;
            // it only reads the allocator's statistics under its own locks.
            let info = unsafe { mallinfo2() };
            let free = info.fordblks;
            if free < FREE_THRESHOLD {
                continue;
            }
            let trimmed = tokio::task::spawn_blocking(move || {
                let start = Instant::now();
                // SAFETY: malloc_trim(0) only returns free pages of the allocator's
                // own heaps to the kernel; no memory that is in use is touched.
                let released = unsafe { malloc_trim(0) } != 0;
                (released, start.elapsed())
            })
            .await;
            if let Ok((released, took)) = trimmed {
                debug!(free, released, ?took, "heap trim");
            }
        }
    }
}
