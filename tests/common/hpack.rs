//! A minimal but complete HPACK (RFC 7541) decoder, and the simplest possible encoder,
//! for the hand-driven HTTP/2 client in these tests ([`super::h2raw`]).
//!
//! The decoder handles every representation the server's `h2` encoder may use:
//! indexed fields (static and dynamic table), literals with incremental indexing,
//! without indexing and never indexed, dynamic table size updates, eviction, and
//! Huffman-coded strings. The encoder only writes literals without indexing and
//! without Huffman coding, so it never touches the server's dynamic table.

use std::collections::VecDeque;
use std::fmt;

/// RFC 7541 Appendix A.
const STATIC_TABLE: [(&str, &str); 61] = [
    (":authority", ""),
    (":method", "GET"),
    (":method", "POST"),
    (":path", "/"),
    (":path", "/index.html"),
    (":scheme", "http"),
    (":scheme", "https"),
    (":status", "200"),
    (":status", "204"),
    (":status", "206"),
    (":status", "304"),
    (":status", "400"),
    (":status", "404"),
    (":status", "500"),
    ("accept-charset", ""),
    ("accept-encoding", "gzip, deflate"),
    ("accept-language", ""),
    ("accept-ranges", ""),
    ("accept", ""),
    ("access-control-allow-origin", ""),
    ("age", ""),
    ("allow", ""),
    ("authorization", ""),
    ("cache-control", ""),
    ("content-disposition", ""),
    ("content-encoding", ""),
    ("content-language", ""),
    ("content-length", ""),
    ("content-location", ""),
    ("content-range", ""),
    ("content-type", ""),
    ("cookie", ""),
    ("date", ""),
    ("etag", ""),
    ("expect", ""),
    ("expires", ""),
    ("from", ""),
    ("host", ""),
    ("if-match", ""),
    ("if-modified-since", ""),
    ("if-none-match", ""),
    ("if-range", ""),
    ("if-unmodified-since", ""),
    ("last-modified", ""),
    ("link", ""),
    ("location", ""),
    ("max-forwards", ""),
    ("proxy-authenticate", ""),
    ("proxy-authorization", ""),
    ("range", ""),
    ("referer", ""),
    ("refresh", ""),
    ("retry-after", ""),
    ("server", ""),
    ("set-cookie", ""),
    ("strict-transport-security", ""),
    ("transfer-encoding", ""),
    ("user-agent", ""),
    ("vary", ""),
    ("via", ""),
    ("www-authenticate", ""),
];

/// RFC 7541 Appendix B: the code length of every symbol (256 = EOS). The code is
/// canonical: codes of one length are consecutive and ordered by symbol, so the
/// lengths alone define it.
const HUFFMAN_LENGTHS: [u8; 257] = [
    13, 23, 28, 28, 28, 28, 28, 28, 28, 24, 30, 28, 28, 30, 28, 28, 28, 28, 28, 28, 28, 28, 30, 28,
    28, 28, 28, 28, 28, 28, 28, 28, 6, 10, 10, 12, 13, 6, 8, 11, 10, 10, 8, 11, 8, 6, 6, 6, 5, 5,
    5, 6, 6, 6, 6, 6, 6, 6, 7, 8, 15, 6, 12, 10, 13, 6, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7,
    7, 7, 7, 7, 7, 7, 7, 7, 8, 7, 8, 13, 19, 13, 14, 6, 15, 5, 6, 5, 6, 5, 6, 6, 6, 5, 7, 7, 6, 6,
    6, 5, 6, 7, 6, 5, 5, 6, 7, 7, 7, 7, 7, 15, 11, 14, 13, 28, 20, 22, 20, 20, 22, 22, 22, 23, 22,
    23, 23, 23, 23, 23, 24, 23, 24, 24, 22, 23, 24, 23, 23, 23, 23, 21, 22, 23, 22, 23, 23, 24, 22,
    21, 20, 22, 22, 23, 23, 21, 23, 22, 22, 24, 21, 22, 23, 23, 21, 21, 22, 21, 23, 22, 23, 23, 20,
    22, 22, 22, 23, 22, 22, 23, 26, 26, 20, 19, 22, 23, 22, 25, 26, 26, 26, 27, 27, 26, 24, 25, 19,
    21, 26, 27, 27, 26, 27, 24, 21, 21, 26, 26, 28, 27, 27, 27, 20, 24, 20, 21, 22, 21, 21, 23, 22,
    22, 25, 25, 24, 24, 26, 23, 26, 27, 26, 26, 27, 27, 27, 27, 27, 28, 27, 27, 27, 27, 27, 26, 30,
];

const EOS: u16 = 256;

/// A decoding failure: the peer's header block is not valid HPACK.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HpackError(pub &'static str);

impl fmt::Display for HpackError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "hpack: {}", self.0)
    }
}

/// Canonical Huffman decoding tables, per code length.
struct Huffman {
    /// For each length 1..=30: the first code of that length.
    first: [u32; 31],
    /// For each length: how many codes have it.
    count: [u32; 31],
    /// For each length: where its symbols start in `symbols`.
    offset: [usize; 31],
    /// Symbols ordered by (length, symbol).
    symbols: Vec<u16>,
}

