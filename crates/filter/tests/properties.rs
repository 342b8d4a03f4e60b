//! Property tests for the language: the printer round-trips, and parsing, checking and
//! evaluating never panic and report positions inside the text.
//!
//! Every property runs on its own thread with a large stack: debug builds use big frames, and
//! the deep-nesting properties build trees up to `parser::MAX_TREE_DEPTH` deep on purpose.
//! The number of cases per property is 256, or `PROPTEST_CASES` when set.

use std::collections::HashMap;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use proptest::collection::vec;
use proptest::option;
use proptest::prelude::*;
use proptest::sample::select;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use serde_json::Value as Json;
use wikiguard_filter::ast::{ArithOp, CmpOp, Expr, ExprKind, KeywordOp, LogicOp, Span};
use wikiguard_filter::builtins::{self, Builtin};
use wikiguard_filter::lexer::{self, Tok, KEYWORDS};
use wikiguard_filter::{parser, Engine, Evaluator, Outcome, Position, Program, Value};

// ---------------------------------------------------------------------------------------------
// Harness
// ---------------------------------------------------------------------------------------------

/// Stack for the thread a property runs on (reserved, not committed, until used).
const STACK: usize = 256 << 20;
/// No rule in these tests should take anywhere near this long, even in a debug build.
const TIME_BOUND: Duration = Duration::from_secs(10);
/// The condition limit of the limited engine (AbuseFilter's default is 1000; a small one is
/// reached by generated rules).
const LIMIT: usize = 5;

fn cases(default: u32) -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(default)
}

/// Runs `test` on `cases` values of the strategy `strategy` makes, on a thread with a large stack.
fn run_property<S, F>(default_cases: u32, strategy: F, test: fn(S::Value) -> Result<(), TestCaseError>)
where
    S: Strategy,
    S::Value: 'static,
    F: FnOnce() -> S + Send + 'static,
{
    let handle = std::thread::Builder::new()
        .stack_size(STACK)
        .spawn(move || {
            let strategy = strategy();
            let config = Config {
                cases: cases(default_cases),
                failure_persistence: None,
                ..Config::default()
            };
            let mut runner = TestRunner::new(config);
            runner.run(&strategy, test).map_err(|e| e.to_string())
        })
        .expect("spawn the property thread");
    match handle.join() {
        Ok(Ok(())) => {}
        Ok(Err(failure)) => panic!("{failure}"),
        Err(panic) => std::panic::resume_unwind(panic),
    }
}

fn unlimited() -> &'static Engine {
    static E: OnceLock<Engine> = OnceLock::new();
    E.get_or_init(Engine::new)
}

fn limited() -> &'static Engine {
    static E: OnceLock<Engine> = OnceLock::new();
    E.get_or_init(|| Engine::new().with_condition_limit(Some(LIMIT)))
}

/// The tree without its spans, for comparing trees parsed from different texts.
fn strip(e: &Expr) -> Expr {
    use ExprKind::*;
    let b = |e: &Expr| Box::new(strip(e));
    let all = |v: &[Expr]| v.iter().map(strip).collect::<Vec<_>>();
    let kind = match &e.kind {
        k @ (Int(_) | Float(_) | Str(_) | Bool(_) | Null | Var(_)) => k.clone(),
        Array(v) => Array(all(v)),
        Call(f, v) => Call(*f, all(v)),
        UnknownCall(n, v) => UnknownCall(n.clone(), all(v)),
        Seq(v) => Seq(all(v)),
        Index(a, i) => Index(b(a), b(i)),
        Unary(neg, a) => Unary(*neg, b(a)),
        Not(a) => Not(b(a)),
        Pow(x, y) => Pow(b(x), b(y)),
        Arith(op, x, y) => Arith(*op, b(x), b(y)),
        Compare(op, x, y) => Compare(*op, b(x), b(y)),
        Logic(op, x, y) => Logic(*op, b(x), b(y)),
        Keyword(op, x, y) => Keyword(*op, b(x), b(y)),
        Cond(c, y, n) => Cond(b(c), b(y), n.as_deref().map(b)),
        Assign(n, v) => Assign(n.clone(), b(v)),
        IndexAssign(n, i, v) => IndexAssign(n.clone(), b(i), b(v)),
        Append(n, v) => Append(n.clone(), b(v)),
    };
    Expr {
        kind,
        span: Span::default(),
    }
}

/// Every node of the tree, iteratively.
fn nodes(root: &Expr) -> Vec<&Expr> {
    let mut out = Vec::new();
    let mut stack = vec![root];
    while let Some(e) = stack.pop() {
        out.push(e);
        stack.extend(e.children());
    }
    out
}

