//! The static pass: AbuseFilter's `SyntaxChecker` (whose refusals are syntax errors, because
//! AbuseFilter refuses to save such a filter), and our extra findings, which are warnings only:
//! a wiki's existing filters must keep loading.
//!
//! AbuseFilter's rules: a variable must be assigned before it is read, in evaluation order
//! (conditionals bind what either branch binds); built-in variables, function names and
//! keywords cannot be assigned; disabled variables cannot be read; `set`/`set_var` take a
//! string literal as the name.

use std::collections::{BTreeMap, BTreeSet};

use crate::ast::{CmpOp, Expr, ExprKind, KeywordOp, LogicOp};
use crate::builtins::Builtin;
use crate::error::{Position, SyntaxError};
use crate::lexer::KEYWORDS;
use crate::pcre;
use crate::value::Value;
use crate::vars::{self, KnownVariables};

/// A finding that does not stop the filter from being saved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    /// Stable id: `unusedvar`, `badregex`, `match-empty-regex`, `nevertrue`, `deprecatedvar`.
    pub code: &'static str,
    /// What was found and what to do.
    pub message: String,
    /// Where.
    pub position: Position,
}

/// What the static pass learned about a rule.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Analysis {
    /// Built-in variables the rule may read (canonical names), so a caller computes only those.
    pub variables: BTreeSet<String>,
    /// Findings beyond AbuseFilter's own checks.
    pub warnings: Vec<Warning>,
    /// A rough cost estimate: 1 per comparison or keyword, more for expensive functions and
    /// for regexes; comparable between filters, not a time.
    pub cost: u32,
}

/// Checks a parsed rule as AbuseFilter's conservative syntax checker does, and analyses it.
pub fn check(src: &str, root: Option<&Expr>, known: &KnownVariables) -> Result<Analysis, SyntaxError> {
    let mut c = Checker {
        src,
        known,
        analysis: Analysis::default(),
        assigned_at: BTreeMap::new(),
    };
    if let Some(root) = root {
        let bound = c.walk(root, Bound::new())?;
        for (name, used) in bound {
            if !used {
                let position = c.assigned_at.get(&name).copied().unwrap_or_default();
                c.analysis.warnings.push(Warning {
                    code: "unusedvar",
                    message: format!("the variable `{name}` is assigned but never read"),
                    position,
                });
            }
        }
    }
    c.analysis.warnings.sort_by_key(|w| (w.position.offset, w.code));
    Ok(c.analysis)
}

/// Bound user variables and whether each has been read since its last assignment.
type Bound = BTreeMap<String, bool>;

struct Checker<'a> {
    src: &'a str,
    known: &'a KnownVariables,
    analysis: Analysis,
    assigned_at: BTreeMap<String, Position>,
}

