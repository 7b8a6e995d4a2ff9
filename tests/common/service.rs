//! Services for the server under test:
//!
//! - [`recorder`] wraps a service and reports each request's head and extensions
//!   as the server handed them over, before the wrapped service answers;
//! - [`inspect`] reads the whole request body and reports what it saw (the body
//!   or the kind of its error, trailers, the upgrade decline reason), both on a
//!   channel and in its response;
//! - [`service_fn`] makes a service of an async closure, [`answer`] one of a
//!   closure that answers at once with a body of any type; [`IgnoreBody`] answers
//!   without reading the body.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use h2c_mux::{Body, DeclineReason, Protocol, RemoteAddr, UpgradeDeclined};
use http::{HeaderMap, Method, Request, Response, StatusCode, Version};
use http_body_util::{BodyExt, Full};
use tokio::sync::mpsc;

use super::within;

/// A whole response, as the services here answer.
pub type Resp = Response<Full<Bytes>>;
/// The future of a [`Resp`] built by an async block.
pub type RespFut = Pin<Box<dyn Future<Output = Resp> + Send>>;
/// What `tower_service::Service::call` returns for a [`Resp`] that cannot fail.
pub type BoxFut = Pin<Box<dyn Future<Output = Result<Resp, Infallible>> + Send>>;

/// A service from an async closure.
#[derive(Clone)]
pub struct FnService<F>(pub F);

/// A service whose answer to each request is `f(request).await`.
pub fn service_fn<F, Fut>(f: F) -> FnService<F>
where
    F: Fn(Request<Body>) -> Fut + Clone + Send + 'static,
    Fut: Future<Output = Resp> + Send + 'static,
{
    FnService(f)
}

impl<F, Fut> tower_service::Service<Request<Body>> for FnService<F>
where
    F: Fn(Request<Body>) -> Fut + Clone + Send + 'static,
    Fut: Future<Output = Resp> + Send + 'static,
{
    type Response = Resp;
    type Error = Infallible;
    type Future = BoxFut;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<Body>) -> BoxFut {
        let fut = (self.0)(req);
        Box::pin(async move { Ok(fut.await) })
    }
}

/// A service that answers each request at once with `f(&request)`.
#[derive(Clone)]
pub struct Answer<F>(F);

/// A service whose answer to each request is `f(&request)`, ready at once, with a
/// body of any type (a body that fails, or never ends, for instance).
pub fn answer<F, B>(f: F) -> Answer<F>
where
    F: Fn(&Request<Body>) -> Response<B> + Clone + Send + 'static,
{
    Answer(f)
}

impl<F, B> tower_service::Service<Request<Body>> for Answer<F>
where
    F: Fn(&Request<Body>) -> Response<B> + Clone + Send + 'static,
{
    type Response = Response<B>;
    type Error = Infallible;
    type Future = std::future::Ready<Result<Response<B>, Infallible>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<Body>) -> Self::Future {
        std::future::ready(Ok((self.0)(&req)))
    }
}

/// A response with `status` and `body`.
pub fn text(status: StatusCode, body: impl Into<Bytes>) -> Resp {
    let mut r = Response::new(Full::new(body.into()));
    *r.status_mut() = status;
    r
}

/// The kind of an `h2c_mux::Error`, by its predicates.
pub fn error_kind(e: &h2c_mux::Error) -> &'static str {
    if e.is_parse() {
        "parse"
    } else if e.is_timeout() {
        "timeout"
    } else if e.is_incomplete() {
        "incomplete"
    } else if e.is_io() {
        "io"
    } else if e.is_h2() {
        "h2"
    } else if e.is_body() {
        "body"
    } else if e.is_service() {
        "service"
    } else if e.is_no_tunnel() {
        "no tunnel"
    } else {
        "other"
    }
}

/// What the server handed to the service, as seen by [`Recorder`].
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: Method,
    pub path: String,
    pub version: Version,
    pub headers: HeaderMap,
    pub protocol: Option<Protocol>,
    pub declined: Option<DeclineReason>,
    pub remote: Option<SocketAddr>,
}

/// A service that reports every request's head and extensions on a channel, then
/// lets `inner` answer it.
#[derive(Debug, Clone)]
pub struct Recorder<S> {
    inner: S,
    tx: mpsc::UnboundedSender<Seen>,
}

/// Wraps `inner`; the receiver gets one [`Seen`] per request, in call order.
pub fn recorder<S>(inner: S) -> (Recorder<S>, Requests) {
    let (tx, rx) = mpsc::unbounded_channel();
    (Recorder { inner, tx }, Requests(rx))
}

impl<S> tower_service::Service<Request<Body>> for Recorder<S>
where
    S: tower_service::Service<Request<Body>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<Body>) -> S::Future {
        let seen = Seen {
            method: req.method().clone(),
            path: req.uri().path().to_string(),
            version: req.version(),
            headers: req.headers().clone(),
            protocol: Protocol::of(&req),
            declined: req
                .extensions()
                .get::<UpgradeDeclined>()
                .map(|d| d.reason.clone()),
            remote: req.extensions().get::<RemoteAddr>().map(|a| a.0),
        };
        let _ = self.tx.send(seen);
        self.inner.call(req)
    }
}

