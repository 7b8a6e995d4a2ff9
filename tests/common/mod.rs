//! The one support module of the integration tests and of the load generators
//! (`examples/h2c_load.rs` and `examples/ws_load.rs` include it with `#[path]`),
//! split by layer:
//!
//! - [`server`]: the server under test, `Builder::serve` on `127.0.0.1:0`, one
//!   connection over an in-memory pipe or one accepted loopback socket driven by
//!   `Builder::serve_connection`, and a builder with every timer far away;
//! - [`binary`]: the `h2c-mux` binary in its own process (integration tests only);
//! - [`service`]: services that record what the server handed them, and small
//!   fixed ones;
//! - [`h1`]: HTTP/1.1 responses as framed on the wire, parsed from bytes already
//!   read or read from a live connection, and the one check that a request is
//!   refused with a given status;
//! - [`h2frame`]: HTTP/2 frames as bytes, valid or not;
//! - [`h2raw`]: an HTTP/2 client driven frame by frame, with its own HPACK
//!   ([`hpack`]), for what the `h2` client cannot or will not do;
//! - [`h2client`]: the `h2` crate's client, a well-behaved HTTP/2 peer;
//! - [`h2c`]: the cleartext upgrade request and handshake;
//! - [`curl`]: the real curl, for the interoperability tests;
//! - [`log`]: what the server logs, captured;
//! - [`sha256`]: a digest written out, to check the demo's `/sha256` answers;
//! - [`tunnel`]: RFC 8441 tunnels: services that take one, the client's side;
//! - [`ws`]: the axum WebSocket echo app, served by the tests and the benchmark;
//! - `loadgen`: what the two load generators share: flags, counters, the idle
//!   modes' opening and `READY` line (load generators only).
//!
//! Every wait on the peer is bounded (by [`WAIT`] unless a test says otherwise), so a
//! hang fails the test instead of stalling the run.

// Each test binary uses a different part of this module.
#![allow(dead_code)]

// Cargo names the binary to integration tests only (`--test`, hence `cfg(test)`),
// not to the examples that share this module.
#[cfg(test)]
pub mod binary;
pub mod curl;
pub mod h1;
pub mod h2c;
pub mod h2client;
pub mod h2frame;
pub mod h2raw;
pub mod hpack;
pub mod log;
// The load generators' scaffolding; no test needs it (`cfg(test)` is set for
// integration tests, not for the examples).
#[cfg(not(test))]
pub mod loadgen;
pub mod server;
pub mod service;
pub mod sha256;
pub mod tunnel;
pub mod ws;

use std::future::Future;
use std::io;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt};

/// The bound on every wait for the peer: generous, so only a bug (a hang) reaches
/// it. Paused-clock tests wait up to 10 s of virtual time inside one bounded read
/// for a server timer to fire, so it must stay well above that.
pub const WAIT: Duration = Duration::from_secs(20);

/// Awaits `fut`, failing the test if it takes longer than [`WAIT`].
pub async fn within<F: Future>(what: &str, fut: F) -> F::Output {
    match tokio::time::timeout(WAIT, fut).await {
        Ok(out) => out,
        Err(_) => panic!("timed out after {WAIT:?} waiting for: {what}"),
    }
}

/// Reads until the peer closes the connection and returns what it sent; a reset
/// counts as the close (the server may close with unread input). Bounded by
/// [`WAIT`] as a whole.
pub async fn read_to_eof<T: AsyncRead + Unpin>(io: &mut T) -> Vec<u8> {
    let mut out = Vec::new();
    let closed = tokio::time::timeout(WAIT, async {
        let mut buf = [0u8; 16 * 1024];
        loop {
            match io.read(&mut buf).await {
                Ok(0) => break,
                Ok(n) => out.extend_from_slice(&buf[..n]),
                Err(e)
                    if e.kind() == io::ErrorKind::ConnectionReset
                        || e.kind() == io::ErrorKind::ConnectionAborted =>
                {
                    break
                }
                Err(e) => panic!("read error waiting for the connection to close: {e}"),
            }
        }
    })
    .await;
    assert!(
        closed.is_ok(),
        "connection was not closed within {WAIT:?}; got so far: {:?}",
        String::from_utf8_lossy(&out)
    );
    out
}
