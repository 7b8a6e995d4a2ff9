//! Accepting an `Upgrade: h2c` request (RFC 7540 §3.2): check it, read or stream
//! its body, and hand the connection over with the 101 still to send, or answer
//! it over HTTP/1.1 with the reason it was declined.

use std::future::{poll_fn, Future};
use std::pin::Pin;
use std::task::{ready, Poll};

use bytes::{Bytes, BytesMut};
use http::request::Parts;
use http::{header, HeaderMap, Method, Request, Response, Version};
use tokio::io::{AsyncRead, AsyncWrite};
use tracing::debug;

use super::decode::Decoded;
use super::dispatch::{flow, Call, Reply, Routed};
use super::feed::{BodyReader, Expect, Feeder, CONTINUE};
use super::parse::{BodyLength, OtherUpgrade, RequestHead, UpgradeAsk};
use super::respond::{server_error, ServiceResult};
use super::state::{Flow, H1};
use crate::body::{self, Body, Prefetched};
use crate::config::Config;
use crate::error::Error;
use crate::policy::{AnsweredOver, DeclineReason, Protocol, UpgradeDecision};
use crate::service::{self, HttpService};
use crate::sniff::PREFACE;
use crate::upgrade::handoff::{Started, Stream1};
use crate::upgrade::{settings, stream1};

enum UpgradeBody {
    Complete(Bytes, Option<HeaderMap>),
    /// Over the bound: what was read so far, to be replayed to the service.
    TooLarge(Bytes),
}

/// Validates an upgrade request and, when it can and may be upgraded, returns the
/// bytes `h2` is to read first: the client preface, the client's SETTINGS (from
/// `HTTP2-Settings`), and stream 1's HEADERS.
fn check_upgrade(head: &RequestHead, parts: &Parts, cfg: &Config) -> Result<Bytes, DeclineReason> {
    if head.upgrade == UpgradeAsk::H2Tls {
        return Err(DeclineReason::TlsToken);
    }
    if !cfg.h2c_upgrade {
        return Err(DeclineReason::Disabled);
    }
    if parts.version != Version::HTTP_11 {
        return Err(DeclineReason::Http10);
    }
    if parts.method == Method::CONNECT {
        return Err(DeclineReason::Connect);
    }
    if !(head.connection_upgrade && head.connection_settings) {
        return Err(DeclineReason::ConnectionTokens);
    }
    let mut values = parts.headers.get_all("http2-settings").iter();
    let value = match (values.next(), values.next()) {
        (Some(v), None) => v,
        (None, _) => return Err(DeclineReason::SettingsCount(0)),
        (Some(_), Some(_)) => {
            return Err(DeclineReason::SettingsCount(2 + values.count()));
        }
    };
    let payload = settings::decode_http2_settings(value.as_bytes())
        .map_err(|e| DeclineReason::InvalidSettings(e.to_string()))?;
    if let (false, BodyLength::Length(n)) = (cfg.stream_upgrade_body, head.body) {
        if n > cfg.max_upgrade_body_size as u64 {
            return Err(DeclineReason::BodyTooLarge {
                limit: cfg.max_upgrade_body_size,
            });
        }
    }
    let mut preamble = BytesMut::with_capacity(PREFACE.len() + 9 + payload.len() + 256);
    preamble.extend_from_slice(PREFACE);
    settings::write_settings_frame(&payload, &mut preamble);
    stream1::encode_stream1_headers(parts, cfg.max_head_size, &mut preamble)
        .map_err(|e| DeclineReason::InvalidRequest(e.to_string()))?;
    if !cfg.h2c_through_proxies {
        if let Some(name) = crate::policy::proxy_field(&parts.headers) {
            return Err(DeclineReason::Proxied(name));
        }
    }
    if let Some(policy) = &cfg.policy {
        if let UpgradeDecision::Decline(reason) = policy(parts) {
            return Err(DeclineReason::Policy(reason));
        }
    }
    debug_assert!(parts.headers.contains_key(header::UPGRADE));
    Ok(preamble.freeze())
}

