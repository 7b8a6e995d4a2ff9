//! `h2c-mux`: the demo server. HTTP/1.1, h2c upgrade and HTTP/2 prior knowledge on
//! one port; see `h2c-mux --help`.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};

use clap::Parser;
use h2c_mux::demo::{Demo, DemoBody};
use h2c_mux::{Body, Builder, Protocol};
use http::{Request, Response};
use tracing::info;

/// Serve the h2c-mux demo service: HTTP/1.1, the h2c upgrade and HTTP/2 with prior
/// knowledge, all on one port.
///
/// Routes: GET / (hello world), POST|PUT /echo (echoes the body), GET /bytes/N (N
/// bytes, N up to 1 GiB). Stops gracefully on Ctrl-C or SIGTERM.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: SocketAddr,

    /// Answer `Upgrade: h2c` requests over HTTP/1.1 instead of switching to HTTP/2.
    #[arg(long)]
    no_upgrade: bool,

    /// Do not accept HTTP/2 with prior knowledge (the preface is answered 505).
    #[arg(long)]
    no_prior_knowledge: bool,

    /// Largest request body read before an upgrade; larger bodies are answered over
    /// HTTP/1.1.
    #[arg(long, value_name = "BYTES", default_value_t = h2c_mux::DEFAULT_MAX_UPGRADE_BODY_SIZE)]
    max_upgrade_body: usize,

    /// Concurrent HTTP/2 streams a client may open.
    #[arg(long, value_name = "N", default_value_t = h2c_mux::DEFAULT_MAX_CONCURRENT_STREAMS)]
    max_concurrent_streams: u32,

    /// Do not log a line per request (for load tests).
    #[arg(long)]
    quiet: bool,

    /// Log filter, in `RUST_LOG` syntax (the RUST_LOG variable wins when set).
    #[arg(long, value_name = "FILTER", default_value = "info")]
    log: String,
}

fn main() -> std::io::Result<()> {
    let args = Args::parse();
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(&args.log));
    tracing_subscriber::fmt().with_env_filter(filter).init();

    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(run(args))
}

async fn run(args: Args) -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::bind(args.listen).await?;
    info!(
        addr = %listener.local_addr()?,
        upgrade = !args.no_upgrade,
        prior_knowledge = !args.no_prior_knowledge,
        "listening"
    );
    let mut builder = Builder::new();
    builder
        .h2c_upgrade(!args.no_upgrade)
        .prior_knowledge(!args.no_prior_knowledge)
        .max_upgrade_body_size(args.max_upgrade_body)
        .max_concurrent_streams(args.max_concurrent_streams);
    let service = Logged {
        inner: Demo::new(),
        quiet: args.quiet,
    };
    builder.serve(listener, service, shutdown_signal()).await?;
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

/// Logs one line per request: method, path, protocol, status.
#[derive(Clone)]
struct Logged {
    inner: Demo,
    quiet: bool,
}

impl tower_service::Service<Request<Body>> for Logged {
    type Response = Response<DemoBody>;
    type Error = Infallible;
    type Future = LogFuture;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<Body>) -> LogFuture {
        let line = (!self.quiet).then(|| {
            let proto = req
                .extensions()
                .get::<Protocol>()
                .map_or("unknown", |p| p.as_str());
            (req.method().clone(), req.uri().path().to_owned(), proto)
        });
        LogFuture {
            inner: self.inner.call(req),
            line,
        }
    }
}

struct LogFuture {
    inner: <Demo as tower_service::Service<Request<Body>>>::Future,
    line: Option<(http::Method, String, &'static str)>,
}

impl Future for LogFuture {
    type Output = Result<Response<DemoBody>, Infallible>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let res = std::task::ready!(Pin::new(&mut self.inner).poll(cx));
        if let (Some((method, path, proto)), Ok(r)) = (self.line.take(), &res) {
            info!(%method, %path, protocol = proto, status = r.status().as_u16(), "request");
        }
        Poll::Ready(res)
    }
}
