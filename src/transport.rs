//! Reading from the transport, for every layer: into a connection's read buffer,
//! through a buffer on the stack, and replaying bytes already read ([`Rewind`]).

use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use bytes::{Buf, Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Free space guaranteed in the read buffer before each socket read: 8 KiB holds a
/// typical request head in one read.
const READ_CHUNK: usize = 8 * 1024;

/// Bytes one read through the stack takes ([`poll_read_stack`]): enough for a
/// typical request head or the HTTP/2 preface and first frames.
const STACK_READ: usize = 4 * 1024;

/// Reads up to [`STACK_READ`] bytes into a buffer on the stack and hands them to
/// `take`, for reads whose bytes need no buffer of the connection's own (or only
/// one of just their size). Returns how many were read; 0 at end of stream.
pub(crate) fn poll_read_stack<I: AsyncRead + Unpin>(
    io: &mut I,
    cx: &mut Context<'_>,
    take: impl FnOnce(&[u8]),
) -> Poll<io::Result<usize>> {
    let mut stack = [std::mem::MaybeUninit::<u8>::uninit(); STACK_READ];
    let mut buf = ReadBuf::uninit(&mut stack);
    ready!(Pin::new(io).poll_read(cx, &mut buf))?;
    let filled = buf.filled();
    take(filled);
    Poll::Ready(Ok(filled.len()))
}

/// Reads into the spare capacity of `buf`, growing it by [`READ_CHUNK`] when full.
pub(crate) fn poll_read<I: AsyncRead + Unpin>(
    io: &mut I,
    cx: &mut Context<'_>,
    buf: &mut BytesMut,
) -> Poll<io::Result<usize>> {
    if buf.capacity() - buf.len() < READ_CHUNK / 2 {
        buf.reserve(READ_CHUNK);
    }
    tokio_util::io::poll_read_buf(Pin::new(io), cx, buf)
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
