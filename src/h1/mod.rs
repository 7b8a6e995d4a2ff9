//! HTTP/1.1: head parsing, body decoding, response encoding, and the connection.
//! Layers point one way: `parse`/`decode`/`encode` do no IO; `io` buffers output;
//! `conn` drives them.

pub(crate) mod conn;
pub(crate) mod decode;
pub(crate) mod encode;
pub(crate) mod io;
pub(crate) mod parse;
