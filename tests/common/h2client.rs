//! The `h2` crate's client: a well-behaved HTTP/2 peer with prior knowledge, to
//! check the server end to end and to show it still serves others while a test
//! misbehaves on another connection.

use std::net::SocketAddr;

use bytes::Bytes;
use http::{HeaderMap, Method, Request, StatusCode};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

use super::within;

/// A response read whole by the `h2` client.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
    pub trailers: Option<HeaderMap>,
}

/// Starts an `h2` client over `io` (prior knowledge); the connection is driven
/// on its own task. Unbounded: the caller bounds the wait.
pub async fn h2_client<T>(io: T) -> Result<h2::client::SendRequest<Bytes>, h2::Error>
where
    T: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (send, conn) = h2::client::handshake(io).await?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(send)
}

/// Connects to `addr` and starts an `h2` client (bounded; failures fail the test).
pub async fn h2_connect(addr: SocketAddr) -> h2::client::SendRequest<Bytes> {
    let tcp = within("connect", TcpStream::connect(addr))
        .await
        .expect("connect");
    within("h2 handshake", h2_client(tcp))
        .await
        .expect("h2 handshake")
}

/// Sends one request (with `body`, if any) and reads the whole response.
/// Unbounded: the caller bounds the wait.
pub async fn h2_send(
    send: &mut h2::client::SendRequest<Bytes>,
    req: Request<()>,
    body: Option<Bytes>,
) -> Result<Reply, h2::Error> {
    let mut ready = send.clone().ready().await?;
    let end = body.is_none();
    let (resp, mut stream) = ready.send_request(req, end)?;
    if let Some(b) = body {
        stream.send_data(b, true)?;
    }
    let resp = resp.await?;
    let (parts, mut recv) = resp.into_parts();
    let mut body = Vec::new();
    while let Some(chunk) = recv.data().await {
        let chunk = chunk?;
        let _ = recv.flow_control().release_capacity(chunk.len());
        body.extend_from_slice(&chunk);
    }
    let trailers = recv.trailers().await?;
    Ok(Reply {
        status: parts.status,
        headers: parts.headers,
        body,
        trailers,
    })
}

/// [`h2_send`], bounded, for a request that must be answered.
pub async fn roundtrip(
    send: &mut h2::client::SendRequest<Bytes>,
    req: Request<()>,
    body: Option<Bytes>,
) -> Reply {
    within("an h2 round trip", h2_send(send, req, body))
        .await
        .expect("h2 round trip")
}

/// A request for `path` on `http://example`.
pub fn request(method: Method, path: &str) -> Request<()> {
    Request::builder()
        .method(method)
        .uri(format!("http://example{path}"))
        .body(())
        .expect("request")
}

pub fn get(path: &str) -> Request<()> {
    request(Method::GET, path)
}

/// `GET /` over HTTP/2 prior knowledge on `io`: must be `hello world\n`.
pub async fn assert_h2_hello_on<T>(io: T)
where
    T: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let r = within("h2 GET /", async {
        let mut send = h2_client(io).await?;
        h2_send(&mut send, get("/"), None).await
    })
    .await
    .expect("h2 GET /");
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(&r.body[..], b"hello world\n");
}

/// `GET /` over HTTP/2 prior knowledge on a new TCP connection.
pub async fn assert_h2_hello(addr: SocketAddr) {
    let s = within("connect", TcpStream::connect(addr))
        .await
        .expect("connect");
    assert_h2_hello_on(s).await;
}

/// An extended CONNECT (RFC 8441 §4) for `path` on `http://example`, asking for
/// `protocol` (the `h2` client sends `:protocol` from this extension).
pub fn extended_connect(protocol: &'static str, path: &str) -> Request<()> {
    let mut req = request(Method::CONNECT, path);
    req.extensions_mut()
        .insert(h2::ext::Protocol::from_static(protocol));
    req
}

/// Sends `data` on `stream` as the server's windows allow, then END_STREAM when
/// `end`. Unbounded: the caller bounds the wait.
pub async fn send_all(
    stream: &mut h2::SendStream<Bytes>,
    mut data: Bytes,
    end: bool,
) -> Result<(), h2::Error> {
    while !data.is_empty() {
        stream.reserve_capacity(data.len());
        let granted = match std::future::poll_fn(|cx| stream.poll_capacity(cx)).await {
            Some(granted) => granted?,
            None => return Err(h2::Error::from(h2::Reason::STREAM_CLOSED)),
        };
        let chunk = data.split_to(granted.min(data.len()));
        stream.send_data(chunk, false)?;
    }
    if end {
        stream.send_data(Bytes::new(), true)?;
    }
    Ok(())
}

/// Reads `recv` up to its END_STREAM, giving the window back as it reads.
/// Unbounded: the caller bounds the wait.
pub async fn read_to_end(recv: &mut h2::RecvStream) -> Result<Vec<u8>, h2::Error> {
    let mut out = Vec::new();
    while let Some(chunk) = recv.data().await {
        let chunk = chunk?;
        let _ = recv.flow_control().release_capacity(chunk.len());
        out.extend_from_slice(&chunk);
    }
    Ok(out)
}
