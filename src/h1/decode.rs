//! Request body decoding for HTTP/1.1: `Content-Length` and `chunked`
//! framing (RFC 9112 §6, §7).
//!
//! The decoder consumes bytes from the front of the connection's read buffer
//! and is incremental: input may be split at any byte boundary and decoding
//! the pieces gives the same result as decoding the whole. Bytes after the end
//! of the body are never consumed, because they belong to the next pipelined
//! request.
//!
//! # Smuggling defences (deliberate strictness)
//!
//! A body decoder that disagrees with a proxy in front of it about where a
//! message ends lets an attacker hide a second request inside the first one.
//! This decoder therefore accepts only the exact RFC 9112 §7.1 grammar:
//!
//! * Every line of chunked framing (size lines, the CRLF after chunk data,
//!   trailer field lines and the final empty line) must end with CRLF. A bare
//!   LF or a bare CR is an error, even though RFC 9112 §2.2 lets a recipient
//!   accept a bare LF: lenient line endings are a classic smuggling vector.
//! * Chunk data must be followed by exactly CRLF (§7.1).
//! * `chunk-size` is `1*HEXDIG`; no sign, no `0x`, no whitespace before it.
//!   A value that does not fit in a `u64` (more than 16 significant digits) is
//!   rejected instead of wrapping (§7.1 "MUST anticipate potentially large
//!   hexadecimal numerals"). Leading zeros are allowed, but a numeral longer
//!   than [`MAX_SIZE_DIGITS`] digits is rejected so that a size line stays
//!   bounded.
//! * Chunk extensions must match `*( BWS ";" BWS ext-name [ BWS "=" BWS
//!   ( token / quoted-string ) ] )` exactly (§7.1.1); whitespace is only
//!   allowed where `BWS` is. They are skipped, but their bytes (including
//!   `BWS`) count against [`ChunkedLimits::max_extensions`] for the whole
//!   message, because they never reach the application and would otherwise
//!   let a peer keep a connection busy forever without sending data.
//! * The trailer section is bounded in bytes and field count before its end
//!   arrives, and fields that would change framing, routing or the request's
//!   meaning if applied late are dropped (RFC 9110 §6.5.1, see
//!   [`DROPPED_TRAILERS`]).
//!
//! After an error the decoder stays failed and returns the same error again:
//! the connection must be closed because its framing is lost.

use bytes::{Buf, Bytes, BytesMut};
use http::{HeaderMap, HeaderName, HeaderValue};

/// Most digits accepted in one `chunk-size`, leading zeros included.
///
/// 16 digits are enough for any `u64`; the other 16 tolerate zero padding,
/// which some senders use for fixed-width size lines. Without a cap, leading
/// zeros would make a size line unbounded.
pub(crate) const MAX_SIZE_DIGITS: usize = 32;

/// Trailer fields that are dropped (RFC 9110 §6.5.1): their evaluation is
/// needed before the content is processed, so honouring them after the body
/// would let a peer change what was already decided, or confuse an
/// intermediary that forwards them into a header section.
///
/// * message framing: `content-length`, `transfer-encoding`, `trailer`, `te`
/// * connection management: `connection`, `keep-alive`, `proxy-connection`,
///   `upgrade`, `http2-settings`
/// * routing: `host`, `max-forwards`
/// * request modifiers and controls: `expect`, `range`, `if-match`,
///   `if-none-match`, `if-modified-since`, `if-unmodified-since`,
///   `if-range`, `cache-control`, `pragma`
/// * authentication and state: `authorization`, `proxy-authorization`,
///   `cookie`
/// * content format: `content-type`, `content-encoding`, `content-range`
pub(crate) const DROPPED_TRAILERS: &[&str] = &[
    "content-length",
    "transfer-encoding",
    "trailer",
    "te",
    "connection",
    "keep-alive",
    "proxy-connection",
    "upgrade",
    "http2-settings",
    "host",
    "max-forwards",
    "expect",
    "range",
    "if-match",
    "if-none-match",
    "if-modified-since",
    "if-unmodified-since",
    "if-range",
    "cache-control",
    "pragma",
    "authorization",
    "proxy-authorization",
    "cookie",
    "content-type",
    "content-encoding",
    "content-range",
];

/// Limits for chunked framing metadata.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ChunkedLimits {
    /// Total chunk-extension bytes (including `BWS`) in one message.
    pub(crate) max_extensions: usize,
    /// Bytes of the trailer field lines (with their CRLFs, without the final
    /// empty line).
    pub(crate) max_trailer_size: usize,
    /// Trailer field count.
    pub(crate) max_trailers: usize,
}

impl Default for ChunkedLimits {
    /// * `max_extensions` 4096: no common client sends chunk extensions, so
    ///   4 KiB per message is ample for the few that do, while it stops a peer
    ///   from streaming metadata that is never delivered.
    /// * `max_trailer_size` 8192: trailers are rare and small (checksums,
    ///   timing); 8 KiB matches the header-section size many servers accept
    ///   and bounds what is buffered before the section ends.
    /// * `max_trailers` 64: bounds the parse and the `HeaderMap`; real
    ///   messages carry a handful of trailers at most.
    fn default() -> Self {
        ChunkedLimits {
            max_extensions: 4096,
            max_trailer_size: 8192,
            max_trailers: 64,
        }
    }
}

/// One step of decoded body.
#[derive(Debug, PartialEq)]
pub(crate) enum Decoded {
    /// Body bytes; never empty.
    Data(Bytes),
    /// The trailer fields that were kept; never empty.
    Trailers(HeaderMap),
    /// The body (and trailer section) is complete.
    End,
}

