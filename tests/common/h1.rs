//! HTTP/1.x responses as they are framed on the wire (RFC 9112).
//!
//! One parser works on bytes already read: [`parse_head`] takes a status line and
//! its fields, [`BodyReader`] follows a body's framing (Content-Length, chunked
//! with trailers, or read to the close) as bytes arrive. Two readers feed it:
//!
//! - [`H1Conn`], a client connection: write requests, read responses one at a
//!   time as they come, and tell a closed connection from an open one;
//! - [`parse_responses`], which splits everything a connection sent (read with
//!   [`read_to_eof`]) into its responses, so a test can count them and see one
//!   cut off.

use std::io;
use std::net::SocketAddr;

use h2c_mux::Builder;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;
use tokio::task::JoinHandle;

use super::server::{conn_result, duplex_conn, tcp_conn, TestBody, TestService};
use super::{read_to_eof, within};

/// How much [`H1Conn`] asks the socket for at a time.
const READ_CHUNK: usize = 16 * 1024;

/// One HTTP/1.x response as it came off the wire.
#[derive(Debug, Clone)]
pub struct H1Response {
    /// `HTTP/1.1` or `HTTP/1.0`.
    pub version: String,
    pub status: u16,
    pub reason: String,
    /// Field names lowercased, in order, repeats kept.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// Trailer fields of a chunked body.
    pub trailers: Vec<(String, String)>,
    /// The body's framing ended (Content-Length reached, last chunk and trailers
    /// seen, the close of a close-delimited body, or no body). False for a head
    /// read alone and for a response cut off by the end of the connection.
    pub complete: bool,
}

impl H1Response {
    /// The only value of field `name`; panics when it is repeated.
    pub fn header(&self, name: &str) -> Option<&str> {
        let all = self.header_all(name);
        assert!(all.len() <= 1, "{name} repeated: {all:?}");
        all.first().copied()
    }

    pub fn header_all(&self, name: &str) -> Vec<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .filter(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// True when a `Connection` field lists `token`.
    pub fn connection_has(&self, token: &str) -> bool {
        self.header_all("connection")
            .iter()
            .any(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
    }

    /// True when the one `Connection` field is exactly `close`.
    pub fn closes(&self) -> bool {
        self.header("connection")
            .is_some_and(|v| v.eq_ignore_ascii_case("close"))
    }

    pub fn body_str(&self) -> &str {
        std::str::from_utf8(&self.body).expect("utf-8 body")
    }
}

/// Parses the response head at the front of `input` and consumes it; `None`, with
/// nothing consumed, until the empty line that ends it is there.
pub fn parse_head(input: &mut &[u8]) -> Option<H1Response> {
    let end = find(input, b"\r\n\r\n")?;
    let head = std::str::from_utf8(&input[..end]).unwrap_or_else(|_| {
        panic!(
            "response head is not utf-8: {:?}",
            String::from_utf8_lossy(&input[..end])
        )
    });
    *input = &input[end + 4..];
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let mut parts = status_line.splitn(3, ' ');
    let version = parts.next().unwrap_or_default().to_string();
    assert!(
        version == "HTTP/1.1" || version == "HTTP/1.0",
        "bad status line {status_line:?}"
    );
    let status: u16 = parts
        .next()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("bad status line {status_line:?}"));
    let reason = parts.next().unwrap_or_default().to_string();
    Some(H1Response {
        version,
        status,
        reason,
        headers: lines.map(field).collect(),
        body: Vec::new(),
        trailers: Vec::new(),
        complete: false,
    })
}

/// `name: value`, the name lowercased and the value trimmed.
fn field(line: &str) -> (String, String) {
    let (name, value) = line
        .split_once(':')
        .unwrap_or_else(|| panic!("bad field line {line:?}"));
    (name.to_ascii_lowercase(), value.trim().to_string())
}

/// Takes one line ending in CRLF from the front of `input`, without the CRLF.
fn take_line<'a>(input: &mut &'a [u8]) -> Option<&'a str> {
    let end = find(input, b"\r\n")?;
    let line = std::str::from_utf8(&input[..end]).unwrap_or_else(|_| {
        panic!(
            "line is not utf-8: {:?}",
            String::from_utf8_lossy(&input[..end])
        )
    });
    *input = &input[end + 2..];
    Some(line)
}

