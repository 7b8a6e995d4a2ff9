//! The cleartext upgrade to HTTP/2 (RFC 7540 §3.2, RFC 9110 §7.8).
//!
//! ```text
//!  client                                         server
//!    | GET / HTTP/1.1                                |
//!    | Connection: Upgrade, HTTP2-Settings           |
//!    | Upgrade: h2c                                  |
//!    | HTTP2-Settings: <base64url SETTINGS payload>  |
//!    | [Expect: 100-continue]                        |  every check, then the policy
//!    |---------------------------------------------->|  (h1::switch)
//!    |                          HTTP/1.1 100 Continue|  only if expected
//!    |<----------------------------------------------|
//!    | request body (Content-Length or chunked)      |  streamed to the service as it
//!    |---------------------------------------------->|  arrives; its response waits
//!    |                                               |  (bounded) for the last byte
//!    |  HTTP/1.1 101 Switching Protocols + SETTINGS  |  one write, after the body's
//!    |<----------------------------------------------|  last byte
//!    | PRI * HTTP/2.0 preface + SETTINGS             |  checked and removed
//!    |---------------------------------------------->|
//!    |           HEADERS/DATA on stream 1 (response) |  stream 1 = the request
//!    |<----------------------------------------------|
//!    | HEADERS on stream 3, 5, ...                   |  plain HTTP/2 from here
//! ```
//!
//! With [`stream_upgrade_body`](crate::Builder::stream_upgrade_body) off, the body
//! is instead read whole (bounded) before the `101`, and the service is called
//! when `h2` presents stream 1.
//!
//! Any check that fails before the `101`, a response that outgrows
//! [`max_upgrade_response_hold`](crate::Builder::max_upgrade_response_hold) while
//! the body still arrives, or a service that drops the body unread, answers the
//! request over HTTP/1.1 and keeps the connection on HTTP/1.1: nothing is lost.
//!
//! This layer holds what both protocols need of the switch, and knows neither:
//! [`handoff`] is what the HTTP/1.1 connection hands over (the transport, the
//! bytes `h2` is to read first, stream 1); [`settings`] decodes `HTTP2-Settings`;
//! [`stream1`] encodes the request as stream 1's HEADERS; and `h2` has no API for
//! stream 1, so [`adapter::UpgradeIo`] presents the upgraded socket to `h2` as if a
//! prior-knowledge client had sent the preface, the client's SETTINGS and the
//! request as HEADERS.
//!
//! The adapter relies on nothing of `h2`'s but what RFC 9113 requires of every
//! HTTP/2 server, so any `h2` release that keeps to the RFC will do:
//! - the server's first frame is its SETTINGS (§3.4): the `101` goes out in front
//!   of `h2`'s first write, whatever that write holds;
//! - the client preface comes first, then a SETTINGS frame, then any frame (§3.4):
//!   the synthesized preamble is exactly that, served in reads of any size;
//! - SETTINGS are acknowledged in the order they are received (§6.5.3), so the
//!   first SETTINGS ACK `h2` writes is the one for the synthesized SETTINGS,
//!   whenever it comes, and that is the one the adapter drops;
//! - a HEADERS frame with END_STREAM opens stream 1 half-closed (remote) (§5.1),
//!   the state RFC 7540 §3.2 gives the upgrade's request.
//!
//! `.ci/run` runs the tests and the interop matrix on the oldest and the newest
//! `h2` release the manifest allows.

pub(crate) mod adapter;
mod frame;
pub(crate) mod handoff;
pub(crate) mod settings;
pub(crate) mod stream1;
