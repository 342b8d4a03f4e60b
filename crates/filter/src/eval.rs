//! The evaluator: AbuseFilter's `FilterEvaluator` semantics, condition counting included.
//!
//! What counts as one condition, as in AbuseFilter: every comparison, every keyword operator
//! (`in`, `contains`, `like`, `rlike`…), and every builtin call whose result is not already in
//! the per-action result cache (AbuseFilter caches builtin results for the whole action, keyed
//! by function and argument values, so the same `lcase(added_lines)` in ten filters costs one
//! condition; `set`/`set_var` are never cached). Literals, variables, arithmetic and boolean
//! operators are free.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex};

use crate::ast::{ArithOp, CmpOp, Expr, ExprKind, KeywordOp, LogicOp, Span, VarName};
use crate::builtins::Builtin;
use crate::check::Warning;
use crate::error::{EvalError, Position};
use crate::fasthash::FxMap;
use crate::normalize::{self, Equivset};
use crate::pcre::{self, RegexCache, RegexError};
use crate::value::{ArithError, MulOp, Type, Value};
use crate::vars::{self, KnownVariables};

/// Where the evaluator reads built-in variables from. Implementations may compute a variable
/// only when asked (a diff, the rendered HTML…); the evaluator asks at most once per action.
pub trait Variables {
    /// The value of a built-in variable (canonical lower-case name), or `None` when the action
    /// does not set it (it then reads as null, as in AbuseFilter).
    fn get(&mut self, name: &str) -> Option<Value>;
}

impl Variables for HashMap<String, Value> {
    fn get(&mut self, name: &str) -> Option<Value> {
        HashMap::get(self, name).cloned()
    }
}

impl<V: Variables + ?Sized> Variables for &mut V {
    fn get(&mut self, name: &str) -> Option<Value> {
        (**self).get(name)
    }
}

/// Shared, immutable evaluation settings and caches: one per service, used from any thread.
pub struct Engine {
    /// `None`: the built-in table, built on first use (it takes a moment, and most rules never need it).
    equivset: Option<Arc<Equivset>>,
    regexes: RegexCache,
    /// Prepared needle lists of `contains_any` & co, by [`needles_key`].
    needles: Mutex<FxMap<Box<[u8]>, Arc<normalize::Needles>>>,
    /// The same lists by the addresses of their strings (and whether they are normalised).
    needles_by_address: ByAddresses<Arc<normalize::Needles>>,
    /// Compiled regex patterns by the address of their string (and whether caseless).
    regexes_by_address: ByAddresses<Arc<pcre::Regex>>,
    condition_limit: Option<usize>,
    known: KnownVariables,
}

/// Needle lists (and patterns found by address) kept by an engine at most; past this the
/// cache starts again empty.
const NEEDLES_LIMIT: usize = 4096;

/// Something the engine prepared from strings (a needle list, a compiled pattern), found
/// again by the strings' addresses and a flag when they are the same shared strings: a rule's
/// literals are the same `Arc`s on every evaluation, so a lookup needs no hashing or
/// comparing of their text. The strings are held, so no address is reused while an entry
/// lives; past [`NEEDLES_LIMIT`] entries the map starts again empty.
struct ByAddresses<T>(Mutex<FxMap<u64, AddressEntry<T>>>);

struct AddressEntry<T> {
    strings: Box<[Arc<str>]>,
    flag: bool,
    value: T,
}

impl<T: Clone> ByAddresses<T> {
    fn new() -> Self {
        ByAddresses(Mutex::new(FxMap::default()))
    }

    fn key(strings: &[&Arc<str>], flag: bool) -> u64 {
        let mut h = crate::fasthash::FxHasher::default();
        h.write_u8(u8::from(flag));
        for s in strings {
            h.write_usize(Arc::as_ptr(s).cast::<u8>() as usize);
        }
        h.finish()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, FxMap<u64, AddressEntry<T>>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The value kept for exactly these strings and `flag`, or `make()`'s, then kept (an
    /// error is returned and not kept).
    fn get_or_try_insert<E>(
        &self,
        strings: &[&Arc<str>],
        flag: bool,
        make: impl FnOnce() -> Result<T, E>,
    ) -> Result<T, E> {
        let key = Self::key(strings, flag);
        if let Some(kept) = self.lock().get(&key) {
            let same = kept.flag == flag
                && kept.strings.len() == strings.len()
                && kept.strings.iter().zip(strings).all(|(k, s)| Arc::ptr_eq(k, s));
            if same {
                return Ok(kept.value.clone());
            }
        }
        let value = make()?;
        let mut map = self.lock();
        if map.len() >= NEEDLES_LIMIT {
            map.clear();
        }
        map.insert(
            key,
            AddressEntry {
                strings: strings.iter().map(|s| Arc::clone(s)).collect(),
                flag,
                value: value.clone(),
            },
        );
        Ok(value)
    }

    /// [`Self::get_or_try_insert`] for a `make` that cannot fail.
    fn get_or_insert(&self, strings: &[&Arc<str>], flag: bool, make: impl FnOnce() -> T) -> T {
        match self.get_or_try_insert(strings, flag, || Ok::<T, std::convert::Infallible>(make())) {
            Ok(value) => value,
            Err(never) => match never {},
        }
    }
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("condition_limit", &self.condition_limit)
            .finish_non_exhaustive()
    }
}

impl Default for Engine {
    fn default() -> Self {
        Engine::new()
    }
}

impl Engine {
    /// An engine with the built-in confusables table, no condition limit, and room for 4096
    /// compiled regexes.
    pub fn new() -> Engine {
        Engine {
            equivset: None,
            regexes: RegexCache::new(4096),
            needles: Mutex::new(FxMap::default()),
            needles_by_address: ByAddresses::new(),
            regexes_by_address: ByAddresses::new(),
            condition_limit: None,
            known: KnownVariables::default(),
        }
    }

    /// Uses `equivset` (e.g. Wikimedia's Equivset, loaded with [`Equivset::from_json`]) for
    /// `ccnorm`, `norm` and `ccnorm_contains_*`.
    pub fn with_equivset(mut self, equivset: Equivset) -> Engine {
        self.equivset = Some(Arc::new(equivset));
        self
    }

    /// Stops an action's evaluation once it has used more than `limit` conditions, as
    /// AbuseFilter's `$wgAbuseFilterConditionLimit` does. `None`: no limit.
    pub fn with_condition_limit(mut self, limit: Option<usize>) -> Engine {
        self.condition_limit = limit;
        self
    }

    /// Accepts these variable names besides the built-ins (variables other extensions set).
    pub fn with_known_variables(mut self, known: KnownVariables) -> Engine {
        self.known = known;
        self
    }

    /// The variable names the engine accepts.
    pub fn known_variables(&self) -> &KnownVariables {
        &self.known
    }
}

/// Cache key for builtin results: function handler and argument values, with their hash
/// computed once (a lookup that misses is followed by an insert, which would hash again).
/// Long strings hash by length and a few samples, and a long argument list by its length and
/// its first and last arguments (equality still compares everything), so keying a 100 KB
/// `added_lines` or a `contains_any` with sixty words costs nanoseconds, not a full pass.
struct MemoKey {
    hash: u64,
    handler: Builtin,
    args: Args,
}

