//! A look at a query's text before any parser does: the GraphQL parser recurses once per
//! nesting level of selections and values, so a value nested a few thousand levels deep
//! overflows the thread's stack and aborts the whole process (no panic handler can catch a
//! stack overflow). This scan walks the text once, iteratively, honouring strings, block
//! strings and comments, and refuses nesting deeper than any real query needs. It also finds
//! the `\u0000` escapes a string literal turns into NUL characters.

/// Brackets (`{`, `[`, `(`) open at once. GitLab's depth limit allows 20 selection levels;
/// arguments and values add a few more. The parser's own selection limit is 64.
pub const MAX_NESTING: usize = 64;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TextProblem {
    /// More than [`MAX_NESTING`] brackets open at once.
    TooDeep,
    /// A NUL character, raw or as a string escape.
    NulCharacter,
}

/// Scans a query's text (see the module documentation).
pub fn scan(query: &str) -> Result<(), TextProblem> {
    let bytes = query.as_bytes();
    let mut depth = 0usize;
    let mut index = 0;
    while let Some(&byte) = bytes.get(index) {
        match byte {
            0 => return Err(TextProblem::NulCharacter),
            b'#' => {
                while bytes.get(index).is_some_and(|b| *b != b'\n' && *b != b'\r') {
                    if bytes[index] == 0 {
                        return Err(TextProblem::NulCharacter);
                    }
                    index += 1;
                }
                continue;
            }
            b'"' if bytes[index..].starts_with(b"\"\"\"") => {
                index = block_string_end(bytes, index + 3)?;
                continue;
            }
            b'"' => {
                index = string_end(bytes, index + 1)?;
                continue;
            }
            b'{' | b'[' | b'(' => {
                depth += 1;
                if depth > MAX_NESTING {
                    return Err(TextProblem::TooDeep);
                }
            }
            b'}' | b']' | b')' => depth = depth.saturating_sub(1),
            _ => {}
        }
        index += 1;
    }
    Ok(())
}

/// The index after a block string's closing `"""`. Block strings have one escape (`\"""`),
/// so `\u0000` in them is six characters, not a NUL.
fn block_string_end(bytes: &[u8], mut index: usize) -> Result<usize, TextProblem> {
    while index < bytes.len() {
        if bytes[index] == 0 {
            return Err(TextProblem::NulCharacter);
        }
        if bytes[index..].starts_with(b"\\\"\"\"") {
            index += 4;
        } else if bytes[index..].starts_with(b"\"\"\"") {
            return Ok(index + 3);
        } else {
            index += 1;
        }
    }
    Ok(index)
}

/// The index after a string's closing quote (or the end of its line, where the parser will
/// report it unterminated).
fn string_end(bytes: &[u8], mut index: usize) -> Result<usize, TextProblem> {
    while let Some(&byte) = bytes.get(index) {
        match byte {
            0 => return Err(TextProblem::NulCharacter),
            b'"' => return Ok(index + 1),
            b'\n' | b'\r' => return Ok(index),
            b'\\' => {
                if bytes.get(index + 1) == Some(&b'u') && escape_is_nul(&bytes[index + 2..]) {
                    return Err(TextProblem::NulCharacter);
                }
                index += 2;
            }
            _ => index += 1,
        }
    }
    Ok(index)
}

/// Whether the text after `\u` encodes U+0000: four hex digits (`0000`) or the braced form
/// (`{0}`, `{000}`, …).
fn escape_is_nul(rest: &[u8]) -> bool {
    if let Some(braced) = rest.strip_prefix(b"{") {
        let digits: Vec<u8> = braced.iter().copied().take_while(|b| *b != b'}').collect();
        return !digits.is_empty()
            && digits.len() < braced.len()
            && digits.iter().all(|digit| *digit == b'0');
    }
    rest.len() >= 4 && rest[..4].iter().all(|digit| *digit == b'0')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nesting_is_counted_outside_strings_and_comments() {
        let deep = format!("{{ a(x: {}1{}) }}", "[".repeat(70), "]".repeat(70));
        assert_eq!(scan(&deep), Err(TextProblem::TooDeep));
        let quoted = format!("{{ a(x: \"{}\") }} # {}", "[".repeat(500), "{".repeat(500));
        assert_eq!(scan(&quoted), Ok(()));
        let block = format!("{{ a(x: \"\"\"{}\"\"\") }}", "(".repeat(500));
        assert_eq!(scan(&block), Ok(()));
        let fine = format!("{}{}", "{ a ".repeat(MAX_NESTING), "}".repeat(MAX_NESTING));
        assert_eq!(scan(&fine), Ok(()));
        let over = format!(
            "{}{}",
            "{ a ".repeat(MAX_NESTING + 1),
            "}".repeat(MAX_NESTING + 1)
        );
        assert_eq!(scan(&over), Err(TextProblem::TooDeep));
    }

    #[test]
    fn nul_escapes_are_found_where_they_become_nul() {
        for query in [
            r#"{ a(x: "\u0000") }"#,
            r#"{ a(x: "ab\u0000cd") }"#,
            r#"{ a(x: "\u{0}") }"#,
            r#"{ a(x: "\u{0000}") }"#,
            "{ a(x: \"\0\") }",
            "# \0\n{ a }",
        ] {
            assert_eq!(scan(query), Err(TextProblem::NulCharacter), "{query}");
        }
        for query in [
            r#"{ a(x: "\\u0000") }"#,
            r#"{ a(x: """\u0000""") }"#,
            r#"{ a(x: "\u0001") }"#,
            r#"{ a(x: "\u{10}") }"#,
            "# \\u0000\n{ a }",
        ] {
            assert_eq!(scan(query), Ok(()), "{query}");
        }
    }

    #[test]
    fn an_escaped_quote_does_not_end_a_string() {
        let query = format!("{{ a(x: \"\\\"{}\") }}", "[".repeat(100));
        assert_eq!(scan(&query), Ok(()));
    }
}
