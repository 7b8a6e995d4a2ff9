//! `serve` with a make-service of its own (a `Service<SocketAddr>` whose response is
//! the connection's service): it is called once per connection with the peer; a
//! failed call closes that connection only, and a make-service that fails to get
//! ready ends `serve` with its error.
#![cfg(feature = "demo")] // the demo service is behind the `demo` feature (on by default)

mod common;

use std::future::{ready, Ready};
use std::io;
use std::net::SocketAddr;
use std::task::{Context, Poll};

use common::h1::H1Conn;
use common::server::{loopback, Server};
use h2c_mux::demo::Demo;
use h2c_mux::Builder;
use tokio::sync::mpsc;

/// Makes the demo service for each connection, reporting the peer it was called
/// with; the first call fails.
struct FirstCallFails {
    calls: usize,
    peers: mpsc::UnboundedSender<SocketAddr>,
}

impl tower_service::Service<SocketAddr> for FirstCallFails {
    type Response = Demo;
    type Error = io::Error;
    type Future = Ready<Result<Demo, io::Error>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), io::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, peer: SocketAddr) -> Self::Future {
        self.calls += 1;
        let _ = self.peers.send(peer);
        if self.calls == 1 {
            ready(Err(io::Error::other("no service for this one")))
        } else {
            ready(Ok(Demo::new()))
        }
    }
}

#[tokio::test]
async fn a_failed_make_service_call_closes_that_connection_only() {
    let (peers, mut called_with) = mpsc::unbounded_channel();
    let make = FirstCallFails { calls: 0, peers };
    let server = Server::serve(loopback().await, &Builder::new(), make);

    let mut first = H1Conn::connect(server.addr).await;
    let first_addr = first.stream.local_addr().expect("client address");
    first.send("GET / HTTP/1.1\r\nHost: a\r\n\r\n").await;
    assert!(
        first.read_to_eof().await.is_empty(),
        "closed without a response"
    );
    assert_eq!(called_with.recv().await, Some(first_addr));

    let mut second = H1Conn::connect(server.addr).await;
    let second_addr = second.stream.local_addr().expect("client address");
    second.send("GET / HTTP/1.1\r\nHost: a\r\n\r\n").await;
    let res = second.read_response().await;
    assert_eq!(res.status, 200);
    assert_eq!(res.body_str(), "hello world\n");
    assert_eq!(called_with.recv().await, Some(second_addr));
    drop(second);
    server.stop().await.expect("serve result");
}

/// A make-service that is never ready again.
struct Broken;

impl tower_service::Service<SocketAddr> for Broken {
    type Response = Demo;
    type Error = io::Error;
    type Future = Ready<Result<Demo, io::Error>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), io::Error>> {
        Poll::Ready(Err(io::Error::other("the make-service broke")))
    }

    fn call(&mut self, _: SocketAddr) -> Self::Future {
        panic!("called although it was not ready")
    }
}

#[tokio::test]
async fn a_make_service_that_fails_to_get_ready_ends_serve() {
    let mut server = Server::serve(loopback().await, &Builder::new(), Broken);
    let err = server.join().await.expect_err("serve ends with the error");
    assert!(
        err.to_string().contains("the make-service broke"),
        "serve's error: {err}"
    );
}
