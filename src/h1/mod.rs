//! HTTP/1.1: head parsing, body decoding, response encoding, and the connection.
//!
//! Layers point one way. `parse`, `decode` and `encode` do no IO; `io` buffers
//! output. The connection is split by phase: `state` holds it and its named
//! states, `cycle` is the loop between the phases, `dispatch` calls the service for one request, `respond`
//! writes the response, `feed` feeds the request body, and `switch` accepts an
//! upgrade and hands the connection over (through the upgrade layer's
//! [`Handoff`](crate::upgrade::handoff::Handoff); HTTP/1.1 knows nothing of HTTP/2).

mod cycle;
pub(crate) mod decode;
mod dispatch;
pub(crate) mod encode;
mod feed;
pub(crate) mod io;
pub(crate) mod parse;
mod respond;
pub(crate) mod state;
mod switch;
