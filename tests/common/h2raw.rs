//! An HTTP/2 client driven frame by frame over a `TcpStream`.
//!
//! The `h2` client cannot read stream 1 of an upgraded connection (it never opened
//! it), so after a `101` the tests speak HTTP/2 themselves: frames are read and
//! written by hand, header blocks are decoded with [`hpack::Decoder`] and encoded
//! as plain literals.

use std::io;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::hpack;
use super::within;

pub const PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

pub const DATA: u8 = 0x0;
pub const HEADERS: u8 = 0x1;
pub const PRIORITY: u8 = 0x2;
pub const RST_STREAM: u8 = 0x3;
pub const SETTINGS: u8 = 0x4;
pub const PUSH_PROMISE: u8 = 0x5;
pub const PING: u8 = 0x6;
pub const GOAWAY: u8 = 0x7;
pub const WINDOW_UPDATE: u8 = 0x8;
pub const CONTINUATION: u8 = 0x9;

pub const END_STREAM: u8 = 0x1;
pub const ACK: u8 = 0x1;
pub const END_HEADERS: u8 = 0x4;
pub const PADDED: u8 = 0x8;
pub const PRIORITY_FLAG: u8 = 0x20;

pub const SETTINGS_HEADER_TABLE_SIZE: u16 = 0x1;
pub const SETTINGS_ENABLE_PUSH: u16 = 0x2;
pub const SETTINGS_MAX_CONCURRENT_STREAMS: u16 = 0x3;
pub const SETTINGS_INITIAL_WINDOW_SIZE: u16 = 0x4;
pub const SETTINGS_MAX_FRAME_SIZE: u16 = 0x5;

/// One frame as it was on the wire.
#[derive(Debug, Clone)]
pub struct Frame {
    pub ty: u8,
    pub flags: u8,
    pub stream: u32,
    pub payload: Vec<u8>,
}

impl Frame {
    pub fn encode(&self) -> Vec<u8> {
        frame_bytes(self.ty, self.flags, self.stream, &self.payload)
    }
}

/// A frame's bytes: 9-octet header (RFC 9113 §4.1) and payload.
pub fn frame_bytes(ty: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let len = payload.len();
    assert!(len < 1 << 24);
    let mut out = Vec::with_capacity(9 + len);
    out.extend_from_slice(&[(len >> 16) as u8, (len >> 8) as u8, len as u8, ty, flags]);
    out.extend_from_slice(&(stream & 0x7fff_ffff).to_be_bytes());
    out.extend_from_slice(payload);
    out
}

/// A SETTINGS payload (RFC 9113 §6.5.1): 6 octets per setting.
pub fn settings_payload(settings: &[(u16, u32)]) -> Vec<u8> {
    let mut out = Vec::with_capacity(settings.len() * 6);
    for (id, value) in settings {
        out.extend_from_slice(&id.to_be_bytes());
        out.extend_from_slice(&value.to_be_bytes());
    }
    out
}

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

/// A complete response on one stream.
#[derive(Debug, Clone)]
pub struct H2Response {
    pub status: u16,
    /// Regular fields, in order (pseudo-fields removed).
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub trailers: Vec<(String, String)>,
    /// Whether END_STREAM came on the HEADERS frame itself.
    pub end_on_headers: bool,
    /// DATA frames received on the stream.
    pub data_frames: usize,
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
pub struct H2Raw {
    pub stream: TcpStream,
    rbuf: Vec<u8>,
    pub decoder: hpack::Decoder,
    /// GOAWAY frames received so far: (last stream id, error code).
    pub goaways: Vec<(u32, u32)>,
    /// Whether DATA is acknowledged with WINDOW_UPDATE as it is read by `response`.
    pub auto_window: bool,
}

impl H2Raw {
    /// `leftover`: bytes already read from `stream` (what followed a `101`).
    pub fn new(stream: TcpStream, leftover: Vec<u8>) -> H2Raw {
        H2Raw {
            stream,
            rbuf: leftover,
            decoder: hpack::Decoder::default(),
            goaways: Vec::new(),
            auto_window: true,
        }
    }

    pub async fn write(&mut self, bytes: &[u8]) {
        within("write", self.stream.write_all(bytes))
            .await
            .expect("write to the server");
    }

    pub async fn send_frame(&mut self, ty: u8, flags: u8, stream: u32, payload: &[u8]) {
        self.write(&frame_bytes(ty, flags, stream, payload)).await;
    }

