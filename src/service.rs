//! The service bound, spelled once for the whole crate.

use std::future::Future;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{Request, Response};

use crate::body::Body;
use crate::error::BoxError;

/// A `tower_service::Service` over `http` types that the connection can drive.
/// Implemented for every service that fits; never implemented by hand.
pub(crate) trait HttpService: Clone + Send + 'static {
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
