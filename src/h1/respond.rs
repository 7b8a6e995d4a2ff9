//! Writing the response: its head (framing, persistence), then its body under
//! the write buffer's high-water mark, feeding the request body meanwhile.

use std::future::{poll_fn, Future};
use std::pin::{pin, Pin};
use std::task::{ready, Context, Poll};

use bytes::Bytes;
use futures_util::future::Either;
use http::{header, HeaderMap, Response, StatusCode, Version};
use tokio::io::{AsyncRead, AsyncWrite};
use tracing::{debug, trace, warn};

use super::dispatch::Reply;
use super::encode::{self, Framing, Persistence};
use super::feed::{Expect, Feeder};
use super::io::WriteBuf;
use super::state::{Closing, H1};
use crate::body::Prefetched;
use crate::error::{BoxError, Error, Kind};
use crate::service::HttpService;

/// Body frames handled in one poll before yielding, so one connection streaming a
/// large response cannot starve the others on its worker thread.
const MAX_TURNS: usize = 16;

/// The future of a response's rarer branches (see [`H1::respond`]).
type BoxRespond<'f> = Pin<Box<dyn Future<Output = Result<bool, Error>> + Send + 'f>>;

/// How a response starts (see [`H1::start_response`]).
enum Start<B> {
    /// The head is queued; `body` follows under `framing`.
    Body {
        body: B,
        framing: Framing,
        keep_alive: bool,
    },
    /// The client still waits for a `100 Continue` that the response body may
    /// ask for: nothing is queued yet (see [`H1::respond_deferred`]).
    Deferred(DeferredHead<B>),
}

/// A response whose head waits (see [`Start::Deferred`]).
struct DeferredHead<B> {
    parts: http::response::Parts,
    body: B,
    framing: Framing,
    keep_alive: bool,
    version: Version,
}

