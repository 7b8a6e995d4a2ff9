//! The hyper 1.x baseline for the benchmark harness (`benches/run`): the demo routes
//! the benchmarks use, answered as `h2c-mux`'s demo service answers them, served over
//! HTTP/1.1 (`--h1`) or HTTP/2 with prior knowledge (`--h2`):
//!
//! | request | response |
//! |---|---|
//! | `GET /` | `200`, `content-type: text/plain`, `hello world\n` |
//! | `GET /bytes/N` | `200`, N bytes (N up to 1 GiB) of the demo's pattern, in 64 KiB chunks that are not copied (the demo's body, chunk for chunk) |
//! | any method on `/drain` | `200`, `read N bytes\n` once the whole request body has been read and counted (and not kept) |
//! | anything else | `404` |
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
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use h2c_mux::demo::{MAX_BYTES, PATTERN};
use http::{header, HeaderValue, Method, Request, Response, StatusCode};
use http_body::{Frame, SizeHint};
use http_body_util::BodyExt as _;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};

/// The chunk `/bytes/N` is sent in: 64 KiB, as `h2c_mux::demo`'s, so both servers
/// are handed the same pieces.
const CHUNK_LEN: usize = 64 * 1024;

static CHUNK: [u8; CHUNK_LEN] = {
    let mut a = [0u8; CHUNK_LEN];
    let mut i = 0;
    while i < CHUNK_LEN {
        a[i] = PATTERN[i % PATTERN.len()];
        i += 1;
    }
    a
};

/// The response body: a small one in memory, or `/bytes/N`'s pattern.
enum Out {
    Full(Option<Bytes>),
    Pattern { sent: u64, len: u64 },
}

impl http_body::Body for Out {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        match &mut *self {
            Out::Full(b) => Poll::Ready(b.take().map(|b| Ok(Frame::data(b)))),
            Out::Pattern { sent, len } => {
                if *sent >= *len {
                    return Poll::Ready(None);
                }
                // CHUNK_LEN is a multiple of the pattern's length: every chunk
                // starts where the pattern does.
                let n = (*len - *sent).min(CHUNK_LEN as u64) as usize;
                *sent += n as u64;
                Poll::Ready(Some(Ok(Frame::data(Bytes::from_static(&CHUNK[..n])))))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            Out::Full(b) => b.is_none(),
            Out::Pattern { sent, len } => sent >= len,
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            Out::Full(b) => SizeHint::with_exact(b.as_ref().map_or(0, |b| b.len() as u64)),
            Out::Pattern { sent, len } => SizeHint::with_exact(len - sent),
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Proto {
    H1,
    H2,
}

fn text(status: StatusCode, body: Bytes) -> Response<Out> {
    let mut res = Response::new(Out::Full(Some(body)));
    *res.status_mut() = status;
    res.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    res
}

fn bad_request() -> Response<Out> {
    text(
        StatusCode::BAD_REQUEST,
        Bytes::from_static(b"Bad Request\n"),
    )
}

async fn demo(req: Request<Incoming>) -> Result<Response<Out>, Infallible> {
    let path = req.uri().path();
    // `/` first: the small-request scenarios pay for no other comparison.
    if path == "/" {
        return Ok(text(StatusCode::OK, Bytes::from_static(b"hello world\n")));
    }
    if let Some(n) = path.strip_prefix("/bytes/") {
        return Ok(match n.parse::<u64>() {
            Ok(len) if len <= MAX_BYTES && req.method() == Method::GET => {
                let mut res = Response::new(Out::Pattern { sent: 0, len });
                res.headers_mut().insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("application/octet-stream"),
                );
                res
            }
            _ => bad_request(),
        });
    }
    if path == "/drain" {
        // Counted frame by frame, as the demo's `/drain`: nothing is kept.
        let mut body = req.into_body();
        let mut len = 0u64;
        while let Some(frame) = body.frame().await {
            match frame {
                Ok(f) => len += f.data_ref().map_or(0, |d| d.len() as u64),
                Err(_) => return Ok(bad_request()),
            }
        }
        return Ok(text(
            StatusCode::OK,
            Bytes::from(format!("read {len} bytes\n")),
        ));
    }
    Ok(text(
        StatusCode::NOT_FOUND,
        Bytes::from_static(b"Not Found\n"),
    ))
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
                let conn = h1.serve_connection(io, service_fn(demo));
                tokio::spawn(async move {
                    let _ = conn.await;
                });
            }
            Proto::H2 => {
                let conn = h2.serve_connection(io, service_fn(demo));
                tokio::spawn(async move {
                    let _ = conn.await;
                });
            }
        }
    }
}