/// Follows one response body's framing (RFC 9112 §6.3) as its bytes arrive.
#[derive(Debug)]
pub struct BodyReader(Framing);

#[derive(Debug)]
enum Framing {
    /// Nothing (more) to read.
    Done,
    /// This many Content-Length bytes to come.
    Length(usize),
    /// A chunk-size line to come.
    ChunkSize,
    /// This many bytes of chunk data to come.
    ChunkData(usize),
    /// The CRLF after a chunk's data to come.
    ChunkEnd,
    /// Trailer fields, up to an empty line, to come.
    Trailers,
    /// Everything up to the close of the connection.
    UntilClose,
}

impl BodyReader {
    /// The framing of the body that belongs to `head`; `head_request` says the
    /// request was HEAD (no body).
    pub fn new(head: &H1Response, head_request: bool) -> BodyReader {
        let no_body = head_request
            || (100..200).contains(&head.status)
            || head.status == 204
            || head.status == 304;
        let chunked = head
            .header_all("transfer-encoding")
            .iter()
            .any(|v| v.to_ascii_lowercase().contains("chunked"));
        BodyReader(if no_body {
            Framing::Done
        } else if chunked {
            Framing::ChunkSize
        } else if let Some(len) = head.header("content-length") {
            Framing::Length(len.parse().expect("numeric content-length"))
        } else {
            // RFC 9112 §6.3 item 8.
            Framing::UntilClose
        })
    }

    /// Moves what `input` holds of the body into `res` (body and trailers) and
    /// consumes it. True once the body is complete.
    pub fn read(&mut self, input: &mut &[u8], res: &mut H1Response) -> bool {
        loop {
            self.0 = match self.0 {
                Framing::Done => return true,
                Framing::Length(0) => Framing::Done,
                Framing::Length(left) => match take_data(input, left, res) {
                    0 => return false,
                    n => Framing::Length(left - n),
                },
                Framing::ChunkData(left) => match take_data(input, left, res) {
                    0 => return false,
                    n if n == left => Framing::ChunkEnd,
                    n => Framing::ChunkData(left - n),
                },
                Framing::ChunkSize => {
                    let Some(line) = take_line(input) else {
                        return false;
                    };
                    let hex = line.split(';').next().unwrap_or_default().trim();
                    match usize::from_str_radix(hex, 16) {
                        Ok(0) => Framing::Trailers,
                        Ok(size) => Framing::ChunkData(size),
                        Err(_) => panic!("bad chunk size line {line:?}"),
                    }
                }
                Framing::ChunkEnd => {
                    if input.len() < 2 {
                        return false;
                    }
                    assert_eq!(&input[..2], b"\r\n", "chunk not followed by CRLF");
                    *input = &input[2..];
                    Framing::ChunkSize
                }
                Framing::Trailers => {
                    let Some(line) = take_line(input) else {
                        return false;
                    };
                    if line.is_empty() {
                        Framing::Done
                    } else {
                        res.trailers.push(field(line));
                        Framing::Trailers
                    }
                }
                Framing::UntilClose => {
                    res.body.extend_from_slice(input);
                    *input = &[];
                    return false;
                }
            };
        }
    }

    /// Whether the body is complete if the connection ends where the input did.
    pub fn complete_at_eof(&self) -> bool {
        matches!(self.0, Framing::Done | Framing::UntilClose)
    }
}

/// Moves up to `left` body bytes from the front of `input` into `res`; how many.
fn take_data(input: &mut &[u8], left: usize, res: &mut H1Response) -> usize {
    let n = left.min(input.len());
    res.body.extend_from_slice(&input[..n]);
    *input = &input[n..];
    n
}

