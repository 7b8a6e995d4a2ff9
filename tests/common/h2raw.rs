//! An HTTP/2 client driven frame by frame, over any byte stream (a socket, one of
//! its halves, or an in-memory pipe).
//!
//! The `h2` client cannot read stream 1 of an upgraded connection (it never opened
//! it) and will not misbehave on purpose, so the tests speak HTTP/2 themselves.
//! Frames are built as bytes ([`super::h2frame`]), so a test can write any
//! sequence, valid or not, in one write. [`H2Raw`] reads the server's frames back
//! and decodes every header block with one [`hpack::Decoder`], whichever method
//! read it, so the HPACK state stays in step.
//!
//! Reading comes in two strengths. [`H2Raw::read_frame`], [`H2Raw::next_event`] and
//! [`H2Raw::response`] fail the test on anything unexpected (a read error, the
//! connection ending early, a reset stream, a GOAWAY with an error).
//! [`H2Raw::try_read_frame`], [`H2Raw::read_frames_until`] and
//! [`H2Raw::read_response`] report the end of the connection (EOF or a reset) as
//! an outcome, for the tests that provoke it.

use std::io;
use std::net::SocketAddr;

use h2c_mux::Builder;
use tokio::io::{
    AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, DuplexStream, ReadHalf, WriteHalf,
};
use tokio::net::TcpStream;

use super::h2frame::*;
use super::hpack;
use super::server::{duplex_conn, ConnHandle, TestBody, TestService};
use super::{within, WAIT};

/// The settings the raw clients announce unless a test needs others: no dynamic table for the
/// server's encoder, so each response header block stands on its own.
pub const RAW_SETTINGS: &[(u16, u32)] = &[(SETTINGS_HEADER_TABLE_SIZE, 0)];

/// `svc` served with `builder` over an in-memory pipe ([`duplex_conn`]), as a
/// prior-knowledge connection past its SETTINGS exchange (with [`RAW_SETTINGS`]).
pub async fn h2_duplex<S: TestService<B>, B: TestBody>(
    builder: &Builder,
    svc: S,
) -> (H2Raw<DuplexStream>, ConnHandle) {
    let (c, conn) = duplex_conn(builder, svc);
    (H2Raw::open(c, RAW_SETTINGS).await, conn)
}

/// How much [`H2Raw`] asks the socket for at a time.
const READ_CHUNK: usize = 32 * 1024;

/// What a frame (or a HEADERS + CONTINUATION sequence) meant.
#[derive(Debug, Clone)]
pub enum Event {
    Headers {
        stream: u32,
        fields: Vec<(String, String)>,
        end_stream: bool,
    },
    Data {
        stream: u32,
        data: Vec<u8>,
        /// Bytes counted by flow control (data plus padding).
        flow_len: u32,
        end_stream: bool,
    },
    Settings {
        ack: bool,
        values: Vec<(u16, u32)>,
    },
    Ping {
        ack: bool,
        payload: [u8; 8],
    },
    GoAway {
        last_stream: u32,
        code: u32,
        debug: Vec<u8>,
    },
    RstStream {
        stream: u32,
        code: u32,
    },
    WindowUpdate {
        stream: u32,
        increment: u32,
    },
    Other(Frame),
}

/// A response on one stream, as far as it came.
#[derive(Debug, Clone, Default)]
pub struct H2Response {
    /// The final `:status` (interim 1xx heads are skipped), once it came.
    pub status: Option<u16>,
    /// Regular fields, in order (pseudo-fields removed).
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub trailers: Vec<(String, String)>,
    /// Whether END_STREAM came on the HEADERS frame itself.
    pub end_on_headers: bool,
    /// DATA frames received on the stream.
    pub data_frames: usize,
    /// END_STREAM came: the response is whole.
    pub ended: bool,
    /// The error code of the server's RST_STREAM, when it reset the stream.
    pub reset: Option<u32>,
}

impl H2Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn body_str(&self) -> &str {
        std::str::from_utf8(&self.body).expect("utf-8 body")
    }
}

/// The client end of an HTTP/2 connection, by hand.
pub struct H2Raw<S = TcpStream> {
    pub io: S,
    /// Bytes read and not yet taken as frames.
    rbuf: Vec<u8>,
    pub decoder: hpack::Decoder,
    /// The header block being received: its stream and its fragments so far.
    block: Option<(u32, Vec<u8>)>,
    /// GOAWAY frames received so far: (last stream id, error code).
    pub goaways: Vec<(u32, u32)>,
}