/// A position must point at a character boundary inside the text, with the 1-based line and
/// character column of that offset.
fn check_position(src: &str, pos: Position, what: &str) -> Result<(), TestCaseError> {
    prop_assert!(
        pos.offset <= src.len(),
        "{what}: offset {} past the end ({} bytes)",
        pos.offset,
        src.len()
    );
    prop_assert!(
        src.is_char_boundary(pos.offset),
        "{what}: offset {} inside a character",
        pos.offset
    );
    let before = &src[..pos.offset];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().unwrap_or("").chars().count() + 1;
    prop_assert_eq!(
        (pos.line, pos.column),
        (line, column),
        "{}: line/column of offset {}",
        what,
        pos.offset
    );
    Ok(())
}

/// Parses, checks and evaluates `src` with both engines, asserting everything that must hold
/// whatever the rule is. Returns the unlimited outcome when the rule checks and runs.
fn exercise(src: &str, vars: &HashMap<String, Value>) -> Result<Option<Outcome>, TestCaseError> {
    let root = match parser::parse(src) {
        Ok(root) => root,
        Err(e) => {
            check_position(src, e.position, "syntax error")?;
            let again = Program::parse(src).err();
            prop_assert_eq!(again.as_ref(), Some(&e), "Program::parse reports the parser's error");
            return Ok(None);
        }
    };
    let mut conditional_nodes = 0;
    if let Some(root) = &root {
        for n in nodes(root) {
            prop_assert!(
                n.span.start <= n.span.end && n.span.end <= src.len(),
                "span {:?} outside the text",
                n.span
            );
            prop_assert!(
                src.is_char_boundary(n.span.start) && src.is_char_boundary(n.span.end),
                "span {:?}",
                n.span
            );
            if matches!(
                n.kind,
                ExprKind::Compare(..) | ExprKind::Keyword(..) | ExprKind::Call(..)
            ) {
                conditional_nodes += 1;
            }
        }
    }
    let program = match Program::parse_with(src, unlimited().known_variables()) {
        Ok(p) => p,
        Err(e) => {
            check_position(src, e.position, "check error")?;
            return Ok(None);
        }
    };
    for w in &program.analysis().warnings {
        check_position(src, w.position, "static warning")?;
    }

    let run = |engine: &Engine| {
        let start = Instant::now();
        let r = Evaluator::new(engine, vars.clone()).eval(&program);
        (r, start.elapsed())
    };
    let (full, took) = run(unlimited());
    prop_assert!(took < TIME_BOUND, "evaluation took {:?}", took);
    let (capped, took) = run(limited());
    prop_assert!(took < TIME_BOUND, "limited evaluation took {:?}", took);

    for r in [&full, &capped] {
        match r {
            Ok(o) => {
                // Nothing loops: each node runs at most once, so each counts at most once.
                prop_assert!(
                    o.conditions <= conditional_nodes,
                    "{} conditions from {} nodes",
                    o.conditions,
                    conditional_nodes
                );
                prop_assert_eq!(o.matched, !o.value.is_undefined() && o.value.to_bool());
                for w in &o.warnings {
                    check_position(src, w.position, "runtime warning")?;
                }
            }
            Err(e) => {
                check_position(src, e.position, "evaluation error")?;
                prop_assert!(
                    [
                        "dividebyzero",
                        "regexfailure",
                        "outofbounds",
                        "negativeindex",
                        "notarray",
                        "invalidiprange",
                        "conditionlimit",
                        "typeerror",
                        "toodeep"
                    ]
                    .contains(&e.code),
                    "unknown evaluation error code {}",
                    e.code
                );
            }
        }
    }
    if let Err(e) = &full {
        prop_assert_ne!(e.code, "conditionlimit", "no limit, yet {:?}", e);
    }
    // The limit changes nothing but where the run stops.
    match (&full, &capped) {
        (Ok(f), Ok(c)) => {
            prop_assert!(f.conditions <= LIMIT);
            prop_assert_eq!(format!("{f:?}"), format!("{c:?}"));
        }
        (Ok(f), Err(c)) => {
            prop_assert!(f.conditions > LIMIT && c.code == "conditionlimit", "{:?} vs {:?}", f, c)
        }
        (Err(f), Err(c)) => prop_assert!(f == c || c.code == "conditionlimit", "{:?} vs {:?}", f, c),
        (Err(f), Ok(c)) => prop_assert!(false, "only the limited run succeeded: {:?} vs {:?}", f, c),
    }
    // Deterministic: a fresh evaluator gives the same answer.
    let (again, _) = run(unlimited());
    prop_assert_eq!(format!("{full:?}"), format!("{again:?}"));
    Ok(full.ok())
}

// ---------------------------------------------------------------------------------------------
// Rule texts from the grammar
// ---------------------------------------------------------------------------------------------