impl MemoKey {
    fn new(handler: Builtin, args: Args) -> MemoKey {
        let mut h = crate::fasthash::FxHasher::default();
        handler.hash(&mut h);
        match &*args {
            many @ [first, second, .., last] if many.len() > 4 => {
                many.len().hash(&mut h);
                for a in [first, second, last] {
                    hash_sampled(a, &mut h);
                }
            }
            few => {
                for a in few {
                    hash_sampled(a, &mut h);
                }
            }
        }
        MemoKey {
            hash: h.finish(),
            handler,
            args,
        }
    }
}

impl PartialEq for MemoKey {
    fn eq(&self, other: &MemoKey) -> bool {
        self.hash == other.hash && self.handler == other.handler && self.args == other.args
    }
}

impl Eq for MemoKey {}

impl Hash for MemoKey {
    fn hash<H: Hasher>(&self, h: &mut H) {
        h.write_u64(self.hash);
    }
}

/// A call's argument values. Most calls have one or two (`lcase(added_lines)`,
/// `rcount(p, s)`): those are kept in place, so a call whose result is already known makes
/// no allocation.
enum Args {
    One([Value; 1]),
    Two([Value; 2]),
    Many(Vec<Value>),
}

impl PartialEq for Args {
    fn eq(&self, other: &Args) -> bool {
        **self == **other
    }
}

impl Eq for Args {}

impl std::ops::Deref for Args {
    type Target = [Value];
    fn deref(&self) -> &[Value] {
        match self {
            Args::One(a) => a,
            Args::Two(a) => a,
            Args::Many(a) => a,
        }
    }
}

fn hash_sampled<H: Hasher>(v: &Value, h: &mut H) {
    match v {
        Value::Str(s) if s.len() > 96 => {
            let b = s.as_bytes();
            b.len().hash(h);
            b[..32].hash(h);
            b[b.len() / 2..b.len() / 2 + 32].hash(h);
            b[b.len() - 32..].hash(h);
        }
        Value::Array(a) => {
            a.len().hash(h);
            if let Some(first) = a.first() {
                hash_sampled(first, h);
            }
            if let Some(last) = a.last() {
                hash_sampled(last, h);
            }
        }
        other => other.hash(h),
    }
}

/// AbuseFilter empties its result cache when it passes 1000 entries.
const MEMO_LIMIT: usize = 1000;
/// Arrays this long or longer have [`Value::has_undefined`] remembered (a shorter scan costs
/// less than the lookup).
const UNDEFINED_MEMO_LEN: usize = 16;

/// The result of evaluating one rule.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    /// The rule's value.
    pub value: Value,
    /// Whether the filter matches: the value as a boolean, undefined counting as false.
    pub matched: bool,
    /// Conditions this rule used (see the module docs).
    pub conditions: usize,
    /// Runtime warnings (a regex that matches the empty string).
    pub warnings: Vec<Warning>,
}

/// Evaluates rules against one action. Keep one per action: it caches variable values and
/// builtin results across the action's filters, as AbuseFilter does.
pub struct Evaluator<'e, V> {
    engine: &'e Engine,
    vars: V,
    /// The built-in variables read so far, by their place in [`vars::BUILTIN`].
    builtins: Vec<Option<Value>>,
    /// The other variables read so far (those the operator added), by name.
    builtin_vars: FxMap<String, Value>,
    memo: FxMap<MemoKey, Value>,
    /// Arrays (`added_lines`…) already joined into PHP's string form.
    joined: ByAddress<Vec<Value>, Arc<str>>,
    /// What regex searches of one long string share (its lowercased copy…).
    facts: ByAddress<str, Arc<pcre::HaystackFacts>>,
    /// Whether a long array holds an undefined value, asked at every keyword and call that
    /// takes it (`added_lines` has a line per element).
    undefined_in: ByAddress<Vec<Value>, bool>,
    /// Strings already passed through the confusables table (`ccnorm`, `ccnorm_contains_*`).
    equiv: ByAddress<str, Arc<str>>,
    conditions: usize,
}

/// Something derived from a shared value, kept for the action and found by the value's `Arc`
/// address; the `Arc` is kept too, so the address cannot be reused while cached.
struct ByAddress<K: ?Sized, T>(FxMap<usize, (Arc<K>, T)>);

impl<K: ?Sized, T: Clone> ByAddress<K, T> {
    /// The value kept for `k`, or `make()`'s, then kept (the cache starts again empty past
    /// [`MEMO_LIMIT`] entries).
    fn get_or_insert_with(&mut self, k: &Arc<K>, make: impl FnOnce() -> T) -> T {
        let key = Arc::as_ptr(k).cast::<u8>() as usize;
        if let Some((kept, v)) = self.0.get(&key) {
            if Arc::ptr_eq(kept, k) {
                return v.clone();
            }
        }
        let v = make();
        if self.0.len() >= MEMO_LIMIT {
            self.0.clear();
        }
        self.0.insert(key, (Arc::clone(k), v.clone()));
        v
    }
}

impl<K: ?Sized, T> Default for ByAddress<K, T> {
    fn default() -> Self {
        ByAddress(FxMap::default())
    }
}

/// Per-rule state.
struct Run<'r> {
    src: &'r str,
    user: FxMap<String, Value>,
    warnings: Vec<Warning>,
}

type R = Result<Value, Box<EvalError>>;

impl<'e, V: Variables> Evaluator<'e, V> {
    /// An evaluator for one action whose variables come from `vars`.
    pub fn new(engine: &'e Engine, vars: V) -> Self {
        Evaluator {
            engine,
            vars,
            builtins: vec![None; vars::BUILTIN.len()],
            builtin_vars: FxMap::default(),
            // Room for a typical action's calls, so the map does not grow step by step.
            memo: FxMap::with_capacity_and_hasher(256, Default::default()),
            joined: ByAddress::default(),
            facts: ByAddress::default(),
            undefined_in: ByAddress::default(),
            equiv: ByAddress::default(),
            conditions: 0,
        }
    }

    /// Conditions used so far by this action.
    pub fn conditions(&self) -> usize {
        self.conditions
    }

    /// Evaluates a checked program (see [`crate::Program`]).
    pub fn eval(&mut self, program: &crate::Program) -> Result<Outcome, EvalError> {
        self.eval_tree(program.source(), program.root())
    }

    /// Evaluates a parsed tree; `src` is its text, for error positions.
    pub fn eval_tree(&mut self, src: &str, root: Option<&Expr>) -> Result<Outcome, EvalError> {
        let before = self.conditions;
        let mut run = Run {
            src,
            user: FxMap::default(),
            warnings: Vec::new(),
        };
        let value = match root {
            Some(root) => self.node(&mut run, root).map_err(|e| *e)?,
            None => Value::Null,
        };
        // AbuseFilter's `parse()` calls `toBool()`, which fails on a negated array.
        let matched = !value.is_undefined()
            && value
                .truthy()
                .map_err(|x| Self::arith_err(&run, root.map_or_else(Span::default, |r| r.span), x, None))?;
        Ok(Outcome {
            value,
            matched,
            conditions: self.conditions - before,
            warnings: run.warnings,
        })
    }

