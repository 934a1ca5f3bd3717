//! Rules for free text (names, cities) and for price category names.

use crate::field_error::FieldErrors;

/// The longest price category name ("premium", "ga", "balcony-front").
/// Categories are keys of a show's price list, so they stay short.
pub const CATEGORY_LENGTH_MAX: usize = 32;

/// Is `text` a valid price category: 1 to [`CATEGORY_LENGTH_MAX`] characters
/// of `A-Z a-z 0-9 _ -`?
pub fn is_valid_category(text: &str) -> bool {
    !text.is_empty()
        && text.len() <= CATEGORY_LENGTH_MAX
        && text
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || byte == b'_' || byte == b'-')
}

/// Control characters (newlines, NUL, escape sequences) in a name would let
/// input forge log lines or break the layout of a printed ticket.
pub fn has_control_characters(text: &str) -> bool {
    text.chars().any(char::is_control)
}

/// Checks free text: trimmed, `length_min..=length_max` characters, no
/// control characters. Returns the trimmed text; records errors under `field`.
pub fn checked_text(
    errors: &mut FieldErrors,
    field: &str,
    text: &str,
    length_min: usize,
    length_max: usize,
) -> String {
    let trimmed = text.trim();
    let length = trimmed.chars().count();
    if length < length_min {
        errors.add(field, "must not be empty");
    } else if length > length_max {
        errors.add(field, format!("must be at most {length_max} characters"));
    }
    if has_control_characters(trimmed) {
        errors.add(field, "must not contain control characters");
    }
    trimmed.to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn categories_at_the_limit_and_one_past_it() {
        assert!(is_valid_category(&"c".repeat(32)));
        assert!(!is_valid_category(&"c".repeat(33)));
        assert!(is_valid_category("balcony_front-2"));
        for bad in ["", "a b", "prémium", "a.b", "a/b"] {
            assert!(!is_valid_category(bad), "{bad}");
        }
    }

    #[test]
    fn checked_text_trims_and_counts_characters() {
        let mut errors = FieldErrors::new();
        assert_eq!(checked_text(&mut errors, "name", "  Arena ", 1, 5), "Arena");
        assert_eq!(checked_text(&mut errors, "name", "ééééé", 1, 5), "ééééé");
        assert!(errors.is_empty());
        checked_text(&mut errors, "name", "Arenas", 1, 5);
        checked_text(&mut errors, "name", "   ", 1, 5);
        checked_text(&mut errors, "name", "a\nb", 1, 5);
        let list = errors.finish(()).unwrap_err();
        let messages: Vec<&str> = list.iter().map(|error| error.message.as_str()).collect();
        assert_eq!(
            messages,
            [
                "must be at most 5 characters",
                "must not be empty",
                "must not contain control characters"
            ]
        );
    }
}