impl Huffman {
    fn new() -> Huffman {
        let mut symbols: Vec<u16> = (0..=EOS).collect();
        symbols.sort_by_key(|&s| (HUFFMAN_LENGTHS[s as usize], s));
        let mut first = [0u32; 31];
        let mut count = [0u32; 31];
        let mut offset = [0usize; 31];
        for &s in &symbols {
            count[HUFFMAN_LENGTHS[s as usize] as usize] += 1;
        }
        let mut code = 0u32;
        let mut index = 0usize;
        for len in 1..=30 {
            first[len] = code;
            offset[len] = index;
            code = (code + count[len]) << 1;
            index += count[len] as usize;
        }
        Huffman {
            first,
            count,
            offset,
            symbols,
        }
    }

    fn decode(&self, src: &[u8]) -> Result<Vec<u8>, HpackError> {
        let mut out = Vec::with_capacity(src.len() * 8 / 5);
        let mut code = 0u32;
        let mut len = 0usize;
        for byte in src {
            for shift in (0..8).rev() {
                code = (code << 1) | u32::from((byte >> shift) & 1);
                len += 1;
                if len > 30 {
                    return Err(HpackError("huffman code longer than 30 bits"));
                }
                if code >= self.first[len] && code - self.first[len] < self.count[len] {
                    let sym = self.symbols[self.offset[len] + (code - self.first[len]) as usize];
                    if sym == EOS {
                        return Err(HpackError("EOS in huffman string"));
                    }
                    out.push(sym as u8);
                    code = 0;
                    len = 0;
                }
            }
        }
        // RFC 7541 §5.2: padding is fewer than 8 bits, all ones (a prefix of EOS).
        if len >= 8 {
            return Err(HpackError("huffman padding longer than 7 bits"));
        }
        if code != (1u32 << len) - 1 {
            return Err(HpackError("huffman padding is not a prefix of EOS"));
        }
        Ok(out)
    }
}