impl<S> H2Raw<S> {
    /// `leftover`: bytes already read from `io` (what followed a `101`).
    pub fn new(io: S, leftover: Vec<u8>) -> H2Raw<S> {
        H2Raw {
            io,
            rbuf: leftover,
            decoder: hpack::Decoder::default(),
            block: None,
            goaways: Vec::new(),
        }
    }

    /// A reader of the server's frames, in step with this one, and the write half.
    pub fn split(self) -> (H2Raw<ReadHalf<S>>, WriteHalf<S>)
    where
        S: AsyncRead + AsyncWrite,
    {
        let (rd, wr) = tokio::io::split(self.io);
        let reader = H2Raw {
            io: rd,
            rbuf: self.rbuf,
            decoder: self.decoder,
            block: self.block,
            goaways: self.goaways,
        };
        (reader, wr)
    }

    /// Takes one whole frame from the front of the read buffer, if it is there.
    fn take_frame(&mut self) -> Option<Frame> {
        let head = frame_head(&self.rbuf)?;
        if self.rbuf.len() < 9 + head.len {
            return None;
        }
        self.rbuf.drain(..9);
        let mut frame = Frame {
            ty: head.ty,
            flags: head.flags,
            stream: head.stream,
            payload: self.rbuf.drain(..head.len).collect(),
            fields: None,
        };
        self.observe(&mut frame);
        Some(frame)
    }

    /// Keeps the connection state every reader shares: header blocks are decoded
    /// (RFC 9113 §4.3: a block is one HEADERS or PUSH_PROMISE frame and the
    /// CONTINUATION frames right after it), GOAWAYs recorded.
    fn observe(&mut self, frame: &mut Frame) {
        if let Some((stream, _)) = &self.block {
            assert!(
                frame.ty == CONTINUATION && frame.stream == *stream,
                "header block on stream {stream} interrupted by frame type {} on stream {}",
                frame.ty,
                frame.stream
            );
        }
        match frame.ty {
            HEADERS | PUSH_PROMISE => {
                let mut fragment = frame.unpadded();
                if frame.ty == PUSH_PROMISE {
                    fragment.drain(..4); // the promised stream id
                } else if frame.flags & PRIORITY_FLAG != 0 {
                    fragment.drain(..5);
                }
                self.block = Some((frame.stream, fragment));
            }
            CONTINUATION => {
                let (_, block) = self
                    .block
                    .as_mut()
                    .expect("CONTINUATION without a header block");
                block.extend_from_slice(&frame.payload);
            }
            GOAWAY => {
                let p = &frame.payload;
                let last_stream = u32::from_be_bytes([p[0], p[1], p[2], p[3]]) & 0x7fff_ffff;
                self.goaways.push((last_stream, frame.error_code()));
            }
            _ => {}
        }
        let ends_block = matches!(frame.ty, HEADERS | PUSH_PROMISE | CONTINUATION)
            && frame.flags & END_HEADERS != 0;
        if ends_block {
            let (_, block) = self.block.take().expect("a header block");
            let fields = self
                .decoder
                .decode(&block)
                .unwrap_or_else(|e| panic!("server header block: {e}"));
            frame.fields = Some(fields);
        }
    }
}

impl<S: AsyncWrite + Unpin> H2Raw<S> {
    /// Writes `bytes` (bounded), failing the test on an error.
    pub async fn write(&mut self, bytes: &[u8]) {
        self.try_write(bytes).await.expect("write to the server");
    }

    /// Writes `bytes` (bounded).
    pub async fn try_write(&mut self, bytes: &[u8]) -> io::Result<()> {
        within("write", self.io.write_all(bytes)).await
    }

    /// A write that may fail because the server is closing.
    async fn write_lenient(&mut self, bytes: &[u8]) {
        let _ = self.try_write(bytes).await;
    }

    pub async fn send_frame(&mut self, ty: u8, flags: u8, stream: u32, payload: &[u8]) {
        self.write(&frame(ty, flags, stream, payload)).await;
    }

    /// The client preface and a SETTINGS frame, in one write.
    pub async fn send_preface(&mut self, settings: &[(u16, u32)]) {
        let mut out = PREFACE.to_vec();
        out.extend_from_slice(&settings_frame(settings));
        self.write(&out).await;
    }

    pub async fn send_settings_ack(&mut self) {
        self.write(&settings_ack()).await;
    }

    pub async fn send_ping(&mut self, payload: [u8; 8]) {
        self.write(&ping_frame(payload)).await;
    }

