//! The syntax tree, and a printer whose output parses back to the same tree.

use std::fmt::{self, Write as _};

use crate::builtins::Builtin;

/// A byte range of the rule text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Span {
    /// First byte.
    pub start: usize,
    /// One past the last byte.
    pub end: usize,
}

/// A node of the tree.
#[derive(Debug, Clone, PartialEq)]
pub struct Expr {
    /// What it is.
    pub kind: ExprKind,
    /// Where AbuseFilter would report it (the operator, the function name, the literal).
    pub span: Span,
}

/// Comparison operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CmpOp {
    /// `==` or `=`
    Eq,
    /// `!=`
    Ne,
    /// `===`
    StrictEq,
    /// `!==`
    StrictNe,
    /// `<`
    Lt,
    /// `>`
    Gt,
    /// `<=`
    Le,
    /// `>=`
    Ge,
}

impl CmpOp {
    /// The operator as written.
    pub fn as_str(self) -> &'static str {
        match self {
            CmpOp::Eq => "==",
            CmpOp::Ne => "!=",
            CmpOp::StrictEq => "===",
            CmpOp::StrictNe => "!==",
            CmpOp::Lt => "<",
            CmpOp::Gt => ">",
            CmpOp::Le => "<=",
            CmpOp::Ge => ">=",
        }
    }
    /// Whether this is an equality (rather than an ordering) operator.
    pub fn is_equality(self) -> bool {
        matches!(self, CmpOp::Eq | CmpOp::Ne | CmpOp::StrictEq | CmpOp::StrictNe)
    }
}

/// `&`, `|`, `^`: one precedence level, left-associative.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogicOp {
    /// `&` (short-circuit)
    And,
    /// `|` (short-circuit)
    Or,
    /// `^`
    Xor,
}

/// The keyword operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeywordOp {
    /// `a in b`: b contains a.
    In,
    /// `a contains b`
    Contains,
    /// `like` / `matches`: shell-style wildcards.
    Like,
    /// `rlike` / `regex`: PCRE.
    Rlike,
    /// `irlike`: caseless PCRE.
    Irlike,
}

impl KeywordOp {
    /// The canonical spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            KeywordOp::In => "in",
            KeywordOp::Contains => "contains",
            KeywordOp::Like => "like",
            KeywordOp::Rlike => "rlike",
            KeywordOp::Irlike => "irlike",
        }
    }
}

/// Arithmetic operators of the additive and multiplicative levels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArithOp {
    /// `+`
    Add,
    /// `-`
    Sub,
    /// `*`
    Mul,
    /// `/`
    Div,
    /// `%`
    Mod,
}

impl ArithOp {
    /// The operator as written.
    pub fn as_str(self) -> &'static str {
        match self {
            ArithOp::Add => "+",
            ArithOp::Sub => "-",
            ArithOp::Mul => "*",
            ArithOp::Div => "/",
            ArithOp::Mod => "%",
        }
    }
}

/// A variable's lower-cased name, with the place of its built-in (canonical) variable in
/// [`crate::vars::BUILTIN`], found once when the rule is parsed: an evaluator keeps the
/// built-ins' values by that place, so reading one is an index, not a hash of its name.
#[derive(Debug, Clone)]
pub struct VarName {
    name: Box<str>,
    builtin: Option<u16>,
}

impl VarName {
    /// `name` (lower-cased by the caller), with its built-in's place if it names one.
    pub fn new(name: impl Into<Box<str>>) -> VarName {
        let name = name.into();
        let builtin = crate::vars::builtin_index(crate::vars::canonical(&name)).and_then(|i| u16::try_from(i).ok());
        VarName { name, builtin }
    }

    /// The place of the built-in variable this names (deprecated names give their
    /// replacement's), `None` for any other name.
    pub fn builtin(&self) -> Option<usize> {
        self.builtin.map(usize::from)
    }
}

impl std::ops::Deref for VarName {
    type Target = str;
    fn deref(&self) -> &str {
        &self.name
    }
}