/// Why a body could not be decoded; the connection's framing is lost.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum DecodeError {
    /// `chunk-size` is empty, has a non-hex character, or is too long.
    InvalidChunkSize,
    /// `chunk-size` does not fit in a `u64`.
    ChunkSizeOverflow,
    /// A chunk extension does not match the RFC 9112 §7.1.1 grammar.
    InvalidChunkExtension,
    /// A line did not end with CRLF (bare CR, bare LF, or junk after data).
    MissingCrlf,
    /// Chunk extensions exceeded [`ChunkedLimits::max_extensions`].
    ExtensionsTooLong,
    /// The trailer section exceeded [`ChunkedLimits::max_trailer_size`].
    TrailersTooLarge,
    /// The trailer section has more than [`ChunkedLimits::max_trailers`]
    /// fields.
    TooManyTrailers,
    /// A trailer field line is malformed.
    InvalidTrailer,
}

impl std::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            DecodeError::InvalidChunkSize => "invalid chunk size",
            DecodeError::ChunkSizeOverflow => "chunk size overflow",
            DecodeError::InvalidChunkExtension => "invalid chunk extension",
            DecodeError::MissingCrlf => "missing crlf in chunked framing",
            DecodeError::ExtensionsTooLong => "chunk extensions too long",
            DecodeError::TrailersTooLarge => "trailer section too large",
            DecodeError::TooManyTrailers => "too many trailer fields",
            DecodeError::InvalidTrailer => "invalid trailer field",
        })
    }
}

impl std::error::Error for DecodeError {}

/// Incremental request body decoder.
#[derive(Debug)]
pub(crate) struct Decoder {
    kind: Kind,
}

#[derive(Debug)]
enum Kind {
    /// `Content-Length`: bytes still to come.
    Length(u64),
    Chunked(Chunked),
}

/// State of a chunked body.
#[derive(Debug)]
struct Chunked {
    limits: ChunkedLimits,
    state: ChunkState,
    /// Extension bytes seen so far in this message.
    ext_used: usize,
    /// Set once framing is broken; returned again on every later call.
    failed: Option<DecodeError>,
}

#[derive(Debug)]
enum ChunkState {
    /// Inside a size line (`chunk-size [ chunk-ext ] CRLF`).
    Size(SizeLine),
    /// Inside chunk data; bytes still to come (never 0).
    Data(u64),
    /// Expecting the CR after chunk data.
    DataCr,
    /// Expecting the LF after chunk data.
    DataLf,
    /// After last-chunk: the trailer section is kept in the buffer until its
    /// empty line arrives. `scanned` bytes of it were already checked,
    /// `line_start` is where the current field line begins, `fields` counts
    /// the complete field lines.
    Trailers {
        scanned: usize,
        line_start: usize,
        fields: usize,
    },
    /// Body and trailers consumed.
    End,
}

/// Progress through one size line; consumed byte by byte so nothing of it
/// has to stay in the buffer.
#[derive(Debug, Default)]
struct SizeLine {
    value: u64,
    digits: usize,
    at: LinePos,
}

/// Position in `chunk-size [ chunk-ext ] CRLF` (RFC 9112 §7.1, §7.1.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum LinePos {
    /// In `1*HEXDIG`.
    #[default]
    Digits,
    /// In `BWS` that must be followed by `;`.
    BwsBeforeSemi,
    /// After `;`, in `BWS` before the name.
    BwsBeforeName,
    /// In `chunk-ext-name`.
    Name,
    /// In `BWS` after the name; `=` or `;` must follow.
    BwsAfterName,
    /// After `=`, in `BWS` before the value.
    BwsBeforeValue,
    /// In a token value.
    Token,
    /// Inside a quoted-string.
    Quoted,
    /// After a backslash inside a quoted-string.
    QuotedPair,
    /// After the closing quote.
    AfterQuoted,
    /// After CR; LF must follow.
    Lf,
}

impl Decoder {
    /// A body of exactly n bytes (Content-Length).
    pub(crate) fn length(n: u64) -> Decoder {
        Decoder {
            kind: Kind::Length(n),
        }
    }

    /// A chunked body (Transfer-Encoding: chunked).
    pub(crate) fn chunked(limits: ChunkedLimits) -> Decoder {
        Decoder {
            kind: Kind::Chunked(Chunked {
                limits,
                state: ChunkState::Size(SizeLine::default()),
                ext_used: 0,
                failed: None,
            }),
        }
    }

    /// Decodes the next piece from the front of buf, consuming the bytes it used.
    /// Ok(None): more bytes are needed (everything usable in buf was consumed or kept for the next call).
    /// Data is handed out zero-copy (buf.split_to(n).freeze()), as much as is available up to the end of the current chunk / the remaining length.
    /// After the body is complete it returns Some(End) — for chunked with trailers, Some(Trailers(..)) first, then Some(End); for every later call Some(End) again without consuming anything.
    /// Bytes after the end of the body are never consumed (they are the next pipelined request).
    /// Err: the chunked framing is broken (see the module docs) and the
    /// connection must be closed; later calls return the same error.
    pub(crate) fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Decoded>, DecodeError> {
        match &mut self.kind {
            Kind::Length(remaining) => Ok(decode_length(remaining, buf)),
            Kind::Chunked(chunked) => chunked.decode(buf),
        }
    }

    /// True once the whole body (and trailers) has been consumed.
    pub(crate) fn is_end(&self) -> bool {
        match &self.kind {
            Kind::Length(remaining) => *remaining == 0,
            Kind::Chunked(chunked) => matches!(chunked.state, ChunkState::End),
        }
    }

    /// For Content-Length bodies, the bytes still to come; None for chunked.
    pub(crate) fn remaining(&self) -> Option<u64> {
        match &self.kind {
            Kind::Length(remaining) => Some(*remaining),
            Kind::Chunked(_) => None,
        }
    }

    /// Body bytes certain to come before anything else: the rest of the
    /// Content-Length, or of the chunk being read (0 between chunks). A read of
    /// that many bytes cannot take anything past the body.
    pub(crate) fn data_due(&self) -> u64 {
        match &self.kind {
            Kind::Length(remaining) => *remaining,
            Kind::Chunked(Chunked {
                state: ChunkState::Data(remaining),
                ..
            }) => *remaining,
            Kind::Chunked(_) => 0,
        }
    }
}

