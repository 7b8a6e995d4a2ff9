//! Dispatching one request: deciding its route, building the service's request
//! and its body's feeder, and polling the service. The connection loop
//! ([`H1::run`]) runs these steps, and the response writer after them, on the
//! one request path.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{Method, Request, Response, Version};
use tokio::io::{AsyncRead, AsyncWrite};
use tracing::{debug, field};

use super::decode::{ChunkedLimits, Decoder};
use super::feed::{BodyReader, Expect, Feeder};
use super::parse::{BodyLength, OtherUpgrade, RequestHead, UpgradeAsk};
use super::state::{Closing, Flow, H1};
use crate::body::{self, Body};
use crate::error::{Error, Kind};
use crate::policy::{DeclineReason, UpgradeDeclined};
use crate::service::{self, HttpService};

/// The service's request and the feeder of its body, kept in the connection
/// loop's own state: the parser fills the request's head in (see
/// [`parse_request`](super::parse::parse_request)) and [`H1::build_request`] its
/// body. Both are a few hundred bytes, and every move of them would be one more
/// copy per request.
#[derive(Default)]
pub(super) struct Call {
    pub(super) req: Option<Request<Body>>,
    pub(super) feeder: Option<Feeder>,
}

/// Where a request goes, decided from its head.
pub(super) enum Route<'f, B> {
    /// To the service: the [`Call`] is built.
    Service(Reply),
    /// A rarer branch (a declared body over the limit, an upgrade request), boxed
    /// so that its states do not inflate the connection loop's.
    Other(BoxRouted<'f, B>),
}

/// How a rarer branch ends.
pub(super) enum Routed<B> {
    /// The request is answered, or the connection switched.
    Done(Flow<B>),
    /// A declined upgrade, to be served like any request: the [`Call`] is built.
    Service(Reply),
}

type BoxRouted<'f, B> = Pin<Box<dyn Future<Output = Result<Routed<B>, Error>> + Send + 'f>>;

/// What the response must honour of its request.
#[derive(Debug, Clone, Copy)]
pub(super) struct Reply {
    /// Whether the connection may stay open after this response, as far as the
    /// request (and then the service) said.
    pub(super) keep_alive: bool,
    /// The request's version: HTTP/1.0 gets no chunked framing.
    pub(super) version: Version,
    /// A response to HEAD carries no body.
    pub(super) is_head: bool,
}

