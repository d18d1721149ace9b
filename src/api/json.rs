//! Writing a log reply's JSON fast: a log is almost all bytes that need no escaping, so
//! runs of them are copied eight bytes at a time instead of checked one by one
//! (serde_json's string escaping was the largest cost of a log request).

/// Appends `text` as a JSON string literal (quotes included), escaping exactly what
/// JSON requires: `"`, `\` and control characters below U+0020.
pub fn push_json_string(out: &mut Vec<u8>, text: &str) {
    let bytes = text.as_bytes();
    out.reserve(bytes.len() + 2);
    out.push(b'"');
    let mut start = 0;
    let mut i = 0;
    while i < bytes.len() {
        // Skip eight plain bytes at a time.
        if i + 8 <= bytes.len() {
            let word = u64::from_le_bytes(bytes[i..i + 8].try_into().unwrap_or([0; 8]));
            if !needs_escape(word) {
                i += 8;
                continue;
            }
        }
        let b = bytes[i];
        if b < 0x20 || b == b'"' || b == b'\\' {
            out.extend_from_slice(&bytes[start..i]);
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
        i += 1;
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
}

/// Whether any of the eight bytes of `word` is below 0x20, `"` or `\` (SWAR: a byte
/// test on all eight lanes at once; may report a false positive, never a false
/// negative, and the caller then checks byte by byte).
fn needs_escape(word: u64) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    let has_zero = |x: u64| x.wrapping_sub(ONES) & !x & HIGHS != 0;
    let below_space = word.wrapping_sub(ONES * 0x20) & !word & HIGHS != 0;
    below_space
        || has_zero(word ^ (ONES * u64::from(b'"')))
        || has_zero(word ^ (ONES * u64::from(b'\\')))
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
        // Every byte value below 0x80 at every position of an 8-byte window.
        for b in 0u8..0x80 {
            for pos in 0..9 {
                let mut s = "abcdefghijklmnop".to_string();
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
}