impl fmt::Display for VarName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)
    }
}

impl PartialEq for VarName {
    fn eq(&self, other: &VarName) -> bool {
        self.name == other.name
    }
}

impl From<String> for VarName {
    fn from(name: String) -> VarName {
        VarName::new(name)
    }
}

/// The kinds of node.
#[derive(Debug, Clone, PartialEq)]
pub enum ExprKind {
    /// An integer literal.
    Int(i64),
    /// A float literal.
    Float(f64),
    /// A string literal (shared, so evaluating it allocates nothing).
    Str(std::sync::Arc<str>),
    /// `true` / `false`
    Bool(bool),
    /// `null`
    Null,
    /// A variable read; the name is lower-cased (names are case-insensitive).
    Var(VarName),
    /// `[a, b]`
    Array(Vec<Expr>),
    /// A builtin call.
    Call(Builtin, Vec<Expr>),
    /// A call of a function that does not exist (name as written): it parses, as in
    /// AbuseFilter, and the checker refuses it.
    UnknownCall(Box<str>, Vec<Expr>),
    /// `a[i]`
    Index(Box<Expr>, Box<Expr>),
    /// Unary `-` (`true`) or `+` (`false`).
    Unary(bool, Box<Expr>),
    /// `!a`
    Not(Box<Expr>),
    /// `a ** b`
    Pow(Box<Expr>, Box<Expr>),
    /// `+ - * / %`
    Arith(ArithOp, Box<Expr>, Box<Expr>),
    /// Comparisons.
    Compare(CmpOp, Box<Expr>, Box<Expr>),
    /// `& | ^`
    Logic(LogicOp, Box<Expr>, Box<Expr>),
    /// `in`, `contains`, `like`, `rlike`, `irlike` (and their aliases).
    Keyword(KeywordOp, Box<Expr>, Box<Expr>),
    /// `c ? a : b` and `if c then a [else b] end` (a missing else reads as null).
    Cond(Box<Expr>, Box<Expr>, Option<Box<Expr>>),
    /// `name := value`
    Assign(String, Box<Expr>),
    /// `name[index] := value`
    IndexAssign(String, Box<Expr>, Box<Expr>),
    /// `name[] := value`
    Append(String, Box<Expr>),
    /// `a; b; c`
    Seq(Vec<Expr>),
}

impl Expr {
    pub(crate) fn new(kind: ExprKind, span: Span) -> Expr {
        Expr { kind, span }
    }

    /// Direct children, in evaluation order.
    pub fn children(&self) -> Vec<&Expr> {
        use ExprKind::*;
        match &self.kind {
            Int(_) | Float(_) | Str(_) | Bool(_) | Null | Var(_) => vec![],
            Array(items) | Call(_, items) | UnknownCall(_, items) | Seq(items) => items.iter().collect(),
            Index(a, b) | Pow(a, b) | Arith(_, a, b) | Compare(_, a, b) | Logic(_, a, b) | Keyword(_, a, b) => {
                vec![a, b]
            }
            Unary(_, a) | Not(a) | Assign(_, a) | Append(_, a) => vec![a],
            IndexAssign(_, a, b) => vec![a, b],
            Cond(c, a, b) => {
                let mut v: Vec<&Expr> = vec![c, a];
                if let Some(b) = b {
                    v.push(b);
                }
                v
            }
        }
    }
}

/// Prints a tree so that it parses back to the same tree: every compound expression gets
/// parentheses, strings are re-escaped.
impl fmt::Display for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut s = String::new();
        print(self, &mut s);
        f.write_str(&s)
    }
}