/// Hands out up to `remaining` bytes from the front of `buf` (RFC 9112 §6.2).
fn decode_length(remaining: &mut u64, buf: &mut BytesMut) -> Option<Decoded> {
    if *remaining == 0 {
        return Some(Decoded::End);
    }
    let data = take_data(remaining, buf)?;
    Some(Decoded::Data(data))
}

/// Splits off `min(remaining, buf.len())` bytes (None if that is 0) and
/// decreases `remaining` by that much.
fn take_data(remaining: &mut u64, buf: &mut BytesMut) -> Option<Bytes> {
    // If `remaining` does not fit in usize it is larger than any buffer.
    let n = usize::try_from(*remaining).map_or(buf.len(), |r| r.min(buf.len()));
    if n == 0 {
        return None;
    }
    // n <= remaining, so this never saturates; u64 holds any usize here.
    *remaining = remaining.saturating_sub(u64::try_from(n).unwrap_or(u64::MAX));
    Some(buf.split_to(n).freeze())
}

impl Chunked {
    fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Decoded>, DecodeError> {
        if let Some(err) = &self.failed {
            return Err(err.clone());
        }
        let result = self.step(buf);
        if let Err(err) = &result {
            self.failed = Some(err.clone());
        }
        result
    }

    fn step(&mut self, buf: &mut BytesMut) -> Result<Option<Decoded>, DecodeError> {
        loop {
            match &mut self.state {
                ChunkState::Size(line) => {
                    let (used, size) =
                        line.feed(buf, &mut self.ext_used, self.limits.max_extensions)?;
                    buf.advance(used);
                    match size {
                        None => return Ok(None),
                        // last-chunk: the trailer section follows (§7.1.2).
                        Some(0) => {
                            self.state = ChunkState::Trailers {
                                scanned: 0,
                                line_start: 0,
                                fields: 0,
                            }
                        }
                        Some(n) => self.state = ChunkState::Data(n),
                    }
                }
                ChunkState::Data(remaining) => {
                    let Some(data) = take_data(remaining, buf) else {
                        return Ok(None);
                    };
                    if *remaining == 0 {
                        self.state = ChunkState::DataCr;
                    }
                    return Ok(Some(Decoded::Data(data)));
                }
                // chunk-data is followed by exactly CRLF (§7.1).
                ChunkState::DataCr => match buf.first() {
                    None => return Ok(None),
                    Some(b'\r') => {
                        buf.advance(1);
                        self.state = ChunkState::DataLf;
                    }
                    Some(_) => return Err(DecodeError::MissingCrlf),
                },
                ChunkState::DataLf => match buf.first() {
                    None => return Ok(None),
                    Some(b'\n') => {
                        buf.advance(1);
                        self.state = ChunkState::Size(SizeLine::default());
                    }
                    Some(_) => return Err(DecodeError::MissingCrlf),
                },
                ChunkState::Trailers {
                    scanned,
                    line_start,
                    fields,
                } => {
                    let Some(end) = scan_trailers(buf, scanned, line_start, fields, &self.limits)?
                    else {
                        return Ok(None);
                    };
                    let count = *fields;
                    let section = buf.split_to(end);
                    let trailers = parse_trailers(&section, count)?;
                    self.state = ChunkState::End;
                    return Ok(Some(if trailers.is_empty() {
                        Decoded::End
                    } else {
                        Decoded::Trailers(trailers)
                    }));
                }
                ChunkState::End => return Ok(Some(Decoded::End)),
            }
        }
    }
}

