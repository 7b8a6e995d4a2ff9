//! Tunnels (RFC 8441 extended CONNECT) for the tests: a server builder with them
//! on, services that take a tunnel and report what happened to it, the `h2`
//! client's side of opening one, and bytes to send through.

use std::io;

use bytes::Bytes;
use h2c_mux::tunnel::{self, ConnectProtocol, Tunnel};
use h2c_mux::{Body, Builder};
use http::{Method, Request, Response, StatusCode};
use http_body_util::Full;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;

use super::h2client::{extended_connect, get, h2_connect, roundtrip};
use super::server::{quiet, Server, TestService};
use super::service::{service_fn, text};
use super::within;

/// Every timer far away, extended CONNECT on.
pub fn enabled() -> Builder {
    let mut b = quiet();
    b.enable_connect_protocol(true);
    b
}

/// `n` bytes that differ with `seed`, repeating every 1,792 bytes: no frame,
/// window or buffer size of the tests is a multiple of that, so a lost, doubled
/// or reordered chunk shows.
pub fn bytes(n: usize, seed: u8) -> Bytes {
    (0..n)
        .map(|i| {
            ((i / 7) as u8)
                .wrapping_mul(31)
                .wrapping_add(i as u8 ^ seed)
        })
        .collect::<Vec<u8>>()
        .into()
}

/// How a tunnel ended, as the service's task saw it: the bytes it read, and
/// whether its reads and writes ended well (the client's END_STREAM read as the
/// end of file, its own end sent) or with an error of this kind.
#[derive(Debug, PartialEq)]
pub struct Ended {
    pub read: u64,
    pub end: Result<(), io::ErrorKind>,
}

/// Writes back everything `tunnel` reads; at the end of file, shuts the write
/// side down.
pub async fn echo(mut tunnel: Tunnel) -> Ended {
    let mut buf = vec![0u8; 16 * 1024];
    let mut read = 0;
    loop {
        match tunnel.read(&mut buf).await {
            Ok(0) => {
                let end = tunnel.shutdown().await.map_err(|e| e.kind());
                return Ended { read, end };
            }
            Ok(n) => {
                read += n as u64;
                if let Err(e) = tunnel.write_all(&buf[..n]).await {
                    return Ended {
                        read,
                        end: Err(e.kind()),
                    };
                }
            }
            Err(e) => {
                return Ended {
                    read,
                    end: Err(e.kind()),
                }
            }
        }
    }
}

/// Whether `req` asks for the tunnel `protocol` (RFC 8441 §4).
pub fn asks_for(req: &Request<Body>, protocol: &str) -> bool {
    req.method() == Method::CONNECT && ConnectProtocol::of(req).is_some_and(|p| p == protocol)
}

/// Takes the tunnel of `req`, runs `work` on it on a task of its own, and reports
/// what it returns (or the error the `OnTunnel` gave) on `tx`.
pub fn take_tunnel<T, F, Fut>(
    req: &mut Request<Body>,
    tx: mpsc::UnboundedSender<Result<T, String>>,
    work: F,
) where
    T: Send + 'static,
    F: FnOnce(Tunnel) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = T> + Send,
{
    let on_tunnel = tunnel::on(req);
    tokio::spawn(async move {
        let outcome = match on_tunnel.await {
            Ok(t) => Ok(work(t).await),
            Err(e) => Err(format!("{e}")),
        };
        let _ = tx.send(outcome);
    });
}

/// `/echo` with protocol `echo`: the tunnel is echoed and its end reported; any
/// other request is answered `200 plain`.
pub fn echo_service(
    tx: mpsc::UnboundedSender<Result<Ended, String>>,
) -> impl TestService<Full<Bytes>> {
    service_fn(move |mut req: Request<Body>| {
        let tx = tx.clone();
        async move {
            if !asks_for(&req, "echo") {
                return text(StatusCode::OK, "plain");
            }
            take_tunnel(&mut req, tx, echo);
            text(StatusCode::OK, "")
        }
    })
}

/// The next report of a tunnel's task (bounded).
pub async fn report<T>(rx: &mut mpsc::UnboundedReceiver<Result<T, String>>) -> Result<T, String> {
    within("the tunnel's task to report", rx.recv())
        .await
        .expect("the service dropped its reports")
}

pub type Opened = (Response<h2::RecvStream>, h2::SendStream<Bytes>);

/// Sends `req` without ending the stream and waits for the response head.
pub async fn open(
    client: &h2::client::SendRequest<Bytes>,
    req: Request<()>,
) -> Result<Opened, h2::Error> {
    let mut ready = client.clone().ready().await?;
    let (response, send) = ready.send_request(req, false)?;
    Ok((response.await?, send))
}

/// [`open`], bounded, for a tunnel that must open.
pub async fn open_tunnel(
    client: &h2::client::SendRequest<Bytes>,
    protocol: &'static str,
) -> Opened {
    let (res, send) = within(
        "the tunnel's answer",
        open(client, extended_connect(protocol, "/echo")),
    )
    .await
    .expect("extended CONNECT");
    assert_eq!(res.status(), StatusCode::OK);
    // RFC 9110 §9.3.6: no framing field on a 2xx to CONNECT; the stream goes on.
    assert!(res.headers().get("content-length").is_none(), "{res:?}");
    assert!(!res.body().is_end_stream());
    (res, send)
}

/// Reads exactly `n` bytes from `recv` (bounded), giving the window back.
pub async fn read_exactly(recv: &mut h2::RecvStream, n: usize) -> Vec<u8> {
    within("tunnel bytes", async {
        let mut out = Vec::new();
        while out.len() < n {
            let chunk = recv
                .data()
                .await
                .expect("the stream ended early")
                .expect("tunnel data");
            let _ = recv.flow_control().release_capacity(chunk.len());
            out.extend_from_slice(&chunk);
        }
        out
    })
    .await
}

/// A prior-knowledge `h2` client that has read the server's SETTINGS (any answer
/// comes after them).
pub async fn client_past_settings(server: &Server) -> h2::client::SendRequest<Bytes> {
    let mut client = h2_connect(server.addr).await;
    assert_eq!(roundtrip(&mut client, get("/"), None).await.status, 200);
    client
}