impl<'a, I, S> H1<'a, I, S>
where
    I: AsyncRead + AsyncWrite + Unpin + Send,
    S: HttpService,
{
    /// [`respond`](Self::respond) with what the service gave: its response, or a
    /// `500` for its error (and then the connection closes).
    pub(super) fn respond_result<'f>(
        &'f mut self,
        res: Result<Response<S::ResBody>, S::Error>,
        reply: Reply,
        feeder: &'f mut Option<Feeder>,
    ) -> Either<BoxRespond<'f>, impl Future<Output = Result<bool, Error>> + Send + use<'f, 'a, I, S>>
    {
        match res {
            // Only a request handed over can switch (see `H1::handover_head`); here
            // a 101 would promise a protocol nobody speaks on this connection, and
            // any 1xx is no final answer (RFC 9110 §15.2).
            Ok(res) if res.status().is_informational() => {
                let status = res.status();
                warn!(%status, "the service answered 1xx to a request that cannot switch; answering 500");
                let e = format!("service answered {status}, which cannot be honoured here");
                Either::Left(self.respond_failed(e.into(), reply, feeder))
            }
            Ok(res) => self.respond(res, reply, feeder),
            Err(e) => Either::Left(self.respond_failed(e.into(), reply, feeder)),
        }
    }

    /// Answers `500` for a service that failed, and closes.
    fn respond_failed<'f>(
        &'f mut self,
        e: BoxError,
        reply: Reply,
        feeder: &'f mut Option<Feeder>,
    ) -> BoxRespond<'f> {
        // Boxed: a second body type would double the response future's size. It takes
        // the place of respond's own boxed branch, so the common future is not
        // wrapped (and moved) once more.
        let reply = Reply {
            keep_alive: false,
            ..reply
        };
        let res = server_error::<S::ResBody>(e);
        Box::pin(self.respond(res, reply, feeder))
    }

    /// Writes the response, keeps feeding the request body meanwhile, then settles
    /// what is left of the request body. Its future resolves to whether the
    /// connection stays open.
    pub(super) fn respond<'f, B>(
        &'f mut self,
        res: Response<B>,
        reply: Reply,
        feeder: &'f mut Option<Feeder>,
    ) -> Either<
        BoxRespond<'f>,
        impl Future<Output = Result<bool, Error>> + Send + use<'f, 'a, I, S, B>,
    >
    where
        B: http_body::Body<Data = Bytes> + Send + 'f,
        B::Error: Into<BoxError>,
    {
        match self.start_response(res, reply, feeder) {
            Start::Body {
                body,
                framing,
                keep_alive,
            } => Either::Right(self.finish(body, framing, keep_alive, feeder)),
            Start::Deferred(deferred) => Either::Left(self.respond_deferred(deferred, feeder)),
        }
    }

    /// Settles the response's framing and, unless a 100-continue is still owed (see
    /// [`Start::Deferred`]), queues its head.
    fn start_response<B>(
        &mut self,
        res: Response<B>,
        reply: Reply,
        feeder: &mut Option<Feeder>,
    ) -> Start<B>
    where
        B: http_body::Body<Data = Bytes>,
    {
        let (parts, body) = res.into_parts();
        let status = parts.status;
        let version = reply.version;
        let (declared, close) = framing_fields(&parts.headers);
        let no_body = reply.is_head
            || status.is_informational()
            || status == StatusCode::NO_CONTENT
            || status == StatusCode::NOT_MODIFIED;
        let framing = if no_body {
            let length = if status == StatusCode::NOT_MODIFIED {
                declared
            } else {
                declared.or(body.size_hint().exact())
            };
            Framing::NoBody { length }
        } else if let Some(n) = declared.or(body.size_hint().exact()) {
            Framing::Length(n)
        } else if version == Version::HTTP_11 {
            Framing::Chunked
        } else {
            Framing::Close
        };

        // The server's choice (`http1_keep_alive` off) closes too, with a lingering
        // read: the client may have sent more already.
        let mut keep_alive = reply.keep_alive && !close && self.cfg.http1_keep_alive;
        if self.shutdown.is_triggered() || framing == Framing::Close {
            keep_alive = false;
        }
        // RFC 9110 §10.1.1: a client that sent `Expect: 100-continue` holds its body
        // back until it sees a 100 or a final status, and no 100 may follow the final
        // head. If the body has not been asked for yet, poll the response body once:
        // when that asks for the request body (an echo), the 100 goes out ahead of the
        // head; otherwise the body is refused.
        let awaiting = feeder
            .as_ref()
            .is_some_and(|f| f.expect == Expect::Pending && !f.decoder.is_end());
        if awaiting && !no_body {
            return Start::Deferred(DeferredHead {
                parts,
                body,
                framing,
                keep_alive,
                version,
            });
        }
        if let Some(f) = feeder.as_mut() {
            f.settle_expect(&mut self.wbuf);
        }
        let keep_alive = self.write_head(&parts, version, framing, keep_alive, feeder);
        Start::Body {
            body,
            framing,
            keep_alive,
        }
    }

    /// The rest of a [`Start::Deferred`] response. Boxed, as it writes another body
    /// type (a second body type would double the response future's size).
    fn respond_deferred<'f, B>(
        &'f mut self,
        deferred: DeferredHead<B>,
        feeder: &'f mut Option<Feeder>,
    ) -> BoxRespond<'f>
    where
        B: http_body::Body<Data = Bytes> + Send + 'f,
        B::Error: Into<BoxError>,
    {
        Box::pin(async move {
            let DeferredHead {
                parts,
                body,
                framing,
                keep_alive,
                version,
            } = deferred;
            let mut body = Prefetched::new(Some(body));
            poll_fn(|cx| {
                let _ = body.poll_prefetch(cx);
                Poll::Ready(())
            })
            .await;
            if let Some(f) = feeder.as_mut() {
                f.settle_expect(&mut self.wbuf);
            }
            let keep_alive = self.write_head(&parts, version, framing, keep_alive, feeder);
            self.finish(body, framing, keep_alive, feeder).await
        })
    }

    /// Queues the response head once the framing is settled. Returns whether the
    /// connection stays open.
    fn write_head(
        &mut self,
        parts: &http::response::Parts,
        version: Version,
        framing: Framing,
        mut keep_alive: bool,
        feeder: &Option<Feeder>,
    ) -> bool {
        if let Some(f) = feeder {
            // A refused body may or may not follow: the connection cannot be reused
            // safely, nor after a broken body.
            if f.is_broken() || f.expect == Expect::Refused {
                keep_alive = false;
            }
        }
        let persistence = if !keep_alive {
            Persistence::Close
        } else if version == Version::HTTP_10 {
            Persistence::KeepAlive10
        } else {
            Persistence::Default
        };
        self.wbuf.start_response();
        encode::write_head(
            self.wbuf.flat(),
            parts.status,
            &parts.headers,
            framing,
            persistence,
        );
        trace!(
            status = parts.status.as_u16(),
            ?framing,
            keep_alive,
            "response head"
        );
        keep_alive
    }

    /// Writes the response body after its head, then settles what is left of the
    /// request body. Returns whether the connection stays open.
    // Not an `async fn`: the arguments of an `async fn` are moved into locals when
    // it starts, and its state keeps both copies; an async block keeps one.
    #[allow(clippy::manual_async_fn)]
    pub(super) fn finish<'f, B>(
        &'f mut self,
        body: B,
        framing: Framing,
        keep_alive: bool,
        feeder: &'f mut Option<Feeder>,
    ) -> impl Future<Output = Result<bool, Error>> + use<'f, 'a, I, S, B>
    where
        B: http_body::Body<Data = Bytes> + 'f,
        B::Error: Into<BoxError>,
    {
        async move {
            if matches!(framing, Framing::NoBody { .. }) {
                // Whatever the body holds is let go before the request body is
                // settled.
                drop(body);
            } else {
                let mut body = pin!(body);
                let mut progress = Progress {
                    framing,
                    sent: 0,
                    over: false,
                };
                let written = poll_fn(|cx| {
                    self.poll_body(body.as_mut(), framing, &mut progress.sent, feeder, cx)
                })
                .await;
                progress.over = true;
                if let Err(e) = written {
                    if self.wbuf.discard_response() {
                        self.refuse_unsent(&e, feeder).await;
                    } else {
                        debug!(error = &e as &dyn std::error::Error, "response body failed");
                        self.wbuf.clear();
                    }
                    return Err(e);
                }
            }
            if feeder.is_none() {
                return Ok(keep_alive);
            }
            self.settle(feeder, keep_alive).await
        }
    }

    /// The response body failed before any byte of the response went out: the
    /// request is answered with an error status instead, and the connection closes
    /// after it. 400 (or what the request body's failure calls for) when the
    /// request body broke, the usual cause for a body that streams it back; 500
    /// when the response body failed by itself. Once some of the response is out,
    /// no other answer can follow, and closing without the end of its framing tells
    /// the client the body is incomplete.
    async fn refuse_unsent(&mut self, e: &Error, feeder: &Option<Feeder>) {
        let status = feeder
            .as_ref()
            .and_then(|f| f.failure)
            .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        debug!(
            error = e as &dyn std::error::Error,
            status = status.as_u16(),
            "response body failed before its head went out"
        );
        encode::write_error(self.wbuf.flat(), status);
        self.close(Closing::MaySendMore).await;
    }

    /// Writes the response body (`sent` bytes of it so far) to the write buffer,
    /// flushing past the high-water mark, and feeds the request body meanwhile.
    fn poll_body<B>(
        &mut self,
        mut body: Pin<&mut B>,
        framing: Framing,
        sent: &mut u64,
        feeder: &mut Option<Feeder>,
        cx: &mut Context<'_>,
    ) -> Poll<Result<(), Error>>
    where
        B: http_body::Body<Data = Bytes>,
        B::Error: Into<BoxError>,
    {
        // At least one byte, so a zero setting means "write every piece".
        let high_water = self.cfg.max_write_buffer_size.max(1);
        let H1 { io, rbuf, wbuf, .. } = self;
        let mut fed_again = false;
        for _ in 0..MAX_TURNS {
            if let Some(f) = feeder.as_mut() {
                let _ = f.poll_feed(cx, io, rbuf, wbuf);
            }
            if wbuf.len() >= high_water {
                ready!(wbuf.poll_flush(io, cx)).map_err(Error::io)?;
            }
            let frame = match body.as_mut().poll_frame(cx) {
                Poll::Ready(Some(Ok(frame))) => frame,
                Poll::Ready(Some(Err(e))) => {
                    return Poll::Ready(Err(Error::new(Kind::Body).with(e)));
                }
                Poll::Ready(None) => {
                    return Poll::Ready(finish_body(wbuf, framing, *sent, None));
                }
                Poll::Pending => {
                    // A body that streams the request back has only now asked for
                    // it: feed it once more before anything goes out, so a request
                    // body already read, or already broken, is answered before the
                    // head is committed (see `refuse_unsent`).
                    if !fed_again && feeder.as_ref().is_some_and(|f| f.tx.is_some()) {
                        fed_again = true;
                        continue;
                    }
                    // Let what is ready reach the client while the body waits.
                    if !wbuf.is_empty() {
                        if let Poll::Ready(Err(e)) = wbuf.poll_flush(io, cx) {
                            return Poll::Ready(Err(Error::io(e)));
                        }
                    }
                    return Poll::Pending;
                }
            };
            match frame.into_data() {
                Ok(data) => {
                    if data.is_empty() {
                        continue;
                    }
                    // Progress: the next wait may again be for request body that a
                    // feed would hand over.
                    fed_again = false;
                    *sent += data.len() as u64;
                    match framing {
                        Framing::Length(n) if *sent > n => {
                            return Poll::Ready(Err(Error::new(Kind::Body)
                                .detail("response body longer than its content-length")));
                        }
                        Framing::Chunked => {
                            encode::chunk_head(wbuf.flat(), data.len());
                            wbuf.push(data);
                            wbuf.flat().extend_from_slice(b"\r\n");
                        }
                        _ => wbuf.push(data),
                    }
                }
                Err(frame) => {
                    if let Ok(trailers) = frame.into_trailers() {
                        return Poll::Ready(finish_body(wbuf, framing, *sent, Some(&trailers)));
                    }
                }
            }
        }
        // Yield after a bounded number of frames (see MAX_TURNS).
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

pub(super) type ServiceResult<B> = Result<Response<B>, BoxError>;

/// How far a response body got, watched while it is written: a connection
/// dropped before the body is over (`serve`'s drain bound cuts it) says what
/// it cut.
struct Progress {
    framing: Framing,
    sent: u64,
    /// The writing ended, in full or with an error already logged.
    over: bool,
}

impl Drop for Progress {
    fn drop(&mut self) {
        if self.over {
            return;
        }
        match self.framing {
            Framing::Length(n) => warn!(
                sent_bytes = self.sent,
                unsent_bytes = n.saturating_sub(self.sent),
                "http/1.1 response cut before its end"
            ),
            _ => warn!(
                sent_bytes = self.sent,
                "http/1.1 response of unknown length cut before its end"
            ),
        }
    }
}

/// The response for a service that failed: `500`, no body.
pub(super) fn server_error<B>(e: BoxError) -> Response<Prefetched<B>>
where
    B: http_body::Body<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    let e = Error::service(e);
    debug!(error = &e as &dyn std::error::Error, "service error");
    let mut r = Response::new(Prefetched::new(None));
    *r.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
    r
}

fn finish_body(
    wbuf: &mut WriteBuf,
    framing: Framing,
    sent: u64,
    trailers: Option<&HeaderMap>,
) -> Result<(), Error> {
    match framing {
        Framing::Chunked => encode::chunked_end(wbuf.flat(), trailers),
        Framing::Length(n) if sent != n => {
            return Err(
                Error::new(Kind::Body).detail("response body shorter than its content-length")
            );
        }
        _ => {}
    }
    Ok(())
}

/// What the service's fields say about the framing: a single valid Content-Length,
/// if any, and whether `Connection` lists `close`. One pass over the fields: a
/// response has few, and each lookup by name would hash.
fn framing_fields(headers: &HeaderMap) -> (Option<u64>, bool) {
    let mut length = None;
    let mut lengths = 0;
    let mut close = false;
    for (name, value) in headers {
        if name == header::CONTENT_LENGTH {
            lengths += 1;
            length = value.to_str().ok().and_then(|v| v.trim().parse().ok());
        } else if name == header::CONNECTION && !close {
            close = crate::field::list(value.as_bytes()).any(|t| t.eq_ignore_ascii_case(b"close"));
        }
    }
    (length.filter(|_| lengths == 1), close)
}
