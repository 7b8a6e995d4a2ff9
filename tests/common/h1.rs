//! A raw HTTP/1.1 client over a `TcpStream`: write bytes, read responses as they are
//! framed on the wire (status line, fields, a Content-Length, chunked or
//! read-to-close body), and tell a closed connection from an open one.

use std::io;
use std::net::SocketAddr;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;

use super::within;

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

    pub fn body_str(&self) -> &str {
        std::str::from_utf8(&self.body).expect("utf-8 body")
    }
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
        H1Conn {
            stream,
            buf: Vec::new(),
        }
    }

    /// A reader of responses and the write half, for requests that must be written
    /// while responses are read.
    pub fn into_split(self) -> (H1Conn<OwnedReadHalf>, OwnedWriteHalf) {
        let (rd, wr) = self.stream.into_split();
        (H1Conn::from_parts(rd, self.buf), wr)
    }
}

impl<S> H1Conn<S> {
    pub fn from_parts(stream: S, buf: Vec<u8>) -> H1Conn<S> {
        H1Conn { stream, buf }
    }

    /// The socket and whatever was read past the last response.
    pub fn into_parts(self) -> (S, Vec<u8>) {
        (self.stream, self.buf)
    }
}

impl<S: AsyncWrite + Unpin> H1Conn<S> {
    pub async fn send(&mut self, bytes: impl AsRef<[u8]>) {
        within("write", self.stream.write_all(bytes.as_ref()))
            .await
            .expect("write request");
    }
}

impl<S: AsyncRead + Unpin> H1Conn<S> {
    /// Reads more bytes; Ok(0) at EOF.
    async fn fill(&mut self) -> io::Result<usize> {
        let mut chunk = [0u8; 16 * 1024];
        let n = within("read", self.stream.read(&mut chunk)).await?;
        self.buf.extend_from_slice(&chunk[..n]);
        Ok(n)
    }

    async fn fill_or_panic(&mut self, what: &str) {
        match self.fill().await {
            Ok(0) => panic!(
                "connection closed while reading {what}; got so far: {:?}",
                String::from_utf8_lossy(&self.buf)
            ),
            Ok(_) => {}
            Err(e) => panic!("read error while reading {what}: {e}"),
        }
    }

    /// Reads one line ending in CRLF, without it.
    async fn line(&mut self, what: &str) -> String {
        loop {
            if let Some(i) = self.buf.windows(2).position(|w| w == b"\r\n") {
                let line: Vec<u8> = self.buf.drain(..i + 2).take(i).collect();
                return String::from_utf8(line).expect("utf-8 line");
            }
            self.fill_or_panic(what).await;
        }
    }

    async fn exact(&mut self, n: usize, what: &str) -> Vec<u8> {
        while self.buf.len() < n {
            self.fill_or_panic(what).await;
        }
        self.buf.drain(..n).collect()
    }

    /// Reads a status line and its fields.
    pub async fn read_head(&mut self) -> H1Response {
        let status_line = self.line("status line").await;
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
        let headers = self.fields("header field").await;
        H1Response {
            version,
            status,
            reason,
            headers,
            body: Vec::new(),
            trailers: Vec::new(),
        }
    }

    async fn fields(&mut self, what: &str) -> Vec<(String, String)> {
        let mut fields = Vec::new();
        loop {
            let line = self.line(what).await;
            if line.is_empty() {
                return fields;
            }
            let (name, value) = line
                .split_once(':')
                .unwrap_or_else(|| panic!("bad field line {line:?}"));
            fields.push((name.to_ascii_lowercase(), value.trim().to_string()));
        }
    }

    /// Reads one response to a request that was not HEAD.
    pub async fn read_response(&mut self) -> H1Response {
        self.read_response_to(false).await
    }

    /// Reads one response; `head_request` says the request was HEAD (no body).
    pub async fn read_response_to(&mut self, head_request: bool) -> H1Response {
        let head = self.read_head().await;
        self.read_body(head, head_request).await
    }

    /// Reads the body that belongs to `res`, a head read with [`H1Conn::read_head`].
    pub async fn read_body(&mut self, mut res: H1Response, head_request: bool) -> H1Response {
        let no_body = head_request
            || (100..200).contains(&res.status)
            || res.status == 204
            || res.status == 304;
        if no_body {
            return res;
        }
        let chunked = res
            .header_all("transfer-encoding")
            .iter()
            .any(|v| v.to_ascii_lowercase().contains("chunked"));
        if chunked {
            loop {
                let size_line = self.line("chunk size").await;
                let hex = size_line.split(';').next().unwrap_or_default().trim();
                let size = usize::from_str_radix(hex, 16)
                    .unwrap_or_else(|_| panic!("bad chunk size line {size_line:?}"));
                if size == 0 {
                    res.trailers = self.fields("trailer field").await;
                    return res;
                }
                let data = self.exact(size, "chunk data").await;
                res.body.extend_from_slice(&data);
                let end = self.exact(2, "chunk end").await;
                assert_eq!(end, b"\r\n", "chunk not followed by CRLF");
            }
        }
        if let Some(len) = res.header("content-length") {
            let len: usize = len.parse().expect("numeric content-length");
            res.body = self.exact(len, "body").await;
            return res;
        }
        // Delimited by the close of the connection (RFC 9112 §6.3 item 8).
        loop {
            match self.fill().await {
                Ok(0) => break,
                Ok(_) => {}
                Err(e) => panic!("read error in a close-delimited body: {e}"),
            }
        }
        res.body = std::mem::take(&mut self.buf);
        res
    }

    /// Asserts the server closes the connection without sending anything more.
    /// A reset counts as closed too (the server may close with unread input).
    pub async fn expect_closed(&mut self) {
        loop {
            match self.fill().await {
                Ok(0) => break,
                Ok(_) => {}
                Err(e)
                    if e.kind() == io::ErrorKind::ConnectionReset
                        || e.kind() == io::ErrorKind::ConnectionAborted =>
                {
                    break
                }
                Err(e) => panic!("read error waiting for close: {e}"),
            }
        }
        assert!(
            self.buf.is_empty(),
            "unexpected bytes before close: {:?}",
            String::from_utf8_lossy(&self.buf)
        );
    }
}