/// Splits `data`, all a connection sent, into the responses it holds. Parsing stops
/// after a `101` (what follows is not HTTP/1) and at the first response that is cut
/// off (its `complete` is false).
pub fn parse_responses(data: &[u8]) -> Vec<H1Response> {
    let mut out = Vec::new();
    let mut rest = data;
    while !rest.is_empty() {
        let Some(mut res) = parse_head(&mut rest) else {
            panic!(
                "bytes that are not a response head: {:?}",
                String::from_utf8_lossy(rest)
            );
        };
        let mut body = BodyReader::new(&res, false);
        res.complete = body.read(&mut rest, &mut res) || body.complete_at_eof();
        let stop = res.status == 101 || !res.complete;
        out.push(res);
        if stop {
            break;
        }
    }
    out
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// `body` as a chunked request body (RFC 9112 §7.1): chunks of `size` bytes, the
/// last chunk, no trailers.
pub fn chunked(body: &[u8], size: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len() + body.len() / size.max(1) * 10 + 5);
    for chunk in body.chunks(size) {
        out.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
        out.extend_from_slice(chunk);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"0\r\n\r\n");
    out
}

/// Number of HTTP/1 status lines in `data`: `HTTP/1.x NNN ` anywhere (response
/// bodies in these tests never contain one).
pub fn count_status_lines(data: &[u8]) -> usize {
    data.windows(13)
        .filter(|w| {
            w.starts_with(b"HTTP/1.")
                && w[8] == b' '
                && w[9..12].iter().all(u8::is_ascii_digit)
                && w[12] == b' '
        })
        .count()
}

/// An HTTP/1 connection driven by hand (or its read half).
pub struct H1Conn<S = TcpStream> {
    pub stream: S,
    /// Bytes read from the socket and not consumed yet.
    buf: Vec<u8>,
}

impl H1Conn<TcpStream> {
    pub async fn connect(addr: SocketAddr) -> H1Conn {
        let stream = within("connect", TcpStream::connect(addr))
            .await
            .expect("connect to the test server");
        stream.set_nodelay(true).expect("nodelay");
        H1Conn::new(stream)
    }

    /// A reader of responses and the write half, for requests that must be written
    /// while responses are read.
    pub fn into_split(self) -> (H1Conn<OwnedReadHalf>, OwnedWriteHalf) {
        let (rd, wr) = self.stream.into_split();
        (H1Conn::from_parts(rd, self.buf), wr)
    }
}

impl<S> H1Conn<S> {
    pub fn new(stream: S) -> H1Conn<S> {
        H1Conn::from_parts(stream, Vec::new())
    }

    pub fn from_parts(stream: S, buf: Vec<u8>) -> H1Conn<S> {
        H1Conn { stream, buf }
    }

    /// The socket and whatever was read past the last response.
    pub fn into_parts(self) -> (S, Vec<u8>) {
        (self.stream, self.buf)
    }
}

impl<S: AsyncWrite + Unpin> H1Conn<S> {
    /// Writes `bytes` (bounded), failing the test on an error.
    pub async fn send(&mut self, bytes: impl AsRef<[u8]>) {
        self.try_send(bytes).await.expect("write request");
    }

    /// Writes `bytes` (bounded).
    pub async fn try_send(&mut self, bytes: impl AsRef<[u8]>) -> io::Result<()> {
        within("write", self.stream.write_all(bytes.as_ref())).await
    }
}

impl<S: AsyncRead + Unpin> H1Conn<S> {
    /// Reads more bytes into the buffer; Ok(0) at EOF.
    async fn fill(&mut self) -> io::Result<usize> {
        let mut chunk = [0u8; READ_CHUNK];
        let n = self.stream.read(&mut chunk).await?;
        self.buf.extend_from_slice(&chunk[..n]);
        Ok(n)
    }

    fn closed_while(&self, what: &str) -> io::Error {
        io::Error::new(
            io::ErrorKind::UnexpectedEof,
            format!(
                "connection closed while reading {what}; got so far: {:?}",
                String::from_utf8_lossy(&self.buf)
            ),
        )
    }

