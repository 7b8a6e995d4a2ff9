//! Buffered output for an HTTP/1 connection: response heads and small bodies are
//! copied into one buffer, large body chunks are queued as they are and written
//! with vectored IO, so a pipelined batch leaves in as few writes as possible.

use std::collections::VecDeque;
use std::io::{self, IoSlice};
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use bytes::{Buf, Bytes, BytesMut};
use tokio::io::AsyncWrite;

/// Body chunks up to this size are copied next to the head instead of queued: a copy
/// of a few KiB is cheaper than another iovec and a reference count.
const COPY_THRESHOLD: usize = 4 * 1024;

/// Most slices handed to one vectored write (Linux accepts 1024; 64 covers a batch).
const MAX_IOVECS: usize = 64;

#[derive(Debug, Default)]
pub(crate) struct WriteBuf {
    /// Bytes queued before `flat`, in order.
    queue: VecDeque<Bytes>,
    /// The tail of the output, where heads and small chunks are appended.
    flat: BytesMut,
    queued: usize,
}

impl WriteBuf {
    /// The buffer new bytes are appended to (always the tail of the output).
    pub(crate) fn flat(&mut self) -> &mut BytesMut {
        &mut self.flat
    }

    /// Appends `bytes`, copying small ones and queueing large ones without a copy.
    pub(crate) fn push(&mut self, bytes: Bytes) {
        if bytes.len() <= COPY_THRESHOLD {
            self.flat.extend_from_slice(&bytes);
            return;
        }
        if !self.flat.is_empty() {
            let head = self.flat.split().freeze();
            self.queued += head.len();
            self.queue.push_back(head);
        }
        self.queued += bytes.len();
        self.queue.push_back(bytes);
    }

    pub(crate) fn len(&self) -> usize {
        self.queued + self.flat.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Drops everything not yet written (after the peer is gone).
    pub(crate) fn clear(&mut self) {
        self.queue.clear();
        self.queued = 0;
        self.flat.clear();
    }

    /// Writes until the buffer is empty, then flushes the transport.
    pub(crate) fn poll_flush<W: AsyncWrite + Unpin>(
        &mut self,
        io: &mut W,
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<()>> {
        while !self.is_empty() {
            let n = if self.queue.is_empty() {
                ready!(Pin::new(&mut *io).poll_write(cx, &self.flat))?
            } else if io.is_write_vectored() {
                let mut slices = [IoSlice::new(&[]); MAX_IOVECS];
                let mut count = 0;
                for b in self.queue.iter().take(MAX_IOVECS - 1) {
                    slices[count] = IoSlice::new(b);
                    count += 1;
                }
                if count < MAX_IOVECS && !self.flat.is_empty() && count == self.queue.len() {
                    slices[count] = IoSlice::new(&self.flat);
                    count += 1;
                }
                ready!(Pin::new(&mut *io).poll_write_vectored(cx, &slices[..count]))?
            } else {
                let front = self.queue.front().map_or(&[][..], |b| &b[..]);
                ready!(Pin::new(&mut *io).poll_write(cx, front))?
            };
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.advance(n);
        }
        Pin::new(&mut *io).poll_flush(cx)
    }

    fn advance(&mut self, mut n: usize) {
        while n > 0 {
            match self.queue.front_mut() {
                Some(front) => {
                    let take = n.min(front.len());
                    front.advance(take);
                    n -= take;
                    self.queued -= take;
                    if front.is_empty() {
                        self.queue.pop_front();
                    }
                }
                None => {
                    let take = n.min(self.flat.len());
                    self.flat.advance(take);
                    n -= take;
                    if take == 0 {
                        break;
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::task::Waker;

    /// A writer that accepts at most `max` bytes a call, recording everything.
    struct Trickle {
        out: Vec<u8>,
        max: usize,
        vectored: bool,
    }

    impl AsyncWrite for Trickle {
        fn poll_write(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
            b: &[u8],
        ) -> Poll<io::Result<usize>> {
            let n = b.len().min(self.max);
            self.out.extend_from_slice(&b[..n]);
            Poll::Ready(Ok(n))
        }
        fn poll_write_vectored(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
            bufs: &[IoSlice<'_>],
        ) -> Poll<io::Result<usize>> {
            let mut left = self.max;
            let mut n = 0;
            for b in bufs {
                let take = b.len().min(left);
                self.out.extend_from_slice(&b[..take]);
                left -= take;
                n += take;
            }
            Poll::Ready(Ok(n))
        }
        fn is_write_vectored(&self) -> bool {
            self.vectored
        }
        fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }
        fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }
    }

    #[test]
    fn output_keeps_order_for_any_write_size() {
        let big = Bytes::from(vec![b'b'; COPY_THRESHOLD + 10]);
        let mut want = Vec::new();
        want.extend_from_slice(b"head1");
        want.extend_from_slice(&big);
        want.extend_from_slice(b"tail");
        want.extend_from_slice(&big);
        for vectored in [false, true] {
            for max in [1, 3, 7, 4096, usize::MAX] {
                let mut w = WriteBuf::default();
                w.flat().extend_from_slice(b"head1");
                w.push(big.clone());
                w.push(Bytes::from_static(b"tail"));
                w.push(big.clone());
                assert_eq!(w.len(), want.len());
                let mut io = Trickle {
                    out: Vec::new(),
                    max,
                    vectored,
                };
                let mut cx = Context::from_waker(Waker::noop());
                assert!(matches!(
                    w.poll_flush(&mut io, &mut cx),
                    Poll::Ready(Ok(()))
                ));
                assert!(w.is_empty());
                assert_eq!(io.out, want, "vectored={vectored} max={max}");
            }
        }
    }
}