    fn err(run: &Run<'_>, span: Span, code: &'static str, message: impl Into<String>) -> EvalError {
        EvalError {
            code,
            message: message.into(),
            position: Position::locate(run.src, span.start),
        }
    }

    /// `range` parsed for `ip_in_range(s)`, or the error AbuseFilter raises for it.
    fn ip_range(run: &Run<'_>, span: Span, range: &str) -> Result<crate::ip::Range, Box<EvalError>> {
        crate::ip::parse_range(range).ok_or_else(|| {
            Self::err(
                run,
                span,
                "invalidiprange",
                format!("`{range}` is not an IP address or CIDR range"),
            )
            .into()
        })
    }

    fn arith_err(run: &Run<'_>, span: Span, e: ArithError, lhs: Option<&Value>) -> EvalError {
        match e {
            ArithError::DivideByZero => Self::err(
                run,
                span,
                "dividebyzero",
                format!("division of {} by zero", lhs.map_or_else(|| "a value".into(), |v| v.to_php_string())),
            ),
            ArithError::Undefined => Self::err(
                run,
                span,
                "undefinedvalue",
                "an array holding an undefined item (a variable assigned only in a branch that did not run) cannot be compared or turned into text",
            ),
            ArithError::Type => Self::err(
                run,
                span,
                "typeerror",
                "this value cannot be used here (the negation of an array is not a number, boolean or array; an offset must fit an integer)",
            ),
        }
    }

    fn raise(&mut self, run: &Run<'_>, span: Span) -> Result<(), EvalError> {
        self.conditions += 1;
        match self.engine.condition_limit {
            Some(limit) if self.conditions > limit => Err(Self::err(
                run,
                span,
                "conditionlimit",
                format!("the condition limit ({limit}) was reached; the remaining filters were not checked"),
            )),
            _ => Ok(()),
        }
    }

    #[inline]
    fn var(&mut self, run: &Run<'_>, name: &VarName) -> Value {
        match name.builtin() {
            // A checked rule cannot assign a built-in; an unchecked tree's assignment still
            // shadows it, as it does for a name.
            Some(i) => match run.user.get(&**name) {
                Some(v) => v.clone(),
                None => self.builtin_var(i),
            },
            None => self.var_named(run, name),
        }
    }

    /// The built-in variable at place `i` of [`vars::BUILTIN`], read from the action once.
    fn builtin_var(&mut self, i: usize) -> Value {
        if let Some(v) = &self.builtins[i] {
            return v.clone();
        }
        // A built-in is always in use; its canonical name is the one at its place.
        let v = self.vars.get(vars::BUILTIN[i]).unwrap_or(Value::Null);
        self.builtins[i] = Some(v.clone());
        v
    }

    /// [`Self::var`] by name only: a user variable, or a variable the operator added.
    fn var_named(&mut self, run: &Run<'_>, name: &str) -> Value {
        if let Some(v) = run.user.get(name) {
            return v.clone();
        }
        if let Some(v) = self.builtin_vars.get(name) {
            return v.clone();
        }
        let canonical = vars::canonical(name);
        if let Some(i) = vars::builtin_index(canonical) {
            return self.builtin_var(i);
        }
        if !self.engine.known.in_use(canonical) {
            // A user variable assigned only in a branch that did not run.
            return Value::Undefined;
        }
        // A variable the operator added (no alias names one).
        let v = self.vars.get(canonical).unwrap_or(Value::Null);
        self.builtin_vars.insert(name.to_string(), v.clone());
        v
    }

    /// [`Self::node`] with the leaves most operands are (a variable, a number, a string)
    /// read in place, without the full match's call.
    #[inline(always)]
    fn operand(&mut self, run: &mut Run<'_>, e: &Expr) -> R {
        match &e.kind {
            ExprKind::Var(name) => Ok(self.var(run, name)),
            ExprKind::Int(i) => Ok(Value::Int(*i)),
            ExprKind::Str(s) => Ok(Value::Str(Arc::clone(s))),
            _ => self.node(run, e),
        }
    }

