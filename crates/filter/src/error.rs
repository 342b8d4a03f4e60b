//! Errors a filter author reads: a stable code (AbuseFilter's exception ids where they exist),
//! a position (byte offset, 1-based line and column) and a message saying what to do.

use std::fmt;

/// Where in the rule text something is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Position {
    /// Byte offset into the rule text.
    pub offset: usize,
    /// 1-based line.
    pub line: usize,
    /// 1-based column, counted in characters.
    pub column: usize,
}

impl Position {
    /// The position of byte `offset` in `src`.
    pub fn locate(src: &str, offset: usize) -> Position {
        let offset = offset.min(src.len());
        let mut line = 1;
        let mut line_start = 0;
        for (i, b) in src.as_bytes().iter().enumerate().take(offset) {
            if *b == b'\n' {
                line += 1;
                line_start = i + 1;
            }
        }
        let column = src
            .get(line_start..offset)
            .map_or(offset - line_start, |s| s.chars().count())
            + 1;
        Position { offset, line, column }
    }
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}, column {}", self.line, self.column)
    }
}

/// A rule AbuseFilter would refuse to save: it does not tokenize, parse, or pass the syntax
/// checker (unknown function or variable, wrong number of arguments, assignment to a built-in…).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{position}: {message}")]
pub struct SyntaxError {
    /// Stable id, AbuseFilter's exception id (`unexpectedtoken`, `unrecognisedvar`…).
    pub code: &'static str,
    /// Human-readable message: what was wrong and what was expected.
    pub message: String,
    /// Where.
    pub position: Position,
}

impl SyntaxError {
    pub(crate) fn new(src: &str, offset: usize, code: &'static str, message: impl Into<String>) -> Self {
        SyntaxError {
            code,
            message: message.into(),
            position: Position::locate(src, offset),
        }
    }

    /// The error with the offending line and a caret under the position, for terminals.
    pub fn render(&self, src: &str) -> String {
        render(src, self.position, &self.to_string())
    }
}

/// A rule that parsed but failed while it ran (division by zero, a bad regex, an index out of
/// range, the condition limit…). AbuseFilter treats such a filter as not matching.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{position}: {message}")]
pub struct EvalError {
    /// Stable id, AbuseFilter's exception id where it has one (`dividebyzero`, `regexfailure`,
    /// `outofbounds`, `negativeindex`, `notarray`, `invalidiprange`), else ours
    /// (`conditionlimit`, `typeerror` and `undefinedvalue` where AbuseFilter crashes, `toodeep`).
    pub code: &'static str,
    /// Human-readable message.
    pub message: String,
    /// Where.
    pub position: Position,
}

impl EvalError {
    /// The error with the offending line and a caret under the position.
    pub fn render(&self, src: &str) -> String {
        render(src, self.position, &self.to_string())
    }
}

fn render(src: &str, pos: Position, message: &str) -> String {
    let line = src.lines().nth(pos.line.saturating_sub(1)).unwrap_or("");
    let caret = " ".repeat(pos.column.saturating_sub(1));
    format!("{message}\n    {line}\n    {caret}^")
}

/// Either kind of failure, for callers that parse and evaluate in one go.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The rule does not parse or check.
    #[error(transparent)]
    Syntax(#[from] SyntaxError),
    /// The rule failed while it ran.
    #[error(transparent)]
    Eval(#[from] EvalError),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_are_one_based_in_characters() {
        let src = "a\nbé c";
        assert_eq!(
            Position::locate(src, 0),
            Position {
                offset: 0,
                line: 1,
                column: 1
            }
        );
        assert_eq!(
            Position::locate(src, 5),
            Position {
                offset: 5,
                line: 2,
                column: 3
            }
        );
    }

    #[test]
    fn render_points_at_the_column() {
        let e = SyntaxError::new("1 +", 3, "unexpectedtoken", "expected an operand after `+`");
        assert_eq!(
            e.render("1 +"),
            "line 1, column 4: expected an operand after `+`\n    1 +\n       ^"
        );
    }
}
