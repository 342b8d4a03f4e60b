//! The parser: one function per precedence level, as AbuseFilter's `AFPTreeParser`.
//!
//! From loosest to tightest: `;` sequences, assignment (`:=`, `x[i] :=`, `x[] :=`),
//! conditionals (`if … then … else … end`, `?:`), `& | ^` (one level, left-associative),
//! comparisons (at most one equality and one ordering operator in a row, like PHP), `+ -`,
//! `* / %`, `**` (left-associative), `!`, the keyword operators (`in`, `contains`, `like`,
//! `matches`, `rlike`, `regex`, `irlike`; not associative), unary `+ -`, indexing `a[i]`,
//! parentheses, function calls, atoms.
//!
//! Untrusted input: nesting of parentheses, brackets, calls and conditionals is bounded by
//! [`MAX_NESTING`], and the depth of the finished tree by [`MAX_TREE_DEPTH`], so neither the
//! parser nor any later pass over the tree can exhaust the stack.

use crate::ast::{ArithOp, CmpOp, Expr, ExprKind, KeywordOp, LogicOp, Span};
use crate::builtins::Builtin;
use crate::error::SyntaxError;
use crate::lexer::{tokenize, Tok, Token};

/// How deeply parentheses, brackets, calls and conditionals may nest.
pub const MAX_NESTING: usize = 64;
/// How deep the tree may be (a chain `a & b & c …` is as deep as it is long).
pub const MAX_TREE_DEPTH: usize = 2000;

/// Parses a rule. `Ok(None)` is the empty rule (only comments, or `(;)`), which evaluates to null.
///
/// As in AbuseFilter, the whole rule is parsed before an empty operand (`1 + (;)`, which
/// AbuseFilter's checker crashes on) is refused; unknown functions and wrong argument counts are
/// left to the checker ([`crate::check`]), which reports them in evaluation order.
pub fn parse(src: &str) -> Result<Option<Expr>, SyntaxError> {
    let mut toks = tokenize(src)?;
    // A virtual token before the first: AbuseFilter's levels start by moving to the next token.
    toks.insert(
        0,
        Token {
            tok: Tok::Semicolon,
            start: 0,
            end: 0,
        },
    );
    let mut p = Parser {
        src,
        toks,
        i: 0,
        nesting: 0,
        empty: None,
    };
    let root = p.level_semicolon()?;
    if p.cur().tok != Tok::End {
        return Err(p.err_here(
            "unexpectedatend",
            format!(
                "unexpected {} : the rule should end here, or an operator is missing before it",
                p.cur().tok.describe()
            ),
        ));
    }
    if let Some(e) = p.empty {
        return Err(e);
    }
    if let Some(root) = &root {
        check_depth(src, root)?;
    }
    Ok(root)
}

fn check_depth(src: &str, root: &Expr) -> Result<(), SyntaxError> {
    let mut stack = vec![(root, 1usize)];
    while let Some((e, d)) = stack.pop() {
        if d > MAX_TREE_DEPTH {
            return Err(SyntaxError::new(
                src,
                e.span.start,
                "toodeep",
                format!("the rule nests more than {MAX_TREE_DEPTH} operations deep; split it or use contains_any/equals_to_any for long lists"),
            ));
        }
        for c in e.children() {
            stack.push((c, d + 1));
        }
    }
    Ok(())
}

struct Parser<'a> {
    src: &'a str,
    toks: Vec<Token>,
    i: usize,
    nesting: usize,
    /// The first empty operand met, refused once the whole rule has parsed.
    empty: Option<SyntaxError>,
}

type PResult = Result<Option<Expr>, SyntaxError>;

