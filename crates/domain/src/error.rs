//! One error vocabulary for the domain. Field errors carry a stable code that the web layer turns
//! into a sentence in the user's language; they never carry user input back verbatim.

use std::borrow::Cow;

use serde::Serialize;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldError {
    /// A form field's name, or a user table field's id.
    pub field: Cow<'static, str>,
    pub code: &'static str,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct FieldErrors(pub Vec<FieldError>);

impl FieldErrors {
    pub fn new() -> Self {
        Self(Vec::new())
    }
    pub fn push(&mut self, field: &'static str, code: &'static str) {
        self.0.push(FieldError { field: Cow::Borrowed(field), code });
    }
    pub fn push_owned(&mut self, field: String, code: &'static str) {
        self.0.push(FieldError { field: Cow::Owned(field), code });
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
    pub fn single(field: &'static str, code: &'static str) -> Self {
        Self(vec![FieldError { field: Cow::Borrowed(field), code }])
    }
    /// Ok when empty, otherwise the invalid-input error.
    pub fn into_result(self) -> Result<(), DomainError> {
        if self.is_empty() { Ok(()) } else { Err(DomainError::Invalid(self)) }
    }
    pub fn code_for(&self, field: &str) -> Option<&'static str> {
        self.0.iter().find(|e| e.field == field).map(|e| e.code)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DomainError {
    #[error("not found")]
    NotFound,
    #[error("forbidden")]
    Forbidden,
    #[error("invalid input")]
    Invalid(FieldErrors),
    #[error("conflict")]
    Conflict(FieldErrors),
}