    /// The client preface and a SETTINGS frame, in one write.
    pub async fn send_preface(&mut self, settings: &[(u16, u32)]) {
        let mut out = PREFACE.to_vec();
        out.extend_from_slice(&frame_bytes(SETTINGS, 0, 0, &settings_payload(settings)));
        self.write(&out).await;
    }

    pub async fn send_settings_ack(&mut self) {
        self.send_frame(SETTINGS, ACK, 0, &[]).await;
    }

    pub async fn send_ping(&mut self, payload: [u8; 8]) {
        self.send_frame(PING, 0, 0, &payload).await;
    }

    pub async fn send_window_update(&mut self, stream: u32, increment: u32) {
        self.send_frame(WINDOW_UPDATE, 0, stream, &increment.to_be_bytes())
            .await;
    }

    /// A request's HEADERS frame (END_HEADERS; END_STREAM when `end_stream`).
    pub async fn send_headers(&mut self, stream: u32, fields: &[(&str, &str)], end_stream: bool) {
        let block = hpack::encode(fields);
        assert!(block.len() <= 16_384, "header block needs CONTINUATION");
        let flags = END_HEADERS | if end_stream { END_STREAM } else { 0 };
        self.send_frame(HEADERS, flags, stream, &block).await;
    }

    pub async fn send_data(&mut self, stream: u32, data: &[u8], end_stream: bool) {
        for (i, chunk) in data.chunks(16_384).enumerate() {
            let last = (i + 1) * 16_384 >= data.len();
            let flags = if end_stream && last { END_STREAM } else { 0 };
            self.send_frame(DATA, flags, stream, chunk).await;
        }
        if data.is_empty() {
            let flags = if end_stream { END_STREAM } else { 0 };
            self.send_frame(DATA, flags, stream, &[]).await;
        }
    }

    /// Reads one frame; None when the server closed the connection between frames.
    pub async fn read_frame(&mut self) -> Option<Frame> {
        loop {
            if self.rbuf.len() >= 9 {
                let len = (usize::from(self.rbuf[0]) << 16)
                    | (usize::from(self.rbuf[1]) << 8)
                    | usize::from(self.rbuf[2]);
                if self.rbuf.len() >= 9 + len {
                    let head: Vec<u8> = self.rbuf.drain(..9).collect();
                    let payload = self.rbuf.drain(..len).collect();
                    return Some(Frame {
                        ty: head[3],
                        flags: head[4],
                        stream: u32::from_be_bytes([head[5], head[6], head[7], head[8]])
                            & 0x7fff_ffff,
                        payload,
                    });
                }
            }
            let mut chunk = [0u8; 32 * 1024];
            let n = match within("read a frame", self.stream.read(&mut chunk)).await {
                Ok(n) => n,
                Err(e) => panic!("read error while reading a frame: {e}"),
            };
            if n == 0 {
                assert!(
                    self.rbuf.is_empty(),
                    "connection closed mid-frame ({} bytes buffered)",
                    self.rbuf.len()
                );
                return None;
            }
            self.rbuf.extend_from_slice(&chunk[..n]);
        }
    }

    /// Reads the next frame and decodes it; a HEADERS frame is read together with
    /// its CONTINUATION frames and its block decoded (which keeps the HPACK state
    /// in step whichever stream it is for). None at EOF.
    pub async fn next_event(&mut self) -> Option<Event> {
        let frame = self.read_frame().await?;
        Some(match frame.ty {
            HEADERS => {
                let stream = frame.stream;
                let end_stream = frame.flags & END_STREAM != 0;
                let mut block = strip_padding(&frame);
                if frame.flags & PRIORITY_FLAG != 0 {
                    block.drain(..5);
                }
                let mut end_headers = frame.flags & END_HEADERS != 0;
                while !end_headers {
                    let next = self
                        .read_frame()
                        .await
                        .expect("connection closed inside a header block");
                    assert_eq!(next.ty, CONTINUATION, "header block interrupted");
                    assert_eq!(next.stream, stream, "CONTINUATION on another stream");
                    block.extend_from_slice(&next.payload);
                    end_headers = next.flags & END_HEADERS != 0;
                }
                let fields = self
                    .decoder
                    .decode(&block)
                    .unwrap_or_else(|e| panic!("server header block: {e}"));
                Event::Headers {
                    stream,
                    fields,
                    end_stream,
                }
            }
            DATA => Event::Data {
                stream: frame.stream,
                data: strip_padding(&frame),
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
                let last_stream = u32::from_be_bytes([p[0], p[1], p[2], p[3]]) & 0x7fff_ffff;
                let code = u32::from_be_bytes([p[4], p[5], p[6], p[7]]);
                self.goaways.push((last_stream, code));
                Event::GoAway {
                    last_stream,
                    code,
                    debug: p[8..].to_vec(),
                }
            }
            RST_STREAM => Event::RstStream {
                stream: frame.stream,
                code: u32::from_be_bytes(frame.payload[..4].try_into().expect("4 bytes")),
            },
            WINDOW_UPDATE => Event::WindowUpdate {
                stream: frame.stream,
                increment: u32::from_be_bytes(frame.payload[..4].try_into().expect("4 bytes"))
                    & 0x7fff_ffff,
            },
            _ => Event::Other(frame),
        })
    }

