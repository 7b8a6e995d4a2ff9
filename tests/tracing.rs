//! With a subscriber that records debug spans, every request takes the
//! instrumented path (without one, the span is skipped). The answers must be the
//! same as without it, and the spans must carry what the crate documents: the
//! connection its peer and protocol, each request its method and path (and its
//! stream on HTTP/2).

mod common;

use std::io;
use std::sync::{Arc, Mutex};

use common::h1::H1Conn;
use common::h2c::{raw_upgrade, UPGRADE_GET};
use common::h2client::{get, h2_client, h2_connect, roundtrip};
use common::server::{conn_result, duplex_conn_over, Server};
use common::within;
use h2c_mux::{Builder, Transport};
use tokio::net::TcpStream;
use tracing_subscriber::fmt::format::FmtSpan;

/// Where the subscriber writes: one shared buffer.
#[derive(Clone, Default)]
struct Log(Arc<Mutex<Vec<u8>>>);

impl io::Write for Log {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.lock().expect("log lock").extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Log {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().expect("log lock")).into_owned()
    }
}

/// How many spans named `name` closed (the subscriber logs a `close` line for
/// each, under the chain of spans it was in) whose fields include every one of
/// `fields`, each as `key=value` exactly as the subscriber prints it.
fn closed(log: &str, name: &str, fields: &[&str]) -> usize {
    let open = format!("{name}{{");
    log.lines()
        .filter(|l| l.contains(": close time.busy="))
        .filter_map(|l| {
            // `connection{..}:request{..}: target: close ...`: the span that closed
            // is the last of the chain.
            let chain = &l[..=l.find("}: ")?];
            let last = chain.rsplit("}:").next()?;
            let (_, span) = last.rsplit_once(&open)?;
            let span = span.strip_suffix('}').unwrap_or(span);
            Some(span.split(' ').collect::<Vec<_>>())
        })
        .filter(|tokens| fields.iter().all(|f| tokens.contains(f)))
        .count()
}

/// A subscriber that records debug spans, as [`closed`] reads them, into `log`.
fn recording(log: &Log) -> impl tracing::Subscriber + Send + Sync {
    let writer = log.clone();
    tracing_subscriber::fmt()
        .with_max_level(tracing::Level::DEBUG)
        .with_ansi(false)
        .with_span_events(FmtSpan::CLOSE)
        .with_writer(move || writer.clone())
        .finish()
}

// The subscriber is this thread's default, and the current-thread runtime polls
// the server's tasks on this thread: they all see it.
#[tokio::test]
async fn over_tls_the_connection_span_says_how_alpn_chose() {
    let log = Log::default();
    let _default = tracing::subscriber::set_default(recording(&log));
    let demo = h2c_mux::demo::Demo::new();

    let (io, conn) = duplex_conn_over(&Builder::new(), demo, Transport::tls(Some(b"h2")));
    let mut send = within("h2 handshake", h2_client(io))
        .await
        .expect("h2 handshake");
    let r = roundtrip(&mut send, get("/"), None).await;
    assert_eq!(r.body, b"hello world\n");
    drop(send);
    conn_result(conn).await.expect("a clean close");

    let transport = Transport::tls(Some(b"http/1.1"));
    let (io, conn) = duplex_conn_over(&Builder::new(), demo, transport);
    let mut c = H1Conn::new(io);
    c.send(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await;
    assert_eq!(c.read_response().await.status, 200);
    c.expect_closed().await;
    drop(c);
    conn_result(conn).await.expect("a clean close");

    let text = log.text();
    assert_eq!(
        closed(&text, "connection", &[r#"protocol="h2-tls""#]),
        1,
        "{text}"
    );
    assert_eq!(
        closed(&text, "request", &["method=GET", "path=/", "stream=1"]),
        1,
        "{text}"
    );
    assert_eq!(
        closed(&text, "connection", &[r#"protocol="http/1.1""#]),
        1,
        "{text}"
    );
}

// The subscriber is this thread's default, and the current-thread runtime polls
// the server's tasks on this thread: they all see it.
#[tokio::test]
async fn with_debug_spans_every_protocol_is_answered_and_its_spans_say_what_it_was() {
    let log = Log::default();
    let _default = tracing::subscriber::set_default(recording(&log));
    let server = Server::demo().await;

    // HTTP/1.1: keep-alive, a body, HEAD.
    let mut c = H1Conn::connect(server.addr).await;
    let peer = c.stream.local_addr().expect("local addr").to_string();
    c.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").await;
    let res = c.read_response().await;
    assert_eq!((res.status, res.body_str()), (200, "hello world\n"));
    c.send(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello")
        .await;
    let res = c.read_response().await;
    assert_eq!((res.status, res.body_str()), (200, "hello"));
    c.send(b"HEAD / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await;
    let res = c.read_response_to(true).await;
    assert_eq!(res.status, 200);
    assert_eq!(res.header("content-length"), Some("12"));
    assert!(res.body.is_empty());
    c.expect_closed().await;
    drop(c);

    // The h2c upgrade: stream 1 is the upgrade request.
    let s = TcpStream::connect(server.addr).await.expect("connect");
    let mut h2 = raw_upgrade(s, UPGRADE_GET).await;
    let (r1, _) = h2.read_response(1).await;
    assert_eq!(r1.status, Some(200));
    assert_eq!(r1.body, b"hello world\n");
    drop(h2);

    // HTTP/2 with prior knowledge.
    let mut send = h2_connect(server.addr).await;
    let r = roundtrip(&mut send, get("/bytes/3"), None).await;
    assert_eq!(r.body.len(), 3);
    drop(send);

    let mut server = server;
    server.trigger_shutdown();
    server.join().await.expect("serve");

    let text = log.text();
    let peer_field = format!("peer={peer}");
    let connections = [
        (vec![peer_field.as_str(), r#"protocol="http/1.1""#], 1),
        // An upgraded connection records its protocol again when it switches; this
        // subscriber prints both values, in that order.
        (
            vec![r#"protocol="http/1.1""#, r#"protocol="h2c-upgrade""#],
            1,
        ),
        (vec![r#"protocol="h2-prior-knowledge""#], 1),
    ];
    for (fields, n) in connections {
        assert_eq!(
            closed(&text, "connection", &fields),
            n,
            "{fields:?}\n{text}"
        );
    }
    let requests: [(&[&str], usize); 5] = [
        // HTTP/1.1; the upgrade request while it is read over HTTP/1.1; and the
        // same request answered as stream 1.
        (&["method=GET", "path=/"], 3),
        (&["method=POST", "path=/echo"], 1),
        (&["method=HEAD", "path=/"], 1),
        (&["method=GET", "path=/", "stream=1"], 1),
        (&["method=GET", "path=/bytes/3", "stream=1"], 1),
    ];
    for (fields, n) in requests {
        assert_eq!(closed(&text, "request", fields), n, "{fields:?}\n{text}");
    }
}
