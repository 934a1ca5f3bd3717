//! Per-field validation errors, the `errors` list of a 400 `invalid_request`
//! answer: `[{"field": "sections[1].rows[0].label", "message": "..."}]`.

use std::fmt;

use serde::Serialize;

/// The most errors one validation reports. Enough to fix a form in one go;
/// a 200,000-seat layout full of mistakes would otherwise produce a
/// multi-megabyte error answer.
pub const FIELD_ERRORS_MAX: usize = 100;

/// One thing wrong with one field of the input.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldError {
    /// A path into the input, such as `sections[1].rows[0].label`; empty for
    /// a remark about the whole input.
    pub field: String,
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> FieldError {
        FieldError {
            field: field.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for FieldError {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.field.is_empty() {
            formatter.write_str(&self.message)
        } else {
            write!(formatter, "{}: {}", self.field, self.message)
        }
    }
}

/// Collects every error of a validation, up to [`FIELD_ERRORS_MAX`], so that
/// a client learns about all its mistakes at once instead of one per try.
#[derive(Debug, Default)]
pub struct FieldErrors {
    errors: Vec<FieldError>,
    omitted: usize,
}

impl FieldErrors {
    pub fn new() -> FieldErrors {
        FieldErrors::default()
    }

    pub fn add(&mut self, field: impl Into<String>, message: impl Into<String>) {
        if self.errors.len() < FIELD_ERRORS_MAX {
            self.errors.push(FieldError::new(field, message));
        } else {
            self.omitted += 1;
        }
    }

    pub fn is_empty(&self) -> bool {
        self.errors.is_empty()
    }

    /// `value` when nothing was wrong, else the errors, ending with a note
    /// on how many were left out.
    pub fn finish<T>(self, value: T) -> Result<T, Vec<FieldError>> {
        if self.errors.is_empty() {
            return Ok(value);
        }
        let mut errors = self.errors;
        if self.omitted > 0 {
            errors.push(FieldError::new(
                "",
                format!("{} more errors were not listed", self.omitted),
            ));
        }
        Err(errors)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_first_errors_and_counts_the_rest() {
        let mut errors = FieldErrors::new();
        for index in 0..FIELD_ERRORS_MAX + 5 {
            errors.add(format!("f{index}"), "bad");
        }
        let list = errors.finish(()).unwrap_err();
        assert_eq!(list.len(), FIELD_ERRORS_MAX + 1);
        assert_eq!(list[0].field, "f0");
        assert_eq!(
            list[FIELD_ERRORS_MAX].message,
            "5 more errors were not listed"
        );
    }

    #[test]
    fn no_errors_gives_the_value() {
        assert_eq!(FieldErrors::new().finish(7), Ok(7));
    }

    #[test]
    fn serializes_as_field_and_message() {
        let json = serde_json::to_string(&FieldError::new("name", "must not be empty")).unwrap();
        assert_eq!(json, r#"{"field":"name","message":"must not be empty"}"#);
    }
}
