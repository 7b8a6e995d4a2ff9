//! The request body handed to the service: one type whichever protocol carried it.

use std::collections::VecDeque;
use std::fmt;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};

use bytes::Bytes;
use http::HeaderMap;
use http_body::{Frame, SizeHint};

use crate::error::{BoxError, Error, Kind};

/// The body of a request, streamed as it arrives.
///
/// Over HTTP/1.1 the connection reads the body from the socket only while the
/// service asks for more (so a slow reader slows the client, and `Expect:
/// 100-continue` is answered when the body is first polled). Over HTTP/2 it is the
/// stream's DATA, with flow-control capacity released as it is consumed. The body of
/// an upgrade request (stream 1) arrives over HTTP/1.1 before the switch: it is
/// streamed like any HTTP/1.1 body, or, with
/// [`stream_upgrade_body`](crate::Builder::stream_upgrade_body) off, read whole
/// first and handed over at once.
///
/// It implements [`http_body::Body`]; trailers arrive as the last frame.
///
/// ```no_run
/// use http_body_util::BodyExt;
///
/// async fn read_all(req: http::Request<h2c_mux::Body>) -> Result<bytes::Bytes, h2c_mux::Error> {
///     Ok(req.into_body().collect().await?.to_bytes())
/// }
/// ```
pub struct Body {
    kind: BodyKind,
}

enum BodyKind {
    Empty,
    Full(Option<Bytes>),
    Buffered {
        data: Option<Bytes>,
        trailers: Option<HeaderMap>,
    },
    H1(Receiver),
    H2 {
        recv: h2::RecvStream,
        data_done: bool,
    },
    /// The body of a request handed over to hyper (see `crate::handover`).
    #[cfg(feature = "upgrades")]
    Hyper(hyper::body::Incoming),
}

impl Body {
    /// A body with no bytes.
    ///
    /// ```
    /// use http_body::Body as _;
    /// assert!(h2c_mux::Body::empty().is_end_stream());
    /// ```
    pub fn empty() -> Body {
        Body {
            kind: BodyKind::Empty,
        }
    }

    pub(crate) fn full(bytes: Bytes) -> Body {
        if bytes.is_empty() {
            return Body::empty();
        }
        Body {
            kind: BodyKind::Full(Some(bytes)),
        }
    }

    /// A body read whole before it was handed over, with its trailers.
    pub(crate) fn buffered(data: Bytes, trailers: Option<HeaderMap>) -> Body {
        if trailers.is_none() {
            return Body::full(data);
        }
        Body {
            kind: BodyKind::Buffered {
                data: (!data.is_empty()).then_some(data),
                trailers,
            },
        }
    }

    pub(crate) fn h1(rx: Receiver) -> Body {
        Body {
            kind: BodyKind::H1(rx),
        }
    }

    pub(crate) fn h2(recv: h2::RecvStream) -> Body {
        Body {
            kind: BodyKind::H2 {
                recv,
                data_done: false,
            },
        }
    }
}

#[cfg(feature = "upgrades")]
impl Body {
    pub(crate) fn hyper(incoming: hyper::body::Incoming) -> Body {
        Body {
            kind: BodyKind::Hyper(incoming),
        }
    }
}

impl From<Bytes> for Body {
    fn from(bytes: Bytes) -> Body {
        Body::full(bytes)
    }
}

impl Default for Body {
    fn default() -> Body {
        Body::empty()
    }
}

impl fmt::Debug for Body {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self.kind {
            BodyKind::Empty => "empty",
            BodyKind::Full(_) | BodyKind::Buffered { .. } => "full",
            BodyKind::H1(_) => "http/1",
            BodyKind::H2 { .. } => "http/2",
            #[cfg(feature = "upgrades")]
            BodyKind::Hyper(_) => "http/1",
        };
        f.debug_tuple("Body").field(&kind).finish()
    }
}