/// Built-in variables (some deprecated, one disabled, some in mixed case) and user variables.
const BUILTIN_VARS: &[&str] = &[
    "added_lines",
    "removed_lines",
    "user_editcount",
    "user_groups",
    "user_name",
    "summary",
    "new_wikitext",
    "page_namespace",
    "page_title",
    "user_age",
    "action",
    "new_size",
    "edit_delta",
    "timestamp",
    "Added_Lines",
    "USER_EDITCOUNT",
    "article_text",
    "old_text",
];
const USER_VARS: &[&str] = &["a", "b", "s", "xs", "n", "A", "Xs", "_t1", "1st"];
/// Assigns the user variables so that reading them passes the checker.
const PRELUDE: &str =
    "a := 1; b := 'b'; s := \"Some Text\"; xs := ['x', 2, 3.5, [true]]; n := null; _t1 := -0.5; 1st := 7;\n";
/// The variables the values are generated for (canonical names).
const VALUE_VARS: &[&str] = &[
    "added_lines",
    "removed_lines",
    "user_editcount",
    "user_groups",
    "user_name",
    "summary",
    "new_wikitext",
    "page_namespace",
    "page_title",
    "user_age",
    "action",
];

/// Whitespace and comments between tokens (never empty: tokens must not merge).
fn sep() -> impl Strategy<Value = &'static str> {
    prop_oneof![
        8 => Just(" "),
        1 => Just("  "),
        1 => Just("\n"),
        1 => Just("\t"),
        1 => Just(" /* c */ "),
        1 => Just(" /*/ x */\n"),
        1 => Just("\r\n/**/ "),
    ]
}

fn int_text() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => (0u32..1000).prop_map(|i| i.to_string()),
        1 => any::<u64>().prop_map(|i| i.to_string()),
        1 => select(vec!["99999999999999999999", "9223372036854775807", "0x1F", "0xff", "0b101", "0o17", "007", "0"])
            .prop_map(String::from),
    ]
}

fn float_text() -> impl Strategy<Value = String> {
    prop_oneof![
        (0u32..1000, 0u32..1000).prop_map(|(a, b)| format!("{a}.{b}")),
        select(vec![
            ".5",
            "1.",
            "0.1",
            "123456789.123456789",
            "0.000000000000000000001",
            "1.5.3"
        ])
        .prop_map(String::from),
    ]
}

/// A string literal as written, with either quote and every kind of escape.
fn str_text() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        6 => "[a-zA-Z0-9 ,.:;!?*+()\\[\\]{}|^$-]{1,4}",
        1 => select(vec!["é", "ß", "İ", "😀", "\u{0}", "\u{7f}", "\u{200b}", "ﬀ", "Ⅻ"]).prop_map(String::from),
        2 => select(vec![
            r"\n", r"\t", r"\r", r"\\", r#"\""#, r"\'", r"\x41", r"\xC3\xA9", r"\xff", r"\xe2\x82", r"\d", r"\x4",
            r"\xZZ", r"\b", r"\s+", r"\p{L}", r"\w",
        ])
        .prop_map(String::from),
    ];
    let regexish = select(vec![
        "a+b",
        "(a|b)*c",
        "^foo$",
        "(?i)spam",
        "[a-z]{2,}",
        "(a+)+$",
        "(?<=a)b",
        "(\\w+)\\s+\\1",
        "(",
        "[",
        "a{2",
        "*",
        "(?P<n>x)",
        "\\bcat\\b",
        ".*",
        "",
        "x*",
        "\\x{41}",
        "(?:a|)",
        "[[:alpha:]]",
    ])
    .prop_map(String::from);
    let ip = select(vec![
        "1.2.3.4",
        "1.2.3.0/24",
        "::1",
        "2001:db8::/32",
        "10.0.0.0-10.0.0.255",
        "not an ip",
        "1.2.3.4/99",
    ])
    .prop_map(String::from);
    let content = prop_oneof![4 => vec(piece, 0..6).prop_map(|v| v.concat()), 2 => regexish, 1 => ip];
    (content, any::<bool>()).prop_map(|(c, double)| if double { format!("\"{c}\"") } else { format!("'{c}'") })
}

fn leaf_text() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => int_text(),
        1 => float_text(),
        4 => str_text(),
        1 => select(vec!["true", "false", "null"]).prop_map(String::from),
        4 => select(BUILTIN_VARS.to_vec()).prop_map(String::from),
        3 => select(USER_VARS.to_vec()).prop_map(String::from),
    ]
}

const BINARY_OPS: &[&str] = &[
    "+", "-", "*", "/", "%", "**", "==", "=", "===", "!=", "!==", "<", ">", "<=", ">=", "&", "|", "^", "in",
    "contains", "like", "matches", "rlike", "regex", "irlike",
];

/// A call of `builtin` with a valid number of arguments drawn from `arg`.
fn call_text(arg: BoxedStrategy<String>) -> impl Strategy<Value = String> {
    select(builtins::ALL.to_vec()).prop_flat_map(move |(_, name, min, max)| {
        let hi = max.min(min + 3);
        let trailing_comma = if max == builtins::VARIADIC {
            prop_oneof![4 => Just(""), 1 => Just(", ")].boxed()
        } else {
            Just("").boxed()
        };
        (vec(arg.clone(), min..=hi), select(USER_VARS.to_vec()), trailing_comma).prop_map(
            move |(args, var, trailing)| {
                if name == "set" || name == "set_var" {
                    // The checker wants a string literal as the name.
                    format!("{name}('{var}', {})", args[1])
                } else {
                    format!("{name}({}{trailing})", args.join(", "))
                }
            },
        )
    })
}

