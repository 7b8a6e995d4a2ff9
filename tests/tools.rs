//! The hand-written tools the other tests rely on, checked against their
//! specifications: the HPACK decoder (RFC 7541 Appendix C) and SHA-256 (FIPS 180-4
//! test vectors).

mod common;

use common::hpack::{self, huffman_encode, Decoder};
use common::sha256::sha256_hex;

fn hex(s: &str) -> Vec<u8> {
    let s: String = s.split_whitespace().collect();
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
        .collect()
}

fn fields(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(n, v)| (n.to_string(), v.to_string()))
        .collect()
}

#[test]
fn rfc7541_c4_requests_with_huffman() {
    let mut d = Decoder::new(4096);
    let first = d
        .decode(&hex("8286 8441 8cf1 e3c2 e5f2 3a6b a0ab 90f4 ff"))
        .expect("C.4.1");
    assert_eq!(
        first,
        fields(&[
            (":method", "GET"),
            (":scheme", "http"),
            (":path", "/"),
            (":authority", "www.example.com"),
        ])
    );
    assert_eq!(d.table_size(), 57);
    let second = d
        .decode(&hex("8286 84be 5886 a8eb 1064 9cbf"))
        .expect("C.4.2");
    assert_eq!(
        second,
        fields(&[
            (":method", "GET"),
            (":scheme", "http"),
            (":path", "/"),
            (":authority", "www.example.com"),
            ("cache-control", "no-cache"),
        ])
    );
    assert_eq!(d.table_size(), 110);
    let third = d
        .decode(&hex(
            "8287 85bf 4088 25a8 49e9 5ba9 7d7f 8925 a849 e95b b8e8 b4bf",
        ))
        .expect("C.4.3");
    assert_eq!(
        third,
        fields(&[
            (":method", "GET"),
            (":scheme", "https"),
            (":path", "/index.html"),
            (":authority", "www.example.com"),
            ("custom-key", "custom-value"),
        ])
    );
    assert_eq!(d.table_size(), 164);
    assert_eq!(
        d.dynamic_table(),
        fields(&[
            ("custom-key", "custom-value"),
            ("cache-control", "no-cache"),
            (":authority", "www.example.com"),
        ])
    );
}

#[test]
fn rfc7541_c6_responses_with_huffman_and_eviction() {
    // Appendix C.6 uses a 256-octet dynamic table.
    let mut d = Decoder::new(256);
    let first = d
        .decode(&hex(
            "4882 6402 5885 aec3 771a 4b61 96d0 7abe 9410 54d4 44a8 2005 9504 0b81 66e0 82a6 \
             2d1b ff6e 919d 29ad 1718 63c7 8f0b 97c8 e9ae 82ae 43d3",
        ))
        .expect("C.6.1");
    assert_eq!(
        first,
        fields(&[
            (":status", "302"),
            ("cache-control", "private"),
            ("date", "Mon, 21 Oct 2013 20:13:21 GMT"),
            ("location", "https://www.example.com"),
        ])
    );
    assert_eq!(d.table_size(), 222);
    let second = d.decode(&hex("4883 640e ff c1 c0 bf")).expect("C.6.2");
    assert_eq!(
        second,
        fields(&[
            (":status", "307"),
            ("cache-control", "private"),
            ("date", "Mon, 21 Oct 2013 20:13:21 GMT"),
            ("location", "https://www.example.com"),
        ])
    );
    assert_eq!(d.table_size(), 222);
    let third = d
        .decode(&hex(
            "88c1 6196 d07a be94 1054 d444 a820 0595 040b 8166 e084 a62d 1bff c05a 839b d9ab \
             77ad 94e7 821d d7f2 e6c7 b335 dfdf cd5b 3960 d5af 2708 7f36 72c1 ab27 0fb5 291f \
             9587 3160 65c0 03ed 4ee5 b106 3d50 07",
        ))
        .expect("C.6.3");
    assert_eq!(
        third,
        fields(&[
            (":status", "200"),
            ("cache-control", "private"),
            ("date", "Mon, 21 Oct 2013 20:13:22 GMT"),
            ("location", "https://www.example.com"),
            ("content-encoding", "gzip"),
            (
                "set-cookie",
                "foo=ASDJKHQKBZXOQWEOPIUAXQWEOIU; max-age=3600; version=1"
            ),
        ])
    );
    assert_eq!(d.table_size(), 215);
}

#[test]
fn literals_size_updates_and_errors() {
    let mut d = Decoder::new(4096);
    // Our own encoder's output decodes to the same fields and indexes nothing.
    // A value over 127 bytes needs a multi-octet length (RFC 7541 §5.1).
    let long = "v".repeat(300);
    let list = [(":status", "200"), ("x-long", long.as_str())];
    assert_eq!(
        d.decode(&hpack::encode(&list)).expect("literals"),
        fields(&list)
    );
    assert_eq!(d.table_size(), 0);
    // A never-indexed literal with an indexed name (RFC 7541 C.2.3 shape).
    let mut block = vec![0x10 | 0x0f, 0x10 - 0x0f]; // name index 16, 4-bit prefix continued
    block.push(3);
    block.extend_from_slice(b"abc");
    assert_eq!(
        d.decode(&block).expect("never indexed"),
        fields(&[("accept-encoding", "abc")])
    );
    // A size update to 0 evicts everything; then above the bound is an error.
    d.decode(&hex("4088 25a8 49e9 5ba9 7d7f 8925 a849 e95b b8e8 b4bf"))
        .expect("indexed literal");
    assert_eq!(d.table_size(), 54);
    assert!(d.decode(&[0x20]).expect("size update").is_empty());
    assert_eq!(d.table_size(), 0);
    assert!(d.decode(&[0x3f, 0xe2, 0x1f]).is_err(), "4097 > 4096");
    assert!(d.decode(&[0x80]).is_err(), "index 0");
    assert!(d.decode(&[0xbe]).is_err(), "index past the dynamic table");
    // Huffman padding must be the EOS prefix, shorter than a byte.
    assert!(d.decode(&[0x00, 0x81, 0x00, 0x00]).is_err());
}

#[test]
fn huffman_round_trip_of_every_byte() {
    let all: Vec<u8> = (0..=255u8).collect();
    let encoded = huffman_encode(&all);
    let mut block = vec![0x00, 0x01, b'x'];
    hpack::encode_int(&mut block, 0x80, 7, encoded.len());
    block.extend_from_slice(&encoded);
    let decoded = Decoder::default().decode_bytes(&block).expect("huffman");
    assert_eq!(decoded, vec![(b"x".to_vec(), all)]);
}

#[test]
fn sha256_test_vectors() {
    assert_eq!(
        sha256_hex(b""),
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    );
    assert_eq!(
        sha256_hex(b"abc"),
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    );
    assert_eq!(
        sha256_hex(b"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
        "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"
    );
    assert_eq!(
        sha256_hex(&vec![b'a'; 1_000_000]),
        "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0"
    );
}
