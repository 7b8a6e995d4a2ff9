//! HTTP/1.1: head parsing, body decoding, response encoding, and the connection.
//!
//! Layers point one way. `parse`, `decode` and `encode` do no IO; `io` buffers
//! output. The connection is split by phase, each file importing only those
//! below it: `state` holds the connection and its named states; `feed` feeds the
//! request body; `dispatch` routes a request and calls the service; `respond`
//! writes the response; `switch` accepts an upgrade and hands the connection
//! over, through the upgrade layer's
//! [`Handoff`](crate::upgrade::handoff::Handoff) (HTTP/1.1 knows nothing of
//! HTTP/2); `cycle` is the loop between the phases.

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