/// Expressions covering every construct of the grammar, compound operands usually in
/// parentheses so that most of them parse.
fn expr_text() -> BoxedStrategy<String> {
    leaf_text()
        .boxed()
        .prop_recursive(5, 64, 4, |inner| {
            let operand = prop_oneof![3 => inner.clone().prop_map(|e| format!("({e})")), 2 => inner.clone()].boxed();
            let name = select(USER_VARS.iter().chain(["user_name", "lcase", "if"].iter()).copied().collect::<Vec<_>>());
            prop_oneof![
                4 => (operand.clone(), select(BINARY_OPS.to_vec()), operand.clone(), sep(), sep())
                    .prop_map(|(a, op, b, s1, s2)| format!("{a}{s1}{op}{s2}{b}")),
                1 => inner.clone().prop_map(|e| format!("({e})")),
                1 => (select(vec!["-", "+", "!"]), operand.clone()).prop_map(|(op, e)| format!("{op}{e}")),
                1 => (vec(inner.clone(), 0..4), any::<bool>()).prop_map(|(items, trailing)| {
                    format!("[{}{}]", items.join(", "), if trailing && !items.is_empty() { "," } else { "" })
                }),
                1 => (operand.clone(), inner.clone()).prop_map(|(a, i)| format!("{a}[{i}]")),
                1 => (operand.clone(), inner.clone(), option::of(inner.clone()), sep()).prop_map(|(c, y, n, s)| match n {
                    Some(n) => format!("if{s}{c}{s}then{s}{y}{s}else{s}{n}{s}end"),
                    None => format!("if {c} then {y} end"),
                }),
                1 => (operand.clone(), operand.clone(), operand.clone()).prop_map(|(c, y, n)| format!("{c} ? {y} : {n}")),
                1 => (name.clone(), inner.clone()).prop_map(|(n, v)| format!("{n} := {v}")),
                1 => (name.clone(), inner.clone(), inner.clone()).prop_map(|(n, i, v)| format!("{n}[{i}] := {v}")),
                1 => (name, inner.clone()).prop_map(|(n, v)| format!("{n}[] := {v}")),
                1 => (vec(inner.clone(), 2..4), select(vec!["; ", ";\n", " ;; "])).prop_map(|(v, s)| format!("({})", v.join(s))),
                2 => call_text(inner.clone()),
            ]
        })
        .boxed()
}

/// A whole rule: maybe the prelude, statements, maybe a trailing `;` or comment.
fn rule_text() -> impl Strategy<Value = String> {
    (
        any::<bool>(),
        vec(expr_text(), 1..3),
        select(vec!["", ";", " /* end */", "\n", ";\n(;)"]),
    )
        .prop_map(|(prelude, stmts, tail)| format!("{}{}{tail}", if prelude { PRELUDE } else { "" }, stmts.join(";\n")))
}

/// Values for the variables, as a caller would pass them from JSON.
fn json_value() -> impl Strategy<Value = Json> {
    let text = prop_oneof![
        4 => "[a-zA-Z0-9 ,.é😀_\\n-]{0,12}",
        1 => "[ab ]{250,300}",
        1 => select(vec!["sysop", "user", "*", "1.2.3.4", "Buy NOW!!!", "0x1A", " 12 ", "1e3", "", "İstanbul"])
            .prop_map(String::from),
    ];
    let leaf = prop_oneof![
        1 => Just(Json::Null),
        1 => any::<bool>().prop_map(Json::Bool),
        2 => any::<i64>().prop_map(Json::from),
        1 => any::<f64>().prop_map(|f| serde_json::Number::from_f64(f).map_or(Json::Null, Json::Number)),
        4 => text.prop_map(Json::String),
    ];
    leaf.prop_recursive(3, 24, 5, |inner| {
        prop_oneof![
            3 => vec(inner.clone(), 0..5).prop_map(Json::Array),
            1 => vec(("[a-z]{1,3}", inner), 0..4).prop_map(|kv| Json::Object(kv.into_iter().collect())),
        ]
    })
}

fn variables() -> impl Strategy<Value = HashMap<String, Value>> {
    vec(option::weighted(0.85, json_value()), VALUE_VARS.len()).prop_map(|vals| {
        VALUE_VARS
            .iter()
            .zip(vals)
            .filter_map(|(name, v)| v.map(|v| (name.to_string(), Value::from_json(&v))))
            .collect()
    })
}

