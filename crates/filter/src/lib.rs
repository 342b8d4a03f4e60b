//! The AbuseFilter rule language, compatible with MediaWiki's AbuseFilter extension.
//!
//! This crate owns the language and nothing else: [`lexer`] → [`parser`] (a tree with
//! spans, printable back) → [`check`] (AbuseFilter's syntax checker, whose refusals are
//! [`SyntaxError`]s, plus our own warnings, the variables a rule reads and a cost estimate) →
//! [`eval`] (values, coercions, builtins and the condition counter exactly as AbuseFilter's
//! `FilterEvaluator`). It does no I/O, reads no clock and spawns nothing.
//!
//! ```
//! use std::collections::HashMap;
//! use wikiguard_filter::{Engine, Evaluator, Program, Value};
//!
//! let program = Program::parse(r#"user_editcount < 10 & added_lines irlike "buy\s+now""#).unwrap();
//! let engine = Engine::new();
//! let mut vars = HashMap::new();
//! vars.insert("user_editcount".to_string(), Value::Int(3));
//! vars.insert("added_lines".to_string(), Value::from(vec![Value::from("BUY  NOW!")]));
//! let outcome = Evaluator::new(&engine, vars).eval(&program).unwrap();
//! assert!(outcome.matched);
//! assert_eq!(outcome.conditions, 2);
//! ```
//!
//! # Untrusted input
//!
//! Rules come from wiki administrators and may be large or hostile. The parser bounds nesting
//! ([`parser::MAX_NESTING`]) and tree depth ([`parser::MAX_TREE_DEPTH`]); regexes run on a
//! linear-time engine when their features allow and otherwise on a backtracking engine with a
//! step budget ([`pcre::BACKTRACK_LIMIT`]) whose overrun is an evaluation error; compiled
//! regexes are cached in a bounded cache. The caller bounds the rule's length and the values.
//!
//! # Differences from AbuseFilter
//!
//! Strings are UTF-8: a `\xHH` escape sequence that does not form valid UTF-8 becomes U+FFFD.
//! `ccnorm`/`norm` use a table derived from Unicode's confusables unless the operator loads
//! Wikimedia's Equivset ([`Engine::with_equivset`]); see [`normalize`].

#![deny(missing_docs)]
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

pub mod ast;
pub mod builtins;
pub mod check;
pub mod error;
pub mod eval;
mod fasthash;
mod ip;
pub mod lexer;
pub mod normalize;
pub mod parser;
pub mod pcre;
pub mod value;
pub mod vars;

pub use check::{Analysis, Warning};
pub use error::{Error, EvalError, Position, SyntaxError};
pub use eval::{Engine, Evaluator, Outcome, Variables};
pub use normalize::Equivset;
pub use value::{smart_str_compare, Type, Value};

use ast::Expr;
use vars::KnownVariables;

/// A rule that parsed and passed AbuseFilter's syntax checker: ready to evaluate many times.
#[derive(Debug, Clone)]
pub struct Program {
    source: String,
    root: Option<Expr>,
    analysis: Analysis,
}

impl Program {
    /// Parses and checks a rule against AbuseFilter's built-in variables.
    pub fn parse(source: &str) -> Result<Program, SyntaxError> {
        Program::parse_with(source, &KnownVariables::default())
    }

    /// Parses and checks a rule, accepting the variables in `known`.
    pub fn parse_with(source: &str, known: &KnownVariables) -> Result<Program, SyntaxError> {
        let root = parser::parse(source)?;
        let analysis = check::check(source, root.as_ref(), known)?;
        Ok(Program {
            source: source.to_string(),
            root,
            analysis,
        })
    }

    /// The rule text.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// The syntax tree (`None` for an empty rule).
    pub fn root(&self) -> Option<&Expr> {
        self.root.as_ref()
    }

    /// What the static pass found: variables read, warnings, cost.
    pub fn analysis(&self) -> &Analysis {
        &self.analysis
    }
}

/// Parses, checks and evaluates `source` in one go against `vars` (convenience for tools and tests).
pub fn evaluate(engine: &Engine, source: &str, vars: impl Variables) -> Result<Outcome, Error> {
    let program = Program::parse_with(source, engine.known_variables())?;
    Ok(Evaluator::new(engine, vars).eval(&program)?)
}