    /// Reads a status line and its fields (unbounded); an error when the connection
    /// ends first.
    pub async fn try_read_head(&mut self) -> io::Result<H1Response> {
        loop {
            let mut input = &self.buf[..];
            if let Some(head) = parse_head(&mut input) {
                let used = self.buf.len() - input.len();
                self.buf.drain(..used);
                return Ok(head);
            }
            if self.fill().await? == 0 {
                return Err(self.closed_while("a response head"));
            }
        }
    }

    /// Reads the body that belongs to `res`, a head read with [`H1Conn::read_head`]
    /// (unbounded); an error when the connection ends before the body does.
    pub async fn try_read_body(
        &mut self,
        mut res: H1Response,
        head_request: bool,
    ) -> io::Result<H1Response> {
        let mut body = BodyReader::new(&res, head_request);
        loop {
            let mut input = &self.buf[..];
            let done = body.read(&mut input, &mut res);
            let used = self.buf.len() - input.len();
            self.buf.drain(..used);
            if done {
                res.complete = true;
                return Ok(res);
            }
            if self.fill().await? == 0 {
                if body.complete_at_eof() {
                    res.complete = true;
                    return Ok(res);
                }
                return Err(self.closed_while("a response body"));
            }
        }
    }

    /// Reads one response (unbounded); `head_request` says the request was HEAD.
    pub async fn try_read_response(&mut self, head_request: bool) -> io::Result<H1Response> {
        let head = self.try_read_head().await?;
        self.try_read_body(head, head_request).await
    }

    /// Reads a status line and its fields.
    pub async fn read_head(&mut self) -> H1Response {
        within("a response head", self.try_read_head())
            .await
            .unwrap_or_else(|e| panic!("reading a response head: {e}"))
    }

    /// Reads the body that belongs to `res`, a head read with [`H1Conn::read_head`].
    pub async fn read_body(&mut self, res: H1Response, head_request: bool) -> H1Response {
        within("a response body", self.try_read_body(res, head_request))
            .await
            .unwrap_or_else(|e| panic!("reading a response body: {e}"))
    }

    /// Reads one response to a request that was not HEAD.
    pub async fn read_response(&mut self) -> H1Response {
        self.read_response_to(false).await
    }

    /// Reads one response; `head_request` says the request was HEAD (no body).
    pub async fn read_response_to(&mut self, head_request: bool) -> H1Response {
        within("a response", self.try_read_response(head_request))
            .await
            .unwrap_or_else(|e| panic!("reading a response: {e}"))
    }

    /// Reads until the peer closes, and returns all it sent past the last response
    /// read.
    pub async fn read_to_eof(&mut self) -> Vec<u8> {
        let rest = read_to_eof(&mut self.stream).await;
        let mut all = std::mem::take(&mut self.buf);
        all.extend_from_slice(&rest);
        all
    }

    /// Asserts the server closes the connection without sending anything more.
    /// A reset counts as closed too (the server may close with unread input).
    pub async fn expect_closed(&mut self) {
        let rest = self.read_to_eof().await;
        assert!(
            rest.is_empty(),
            "unexpected bytes before close: {:?}",
            String::from_utf8_lossy(&rest)
        );
    }
}

/// A request whose body is still being written by its own task while the first
/// response head is read (see [`send_with_body`]).
pub struct Sending {
    /// The first response head.
    pub head: H1Response,
    /// The read half, positioned right after `head`.
    pub reader: H1Conn<OwnedReadHalf>,
    writer: JoinHandle<OwnedWriteHalf>,
}

impl Sending {
    /// Waits for the whole request to be written and makes the connection whole.
    pub async fn into_conn(self) -> H1Conn {
        let wr = within("the request body to be written", self.writer)
            .await
            .expect("writer task");
        let (rd, buf) = self.reader.into_parts();
        let stream = rd.reunite(wr).expect("halves of one socket");
        H1Conn::from_parts(stream, buf)
    }
}