// ---------------------------------------------------------------------------------------------
// Trees generated directly (only trees the parser can produce: no negative or non-finite
// literals, variable names that lex as identifiers)
// ---------------------------------------------------------------------------------------------

fn node(kind: ExprKind) -> Expr {
    Expr {
        kind,
        span: Span::default(),
    }
}

fn lexes_as_identifier(name: &str) -> bool {
    matches!(lexer::tokenize(name).as_deref(), Ok([t, end]) if t.tok == Tok::Ident(name.to_string()) && end.tok == Tok::End)
}

fn var_name() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => select(vec!["a", "xs", "added_lines", "user_groups", "lcase", "count", "x1"]).prop_map(String::from),
        1 => "[a-z0-9_]{1,6}".prop_filter("must lex as an identifier", |n| lexes_as_identifier(n)),
    ]
}

fn leaf_tree() -> impl Strategy<Value = Expr> {
    prop_oneof![
        2 => prop_oneof![0i64..1000, any::<u64>().prop_map(|u| (u >> 1) as i64)].prop_map(ExprKind::Int),
        1 => prop_oneof![
            any::<f64>().prop_map(f64::abs).prop_filter("finite", |f| f.is_finite()),
            (0u32..10_000).prop_map(|i| f64::from(i) / 100.0),
            select(vec![0.0, 0.1, 1e-7, 5e-324, 1e21, 1e300, f64::MAX, f64::MIN_POSITIVE]),
        ]
        .prop_map(ExprKind::Float),
        3 => prop_oneof!["(?s).{0,8}", "[\"'\\\\\n\r\t\u{0}-\u{1f}a-z é😀*/]{0,10}"].prop_map(|s: String| ExprKind::Str(s.into())),
        1 => any::<bool>().prop_map(ExprKind::Bool),
        1 => Just(ExprKind::Null),
        3 => var_name().prop_map(|n| ExprKind::Var(n.into())),
    ]
    .prop_map(node)
}

fn call_tree(arg: BoxedStrategy<Expr>) -> impl Strategy<Value = Expr> {
    select(builtins::ALL.to_vec()).prop_flat_map(move |(f, _, min, max)| {
        vec(arg.clone(), min..=max.min(min + 3)).prop_map(move |args| node(ExprKind::Call(f, args)))
    })
}

fn tree() -> impl Strategy<Value = Expr> {
    leaf_tree().prop_recursive(5, 64, 4, |inner| {
        use ExprKind::*;
        let b = Box::new;
        let two = (inner.clone(), inner.clone());
        prop_oneof![
            vec(inner.clone(), 0..4).prop_map(|v| node(Array(v))),
            call_tree(inner.clone()),
            two.clone().prop_map(move |(a, i)| node(Index(b(a), b(i)))),
            (any::<bool>(), inner.clone()).prop_map(move |(neg, a)| node(Unary(neg, b(a)))),
            inner.clone().prop_map(move |a| node(Not(b(a)))),
            two.clone().prop_map(move |(x, y)| node(Pow(b(x), b(y)))),
            (
                select(vec![
                    ArithOp::Add,
                    ArithOp::Sub,
                    ArithOp::Mul,
                    ArithOp::Div,
                    ArithOp::Mod
                ]),
                two.clone()
            )
                .prop_map(move |(op, (x, y))| node(Arith(op, b(x), b(y)))),
            (
                select(vec![
                    CmpOp::Eq,
                    CmpOp::Ne,
                    CmpOp::StrictEq,
                    CmpOp::StrictNe,
                    CmpOp::Lt,
                    CmpOp::Gt,
                    CmpOp::Le,
                    CmpOp::Ge
                ]),
                two.clone()
            )
                .prop_map(move |(op, (x, y))| node(Compare(op, b(x), b(y)))),
            (select(vec![LogicOp::And, LogicOp::Or, LogicOp::Xor]), two.clone())
                .prop_map(move |(op, (x, y))| node(Logic(op, b(x), b(y)))),
            (
                select(vec![
                    KeywordOp::In,
                    KeywordOp::Contains,
                    KeywordOp::Like,
                    KeywordOp::Rlike,
                    KeywordOp::Irlike
                ]),
                two.clone()
            )
                .prop_map(move |(op, (x, y))| node(Keyword(op, b(x), b(y)))),
            (two.clone(), option::of(inner.clone())).prop_map(move |((c, y), n)| node(Cond(b(c), b(y), n.map(b)))),
            (var_name(), inner.clone()).prop_map(move |(n, v)| node(Assign(n, b(v)))),
            (var_name(), two).prop_map(move |(n, (i, v))| node(IndexAssign(n, b(i), b(v)))),
            (var_name(), inner.clone()).prop_map(move |(n, v)| node(Append(n, b(v)))),
            vec(inner, 2..4).prop_map(|v| node(Seq(v))),
        ]
    })
}

// ---------------------------------------------------------------------------------------------
// Unstructured inputs
// ---------------------------------------------------------------------------------------------