    pub async fn send_window_update(&mut self, stream: u32, increment: u32) {
        self.write(&window_update_frame(stream, increment)).await;
    }

    /// A request's HEADERS frame (END_HEADERS; END_STREAM when `end_stream`).
    pub async fn send_headers(&mut self, stream: u32, fields: &[(&str, &str)], end_stream: bool) {
        self.write(&headers_frame(stream, end_stream, fields)).await;
    }

    /// `data` in DATA frames of at most [`MAX_FRAME_SIZE`], END_STREAM on the last
    /// when `end_stream`.
    pub async fn send_data(&mut self, stream: u32, data: &[u8], end_stream: bool) {
        for (i, chunk) in data.chunks(MAX_FRAME_SIZE).enumerate() {
            let last = (i + 1) * MAX_FRAME_SIZE >= data.len();
            let flags = if end_stream && last { END_STREAM } else { 0 };
            self.send_frame(DATA, flags, stream, chunk).await;
        }
        if data.is_empty() {
            let flags = if end_stream { END_STREAM } else { 0 };
            self.send_frame(DATA, flags, stream, &[]).await;
        }
    }
}

impl<S: AsyncRead + Unpin> H2Raw<S> {
    /// Reads one frame, waiting as long as it takes (the caller bounds the wait).
    /// `Ok(None)` when the server closed the connection between frames; an error
    /// when it closed mid-frame or the read failed.
    pub async fn try_read_frame(&mut self) -> io::Result<Option<Frame>> {
        loop {
            if let Some(frame) = self.take_frame() {
                return Ok(Some(frame));
            }
            let mut chunk = [0u8; READ_CHUNK];
            let n = self.io.read(&mut chunk).await?;
            if n == 0 {
                if self.rbuf.is_empty() {
                    return Ok(None);
                }
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!(
                        "connection closed mid-frame ({} bytes buffered)",
                        self.rbuf.len()
                    ),
                ));
            }
            self.rbuf.extend_from_slice(&chunk[..n]);
        }
    }

    /// Reads one frame (bounded); None when the server closed the connection
    /// between frames. Anything else but a frame fails the test.
    pub async fn read_frame(&mut self) -> Option<Frame> {
        within("a frame", self.try_read_frame())
            .await
            .unwrap_or_else(|e| panic!("reading a frame: {e}"))
    }

    /// Reads the next frame and says what it meant; a HEADERS frame is read
    /// together with its CONTINUATION frames. None at EOF.
    pub async fn next_event(&mut self) -> Option<Event> {
        let frame = self.read_frame().await?;
        Some(match frame.ty {
            HEADERS => {
                let stream = frame.stream;
                let end_stream = frame.flags & END_STREAM != 0;
                let mut last = frame;
                while last.fields.is_none() {
                    last = self
                        .read_frame()
                        .await
                        .expect("connection closed inside a header block");
                }
                Event::Headers {
                    stream,
                    fields: last.fields.unwrap_or_default(),
                    end_stream,
                }
            }
            DATA => Event::Data {
                stream: frame.stream,
                data: frame.unpadded(),
                flow_len: frame.payload.len() as u32,
                end_stream: frame.flags & END_STREAM != 0,
            },
            SETTINGS => {
                assert_eq!(frame.stream, 0, "SETTINGS on a stream");
                assert_eq!(frame.payload.len() % 6, 0, "SETTINGS payload length");
                let values = frame
                    .payload
                    .chunks(6)
                    .map(|c| {
                        (
                            u16::from_be_bytes([c[0], c[1]]),
                            u32::from_be_bytes([c[2], c[3], c[4], c[5]]),
                        )
                    })
                    .collect();
                Event::Settings {
                    ack: frame.flags & ACK != 0,
                    values,
                }
            }
            PING => Event::Ping {
                ack: frame.flags & ACK != 0,
                payload: frame.payload[..8].try_into().expect("8-byte PING"),
            },
            GOAWAY => {
                let p = &frame.payload;
                Event::GoAway {
                    last_stream: u32::from_be_bytes([p[0], p[1], p[2], p[3]]) & 0x7fff_ffff,
                    code: frame.error_code(),
                    debug: p[8..].to_vec(),
                }
            }
            RST_STREAM => Event::RstStream {
                stream: frame.stream,
                code: frame.error_code(),
            },
            WINDOW_UPDATE => Event::WindowUpdate {
                stream: frame.stream,
                increment: u32::from_be_bytes(frame.payload[..4].try_into().expect("4 bytes"))
                    & 0x7fff_ffff,
            },
            _ => Event::Other(frame),
        })
    }

    /// Reads frames, answering none, until `stop` says so or the connection ends
    /// (EOF or a read error); returns every frame read (the stopping one last) and
    /// whether the connection ended. Bounded by [`WAIT`] as a whole.
    pub async fn read_frames_until<F>(&mut self, mut stop: F) -> (Vec<Frame>, bool)
    where
        F: FnMut(&Frame) -> bool,
    {
        let mut frames = Vec::new();
        let r = tokio::time::timeout(WAIT, async {
            loop {
                match self.try_read_frame().await {
                    Ok(Some(f)) => {
                        let done = stop(&f);
                        frames.push(f);
                        if done {
                            return false;
                        }
                    }
                    Ok(None) | Err(_) => return true,
                }
            }
        })
        .await;
        match r {
            Ok(ended) => (frames, ended),
            Err(_) => panic!(
                "no stopping frame or end within the bound; frames so far: {:?}",
                summarize(&frames)
            ),
        }
    }

    /// [`H2Raw::read_frames_until`] a frame that must come before the connection
    /// ends.
    pub async fn read_until<F>(&mut self, stop: F) -> Vec<Frame>
    where
        F: FnMut(&Frame) -> bool,
    {
        let (frames, ended) = self.read_frames_until(stop).await;
        assert!(!ended, "connection ended: {:?}", summarize(&frames));
        frames
    }

    /// Reads, answering nothing, until the connection ends (EOF or a read error),
    /// waiting as long as it takes (the caller bounds the wait). Returns how many
    /// frames came.
    pub async fn count_until_closed(&mut self) -> usize {
        let mut n = 0;
        while let Ok(Some(_)) = self.try_read_frame().await {
            n += 1;
        }
        n
    }
}