impl http_body::Body for Body {
    type Data = Bytes;
    type Error = Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Error>>> {
        match &mut self.kind {
            BodyKind::Empty => Poll::Ready(None),
            BodyKind::Full(b) => Poll::Ready(b.take().map(|b| Ok(Frame::data(b)))),
            BodyKind::Buffered { data, trailers } => match data.take() {
                Some(d) => Poll::Ready(Some(Ok(Frame::data(d)))),
                None => Poll::Ready(trailers.take().map(|t| Ok(Frame::trailers(t)))),
            },
            BodyKind::H1(rx) => rx.poll_frame(cx),
            #[cfg(feature = "upgrades")]
            BodyKind::Hyper(incoming) => Pin::new(incoming).poll_frame(cx).map_err(Error::hyper),
            BodyKind::H2 { recv, data_done } => {
                if !*data_done {
                    match recv.poll_data(cx) {
                        Poll::Pending => return Poll::Pending,
                        Poll::Ready(Some(Ok(data))) => {
                            // Release the window as the application consumes, so a
                            // slow reader pushes back on the peer (RFC 9113 §5.2).
                            let _ = recv.flow_control().release_capacity(data.len());
                            return Poll::Ready(Some(Ok(Frame::data(data))));
                        }
                        Poll::Ready(Some(Err(e))) => return Poll::Ready(Some(Err(Error::h2(e)))),
                        Poll::Ready(None) => *data_done = true,
                    }
                }
                match recv.poll_trailers(cx) {
                    Poll::Pending => Poll::Pending,
                    Poll::Ready(Ok(Some(t))) => Poll::Ready(Some(Ok(Frame::trailers(t)))),
                    Poll::Ready(Ok(None)) => Poll::Ready(None),
                    Poll::Ready(Err(e)) => Poll::Ready(Some(Err(Error::h2(e)))),
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.kind {
            BodyKind::Empty => true,
            BodyKind::Full(b) => b.is_none(),
            BodyKind::Buffered { data, trailers } => data.is_none() && trailers.is_none(),
            BodyKind::H1(rx) => rx.is_end_stream(),
            BodyKind::H2 { recv, .. } => recv.is_end_stream(),
            #[cfg(feature = "upgrades")]
            BodyKind::Hyper(incoming) => incoming.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.kind {
            BodyKind::Empty => SizeHint::with_exact(0),
            BodyKind::Full(b) => SizeHint::with_exact(b.as_ref().map_or(0, |b| b.len() as u64)),
            BodyKind::Buffered { data, .. } => {
                SizeHint::with_exact(data.as_ref().map_or(0, |b| b.len() as u64))
            }
            BodyKind::H1(rx) => rx.size_hint(),
            BodyKind::H2 { .. } => SizeHint::default(),
            #[cfg(feature = "upgrades")]
            BodyKind::Hyper(incoming) => incoming.size_hint(),
        }
    }
}

/// A response body whose first frames were taken out while the protocol was still
/// being chosen (a streamed upgrade keeps the start of the response until the request
/// body ends), replayed in front of the rest.
pub(crate) struct Prefetched<B> {
    frames: VecDeque<Result<Frame<Bytes>, BoxError>>,
    prefetched_data: u64,
    rest: Option<Pin<Box<B>>>,
}

impl<B> Prefetched<B>
where
    B: http_body::Body<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    pub(crate) fn new(rest: Option<B>) -> Self {
        Prefetched {
            frames: VecDeque::new(),
            prefetched_data: 0,
            rest: rest.map(Box::pin),
        }
    }

    /// Bytes of data prefetched.
    pub(crate) fn prefetched(&self) -> u64 {
        self.prefetched_data
    }

    /// Takes one more frame from the rest into the prefetched frames. Ready(true) when a
    /// frame (or the end, or an error) was taken.
    pub(crate) fn poll_prefetch(&mut self, cx: &mut Context<'_>) -> Poll<bool> {
        let Some(rest) = self.rest.as_mut() else {
            return Poll::Ready(false);
        };
        match rest.as_mut().poll_frame(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(None) => {
                self.rest = None;
                Poll::Ready(true)
            }
            Poll::Ready(Some(Ok(f))) => {
                if let Some(d) = f.data_ref() {
                    self.prefetched_data += d.len() as u64;
                }
                self.frames.push_back(Ok(f));
                Poll::Ready(true)
            }
            Poll::Ready(Some(Err(e))) => {
                self.rest = None;
                self.frames.push_back(Err(e.into()));
                Poll::Ready(true)
            }
        }
    }
}

impl<B> http_body::Body for Prefetched<B>
where
    B: http_body::Body<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        if let Some(f) = self.frames.pop_front() {
            if let Ok(d) = f
                .as_ref()
                .map(|f| f.data_ref().map_or(0, |d| d.len() as u64))
            {
                self.prefetched_data -= d;
            }
            return Poll::Ready(Some(f));
        }
        match self.rest.as_mut() {
            None => Poll::Ready(None),
            Some(rest) => rest
                .as_mut()
                .poll_frame(cx)
                .map(|o| o.map(|r| r.map_err(Into::into))),
        }
    }

    fn is_end_stream(&self) -> bool {
        self.frames.is_empty() && self.rest.as_ref().is_none_or(|r| r.is_end_stream())
    }

    fn size_hint(&self) -> SizeHint {
        let rest = self
            .rest
            .as_ref()
            .map_or(SizeHint::with_exact(0), |r| r.size_hint());
        let mut hint = SizeHint::new();
        hint.set_lower(rest.lower() + self.prefetched_data);
        if let Some(upper) = rest.upper() {
            hint.set_upper(upper + self.prefetched_data);
        }
        hint
    }
}

/// Creates the one-slot channel that carries an HTTP/1 request body from the
/// connection to the service. `len` is the Content-Length, if any.
pub(crate) fn channel(len: Option<u64>) -> (Sender, Receiver) {
    let shared = Arc::new(Mutex::new(Slot {
        item: None,
        want: false,
        rx_waker: None,
        tx_waker: None,
        rx_gone: false,
        tx: TxState::Open,
    }));
    (
        Sender {
            shared: shared.clone(),
        },
        Receiver {
            shared,
            remaining: len,
        },
    )
}

// One slot, not a queue: the connection reads the next piece from the socket only
// after the service took the previous one, so memory per body is one read buffer.
struct Slot {
    item: Option<Result<Frame<Bytes>, Error>>,
    /// The receiver polled and found the slot empty: it wants more.
    want: bool,
    rx_waker: Option<Waker>,
    tx_waker: Option<Waker>,
    rx_gone: bool,
    tx: TxState,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum TxState {
    Open,
    Finished,
    Dropped,
}

fn lock(m: &Mutex<Slot>) -> MutexGuard<'_, Slot> {
    // The lock is never held across code that can panic; a poisoned lock still
    // holds a consistent slot.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The connection's end of a request body.
pub(crate) struct Sender {
    shared: Arc<Mutex<Slot>>,
}

impl Sender {
    /// Ready when the service has asked for more and the slot is free.
    /// `Err(())` when the service dropped the body: nobody will read it.
    pub(crate) fn poll_want(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), ()>> {
        let mut s = lock(&self.shared);
        if s.rx_gone {
            return Poll::Ready(Err(()));
        }
        if s.want && s.item.is_none() {
            return Poll::Ready(Ok(()));
        }
        s.tx_waker = Some(cx.waker().clone());
        Poll::Pending
    }

