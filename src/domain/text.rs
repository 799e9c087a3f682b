//! Rails' number and word helpers, as GitLab's messages use them.

/// `number_with_delimiter`: `1234567` → `1,234,567`.
pub fn number_with_delimiter(number: i64) -> String {
    let digits = number.unsigned_abs().to_string();
    let mut grouped = String::with_capacity(digits.len() + digits.len() / 3 + 1);
    if number < 0 {
        grouped.push('-');
    }
    for (index, digit) in digits.chars().enumerate() {
        if index > 0 && (digits.len() - index) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(digit);
    }
    grouped
}

/// `pluralize(count, noun)` with a delimited count: singular only for exactly 1.
pub fn count_with_noun(count: i64, noun: &str) -> String {
    let plural = if count == 1 { "" } else { "s" };
    format!("{} {noun}{plural}", number_with_delimiter(count))
}

/// `Gitlab::Utils.to_boolean` for text: `true`, `t`, `yes`, `y`, `1`, `on` are true, `false`,
/// `f`, `no`, `n`, `0`, `off` false (any case), anything else is no answer.
pub fn to_boolean(text: &str) -> Option<bool> {
    match text.to_ascii_lowercase().as_str() {
        "true" | "t" | "yes" | "y" | "1" | "on" => Some(true),
        "false" | "f" | "no" | "n" | "0" | "off" => Some(false),
        _ => None,
    }
}

/// Rails' `titleize` of a plain name: `code_suggestions` → `Code Suggestions`,
/// `premium` → `Premium`.
pub fn titleize(name: &str) -> String {
    name.split('_')
        .map(|word| {
            let mut chars = word.chars();
            chars.next().map_or_else(String::new, |first| {
                first.to_uppercase().chain(chars).collect()
            })
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn titleize_like_rails() {
        assert_eq!(titleize("code_suggestions"), "Code Suggestions");
        assert_eq!(titleize("duo_enterprise"), "Duo Enterprise");
        assert_eq!(titleize("premium"), "Premium");
    }

    #[test]
    fn delimits_thousands() {
        assert_eq!(number_with_delimiter(0), "0");
        assert_eq!(number_with_delimiter(999), "999");
        assert_eq!(number_with_delimiter(1000), "1,000");
        assert_eq!(number_with_delimiter(1234567), "1,234,567");
        assert_eq!(number_with_delimiter(-1234), "-1,234");
    }

    #[test]
    fn pluralizes_like_rails() {
        assert_eq!(count_with_noun(1, "user"), "1 user");
        assert_eq!(count_with_noun(0, "user"), "0 users");
        assert_eq!(count_with_noun(2000, "user"), "2,000 users");
    }
}
