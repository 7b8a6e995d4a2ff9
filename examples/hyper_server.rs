//! The hyper 1.x baseline for the benchmark harness (`benches/run`): the same demo
//! handler as `h2c-mux` (`GET /` -> `200`, `content-type: text/plain`, `hello world\n`;
//! anything else `404`), served over HTTP/1.1 (`--h1`) or HTTP/2 with prior knowledge
//! (`--h2`).
//!
//! ```sh
//! cargo run --release --example hyper_server -- --h1 --listen 127.0.0.1:9001
//! cargo run --release --example hyper_server -- --h2 --listen 127.0.0.1:9002
//! ```
//!
//! Same runtime as the `h2c-mux` binary: tokio multi-thread with the default worker
//! count (one worker when pinned to one core with `taskset -c 0`), a task per
//! connection, `TCP_NODELAY` on every accepted socket. hyper's own defaults otherwise
//! (no timer, so no HTTP/1 header-read timeout; HTTP/2 with 200 concurrent streams and
//! hyper's automatic `date` header). Prints `listening addr=...` once bound.

use std::convert::Infallible;
use std::net::SocketAddr;

use bytes::Bytes;
use http::{header, HeaderValue, Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};

#[derive(Clone, Copy, PartialEq, Eq)]
enum Proto {
    H1,
    H2,
}

async fn hello(req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let mut res = if req.uri().path() == "/" {
        Response::new(Full::new(Bytes::from_static(b"hello world\n")))
    } else {
        let mut r = Response::new(Full::new(Bytes::from_static(b"Not Found\n")));
        *r.status_mut() = StatusCode::NOT_FOUND;
        r
    };
    res.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    Ok(res)
}

fn usage() -> ! {
    eprintln!("usage: hyper_server (--h1 | --h2) [--listen ADDR]   (default 127.0.0.1:9001)");
    std::process::exit(2)
}

fn main() -> std::io::Result<()> {
    let mut proto = None;
    let mut listen: SocketAddr = "127.0.0.1:9001".parse().unwrap();
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--h1" => proto = Some(Proto::H1),
            "--h2" => proto = Some(Proto::H2),
            "--listen" => {
                listen = match args.next().and_then(|v| v.parse().ok()) {
                    Some(v) => v,
                    None => usage(),
                }
            }
            _ => usage(),
        }
    }
    let Some(proto) = proto else { usage() };
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(serve(listen, proto))
}

async fn serve(listen: SocketAddr, proto: Proto) -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::bind(listen).await?;
    println!(
        "listening addr={} proto={}",
        listener.local_addr()?,
        if proto == Proto::H1 { "h1" } else { "h2" }
    );
    let h1 = hyper::server::conn::http1::Builder::new();
    let h2 = hyper::server::conn::http2::Builder::new(TokioExecutor::new());
    loop {
        let (stream, _) = match listener.accept().await {
            Ok(a) => a,
            Err(e) => {
                // EMFILE and friends: back off instead of spinning.
                eprintln!("accept: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let io = TokioIo::new(stream);
        match proto {
            Proto::H1 => {
                let conn = h1.serve_connection(io, service_fn(hello));
                tokio::spawn(async move {
                    let _ = conn.await;
                });
            }
            Proto::H2 => {
                let conn = h2.serve_connection(io, service_fn(hello));
                tokio::spawn(async move {
                    let _ = conn.await;
                });
            }
        }
    }
}
