//! From a MediaWiki action to AbuseFilter variables to a verdict.
//!
//! This crate owns the meaning of an action and of a filter's consequences: [`action`] reads
//! and validates the action the wiki sends (edit, move, delete, account creation, upload);
//! [`vars`] turns it into AbuseFilter's variables, lazily (the line diff, `added_lines` and the
//! links are computed only when a filter reads them, once per check); [`actions`] validates a
//! filter's consequences (warn, disallow, throttle, block, …); [`verdict`] decides, for the
//! filters that matched, what MediaWiki must do, following AbuseFilter's
//! `ConsequencesExecutor` (throttles and warnings first, then the rest), with throttle counts
//! and warning flags in a [`wikiguard_store::Counters`]. Evaluating the rules is
//! [`wikiguard_filter`]'s job; storing hits is the store's. No I/O, no clock: the caller passes
//! "now".
//!
//! ```
//! use wikiguard_check::{Action, ActionVars};
//! use wikiguard_filter::{Engine, Evaluator, Program};
//!
//! let action = Action::from_json(&serde_json::json!({
//!     "action": "edit",
//!     "user": {"name": "192.0.2.1"},
//!     "page": {"namespace": 0, "title": "Sandbox"},
//!     "old_wikitext": "Hello",
//!     "new_wikitext": "Hello\nBuy now at http://spam.example",
//! }))
//! .unwrap();
//! let program = Program::parse(r#"user_editcount === null & added_links irlike "spam\.example""#).unwrap();
//! let engine = Engine::new();
//! let outcome = Evaluator::new(&engine, ActionVars::new(&action, 1_700_000_000)).eval(&program).unwrap();
//! assert!(outcome.matched);
//! ```
//!
//! # Approximations
//!
//! Variables that need MediaWiki's parser ([`client_side_variables`]) read as null unless the
//! wiki sends them. Links come from the wiki when sent, otherwise from a wikitext scan that
//! does not expand templates ([`links`]).

#![deny(missing_docs)]
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

pub mod action;
pub mod actions;
pub mod diff;
pub mod import;
pub mod links;
mod mwdiff;
pub mod time;
pub mod vars;
pub mod verdict;

pub use action::{Action, ActionError, ActionKind};
pub use actions::{Block, BlockAutopromote, Degroup, Disallow, FilterActions, RangeBlock, Tag, Throttle, Warn};
pub use vars::{client_side_variables, value_to_json, ActionVars, LinkCache};
pub use verdict::{decide, Matched, Message, Verdict, VerdictKind};