    fn node(&mut self, run: &mut Run<'_>, e: &Expr) -> R {
        use ExprKind::*;
        Ok(match &e.kind {
            Int(i) => Value::Int(*i),
            Float(f) => Value::Float(*f),
            Str(s) => Value::Str(Arc::clone(s)),
            Bool(b) => Value::Bool(*b),
            Null => Value::Null,
            Var(name) => self.var(run, name),
            Array(items) => {
                let mut out = Vec::with_capacity(items.len());
                for i in items {
                    out.push(self.operand(run, i)?);
                }
                Value::from(out)
            }
            UnknownCall(name, _) => {
                // The checker refuses such a tree; only an unchecked one gets here.
                return Err(Self::err(run, e.span, "unknownfunction", format!("`{name}` is not a function")).into());
            }
            Call(f, args) => {
                let vals = match args.as_slice() {
                    [a] => Args::One([self.operand(run, a)?]),
                    [a, b] => {
                        let a = self.operand(run, a)?;
                        Args::Two([a, self.operand(run, b)?])
                    }
                    _ => {
                        let mut vals = Vec::with_capacity(args.len());
                        for a in args {
                            vals.push(self.operand(run, a)?);
                        }
                        Args::Many(vals)
                    }
                };
                self.call(run, e.span, *f, vals)?
            }
            Index(base, idx) => {
                let base = self.operand(run, base)?;
                let idx = self.operand(run, idx)?;
                if idx.is_undefined() {
                    return Ok(Value::Undefined);
                }
                let i = idx.to_offset().map_err(|x| Self::arith_err(run, e.span, x, None))?;
                if base.is_undefined() {
                    return Ok(Value::Undefined);
                }
                let items = match base {
                    Value::Array(items) => items,
                    v @ Value::Tagged(..) if v.type_of() == crate::value::Type::Array => {
                        return Err(Self::arith_err(run, e.span, ArithError::Type, None).into());
                    }
                    _ => {
                        return Err(
                            Self::err(run, e.span, "notarray", "indexing something that is not an array").into(),
                        )
                    }
                };
                index(run, e.span, &items, i)?.clone()
            }
            Unary(neg, a) => {
                let v = self.operand(run, a)?;
                if *neg {
                    v.negate().map_err(|x| Self::arith_err(run, e.span, x, None))?
                } else {
                    v
                }
            }
            Not(a) => {
                let v = self.operand(run, a)?;
                if v.is_undefined() {
                    Value::Undefined
                } else {
                    Value::Bool(!v.truthy().map_err(|x| Self::arith_err(run, e.span, x, None))?)
                }
            }
            Pow(a, b) => {
                let (x, y) = (self.operand(run, a)?, self.operand(run, b)?);
                x.pow(&y).map_err(|err| Self::arith_err(run, e.span, err, None))?
            }
            Arith(op, a, b) => {
                let (x, y) = (self.operand(run, a)?, self.operand(run, b)?);
                let r = match op {
                    ArithOp::Add => x.sum(&y),
                    ArithOp::Sub => x.sub(&y),
                    ArithOp::Mul => x.mul_rel(&y, MulOp::Mul),
                    ArithOp::Div => x.mul_rel(&y, MulOp::Div),
                    ArithOp::Mod => x.mul_rel(&y, MulOp::Mod),
                };
                let lhs = if x.is_undefined() { Value::Int(0) } else { x };
                r.map_err(|err| Self::arith_err(run, e.span, err, Some(&lhs)))?
            }
            Compare(op, a, b) => {
                let (x, y) = (self.operand(run, a)?, self.operand(run, b)?);
                self.raise(run, e.span)?;
                if x.is_undefined() || y.is_undefined() {
                    return Ok(Value::Undefined);
                }
                use std::cmp::Ordering::*;
                let equals = |strict| {
                    x.equals(&y, strict)
                        .map_err(|err| Self::arith_err(run, e.span, err, None))
                };
                let compare = || x.compare(&y).map_err(|err| Self::arith_err(run, e.span, err, None));
                Value::Bool(match op {
                    CmpOp::Eq => equals(false)?,
                    CmpOp::Ne => !equals(false)?,
                    CmpOp::StrictEq => equals(true)?,
                    CmpOp::StrictNe => !equals(true)?,
                    CmpOp::Lt => compare()? == Less,
                    CmpOp::Gt => compare()? == Greater,
                    CmpOp::Le => compare()? != Greater,
                    CmpOp::Ge => compare()? != Less,
                })
            }
            Logic(op, a, b) => {
                let left = self.operand(run, a)?;
                let l = !left.is_undefined() && left.truthy().map_err(|x| Self::arith_err(run, e.span, x, None))?;
                if (!l && *op == LogicOp::And) || (l && *op == LogicOp::Or) {
                    return Ok(left);
                }
                let right = self.operand(run, b)?;
                let r = !right.is_undefined() && right.truthy().map_err(|x| Self::arith_err(run, e.span, x, None))?;
                Value::Bool(match op {
                    LogicOp::And => l && r,
                    LogicOp::Or => l || r,
                    LogicOp::Xor => l ^ r,
                })
            }
            Keyword(op, a, b) => {
                let (x, y) = (self.operand(run, a)?, self.operand(run, b)?);
                self.raise(run, e.span)?;
                let undefined = self.has_undefined(&x) || self.has_undefined(&y);
                let (x, y) = if undefined {
                    (x.undefined_to_null(), y.undefined_to_null())
                } else {
                    (x, y)
                };
                let r = self.keyword(run, e.span, *op, &x, &y, undefined)?;
                if undefined {
                    Value::Undefined
                } else {
                    r
                }
            }
            Cond(c, yes, no) => {
                let c = self.operand(run, c)?;
                if !c.is_undefined() && c.truthy().map_err(|x| Self::arith_err(run, e.span, x, None))? {
                    self.operand(run, yes)?
                } else {
                    match no {
                        Some(no) => self.operand(run, no)?,
                        None => Value::Null,
                    }
                }
            }
            Assign(name, v) => {
                let v = self.operand(run, v)?;
                run.user.insert(name.clone(), v.clone());
                v
            }
            IndexAssign(name, idx, v) => {
                let arr = self.var_named(run, name);
                let negated_array = matches!(arr, Value::Tagged(crate::value::Type::Array, _));
                if !matches!(arr, Value::Array(_) | Value::Undefined) && !negated_array {
                    return Err(Self::err(run, e.span, "notarray", format!("`{name}` is not an array")).into());
                }
                let idx = self.operand(run, idx)?;
                if negated_array && !idx.is_undefined() {
                    return Err(Self::arith_err(run, e.span, ArithError::Type, None).into());
                }
                match arr {
                    Value::Array(mut items) => {
                        if idx.is_undefined() {
                            let v = self.operand(run, v)?;
                            run.user.insert(name.clone(), Value::Undefined);
                            v
                        } else {
                            let i = idx.to_offset().map_err(|x| Self::arith_err(run, e.span, x, None))?;
                            index(run, e.span, &items, i)?;
                            let v = self.operand(run, v)?;
                            let slot = Arc::make_mut(&mut items).get_mut(i as usize);
                            if let Some(slot) = slot {
                                *slot = v.clone();
                            }
                            run.user.insert(name.clone(), Value::Array(items));
                            v
                        }
                    }
                    Value::Tagged(..) => {
                        let v = self.operand(run, v)?;
                        run.user.insert(name.clone(), Value::Undefined);
                        v
                    }
                    _ => self.operand(run, v)?,
                }
            }
            Append(name, v) => {
                let arr = self.var_named(run, name);
                let v = self.operand(run, v)?;
                match arr {
                    Value::Undefined => {}
                    Value::Array(mut items) => {
                        Arc::make_mut(&mut items).push(v.clone());
                        run.user.insert(name.clone(), Value::Array(items));
                    }
                    // PHP: "Cannot use a scalar value as an array".
                    Value::Tagged(crate::value::Type::Array, _) => {
                        return Err(Self::arith_err(run, e.span, ArithError::Type, None).into())
                    }
                    _ => return Err(Self::err(run, e.span, "notarray", format!("`{name}` is not an array")).into()),
                }
                v
            }
            Seq(items) => {
                let mut last = Value::Null;
                for s in items {
                    last = self.operand(run, s)?;
                }
                last
            }
        })
    }

    /// The compiled form of a pattern, found by its string's address when it is one seen
    /// before (a rule's literal), else from the regex cache, which hashes and compares the
    /// pattern's text.
    fn regex(
        &self,
        run: &Run<'_>,
        span: Span,
        pattern: &Arc<str>,
        caseless: bool,
    ) -> Result<Arc<pcre::Regex>, EvalError> {
        self.engine
            .regexes_by_address
            .get_or_try_insert(&[pattern], caseless, || {
                self.engine
                    .regexes
                    .get_or_compile(pattern, caseless)
                    .map_err(|err| regex_err(run, span, pattern, &err))
            })
    }

    fn empty_match_warning(run: &mut Run<'_>, span: Span, re: &pcre::Regex) {
        if re.matches_empty() {
            run.warnings.push(Warning {
                code: "match-empty-regex",
                message: "the regular expression matches the empty string".into(),
                position: Position::locate(run.src, span.start),
            });
        }
    }

    /// `v.to_php_string()`, joining each array only once per action.
    fn php_str(&mut self, v: &Value) -> Arc<str> {
        match v {
            Value::Str(s) => Arc::clone(s),
            Value::Array(a) => self.joined.get_or_insert_with(a, || Arc::from(v.to_php_string())),
            other => Arc::from(other.to_php_string()),
        }
    }

    /// [`Value::has_undefined`], remembered for the action's long arrays.
    fn has_undefined(&mut self, v: &Value) -> bool {
        match v {
            Value::Array(a) if a.len() >= UNDEFINED_MEMO_LEN => {
                self.undefined_in.get_or_insert_with(a, || v.has_undefined())
            }
            _ => v.has_undefined(),
        }
    }

    /// The shared search facts of `hay`, kept for the action when it is long.
    fn facts_for(&mut self, hay: &Arc<str>) -> Option<Arc<pcre::HaystackFacts>> {
        if hay.len() < 256 {
            return None;
        }
        Some(
            self.facts
                .get_or_insert_with(hay, || Arc::new(pcre::HaystackFacts::new())),
        )
    }

