//! One axum `Router` served over TLS (rustls) and over cleartext, on two
//! listeners:
//!
//! ```sh
//! cargo run --example tls                       # https://127.0.0.1:8443, http://127.0.0.1:8080
//! cargo run --example tls -- --tls 127.0.0.1:9443 --plain 127.0.0.1:9080 \
//!     --cert cert.pem --key key.pem             # a certificate chain and key of your own (PEM)
//!
//! curl -k --http2 https://127.0.0.1:8443/       # ALPN h2: hello over h2-tls
//! curl -k --http1.1 https://127.0.0.1:8443/     # ALPN http/1.1: hello over http/1.1
//! curl --http2 http://127.0.0.1:8080/           # cleartext: 101, then hello over h2c-upgrade
//! ```
//!
//! Without `--cert` and `--key` it makes a self-signed certificate for
//! `localhost` and `127.0.0.1` at start-up (hence curl's `-k`). Ctrl-C stops both
//! listeners gracefully.
//!
//! The TLS listener ([`TlsListener`]) is what `h2c_mux::serve` needs of one: the
//! handshakes run on tasks of their own, each bounded by [`HANDSHAKE_TIMEOUT`],
//! at most [`MAX_HANDSHAKES`] at once, and the finished connections reach
//! `accept` through a channel; `Listener::transport` tells h2c-mux what ALPN
//! chose, so `h2` is HTTP/2 from the first byte and `http/1.1` never switches
//! with `Upgrade: h2c` (that is the cleartext listener's business).

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use axum::{extract::Request, routing::get, Router};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch, Semaphore};
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio_rustls::rustls::{self, ServerConfig};
use tokio_rustls::{server::TlsStream, TlsAcceptor};

/// How long a client may take over its TLS handshake: long enough for a slow
/// network, short enough that a client that connects and says nothing does not
/// keep its handshake slot.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Handshakes in flight at once. `max_connections` counts only the connections
/// `accept` has handed over; this bounds the ones still shaking hands (and the
/// ones done and waiting in the channel), so a flood of new clients waits in the
/// kernel's backlog instead of in memory.
pub const MAX_HANDSHAKES: usize = 256;

/// Finished handshakes waiting for `accept`: a few, so a burst does not wait on
/// the accept loop one by one.
const READY_QUEUE: usize = 64;

/// Pause after an accept error such as EMFILE, so a full descriptor table does
/// not turn the acceptor into a busy spin.
const ACCEPT_ERROR_BACKOFF: Duration = Duration::from_millis(50);

/// TCP wrapped in TLS: an `h2c_mux::Listener` whose connections have finished
/// their handshake.
#[derive(Debug)]
pub struct TlsListener {
    ready: mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
    local: SocketAddr,
}

impl TlsListener {
    /// Starts accepting on `tcp` and shaking hands with `acceptor`, on tasks of
    /// its own that stop once the listener is dropped (as `serve` drops it when
    /// it shuts down).
    pub fn new(mut tcp: TcpListener, acceptor: TlsAcceptor) -> io::Result<TlsListener> {
        let local = tcp.local_addr()?;
        let (tx, ready) = mpsc::channel(READY_QUEUE);
        let slots = Arc::new(Semaphore::new(MAX_HANDSHAKES));
        tokio::spawn(async move {
            loop {
                // A slot before accepting: at the bound, clients wait in the backlog.
                let slot = tokio::select! {
                    _ = tx.closed() => return,
                    slot = slots.clone().acquire_owned() => match slot {
                        Ok(slot) => slot,
                        Err(_) => return,
                    },
                };
                let accepted = tokio::select! {
                    _ = tx.closed() => return,
                    // h2c-mux's `Listener::accept` for TCP sets TCP_NODELAY.
                    accepted = h2c_mux::Listener::accept(&mut tcp) => accepted,
                };
                let (stream, peer) = match accepted {
                    Ok(a) => a,
                    Err(e) => {
                        eprintln!("tls: accept failed: {e}");
                        tokio::time::sleep(ACCEPT_ERROR_BACKOFF).await;
                        continue;
                    }
                };
                let (acceptor, tx) = (acceptor.clone(), tx.clone());
                tokio::spawn(async move {
                    let handshake =
                        tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream));
                    let tls = tokio::select! {
                        _ = tx.closed() => return,
                        done = handshake => match done {
                            Ok(Ok(tls)) => tls,
                            // A client that failed or stalled its handshake: nothing
                            // to serve.
                            Ok(Err(_)) | Err(_) => return,
                        },
                    };
                    let _ = tx.send((tls, peer)).await;
                    drop(slot);
                });
            }
        });
        Ok(TlsListener { ready, local })
    }
}

impl h2c_mux::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> io::Result<(Self::Io, SocketAddr)> {
        self.ready
            .recv()
            .await
            .ok_or_else(|| io::Error::other("the TLS acceptor stopped"))
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        Ok(self.local)
    }

    fn transport(&self, io: &Self::Io) -> h2c_mux::Transport {
        h2c_mux::Transport::tls(io.get_ref().1.alpn_protocol())
    }
}

