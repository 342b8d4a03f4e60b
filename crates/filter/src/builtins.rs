//! The builtin functions: names, argument counts, and which share a result cache entry.

/// A builtin function of the language.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[allow(missing_docs)] // each variant is the function of the same name
pub enum Builtin {
    Lcase,
    Ucase,
    Length,
    String,
    Int,
    Float,
    Bool,
    Norm,
    Ccnorm,
    CcnormContainsAny,
    CcnormContainsAll,
    Specialratio,
    Rmspecials,
    Rmdoubles,
    Rmwhitespace,
    Count,
    Rcount,
    GetMatches,
    IpInRange,
    IpInRanges,
    ContainsAny,
    ContainsAll,
    EqualsToAny,
    Substr,
    Strlen,
    Strpos,
    StrReplace,
    StrReplaceRegexp,
    Rescape,
    Set,
    SetVar,
    Sanitize,
}

/// The largest argument count a variadic function takes.
pub const VARIADIC: usize = usize::MAX;

/// Every builtin with its name and (min, max) argument count, in AbuseFilter's order.
pub const ALL: &[(Builtin, &str, usize, usize)] = &[
    (Builtin::Lcase, "lcase", 1, 1),
    (Builtin::Ucase, "ucase", 1, 1),
    (Builtin::Length, "length", 1, 1),
    (Builtin::String, "string", 1, 1),
    (Builtin::Int, "int", 1, 1),
    (Builtin::Float, "float", 1, 1),
    (Builtin::Bool, "bool", 1, 1),
    (Builtin::Norm, "norm", 1, 1),
    (Builtin::Ccnorm, "ccnorm", 1, 1),
    (Builtin::CcnormContainsAny, "ccnorm_contains_any", 2, VARIADIC),
    (Builtin::CcnormContainsAll, "ccnorm_contains_all", 2, VARIADIC),
    (Builtin::Specialratio, "specialratio", 1, 1),
    (Builtin::Rmspecials, "rmspecials", 1, 1),
    (Builtin::Rmdoubles, "rmdoubles", 1, 1),
    (Builtin::Rmwhitespace, "rmwhitespace", 1, 1),
    (Builtin::Count, "count", 1, 2),
    (Builtin::Rcount, "rcount", 1, 2),
    (Builtin::GetMatches, "get_matches", 2, 2),
    (Builtin::IpInRange, "ip_in_range", 2, 2),
    (Builtin::IpInRanges, "ip_in_ranges", 2, VARIADIC),
    (Builtin::ContainsAny, "contains_any", 2, VARIADIC),
    (Builtin::ContainsAll, "contains_all", 2, VARIADIC),
    (Builtin::EqualsToAny, "equals_to_any", 2, VARIADIC),
    (Builtin::Substr, "substr", 2, 3),
    (Builtin::Strlen, "strlen", 1, 1),
    (Builtin::Strpos, "strpos", 2, 3),
    (Builtin::StrReplace, "str_replace", 3, 3),
    (Builtin::StrReplaceRegexp, "str_replace_regexp", 3, 3),
    (Builtin::Rescape, "rescape", 1, 1),
    (Builtin::Set, "set", 2, 2),
    (Builtin::SetVar, "set_var", 2, 2),
    (Builtin::Sanitize, "sanitize", 1, 1),
];

impl Builtin {
    /// Looks a function up by name. Function names are case-sensitive, as in AbuseFilter.
    pub fn from_name(name: &str) -> Option<Builtin> {
        ALL.iter().find(|(_, n, _, _)| *n == name).map(|(b, _, _, _)| *b)
    }

    fn entry(self) -> &'static (Builtin, &'static str, usize, usize) {
        // ALL lists every variant; the fallback is never taken.
        ALL.iter().find(|(b, ..)| *b == self).unwrap_or(&ALL[0])
    }

    /// The function's name.
    pub fn name(self) -> &'static str {
        self.entry().1
    }

    /// Minimum and maximum number of arguments.
    pub fn arity(self) -> (usize, usize) {
        let e = self.entry();
        (e.2, e.3)
    }

    /// Whether the function takes any number of arguments past its minimum.
    pub fn is_variadic(self) -> bool {
        self.arity().1 == VARIADIC
    }

    /// AbuseFilter caches function results per action keyed by the PHP handler, so `length` and
    /// `strlen` share entries and a cached call costs no condition. `set`/`set_var` are never cached.
    pub(crate) fn handler(self) -> Builtin {
        match self {
            Builtin::Strlen => Builtin::Length,
            Builtin::SetVar => Builtin::Set,
            b => b,
        }
    }

    /// Rough relative cost of one call, for the static cost estimate (1 = a comparison).
    pub fn cost(self) -> u32 {
        match self {
            Builtin::Norm | Builtin::Ccnorm | Builtin::CcnormContainsAny | Builtin::CcnormContainsAll => 20,
            Builtin::Rmspecials | Builtin::Rmdoubles | Builtin::Specialratio | Builtin::Sanitize => 10,
            Builtin::Rcount | Builtin::GetMatches | Builtin::StrReplaceRegexp => 10,
            Builtin::Lcase | Builtin::Ucase | Builtin::Rmwhitespace => 4,
            Builtin::ContainsAny | Builtin::ContainsAll => 3,
            _ => 1,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for (b, name, _, _) in ALL {
            assert_eq!(Builtin::from_name(name), Some(*b));
            assert_eq!(b.name(), *name);
        }
        assert_eq!(Builtin::from_name("LCASE"), None);
    }
}