    /// `eq.normalize(s)`, computed once per action for each string.
    fn equiv_normalized(&mut self, s: &Arc<str>, eq: &Equivset) -> Arc<str> {
        self.equiv.get_or_insert_with(s, || {
            if eq.is_empty() {
                Arc::clone(s)
            } else {
                Arc::from(eq.normalize(s))
            }
        })
    }

    /// The prepared needles (arguments `1..`) of a `contains_*` call, from the engine's cache.
    fn needles(&self, a: &[Value], eq: Option<&Equivset>) -> Arc<normalize::Needles> {
        let list = a.get(1..).unwrap_or_default();
        let norm = eq.is_some();
        fn shared(v: &Value) -> Option<&Arc<str>> {
            match v {
                Value::Str(s) => Some(s),
                _ => None,
            }
        }
        let strings: Option<Vec<&Arc<str>>> = list.iter().map(shared).collect();
        let Some(strings) = strings else {
            return self.needles_by_text(list, eq);
        };
        self.engine
            .needles_by_address
            .get_or_insert(&strings, norm, || self.needles_by_text(list, eq))
    }

    /// [`Self::needles`] by the needles' text.
    fn needles_by_text(&self, list: &[Value], eq: Option<&Equivset>) -> Arc<normalize::Needles> {
        let key = needles_key(list, eq.is_some());
        let cache = || self.engine.needles.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = cache().get(&*key) {
            return Arc::clone(n);
        }
        let strs: Vec<std::borrow::Cow<'_, str>> = list.iter().map(Value::as_php_str).collect();
        let strs: Vec<&str> = strs.iter().map(|c| c.as_ref()).collect();
        let n = Arc::new(normalize::Needles::new(&strs, eq));
        let mut cache = cache();
        if cache.len() >= NEEDLES_LIMIT {
            cache.clear();
        }
        cache.insert(key, Arc::clone(&n));
        n
    }

    /// The string form of argument `i` (`""` when absent), shared rather than copied.
    fn arg_str(&mut self, a: &[Value], i: usize) -> Arc<str> {
        match a.get(i) {
            Some(v) => self.php_str(v),
            None => Arc::from(""),
        }
    }

    #[inline(never)]
    fn keyword(
        &mut self,
        run: &mut Run<'_>,
        span: Span,
        op: KeywordOp,
        x: &Value,
        y: &Value,
        undefined_pattern: bool,
    ) -> R {
        Ok(Value::Bool(match op {
            KeywordOp::In => contains_str(&self.php_str(y), &self.php_str(x)),
            KeywordOp::Contains => contains_str(&self.php_str(x), &self.php_str(y)),
            KeywordOp::Like => {
                // A pattern PHP cannot compile (a `#` in it breaks AbuseFilter's delimiter,
                // see `Regex::like`) makes `like` false, silently, as in AbuseFilter.
                match self.engine.regexes.get_or_compile_like(&y.as_php_str()) {
                    Ok(re) => {
                        let hay = self.php_str(x);
                        let facts = self.facts_for(&hay);
                        re.is_match_in(&hay, facts.as_deref()).unwrap_or(false)
                    }
                    Err(_) => false,
                }
            }
            KeywordOp::Rlike | KeywordOp::Irlike => {
                let pattern = self.php_str(y);
                let re = self.regex(run, span, &pattern, op == KeywordOp::Irlike)?;
                if !undefined_pattern || !y.is_undefined() {
                    Self::empty_match_warning(run, span, &re);
                }
                let hay = self.php_str(x);
                let facts = self.facts_for(&hay);
                re.is_match_in(&hay, facts.as_deref())
                    .map_err(|err| regex_err(run, span, &pattern, &err))?
            }
        }))
    }

    #[inline(never)]
    fn call(&mut self, run: &mut Run<'_>, span: Span, f: Builtin, args: Args) -> R {
        let cacheable = f.handler() != Builtin::Set;
        let key = MemoKey::new(f.handler(), args);
        if cacheable {
            if let Some(v) = self.memo.get(&key) {
                return Ok(v.clone());
            }
        }
        self.raise(run, span)?;
        let undefined = key.args.iter().any(|a| self.has_undefined(a));
        let result = if undefined {
            let nulled: Vec<Value> = key.args.iter().map(Value::undefined_to_null).collect();
            self.builtin(run, span, f, &nulled)?;
            Value::Undefined
        } else {
            self.builtin(run, span, f, &key.args)?
        };
        if cacheable {
            self.memo.insert(key, result.clone());
            if self.memo.len() > MEMO_LIMIT {
                self.memo.clear();
            }
        }
        Ok(result)
    }

