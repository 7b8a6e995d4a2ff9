//! Reading from the transport, for every layer: into a connection's read buffer,
//! through a buffer on the stack, and replaying bytes already read ([`Rewind`]).

use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use bytes::{Buf, BufMut, Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Free space guaranteed in the read buffer before each socket read: 8 KiB holds a
/// typical request head in one read.
pub(crate) const READ_CHUNK: usize = 8 * 1024;

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

/// Reads at most `max` bytes into `buf`, with room for all of them reserved first:
/// a request body's read, sized by its reader (see `h1::feed`), whatever spare
/// capacity the buffer has.
pub(crate) fn poll_read_at_most<I: AsyncRead + Unpin>(
    io: &mut I,
    cx: &mut Context<'_>,
    buf: &mut BytesMut,
    max: usize,
) -> Poll<io::Result<usize>> {
    buf.reserve(max);
    tokio_util::io::poll_read_buf(Pin::new(io), cx, &mut (&mut *buf).limit(max))
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

/// A transport for the unit tests of the layers that wrap one: it records what is
/// written, flushed and shut down, and its reads wait or end at once.
#[cfg(test)]
pub(crate) mod recorder {
    use std::io;
    use std::pin::Pin;
    use std::task::{Context, Poll};

    use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

    /// Polls once with a waker that is never woken, for a step that must be ready
    /// at once; panics if it is not.
    pub(crate) fn poll_now<R>(f: impl FnOnce(&mut Context<'_>) -> Poll<R>) -> R {
        let waker = futures_util::task::noop_waker();
        let mut cx = Context::from_waker(&waker);
        match f(&mut cx) {
            Poll::Ready(r) => r,
            Poll::Pending => panic!("pending"),
        }
    }

    /// What a read of a [`Recorder`] does.
    #[derive(Debug, Clone, Copy)]
    pub(crate) enum Reads {
        /// Waits, as a client that sends nothing.
        Wait,
        /// Ends the stream, as a client that closed.
        Eof,
    }

    #[derive(Debug)]
    pub(crate) struct Recorder {
        pub(crate) written: Vec<u8>,
        pub(crate) vectored: bool,
        pub(crate) vectored_writes: usize,
        pub(crate) flushes: usize,
        pub(crate) shut_down: bool,
        reads: Reads,
    }

    impl Recorder {
        pub(crate) fn new(vectored: bool, reads: Reads) -> Recorder {
            Recorder {
                written: Vec::new(),
                vectored,
                vectored_writes: 0,
                flushes: 0,
                shut_down: false,
                reads,
            }
        }
    }

    impl AsyncRead for Recorder {
        fn poll_read(
            self: Pin<&mut Self>,
            _: &mut Context<'_>,
            _: &mut ReadBuf<'_>,
        ) -> Poll<io::Result<()>> {
            match self.reads {
                Reads::Wait => Poll::Pending,
                Reads::Eof => Poll::Ready(Ok(())),
            }
        }
    }

    impl AsyncWrite for Recorder {
        fn poll_write(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
            buf: &[u8],
        ) -> Poll<io::Result<usize>> {
            self.written.extend_from_slice(buf);
            Poll::Ready(Ok(buf.len()))
        }

        fn poll_write_vectored(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
            bufs: &[io::IoSlice<'_>],
        ) -> Poll<io::Result<usize>> {
            self.vectored_writes += 1;
            let mut n = 0;
            for b in bufs {
                self.written.extend_from_slice(b);
                n += b.len();
            }
            Poll::Ready(Ok(n))
        }

        fn is_write_vectored(&self) -> bool {
            self.vectored
        }

        fn poll_flush(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            self.flushes += 1;
            Poll::Ready(Ok(()))
        }

        fn poll_shutdown(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            self.shut_down = true;
            Poll::Ready(Ok(()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::recorder::{poll_now, Reads, Recorder};
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

    #[test]
    fn rewind_passes_writes_flush_and_shutdown_through() {
        for vectored in [false, true] {
            let inner = Recorder::new(vectored, Reads::Wait);
            let mut r = Rewind::new(inner, Bytes::from_static(b"replayed"));
            assert_eq!(r.is_write_vectored(), vectored);
            let n = poll_now(|cx| Pin::new(&mut r).poll_write(cx, b"abc")).unwrap();
            assert_eq!(n, 3);
            let bufs = [io::IoSlice::new(b"de"), io::IoSlice::new(b"fgh")];
            let n = poll_now(|cx| Pin::new(&mut r).poll_write_vectored(cx, &bufs)).unwrap();
            assert_eq!(n, 5);
            poll_now(|cx| Pin::new(&mut r).poll_flush(cx)).unwrap();
            poll_now(|cx| Pin::new(&mut r).poll_shutdown(cx)).unwrap();
            assert_eq!(r.inner.written, b"abcdefgh", "vectored {vectored}");
            assert_eq!(r.inner.vectored_writes, 1);
            assert_eq!(r.inner.flushes, 1);
            assert!(r.inner.shut_down);
            // Writing does not touch the bytes still to be replayed.
            assert_eq!(&r.pre[..], b"replayed");
        }
    }

    /// The sizes the docs give, spelt out: the tests hold the constants to them.
    const STACK: usize = 4 * 1024;
    const CHUNK: usize = 8 * 1024;

    #[test]
    fn stack_read_takes_at_most_its_buffer() {
        let data: Vec<u8> = (0..STACK * 3).map(|i| i as u8).collect();
        // (bytes available, bytes one read takes)
        let cases = [(0, 0), (10, 10), (STACK, STACK), (data.len(), STACK)];
        for (avail, want) in cases {
            let mut src = &data[..avail];
            let mut took = Vec::new();
            let n = poll_now(|cx| poll_read_stack(&mut src, cx, |b| took.extend_from_slice(b)))
                .unwrap();
            assert_eq!(n, want, "{avail} available");
            assert_eq!(took, &data[..want], "{avail} available");
        }
    }

    #[test]
    fn a_bounded_read_takes_at_most_its_bound_whatever_the_spare_capacity() {
        let data: Vec<u8> = (0..CHUNK * 4).map(|i| i as u8).collect();
        // (bytes available, the buffer's capacity, the bound, bytes one read takes)
        let cases = [
            (0, 0, 100, 0),
            (10, 0, 100, 10),
            (1000, 0, 100, 100),
            (1000, 4 * CHUNK, 100, 100),
            (data.len(), 0, CHUNK, CHUNK),
            (data.len(), 0, 3 * CHUNK, 3 * CHUNK),
            (data.len(), 16, 4 * CHUNK, 4 * CHUNK),
        ];
        for (avail, cap, max, want) in cases {
            let mut buf = BytesMut::with_capacity(cap);
            buf.extend_from_slice(b"kept");
            let mut src = &data[..avail];
            let n = poll_now(|cx| poll_read_at_most(&mut src, cx, &mut buf, max)).unwrap();
            assert_eq!(n, want, "{avail} available, capacity {cap}, at most {max}");
            assert_eq!(&buf[..4], b"kept");
            assert_eq!(&buf[4..], &data[..want]);
        }
    }

    #[test]
    fn read_buffer_grows_by_a_chunk_when_less_than_half_is_free() {
        let data = vec![7u8; CHUNK * 4];
        // (bytes already in the buffer, its capacity, whether it must grow)
        let cases = [
            (0, 0, true),
            (0, CHUNK, false),
            (100, 100, true),
            (CHUNK - 192, CHUNK, true),
            // Half a chunk free is enough; one byte less is not.
            (CHUNK / 2 + 1, CHUNK, true),
            (CHUNK / 2, CHUNK, false),
            (CHUNK, 2 * CHUNK, false),
        ];
        for (len, cap, grows) in cases {
            let mut buf = BytesMut::with_capacity(cap);
            buf.resize(len, 1);
            let free = buf.capacity() - len;
            let mut src = &data[..];
            let n = poll_now(|cx| poll_read(&mut src, cx, &mut buf)).unwrap();
            if grows {
                assert!(n >= CHUNK, "len {len} cap {cap}: read {n}");
            } else {
                assert_eq!(n, free, "len {len} cap {cap}");
            }
            assert_eq!(buf.len(), len + n);
            assert!(buf[..len].iter().all(|&b| b == 1));
            assert!(buf[len..].iter().all(|&b| b == 7));
        }
    }
}