    /// Reads until the response on `stream` is complete, answering SETTINGS and PING
    /// like a client must and (with `auto_window`) returning flow-control credit
    /// for the DATA it reads. Events of other streams are skipped.
    pub async fn response(&mut self, stream: u32) -> H2Response {
        let mut res: Option<H2Response> = None;
        loop {
            let event = self
                .next_event()
                .await
                .unwrap_or_else(|| panic!("connection closed before stream {stream} ended"));
            match event {
                Event::Settings { ack: false, .. } => self.send_settings_ack().await,
                Event::Ping {
                    ack: false,
                    payload,
                } => self.send_frame(PING, ACK, 0, &payload).await,
                Event::GoAway { code, debug, .. } if code != 0 => panic!(
                    "GOAWAY with error {code} while waiting for stream {stream}: {}",
                    String::from_utf8_lossy(&debug)
                ),
                Event::RstStream { stream: s, code } if s == stream => {
                    panic!("stream {stream} reset with error {code}")
                }
                Event::Headers {
                    stream: s,
                    fields,
                    end_stream,
                } if s == stream => {
                    match res.as_mut() {
                        None => {
                            let status = fields
                                .iter()
                                .find(|(n, _)| n == ":status")
                                .map(|(_, v)| v.parse::<u16>().expect("numeric :status"))
                                .expect("response without :status");
                            if (100..200).contains(&status) {
                                continue;
                            }
                            res = Some(H2Response {
                                status,
                                headers: fields
                                    .into_iter()
                                    .filter(|(n, _)| !n.starts_with(':'))
                                    .collect(),
                                body: Vec::new(),
                                trailers: Vec::new(),
                                end_on_headers: end_stream,
                                data_frames: 0,
                            });
                        }
                        Some(r) => {
                            assert!(end_stream, "trailers without END_STREAM");
                            r.trailers = fields;
                        }
                    }
                    if end_stream {
                        return res.expect("response");
                    }
                }
                Event::Data {
                    stream: s,
                    data,
                    flow_len,
                    end_stream,
                } if s == stream => {
                    let r = res.as_mut().expect("DATA before HEADERS");
                    r.body.extend_from_slice(&data);
                    r.data_frames += 1;
                    if end_stream {
                        return res.expect("response");
                    }
                    if self.auto_window && flow_len > 0 {
                        self.send_window_update(0, flow_len).await;
                        self.send_window_update(stream, flow_len).await;
                    }
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
                Event::Settings { ack: false, .. } => self.send_settings_ack_lenient().await,
                Event::Ping {
                    ack: false,
                    payload,
                } => {
                    let p = *payload;
                    self.send_lenient(&frame_bytes(PING, ACK, 0, &p)).await;
                }
                _ => {}
            }
            seen.push(event);
        }
        seen
    }

    async fn send_settings_ack_lenient(&mut self) {
        self.send_lenient(&frame_bytes(SETTINGS, ACK, 0, &[])).await;
    }

    /// A write that may fail because the server is closing.
    async fn send_lenient(&mut self, bytes: &[u8]) {
        let r: io::Result<()> = within("write", self.stream.write_all(bytes)).await;
        let _ = r;
    }
}

fn strip_padding(frame: &Frame) -> Vec<u8> {
    if frame.flags & PADDED == 0 {
        return frame.payload.clone();
    }
    let pad = usize::from(frame.payload[0]);
    frame.payload[1..frame.payload.len() - pad].to_vec()
}
