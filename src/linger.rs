//! Closing a connection without losing what was written to it.
//!
//! A socket closed while the client's bytes wait unread in its receive queue is
//! reset by the kernel (RFC 1122 §4.2.2.13 describes the behaviour), and a reset
//! makes the client's kernel discard whatever of the response it has not yet
//! handed to the client. A server that answered in full but closed with, say, a
//! `WINDOW_UPDATE` or a `PING` unread, or the rest of an upload, can so lose the
//! end of its answer. The close that keeps it is the same on every protocol: send
//! everything, shut the write side (the client sees the end of the stream after
//! the last byte), then read and discard what the client still sends, within a
//! byte and a time bound, until it closes too (RFC 9112 §9.6 for HTTP/1.1; for
//! HTTP/2, RFC 9113 §6.8 asks a sender of `GOAWAY` to go on reading frames while
//! the peer finishes).

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Sleep;
use tracing::trace;

use crate::read::poll_read_stack;

/// Bytes read and discarded after the write side is shut: enough for the frames
/// or the end of an upload a client has in flight, small enough that a client
/// which keeps sending cannot hold the connection open.
pub(crate) const LINGER_BYTES: usize = 256 * 1024;

/// How long that reading may take: a client that neither closes nor sends is left
/// after this.
pub(crate) const LINGER_TIME: Duration = Duration::from_secs(2);

/// The reading half of a close: discards what the client sends until it closes,
/// an error, [`LINGER_BYTES`] or [`LINGER_TIME`].
pub(crate) struct Linger {
    seen: usize,
    /// Set at the first read that has to wait: a client that closed first (the
    /// usual end of a connection) costs no timer.
    deadline: Option<Pin<Box<Sleep>>>,
}

impl Linger {
    pub(crate) fn new() -> Self {
        Linger {
            seen: 0,
            deadline: None,
        }
    }

    /// Ready when the client closed, a read failed, or a bound was reached.
    pub(crate) fn poll_drain<I: AsyncRead + Unpin>(
        &mut self,
        io: &mut I,
        cx: &mut Context<'_>,
    ) -> Poll<()> {
        // Each turn reads at most a stack buffer, so LINGER_BYTES bounds the turns.
        loop {
            match poll_read_stack(io, cx, |_| {}) {
                Poll::Ready(Ok(n)) if n > 0 => {
                    self.seen += n;
                    if self.seen >= LINGER_BYTES {
                        trace!(bytes = self.seen, "client still sending at close");
                        return Poll::Ready(());
                    }
                }
                Poll::Ready(_) => return Poll::Ready(()),
                Poll::Pending => {
                    let deadline = self
                        .deadline
                        .get_or_insert_with(|| Box::pin(tokio::time::sleep(LINGER_TIME)));
                    ready!(deadline.as_mut().poll(cx));
                    trace!("client did not close in time");
                    return Poll::Ready(());
                }
            }
        }
    }
}

/// A transport whose shutdown is the whole close above: `poll_shutdown` shuts the
/// write side, then reads and discards until the client closes or a bound is
/// reached. `h2` flushes and shuts its transport down when a connection ends
/// (graceful shutdown, the idle `GOAWAY`, a connection error it reports with
/// `GOAWAY`), but it cannot linger, so the HTTP/2 stage gives it this.
pub(crate) struct Lingering<T> {
    io: T,
    /// Set once the write side is shut.
    linger: Option<Linger>,
}

impl<T> Lingering<T> {
    pub(crate) fn new(io: T) -> Self {
        Lingering { io, linger: None }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Lingering<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_read(cx, buf)
    }
}