impl Checker<'_> {
    fn err(&self, e: &Expr, code: &'static str, msg: String) -> SyntaxError {
        SyntaxError::new(self.src, e.span.start, code, msg)
    }

    fn warn(&mut self, e: &Expr, code: &'static str, message: String) {
        self.analysis.warnings.push(Warning {
            code,
            message,
            position: Position::locate(self.src, e.span.start),
        });
    }

    fn is_reserved(&self, name: &str) -> bool {
        self.known.exists(name) || Builtin::from_name(name).is_some() || KEYWORDS.contains(&name)
    }

    fn lookup(&mut self, e: &Expr, name: &str, mut bound: Bound) -> Result<Bound, SyntaxError> {
        if let Some(used) = bound.get_mut(name) {
            *used = true;
            return Ok(bound);
        }
        if vars::is_disabled(name) {
            return Err(self.err(
                e,
                "disabledvar",
                format!("the variable `{name}` is no longer in use: remove it from the rule"),
            ));
        }
        if self.known.exists(name) {
            if vars::is_deprecated(name) {
                self.warn(
                    e,
                    "deprecatedvar",
                    format!("`{name}` is deprecated: use `{}`", vars::canonical(name)),
                );
            }
            self.analysis.variables.insert(vars::canonical(name).to_string());
            return Ok(bound);
        }
        if self.is_reserved(name) {
            return Err(self.err(
                e,
                "usebuiltin",
                format!("`{name}` is a built-in name, not a variable (keywords and functions are lower-case)"),
            ));
        }
        Err(self.err(
            e,
            "unrecognisedvar",
            format!("unknown variable `{name}`: assign it first with `{name} := …`, or check the spelling"),
        ))
    }

    fn assign(&mut self, e: &Expr, name: &str, mut bound: Bound) -> Result<Bound, SyntaxError> {
        let name = name.to_ascii_lowercase();
        if self.is_reserved(&name) {
            return Err(self.err(
                e,
                "overridebuiltin",
                format!("`{name}` is a built-in name and cannot be assigned: choose another variable name"),
            ));
        }
        self.assigned_at
            .entry(name.clone())
            .or_insert_with(|| Position::locate(self.src, e.span.start));
        bound.insert(name, false);
        Ok(bound)
    }

    fn walk(&mut self, e: &Expr, bound: Bound) -> Result<Bound, SyntaxError> {
        use ExprKind::*;
        match &e.kind {
            Int(_) | Float(_) | Str(_) | Bool(_) | Null => Ok(bound),
            Var(name) => self.lookup(e, name, bound),
            UnknownCall(name, _) => Err(crate::parser::unknown_function(self.src, e.span.start, name)),
            Call(f, args) => {
                let (min, max) = f.arity();
                let name = f.name();
                if args.len() < min {
                    let code = if min == 1 { "noparams" } else { "notenoughargs" };
                    let plural = if min == 1 { "" } else { "s" };
                    return Err(self.err(
                        e,
                        code,
                        format!("`{name}` needs at least {min} argument{plural}, got {}", args.len()),
                    ));
                }
                if args.len() > max {
                    let plural = if max == 1 { "" } else { "s" };
                    return Err(self.err(
                        e,
                        "toomanyargs",
                        format!("`{name}` takes at most {max} argument{plural}, got {}", args.len()),
                    ));
                }
                self.analysis.cost += f.cost();
                self.lint_call(e, *f, args);
                if matches!(f, Builtin::Set | Builtin::SetVar) {
                    let (Some(name), Some(value)) = (args.first(), args.get(1)) else {
                        return Ok(bound);
                    };
                    let ExprKind::Str(name) = &name.kind else {
                        return Err(self.err(
                            e,
                            "variablevariable",
                            "set and set_var take the variable name as a string literal, e.g. set('x', 1)".into(),
                        ));
                    };
                    let bound = self.walk(value, bound)?;
                    return self.assign(e, name, bound);
                }
                let mut bound = bound;
                for a in args {
                    bound = self.walk(a, bound)?;
                }
                Ok(bound)
            }
            Assign(name, v) => {
                let bound = self.walk(v, bound)?;
                self.assign(e, name, bound)
            }
            IndexAssign(name, i, v) => {
                let bound = self.lookup(e, name, bound)?;
                let bound = self.walk(i, bound)?;
                let bound = self.walk(v, bound)?;
                self.assign(e, name, bound)
            }
            Append(name, v) => {
                let bound = self.lookup(e, name, bound)?;
                let bound = self.walk(v, bound)?;
                self.assign(e, name, bound)
            }
            Cond(c, a, b) => {
                let bound = self.walk(c, bound)?;
                let left = self.walk(a, bound.clone())?;
                let right = match b {
                    Some(b) => self.walk(b, bound)?,
                    None => bound,
                };
                Ok(union(left, right))
            }
            Logic(op @ (LogicOp::And | LogicOp::Or), a, b) => {
                let _ = op;
                let bound = self.walk(a, bound)?;
                let taken = self.walk(b, bound.clone())?;
                Ok(union(taken, bound))
            }
            Compare(op, a, b) => {
                self.analysis.cost += 1;
                self.lint_compare(e, *op, a, b);
                let bound = self.walk(a, bound)?;
                self.walk(b, bound)
            }
            Keyword(op, a, b) => {
                self.analysis.cost += match op {
                    KeywordOp::Rlike | KeywordOp::Irlike => 5,
                    KeywordOp::Like => 3,
                    _ => 1,
                };
                if matches!(op, KeywordOp::Rlike | KeywordOp::Irlike) {
                    self.lint_regex(b);
                }
                let bound = self.walk(a, bound)?;
                self.walk(b, bound)
            }
            _ => {
                let mut bound = bound;
                for c in e.children() {
                    bound = self.walk(c, bound)?;
                }
                Ok(bound)
            }
        }
    }

    fn lint_call(&mut self, _e: &Expr, f: Builtin, args: &[Expr]) {
        let pattern_arg = match f {
            Builtin::GetMatches | Builtin::Rcount if args.len() == 2 => args.first(),
            Builtin::StrReplaceRegexp => args.get(1),
            _ => None,
        };
        if let Some(p) = pattern_arg {
            self.lint_regex(p);
        }
    }

    fn lint_regex(&mut self, pattern: &Expr) {
        let ExprKind::Str(p) = &pattern.kind else { return };
        match pcre::Regex::new(p, false) {
            Err(err) => self.warn(
                pattern,
                "badregex",
                format!("this regular expression does not compile ({err}); the filter will fail when it runs"),
            ),
            Ok(r) if r.matches_empty() => self.warn(
                pattern,
                "match-empty-regex",
                "this regular expression matches the empty string, so it matches every text".into(),
            ),
            Ok(_) => {}
        }
    }

    fn lint_compare(&mut self, e: &Expr, op: CmpOp, a: &Expr, b: &Expr) {
        let ty = |x: &Expr| literal(x).map(|v| v.type_of());
        if matches!(op, CmpOp::StrictEq) {
            if let (Some(x), Some(y)) = (ty(a), ty(b)) {
                if x != y {
                    self.warn(
                        e,
                        "nevertrue",
                        format!("`===` between a {} and a {} is never true", x.name(), y.name()),
                    );
                }
            }
            // Counts and sizes are integers: comparing them strictly to a string never holds.
            for (var, lit) in [(a, b), (b, a)] {
                if let (ExprKind::Var(name), Some(ExprKind::Str(_))) = (&var.kind, Some(&lit.kind)) {
                    if INT_VARS.contains(&vars::canonical(name)) {
                        self.warn(
                            e,
                            "nevertrue",
                            format!("`{name}` is an integer; `===` with a string is never true"),
                        );
                    }
                }
            }
        }
        if let (ExprKind::Call(Builtin::Length | Builtin::Strlen | Builtin::Count, _), Some(Value::Int(n))) =
            (&a.kind, literal(b).as_ref())
        {
            if (op == CmpOp::Lt && *n <= 0) || (op == CmpOp::Le && *n < 0) {
                self.warn(e, "nevertrue", "a length or count is never negative".into());
            }
        }
    }
}

