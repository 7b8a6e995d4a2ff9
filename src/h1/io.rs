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
    /// Bytes handed to the transport so far.
    written: u64,
    /// Where the output of the response being written begins (see
    /// [`WriteBuf::discard_response`]).
    response_at: u64,
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

    /// Notes that a response's output starts here.
    pub(crate) fn start_response(&mut self) {
        self.response_at = self.written + self.len() as u64;
    }

    /// Drops the output queued since [`start_response`](Self::start_response), if
    /// none of it has reached the transport yet, keeping what was queued before it
    /// (earlier pipelined responses). False, with nothing dropped, once some of it
    /// was written: the response is committed.
    pub(crate) fn discard_response(&mut self) -> bool {
        if self.written > self.response_at {
            return false;
        }
        // What is queued before the response: the queue first, then `flat`.
        let mut keep = (self.response_at - self.written) as usize;
        let mut entries = 0;
        for b in self.queue.iter_mut() {
            if keep == 0 {
                break;
            }
            if b.len() > keep {
                b.truncate(keep);
            }
            keep -= b.len();
            entries += 1;
        }
        self.queue.truncate(entries);
        self.queued = self.queue.iter().map(Bytes::len).sum();
        self.flat.truncate(keep);
        true
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
            self.written += n as u64;
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
                    if take == self.flat.len() {
                        // All written, the usual case: emptied in place, the buffer
                        // keeps its whole capacity for the next response. Advanced
                        // to its end instead, it would have to be moved back to its
                        // start (`reserve`) before the next head, once per request.
                        self.flat.clear();
                    } else {
                        self.flat.advance(take);
                    }
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

    /// Written out in full, the buffer is emptied in place: the next response is
    /// appended at its start, with its whole capacity, and no `reserve` has to move
    /// anything back first. Written in part, the rest stays in order.
    #[test]
    fn a_buffer_written_out_keeps_its_room() {
        for max in [7, usize::MAX] {
            let mut w = WriteBuf::default();
            w.flat().reserve(1024);
            let room = w.flat().capacity();
            w.flat().extend_from_slice(b"HTTP/1.1 200 OK\r\n\r\n");
            let mut io = Trickle {
                out: Vec::new(),
                max,
                vectored: false,
            };
            let mut cx = Context::from_waker(Waker::noop());
            assert!(matches!(
                w.poll_flush(&mut io, &mut cx),
                Poll::Ready(Ok(()))
            ));
            assert_eq!(io.out, b"HTTP/1.1 200 OK\r\n\r\n");
            if max == usize::MAX {
                assert_eq!(w.flat().capacity(), room, "one write took it all");
            }
            w.flat().extend_from_slice(b"next");
            assert_eq!(&w.flat()[..], b"next");
        }
    }

    /// A writer that takes `budget` bytes in all, then waits.
    struct Stall {
        out: Vec<u8>,
        budget: usize,
    }

    impl AsyncWrite for Stall {
        fn poll_write(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
            b: &[u8],
        ) -> Poll<io::Result<usize>> {
            let n = b.len().min(self.budget);
            if n == 0 {
                return Poll::Pending;
            }
            self.budget -= n;
            self.out.extend_from_slice(&b[..n]);
            Poll::Ready(Ok(n))
        }
        fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }
        fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }
    }

    /// An earlier response (a small part and a queued large one), then a response
    /// of a head and a large chunk; `budget` bytes of it all were written.
    fn two_responses(budget: usize) -> (WriteBuf, Stall, Vec<u8>, usize) {
        let big = Bytes::from(vec![b'e'; COPY_THRESHOLD + 1]);
        let mut earlier = b"earlier head".to_vec();
        earlier.extend_from_slice(&big);
        earlier.extend_from_slice(b"earlier tail");
        let mut w = WriteBuf::default();
        w.flat().extend_from_slice(b"earlier head");
        w.push(big);
        w.push(Bytes::from_static(b"earlier tail"));
        let mut io = Stall {
            out: Vec::new(),
            budget,
        };
        let mut cx = Context::from_waker(Waker::noop());
        let _ = w.poll_flush(&mut io, &mut cx);
        w.start_response();
        w.flat().extend_from_slice(b"HTTP/1.1 200 OK\r\n\r\n");
        w.push(Bytes::from(vec![b'r'; COPY_THRESHOLD + 1]));
        let at = earlier.len();
        (w, io, earlier, at)
    }

    #[test]
    fn discarding_a_response_keeps_the_output_queued_before_it() {
        let (_, _, earlier, at) = two_responses(0);
        for budget in 0..=at {
            let (mut w, mut io, _, _) = two_responses(budget);
            assert!(w.discard_response(), "budget {budget}");
            let mut cx = Context::from_waker(Waker::noop());
            io.budget = usize::MAX;
            assert!(matches!(
                w.poll_flush(&mut io, &mut cx),
                Poll::Ready(Ok(()))
            ));
            assert_eq!(io.out, earlier, "budget {budget}");
        }
    }

    #[test]
    fn a_response_with_a_byte_written_cannot_be_discarded() {
        let (_, _, _, at) = two_responses(0);
        for budget in [at + 1, at + 10, usize::MAX] {
            let (mut w, _, _, _) = two_responses(0);
            let mut io = Stall {
                out: Vec::new(),
                budget,
            };
            let mut cx = Context::from_waker(Waker::noop());
            let _ = w.poll_flush(&mut io, &mut cx);
            assert!(!w.discard_response(), "budget {budget}");
        }
    }
}