/// Sequences of the language's tokens (and fragments of them), glued with or without spaces.
fn token_soup() -> impl Strategy<Value = String> {
    let mut tokens: Vec<&'static str> = vec![
        "(",
        ")",
        "[",
        "]",
        ",",
        ";",
        ":=",
        "?",
        ":",
        "!",
        "-",
        "+",
        "*",
        "**",
        "/",
        "%",
        "&",
        "|",
        "^",
        "==",
        "=",
        "===",
        "!=",
        "!==",
        "<",
        ">",
        "<=",
        ">=",
        "/*",
        "*/",
        "'",
        "\"",
        "\\",
        "1",
        "0",
        "1.5",
        ".5",
        "0x1F",
        "0b2",
        "'a'",
        "\"b\\\"\"",
        "'\\x'",
        "'(a+)+$'",
        "xs",
        "a",
        "A",
        "IF",
        "0X1F",
        "added_lines",
        "user_editcount",
        "old_text",
        "article_text",
        "é",
        "😀",
        "\u{0}",
        "\n",
        "@",
        "#",
        "`",
        "$",
    ];
    tokens.extend(KEYWORDS.iter().copied());
    tokens.extend(builtins::ALL.iter().map(|(_, name, _, _)| *name));
    vec((select(tokens), select(vec!["", " "])), 0..48).prop_map(|v| v.into_iter().flat_map(|(t, s)| [t, s]).collect())
}

/// Any input: token soup, arbitrary Unicode, or grammar rules with a few bytes damaged.
fn any_input() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => token_soup(),
        1 => any::<String>(),
        1 => "(?s).{0,64}",
        2 => (rule_text(), vec((any::<prop::sample::Index>(), select(vec!["", "(", ")", "'", "/*", "]", " end", ":="])), 1..4))
            .prop_map(|(rule, edits)| {
                let mut rule = rule.into_bytes();
                for (at, with) in edits {
                    let i = at.index(rule.len() + 1);
                    rule.splice(i..(i + 1).min(rule.len()), with.bytes());
                }
                String::from_utf8_lossy(&rule).into_owned()
            }),
    ]
}

// ---------------------------------------------------------------------------------------------
// Properties
// ---------------------------------------------------------------------------------------------

/// Parse → print → parse gives the same tree, which prints the same; a rule that checks still
/// checks, and evaluates to the same result, once printed.
#[test]
fn printed_rules_parse_back_to_the_same_tree() {
    run_property(
        256,
        || (rule_text(), variables()),
        |(src, vars)| {
            let Ok(Some(tree)) = parser::parse(&src) else {
                return Ok(());
            };
            let printed = tree.to_string();
            let reparsed = match parser::parse(&printed) {
                Ok(Some(t)) => t,
                other => {
                    return Err(TestCaseError::fail(format!(
                        "{src:?} printed as {printed:?}, which parses as {other:?}"
                    )))
                }
            };
            prop_assert_eq!(
                reparsed.to_string(),
                printed.clone(),
                "the printed form is a fixed point"
            );
            prop_assert_eq!(
                strip(&reparsed),
                strip(&tree),
                "the printed form parses to the same tree"
            );

            let known = unlimited().known_variables();
            match (Program::parse_with(&src, known), Program::parse_with(&printed, known)) {
                (Err(a), Err(b)) => prop_assert_eq!(a.code, b.code),
                (Ok(a), Ok(b)) => {
                    prop_assert_eq!(&a.analysis().variables, &b.analysis().variables);
                    let x = Evaluator::new(unlimited(), vars.clone()).eval(&a);
                    let y = Evaluator::new(unlimited(), vars).eval(&b);
                    match (x, y) {
                        (Ok(x), Ok(y)) => {
                            prop_assert_eq!(format!("{:?}", x.value), format!("{:?}", y.value));
                            prop_assert_eq!((x.matched, x.conditions), (y.matched, y.conditions));
                            let codes = |o: &Outcome| o.warnings.iter().map(|w| w.code).collect::<Vec<_>>();
                            prop_assert_eq!(codes(&x), codes(&y));
                        }
                        (Err(x), Err(y)) => prop_assert_eq!(x.code, y.code),
                        (x, y) => prop_assert!(false, "{:?} vs {:?} once printed as {:?}", x, y, printed),
                    }
                }
                (a, b) => prop_assert!(
                    false,
                    "check verdicts differ: {:?} vs {:?} for {:?}",
                    a.err(),
                    b.err(),
                    printed
                ),
            }
            Ok(())
        },
    );
}

/// Trees built directly print to text that parses back to the same tree.
#[test]
fn generated_trees_print_and_parse_back() {
    run_property(256, tree, |tree| {
        let printed = tree.to_string();
        match parser::parse(&printed) {
            Ok(Some(back)) => {
                prop_assert_eq!(strip(&back), strip(&tree), "{}", printed);
                prop_assert_eq!(back.to_string(), printed);
            }
            other => prop_assert!(false, "{:?} printed as {:?} parses as {:?}", tree, printed, other),
        }
        Ok(())
    });
}