/// The receiving end of a [`Recorder`].
#[derive(Debug)]
pub struct Requests(mpsc::UnboundedReceiver<Seen>);

impl Requests {
    /// The next request the service saw (bounded wait).
    pub async fn next(&mut self) -> Seen {
        within("the service to be called", self.0.recv())
            .await
            .expect("recorder dropped")
    }

    /// Asserts the service saw no request after those already taken, once every
    /// copy of it is gone (its connection has ended).
    pub async fn assert_no_more(mut self) {
        let next = within("the service to be dropped", self.0.recv()).await;
        assert!(next.is_none(), "the service was called: {next:?}");
    }
}

/// What the [`inspect`] service saw of one request.
#[derive(Debug, Clone)]
pub struct Inspected {
    pub method: String,
    pub uri: String,
    pub headers: HeaderMap,
    /// The whole body, or the kind of the error the body yielded.
    pub body: Result<Bytes, &'static str>,
    /// The error's text, when the body failed.
    pub error_text: Option<String>,
    pub trailers: Option<HeaderMap>,
    pub declined: Option<String>,
    pub protocol: Option<Protocol>,
}

/// A service that collects the whole request body (with `http_body_util`) and
/// reports what it saw: on `tx`, and in a `200` response body made of lines
/// `key=value` (`body-len`, `error`, `trailer:<name>`, `declined`, `protocol`).
pub fn inspect(
    tx: mpsc::UnboundedSender<Inspected>,
) -> FnService<impl Fn(Request<Body>) -> RespFut + Clone> {
    inspect_inner(tx, false)
}

/// [`inspect`], except that `GET /` is answered like the demo (`hello world\n`),
/// so the well-behaved clients' check works against it.
pub fn inspect_with_hello(
    tx: mpsc::UnboundedSender<Inspected>,
) -> FnService<impl Fn(Request<Body>) -> RespFut + Clone> {
    inspect_inner(tx, true)
}

fn inspect_inner(
    tx: mpsc::UnboundedSender<Inspected>,
    hello: bool,
) -> FnService<impl Fn(Request<Body>) -> RespFut + Clone> {
    FnService(move |req: Request<Body>| -> RespFut {
        let tx = tx.clone();
        Box::pin(async move {
            let is_hello = hello && req.method() == Method::GET && req.uri().path() == "/";
            let (parts, body) = req.into_parts();
            let declined = parts
                .extensions
                .get::<UpgradeDeclined>()
                .map(|d| d.reason.to_string());
            let protocol = Protocol::of_parts(&parts);
            let (body, error_text, trailers) = match body.collect().await {
                Ok(c) => {
                    let trailers = c.trailers().cloned();
                    (Ok(c.to_bytes()), None, trailers)
                }
                Err(e) => (Err(error_kind(&e)), Some(e.to_string()), None),
            };
            let mut report = String::new();
            report.push_str(&format!("method={}\n", parts.method));
            report.push_str(&format!("uri={}\n", parts.uri));
            match &body {
                Ok(b) => report.push_str(&format!("body-len={}\n", b.len())),
                Err(k) => report.push_str(&format!("error={k}\n")),
            }
            if let Some(t) = &trailers {
                for (k, v) in t {
                    report.push_str(&format!("trailer:{}={}\n", k, v.to_str().unwrap_or("?")));
                }
            }
            if let Some(d) = &declined {
                report.push_str(&format!("declined={d}\n"));
            }
            if let Some(p) = protocol {
                report.push_str(&format!("protocol={p}\n"));
            }
            let _ = tx.send(Inspected {
                method: parts.method.to_string(),
                uri: parts.uri.to_string(),
                headers: parts.headers.clone(),
                body,
                error_text,
                trailers,
                declined,
                protocol,
            });
            if is_hello {
                return text(StatusCode::OK, "hello world\n");
            }
            text(StatusCode::OK, report)
        })
    })
}

/// Answers `200 ignored\n` at once, dropping the request body unread.
#[derive(Debug, Clone)]
pub struct IgnoreBody;

impl tower_service::Service<Request<Body>> for IgnoreBody {
    type Response = Resp;
    type Error = Infallible;
    type Future = std::future::Ready<Result<Resp, Infallible>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<Body>) -> Self::Future {
        drop(req);
        std::future::ready(Ok(text(StatusCode::OK, Bytes::from_static(b"ignored\n"))))
    }
}

/// The bytes `/bytes/N` of the demo answers: `demo::PATTERN` repeated.
#[cfg(feature = "demo")]
pub fn pattern(n: usize) -> Vec<u8> {
    h2c_mux::demo::PATTERN
        .iter()
        .copied()
        .cycle()
        .take(n)
        .collect()
}
