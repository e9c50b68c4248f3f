//! The nom error type of the grammar: where parsing stopped and either what would
//! have been accepted there (a syntax error) or a specific message.

use crate::diag::Span;
use nom::error::{ErrorKind, ParseError};

/// A parse error. Positions are kept as "bytes left in the input" because nom hands
/// error constructors only the remaining input; the parser turns that into an
/// offset (and a [`Span`]) once it knows which text the input came from.
#[derive(Clone, Debug, PartialEq)]
pub struct PError {
    /// `input.len()` at the failure point; smaller means further into the text.
    pub rest_len: usize,
    /// Length of the offending text; `None` means "the token found there".
    pub len: Option<usize>,
    /// An absolute span that overrides `rest_len`/`len` (errors from macro bodies).
    pub span: Option<Span>,
    /// A specific message; `None` makes a "syntax error: unexpected X, expecting Y".
    pub msg: Option<String>,
    /// Things that would have been accepted at `rest_len`, in words.
    pub expected: Vec<&'static str>,
    pub notes: Vec<String>,
}

pub type PResult<'s, T> = nom::IResult<&'s str, T, PError>;

impl PError {
    /// A syntax error at `input`: `what` was expected.
    pub fn expected(input: &str, what: &'static str) -> PError {
        PError {
            rest_len: input.len(),
            len: None,
            span: None,
            msg: None,
            expected: vec![what],
            notes: Vec::new(),
        }
    }
    /// A specific message about `len` bytes at the start of `input`.
    pub fn msg(input: &str, len: usize, msg: impl Into<String>) -> PError {
        PError {
            rest_len: input.len(),
            len: Some(len),
            span: None,
            msg: Some(msg.into()),
            expected: Vec::new(),
            notes: Vec::new(),
        }
    }
    /// Point the error at `span` instead of its position.
    pub fn at(mut self, span: Span) -> PError {
        self.span = Some(span);
        self
    }
    pub fn note(mut self, note: impl Into<String>) -> PError {
        self.notes.push(note.into());
        self
    }
    /// Abort the enclosing alternatives (nom's `Failure`).
    pub fn fail<T>(self) -> Result<T, nom::Err<PError>> {
        Err(nom::Err::Failure(self))
    }
    /// Let the enclosing alternatives try something else (nom's `Error`).
    pub fn backtrack<T>(self) -> Result<T, nom::Err<PError>> {
        Err(nom::Err::Error(self))
    }
}

/// Unwrap nom's error wrapper (the grammar never produces `Incomplete`).
pub fn inner(e: nom::Err<PError>) -> PError {
    match e {
        nom::Err::Error(e) | nom::Err::Failure(e) => e,
        nom::Err::Incomplete(_) => PError::msg("", 0, "unexpected end of input"),
    }
}

impl<'s> ParseError<&'s str> for PError {
    fn from_error_kind(input: &'s str, _kind: ErrorKind) -> Self {
        PError {
            rest_len: input.len(),
            len: None,
            span: None,
            msg: None,
            expected: Vec::new(),
            notes: Vec::new(),
        }
    }
    fn append(_input: &'s str, _kind: ErrorKind, other: Self) -> Self {
        other
    }
    /// Keep the error that got furthest; at a tie, merge what each expected.
    fn or(self, other: Self) -> Self {
        use std::cmp::Ordering::*;
        match self.rest_len.cmp(&other.rest_len) {
            Less => self,
            Greater => other,
            Equal if self.msg.is_some() => self,
            Equal if other.msg.is_some() => other,
            Equal => {
                let mut merged = self;
                for e in other.expected {
                    if !merged.expected.contains(&e) {
                        merged.expected.push(e);
                    }
                }
                merged
            }
        }
    }
}

/// "a, b or c"
pub fn words(list: &[&str]) -> String {
    match list {
        [] => String::new(),
        [one] => one.to_string(),
        [init @ .., last] => format!("{} or {last}", init.join(", ")),
    }
}