/// Variables that always hold integers when set.
const INT_VARS: &[&str] = &[
    "user_editcount",
    "user_age",
    "page_id",
    "page_namespace",
    "page_age",
    "edit_delta",
    "new_size",
    "old_size",
];

fn literal(e: &Expr) -> Option<Value> {
    Some(match &e.kind {
        ExprKind::Int(i) => Value::Int(*i),
        ExprKind::Float(f) => Value::Float(*f),
        ExprKind::Str(s) => Value::Str(std::sync::Arc::clone(s)),
        ExprKind::Bool(b) => Value::Bool(*b),
        ExprKind::Null => Value::Null,
        _ => return None,
    })
}

fn union(mut left: Bound, right: Bound) -> Bound {
    for (k, v) in right {
        let e = left.entry(k).or_insert(false);
        *e = *e || v;
    }
    left
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parser::parse;

    fn run(src: &str) -> Result<Analysis, &'static str> {
        let root = parse(src).map_err(|e| e.code)?;
        check(src, root.as_ref(), &KnownVariables::default()).map_err(|e| e.code)
    }

    #[test]
    fn abusefilter_refusals() {
        assert_eq!(run("a").err(), Some("unrecognisedvar"));
        assert_eq!(run("x[0] := 1").err(), Some("unrecognisedvar"));
        assert_eq!(run("IF").err(), Some("usebuiltin"));
        assert_eq!(run("lcase := 1").err(), Some("overridebuiltin"));
        assert_eq!(run("added_lines := 1").err(), Some("overridebuiltin"));
        assert_eq!(run("minor_edit").err(), Some("disabledvar"));
        assert_eq!(run("x := 'a'; set(x, 1)").err(), Some("variablevariable"));
        assert_eq!(run("x; x := 1").err(), Some("unrecognisedvar"));
        assert_eq!(run("LCASE('a')").err(), Some("unknownfunction"));
        assert_eq!(run("lcase()").err(), Some("noparams"));
        assert_eq!(run("substr('a')").err(), Some("notenoughargs"));
        assert_eq!(run("lcase('a', 'b')").err(), Some("toomanyargs"));
        // In evaluation order, as AbuseFilter's checker walks the tree.
        assert_eq!(run("se; t(1)").err(), Some("unrecognisedvar"));
        assert_eq!(run("t(se)").err(), Some("unknownfunction"));
        assert_eq!(run("lcase(x, 1)").err(), Some("toomanyargs"));
        assert!(run("set('X', 3); x").is_ok());
        assert!(run("if true then (a := 1) end; a").is_ok());
        assert!(run("false & (a := 1); a").is_ok());
    }

    #[test]
    fn variables_and_warnings() {
        let a =
            run("x := 1; article_text rlike '(' & user_editcount === '5' & length(summary) < 0").unwrap_or_default();
        let vars: Vec<_> = a.variables.iter().map(String::as_str).collect();
        assert_eq!(vars, ["page_title", "summary", "user_editcount"]);
        let codes: Vec<_> = a.warnings.iter().map(|w| w.code).collect();
        assert_eq!(
            codes,
            ["unusedvar", "deprecatedvar", "badregex", "nevertrue", "nevertrue"]
        );
    }
}