/// Grammar rules with arbitrary variable values: checking and evaluation never panic, stay
/// within the condition bound, agree with and without a condition limit, and are deterministic.
#[test]
fn evaluation_of_grammar_rules_never_panics() {
    run_property(
        256,
        || (rule_text(), variables()),
        |(src, vars)| exercise(&src, &vars).map(|_| ()),
    );
}

/// The same for anything at all: token soup, arbitrary Unicode, damaged rules.
#[test]
fn evaluation_of_any_input_never_panics() {
    run_property(
        256,
        || (any_input(), variables()),
        |(src, vars)| exercise(&src, &vars).map(|_| ()),
    );
}

/// Arbitrary bytes made UTF-8 (lossily) never make the lexer, parser or checker panic, and
/// errors point inside the text.
#[test]
fn parsing_lossy_bytes_never_panics() {
    run_property(
        256,
        || vec(any::<u8>(), 0..256),
        |bytes| {
            let src = String::from_utf8_lossy(&bytes);
            match Program::parse(&src) {
                Ok(p) => {
                    prop_assert!(parser::parse(&src).is_ok());
                    for w in &p.analysis().warnings {
                        check_position(&src, w.position, "warning")?;
                    }
                }
                Err(e) => check_position(&src, e.position, "syntax error")?,
            }
            Ok(())
        },
    );
}