    #[inline(never)]
    fn builtin(&mut self, run: &mut Run<'_>, span: Span, f: Builtin, a: &[Value]) -> R {
        let arg = |i: usize| a.get(i).cloned().unwrap_or(Value::Null);
        // An array first argument (`added_lines`) is joined once per action, not per call.
        let joined0: Option<Arc<str>> = match a.first() {
            Some(v @ Value::Array(_)) if !matches!(f, Builtin::Length | Builtin::Strlen | Builtin::Count) => {
                Some(self.php_str(v))
            }
            _ => None,
        };
        let s = |i: usize| -> std::borrow::Cow<'_, str> {
            match (i, &joined0) {
                (0, Some(j)) => std::borrow::Cow::Borrowed(&**j),
                _ => a.get(i).map_or(std::borrow::Cow::Borrowed(""), Value::as_php_str),
            }
        };
        let eq: &Equivset = match self.engine.equivset.as_deref() {
            Some(e) => e,
            None => Equivset::builtin(),
        };
        let type_err = |x: ArithError| Self::arith_err(run, span, x, None);
        Ok(match f {
            Builtin::Lcase => Value::from(normalize::change_case(&s(0), false)),
            Builtin::Ucase => Value::from(normalize::change_case(&s(0), true)),
            Builtin::Length | Builtin::Strlen => match a.first() {
                Some(Value::Array(items)) => Value::Int(items.len() as i64),
                Some(Value::Tagged(Type::Array, _)) => return Err(type_err(ArithError::Type).into()),
                _ => Value::Int(s(0).chars().count() as i64),
            },
            // `castTypes` returns a value already of the target type unchanged (see `Value::Tagged`).
            Builtin::String => match arg(0) {
                v if v.type_of() == Type::String => v,
                v => Value::from(v.to_php_string()),
            },
            Builtin::Int => match arg(0) {
                v if v.type_of() == Type::Int => v,
                v => Value::Int(v.to_int().map_err(type_err)?),
            },
            Builtin::Float => match arg(0) {
                v if v.type_of() == Type::Float => v,
                v => Value::Float(v.to_float().map_err(type_err)?),
            },
            Builtin::Bool => match arg(0) {
                v if v.type_of() == Type::Bool => v,
                v => Value::Bool(v.truthy().map_err(type_err)?),
            },
            Builtin::Norm => Value::from(normalize::norm(&s(0), eq)),
            Builtin::Ccnorm => {
                let text = self.arg_str(a, 0);
                if text.contains('&') {
                    Value::from(normalize::ccnorm(&text, eq))
                } else {
                    // Entity decoding changes nothing without a `&`: share the table's result
                    // with `ccnorm_contains_*` on the same text.
                    Value::Str(self.equiv_normalized(&text, eq))
                }
            }
            Builtin::Sanitize => Value::from(normalize::sanitize(&s(0))),
            Builtin::Rmspecials => Value::from(normalize::rmspecials(&s(0))),
            Builtin::Rmdoubles => Value::from(normalize::rmdoubles(&s(0))),
            Builtin::Rmwhitespace => Value::from(normalize::rmwhitespace(&s(0))),
            Builtin::Specialratio => {
                let text = s(0);
                if text.is_empty() {
                    // `new AFPData( DFLOAT, 0 )`: the integer 0 typed float.
                    Value::Tagged(Type::Float, 0.0)
                } else {
                    Value::Float(normalize::specialratio(&text))
                }
            }
            Builtin::CcnormContainsAny | Builtin::CcnormContainsAll | Builtin::ContainsAny | Builtin::ContainsAll => {
                let any = matches!(f, Builtin::CcnormContainsAny | Builtin::ContainsAny);
                let norm = matches!(f, Builtin::CcnormContainsAny | Builtin::CcnormContainsAll);
                let needles = self.needles(a, norm.then_some(eq));
                let hay = self.arg_str(a, 0);
                let searched = if norm {
                    self.equiv_normalized(&hay, eq)
                } else {
                    Arc::clone(&hay)
                };
                Value::Bool(needles.found_in(&searched, hay.is_empty(), any))
            }
            Builtin::EqualsToAny => {
                let first = arg(0);
                let mut any = false;
                for n in a.iter().skip(1) {
                    if first.equals(n, true).map_err(type_err)? {
                        any = true;
                        break;
                    }
                }
                Value::Bool(any)
            }
            Builtin::Count => {
                if let (Some(Value::Array(items)), 1) = (a.first(), a.len()) {
                    Value::Int(items.len() as i64)
                } else if let (Some(Value::Tagged(Type::Array, _)), 1) = (a.first(), a.len()) {
                    return Err(type_err(ArithError::Type).into());
                } else if a.len() == 1 {
                    Value::Int(s(0).split(',').count() as i64)
                } else {
                    let (needle, hay) = (self.arg_str(a, 0), self.arg_str(a, 1));
                    Value::Int(if needle.is_empty() {
                        0
                    } else {
                        memchr::memmem::find_iter(hay.as_bytes(), needle.as_bytes()).count() as i64
                    })
                }
            }
            Builtin::Rcount => {
                if a.len() == 1 {
                    Value::Int(s(0).split(',').count() as i64)
                } else {
                    let pattern = self.arg_str(a, 0);
                    let re = self.regex(run, span, &pattern, false)?;
                    if !a.first().is_some_and(Value::is_undefined) {
                        Self::empty_match_warning(run, span, &re);
                    }
                    let hay = self.arg_str(a, 1);
                    let facts = self.facts_for(&hay);
                    let n = re
                        .count_matches_in(&hay, facts.as_deref())
                        .map_err(|err| regex_err(run, span, &pattern, &err))?;
                    Value::Int(n as i64)
                }
            }
            Builtin::GetMatches => {
                let pattern = self.arg_str(a, 0);
                let groups = group_count_heuristic(&pattern);
                let re = self.regex(run, span, &pattern, false)?;
                Self::empty_match_warning(run, span, &re);
                let hay = self.arg_str(a, 1);
                let facts = self.facts_for(&hay);
                let caps = re
                    .captures_in(&hay, facts.as_deref())
                    .map_err(|err| regex_err(run, span, &pattern, &err))?;
                let found: Vec<Value> = caps.map_or_else(Vec::new, |c| {
                    c.groups()
                        .iter()
                        .map(|g| Value::from(g.as_deref().unwrap_or("")))
                        .collect()
                });
                // Current AbuseFilter also counts named groups, which the `(?` rule strips.
                let n = groups.max(re.group_count() + 1).max(found.len());
                let mut out = found;
                out.resize(n, Value::Bool(false));
                Value::from(out)
            }
            Builtin::IpInRange => {
                let r = Self::ip_range(run, span, &s(1))?;
                Value::Bool(crate::ip::in_range(&s(0), &r))
            }
            Builtin::IpInRanges => {
                let ip = s(0);
                let mut hit = false;
                for v in a.iter().skip(1) {
                    let r = Self::ip_range(run, span, &v.to_php_string())?;
                    hit = hit || crate::ip::in_range(&ip, &r);
                }
                Value::Bool(hit)
            }
            Builtin::Substr => {
                let text = s(0);
                let offset = arg(1).to_int().map_err(type_err)?;
                let length = match a.get(2) {
                    Some(v) => Some(v.to_int().map_err(type_err)?),
                    None => None,
                };
                if offset == i64::MIN || length == Some(i64::MIN) {
                    // `mb_substr()` refuses PHP_INT_MIN with a ValueError.
                    return Err(type_err(ArithError::Type).into());
                }
                Value::from(mb_substr(&text, offset, length))
            }
            Builtin::Strpos => {
                let (hay, needle) = (self.arg_str(a, 0), self.arg_str(a, 1));
                let offset = match a.get(2) {
                    // AbuseFilter compares the offset with the length before `mb_strpos()` sees
                    // it: an int-typed float past the end (the negation of PHP_INT_MIN) is "not
                    // found", not the TypeError of passing it on.
                    Some(Value::Tagged(Type::Int, f)) if *f > hay.chars().count() as f64 => {
                        return Ok(Value::Int(-1));
                    }
                    Some(v) => v.to_int().map_err(type_err)?,
                    None => 0,
                };
                if offset == 0 && !needle.is_empty() {
                    // The common case, without counting the haystack's characters.
                    return Ok(match memchr::memmem::find(hay.as_bytes(), needle.as_bytes()) {
                        Some(p) => Value::Int(hay.get(..p).map_or(0, |h| h.chars().count()) as i64),
                        None => Value::Int(-1),
                    });
                }
                let len = hay.chars().count() as i64;
                if needle.is_empty() || offset > len {
                    Value::Int(-1)
                } else if offset < -len {
                    return Err(Self::err(
                        run,
                        span,
                        "typeerror",
                        "strpos: the offset lies before the start of the text",
                    )
                    .into());
                } else {
                    let start = if offset < 0 { len + offset } else { offset } as usize;
                    let byte = hay.char_indices().nth(start).map_or(hay.len(), |(b, _)| b);
                    match hay[byte..].find(&*needle) {
                        Some(p) => Value::Int((start + hay[byte..byte + p].chars().count()) as i64),
                        None => Value::Int(-1),
                    }
                }
            }
            Builtin::StrReplace => {
                let (subject, search, replace) = (s(0), s(1), s(2));
                if search.is_empty() {
                    Value::from(&*subject)
                } else {
                    Value::from(subject.replace(&*search, &replace))
                }
            }
            Builtin::StrReplaceRegexp => {
                let pattern = self.arg_str(a, 1);
                let re = self.regex(run, span, &pattern, false)?;
                let hay = self.arg_str(a, 0);
                let facts = self.facts_for(&hay);
                let out = re
                    .replace_all_in(&hay, facts.as_deref(), &s(2))
                    .map_err(|err| regex_err(run, span, &pattern, &err))?;
                Value::from(out)
            }
            Builtin::Rescape => Value::from(pcre::preg_quote(&s(0))),
            Builtin::Set | Builtin::SetVar => {
                let name = s(0).to_ascii_lowercase();
                let v = arg(1);
                run.user.insert(name, v.clone());
                v
            }
        })
    }
}