impl<'a, I, S> H1<'a, I, S>
where
    I: AsyncRead + AsyncWrite + Unpin + Send,
    S: HttpService,
{
    /// The configured limit, when the body `head` declares is over it.
    fn body_over_limit(&self, head: &RequestHead) -> Option<u64> {
        match (self.cfg.max_request_body_size, head.body) {
            (Some(limit), BodyLength::Length(n)) if n > limit => Some(limit),
            _ => None,
        }
    }

    fn body_reader(&self, body: BodyLength) -> BodyReader {
        let decoder = match body {
            BodyLength::Length(n) => Decoder::length(n),
            BodyLength::Chunked => Decoder::chunked(ChunkedLimits::default()),
        };
        BodyReader::new(decoder, self.cfg)
    }

    /// Decides where the request `head` (its head parsed into `call`) goes; for the
    /// service, builds the rest of its [`Call`].
    pub(super) fn route<'f>(
        &'f mut self,
        head: RequestHead,
        call: &'f mut Call,
    ) -> Route<'f, S::ResBody> {
        if let Some(limit) = self.body_over_limit(&head) {
            if let BodyLength::Length(n) = head.body {
                debug!(length = n, limit, "request body over the limit");
            }
            return Route::Other(Box::pin(async move {
                let e = Error::new(Kind::TooLarge);
                self.fail(&e).await;
                Err(e)
            }));
        }
        if head.other_upgrade == OtherUpgrade::First {
            let req = call.req.as_ref();
            let raw = req.and_then(|r| self.handover_head(&head, r.version(), r.method()));
            if let Some(raw) = raw {
                // The client prefers that protocol to h2c (RFC 9110 §7.8).
                return Route::Other(Box::pin(async move { self.hand_over(raw, None).await }));
            }
        }
        let decoder = self.body_reader(head.body);
        if head.upgrade != UpgradeAsk::None {
            return Route::Other(Box::pin(self.upgrade_request(head, decoder, call)));
        }
        Route::Service(self.build_request(head, decoder, None, false, None, call))
    }

    /// The head to replay when `head` (a `version` request with `method`) asks for
    /// an upgrade other than h2c that the service may take: HTTP/1.1, `Connection:
    /// upgrade` (RFC 9110 §7.8), not CONNECT, and this build able to hand the
    /// connection over (the `upgrades` feature). Else the request is served here,
    /// where a `101` cannot be honoured and is refused (see [`H1::respond_result`]).
    pub(super) fn handover_head(
        &self,
        head: &RequestHead,
        version: Version,
        method: &Method,
    ) -> Option<Bytes> {
        let able = cfg!(feature = "upgrades")
            && version == Version::HTTP_11
            && head.connection_upgrade
            && method != Method::CONNECT;
        head.raw.clone().filter(|_| able)
    }

    /// Hands the connection over with the request headed `head` unanswered: what
    /// is queued for earlier requests goes out first.
    pub(super) async fn hand_over(
        &mut self,
        head: Bytes,
        declined: Option<DeclineReason>,
    ) -> Result<Routed<S::ResBody>, Error> {
        std::future::poll_fn(|cx| self.wbuf.poll_flush(&mut self.io, cx))
            .await
            .map_err(Error::io)?;
        debug!(
            declined = declined.as_ref().map(field::display),
            "handing over for an upgrade"
        );
        Ok(Routed::Done(Flow::Handover { head, declined }))
    }

    /// Completes the service's request for `head` in `call` (see [`Call`]), whose
    /// head the parser filled in: its body, and the feeder of that body if it has
    /// one. Returns what the response must honour.
    pub(super) fn build_request(
        &self,
        head: RequestHead,
        decoder: BodyReader,
        declined: Option<DeclineReason>,
        continue_sent: bool,
        prefix: Option<Bytes>,
        call: &mut Call,
    ) -> Reply {
        let RequestHead {
            keep_alive,
            expect_continue,
            ..
        } = head;
        // The parser filled it in before the request was routed.
        let req = call.req.get_or_insert_default();
        let version = req.version();
        let is_head = req.method() == Method::HEAD;

        // The request starts with an empty body: a body is put in only when there
        // is one, so a request without one does not pay for replacing it.
        if !decoder.is_end() || prefix.is_some() {
            let prefix_len = prefix.as_ref().map_or(0, |p| p.len() as u64);
            let (tx, rx) = body::channel(decoder.remaining().map(|r| r + prefix_len));
            let expect = if expect_continue && !continue_sent {
                Expect::Pending
            } else {
                Expect::Done
            };
            call.feeder = Some(Feeder {
                tx: Some(tx),
                decoder,
                prefix,
                expect,
                failure: None,
            });
            *req.body_mut() = Body::h1(rx);
        }

        // No `Protocol` extension: the request's version says HTTP/1 (see
        // `Protocol::of`), and an insert would cost an allocation per request.
        if let Some(reason) = declined {
            req.extensions_mut().insert(UpgradeDeclined { reason });
        }
        Reply {
            keep_alive,
            version,
            is_head,
        }
    }

    /// Polls the service for the response to the call's request (see
    /// [`service::poll_call`]), feeding it the request body meanwhile.
    pub(super) fn poll_service(
        &mut self,
        call: &mut Call,
        fut: Pin<&mut Option<S::Future>>,
        cx: &mut Context<'_>,
    ) -> Poll<Result<Response<S::ResBody>, S::Error>> {
        let H1 {
            io,
            rbuf,
            wbuf,
            svc,
            ..
        } = self;
        if let Some(f) = call.feeder.as_mut() {
            let _ = f.poll_feed(cx, io, rbuf, wbuf);
        }
        service::poll_call(svc, &mut call.req, fut, cx)
    }
}

/// Where an answered request leaves the connection: kept alive if `keep`; else
/// closed, without a lingering read when the client said the request was its
/// last and all of it was read (see [`Closing`]).
pub(super) fn flow<B>(keep: bool, reply: Reply, feeder: &Option<Feeder>) -> Flow<B> {
    if keep {
        Flow::KeepAlive
    } else if !reply.keep_alive && feeder.as_ref().is_none_or(|f| f.decoder.is_end()) {
        Flow::Close(Closing::ClientDone)
    } else {
        Flow::Close(Closing::MaySendMore)
    }
}