impl<T: AsyncRead + AsyncWrite + Unpin> AsyncWrite for Lingering<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let linger = match &mut this.linger {
            Some(linger) => linger,
            None => {
                ready!(Pin::new(&mut this.io).poll_shutdown(cx))?;
                this.linger.insert(Linger::new())
            }
        };
        ready!(linger.poll_drain(&mut this.io, cx));
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::read::recorder::{poll_now, Reads, Recorder};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A client as the draining side sees it: `chunk` bytes per read until
    /// `total` have been read, then the end of the stream, once; or a failed read.
    #[derive(Debug)]
    struct Client {
        chunk: usize,
        total: usize,
        read: usize,
        ended: bool,
        fail: bool,
    }

    impl Client {
        fn sending(chunk: usize, total: usize) -> Self {
            Client {
                chunk,
                total,
                read: 0,
                ended: false,
                fail: false,
            }
        }
    }

    impl AsyncRead for Client {
        fn poll_read(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
            buf: &mut ReadBuf<'_>,
        ) -> Poll<io::Result<()>> {
            assert!(!self.ended, "read again after the end of the stream");
            if self.fail {
                self.ended = true;
                return Poll::Ready(Err(io::ErrorKind::ConnectionReset.into()));
            }
            let n = self.chunk.min(self.total - self.read).min(buf.remaining());
            if n == 0 {
                self.ended = true;
            }
            buf.put_slice(&vec![b'x'; n]);
            self.read += n;
            Poll::Ready(Ok(()))
        }
    }

    #[test]
    fn drain_ends_at_the_end_of_the_stream_or_an_error_without_a_timer() {
        // (bytes the client still sends, whether its read fails instead of ending)
        for (total, fail) in [(0, false), (10_000, false), (0, true)] {
            let mut client = Client {
                fail,
                ..Client::sending(1000, total)
            };
            let mut linger = Linger::new();
            poll_now(|cx| linger.poll_drain(&mut client, cx));
            assert!(client.ended, "{total} {fail}");
            assert_eq!(client.read, total);
            assert_eq!(linger.seen, total);
            assert!(
                linger.deadline.is_none(),
                "no timer for a client that closed"
            );
        }
    }

    #[test]
    fn drain_stops_after_256_kib() {
        // (bytes per read): the bound is counted in bytes, not in reads.
        for chunk in [1000, 4096, 1] {
            let mut client = Client::sending(chunk, 1 << 30);
            let mut linger = Linger::new();
            poll_now(|cx| linger.poll_drain(&mut client, cx));
            assert!(!client.ended);
            assert!(
                client.read >= 256 * 1024,
                "chunk {chunk}: read {}",
                client.read
            );
            assert!(
                client.read < 256 * 1024 + chunk,
                "chunk {chunk}: read {}",
                client.read
            );
        }
    }

    #[test]
    fn lingering_passes_writes_and_flush_through_and_shuts_the_write_side() {
        for vectored in [false, true] {
            // The client has closed already.
            let mut io = Lingering::new(Recorder::new(vectored, Reads::Eof));
            assert_eq!(io.is_write_vectored(), vectored);
            let n = poll_now(|cx| Pin::new(&mut io).poll_write(cx, b"abc")).expect("write");
            assert_eq!(n, 3);
            let bufs = [io::IoSlice::new(b"de"), io::IoSlice::new(b"fgh")];
            let n = poll_now(|cx| Pin::new(&mut io).poll_write_vectored(cx, &bufs))
                .expect("vectored write");
            assert_eq!(n, 5);
            poll_now(|cx| Pin::new(&mut io).poll_flush(cx)).expect("flush");
            assert!(!io.io.shut_down);
            // The client has closed: the shutdown ends at once.
            poll_now(|cx| Pin::new(&mut io).poll_shutdown(cx)).expect("shutdown");
            assert_eq!(io.io.written, b"abcdefgh", "vectored {vectored}");
            assert_eq!(io.io.vectored_writes, 1);
            assert_eq!(io.io.flushes, 1);
            assert!(io.io.shut_down);
        }
    }

    #[test]
    fn lingering_passes_reads_through() {
        let mut io = Lingering::new(Client::sending(3, 5));
        let mut space = [0u8; 8];
        let mut buf = ReadBuf::new(&mut space);
        poll_now(|cx| Pin::new(&mut io).poll_read(cx, &mut buf)).expect("read");
        assert_eq!(buf.filled(), b"xxx");
        assert_eq!(io.io.read, 3);
    }

    #[tokio::test(start_paused = true)]
    async fn shutdown_shuts_the_write_side_then_waits_for_the_client_to_close() {
        let (mut client, server) = tokio::io::duplex(64);
        let mut server = Lingering::new(server);
        server.write_all(b"answer").await.expect("write");
        let started = tokio::time::Instant::now();
        let closing = tokio::spawn(async move { server.shutdown().await });
        // The client reads the whole answer and the end of the stream…
        let mut got = Vec::new();
        client.read_to_end(&mut got).await.expect("read");
        assert_eq!(got, b"answer");
        // …while the server, still reading, takes what the client sends late.
        client.write_all(b"late frames").await.expect("late write");
        assert!(!closing.is_finished());
        drop(client);
        closing.await.expect("join").expect("shutdown");
        assert!(
            started.elapsed() < LINGER_TIME,
            "ended by the close, not by time"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn shutdown_gives_up_on_a_silent_client_after_the_time_bound() {
        let (client, server) = tokio::io::duplex(64);
        let mut server = Lingering::new(server);
        let started = tokio::time::Instant::now();
        server.shutdown().await.expect("shutdown");
        assert_eq!(started.elapsed(), LINGER_TIME);
        drop(client);
    }

    #[tokio::test(start_paused = true)]
    async fn shutdown_stops_reading_a_client_that_keeps_sending_at_the_byte_bound() {
        let (mut client, server) = tokio::io::duplex(64 * 1024);
        let mut server = Lingering::new(server);
        let sender = tokio::spawn(async move {
            let chunk = [0u8; 4096];
            let mut sent = 0;
            while client.write_all(&chunk).await.is_ok() {
                sent += chunk.len();
            }
            sent
        });
        let started = tokio::time::Instant::now();
        server.shutdown().await.expect("shutdown");
        assert!(
            started.elapsed() < LINGER_TIME,
            "ended by bytes, not by time"
        );
        drop(server);
        let sent = sender.await.expect("join");
        assert!(sent >= LINGER_BYTES, "read {sent} bytes before stopping");
    }
}