impl<'a, I, S> H1<'a, I, S>
where
    I: AsyncRead + AsyncWrite + Unpin + Send,
    S: HttpService,
{
    /// A request that asks for `Upgrade: h2c` (or `h2`): switch, or answer it over
    /// HTTP/1.1 with the reason it was declined.
    pub(super) async fn upgrade_request(
        &mut self,
        head: RequestHead,
        mut decoder: BodyReader,
        call: &mut Call,
    ) -> Result<Routed<S::ResBody>, Error> {
        let cfg = self.cfg;
        let mut continue_sent = false;
        let mut prefix = None;
        // The upgrade policy and stream 1 read the head as `Parts`: the parsed
        // request is taken apart here, and put together again if it is served
        // over HTTP/1.1.
        let (parts, _) = call.req.take().unwrap_or_default().into_parts();
        // Before any check of the request: whatever it asks, over TLS HTTP/2 is
        // ALPN's to choose (RFC 9113 §3.1, §3.3), and the `101` is never sent.
        let checked = if self.over_tls {
            Err(DeclineReason::Tls)
        } else {
            check_upgrade(&head, &parts, cfg)
        };
        let reason = match checked {
            Ok(preamble) => {
                // RFC 9110 §10.1.1: the client waits for 100 before the body, which
                // must be read before the 101 (RFC 7540 §3.2).
                if head.expect_continue && !decoder.is_end() {
                    self.wbuf.flat().extend_from_slice(CONTINUE);
                    continue_sent = true;
                }
                if cfg.stream_upgrade_body && !decoder.is_end() {
                    return self
                        .streamed_upgrade(head, parts, decoder, preamble, call)
                        .await;
                }
                match self.read_upgrade_body(&mut decoder).await {
                    Ok(UpgradeBody::Complete(body, trailers)) => {
                        poll_fn(|cx| self.wbuf.poll_flush(&mut self.io, cx))
                            .await
                            .map_err(Error::io)?;
                        debug!("switching to h2c");
                        let content_length = match head.body {
                            BodyLength::Length(n) => Some(n),
                            BodyLength::Chunked => None,
                        };
                        return Ok(Routed::Done(Flow::Upgrade {
                            preamble,
                            stream1: Stream1::Buffered {
                                body,
                                trailers,
                                content_length,
                            },
                        }));
                    }
                    Ok(UpgradeBody::TooLarge(read)) => {
                        prefix = Some(read);
                        DeclineReason::BodyTooLarge {
                            limit: cfg.max_upgrade_body_size,
                        }
                    }
                    Err(e) => {
                        debug!(
                            error = &e as &dyn std::error::Error,
                            "upgrade request body failed"
                        );
                        if e.is_parse() {
                            self.fail(&e).await;
                        }
                        return Err(e);
                    }
                }
            }
            Err(reason) => {
                if head.other_upgrade == OtherUpgrade::AfterH2c {
                    if let Some(raw) = self.handover_head(&head, parts.version, &parts.method) {
                        // The client's next choice (RFC 9110 §7.8).
                        debug!(%reason, "h2c upgrade declined; offering the next protocol");
                        return self.hand_over(raw, Some(reason)).await;
                    }
                }
                reason
            }
        };
        debug!(%reason, "h2c upgrade declined");
        call.req = Some(Request::from_parts(parts, Body::empty()));
        let reply = self.build_request(head, decoder, Some(reason), continue_sent, prefix, call);
        Ok(Routed::Service(reply))
    }

    /// An upgrade whose body streams to the service (see
    /// [`Builder::stream_upgrade_body`](crate::Builder::stream_upgrade_body)).
    ///
    /// ```text
    ///  client body ──HTTP/1.1──> feeder ──> service ──> response held (≤ hold bound)
    ///  last body byte read: 101, then the held (or still pending) response as stream 1
    ///  held response over the bound, or body dropped unread: answer over HTTP/1.1
    /// ```
    async fn streamed_upgrade(
        &mut self,
        head: RequestHead,
        mut parts: Parts,
        reader: BodyReader,
        preamble: Bytes,
        call: &mut Call,
    ) -> Result<Routed<S::ResBody>, Error> {
        let mut view = match stream1::request_view(&parts) {
            Ok(v) => v,
            Err(e) => {
                // check_upgrade() encoded the same head, so this is not expected; stay on
                // HTTP/1.1 rather than guess.
                let reason = DeclineReason::InvalidRequest(e.to_string());
                call.req = Some(Request::from_parts(parts, Body::empty()));
                let reply = self.build_request(head, reader, Some(reason), true, None, call);
                return Ok(Routed::Service(reply));
            }
        };
        let is_head = parts.method == Method::HEAD;
        view.extensions = std::mem::take(&mut parts.extensions);
        view.extensions.insert(Protocol::H2cUpgrade);
        let answered = AnsweredOver::default();
        view.extensions.insert(answered.clone());
        let (tx, rx) = body::channel(reader.remaining());
        let mut feeder = Feeder {
            tx: Some(tx),
            decoder: reader,
            prefix: None,
            expect: Expect::Done,
            failure: None,
        };
        let req = Request::from_parts(view, Body::h1(rx));
        let mut svc = self.svc.clone();
        let mut fut: Pin<Box<dyn Future<Output = ServiceResult<S::ResBody>> + Send>> =
            Box::pin(async move { service::call(&mut svc, req).await });
        let hold = self.cfg.max_upgrade_response_hold as u64;
        let mut res: Option<Response<Prefetched<S::ResBody>>> = None;

        let switch = {
            let H1 { io, rbuf, wbuf, .. } = self;
            poll_fn(|cx| loop {
                let _ = feeder.poll_feed(cx, io, rbuf, wbuf);
                if feeder.is_broken() {
                    return Poll::Ready(false);
                }
                if feeder.tx.is_none() {
                    // Either the whole body was read (switch), or the service dropped
                    // it unread (it cannot be stream 1's request any more).
                    return Poll::Ready(feeder.decoder.is_end());
                }
                if res.is_none() {
                    res = Some(match ready!(fut.as_mut().poll(cx)) {
                        Ok(r) => r.map(|b| Prefetched::new(Some(b))),
                        Err(e) => server_error(e),
                    });
                }
                let Some(r) = res.as_mut() else {
                    return Poll::Pending;
                };
                if r.body().prefetched() > hold {
                    return Poll::Ready(false);
                }
                match r.body_mut().poll_prefetch(cx) {
                    Poll::Ready(true) => continue,
                    Poll::Ready(false) | Poll::Pending => return Poll::Pending,
                }
            })
            .await
        };

        answered.decide(switch);
        if switch {
            poll_fn(|cx| self.wbuf.poll_flush(&mut self.io, cx))
                .await
                .map_err(Error::io)?;
            debug!("request body complete; switching to h2c");
            let started = match res {
                Some(r) => Started::Ready(r),
                None => Started::Pending(fut),
            };
            return Ok(Routed::Done(Flow::Upgrade {
                preamble,
                stream1: Stream1::Started(started),
            }));
        }

        debug!("streamed upgrade answered over http/1.1");
        let res = match res {
            Some(r) => r,
            None => {
                let H1 { io, rbuf, wbuf, .. } = self;
                poll_fn(|cx| {
                    let _ = feeder.poll_feed(cx, io, rbuf, wbuf);
                    fut.as_mut().poll(cx)
                })
                .await
                .map_or_else(server_error, |r| r.map(|b| Prefetched::new(Some(b))))
            }
        };
        let reply = Reply {
            keep_alive: head.keep_alive,
            version: Version::HTTP_11,
            is_head,
        };
        let mut feeder = Some(feeder);
        let keep = self.respond(res, reply, &mut feeder).await?;
        Ok(Routed::Done(flow(keep, reply, &feeder)))
    }

    /// Reads a whole upgrade request body, up to the configured bound.
    async fn read_upgrade_body(&mut self, decoder: &mut BodyReader) -> Result<UpgradeBody, Error> {
        let limit = self.cfg.max_upgrade_body_size;
        let mut body = BytesMut::new();
        let mut trailers = None;
        loop {
            let step = poll_fn(|cx| {
                if !self.wbuf.is_empty() {
                    ready!(self.wbuf.poll_flush(&mut self.io, cx)).map_err(Error::io)?;
                }
                decoder.poll_next(&mut self.io, &mut self.rbuf, cx)
            })
            .await?;
            match step {
                Decoded::Data(d) => {
                    body.extend_from_slice(&d);
                    if body.len() > limit {
                        return Ok(UpgradeBody::TooLarge(body.freeze()));
                    }
                }
                Decoded::Trailers(t) => trailers = Some(t),
                Decoded::End => return Ok(UpgradeBody::Complete(body.freeze(), trailers)),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::h1::parse::{parse_request, Limits};

    /// Parses `s` and checks it as an upgrade request under `cfg`.
    fn check(s: &str, cfg: &Config) -> Result<Bytes, DeclineReason> {
        let mut b = BytesMut::from(s);
        let limits = Limits {
            max_head_size: 65536,
            max_headers: 100,
            max_request_line: 8192,
        };
        let mut req = Request::default();
        let head = parse_request(&mut b, &limits, &mut req).unwrap().unwrap();
        check_upgrade(&head, &req.into_parts().0, cfg)
    }

    fn cfg() -> Config {
        Config::default()
    }

    const GOOD: &str = "GET / HTTP/1.1\r\nHost: a\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQCAAAAAAIAAAAA\r\n";

    #[test]
    fn accepts_a_valid_request() {
        let pre = check(&format!("{GOOD}\r\n"), &cfg()).unwrap();
        assert!(pre.starts_with(PREFACE));
        // SETTINGS frame: 18-byte payload (three settings).
        assert_eq!(&pre[24..33], &[0, 0, 18, 4, 0, 0, 0, 0, 0]);
        // Then a HEADERS frame on stream 1 with END_STREAM | END_HEADERS.
        let h = &pre[24 + 9 + 18..];
        assert_eq!((h[3], h[4]), (1, 5));
        assert_eq!(&h[5..9], &[0, 0, 0, 1]);
    }

    #[test]
    fn refusals() {
        let cases: Vec<(String, DeclineReason)> = vec![
            (
                GOOD.replace("HTTP/1.1\r\nHost: a", "HTTP/1.0\r\nHost: a") + "\r\n",
                DeclineReason::Http10,
            ),
            (
                GOOD.replace("Upgrade: h2c", "Upgrade: h2") + "\r\n",
                DeclineReason::TlsToken,
            ),
            (
                GOOD.replace("Connection: Upgrade, HTTP2-Settings", "Connection: Upgrade") + "\r\n",
                DeclineReason::ConnectionTokens,
            ),
            (
                format!("{GOOD}HTTP2-Settings: AAMAAABk\r\n\r\n"),
                DeclineReason::SettingsCount(2),
            ),
            (
                GOOD.replace("HTTP2-Settings: AAMAAABkAAQCAAAAAAIAAAAA\r\n", "") + "\r\n",
                DeclineReason::SettingsCount(0),
            ),
            (
                format!("{GOOD}Content-Length: 300000\r\n\r\n"),
                DeclineReason::BodyTooLarge {
                    limit: crate::config::DEFAULT_MAX_UPGRADE_BODY_SIZE,
                },
            ),
        ];
        let buffered = Config {
            stream_upgrade_body: false,
            ..cfg()
        };
        for (req, want) in cases {
            assert_eq!(check(&req, &buffered).unwrap_err(), want, "{req:?}");
        }
        // Streamed bodies have no size cap.
        let big = format!("{GOOD}Content-Length: 300000\r\n\r\n");
        assert!(check(&big, &cfg()).is_ok());
        let bad = GOOD.replace("AAMAAABkAAQCAAAAAAIAAAAA", "AAMAAAB+") + "\r\n";
        assert!(matches!(
            check(&bad, &cfg()),
            Err(DeclineReason::InvalidSettings(_))
        ));
        // ENABLE_PUSH = 2 is out of range.
        let bad = GOOD.replace("AAMAAABkAAQCAAAAAAIAAAAA", "AAIAAAAC") + "\r\n";
        assert!(matches!(
            check(&bad, &cfg()),
            Err(DeclineReason::InvalidSettings(_))
        ));
    }

    #[test]
    fn disabled_and_policy() {
        let h = format!("{GOOD}\r\n");
        let disabled = Config {
            h2c_upgrade: false,
            ..cfg()
        };
        assert_eq!(check(&h, &disabled).unwrap_err(), DeclineReason::Disabled);
        let policy: crate::config::Policy = std::sync::Arc::new(|p: &http::request::Parts| {
            if p.uri.path() == "/" {
                UpgradeDecision::decline("not here")
            } else {
                UpgradeDecision::Upgrade
            }
        });
        let declining = Config {
            policy: Some(policy),
            ..cfg()
        };
        assert_eq!(
            check(&h, &declining).unwrap_err(),
            DeclineReason::Policy("not here".into())
        );
    }
}
