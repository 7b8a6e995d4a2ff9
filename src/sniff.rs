//! Recognising HTTP/2 with prior knowledge (RFC 9113 §3.3), and replaying the bytes
//! read while looking.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Buf, Bytes};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// The HTTP/2 client connection preface (RFC 9113 §3.4).
pub(crate) const PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// What the first bytes of a connection say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Sniffed {
    /// The whole preface: HTTP/2 with prior knowledge.
    H2,
    /// A byte differs from the preface: HTTP/1.
    Http1,
    /// Every byte so far matches the preface, but it is not complete.
    NeedMore,
}

/// Decides from the bytes read so far. The first mismatching byte decides HTTP/1,
/// so an HTTP/1 request is recognised from its first byte (no method starts "PRI "
/// except the preface's own).
pub(crate) fn sniff(buf: &[u8]) -> Sniffed {
    let n = buf.len().min(PREFACE.len());
    if buf[..n] != PREFACE[..n] {
        Sniffed::Http1
    } else if n == PREFACE.len() {
        Sniffed::H2
    } else {
        Sniffed::NeedMore
    }
}

/// A transport whose first reads return `pre`, bytes already read from it.
///
/// `pre` is usually a view into the whole read buffer it was read into (8 KiB),
/// which stays allocated as long as any view of it does: it is let go as soon as
/// it is empty, so an idle connection does not carry it.
#[derive(Debug)]
pub(crate) struct Rewind<T> {
    pre: Bytes,
    inner: T,
}

impl<T> Rewind<T> {
    pub(crate) fn new(inner: T, pre: Bytes) -> Self {
        let pre = if pre.is_empty() { Bytes::new() } else { pre };
        Rewind { pre, inner }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Rewind<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if !self.pre.is_empty() {
            let n = self.pre.len().min(buf.remaining());
            buf.put_slice(&self.pre[..n]);
            self.pre.advance(n);
            if self.pre.is_empty() {
                self.pre = Bytes::new();
            }
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Rewind<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt;

    #[test]
    fn preface_fed_one_byte_at_a_time() {
        let mut seen = Vec::new();
        for (i, b) in PREFACE.iter().enumerate() {
            seen.push(*b);
            let want = if i + 1 == PREFACE.len() {
                Sniffed::H2
            } else {
                Sniffed::NeedMore
            };
            assert_eq!(sniff(&seen), want, "after {} bytes", i + 1);
        }
        seen.extend_from_slice(b"\x00\x00\x00\x04");
        assert_eq!(sniff(&seen), Sniffed::H2);
    }

    #[test]
    fn first_mismatch_is_http1() {
        let cases: &[&[u8]] = &[
            b"G",
            b"GET / HTTP/1.1\r\n",
            b"POST",
            b"PRI / HTTP/1.1",
            b"PRI * HTTP/2.0\r\n\r\nXX",
            b"pri",
        ];
        for c in cases {
            assert_eq!(sniff(c), Sniffed::Http1, "{c:?}");
        }
        assert_eq!(sniff(b""), Sniffed::NeedMore);
    }

    #[test]
    fn every_mismatch_position_is_http1() {
        for i in 0..PREFACE.len() {
            let mut v = PREFACE[..=i].to_vec();
            v[i] ^= 0x20;
            assert_eq!(sniff(&v), Sniffed::Http1, "mismatch at {i}");
        }
    }

    #[tokio::test]
    async fn rewind_replays_then_reads_through() {
        let (mut a, b) = tokio::io::duplex(64);
        tokio::io::AsyncWriteExt::write_all(&mut a, b"world")
            .await
            .unwrap();
        drop(a);
        let mut r = Rewind::new(b, Bytes::from_static(b"hello "));
        let mut out = String::new();
        r.read_to_string(&mut out).await.unwrap();
        assert_eq!(out, "hello world");
    }

    #[test]
    fn replayed_bytes_release_their_buffer() {
        let mut rbuf = bytes::BytesMut::with_capacity(8192);
        rbuf.extend_from_slice(b"abc");
        let pre = rbuf.freeze();
        let weak = pre.clone();
        let mut r = Rewind::new(tokio::io::empty(), pre);
        let waker = futures_util::task::noop_waker();
        let mut cx = Context::from_waker(&waker);
        let mut space = [0u8; 8];
        let mut buf = ReadBuf::new(&mut space);
        assert!(Pin::new(&mut r).poll_read(&mut cx, &mut buf).is_ready());
        assert_eq!(buf.filled(), b"abc");
        // Only the test's own view still holds the 8 KiB buffer.
        assert!(weak.is_unique());
    }
}