impl H2Raw {
    /// A prior-knowledge connection to `addr`, past the SETTINGS exchange (with
    /// [`RAW_SETTINGS`]).
    pub async fn connect(addr: SocketAddr) -> H2Raw {
        let s = within("connect", TcpStream::connect(addr))
            .await
            .expect("connect to the test server");
        H2Raw::open(s, RAW_SETTINGS).await
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> H2Raw<S> {
    /// A prior-knowledge connection over `io`, past the SETTINGS exchange
    /// ([`H2Raw::handshake`]).
    pub async fn open(io: S, settings: &[(u16, u32)]) -> H2Raw<S> {
        let mut h2 = H2Raw::new(io, Vec::new());
        h2.handshake(settings).await;
        h2
    }

    /// Opens a prior-knowledge connection: preface, our SETTINGS, then reads until
    /// the server's SETTINGS and acknowledges it. Returns the frames the server
    /// sent up to its SETTINGS (included).
    pub async fn handshake(&mut self, settings: &[(u16, u32)]) -> Vec<Frame> {
        self.send_preface(settings).await;
        let frames = self
            .read_until(|f| f.ty == SETTINGS && f.flags & ACK == 0)
            .await;
        self.send_settings_ack().await;
        frames
    }

    /// Writes `bytes` and a PING, then reads until that PING's ACK: every frame the
    /// server wrote in answer to `bytes` is returned. Fails if the connection ends.
    pub async fn exchange_until_pong(&mut self, bytes: &[u8]) -> Vec<Frame> {
        let marker = *b"hardpong";
        let mut out = bytes.to_vec();
        out.extend_from_slice(&ping_frame(marker));
        self.write(&out).await;
        self.read_until(|f| f.ty == PING && f.flags & ACK != 0 && f.payload == marker)
            .await
    }

    /// Reads until the response on `stream` ends (END_STREAM or RST_STREAM) or the
    /// connection does, answering the server's SETTINGS and PINGs like a client
    /// must and returning flow-control credit for the DATA it reads. Returns the
    /// response as far as it came (without a `status` when the test read the
    /// stream's HEADERS itself), and every other frame read except the SETTINGS
    /// and PINGs it answered. Bounded by [`WAIT`] as a whole.
    pub async fn read_response(&mut self, stream: u32) -> (H2Response, Vec<Frame>) {
        let mut res = H2Response::default();
        let mut others = Vec::new();
        let r = tokio::time::timeout(WAIT, async {
            // END_STREAM of the header block being read (it sits on its HEADERS).
            let mut block_ends_stream = false;
            loop {
                let Some(f) = self.try_read_frame().await.ok().flatten() else {
                    return;
                };
                match f.ty {
                    SETTINGS if f.flags & ACK == 0 => self.write_lenient(&settings_ack()).await,
                    PING if f.flags & ACK == 0 => {
                        self.write_lenient(&frame(PING, ACK, 0, &f.payload)).await
                    }
                    HEADERS | CONTINUATION if f.stream == stream => {
                        if f.ty == HEADERS {
                            block_ends_stream = f.flags & END_STREAM != 0;
                        }
                        let Some(fields) = f.fields else {
                            continue;
                        };
                        if res.status.is_none() {
                            let status = fields
                                .iter()
                                .find(|(n, _)| n == ":status")
                                .map(|(_, v)| v.parse::<u16>().expect("numeric :status"))
                                .expect("response without :status");
                            if (100..200).contains(&status) {
                                continue;
                            }
                            res.status = Some(status);
                            res.headers = fields
                                .into_iter()
                                .filter(|(n, _)| !n.starts_with(':'))
                                .collect();
                            res.end_on_headers = block_ends_stream;
                        } else {
                            assert!(block_ends_stream, "trailers without END_STREAM");
                            res.trailers = fields;
                        }
                        if block_ends_stream {
                            res.ended = true;
                            return;
                        }
                    }
                    DATA if f.stream == stream => {
                        res.body.extend_from_slice(&f.unpadded());
                        res.data_frames += 1;
                        let end_stream = f.flags & END_STREAM != 0;
                        let flow_len = f.payload.len() as u32;
                        if flow_len > 0 {
                            // Keep the windows open for large bodies: the
                            // connection's always, the stream's while it lasts.
                            let mut credit = window_update_frame(0, flow_len);
                            if !end_stream {
                                credit.extend_from_slice(&window_update_frame(stream, flow_len));
                            }
                            self.write_lenient(&credit).await;
                        }
                        if end_stream {
                            res.ended = true;
                            return;
                        }
                    }
                    RST_STREAM if f.stream == stream => {
                        res.reset = Some(f.error_code());
                        return;
                    }
                    _ => others.push(f),
                }
            }
        })
        .await;
        assert!(r.is_ok(), "stream {stream} did not end within the bound");
        (res, others)
    }

    /// [`H2Raw::read_response`] for a response that must come whole: a reset
    /// stream, a GOAWAY with an error or the connection ending first fails the
    /// test. Frames of other streams are skipped.
    pub async fn response(&mut self, stream: u32) -> H2Response {
        let (res, others) = self.read_response(stream).await;
        if let Some(g) = others
            .iter()
            .find(|f| f.ty == GOAWAY && f.error_code() != NO_ERROR)
        {
            panic!(
                "GOAWAY with error {} while waiting for stream {stream}: {}",
                g.error_code(),
                String::from_utf8_lossy(&g.payload[8..])
            );
        }
        if let Some(code) = res.reset {
            panic!("stream {stream} reset with error {code}");
        }
        assert!(
            res.ended,
            "connection closed before stream {stream} ended: {res:?}"
        );
        assert!(
            res.status.is_some(),
            "stream {stream} ended without HEADERS"
        );
        res
    }

    /// The next HEADERS, DATA or RST_STREAM of `stream`, answering the server's
    /// SETTINGS and PINGs as a client must and skipping every other frame (window
    /// updates, other streams, GOAWAY). The connection ending first fails the test.
    pub async fn next_on(&mut self, stream: u32) -> Event {
        loop {
            let event = self
                .next_event()
                .await
                .unwrap_or_else(|| panic!("connection closed waiting for stream {stream}"));
            match event {
                Event::Settings { ack: false, .. } => self.write_lenient(&settings_ack()).await,
                Event::Ping {
                    ack: false,
                    payload,
                } => self.write_lenient(&frame(PING, ACK, 0, &payload)).await,
                Event::Headers { stream: s, .. }
                | Event::Data { stream: s, .. }
                | Event::RstStream { stream: s, .. }
                    if s == stream =>
                {
                    return event
                }
                _ => {}
            }
        }
    }

    /// Reads and answers frames until the server closes the connection. Returns the
    /// events seen on the way.
    pub async fn read_until_closed(&mut self) -> Vec<Event> {
        let mut seen = Vec::new();
        while let Some(event) = self.next_event().await {
            match &event {
                Event::Settings { ack: false, .. } => self.write_lenient(&settings_ack()).await,
                Event::Ping {
                    ack: false,
                    payload,
                } => {
                    let p = *payload;
                    self.write_lenient(&frame(PING, ACK, 0, &p)).await;
                }
                _ => {}
            }
            seen.push(event);
        }
        seen
    }
}