/// The cache key of a needle list: whether it is normalised, then each needle's string form
/// with its length (so no two lists share a key).
fn needles_key(needles: &[Value], norm: bool) -> Box<[u8]> {
    let mut key = vec![u8::from(norm)];
    for n in needles {
        let s = n.as_php_str();
        key.extend_from_slice(&(s.len() as u64).to_le_bytes());
        key.extend_from_slice(s.as_bytes());
    }
    key.into_boxed_slice()
}

fn index<'a>(run: &Run<'_>, span: Span, items: &'a [Value], i: i64) -> Result<&'a Value, EvalError> {
    if i < 0 {
        return Err(EvalError {
            code: "negativeindex",
            message: format!("negative array index {i}: indexes start at 0"),
            position: Position::locate(run.src, span.start),
        });
    }
    items.get(i as usize).ok_or_else(|| EvalError {
        code: "outofbounds",
        message: format!("array index {i} is out of bounds (the array has {} items)", items.len()),
        position: Position::locate(run.src, span.start),
    })
}

fn regex_err(run: &Run<'_>, span: Span, pattern: &str, err: &RegexError) -> EvalError {
    EvalError {
        code: "regexfailure",
        message: format!("error in regular expression \"{pattern}\": {err}"),
        position: Position::locate(run.src, span.start),
    }
}

/// `strpos($a, $b) !== false`, with AbuseFilter's rule that an empty side never contains.
fn contains_str(hay: &str, needle: &str) -> bool {
    !hay.is_empty() && !needle.is_empty() && memchr_find(hay, needle)
}

fn memchr_find(hay: &str, needle: &str) -> bool {
    let (h, n) = (hay.as_bytes(), needle.as_bytes());
    match n {
        [one] => memchr::memchr(*one, h).is_some(),
        // Building a SIMD searcher costs more than a plain scan of a short text.
        [first, ..] if h.len() <= 256 => {
            let mut from = 0;
            while let Some(p) = h.get(from..).and_then(|t| memchr::memchr(*first, t)) {
                if h.get(from + p..).is_some_and(|t| t.starts_with(n)) {
                    return true;
                }
                from += p + 1;
            }
            false
        }
        _ => memchr::memmem::find(h, n).is_some(),
    }
}

/// AbuseFilter sizes `get_matches`' answer by counting `(` in the pattern text after removing
/// escaped parentheses, `(?` and `(*` — not by the real number of groups.
fn group_count_heuristic(pattern: &str) -> usize {
    // Remove `(\\\\)*\\\(`: any run of escaped backslashes followed by an escaped `(`.
    let b = pattern.as_bytes();
    let mut kept = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' {
            let mut j = i;
            while j + 1 < b.len() && b[j] == b'\\' && b[j + 1] == b'\\' {
                j += 2;
            }
            if j + 1 < b.len() && b[j] == b'\\' && b[j + 1] == b'(' {
                i = j + 2;
                continue;
            }
        }
        kept.push(b[i]);
        i += 1;
    }
    let s = String::from_utf8_lossy(&kept).replace("(?", "").replace("(*", "");
    s.matches('(').count() + 1
}

