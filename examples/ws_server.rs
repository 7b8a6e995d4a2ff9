//! The WebSocket server of the benchmark harness (`benches/run`, scenario S7): one
//! axum `Router` (`tests/common/ws.rs`: a `/ws` route whose `WebSocketUpgrade`
//! echoes text and binary messages) served by `h2c_mux::serve` (`--mux`) or by
//! `axum::serve` (`--axum`), so the two servers compare on the same app.
//!
//! ```sh
//! cargo run --release --example ws_server -- --mux --listen 127.0.0.1:9011
//! cargo run --release --example ws_server -- --axum --listen 127.0.0.1:9012
//! ```
//!
//! Same runtime as the `h2c-mux` binary and `hyper_server`: tokio multi-thread with
//! the default worker count (one worker when pinned to one core with `taskset -c 0`),
//! `TCP_NODELAY` on every accepted socket (h2c-mux's listener sets it; axum's is
//! tapped to set it). Both with their defaults otherwise, and neither trims the heap
//! (the `h2c-mux` binary's `malloc_trim` is not here), so RSS compares like for like.
//! Prints `listening addr=... server=... pid=...` once bound; runs until killed.

#[path = "../tests/common/ws.rs"]
mod ws;

use std::net::SocketAddr;

use axum::serve::ListenerExt;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Which {
    Mux,
    Axum,
}

fn usage() -> ! {
    eprintln!("usage: ws_server (--mux | --axum) [--listen ADDR]   (default 127.0.0.1:9011)");
    std::process::exit(2)
}

fn main() -> std::io::Result<()> {
    let mut which = None;
    let mut listen: SocketAddr = "127.0.0.1:9011".parse().unwrap();
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--mux" => which = Some(Which::Mux),
            "--axum" => which = Some(Which::Axum),
            "--listen" => {
                listen = match args.next().and_then(|v| v.parse().ok()) {
                    Some(v) => v,
                    None => usage(),
                }
            }
            _ => usage(),
        }
    }
    let Some(which) = which else { usage() };
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(serve(listen, which))
}

async fn serve(listen: SocketAddr, which: Which) -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::bind(listen).await?;
    println!(
        "listening addr={} server={} pid={}",
        listener.local_addr()?,
        if which == Which::Mux {
            "h2c-mux"
        } else {
            "axum"
        },
        std::process::id()
    );
    match which {
        // Ends when the process is killed: the harness stops servers with SIGTERM.
        Which::Mux => h2c_mux::serve(listener, ws::echo_app(), std::future::pending()).await,
        Which::Axum => {
            let listener = listener.tap_io(|tcp| {
                let _ = tcp.set_nodelay(true);
            });
            axum::serve(listener, ws::echo_app()).await
        }
    }
}
