//! Writing a log reply's JSON fast: a log is almost all bytes that need no escaping, so
//! runs of them are checked 32 and 8 bytes at a time and copied whole instead of checked
//! one by one (serde_json's string escaping was the largest cost of a log request).

/// Appends `text` as a JSON string literal (quotes included), escaping exactly what
/// JSON requires: `"`, `\` and control characters below U+0020.
pub fn push_json_string(out: &mut Vec<u8>, text: &str) {
    let bytes = text.as_bytes();
    out.reserve(bytes.len() + 2);
    out.push(b'"');
    let mut start = 0;
    while let Some(i) = next_escape(bytes, start) {
        out.extend_from_slice(&bytes[start..i]);
        let b = bytes[i];
        match b {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            0x08 => out.extend_from_slice(b"\\b"),
            0x0c => out.extend_from_slice(b"\\f"),
            _ => {
                const HEX: &[u8; 16] = b"0123456789abcdef";
                out.extend_from_slice(b"\\u00");
                out.push(HEX[usize::from(b >> 4)]);
                out.push(HEX[usize::from(b & 0xf)]);
            }
        }
        start = i + 1;
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
}

/// The position of the first byte at or after `from` that needs escaping: plain bytes
/// are skipped 32, then 8, at a time.
fn next_escape(bytes: &[u8], mut from: usize) -> Option<usize> {
    while let Some(block) = bytes.get(from..from + 32) {
        if block.chunks_exact(8).fold(0, |any, w| any | escape_mask(w)) != 0 {
            break;
        }
        from += 32;
    }
    while let Some(w) = bytes.get(from..from + 8) {
        let mask = escape_mask(w);
        if mask != 0 {
            return Some(from + mask.trailing_zeros() as usize / 8);
        }
        from += 8;
    }
    let rest = bytes.get(from..)?;
    rest.iter()
        .position(|&b| b < 0x20 || b == b'"' || b == b'\\')
        .map(|p| from + p)
}

/// For eight bytes, a mask with the high bit set in the lane of each byte below 0x20,
/// `"` or `\` (SWAR: one test on all eight lanes at once). A lane above a flagged one
/// may be flagged falsely (a borrow carries over), but the lowest flagged lane is always
/// a true one, which is all [`next_escape`] reads.
fn escape_mask(eight: &[u8]) -> u64 {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    let word = u64::from_le_bytes(eight.try_into().unwrap_or([0; 8]));
    let zero = |x: u64| x.wrapping_sub(ONES) & !x & HIGHS;
    (word.wrapping_sub(ONES * 0x20) & !word & HIGHS)
        | zero(word ^ (ONES * u64::from(b'"')))
        | zero(word ^ (ONES * u64::from(b'\\')))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ours(text: &str) -> String {
        let mut out = Vec::new();
        push_json_string(&mut out, text);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn escapes_exactly_like_serde_json() {
        let mut cases = vec![
            String::new(),
            "plain".into(),
            "a \"quoted\" \\ path\\n".into(),
            "tab\there\r\nnext line\u{1}\u{1f}\u{7f}".into(),
            "2026-11-26T11:48:19.000000000Z Starting main — ünïcødé ✓\n".repeat(40),
            "\u{8}\u{c}".into(),
        ];
        // Every byte value below 0x80 at every position of a 32-byte block, an 8-byte
        // word and the tail after them.
        for b in 0u8..0x80 {
            for pos in 0..48 {
                let mut s = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJKLMNOP".to_string();
                s.insert(pos, char::from(b));
                cases.push(s);
            }
        }
        for case in cases {
            assert_eq!(
                ours(&case),
                serde_json::to_string(&case).unwrap(),
                "{case:?}"
            );
        }
    }

    proptest::proptest! {
        // Runs of escapes next to each other and to multi-byte characters: the lanes
        // above a flagged one may be flagged falsely, and must not be taken for escapes.
        #[test]
        fn any_text_escapes_like_serde_json(text in "[\\x00-\\x7f\"\\\\é✓]{0,160}") {
            proptest::prop_assert_eq!(ours(&text), serde_json::to_string(&text).unwrap());
        }
    }
}