/// PHP's `mb_substr` on characters, with negative offsets and lengths counting from the end.
fn mb_substr(s: &str, offset: i64, length: Option<i64>) -> String {
    if offset >= 0 && length.is_none_or(|l| l >= 0) {
        // Counting from the start only: no need to know the length.
        let at = |t: &str, n: i64| t.char_indices().nth(n as usize).map_or(t.len(), |(b, _)| b);
        let rest = s.get(at(s, offset)..).unwrap_or_default();
        return match length {
            None => rest.to_owned(),
            Some(l) => rest.get(..at(rest, l)).unwrap_or_default().to_owned(),
        };
    }
    let chars: Vec<char> = s.chars().collect();
    let n = chars.len() as i64;
    let start = if offset < 0 { (n + offset).max(0) } else { offset.min(n) };
    let end = match length {
        None => n,
        Some(l) if l < 0 => (n + l).max(start),
        Some(l) => (start.saturating_add(l)).min(n),
    };
    if end <= start {
        return String::new();
    }
    chars[start as usize..end as usize].iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn evaluators_can_move_between_threads() {
        fn send<T: Send>(_: &T) {}
        let engine = Engine::new();
        let ev = Evaluator::new(&engine, HashMap::<String, Value>::new());
        send(&ev);
    }

    /// Evaluates each rule in turn on one evaluator (one action), returning the values.
    fn action(engine: &Engine, vars: &[(&str, Value)], rules: &[&str]) -> Vec<Value> {
        let vars: HashMap<String, Value> = vars.iter().map(|(k, v)| (k.to_string(), v.clone())).collect();
        let mut ev = Evaluator::new(engine, vars);
        rules
            .iter()
            .map(|r| ev.eval(&crate::Program::parse(r).unwrap()).unwrap().value)
            .collect()
    }

    #[test]
    fn needle_lists_are_cached_by_their_exact_needles() {
        let engine = Engine::new();
        let vars = [("summary", Value::from("xabx fuck"))];
        // Same needle bytes, split differently: distinct lists.
        let got = action(
            &engine,
            &vars,
            &[
                r#"contains_any(summary, "ab", "zz")"#,
                r#"contains_any(summary, "a", "bzz")"#,
                r#"contains_all(summary, "ab", "zz")"#,
                r#"contains_all(summary, "ab", "fuck")"#,
                // Same needles, normalised or not: distinct lists.
                r#"contains_any(summary, "FUCK", "QQ")"#,
                r#"ccnorm_contains_any(summary, "FUCK", "QQ")"#,
                r#"contains_any(summary, "", "")"#,
                r#"contains_all(summary, "", "")"#,
            ],
        );
        let want = [true, true, false, true, false, true, false, true].map(Value::Bool);
        assert_eq!(got, want);
        // A second action on the same engine reuses the lists, on other text.
        let got = action(
            &engine,
            &[("summary", Value::from("nothing here"))],
            &[
                r#"contains_any(summary, "ab", "zz")"#,
                r#"ccnorm_contains_any(summary, "FUCK", "QQ")"#,
            ],
        );
        assert_eq!(got, [false, false].map(Value::Bool));
    }

    #[test]
    fn a_pattern_found_by_address_keeps_its_case_rule() {
        // One literal string, shared by both operators: the caseless and the case-sensitive
        // compiled forms are kept apart, on this action and the next.
        let engine = Engine::new();
        let rule =
            crate::Program::parse(r#"p := "ab+c"; [summary rlike p, summary irlike p, summary rlike ("x|" + p)]"#)
                .unwrap();
        for _ in 0..2 {
            let vars: HashMap<String, Value> = [("summary".to_string(), Value::from("ABBC"))].into();
            let got = Evaluator::new(&engine, vars).eval(&rule).unwrap().value;
            assert_eq!(
                got,
                Value::from(vec![Value::Bool(false), Value::Bool(true), Value::Bool(false)])
            );
        }
        let bad = crate::Program::parse(r#"summary rlike "(""#).unwrap();
        let vars: HashMap<String, Value> = [("summary".to_string(), Value::from("x"))].into();
        assert_eq!(
            Evaluator::new(&engine, vars).eval(&bad).unwrap_err().code,
            "regexfailure"
        );
    }

    #[test]
    fn long_argument_lists_that_hash_alike_are_still_told_apart() {
        // The memo key of a long list hashes only its length and first, second and last
        // arguments: these calls collide in the hash but differ in the middle, so each is
        // its own result and its own condition; the repeat of the first is a cached result.
        let engine = Engine::new();
        let vars: HashMap<String, Value> = [("summary".to_string(), Value::from("a c q"))].into();
        let mut ev = Evaluator::new(&engine, vars);
        let calls = [
            r#"contains_all(summary, "a", "b", "c", "q")"#,
            r#"contains_all(summary, "a", "c", "c", "q")"#,
            r#"contains_all(summary, "a", "b", "c", "q")"#,
        ];
        let got: Vec<(Value, usize)> = calls
            .iter()
            .map(|r| {
                let o = ev.eval(&crate::Program::parse(r).unwrap()).unwrap();
                (o.value, o.conditions)
            })
            .collect();
        assert_eq!(
            got,
            [(Value::Bool(false), 1), (Value::Bool(true), 1), (Value::Bool(false), 0)]
        );
    }

    #[test]
    fn a_rule_evaluated_again_finds_its_needle_list_by_address() {
        let engine = Engine::new();
        let rule = crate::Program::parse(
            r#"contains_any(summary, "ab", "zz") & !contains_any(summary, lcase(user_name), "q")"#,
        )
        .unwrap();
        let run = |summary: &str, user: &str| {
            let vars: HashMap<String, Value> = [("summary", Value::from(summary)), ("user_name", Value::from(user))]
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect();
            Evaluator::new(&engine, vars).eval(&rule).unwrap().value
        };
        // The literal list is the same strings each time; the second list holds a computed
        // string, new on every action, so it is found by its text.
        assert_eq!(run("xab", "Bob"), Value::Bool(true));
        assert_eq!(run("xab bob", "Bob"), Value::Bool(false));
        assert_eq!(run("nothing", "Bob"), Value::Bool(false));
        assert_eq!(run("zz", "Eve"), Value::Bool(true));
        assert_eq!(run("zz eve", "EVE"), Value::Bool(false));
    }

    #[test]
    fn built_in_aliased_and_added_variables_read_alike() {
        let known = crate::vars::KnownVariables::with_extra(["global_user_groups"]);
        let engine = Engine::new().with_known_variables(known.clone());
        let vars: HashMap<String, Value> = [
            ("page_title", Value::from("Main")),
            ("global_user_groups", Value::from(vec![Value::from("steward")])),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        let mut ev = Evaluator::new(&engine, vars);
        let rules = [
            "page_title",
            // The deprecated name reads the same variable.
            "article_text",
            "page_title === article_text",
            "global_user_groups[0]",
            "global_user_groups[0]",
            // Never set by the action: null, read by place and by an alias alike.
            "page_namespace",
            "article_namespace",
            // Assigned only in a branch that did not run.
            "if false then (x := 1) end; x",
            // A user variable appended to, then read.
            "a := [1]; a[] := 2; a",
        ];
        let got: Vec<Value> = rules
            .iter()
            .map(|r| ev.eval(&crate::Program::parse_with(r, &known).unwrap()).unwrap().value)
            .collect();
        assert_eq!(
            got,
            [
                Value::from("Main"),
                Value::from("Main"),
                Value::Bool(true),
                Value::from("steward"),
                Value::from("steward"),
                Value::Null,
                Value::Null,
                Value::Undefined,
                Value::from(vec![Value::Int(1), Value::Int(2)]),
            ]
        );
    }

    #[test]
    fn normalised_text_is_cached_per_string() {
        let engine = Engine::new();
        let vars = [
            ("summary", Value::from("f\u{3bc}ck")),
            ("user_name", Value::from("clean")),
            ("added_lines", Value::from(vec![Value::from("sh1t"), Value::from("ok")])),
        ];
        let got = action(
            &engine,
            &vars,
            &[
                "ccnorm(summary)",
                r#"ccnorm_contains_any(user_name, "fuck")"#,
                r#"ccnorm(user_name)"#,
                r#"ccnorm_contains_all(added_lines, "shit", "ok")"#,
                r#"ccnorm(added_lines)"#,
                // With an entity, ccnorm decodes first: not the cached table-only text.
                r#"ccnorm("a&amp;b")"#,
                r#"ccnorm_contains_any("a&amp;b", "&AMP;")"#,
            ],
        );
        let eq = Equivset::builtin();
        assert_eq!(got[0], Value::from(normalize::ccnorm("f\u{3bc}ck", eq)));
        assert_eq!(got[1], Value::Bool(false));
        assert_eq!(got[2], Value::from(normalize::ccnorm("clean", eq)));
        assert_eq!(
            got[3],
            Value::Bool(normalize::contains("sh1t\nok\n", &["shit", "ok"], false, Some(eq)))
        );
        assert_eq!(got[4], Value::from(normalize::ccnorm("sh1t\nok\n", eq)));
        assert_eq!(got[5], Value::from(normalize::ccnorm("a&b", eq)));
        assert_eq!(got[6], Value::Bool(true));
    }

    #[test]
    fn substr_like_php() {
        assert_eq!(mb_substr("héllo", 1, Some(3)), "éll");
        assert_eq!(mb_substr("hello", -3, None), "llo");
        assert_eq!(mb_substr("hello", 1, Some(-1)), "ell");
        assert_eq!(mb_substr("hello", 10, None), "");
        assert_eq!(mb_substr("hello", -10, Some(2)), "he");
    }

    #[test]
    fn strpos_takes_an_int_typed_float_past_the_end_for_not_found() {
        // -(PHP_INT_MIN) is an "int" holding a float; AbuseFilter compares it with the length
        // before mb_strpos() would refuse it (answers checked against the af-oracle).
        let engine = Engine::new();
        let got = action(
            &engine,
            &[],
            &[
                "strpos('abcabc', 'a', -(-9223372036854775807 - 1))",
                "strpos('abcabc', '', -(-9223372036854775807 - 1))",
                "strpos('abcabc', 'b', 1.9)",
            ],
        );
        assert_eq!(got, [Value::Int(-1), Value::Int(-1), Value::Int(1)]);
        // Passed on, the same value is still the TypeError PHP raises.
        let p = crate::Program::parse("substr('abcabc', -(-9223372036854775807 - 1))").unwrap();
        let e = Evaluator::new(&engine, HashMap::<String, Value>::new())
            .eval(&p)
            .unwrap_err();
        assert_eq!(e.code, "typeerror");
    }

    #[test]
    fn get_matches_group_heuristic() {
        assert_eq!(group_count_heuristic("I am a (dog|cat)"), 2);
        assert_eq!(group_count_heuristic(r"You say (.*) \(and I say (.*)\)\."), 3);
        assert_eq!(group_count_heuristic("(?:a)(b)"), 2);
    }
}
