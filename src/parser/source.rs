//! Script bytes to text. bpftrace reads scripts as bytes: invalid UTF-8 inside a comment
//! is ignored like the rest of the comment, and inside a string literal it is kept as
//! raw bytes (measured with bpftrace 0.17: `printf("a\xe9b\n")` prints the byte 0xe9).
//! rbt's text is UTF-8, so invalid bytes in comments become spaces (one per byte, so
//! every offset, and so every span, stays where it was), and anywhere else they are an
//! error at their offset.

/// Where invalid UTF-8 that is not inside a comment starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InvalidUtf8 {
    pub offset: usize,
    /// Inside a string literal (else in code).
    pub in_string: bool,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum State {
    Code,
    Str,
    LineComment,
    BlockComment,
}

/// The script as text, with invalid UTF-8 inside `//` and `/* */` comments replaced.
pub fn decode(bytes: Vec<u8>) -> Result<String, InvalidUtf8> {
    let bytes = match String::from_utf8(bytes) {
        Ok(text) => return Ok(text),
        Err(e) => e.into_bytes(),
    };
    let mut out = bytes;
    let mut state = State::Code;
    let mut i = 0;
    while i < out.len() {
        // Decode one character (or find one invalid sequence) at `i`.
        let len = match std::str::from_utf8(&out[i..]) {
            Ok(_) => out.len() - i, // the rest is valid: scan it as one piece
            Err(e) if e.valid_up_to() > 0 => e.valid_up_to(),
            Err(e) => {
                let bad = e.error_len().unwrap_or(out.len() - i);
                match state {
                    State::LineComment | State::BlockComment => {
                        out[i..i + bad].fill(b' ');
                        i += bad;
                        continue;
                    }
                    State::Code | State::Str => {
                        return Err(InvalidUtf8 {
                            offset: i,
                            in_string: state == State::Str,
                        })
                    }
                }
            }
        };
        // `out[i..i + len]` is valid UTF-8: track comments and strings through it.
        let end = i + len;
        while i < end {
            let b = out[i];
            let next = out.get(i + 1).copied();
            match state {
                State::Code if b == b'"' => state = State::Str,
                State::Code if b == b'/' && next == Some(b'/') => {
                    state = State::LineComment;
                    i += 1;
                }
                State::Code if b == b'/' && next == Some(b'*') => {
                    state = State::BlockComment;
                    i += 1;
                }
                State::Str if b == b'\\' => i += 1,
                State::Str if b == b'"' || b == b'\n' => state = State::Code,
                State::LineComment if b == b'\n' => state = State::Code,
                State::BlockComment if b == b'*' && next == Some(b'/') => {
                    state = State::Code;
                    i += 1;
                }
                _ => {}
            }
            i += 1;
        }
        i = i.max(end);
    }
    // Only ASCII spaces were written, over whole invalid sequences.
    String::from_utf8(out).map_err(|e| InvalidUtf8 {
        offset: e.utf8_error().valid_up_to(),
        in_string: false,
    })
}

/// `bytes` with each invalid byte shown as `?` (offsets kept), for showing an error.
pub fn lossy(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    for chunk in bytes.utf8_chunks() {
        out.push_str(chunk.valid());
        out.extend(std::iter::repeat_n('?', chunk.invalid().len()));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_text_is_unchanged() {
        assert_eq!(
            decode(b"BEGIN { \"caf\xc3\xa9\" }".to_vec()).unwrap(),
            "BEGIN { \"café\" }"
        );
    }

    #[test]
    fn invalid_bytes_in_comments_become_spaces() {
        let src = b"BEGIN { // caf\xe9 \xff\n /* \xc3\x28 */ exit(); }".to_vec();
        let text = decode(src.clone()).unwrap();
        assert_eq!(text.len(), src.len());
        assert_eq!(text, "BEGIN { // caf   \n /*  ( */ exit(); }");
    }

    #[test]
    fn invalid_bytes_elsewhere_are_errors() {
        assert_eq!(
            decode(b"BEGIN { printf(\"a\xe9\"); }".to_vec()),
            Err(InvalidUtf8 {
                offset: 17,
                in_string: true
            })
        );
        assert_eq!(
            decode(b"BEGIN \xe9 { }".to_vec()),
            Err(InvalidUtf8 {
                offset: 6,
                in_string: false
            })
        );
        // A `//` inside a string is not a comment; an escaped quote does not end it.
        assert_eq!(
            decode(b"BEGIN { \"\\\" // \xe9\" }".to_vec())
                .unwrap_err()
                .offset,
            15
        );
        // After a block comment ends, code again.
        assert_eq!(decode(b"/* \xe9 */ \xe9".to_vec()).unwrap_err().offset, 8);
    }

    #[test]
    fn lossy_keeps_offsets() {
        assert_eq!(lossy(b"a\xe9b\xc3\x28"), "a?b?(");
    }
}
