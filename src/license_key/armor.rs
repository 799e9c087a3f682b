//! The optional `-----BEGIN <PRODUCT> LICENSE-----` armor around a license key.
//!
//! Mirrors the gem's `Boundary` module: on the way in, everything up to the last BEGIN line and
//! everything from the END line on is dropped; on the way out, the title lines are centred in
//! 60 columns of dashes (the extra dash goes in front).

const ARMOR_WIDTH: usize = 60;

/// Returns the text between the armor lines, or the whole text when there is no armor.
///
/// `None` when nothing is left (empty input, or armor with nothing inside), where the gem would
/// crash on `nil`.
pub fn strip(text: &str) -> Option<&str> {
    let after_begin = match last_begin_line_end(text) {
        Some(offset) => &text[offset..],
        None => text,
    };
    let inside = match first_end_line_start(after_begin) {
        Some(offset) => &after_begin[..offset],
        None => after_begin,
    };
    if inside.is_empty() {
        None
    } else {
        Some(inside)
    }
}

/// Wraps `body` (whitespace trimmed) in armor lines naming `product` (upper-cased).
pub fn wrap(body: &str, product: &str) -> String {
    let product = product.to_uppercase();
    format!(
        "{}\n{}\n{}",
        centred(&format!("BEGIN {product} LICENSE")),
        body.trim(),
        centred(&format!("END {product} LICENSE"))
    )
}

fn centred(title: &str) -> String {
    let padding = ARMOR_WIDTH.saturating_sub(title.chars().count());
    let before = padding.div_ceil(2);
    let after = padding / 2;
    format!("{}{title}{}", "-".repeat(before), "-".repeat(after))
}

/// Byte offset just past the last line of the form `-*BEGIN .+? LICENSE-*` followed by a line
/// break (the gem's `BOUNDARY_START`, which must start the text or follow a line break).
fn last_begin_line_end(text: &str) -> Option<usize> {
    let mut found = None;
    let mut line_start = 0;
    for (index, _) in text.match_indices('\n') {
        let line = text[line_start..index].trim_end_matches('\r');
        if is_armor_line(line, "BEGIN ") {
            found = Some(index + 1);
        }
        line_start = index + 1;
    }
    found
}

/// Byte offset of the line break that precedes the first `-*END .+? LICENSE-*` line, which must
/// be followed by a line break or the end of the text (the gem's `BOUNDARY_END`).
fn first_end_line_start(text: &str) -> Option<usize> {
    let mut search_from = 0;
    while let Some(relative) = text[search_from..].find('\n') {
        let newline = search_from + relative;
        let line_start = newline + 1;
        let line_end = text[line_start..]
            .find('\n')
            .map_or(text.len(), |offset| line_start + offset);
        let line = text[line_start..line_end].trim_end_matches('\r');
        if is_armor_line(line, "END ") {
            let before_newline = if newline > 0 && text.as_bytes()[newline - 1] == b'\r' {
                newline - 1
            } else {
                newline
            };
            return Some(before_newline);
        }
        search_from = line_start;
    }
    None
}

/// `-*<keyword><at least one character> LICENSE-*` on a single line.
fn is_armor_line(line: &str, keyword: &str) -> bool {
    let without_leading = line.trim_start_matches('-');
    let Some(rest) = without_leading.strip_prefix(keyword) else {
        return false;
    };
    let without_trailing = rest.trim_end_matches('-');
    match without_trailing.strip_suffix(" LICENSE") {
        Some(product) => !product.is_empty(),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrap_centres_titles_like_the_gem() {
        let armored = wrap("QUJD\n", "GitLab Enterprise Edition");
        assert_eq!(
            armored,
            "-----------BEGIN GITLAB ENTERPRISE EDITION LICENSE----------\nQUJD\n------------END GITLAB ENTERPRISE EDITION LICENSE-----------"
        );
    }

    #[test]
    fn strip_round_trips_wrap() {
        assert_eq!(strip(&wrap("QUJD\nREVG\n", "x")), Some("QUJD\nREVG"));
    }

    #[test]
    fn strip_accepts_crlf_and_any_dashes() {
        let text = "junk\r\n--BEGIN A B LICENSE--------\r\nQUJD\r\n-END A B LICENSE\r\ntrailer";
        assert_eq!(strip(text), Some("QUJD"));
    }

    #[test]
    fn strip_uses_the_last_begin_line() {
        let text = "-BEGIN X LICENSE-\nold\n-BEGIN Y LICENSE-\nnew\n-END Y LICENSE-";
        assert_eq!(strip(text), Some("new"));
    }

    #[test]
    fn text_without_armor_is_kept_whole() {
        assert_eq!(strip("QUJD\n"), Some("QUJD\n"));
    }

    #[test]
    fn empty_inside_is_none() {
        assert_eq!(strip(""), None);
        assert_eq!(strip("-BEGIN X LICENSE-\n"), None);
        assert_eq!(strip("-BEGIN X LICENSE-\n\n-END X LICENSE-"), None);
    }

    #[test]
    fn begin_without_product_is_not_armor() {
        assert_eq!(
            strip("-BEGIN  LICENSE-\nQUJD"),
            Some("-BEGIN  LICENSE-\nQUJD")
        );
    }
}