impl Parser<'_> {
    fn cur(&self) -> &Token {
        // The token list always ends with End and `i` never passes it.
        &self.toks[self.i.min(self.toks.len() - 1)]
    }

    fn peek(&self) -> &Tok {
        &self.toks[(self.i + 1).min(self.toks.len() - 1)].tok
    }

    fn advance(&mut self) {
        if self.i + 1 < self.toks.len() {
            self.i += 1;
        }
    }

    fn span(&self) -> Span {
        let t = self.cur();
        Span {
            start: t.start,
            end: t.end,
        }
    }

    fn err_here(&self, code: &'static str, msg: impl Into<String>) -> SyntaxError {
        SyntaxError::new(self.src, self.cur().start, code, msg)
    }

    fn expected(&self, what: &str) -> SyntaxError {
        self.err_here(
            "expectednotfound",
            format!("expected {what}, found {}", self.cur().tok.describe()),
        )
    }

    fn is_op(&self, op: &str) -> bool {
        matches!(self.cur().tok, Tok::Op(o) if o == op)
    }

    fn is_kw(&self, kw: &str) -> bool {
        matches!(self.cur().tok, Tok::Keyword(k) if k == kw)
    }

    /// An operand that must be present: AbuseFilter's syntax checker fails on an empty one
    /// such as `(;)` inside an expression, after the whole rule has parsed. Until then a null
    /// stands in for it.
    fn need(&mut self, e: Option<Expr>, at: Span) -> Result<Expr, SyntaxError> {
        Ok(match e {
            Some(e) => e,
            None => {
                if self.empty.is_none() {
                    self.empty = Some(SyntaxError::new(
                        self.src,
                        at.start,
                        "emptyexpression",
                        "an empty expression `(;)` cannot be used here: give it a value",
                    ));
                }
                Expr::new(ExprKind::Null, at)
            }
        })
    }

    fn enter(&mut self) -> Result<(), SyntaxError> {
        self.nesting += 1;
        if self.nesting > MAX_NESTING {
            return Err(self.err_here(
                "toodeep",
                format!("brackets, calls and conditionals nest more than {MAX_NESTING} deep"),
            ));
        }
        Ok(())
    }

    fn leave(&mut self) {
        self.nesting -= 1;
    }

    /// `a; b; c` (moves to the first token itself). Stops before `)`, `]`-less ends and End.
    fn level_semicolon(&mut self) -> PResult {
        self.enter()?;
        let mut stmts = Vec::new();
        let mut first_span = None;
        loop {
            self.advance();
            if self.cur().tok == Tok::End || self.cur().tok == Tok::RParen {
                break;
            }
            if self.cur().tok == Tok::Semicolon {
                continue;
            }
            let at = self.span();
            first_span.get_or_insert(at);
            stmts.push((self.level_set()?, at));
            if self.cur().tok != Tok::Semicolon {
                break;
            }
        }
        self.leave();
        match stmts.len() {
            0 => Ok(None),
            1 => Ok(stmts.pop().and_then(|(e, _)| e)),
            _ => {
                let span = first_span.unwrap_or_default();
                let mut items = Vec::with_capacity(stmts.len());
                for (e, at) in stmts {
                    items.push(self.need(e, at)?);
                }
                Ok(Some(Expr::new(ExprKind::Seq(items), span)))
            }
        }
    }

    // The levels below recurse once per nesting level, so their own frames stay small: node
    // building and rarely taken paths live in separate functions (a debug build otherwise needs
    // tens of kilobytes of stack per level).

    /// Assignment statements, tried speculatively and rolled back as AbuseFilter does.
    fn level_set(&mut self) -> PResult {
        if matches!(self.cur().tok, Tok::Ident(_)) {
            if let Some(assignment) = self.assignment()? {
                return Ok(Some(assignment));
            }
        }
        self.level_conditions()
    }

    /// `name := v`, `name[i] := v`, `name[] := v` at an identifier; `None` (and the position
    /// restored) when it is not an assignment.
    #[inline(never)]
    fn assignment(&mut self) -> Result<Option<Expr>, SyntaxError> {
        let Tok::Ident(name) = &self.cur().tok else {
            return Ok(None);
        };
        let name = name.to_ascii_lowercase();
        let start = self.i;
        self.advance();
        if self.is_op(":=") {
            let at = self.span();
            self.advance();
            let v = self.level_set()?;
            let v = self.need(v, at)?;
            return Ok(Some(Expr::new(ExprKind::Assign(name, Box::new(v)), at)));
        }
        if self.cur().tok == Tok::LBracket {
            self.advance();
            let index = if self.cur().tok == Tok::RBracket {
                None
            } else {
                self.i = start + 1;
                let at = self.span();
                let idx = self.level_semicolon()?;
                if self.cur().tok != Tok::RBracket {
                    return Err(self.expected("`]`"));
                }
                Some((idx, at))
            };
            self.advance();
            if self.is_op(":=") {
                let at = self.span();
                self.advance();
                let v = self.level_set()?;
                let v = self.need(v, at)?;
                return Ok(Some(match index {
                    None => Expr::new(ExprKind::Append(name, Box::new(v)), at),
                    Some((idx, idx_at)) => {
                        let idx = self.need(idx, idx_at)?;
                        Expr::new(ExprKind::IndexAssign(name, Box::new(idx), Box::new(v)), at)
                    }
                }));
            }
        }
        self.i = start;
        Ok(None)
    }

    fn level_conditions(&mut self) -> PResult {
        if self.is_kw("if") {
            return self.if_then_else();
        }
        let cond = self.level_boolops()?;
        if self.is_op("?") {
            return self.ternary(cond);
        }
        Ok(cond)
    }

    #[inline(never)]
    fn if_then_else(&mut self) -> PResult {
        let at = self.span();
        self.enter()?;
        self.advance();
        let cond = self.level_boolops()?;
        let cond = self.need(cond, at)?;
        if !self.is_kw("then") {
            return Err(self.expected("`then`"));
        }
        let then_at = self.span();
        self.advance();
        let yes = self.level_conditions()?;
        let yes = self.need(yes, then_at)?;
        let no = if self.is_kw("else") {
            self.advance();
            self.level_conditions()?
        } else {
            None
        };
        if !self.is_kw("end") {
            return Err(self.expected("`end`"));
        }
        self.advance();
        self.leave();
        Ok(Some(Expr::new(
            ExprKind::Cond(Box::new(cond), Box::new(yes), no.map(Box::new)),
            at,
        )))
    }

    #[inline(never)]
    fn ternary(&mut self, cond: Option<Expr>) -> PResult {
        let at = self.span();
        let cond = self.need(cond, at)?;
        self.enter()?;
        self.advance();
        let yes = self.level_conditions()?;
        let yes = self.need(yes, at)?;
        if !self.is_op(":") {
            return Err(self.expected("`:`"));
        }
        self.advance();
        let no = self.level_conditions()?;
        self.leave();
        Ok(Some(Expr::new(
            ExprKind::Cond(Box::new(cond), Box::new(yes), no.map(Box::new)),
            at,
        )))
    }

    /// The operator at the current token and its right operand (parsed by `next`), joined to
    /// `left` by `make`.
    #[inline(never)]
    fn binary(
        &mut self,
        left: Option<Expr>,
        next: fn(&mut Self) -> PResult,
        make: impl FnOnce(Box<Expr>, Box<Expr>) -> ExprKind,
    ) -> PResult {
        let at = self.span();
        let l = self.need(left, at)?;
        self.advance();
        let r = next(self)?;
        let r = self.need(r, at)?;
        Ok(Some(Expr::new(make(Box::new(l), Box::new(r)), at)))
    }

    fn level_boolops(&mut self) -> PResult {
        let mut left = self.level_compares()?;
        loop {
            let op = match self.cur().tok {
                Tok::Op("&") => LogicOp::And,
                Tok::Op("|") => LogicOp::Or,
                Tok::Op("^") => LogicOp::Xor,
                _ => return Ok(left),
            };
            left = self.binary(left, Self::level_compares, |l, r| ExprKind::Logic(op, l, r))?;
        }
    }

    fn level_compares(&mut self) -> PResult {
        let mut left = self.level_sum()?;
        let (mut eq_allowed, mut ord_allowed) = (true, true);
        loop {
            let op = match self.cur().tok {
                Tok::Op("==") | Tok::Op("=") => CmpOp::Eq,
                Tok::Op("===") => CmpOp::StrictEq,
                Tok::Op("!=") => CmpOp::Ne,
                Tok::Op("!==") => CmpOp::StrictNe,
                Tok::Op("<") => CmpOp::Lt,
                Tok::Op(">") => CmpOp::Gt,
                Tok::Op("<=") => CmpOp::Le,
                Tok::Op(">=") => CmpOp::Ge,
                _ => return Ok(left),
            };
            if op.is_equality() {
                if !eq_allowed {
                    return Ok(left);
                }
                eq_allowed = false;
            } else {
                if !ord_allowed {
                    return Ok(left);
                }
                ord_allowed = false;
            }
            left = self.binary(left, Self::level_sum, |l, r| ExprKind::Compare(op, l, r))?;
        }
    }

    fn level_sum(&mut self) -> PResult {
        let mut left = self.level_mul()?;
        loop {
            let op = match self.cur().tok {
                Tok::Op("+") => ArithOp::Add,
                Tok::Op("-") => ArithOp::Sub,
                _ => return Ok(left),
            };
            left = self.binary(left, Self::level_mul, |l, r| ExprKind::Arith(op, l, r))?;
        }
    }

    fn level_mul(&mut self) -> PResult {
        let mut left = self.level_pow()?;
        loop {
            let op = match self.cur().tok {
                Tok::Op("*") => ArithOp::Mul,
                Tok::Op("/") => ArithOp::Div,
                Tok::Op("%") => ArithOp::Mod,
                _ => return Ok(left),
            };
            left = self.binary(left, Self::level_pow, |l, r| ExprKind::Arith(op, l, r))?;
        }
    }

    fn level_pow(&mut self) -> PResult {
        let mut base = self.level_boolinvert()?;
        while self.is_op("**") {
            base = self.binary(base, Self::level_boolinvert, ExprKind::Pow)?;
        }
        Ok(base)
    }

    fn level_boolinvert(&mut self) -> PResult {
        if self.is_op("!") {
            return self.prefix(Self::level_keyword, ExprKind::Not);
        }
        self.level_keyword()
    }

    /// A prefix operator at the current token and its operand (parsed by `next`).
    #[inline(never)]
    fn prefix(&mut self, next: fn(&mut Self) -> PResult, make: impl FnOnce(Box<Expr>) -> ExprKind) -> PResult {
        let at = self.span();
        self.advance();
        let a = next(self)?;
        let a = self.need(a, at)?;
        Ok(Some(Expr::new(make(Box::new(a)), at)))
    }

    fn level_keyword(&mut self) -> PResult {
        let left = self.level_unary()?;
        let op = match self.cur().tok {
            Tok::Keyword("in") => KeywordOp::In,
            Tok::Keyword("contains") => KeywordOp::Contains,
            Tok::Keyword("like") | Tok::Keyword("matches") => KeywordOp::Like,
            Tok::Keyword("rlike") | Tok::Keyword("regex") => KeywordOp::Rlike,
            Tok::Keyword("irlike") => KeywordOp::Irlike,
            _ => return Ok(left),
        };
        self.binary(left, Self::level_unary, |l, r| ExprKind::Keyword(op, l, r))
    }

    fn level_unary(&mut self) -> PResult {
        let neg = match self.cur().tok {
            Tok::Op("-") => true,
            Tok::Op("+") => false,
            _ => return self.level_array_elements(),
        };
        self.prefix(Self::level_array_elements, |a| ExprKind::Unary(neg, a))
    }

    fn level_array_elements(&mut self) -> PResult {
        let mut base = self.level_parenthesis()?;
        while self.cur().tok == Tok::LBracket {
            base = self.index(base)?;
        }
        Ok(base)
    }

    /// `base[index]` at the `[`.
    #[inline(never)]
    fn index(&mut self, base: Option<Expr>) -> PResult {
        let at = self.span();
        let b = self.need(base, at)?;
        self.enter()?;
        let idx = self.level_semicolon()?;
        let idx = self.need(idx, at)?;
        if self.cur().tok != Tok::RBracket {
            return Err(self.expected("`]`"));
        }
        self.leave();
        self.advance();
        Ok(Some(Expr::new(ExprKind::Index(Box::new(b), Box::new(idx)), at)))
    }

    fn level_parenthesis(&mut self) -> PResult {
        if self.cur().tok == Tok::LParen {
            if *self.peek() == Tok::RParen {
                return Err(self.err_here("unexpectedtoken", "empty parentheses `()`: put an expression inside"));
            }
            let r = self.level_semicolon()?;
            if self.cur().tok != Tok::RParen {
                return Err(self.expected("`)`"));
            }
            self.advance();
            return Ok(r);
        }
        self.level_function()
    }

    fn level_function(&mut self) -> PResult {
        let Tok::Ident(name) = &self.cur().tok else {
            return self.level_atom();
        };
        if *self.peek() != Tok::LParen {
            return self.level_atom();
        }
        let name = name.clone();
        let at = self.span();
        let func = Builtin::from_name(&name);
        self.enter()?;
        self.advance();
        let mut args = Vec::new();
        if *self.peek() != Tok::RParen {
            loop {
                let arg_at = self.span();
                match self.level_semicolon()? {
                    Some(a) => args.push(a),
                    // A variadic function skips an empty argument (AbuseFilter allows a trailing comma there).
                    None if func.is_some_and(Builtin::is_variadic) => {}
                    // AbuseFilter's parser asks whether an unknown function is variadic, and fails.
                    None if func.is_none() => return Err(unknown_function(self.src, at.start, &name)),
                    None => {
                        return Err(SyntaxError::new(
                            self.src,
                            arg_at.end.max(self.cur().start),
                            "unexpectedtoken",
                            format!("missing argument to `{name}`: found {}", self.cur().tok.describe()),
                        ))
                    }
                }
                if self.cur().tok != Tok::Comma {
                    break;
                }
            }
        } else {
            self.advance();
        }
        if self.cur().tok != Tok::RParen {
            return Err(self.expected("`)` to close the call"));
        }
        self.leave();
        self.advance();
        Ok(Some(Expr::new(
            match func {
                Some(func) => ExprKind::Call(func, args),
                None => ExprKind::UnknownCall(name.into(), args),
            },
            at,
        )))
    }

    fn level_atom(&mut self) -> PResult {
        let at = self.span();
        let kind = match &self.cur().tok {
            Tok::Ident(name) => ExprKind::Var(crate::ast::VarName::new(name.to_ascii_lowercase())),
            Tok::Str(s) => ExprKind::Str(s.as_str().into()),
            Tok::Int(i) => ExprKind::Int(*i),
            Tok::Float(f) => ExprKind::Float(*f),
            Tok::Keyword("true") => ExprKind::Bool(true),
            Tok::Keyword("false") => ExprKind::Bool(false),
            Tok::Keyword("null") => ExprKind::Null,
            Tok::Keyword(k) => {
                return Err(self.err_here(
                    "unrecognisedkeyword",
                    format!("the keyword `{k}` cannot start an expression"),
                ));
            }
            Tok::LBracket => {
                self.enter()?;
                let mut items = Vec::new();
                loop {
                    self.advance();
                    if self.cur().tok == Tok::RBracket {
                        break;
                    }
                    let item_at = self.span();
                    let item = self.level_set()?;
                    items.push(self.need(item, item_at)?);
                    if self.cur().tok == Tok::RBracket {
                        break;
                    }
                    if self.cur().tok != Tok::Comma {
                        return Err(self.expected("`,` or `]`"));
                    }
                }
                self.leave();
                ExprKind::Array(items)
            }
            other => {
                let what = other.describe();
                return Err(self.err_here(
                    "unexpectedtoken",
                    format!("unexpected {what}: expected a value, a variable or `(`"),
                ));
            }
        };
        self.advance();
        Ok(Some(Expr::new(kind, at)))
    }
}