/// Huffman-encodes `src` (used only to test the decoder).
pub fn huffman_encode(src: &[u8]) -> Vec<u8> {
    let h = Huffman::new();
    // Rebuild each symbol's code from the canonical tables.
    let mut codes = [(0u32, 0u8); 257];
    for len in 1..=30usize {
        for i in 0..h.count[len] {
            let sym = h.symbols[h.offset[len] + i as usize];
            codes[sym as usize] = (h.first[len] + i, len as u8);
        }
    }
    let mut out = Vec::new();
    let mut acc: u64 = 0;
    let mut bits = 0u32;
    for &b in src {
        let (code, len) = codes[b as usize];
        acc = (acc << len) | u64::from(code);
        bits += u32::from(len);
        while bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    if bits > 0 {
        let pad = 8 - bits;
        out.push(((acc << pad) | ((1 << pad) - 1)) as u8);
    }
    out
}

/// The HPACK decoding context of one HTTP/2 connection.
pub struct Decoder {
    dynamic: VecDeque<(Vec<u8>, Vec<u8>)>,
    size: usize,
    /// Current maximum size of the dynamic table.
    max_size: usize,
    /// The bound the encoder may set with a size update (our SETTINGS_HEADER_TABLE_SIZE).
    settings_max: usize,
    huffman: Huffman,
}

impl Default for Decoder {
    fn default() -> Self {
        Decoder::new(4096)
    }
}

impl Decoder {
    /// A decoder whose SETTINGS_HEADER_TABLE_SIZE is `max` (4096 by default).
    pub fn new(max: usize) -> Decoder {
        Decoder {
            dynamic: VecDeque::new(),
            size: 0,
            max_size: max,
            settings_max: max,
            huffman: Huffman::new(),
        }
    }

    /// Entries in the dynamic table, newest first (for the decoder's own tests).
    pub fn dynamic_table(&self) -> Vec<(String, String)> {
        self.dynamic
            .iter()
            .map(|(n, v)| (lossy(n), lossy(v)))
            .collect()
    }

    /// Size of the dynamic table as RFC 7541 §4.1 counts it.
    pub fn table_size(&self) -> usize {
        self.size
    }

    /// Decodes one complete header block into its fields, in order (as text; bytes
    /// that are not UTF-8 are replaced).
    pub fn decode(&mut self, src: &[u8]) -> Result<Vec<(String, String)>, HpackError> {
        Ok(self
            .decode_bytes(src)?
            .into_iter()
            .map(|(n, v)| (lossy(&n), lossy(&v)))
            .collect())
    }

    /// Decodes one complete header block into its fields, in order, as bytes.
    #[allow(clippy::type_complexity)]
    pub fn decode_bytes(&mut self, mut src: &[u8]) -> Result<Vec<(Vec<u8>, Vec<u8>)>, HpackError> {
        let mut fields = Vec::new();
        let mut fields_seen = false;
        while let Some(&first) = src.first() {
            if first & 0x80 != 0 {
                // §6.1 Indexed Header Field.
                let index = decode_int(&mut src, 7)?;
                fields.push(self.get(index)?);
                fields_seen = true;
            } else if first & 0x40 != 0 {
                // §6.2.1 Literal with Incremental Indexing.
                let (n, v) = self.literal(&mut src, 6)?;
                self.insert(n.clone(), v.clone());
                fields.push((n, v));
                fields_seen = true;
            } else if first & 0x20 != 0 {
                // §6.3 Dynamic Table Size Update: only at the start of a block (§4.2).
                if fields_seen {
                    return Err(HpackError("table size update after a field"));
                }
                let new = decode_int(&mut src, 5)?;
                if new > self.settings_max {
                    return Err(HpackError("table size update above the settings bound"));
                }
                self.max_size = new;
                self.evict(0);
            } else {
                // §6.2.2 without indexing (0000) and §6.2.3 never indexed (0001).
                fields.push(self.literal(&mut src, 4)?);
                fields_seen = true;
            }
        }
        Ok(fields)
    }

    fn get(&self, index: usize) -> Result<(Vec<u8>, Vec<u8>), HpackError> {
        match index {
            0 => Err(HpackError("index 0")),
            1..=61 => {
                let (n, v) = STATIC_TABLE[index - 1];
                Ok((n.as_bytes().to_vec(), v.as_bytes().to_vec()))
            }
            _ => self
                .dynamic
                .get(index - 62)
                .cloned()
                .ok_or(HpackError("index past the dynamic table")),
        }
    }

    fn literal(&self, src: &mut &[u8], prefix: u8) -> Result<(Vec<u8>, Vec<u8>), HpackError> {
        let index = decode_int(src, prefix)?;
        let name = if index == 0 {
            self.string(src)?
        } else {
            self.get(index)?.0
        };
        let value = self.string(src)?;
        Ok((name, value))
    }

    fn string(&self, src: &mut &[u8]) -> Result<Vec<u8>, HpackError> {
        let huffman = src.first().ok_or(HpackError("missing string"))? & 0x80 != 0;
        let len = decode_int(src, 7)?;
        if src.len() < len {
            return Err(HpackError("string past the end of the block"));
        }
        let (raw, rest) = src.split_at(len);
        *src = rest;
        if huffman {
            self.huffman.decode(raw)
        } else {
            Ok(raw.to_vec())
        }
    }

    fn insert(&mut self, name: Vec<u8>, value: Vec<u8>) {
        let entry = name.len() + value.len() + 32;
        if entry > self.max_size {
            // §4.4: an entry larger than the table empties it and is not added.
            self.dynamic.clear();
            self.size = 0;
            return;
        }
        self.evict(entry);
        self.size += entry;
        self.dynamic.push_front((name, value));
    }

    /// Evicts the oldest entries until `room` more bytes fit.
    fn evict(&mut self, room: usize) {
        while self.size + room > self.max_size {
            match self.dynamic.pop_back() {
                Some((n, v)) => self.size -= n.len() + v.len() + 32,
                None => break,
            }
        }
    }
}

fn lossy(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// RFC 7541 §5.1.
fn decode_int(src: &mut &[u8], prefix: u8) -> Result<usize, HpackError> {
    let mask = ((1u16 << prefix) - 1) as u8;
    let (&first, rest) = src.split_first().ok_or(HpackError("missing integer"))?;
    *src = rest;
    let mut value = usize::from(first & mask);
    if value < usize::from(mask) {
        return Ok(value);
    }
    let mut shift = 0u32;
    loop {
        let (&b, rest) = src.split_first().ok_or(HpackError("truncated integer"))?;
        *src = rest;
        if shift > 28 {
            return Err(HpackError("integer overflow"));
        }
        value += usize::from(b & 0x7f) << shift;
        shift += 7;
        if b & 0x80 == 0 {
            return Ok(value);
        }
    }
}

/// RFC 7541 §5.1, with the high bits of the first octet set to `flags`.
pub fn encode_int(dst: &mut Vec<u8>, flags: u8, prefix: u8, mut value: usize) {
    let mask = ((1u16 << prefix) - 1) as usize;
    if value < mask {
        dst.push(flags | value as u8);
        return;
    }
    dst.push(flags | mask as u8);
    value -= mask;
    while value >= 0x80 {
        dst.push((value & 0x7f) as u8 | 0x80);
        value >>= 7;
    }
    dst.push(value as u8);
}

/// A string literal without Huffman coding (RFC 7541 §5.2).
pub fn encode_str(dst: &mut Vec<u8>, s: &[u8]) {
    encode_int(dst, 0x00, 7, s.len());
    dst.extend_from_slice(s);
}

/// Encodes `fields` as literals without indexing, with new names and no Huffman coding
/// (RFC 7541 §6.2.2): the server's decoder table is never touched.
pub fn encode(fields: &[(&str, &str)]) -> Vec<u8> {
    let mut out = Vec::new();
    for (name, value) in fields {
        out.push(0x00);
        encode_str(&mut out, name.as_bytes());
        encode_str(&mut out, value.as_bytes());
    }
    out
}