impl SizeLine {
    /// Consumes size-line bytes from the front of `bytes`. Returns how many
    /// were used and, once the line's CRLF has been read, the chunk size.
    fn feed(
        &mut self,
        bytes: &[u8],
        ext_used: &mut usize,
        max_extensions: usize,
    ) -> Result<(usize, Option<u64>), DecodeError> {
        for (i, &b) in bytes.iter().enumerate() {
            if let (LinePos::Digits, Some(digit)) = (self.at, hex_value(b)) {
                // Checked arithmetic: more than 16 significant digits do not
                // fit in a u64 and must not wrap (RFC 9112 §7.1).
                self.value = self
                    .value
                    .checked_mul(16)
                    .and_then(|v| v.checked_add(digit))
                    .ok_or(DecodeError::ChunkSizeOverflow)?;
                self.digits = self.digits.saturating_add(1);
                if self.digits > MAX_SIZE_DIGITS {
                    return Err(DecodeError::InvalidChunkSize);
                }
                continue;
            }
            let next = match (self.at, b) {
                // chunk-size is 1*HEXDIG: an empty size is an error.
                (LinePos::Digits, _) if self.digits == 0 => {
                    return Err(DecodeError::InvalidChunkSize)
                }
                (LinePos::Digits, b';') => LinePos::BwsBeforeName,
                (LinePos::Digits, b' ' | b'\t') => LinePos::BwsBeforeSemi,
                (LinePos::Digits, b'\r') => LinePos::Lf,
                (LinePos::Digits, b'\n') => return Err(DecodeError::MissingCrlf),
                (LinePos::Digits, _) => return Err(DecodeError::InvalidChunkSize),

                (LinePos::BwsBeforeSemi, b' ' | b'\t') => LinePos::BwsBeforeSemi,
                (LinePos::BwsBeforeSemi, b';') => LinePos::BwsBeforeName,

                (LinePos::BwsBeforeName, b' ' | b'\t') => LinePos::BwsBeforeName,
                (LinePos::BwsBeforeName, _) if is_tchar(b) => LinePos::Name,

                (LinePos::Name, _) if is_tchar(b) => LinePos::Name,
                (LinePos::Name, b' ' | b'\t') => LinePos::BwsAfterName,
                (LinePos::Name, b'=') => LinePos::BwsBeforeValue,
                (LinePos::Name, b';') => LinePos::BwsBeforeName,
                (LinePos::Name, b'\r') => LinePos::Lf,

                (LinePos::BwsAfterName, b' ' | b'\t') => LinePos::BwsAfterName,
                (LinePos::BwsAfterName, b'=') => LinePos::BwsBeforeValue,
                (LinePos::BwsAfterName, b';') => LinePos::BwsBeforeName,

                (LinePos::BwsBeforeValue, b' ' | b'\t') => LinePos::BwsBeforeValue,
                (LinePos::BwsBeforeValue, b'"') => LinePos::Quoted,
                (LinePos::BwsBeforeValue, _) if is_tchar(b) => LinePos::Token,

                (LinePos::Token, _) if is_tchar(b) => LinePos::Token,
                (LinePos::Token, b' ' | b'\t') => LinePos::BwsBeforeSemi,
                (LinePos::Token, b';') => LinePos::BwsBeforeName,
                (LinePos::Token, b'\r') => LinePos::Lf,

                // quoted-string (RFC 9110 §5.6.4).
                (LinePos::Quoted, b'"') => LinePos::AfterQuoted,
                (LinePos::Quoted, b'\\') => LinePos::QuotedPair,
                (LinePos::Quoted, _) if is_qdtext(b) => LinePos::Quoted,
                (LinePos::QuotedPair, _) if is_quoted_pair_char(b) => LinePos::Quoted,

                (LinePos::AfterQuoted, b' ' | b'\t') => LinePos::BwsBeforeSemi,
                (LinePos::AfterQuoted, b';') => LinePos::BwsBeforeName,
                (LinePos::AfterQuoted, b'\r') => LinePos::Lf,

                (LinePos::Lf, b'\n') => {
                    let size = self.value;
                    *self = SizeLine::default();
                    return Ok((i.saturating_add(1), Some(size)));
                }
                (LinePos::Lf, _) => return Err(DecodeError::MissingCrlf),

                // A bare LF is a line-ending error wherever it appears; a CR
                // where the grammar does not allow the line to end is a
                // malformed extension.
                (_, b'\n') => return Err(DecodeError::MissingCrlf),
                _ => return Err(DecodeError::InvalidChunkExtension),
            };
            // Every byte between the digits and the CR belongs to chunk-ext
            // (including BWS) and counts against the per-message budget.
            if !matches!(next, LinePos::Digits | LinePos::Lf) {
                *ext_used = ext_used.saturating_add(1);
                if *ext_used > max_extensions {
                    return Err(DecodeError::ExtensionsTooLong);
                }
            }
            self.at = next;
        }
        Ok((bytes.len(), None))
    }
}

/// Scans the not-yet-checked part of the trailer section kept at the front of
/// `buf` (RFC 9112 §7.1.2). Returns the section's length, final empty line
/// included, once that line has arrived.
///
/// Checks line endings and limits as bytes arrive, so an oversized or
/// malformed section fails before its end instead of being buffered.
fn scan_trailers(
    buf: &[u8],
    scanned: &mut usize,
    line_start: &mut usize,
    fields: &mut usize,
    limits: &ChunkedLimits,
) -> Result<Option<usize>, DecodeError> {
    let max = limits.max_trailer_size;
    let mut i = *scanned;
    while let Some(&b) = buf.get(i) {
        let after = i.saturating_add(1);
        match b {
            // CR at the start of a line: the final empty line, or an error.
            b'\r' if i == *line_start => match buf.get(after) {
                // Cannot tell a CRLF from a bare CR yet.
                None => break,
                Some(b'\n') => return Ok(Some(after.saturating_add(1))),
                Some(_) => return Err(DecodeError::MissingCrlf),
            },
            b'\r' => {
                // The field lines are at least this long, whatever follows.
                if after.saturating_add(1) > max {
                    return Err(DecodeError::TrailersTooLarge);
                }
                match buf.get(after) {
                    None => break,
                    Some(b'\n') => {
                        *fields = fields.saturating_add(1);
                        if *fields > limits.max_trailers {
                            return Err(DecodeError::TooManyTrailers);
                        }
                        i = after.saturating_add(1);
                        *line_start = i;
                        continue;
                    }
                    Some(_) => return Err(DecodeError::MissingCrlf),
                }
            }
            b'\n' => return Err(DecodeError::MissingCrlf),
            _ => {
                // Byte i is inside a field line that still needs its CRLF,
                // so the field lines are at least i + 3 bytes long: fail now
                // rather than buffer more.
                if i.saturating_add(3) > max {
                    return Err(DecodeError::TrailersTooLarge);
                }
            }
        }
        i = after;
    }
    *scanned = i;
    Ok(None)
}

/// Parses a complete trailer section of `count` field lines and drops the
/// fields in [`DROPPED_TRAILERS`].
fn parse_trailers(section: &[u8], count: usize) -> Result<HeaderMap, DecodeError> {
    let mut map = HeaderMap::new();
    if count == 0 {
        return Ok(map);
    }
    // `count` is bounded by max_trailers and by the section size, and each
    // CRLF-terminated line is one field since obs-fold is rejected.
    let mut slots = vec![httparse::EMPTY_HEADER; count];
    let parsed = match httparse::parse_headers(section, &mut slots) {
        Ok(httparse::Status::Complete((len, parsed))) if len == section.len() => parsed,
        _ => return Err(DecodeError::InvalidTrailer),
    };
    for field in parsed {
        let name = HeaderName::from_bytes(field.name.as_bytes())
            .map_err(|_| DecodeError::InvalidTrailer)?;
        let value =
            HeaderValue::from_bytes(field.value).map_err(|_| DecodeError::InvalidTrailer)?;
        if DROPPED_TRAILERS.contains(&name.as_str()) {
            continue;
        }
        map.append(name, value);
    }
    Ok(map)
}

