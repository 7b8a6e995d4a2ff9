//! The service bound, spelled once for the whole crate.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{Request, Response};

use crate::body::Body;
use crate::error::BoxError;

/// A `tower_service::Service` over `http` types that the connection can drive.
/// Implemented for every service that fits; never implemented by hand. `pub` in
/// this private module because the sealed trait behind
/// [`MakeConnectionService`](crate::MakeConnectionService) names it; it cannot be
/// named outside the crate.
pub trait HttpService: Clone + Send + 'static {
    type ResBody: http_body::Body<Data = Bytes, Error = Self::BodyError> + Send + 'static;
    type BodyError: Into<BoxError>;
    type Error: Into<BoxError>;
    type Future: Future<Output = Result<Response<Self::ResBody>, Self::Error>> + Send + 'static;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>>;
    fn call(&mut self, req: Request<Body>) -> Self::Future;
}

impl<S, B> HttpService for S
where
    S: tower_service::Service<Request<Body>, Response = Response<B>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<BoxError>,
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    type ResBody = B;
    type BodyError = B::Error;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        tower_service::Service::poll_ready(self, cx)
    }

    fn call(&mut self, req: Request<Body>) -> S::Future {
        tower_service::Service::call(self, req)
    }
}

/// Waits until the service is ready, then calls it with `req`.
pub(crate) async fn call<S: HttpService>(
    svc: &mut S,
    req: Request<Body>,
) -> Result<Response<S::ResBody>, BoxError> {
    std::future::poll_fn(|cx| svc.poll_ready(cx))
        .await
        .map_err(Into::into)?;
    svc.call(req).await.map_err(Into::into)
}

/// [`call`] as a poll function, for a caller that polls other work beside it: the
/// request waits in `req` until the service is ready, its future in `fut`. Keeping
/// both in the caller's state, instead of in an `async` block of their own, saves
/// moving the request and the future into and out of one more state machine. The
/// service's own error type is kept, so the response is not copied into another
/// `Result` on its way out.
pub(crate) fn poll_call<S: HttpService>(
    svc: &mut S,
    req: &mut Option<Request<Body>>,
    mut fut: Pin<&mut Option<S::Future>>,
    cx: &mut Context<'_>,
) -> Poll<Result<Response<S::ResBody>, S::Error>> {
    if let Some(r) = req.take() {
        match svc.poll_ready(cx) {
            Poll::Ready(Ok(())) => fut.set(Some(svc.call(r))),
            Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
            Poll::Pending => {
                *req = Some(r);
                return Poll::Pending;
            }
        }
    }
    match fut.as_pin_mut() {
        Some(f) => f.poll(cx),
        // Called again after it returned: there is nothing more to give.
        None => Poll::Pending,
    }
}