/// Nesting constructs, `n` deep, balanced or cut short: refused with `toodeep` past
/// `MAX_NESTING`, never a crash; chains refused past `MAX_TREE_DEPTH`.
#[test]
fn deep_nesting_is_refused_not_crashed() {
    type Shape = (&'static str, &'static str, &'static str);
    // (opening, innermost, closing); each opening costs `cost` nesting levels.
    const NESTED: &[(Shape, usize)] = &[
        (("(", "1", ")"), 1),
        (("[", "1", "]"), 1),
        (("lcase(", "'a'", ")"), 2),
        (("if true then ", "1", " end"), 1),
        (("true ? ", "1", " : 0"), 1),
        // FIXME: not `xs[`: `xs[xs[…xs[0]…]]]` takes time exponential in its depth (the parser's
        // speculative `x[i] :=` parse re-parses each index; 22 levels take 1.5 s in release).
        (("(xs)[", "0", "]"), 2),
        (("-(", "1", ")"), 1),
        (("!(", "true", ")"), 1),
        (("contains_any(", "'a'", ", 'b')"), 2),
    ];
    // Chains: repeated `piece` after `head`; each adds one level to the tree, none to nesting.
    const CHAINS: &[(&str, &str, &str)] = &[
        ("", "1 & ", "1"),
        ("", "1 + ", "1"),
        ("", "2 ** ", "1"),
        ("xs := [1]; ", "", "xs"),
        ("", "a := ", "1"),
        ("", "xs[] := ", "1"),
        ("", "xs[0] := ", "1"),
    ];
    let nested = || {
        (select(NESTED.to_vec()), 0usize..140, any::<bool>(), vars_or_none()).prop_map(
            |(((open, mid, close), cost), n, balanced, vars)| {
                let text = format!(
                    "xs := [[[1]]]; {}{mid}{}",
                    open.repeat(n),
                    if balanced { close.repeat(n) } else { String::new() }
                );
                (text, Some((n, cost, balanced)), vars)
            },
        )
    };
    let chains = || {
        (select(CHAINS.to_vec()), 0usize..2400, vars_or_none()).prop_map(|((head, piece, last), n, vars)| {
            let text = if piece.is_empty() {
                format!("{head}{last}{}", "[0]".repeat(n))
            } else {
                format!("{head}{}{last}", piece.repeat(n))
            };
            (text, None, vars)
        })
    };
    run_property(
        64,
        move || prop_oneof![nested(), chains()],
        |(src, shape, vars)| {
            let parsed = parser::parse(&src);
            if let Some((n, cost, balanced)) = shape {
                // `xs := [[[1]]]` nests 2 deep; the root adds 1; the innermost call or index 0 or 1.
                if balanced && n * cost + 4 <= parser::MAX_NESTING {
                    prop_assert!(parsed.is_ok(), "{} levels refused: {:?}", n, parsed.err());
                }
                if n * cost > parser::MAX_NESTING {
                    prop_assert_eq!(parsed.as_ref().err().map(|e| e.code), Some("toodeep"));
                }
            }
            if let Ok(Some(tree)) = &parsed {
                let depth = depth(tree);
                prop_assert!(depth <= parser::MAX_TREE_DEPTH, "a tree {} deep was accepted", depth);
            }
            exercise(&src, &vars.unwrap_or_default()).map(|_| ())
        },
    );
}

fn vars_or_none() -> impl Strategy<Value = Option<HashMap<String, Value>>> {
    option::weighted(0.3, variables())
}

fn depth(root: &Expr) -> usize {
    let mut max = 0;
    let mut stack = vec![(root, 1)];
    while let Some((e, d)) = stack.pop() {
        max = max.max(d);
        stack.extend(e.children().into_iter().map(|c| (c, d + 1)));
    }
    max
}

// ---------------------------------------------------------------------------------------------
// Known departures from the properties (today's behaviour, asserted so a fix shows up)
// ---------------------------------------------------------------------------------------------

/// FIXME: a variable written `0X1F` (an identifier: only a lower-case `0x` starts a number) is
/// stored lower-cased and printed as `0x1f`, which reads back as the number 31. The rule passes
/// the checker, yet its printed form does not parse. The printer should print such names so
/// they lex as identifiers (e.g. upper-case).
#[test]
fn fixme_radix_like_variable_names_do_not_round_trip() {
    for src in ["0X1F := 3; 0X1F + 1", "0B1 := 1; 0B1", "0O7 := 1; 0O7"] {
        let program = Program::parse(src).expect("the rule checks");
        let printed = program.root().expect("not empty").to_string();
        assert!(
            parser::parse(&printed).is_err(),
            "FIXME fixed? {src:?} printed as {printed:?} now parses"
        );
    }
}

/// FIXME: `IF` is an identifier (keywords are lower-case) that the parser accepts as a variable
/// named `if`; printed, it is the keyword, so the text no longer parses or means `true`. The
/// checker refuses such rules, so only trees from `parser::parse` alone are affected.
#[test]
fn fixme_keyword_variable_names_do_not_round_trip() {
    for src in ["IF", "True + 1", "x := END", "NULL"] {
        let tree = parser::parse(src).expect("parses").expect("not empty");
        assert!(Program::parse(src).is_err(), "the checker refuses {src:?}");
        let back = parser::parse(&tree.to_string());
        let same = matches!(&back, Ok(Some(b)) if strip(b) == strip(&tree));
        assert!(
            !same,
            "FIXME fixed? {src:?} printed as {tree} now parses back to the same tree"
        );
    }
}

/// FIXME: the printer parenthesises every operation, so a chain longer than `MAX_NESTING`
/// (accepted: chains are bounded by `MAX_TREE_DEPTH` only) prints to text nested too deep to
/// parse back.
#[test]
fn fixme_long_chains_print_too_deep_to_parse_back() {
    let src = vec!["1"; parser::MAX_NESTING + 1].join(" + ");
    let tree = parser::parse(&src).expect("parses").expect("not empty");
    let printed = tree.to_string();
    assert_eq!(
        parser::parse(&printed).err().map(|e| e.code),
        Some("toodeep"),
        "FIXME fixed? {printed} now parses"
    );
}

/// FIXME: chained assignments recurse in the parser without counting towards `MAX_NESTING`,
/// and a chain past `MAX_TREE_DEPTH` is dropped recursively: a rule of a few thousand
/// `a := ` overflows a 2 MiB stack even in release builds. Run on a large stack here, where it
/// is refused with `toodeep` as it should be.
#[test]
fn fixme_assignment_chains_recurse_without_a_nesting_bound() {
    let handle = std::thread::Builder::new()
        .stack_size(STACK)
        .spawn(|| {
            let src = format!("{}1", "a := ".repeat(5000));
            parser::parse(&src).err().map(|e| e.code)
        })
        .expect("spawn");
    assert_eq!(handle.join().expect("no panic"), Some("toodeep"));
}

/// Sanity check for the generators: a fair share of grammar rules parse and check, so the
/// properties above test evaluation and printing, not only error paths.
#[test]
fn grammar_rules_mostly_parse() {
    let mut runner = TestRunner::deterministic();
    let (mut parsed, mut checked, mut ran) = (0, 0, 0);
    let (rules, vars) = (rule_text(), variables());
    for _ in 0..200 {
        let src = rules.new_tree(&mut runner).expect("generate").current();
        let vals = vars.new_tree(&mut runner).expect("generate").current();
        if matches!(parser::parse(&src), Ok(Some(_))) {
            parsed += 1;
        }
        if let Ok(p) = Program::parse(&src) {
            checked += 1;
            if Evaluator::new(unlimited(), vals).eval(&p).is_ok() {
                ran += 1;
            }
        }
    }
    assert!(
        parsed >= 100 && checked >= 50 && ran >= 25,
        "parsed {parsed}, checked {checked}, ran {ran} of 200"
    );
}

/// A fixed set of builtins names is used by the generators; make sure it is all of them.
#[test]
fn generators_cover_every_builtin() {
    assert_eq!(builtins::ALL.len(), 32);
    for (b, name, _, _) in builtins::ALL {
        assert_eq!(Builtin::from_name(name), Some(*b));
    }
}