/// Connects and sends `head` then `body`, written on their own task while the first
/// response head is read, so a server that reads (or answers) as the body streams
/// cannot deadlock the test.
pub async fn send_with_body(addr: SocketAddr, head: &[u8], body: Vec<u8>) -> Sending {
    let (mut reader, mut wr) = H1Conn::connect(addr).await.into_split();
    let mut all = head.to_vec();
    all.extend_from_slice(&body);
    let writer = tokio::spawn(async move {
        wr.write_all(&all).await.expect("write request and body");
        wr
    });
    let head = reader.read_head().await;
    Sending {
        head,
        reader,
        writer,
    }
}

/// Sends `request` on a fresh in-memory connection ([`duplex_conn`]), reads to
/// EOF, closes the client end, and returns the bytes and the connection's result.
pub async fn h1_exchange<S: TestService<B>, B: TestBody>(
    builder: &Builder,
    svc: S,
    request: &[u8],
) -> (Vec<u8>, Result<(), h2c_mux::Error>) {
    let (mut client, conn) = duplex_conn(builder, svc);
    within("write", client.write_all(request))
        .await
        .expect("write");
    let bytes = read_to_eof(&mut client).await;
    drop(client);
    let res = conn_result(conn).await;
    (bytes, res)
}

/// `GET /` over HTTP/1.1 on a new TCP connection: must be `hello world\n`.
pub async fn assert_h1_hello(addr: SocketAddr) {
    let mut conn = H1Conn::connect(addr).await;
    conn.send(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await;
    let bytes = conn.read_to_eof().await;
    let rs = parse_responses(&bytes);
    assert_eq!(rs.len(), 1, "{:?}", String::from_utf8_lossy(&bytes));
    assert_eq!(rs[0].status, 200);
    assert_eq!(rs[0].body, b"hello world\n");
}

/// `request` for messages: as text, cut after 200 characters.
fn describe(request: &[u8]) -> String {
    let what = String::from_utf8_lossy(request);
    if what.len() > 200 {
        format!("{}... ({} bytes)", &what[..200], request.len())
    } else {
        what.into_owned()
    }
}

/// Sends `request` to the demo served with `builder` over a real loopback socket
/// (`serve_connection` on the accepted socket) and checks it is refused with
/// `status`: exactly one response, complete, marked `connection: close`, then
/// EOF, and the connection ends with a parse error. The request is written on
/// its own task: the server may answer before it has read everything.
#[cfg(feature = "demo")]
pub async fn assert_refused(builder: &Builder, request: &[u8], status: u16) {
    let what = describe(request);
    let (io, conn) = tcp_conn(builder, h2c_mux::demo::Demo::new()).await;
    let (mut reader, mut wr) = H1Conn::new(io).into_split();
    let owned = request.to_vec();
    let writer = tokio::spawn(async move {
        let _ = wr.write_all(&owned).await;
        wr
    });
    let bytes = reader.read_to_eof().await;
    let rs = parse_responses(&bytes);
    assert_eq!(
        rs.len(),
        1,
        "{what:?}: want exactly one response, got {:?}",
        String::from_utf8_lossy(&bytes)
    );
    assert_eq!(rs[0].status, status, "{what:?}");
    assert!(rs[0].complete, "{what:?}: response cut off");
    assert!(
        rs[0].closes(),
        "{what:?}: response must say connection: close"
    );
    drop(within("the request to be written", writer).await);
    drop(reader);
    let e = conn_result(conn)
        .await
        .expect_err(&format!("{what:?}: the connection must end with an error"));
    assert!(e.is_parse(), "{what:?}: want a parse error, got {e:?}");
}

/// Sends `request` (which should end with `Connection: close`) to the demo served
/// with `builder` over an in-memory pipe, checks the connection ends without an
/// error, and returns the first response's status.
#[cfg(feature = "demo")]
pub async fn accepted_status(builder: &Builder, request: &[u8]) -> u16 {
    let (bytes, res) = h1_exchange(builder, h2c_mux::demo::Demo::new(), request).await;
    let rs = parse_responses(&bytes);
    assert!(!rs.is_empty(), "{:?}: no response", describe(request));
    assert!(
        res.is_ok(),
        "{:?}: connection error {res:?}",
        describe(request)
    );
    rs[0].status
}