    /// True when the service is waiting for the next piece of the body.
    pub(crate) fn is_wanted(&self) -> bool {
        let s = lock(&self.shared);
        s.want && s.item.is_none() && !s.rx_gone
    }

    /// Puts one frame in the slot. Call only after `poll_want` was ready.
    pub(crate) fn send(&mut self, frame: Frame<Bytes>) {
        self.put(Ok(frame));
    }

    /// Ends the body with an error the service will see.
    pub(crate) fn abort(mut self, err: Error) {
        self.put(Err(err));
    }

    /// Ends the body cleanly.
    pub(crate) fn finish(self) {
        let mut s = lock(&self.shared);
        s.tx = TxState::Finished;
        if let Some(w) = s.rx_waker.take() {
            drop(s);
            w.wake();
        }
    }

    fn put(&mut self, item: Result<Frame<Bytes>, Error>) {
        let mut s = lock(&self.shared);
        s.want = false;
        s.item = Some(item);
        if let Some(w) = s.rx_waker.take() {
            drop(s);
            w.wake();
        }
    }
}

impl Drop for Sender {
    fn drop(&mut self) {
        let mut s = lock(&self.shared);
        if s.tx == TxState::Open {
            s.tx = TxState::Dropped;
        }
        if let Some(w) = s.rx_waker.take() {
            drop(s);
            w.wake();
        }
    }
}

/// The service's end of an HTTP/1 request body.
pub(crate) struct Receiver {
    shared: Arc<Mutex<Slot>>,
    remaining: Option<u64>,
}

impl Receiver {
    fn poll_frame(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Error>>> {
        let mut s = lock(&self.shared);
        if let Some(item) = s.item.take() {
            let waker = s.tx_waker.take();
            drop(s);
            if let Some(w) = waker {
                w.wake();
            }
            if let (Ok(frame), Some(rem)) = (&item, self.remaining.as_mut()) {
                if let Some(d) = frame.data_ref() {
                    *rem = rem.saturating_sub(d.len() as u64);
                }
            }
            return Poll::Ready(Some(item));
        }
        match s.tx {
            TxState::Finished => Poll::Ready(None),
            TxState::Dropped => {
                s.tx = TxState::Finished;
                Poll::Ready(Some(Err(Error::new(Kind::Incomplete))))
            }
            TxState::Open => {
                s.want = true;
                s.rx_waker = Some(cx.waker().clone());
                let waker = s.tx_waker.take();
                drop(s);
                if let Some(w) = waker {
                    w.wake();
                }
                Poll::Pending
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        let s = lock(&self.shared);
        s.item.is_none() && s.tx == TxState::Finished
    }

    fn size_hint(&self) -> SizeHint {
        match self.remaining {
            Some(n) => SizeHint::with_exact(n),
            None => SizeHint::default(),
        }
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        let mut s = lock(&self.shared);
        s.rx_gone = true;
        s.item = None;
        if let Some(w) = s.tx_waker.take() {
            drop(s);
            w.wake();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body::Body as _;
    use std::task::Waker;

    fn cx() -> Context<'static> {
        Context::from_waker(Waker::noop())
    }

    #[test]
    fn want_is_signalled_only_after_the_receiver_polls() {
        let (mut tx, rx) = channel(Some(3));
        let mut body = Body::h1(rx);
        let mut cx = cx();
        assert!(tx.poll_want(&mut cx).is_pending());
        assert!(Pin::new(&mut body).poll_frame(&mut cx).is_pending());
        assert!(matches!(tx.poll_want(&mut cx), Poll::Ready(Ok(()))));
        tx.send(Frame::data(Bytes::from_static(b"abc")));
        assert!(tx.poll_want(&mut cx).is_pending(), "slot is full");
        match Pin::new(&mut body).poll_frame(&mut cx) {
            Poll::Ready(Some(Ok(f))) => {
                assert_eq!(f.into_data().ok(), Some(Bytes::from_static(b"abc")))
            }
            _ => panic!("expected data"),
        }
        assert_eq!(body.size_hint().exact(), Some(0));
        tx.finish();
        assert!(body.is_end_stream());
        assert!(matches!(
            Pin::new(&mut body).poll_frame(&mut cx),
            Poll::Ready(None)
        ));
    }

    #[test]
    fn a_dropped_sender_is_an_incomplete_body() {
        let (tx, rx) = channel(None);
        let mut body = Body::h1(rx);
        drop(tx);
        match Pin::new(&mut body).poll_frame(&mut cx()) {
            Poll::Ready(Some(Err(e))) => assert!(e.is_incomplete()),
            _ => panic!("expected an error"),
        }
    }

    #[test]
    fn an_aborted_body_yields_the_error() {
        let (tx, rx) = channel(None);
        let mut body = Body::h1(rx);
        tx.abort(Error::new(Kind::Parse));
        match Pin::new(&mut body).poll_frame(&mut cx()) {
            Poll::Ready(Some(Err(e))) => assert!(e.is_parse()),
            _ => panic!("expected an error"),
        }
    }

    #[test]
    fn dropping_the_receiver_closes_the_sender() {
        let (mut tx, rx) = channel(None);
        drop(rx);
        assert!(matches!(tx.poll_want(&mut cx()), Poll::Ready(Err(()))));
    }

    #[test]
    fn full_body_yields_once() {
        let mut body = Body::full(Bytes::from_static(b"xy"));
        assert_eq!(body.size_hint().exact(), Some(2));
        let mut cx = cx();
        assert!(matches!(
            Pin::new(&mut body).poll_frame(&mut cx),
            Poll::Ready(Some(Ok(_)))
        ));
        assert!(body.is_end_stream());
        assert!(matches!(
            Pin::new(&mut body).poll_frame(&mut cx),
            Poll::Ready(None)
        ));
    }
}