/// Value of a HEXDIG (either case), or None.
fn hex_value(b: u8) -> Option<u64> {
    char::from(b).to_digit(16).map(u64::from)
}

/// `tchar` (RFC 9110 §5.6.2).
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// `qdtext` (RFC 9110 §5.6.4): HTAB / SP / %x21 / %x23-5B / %x5D-7E / obs-text.
fn is_qdtext(b: u8) -> bool {
    matches!(b, b'\t' | b' ' | 0x21 | 0x23..=0x5B | 0x5D..=0x7E | 0x80..=0xFF)
}

/// The escaped character of a `quoted-pair` (RFC 9110 §5.6.4):
/// HTAB / SP / VCHAR / obs-text.
fn is_quoted_pair_char(b: u8) -> bool {
    matches!(b, b'\t' | b' ' | 0x21..=0x7E | 0x80..=0xFF)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SUFFIX: &[u8] = b"GET /next HTTP/1.1\r\nHost: x\r\n\r\n";

    /// Everything one message decodes to.
    #[derive(Debug, Default, PartialEq)]
    struct Outcome {
        data: Vec<u8>,
        trailers: Option<HeaderMap>,
        end: bool,
        error: Option<DecodeError>,
    }

    /// Calls `decode` until it needs more bytes, ends or fails.
    fn drain(dec: &mut Decoder, buf: &mut BytesMut, out: &mut Outcome) {
        loop {
            match dec.decode(buf) {
                Ok(None) => return,
                Ok(Some(Decoded::Data(d))) => {
                    assert!(!d.is_empty(), "empty data");
                    out.data.extend_from_slice(&d);
                }
                Ok(Some(Decoded::Trailers(t))) => {
                    assert!(out.trailers.is_none(), "trailers twice");
                    assert!(!t.is_empty(), "empty trailers");
                    out.trailers = Some(t);
                }
                Ok(Some(Decoded::End)) => {
                    out.end = true;
                    assert!(dec.is_end());
                    return;
                }
                Err(e) => {
                    out.error = Some(e);
                    return;
                }
            }
        }
    }

    /// Feeds `pieces` one after the other; returns the outcome and what is
    /// left in the buffer.
    fn feed(mut dec: Decoder, pieces: &[&[u8]]) -> (Outcome, BytesMut) {
        let mut out = Outcome::default();
        let mut buf = BytesMut::new();
        for piece in pieces {
            buf.extend_from_slice(piece);
            // Keeps calling after End: that must not consume anything more.
            drain(&mut dec, &mut buf, &mut out);
            if out.error.is_some() {
                break;
            }
        }
        (out, buf)
    }

    fn map(fields: &[(&str, &str)]) -> Option<HeaderMap> {
        if fields.is_empty() {
            return None;
        }
        let mut m = HeaderMap::new();
        for (k, v) in fields {
            m.append(
                HeaderName::from_bytes(k.as_bytes()).expect("name"),
                HeaderValue::from_str(v).expect("value"),
            );
        }
        Some(m)
    }

    #[test]
    fn content_length() {
        // (length, input, data, end, left in buffer)
        type Case = (u64, &'static [u8], &'static [u8], bool, &'static [u8]);
        let cases: &[Case] = &[
            (0, b"", b"", true, b""),
            (0, b"GET", b"", true, b"GET"),
            (5, b"hello", b"hello", true, b""),
            (5, b"hel", b"hel", false, b""),
            (5, b"", b"", false, b""),
            (
                5,
                b"helloGET / HTTP/1.1\r\n",
                b"hello",
                true,
                b"GET / HTTP/1.1\r\n",
            ),
        ];
        for &(n, input, data, end, left) in cases {
            let (out, buf) = feed(Decoder::length(n), &[input]);
            assert_eq!(out.data, data, "n={n} input={input:?}");
            assert_eq!(out.end, end, "n={n} input={input:?}");
            assert_eq!(out.error, None);
            assert_eq!(&buf[..], left, "n={n} input={input:?}");
        }
    }

    #[test]
    fn content_length_remaining_and_repeated_end() {
        let mut dec = Decoder::length(10);
        assert_eq!(dec.remaining(), Some(10));
        let mut buf = BytesMut::from(&b"0123"[..]);
        assert_eq!(
            dec.decode(&mut buf),
            Ok(Some(Decoded::Data(Bytes::from_static(b"0123"))))
        );
        assert_eq!(dec.remaining(), Some(6));
        assert!(!dec.is_end());
        buf.extend_from_slice(b"456789NEXT");
        assert_eq!(
            dec.decode(&mut buf),
            Ok(Some(Decoded::Data(Bytes::from_static(b"456789"))))
        );
        assert_eq!(dec.remaining(), Some(0));
        assert!(dec.is_end());
        for _ in 0..3 {
            assert_eq!(dec.decode(&mut buf), Ok(Some(Decoded::End)));
            assert_eq!(&buf[..], b"NEXT");
        }
        assert_eq!(Decoder::chunked(ChunkedLimits::default()).remaining(), None);
    }

    /// What a read may take without reaching past the body: the rest of the
    /// Content-Length, or of the chunk under way, and nothing while framing is due.
    #[test]
    fn data_due_never_reaches_past_the_body() {
        let mut dec = Decoder::length(10);
        assert_eq!(dec.data_due(), 10);
        let mut buf = BytesMut::from(&b"0123"[..]);
        let _ = dec.decode(&mut buf);
        assert_eq!(dec.data_due(), 6);
        buf.extend_from_slice(b"456789");
        let _ = dec.decode(&mut buf);
        assert_eq!(dec.data_due(), 0);

        // (bytes fed so far, what is due after them)
        let message = b"a;x=1\r\n0123456789\r\n3\r\nabc\r\n0\r\n\r\n";
        let cases: [(usize, u64); 9] = [
            (0, 0),
            (3, 0),  // inside the size line
            (7, 10), // size line read: the whole chunk is due
            (10, 7), // three bytes of it read
            (17, 0), // the chunk read; its CRLF is framing
            (22, 3), // the next size line read
            (25, 0), // that chunk read
            (30, 0), // the last-chunk read: trailers are framing
            (32, 0), // the end
        ];
        for (fed, due) in cases {
            let mut dec = Decoder::chunked(ChunkedLimits::default());
            let mut buf = BytesMut::from(&message[..fed]);
            let mut out = Outcome::default();
            drain(&mut dec, &mut buf, &mut out);
            assert_eq!(dec.data_due(), due, "after {fed} bytes");
        }
    }

    #[test]
    fn content_length_huge() {
        let (out, buf) = feed(Decoder::length(u64::MAX), &[b"abc"]);
        assert_eq!(out.data, b"abc");
        assert!(!out.end);
        assert!(buf.is_empty());
    }

    /// A valid chunked message: (name, input, data, trailers kept).
    type ValidCase = (
        &'static str,
        &'static [u8],
        &'static [u8],
        &'static [(&'static str, &'static str)],
    );

    const VALID: &[ValidCase] = &[
        ("empty", b"0\r\n\r\n", b"", &[]),
        ("simple", b"5\r\nhello\r\n0\r\n\r\n", b"hello", &[]),
        (
            "multi",
            b"5\r\nhello\r\n1\r\n \r\n6\r\nworld!\r\n0\r\n\r\n",
            b"hello world!",
            &[],
        ),
        (
            "hex",
            b"a\r\n0123456789\r\nA\r\nabcdefghij\r\n0\r\n\r\n",
            b"0123456789abcdefghij",
            &[],
        ),
        ("uppercase hex", b"1F\r\n0123456789abcdefghijklmnopqrstu\r\n0\r\n\r\n", b"0123456789abcdefghijklmnopqrstu", &[]),
        ("leading zeros", b"0003\r\nabc\r\n000\r\n\r\n", b"abc", &[]),
        (
            "32 digits",
            b"00000000000000000000000000000002\r\nab\r\n0\r\n\r\n",
            b"ab",
            &[],
        ),
        ("data with crlf inside", b"4\r\n\r\n\r\n\r\n0\r\n\r\n", b"\r\n\r\n", &[]),
        ("extension name", b"3;foo\r\nabc\r\n0;bar\r\n\r\n", b"abc", &[]),
        (
            "extensions",
            b"3 ; a = b ;c;d=\"q \\\" ;\\\\ x\"\t;e\r\nabc\r\n0;last=\"\"\r\n\r\n",
            b"abc",
            &[],
        ),
        (
            // Every separator after each kind of extension part.
            "extension separators",
            b"1;a  \t= bc;d ;e=\"f\";g=hi\t;j\r\nx\r\n0\r\n\r\n",
            b"x",
            &[],
        ),
        (
            "trailers",
            b"3\r\nabc\r\n0\r\nChecksum: deadbeef\r\nX-Timing:  12ms \r\nx-timing: 3ms\r\n\r\n",
            b"abc",
            &[("checksum", "deadbeef"), ("x-timing", "12ms"), ("x-timing", "3ms")],
        ),
        (
            "dropped trailers",
            b"1\r\nx\r\n0\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\nHost: evil\r\nKeep: me\r\nTE: trailers\r\nTrailer: a\r\nConnection: close\r\n\r\n",
            b"x",
            &[("keep", "me")],
        ),
        (
            "only dropped trailers",
            b"1\r\nx\r\n0\r\ncontent-length: 5\r\nhost: a\r\n\r\n",
            b"x",
            &[],
        ),
        ("empty trailer value", b"0\r\nx-empty:\r\n\r\n", b"", &[("x-empty", "")]),
    ];

    #[test]
    fn chunked_valid() {
        for &(name, input, data, trailers) in VALID {
            for suffix in [&b""[..], SUFFIX] {
                let mut whole = input.to_vec();
                whole.extend_from_slice(suffix);
                let (out, buf) = feed(Decoder::chunked(ChunkedLimits::default()), &[&whole]);
                assert_eq!(out.error, None, "{name}");
                assert_eq!(out.data, data, "{name}");
                assert_eq!(out.trailers, map(trailers), "{name}");
                assert!(out.end, "{name}");
                assert_eq!(&buf[..], suffix, "{name}");
            }
        }
    }

    #[test]
    fn chunked_split_anywhere() {
        for &(name, input, data, trailers) in VALID {
            let mut whole = input.to_vec();
            whole.extend_from_slice(SUFFIX);
            let expected = Outcome {
                data: data.to_vec(),
                trailers: map(trailers),
                end: true,
                error: None,
            };
            let new = || Decoder::chunked(ChunkedLimits::default());
            let (out, buf) = feed(new(), &[&whole]);
            assert_eq!(out, expected, "{name}: whole");
            assert_eq!(&buf[..], SUFFIX, "{name}: whole");
            for at in 0..=whole.len() {
                let (a, b) = whole.split_at(at);
                let (out, buf) = feed(new(), &[a, b]);
                assert_eq!(out, expected, "{name}: split at {at}");
                assert_eq!(&buf[..], SUFFIX, "{name}: split at {at}");
            }
            let bytes: Vec<&[u8]> = whole.chunks(1).collect();
            let (out, buf) = feed(new(), &bytes);
            assert_eq!(out, expected, "{name}: byte by byte");
            assert_eq!(&buf[..], SUFFIX, "{name}: byte by byte");
        }
    }

    #[test]
    fn chunked_errors() {
        let small = ChunkedLimits {
            max_extensions: 8,
            max_trailer_size: 16,
            max_trailers: 2,
        };
        let def = ChunkedLimits::default();
        use DecodeError::*;
        // (name, limits, input, error)
        let cases: &[(&str, ChunkedLimits, &[u8], DecodeError)] = &[
            ("empty size", def, b"\r\n", InvalidChunkSize),
            ("empty size with ext", def, b";a\r\n", InvalidChunkSize),
            ("non-hex", def, b"g\r\n", InvalidChunkSize),
            ("non-hex after digit", def, b"1g\r\n", InvalidChunkSize),
            ("sign", def, b"+1\r\n", InvalidChunkSize),
            ("0x prefix", def, b"0x1\r\n", InvalidChunkSize),
            ("leading space", def, b" 1\r\n", InvalidChunkSize),
            ("space without ext", def, b"1 \r\n", InvalidChunkExtension),
            (
                "too many digits",
                def,
                b"000000000000000000000000000000001\r\n",
                InvalidChunkSize,
            ),
            ("overflow", def, b"10000000000000000\r\n", ChunkSizeOverflow),
            (
                "overflow ff",
                def,
                b"fffffffffffffffff\r\n",
                ChunkSizeOverflow,
            ),
            ("bare lf after size", def, b"1\nx\r\n0\r\n\r\n", MissingCrlf),
            ("bare cr after size", def, b"1\rx\r\n0\r\n\r\n", MissingCrlf),
            ("bare lf after data", def, b"1\r\nx\n0\r\n\r\n", MissingCrlf),
            ("bare cr after data", def, b"1\r\nx\r0\r\n\r\n", MissingCrlf),
            (
                "no crlf after data",
                def,
                b"1\r\nxy\r\n0\r\n\r\n",
                MissingCrlf,
            ),
            ("bare lf after last chunk", def, b"0\n\r\n", MissingCrlf),
            ("bare lf in extension", def, b"1;a\nx\r\n", MissingCrlf),
            ("bare cr in extension", def, b"1;a=b\rx\r\n", MissingCrlf),
            ("bare lf ends trailers", def, b"0\r\n\n", MissingCrlf),
            ("bare lf in trailer", def, b"0\r\na: b\n\r\n", MissingCrlf),
            (
                "bare cr in trailer",
                def,
                b"0\r\na: b\rc\r\n\r\n",
                MissingCrlf,
            ),
            (
                "bare cr ends trailers",
                def,
                b"0\r\na: b\r\n\rx",
                MissingCrlf,
            ),
            ("ext no name", def, b"1;\r\nx\r\n", InvalidChunkExtension),
            (
                "ext bad name",
                def,
                b"1;a@b\r\nx\r\n",
                InvalidChunkExtension,
            ),
            ("ext no value", def, b"1;a=\r\nx\r\n", InvalidChunkExtension),
            (
                "ext space after name",
                def,
                b"1;a \r\nx\r\n",
                InvalidChunkExtension,
            ),
            (
                "ext space after value",
                def,
                b"1;a=b \r\nx\r\n",
                InvalidChunkExtension,
            ),
            (
                "ext junk after quote",
                def,
                b"1;a=\"b\"c\r\nx\r\n",
                InvalidChunkExtension,
            ),
            (
                "ext cr in quote",
                def,
                b"1;a=\"b\r\n\"\r\nx\r\n",
                InvalidChunkExtension,
            ),
            (
                "ext ctl in quote",
                def,
                b"1;a=\"\x01\"\r\nx\r\n",
                InvalidChunkExtension,
            ),
            (
                "ext ctl in pair",
                def,
                b"1;a=\"\\\x01\"\r\nx\r\n",
                InvalidChunkExtension,
            ),
            (
                "ext too long",
                small,
                b"1;abcdefgh\r\nx\r\n",
                ExtensionsTooLong,
            ),
            (
                "ext too long across chunks",
                small,
                b"1;abcd\r\nx\r\n1;abc\r\ny\r\n0\r\n\r\n",
                ExtensionsTooLong,
            ),
            (
                "ext bws counts",
                small,
                b"1        ;a\r\nx\r\n",
                ExtensionsTooLong,
            ),
            (
                "trailers too large",
                small,
                b"0\r\nx-a: 0123456789abc\r\n\r\n",
                TrailersTooLarge,
            ),
            (
                "trailers too large unterminated",
                small,
                b"0\r\nx-a: 0123456789abcdefghijklmnopqrstuvwxyz",
                TrailersTooLarge,
            ),
            (
                "17 trailer bytes",
                small,
                b"0\r\nx-a: 0123456789\r\n\r\n",
                TrailersTooLarge,
            ),
            (
                "17 trailer bytes in two lines",
                small,
                b"0\r\na: 0123\r\nb: 012\r\n\r\n",
                TrailersTooLarge,
            ),
            (
                "too many trailers",
                small,
                b"0\r\na:1\r\nb:2\r\nc:3\r\n\r\n",
                TooManyTrailers,
            ),
            (
                "trailer no colon",
                def,
                b"0\r\nnocolon\r\n\r\n",
                InvalidTrailer,
            ),
            (
                "trailer space before colon",
                def,
                b"0\r\na : b\r\n\r\n",
                InvalidTrailer,
            ),
            (
                "trailer obs-fold",
                def,
                b"0\r\na: b\r\n c\r\n\r\n",
                InvalidTrailer,
            ),
            (
                "trailer bad name",
                def,
                b"0\r\na(b: c\r\n\r\n",
                InvalidTrailer,
            ),
            (
                "trailer ctl in value",
                def,
                b"0\r\na: b\x01c\r\n\r\n",
                InvalidTrailer,
            ),
        ];
        for &(name, limits, input, ref err) in cases {
            let (out, _) = feed(Decoder::chunked(limits), &[input]);
            assert_eq!(out.error.as_ref(), Some(err), "{name}");
            assert!(!out.end, "{name}");
            // The same error byte by byte: limits apply as bytes arrive.
            let bytes: Vec<&[u8]> = input.chunks(1).collect();
            let (out, _) = feed(Decoder::chunked(limits), &bytes);
            assert_eq!(out.error.as_ref(), Some(err), "{name}: byte by byte");
        }
    }

    #[test]
    fn limits_at_boundary_pass() {
        let limits = ChunkedLimits {
            max_extensions: 8,
            max_trailer_size: 16,
            max_trailers: 2,
        };
        // (name, input): exactly at each limit.
        let cases: &[(&str, &[u8])] = &[
            ("8 extension bytes", b"1;abcdefg\r\nx\r\n0\r\n\r\n"),
            ("16 trailer bytes", b"0\r\nx-a: 012345678\r\n\r\n"),
            ("2 trailers", b"0\r\na: 1\r\nb: 2\r\n\r\n"),
            ("no limits needed", b"0\r\n\r\n"),
        ];
        for &(name, input) in cases {
            let (out, buf) = feed(Decoder::chunked(limits), &[input]);
            assert_eq!(out.error, None, "{name}");
            assert!(out.end, "{name}");
            assert!(buf.is_empty(), "{name}");
        }
        let zero = ChunkedLimits {
            max_extensions: 0,
            max_trailer_size: 0,
            max_trailers: 0,
        };
        let (out, _) = feed(Decoder::chunked(zero), &[b"2\r\nab\r\n0\r\n\r\n"]);
        assert_eq!(out.error, None);
        assert!(out.end);
    }

    #[test]
    fn trailer_buffering_is_bounded() {
        let limits = ChunkedLimits::default();
        let mut dec = Decoder::chunked(limits);
        let mut buf = BytesMut::from(&b"0\r\nx-a: "[..]);
        assert_eq!(dec.decode(&mut buf), Ok(None));
        // Growing the unterminated section one byte at a time fails as soon
        // as it holds more than max_trailer_size bytes.
        let mut held = buf.len();
        let refused = loop {
            buf.extend_from_slice(b"a");
            held += 1;
            match dec.decode(&mut buf) {
                // Bounded: a decoder that never refuses fails here, not by hanging.
                Ok(None) => assert!(held < limits.max_trailer_size, "still held at {held} bytes"),
                Err(e) => break e,
                other => panic!("unexpected {other:?}"),
            }
        };
        assert_eq!(refused, DecodeError::TrailersTooLarge);
    }

    #[test]
    fn chunked_step_sequence() {
        let mut dec = Decoder::chunked(ChunkedLimits::default());
        let mut buf = BytesMut::from(&b"3\r\nab"[..]);
        assert_eq!(
            dec.decode(&mut buf),
            Ok(Some(Decoded::Data(Bytes::from_static(b"ab"))))
        );
        assert_eq!(dec.decode(&mut buf), Ok(None));
        buf.extend_from_slice(b"c\r\n0\r\nx-sum: 1\r\n\r\nNEXT");
        assert_eq!(
            dec.decode(&mut buf),
            Ok(Some(Decoded::Data(Bytes::from_static(b"c"))))
        );
        assert!(!dec.is_end());
        assert_eq!(
            dec.decode(&mut buf),
            Ok(Some(Decoded::Trailers(
                map(&[("x-sum", "1")]).unwrap_or_default()
            )))
        );
        assert!(dec.is_end());
        for _ in 0..3 {
            assert_eq!(dec.decode(&mut buf), Ok(Some(Decoded::End)));
            assert_eq!(&buf[..], b"NEXT");
        }
    }

    #[test]
    fn size_lines_are_not_buffered() {
        // (pieces fed one after another): each is consumed entirely.
        let cases: &[&[&[u8]]] = &[
            &[b"0000", b"0000", b"1"],
            &[b"1;", b"abc", b"=\"de", b"f\"", b" ;g"],
            &[b"1\r"],
            &[b"1\r\nx", b"\r"],
        ];
        for pieces in cases {
            let mut dec = Decoder::chunked(ChunkedLimits::default());
            let mut buf = BytesMut::new();
            for piece in *pieces {
                buf.extend_from_slice(piece);
                let mut out = Outcome::default();
                drain(&mut dec, &mut buf, &mut out);
                assert_eq!(out.error, None, "{pieces:?}");
                assert!(buf.is_empty(), "{pieces:?}: kept {buf:?}");
            }
        }
    }

    #[test]
    fn error_is_sticky() {
        let mut dec = Decoder::chunked(ChunkedLimits::default());
        let mut buf = BytesMut::from(&b"z\r\n"[..]);
        assert_eq!(dec.decode(&mut buf), Err(DecodeError::InvalidChunkSize));
        let mut good = BytesMut::from(&b"0\r\n\r\n"[..]);
        assert_eq!(dec.decode(&mut good), Err(DecodeError::InvalidChunkSize));
        assert_eq!(&good[..], b"0\r\n\r\n");
        assert!(!dec.is_end());

        // A bad trailer section is not the end of the body.
        let mut dec = Decoder::chunked(ChunkedLimits::default());
        let mut buf = BytesMut::from(&b"0\r\nbad\r\n\r\n"[..]);
        assert_eq!(dec.decode(&mut buf), Err(DecodeError::InvalidTrailer));
        assert!(!dec.is_end());
        assert_eq!(dec.decode(&mut buf), Err(DecodeError::InvalidTrailer));
    }

    #[test]
    fn display() {
        let cases = [
            (DecodeError::InvalidChunkSize, "invalid chunk size"),
            (DecodeError::ChunkSizeOverflow, "chunk size overflow"),
            (
                DecodeError::InvalidChunkExtension,
                "invalid chunk extension",
            ),
            (DecodeError::MissingCrlf, "missing crlf in chunked framing"),
            (DecodeError::ExtensionsTooLong, "chunk extensions too long"),
            (DecodeError::TrailersTooLarge, "trailer section too large"),
            (DecodeError::TooManyTrailers, "too many trailer fields"),
            (DecodeError::InvalidTrailer, "invalid trailer field"),
        ];
        for (err, text) in cases {
            assert_eq!(err.to_string(), text);
        }
    }
}