fn print(e: &Expr, out: &mut String) {
    use ExprKind::*;
    match &e.kind {
        Int(i) => {
            if *i < 0 {
                // The language has no negative literals; only i64::MIN can't be spelled as -(n).
                let _ = write!(out, "(-{})", i.unsigned_abs());
            } else {
                let _ = write!(out, "{i}");
            }
        }
        Float(x) => print_float(*x, out),
        Str(s) => print_string(s, out),
        Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Null => out.push_str("null"),
        Var(v) => out.push_str(v),
        Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                print_stmt(item, out);
            }
            out.push(']');
        }
        Call(b, args) => print_call(b.name(), args, out),
        UnknownCall(name, args) => print_call(name, args, out),
        Index(a, i) => {
            print_operand(a, out);
            out.push('[');
            print_stmt(i, out);
            out.push(']');
        }
        Unary(neg, a) => {
            out.push('(');
            out.push(if *neg { '-' } else { '+' });
            print_operand(a, out);
            out.push(')');
        }
        Not(a) => {
            out.push_str("(!");
            print_operand(a, out);
            out.push(')');
        }
        Pow(a, b) => binary(out, a, "**", b),
        Arith(op, a, b) => binary(out, a, op.as_str(), b),
        Compare(op, a, b) => binary(out, a, op.as_str(), b),
        Logic(op, a, b) => binary(
            out,
            a,
            match op {
                LogicOp::And => "&",
                LogicOp::Or => "|",
                LogicOp::Xor => "^",
            },
            b,
        ),
        Keyword(op, a, b) => binary(out, a, op.as_str(), b),
        Cond(c, a, b) => {
            out.push_str("(if ");
            print_operand(c, out);
            out.push_str(" then ");
            print_operand(a, out);
            if let Some(b) = b {
                out.push_str(" else ");
                print_operand(b, out);
            }
            out.push_str(" end)");
        }
        Assign(n, v) => {
            out.push('(');
            out.push_str(n);
            out.push_str(" := ");
            print_operand(v, out);
            out.push(')');
        }
        IndexAssign(n, i, v) => {
            out.push('(');
            out.push_str(n);
            out.push('[');
            print_stmt(i, out);
            out.push_str("] := ");
            print_operand(v, out);
            out.push(')');
        }
        Append(n, v) => {
            out.push('(');
            out.push_str(n);
            out.push_str("[] := ");
            print_operand(v, out);
            out.push(')');
        }
        Seq(items) => {
            out.push('(');
            for (i, s) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str("; ");
                }
                print_stmt(s, out);
            }
            out.push(')');
        }
    }
}

fn print_call(name: &str, args: &[Expr], out: &mut String) {
    out.push_str(name);
    out.push('(');
    for (i, a) in args.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        print_stmt(a, out);
    }
    out.push(')');
}

fn print_stmt(e: &Expr, out: &mut String) {
    print(e, out)
}

/// Operands that are not atoms are already parenthesised by `print`; atoms need nothing.
fn print_operand(e: &Expr, out: &mut String) {
    print(e, out)
}

fn binary(out: &mut String, a: &Expr, op: &str, b: &Expr) {
    out.push('(');
    print_operand(a, out);
    out.push(' ');
    out.push_str(op);
    out.push(' ');
    print_operand(b, out);
    out.push(')');
}

fn print_float(x: f64, out: &mut String) {
    // No exponent syntax and no literal for non-finite values: spell them as arithmetic.
    if x.is_nan() {
        out.push_str("(0.0 * (1.0 / 0.0))");
    } else if x.is_infinite() {
        out.push_str(if x > 0.0 { "(1.0 / 0.0)" } else { "(-(1.0 / 0.0))" });
    } else if x < 0.0 || (x == 0.0 && x.is_sign_negative()) {
        out.push_str("(-");
        print_float(-x, out);
        out.push(')');
    } else {
        let s = format!("{x:?}");
        if s.contains('e') {
            // Exact decimal expansion: Rust's Display never uses an exponent.
            let d = format!("{x}");
            out.push_str(&d);
            if !d.contains('.') {
                out.push_str(".0");
            }
        } else {
            out.push_str(&s);
        }
    }
}

fn print_string(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c => out.push(c),
        }
    }
    out.push('"');
}
