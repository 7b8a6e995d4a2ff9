//! HTTP/1.x over loopback with a raw client: keep-alive, pipelining, bodies,
//! HTTP/1.0, the `Date` field, `Expect` (`100-continue`, and 417 for any other),
//! the close of a connection and unread request bodies. The malformed requests
//! HTTP/1.1 refuses are in `http1_framing.rs`.
#![cfg(feature = "demo")] // the demo service is behind the `demo` feature (on by default)

mod common;

use common::h1::{assert_refused, H1Conn};
use common::server::{conn_result, duplex_conn, Server};
use common::service::{pattern, recorder, IgnoreBody};
use common::within;
use h2c_mux::Builder;
use tokio::io::AsyncWriteExt;

const GET_ROOT: &str = "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";

#[tokio::test]
async fn keep_alive_serves_several_requests() {
    let server = Server::demo().await;
    let mut conn = H1Conn::connect(server.addr).await;

    conn.send(GET_ROOT).await;
    let res = conn.read_response().await;
    assert_eq!(res.status, 200);
    assert_eq!(res.header("content-type"), Some("text/plain"));
    assert_eq!(res.header("content-length"), Some("12"));
    assert_eq!(res.body_str(), "hello world\n");
    assert!(!res.connection_has("close"));

    conn.send("GET /bytes/100000 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        .await;
    let res = conn.read_response().await;
    assert_eq!(res.status, 200);
    assert!(res.body == pattern(100_000));

    conn.send("POST /echo HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 5\r\n\r\nabcde")
        .await;
    let res = conn.read_response().await;
    assert_eq!(res.status, 200);
    assert_eq!(res.body_str(), "abcde");

    conn.send("GET /nope HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        .await;
    assert_eq!(conn.read_response().await.status, 404);
}

#[tokio::test]
async fn pipelined_requests_are_answered_in_order() {
    let server = Server::demo().await;
    let mut conn = H1Conn::connect(server.addr).await;
    conn.send(
        "GET /bytes/10 HTTP/1.1\r\nHost: a\r\n\r\n\
         POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nxyz\
         GET / HTTP/1.1\r\nHost: a\r\n\r\n",
    )
    .await;
    let first = conn.read_response().await;
    let second = conn.read_response().await;
    let third = conn.read_response().await;
    assert_eq!(first.body, pattern(10));
    assert_eq!(second.body_str(), "xyz");
    assert_eq!(third.body_str(), "hello world\n");
    for res in [&first, &second, &third] {
        assert_eq!(res.status, 200);
    }
}

#[tokio::test]
async fn chunked_request_body_is_echoed() {
    let server = Server::demo().await;
    let mut conn = H1Conn::connect(server.addr).await;
    conn.send(
        "POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n\
         4\r\nWiki\r\n5;name=value\r\npedia\r\nE\r\n in\r\n\r\nchunks.\r\n\
         0\r\nX-Checksum: 7\r\n\r\n",
    )
    .await;
    let res = conn.read_response().await;
    assert_eq!(res.status, 200);
    assert_eq!(res.body_str(), "Wikipedia in\r\n\r\nchunks.");
    // The echo keeps the request's trailers; its length is unknown, so it is chunked.
    assert_eq!(res.header("transfer-encoding"), Some("chunked"));
    assert_eq!(
        res.trailers,
        vec![("x-checksum".to_string(), "7".to_string())]
    );

    // The connection is still in step.
    conn.send(GET_ROOT).await;
    assert_eq!(conn.read_response().await.body_str(), "hello world\n");
}

#[tokio::test]
async fn head_response_has_no_body() {
    let server = Server::demo().await;
    let mut conn = H1Conn::connect(server.addr).await;
    conn.send("HEAD / HTTP/1.1\r\nHost: a\r\n\r\n").await;
    let res = conn.read_response_to(true).await;
    assert_eq!(res.status, 200);
    // RFC 9110 §9.3.2: the fields a GET would have had.
    assert_eq!(res.header("content-length"), Some("12"));

    // Had a body followed the HEAD response, it would be read as the next status line.
    conn.send(GET_ROOT).await;
    let next = conn.read_response().await;
    assert_eq!(next.status, 200);
    assert_eq!(next.body_str(), "hello world\n");
}

#[tokio::test]
async fn http10_without_keep_alive_closes_after_the_response() {
    let server = Server::demo().await;
    let mut conn = H1Conn::connect(server.addr).await;
    conn.send("GET / HTTP/1.0\r\n\r\n").await;
    let res = conn.read_response().await;
    assert_eq!(res.status, 200);
    assert_eq!(res.body_str(), "hello world\n");
    conn.expect_closed().await;
}

#[tokio::test]
async fn http10_with_keep_alive_stays_open() {
    let server = Server::demo().await;
    let mut conn = H1Conn::connect(server.addr).await;
    conn.send("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        .await;
    let res = conn.read_response().await;
    assert_eq!(res.status, 200);
    assert!(res.connection_has("keep-alive"), "{res:?}");
    assert_eq!(res.body_str(), "hello world\n");

    conn.send("GET /bytes/5 HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        .await;
    let res = conn.read_response().await;
    assert_eq!(res.status, 200);
    assert_eq!(res.body, pattern(5));
}

#[tokio::test]
async fn responses_carry_a_date() {
    let server = Server::demo().await;
    let mut conn = H1Conn::connect(server.addr).await;
    conn.send(GET_ROOT).await;
    let res = conn.read_response().await;
    let date = res.header("date").expect("a Date field");
    assert!(is_imf_fixdate(date), "not an IMF-fixdate: {date:?}");
}

/// RFC 9110 §5.6.7: `Sun, 06 Nov 1994 08:49:37 GMT`.
fn is_imf_fixdate(s: &str) -> bool {
    const DAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let num = |t: &str, len: usize, max: u32| {
        t.len() == len && t.bytes().all(|b| b.is_ascii_digit()) && t.parse::<u32>().unwrap() <= max
    };
    let parts: Vec<&str> = s.split(' ').collect();
    let [day, dd, mon, year, time, gmt] = parts[..] else {
        return false;
    };
    let hms: Vec<&str> = time.split(':').collect();
    day.strip_suffix(',').is_some_and(|d| DAYS.contains(&d))
        && num(dd, 2, 31)
        && MONTHS.contains(&mon)
        && num(year, 4, 9999)
        && hms.len() == 3
        && num(hms[0], 2, 23)
        && num(hms[1], 2, 59)
        && num(hms[2], 2, 60)
        && gmt == "GMT"
}

#[tokio::test]
async fn unsupported_expectation_is_answered_417() {
    let req = b"POST /echo HTTP/1.1\r\nHost: a\r\nExpect: teapot\r\nContent-Length: 3\r\n\r\nabc";
    assert_refused(&Builder::new(), req, 417).await;
}

#[tokio::test]
async fn expect_100_continue_gets_100_then_the_response() {
    let server = Server::demo().await;
    let mut conn = H1Conn::connect(server.addr).await;
    conn.send(
        "POST /echo HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 11\r\n\r\n",
    )
    .await;
    let interim = conn.read_response().await;
    assert_eq!(interim.status, 100, "{interim:?}");
    assert!(interim.body.is_empty());
    conn.send("hello there").await;
    let res = conn.read_response().await;
    assert_eq!(res.status, 200);
    assert_eq!(res.body_str(), "hello there");
    assert!(!res.connection_has("close"));

    conn.send(GET_ROOT).await;
    assert_eq!(conn.read_response().await.body_str(), "hello world\n");
}

#[tokio::test]
async fn expect_100_continue_with_an_unread_body_gets_no_100_and_closes() {
    let server = Server::start(&Builder::new(), IgnoreBody).await;
    let mut conn = H1Conn::connect(server.addr).await;
    conn.send(
        "POST /upload HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 100\r\n\r\n",
    )
    .await;
    // The service answered without asking for the body: no invitation to send it,
    // and the connection cannot be reused (the body may or may not follow).
    let res = conn.read_response().await;
    assert_eq!(res.status, 200);
    assert_eq!(res.body_str(), "ignored\n");
    assert!(res.connection_has("close"), "{res:?}");
    conn.expect_closed().await;
}

#[tokio::test]
async fn connection_close_request_is_answered_then_closed() {
    let server = Server::demo().await;
    let mut conn = H1Conn::connect(server.addr).await;
    conn.send("GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
        .await;
    let res = conn.read_response().await;
    assert_eq!(res.body_str(), "hello world\n");
    assert!(res.connection_has("close"), "{res:?}");
    conn.expect_closed().await;
}

/// Sends `request` over an in-memory pipe, reads the first response, and returns
/// how long (on the paused clock) the server took to end the connection after
/// it, while the client keeps its side open and sends nothing more.
async fn close_after(request: &str) -> std::time::Duration {
    let (client, conn) = duplex_conn(&Builder::new(), h2c_mux::demo::Demo::new());
    let mut c = H1Conn::from_parts(client, Vec::new());
    c.send(request).await;
    let res = c.read_response().await;
    assert_eq!(res.body_str(), "hello world\n");
    assert!(res.connection_has("close"), "{res:?}");
    let answered = tokio::time::Instant::now();
    conn_result(conn).await.expect("connection result");
    answered.elapsed()
}

#[tokio::test(start_paused = true)]
async fn connection_close_request_closes_without_lingering() {
    // The client said its request was its last and sent nothing after it: the
    // server closes at once, with no lingering read waiting for the client's own
    // close (RFC 9112 §9.6 forbids it to send more).
    let waited = close_after("GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n").await;
    assert_eq!(waited, std::time::Duration::ZERO);
}

#[tokio::test(start_paused = true)]
async fn connection_close_request_with_bytes_after_it_still_lingers() {
    // Bytes after the client's last request: the server still lingers, reading
    // what comes, so nothing unread causes a reset that would destroy the response.
    let waited = close_after(
        "GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n\
         GET /again HTTP/1.1\r\nHost: a\r\n\r\n",
    )
    .await;
    assert!(waited >= std::time::Duration::from_secs(1), "{waited:?}");
}

#[tokio::test(start_paused = true)]
async fn server_chosen_close_still_lingers() {
    // HTTP/1.1 without `connection: close`, but the server closes (here: the
    // request is refused): the client may have more on the way.
    let (client, conn) = duplex_conn(&Builder::new(), h2c_mux::demo::Demo::new());
    let mut c = H1Conn::from_parts(client, Vec::new());
    c.send("GET / HTTP/1.1\r\n\r\n").await;
    assert_eq!(c.read_response().await.status, 400);
    let answered = tokio::time::Instant::now();
    let _ = conn_result(conn).await;
    assert!(answered.elapsed() >= std::time::Duration::from_secs(1));
}

#[tokio::test]
async fn requests_tell_their_protocol_and_remote_address() {
    let (svc, mut seen) = recorder(h2c_mux::demo::Demo::new());
    let server = Server::start(&Builder::new(), svc).await;
    let mut conn = H1Conn::connect(server.addr).await;
    let local = conn.stream.local_addr().expect("local addr");
    conn.send(GET_ROOT).await;
    assert_eq!(conn.read_response().await.status, 200);
    let req = seen.next().await;
    assert_eq!(req.protocol, Some(h2c_mux::Protocol::Http1));
    assert_eq!(req.remote, Some(local));
    assert_eq!(req.declined, None);
    assert_eq!(req.version, http::Version::HTTP_11);
}

#[tokio::test]
async fn unread_small_body_is_drained_and_the_connection_reused() {
    let server = Server::start(&Builder::new(), IgnoreBody).await;
    let mut conn = H1Conn::connect(server.addr).await;
    let body = vec![b'x'; 10_000];
    conn.send(format!(
        "POST /upload HTTP/1.1\r\nHost: a\r\nContent-Length: {}\r\n\r\n",
        body.len()
    ))
    .await;
    conn.send(&body).await;
    let res = conn.read_response().await;
    assert_eq!(res.status, 200);
    assert_eq!(res.body_str(), "ignored\n");
    assert!(!res.connection_has("close"));

    // The body was skipped, not parsed as the next request.
    conn.send("GET /again HTTP/1.1\r\nHost: a\r\n\r\n").await;
    let res = conn.read_response().await;
    assert_eq!(res.status, 200);
    assert_eq!(res.body_str(), "ignored\n");
}

#[tokio::test]
async fn unread_large_body_gets_a_full_response_then_close() {
    let server = Server::start(&Builder::new(), IgnoreBody).await;
    let len = 4 * 1024 * 1024;
    let (mut reader, mut wr) = H1Conn::connect(server.addr).await.into_split();
    let writer = tokio::spawn(async move {
        let head = format!("POST /upload HTTP/1.1\r\nHost: a\r\nContent-Length: {len}\r\n\r\n");
        wr.write_all(head.as_bytes()).await?;
        // The server stops reading at some point; the write may then fail.
        wr.write_all(&vec![b'y'; len]).await
    });
    let res = reader.read_response().await;
    assert_eq!(res.status, 200);
    assert_eq!(res.body_str(), "ignored\n");
    // More than the drain bound is left unread: the server closes.
    reader.expect_closed().await;
    let _ = within("writer", writer).await;
}

/// A response body that fails before its first byte.
struct FailingBody;

impl http_body::Body for FailingBody {
    type Data = bytes::Bytes;
    type Error = std::io::Error;
    fn poll_frame(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<bytes::Bytes>, Self::Error>>> {
        std::task::Poll::Ready(Some(Err(std::io::Error::other("the body failed"))))
    }
}

type OkOrFailing = http_body_util::Either<http_body_util::Full<bytes::Bytes>, FailingBody>;

/// Answers `/fail` with `200` and a [`FailingBody`], anything else with `200 ok`.
fn failing_on_fail() -> impl common::server::TestService<OkOrFailing> {
    common::service::answer(|req: &http::Request<h2c_mux::Body>| {
        http::Response::new(if req.uri().path() == "/fail" {
            http_body_util::Either::Right(FailingBody)
        } else {
            http_body_util::Either::Left(http_body_util::Full::new(bytes::Bytes::from_static(
                b"ok",
            )))
        })
    })
}

#[tokio::test]
async fn a_response_body_that_fails_before_its_first_byte_is_answered_500_and_closes() {
    // A later pipelined request must not be served on the broken connection.
    let request = b"GET /fail HTTP/1.1\r\nHost: x\r\n\r\nGET /b HTTP/1.1\r\nHost: x\r\n\r\n";
    let (bytes, res) = common::h1::h1_exchange(&Builder::new(), failing_on_fail(), request).await;
    let rs = common::h1::parse_responses(&bytes);
    assert_eq!(rs.len(), 1, "{:?}", String::from_utf8_lossy(&bytes));
    assert_eq!(rs[0].status, 500);
    assert!(rs[0].complete, "the 500 must be whole");
    assert!(rs[0].closes(), "the 500 must close");
    let e = res.expect_err("the connection ends with the body's error");
    assert!(e.is_body(), "{e:?}");
}

#[tokio::test]
async fn a_failed_response_body_keeps_the_pipelined_responses_before_it() {
    // The first answer is queued, not yet written, when the second fails: it must
    // still reach the client, whole, ahead of the 500.
    let (mut client, conn) = duplex_conn(&Builder::new(), failing_on_fail());
    client
        .write_all(b"GET /ok HTTP/1.1\r\nHost: x\r\n\r\nGET /fail HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .expect("write");
    let bytes = common::read_to_eof(&mut client).await;
    let rs = common::h1::parse_responses(&bytes);
    assert_eq!(rs.len(), 2, "{:?}", String::from_utf8_lossy(&bytes));
    assert_eq!((rs[0].status, rs[0].body.as_slice()), (200, &b"ok"[..]));
    assert!(rs[0].complete);
    assert_eq!(rs[1].status, 500);
    assert!(rs[1].complete && rs[1].closes());
    drop(client);
    assert!(conn_result(conn).await.is_err());
}

#[tokio::test]
async fn with_http1_keep_alive_off_each_response_closes_the_connection() {
    let mut b = Builder::new();
    b.http1_keep_alive(false);
    // Two keep-alive requests in one write: only the first is answered.
    let request = b"GET /ok HTTP/1.1\r\nHost: x\r\n\r\nGET /ok HTTP/1.1\r\nHost: x\r\n\r\n";
    let (bytes, res) = common::h1::h1_exchange(&b, failing_on_fail(), request).await;
    let rs = common::h1::parse_responses(&bytes);
    assert_eq!(rs.len(), 1, "{:?}", String::from_utf8_lossy(&bytes));
    assert_eq!((rs[0].status, rs[0].body.as_slice()), (200, &b"ok"[..]));
    assert!(
        rs[0].complete && rs[0].closes(),
        "the response must say close"
    );
    assert!(res.is_ok(), "{res:?}");
}