/// The server's TLS configuration: rustls with ring, TLS 1.2 and 1.3, and ALPN
/// offering `h2` before `http/1.1`, so a client that speaks both gets HTTP/2.
pub fn tls_config(
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
) -> Result<Arc<ServerConfig>, rustls::Error> {
    // rustls marks ring's provider deprecated because ring has no post-quantum key
    // exchange; it is the provider here because it builds without cmake, which
    // aws-lc-rs needs.
    #[allow(deprecated)]
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(chain, key)?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// A self-signed certificate for `localhost` and `127.0.0.1`, and its key.
pub fn self_signed() -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), rcgen::Error>
{
    let made = rcgen::generate_simple_self_signed(["localhost".into(), "127.0.0.1".into()])?;
    let key = PrivatePkcs8KeyDer::from(made.signing_key.serialize_der());
    Ok((vec![made.cert.der().clone()], key.into()))
}

/// A certificate chain and its key from PEM files.
pub fn from_pem_files(
    cert: &Path,
    key: &Path,
) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), Box<dyn std::error::Error>> {
    let chain = CertificateDer::pem_file_iter(cert)
        .map_err(|e| format!("{}: {e}", cert.display()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("{}: {e}", cert.display()))?;
    let key = PrivateKeyDer::from_pem_file(key).map_err(|e| format!("{}: {e}", key.display()))?;
    Ok((chain, key))
}

/// The application, the same on both listeners: `GET /` says which protocol
/// carried the request (`h2c_mux::Protocol`).
pub fn app() -> Router {
    Router::new().route("/", get(hello))
}

async fn hello(req: Request) -> String {
    let protocol = h2c_mux::Protocol::of(&req).map_or("unknown", |p| p.as_str());
    format!("hello over {protocol}\n")
}

/// Serves `app` on both listeners with `builder` until `shutdown` completes, then
/// drains both.
pub async fn serve_both(
    builder: &h2c_mux::Builder,
    tls: TlsListener,
    plain: TcpListener,
    app: Router,
    shutdown: impl Future<Output = ()>,
) -> io::Result<()> {
    let (stop, stopped) = watch::channel(());
    let wait = |mut stopped: watch::Receiver<()>| async move {
        let _ = stopped.changed().await;
    };
    let (over_tls, cleartext, ()) = tokio::join!(
        builder.serve(tls, app.clone(), wait(stopped.clone())),
        builder.serve(plain, app, wait(stopped)),
        async {
            shutdown.await;
            let _ = stop.send(());
        },
    );
    over_tls.and(cleartext)
}

/// The command line: `--tls ADDR`, `--plain ADDR`, `--cert FILE`, `--key FILE`.
struct Args {
    tls: SocketAddr,
    plain: SocketAddr,
    pem: Option<(PathBuf, PathBuf)>,
}

fn parse_args() -> Result<Args, String> {
    let mut tls: SocketAddr = ([127, 0, 0, 1], 8443).into();
    let mut plain: SocketAddr = ([127, 0, 0, 1], 8080).into();
    let (mut cert, mut key) = (None, None);
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let mut value = || args.next().ok_or(format!("{flag} needs a value"));
        match flag.as_str() {
            "--tls" => {
                tls = value()?
                    .parse()
                    .map_err(|e| format!("--tls: {e} (IP:PORT)"))?
            }
            "--plain" => {
                plain = value()?
                    .parse()
                    .map_err(|e| format!("--plain: {e} (IP:PORT)"))?
            }
            "--cert" => cert = Some(PathBuf::from(value()?)),
            "--key" => key = Some(PathBuf::from(value()?)),
            "-h" | "--help" => {
                return Err(
                    "usage: tls [--tls IP:PORT] [--plain IP:PORT] [--cert CHAIN.pem --key KEY.pem]"
                        .into(),
                )
            }
            other => return Err(format!("unknown argument {other:?} (see --help)")),
        }
    }
    let pem = match (cert, key) {
        (Some(c), Some(k)) => Some((c, k)),
        (None, None) => None,
        _ => return Err("--cert and --key go together".into()),
    };
    Ok(Args { tls, plain, pem })
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = parse_args()?;
    let (chain, key) = match &args.pem {
        Some((cert, key)) => from_pem_files(cert, key)?,
        None => self_signed()?,
    };
    let acceptor = TlsAcceptor::from(tls_config(chain, key)?);
    let bind = |addr: SocketAddr| async move {
        TcpListener::bind(addr)
            .await
            .map_err(|e| format!("cannot listen on {addr}: {e}"))
    };
    let tls = TlsListener::new(bind(args.tls).await?, acceptor)?;
    let plain = bind(args.plain).await?;
    println!("https://{} (TLS: h2, http/1.1)", args.tls);
    println!(
        "http://{} (cleartext: http/1.1, h2c upgrade, prior knowledge)",
        args.plain
    );
    let shutdown = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    serve_both(&h2c_mux::Builder::new(), tls, plain, app(), shutdown).await?;
    Ok(())
}