/// The error for a call of a function that does not exist.
pub(crate) fn unknown_function(src: &str, offset: usize, name: &str) -> SyntaxError {
    SyntaxError::new(
        src,
        offset,
        "unknownfunction",
        format!("`{name}` is not a function (function names are lower-case: lcase, contains_any, rlike…)"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(src: &str) -> &'static str {
        match parse(src) {
            Ok(_) => "ok",
            Err(e) => e.code,
        }
    }

    fn printed(src: &str) -> String {
        match parse(src) {
            Ok(Some(e)) => e.to_string(),
            Ok(None) => "<empty>".into(),
            Err(e) => format!("error {}", e.code),
        }
    }

    #[test]
    fn precedence_and_associativity() {
        assert_eq!(printed("1 + 2 * 3"), "(1 + (2 * 3))");
        assert_eq!(printed("2 ** 3 ** 2"), "((2 ** 3) ** 2)");
        assert_eq!(printed("-2 ** 2"), "((-2) ** 2)");
        assert_eq!(printed("a & b | c ^ d"), "(((a & b) | c) ^ d)");
        assert_eq!(printed("!a contains b"), "(!(a contains b))");
        assert_eq!(printed("1 < 2 == true"), "((1 < 2) == true)");
        assert_eq!(printed("x := y := 3"), "(x := (y := 3))");
        assert_eq!(
            printed("a ? b : c ? d : e"),
            "(if a then b else (if c then d else e end) end)"
        );
        assert_eq!(printed("A matches 'x'"), "(a like \"x\")");
        assert_eq!(printed("x[] := 1; x[0] := 2"), "((x[] := 1); (x[0] := 2))");
    }

    #[test]
    fn refusals_match_abusefilter() {
        assert_eq!(code("1 < 2 < 3"), "unexpectedatend");
        assert_eq!(code("1 == 1 == 1"), "unexpectedatend");
        assert_eq!(code("!!1"), "unexpectedtoken");
        assert_eq!(code("--1"), "unexpectedtoken");
        assert_eq!(code("a := 1; if true then a := 2 end"), "expectednotfound");
        assert_eq!(code("();"), "unexpectedtoken");
        assert_eq!(code("1 +"), "unexpectedtoken");
        // Function names and argument counts are the checker's, after the whole rule parsed.
        assert_eq!(code("LCASE('a')"), "ok");
        assert_eq!(code("lcase()"), "ok");
        assert_eq!(code("foo(1) )"), "unexpectedatend");
        assert_eq!(code("foo(1, )"), "unknownfunction");
        assert_eq!(code("(;) + )"), "unexpectedtoken");
        assert_eq!(code("count('a', )"), "unexpectedtoken");
        assert_eq!(code("contains_any('a', 'b', )"), "ok");
        assert_eq!(code("(;)"), "ok");
        assert_eq!(code("1 + (;)"), "emptyexpression");
        assert_eq!(code("if 1 then 2 else (;) end"), "ok");
        assert_eq!(code("then"), "unrecognisedkeyword");
    }

    #[test]
    fn nesting_is_bounded() {
        let deep = format!("{}1{}", "(".repeat(70), ")".repeat(70));
        assert_eq!(code(&deep), "toodeep");
    }

    #[test]
    fn long_chains_are_bounded() {
        let long = vec!["1"; 2500].join(" & ");
        assert_eq!(code(&long), "toodeep");
    }
}
