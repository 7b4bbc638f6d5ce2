//! `sealog grep`'s query language, lhgrep's spec (LogHarbour §2.12):
//! conditions on fields joined with `AND`, `OR`, `NOT` and parentheses,
//! in SQL-ish or jq-ish spelling:
//!
//! ```text
//! level = 'error'
//! timestamp > '2023-06-01T00:00:00Z' AND app = 'myapp'
//! select(.app == "ABC" and .level == "error")
//! msg ~ 'timeout' OR (status >= 500 AND NOT path = '/health')
//! ```
//!
//! Operators: `=`/`==`, `!=`, `<`, `<=`, `>`, `>=`, `~` (a string field
//! contains the text).
//! Fields are top-level keys, dots descend (`data.change_data.entity`);
//! `timestamp` is the record's own time (the first of `time`, `when`,
//! `timestamp`, `@timestamp`, else `received_at`) and compares as a time;
//! `level` is the normalised severity of `severity`, `level` or `pri` and
//! orders by gravity (`level >= warn` is warn or worse); `message` is `msg`
//! or `message`. Numbers compare as numbers, anything else as text.
//!
//! ```
//! use sealog_query::grep::Expr;
//! let e = Expr::parse("select(.app == \"shop\" and .level >= \"warn\")").unwrap();
//! assert!(e.matches(br#"{"app":"shop","pri":"Err","msg":"x"}"#));
//! assert!(!e.matches(br#"{"app":"shop","pri":"Info","msg":"x"}"#));
//! ```

use serde_json::Value;

/// Why a query did not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("query {}: {reason} at character {at}", shown(query))]
pub struct ParseError {
    /// The query.
    pub query: String,
    /// Where (in characters).
    pub at: usize,
    /// What was wrong.
    pub reason: String,
}

/// The query as an error shows it: at most 200 characters.
fn shown(q: &str) -> String {
    if q.chars().count() <= 200 {
        format!("{q:?}")
    } else {
        format!("{:?}...", q.chars().take(200).collect::<String>())
    }
}

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// `=`, `==`
    Eq,
    /// `!=`
    Ne,
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
    /// `~`: contains
    Contains,
}

/// A parsed query.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    /// Every record.
    True,
    /// `field op value`.
    Cond {
        /// The path (`a.b` → `["a","b"]`).
        path: Vec<String>,
        /// The operator.
        op: Op,
        /// The value as written.
        value: String,
    },
    /// Both.
    And(Box<Expr>, Box<Expr>),
    /// Either.
    Or(Box<Expr>, Box<Expr>),
    /// Not.
    Not(Box<Expr>),
}

/// Longest query accepted, in bytes.
pub const MAX_QUERY: usize = 16 * 1024;
/// Deepest nesting accepted.
const MAX_DEPTH: usize = 64;

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Ident(String),
    Str(String),
    Op(Op),
    And,
    Or,
    Not,
    Open,
    Close,
}

fn lex(q: &str) -> Result<Vec<(usize, Tok)>, ParseError> {
    let err = |at: usize, reason: &str| ParseError {
        query: q.to_string(),
        at,
        reason: reason.to_string(),
    };
    let cs: Vec<char> = q.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < cs.len() {
        let c = cs[i];
        let start = i;
        match c {
            c if c.is_whitespace() => i += 1,
            '(' => {
                out.push((start, Tok::Open));
                i += 1;
            }
            ')' => {
                out.push((start, Tok::Close));
                i += 1;
            }
            '\'' | '"' => {
                let mut s = String::new();
                i += 1;
                loop {
                    match cs.get(i) {
                        None => return Err(err(start, "unterminated string")),
                        Some('\\') => {
                            match cs.get(i + 1) {
                                Some(n) => s.push(*n),
                                None => return Err(err(start, "unterminated string")),
                            }
                            i += 2;
                        }
                        Some(x) if *x == c => {
                            i += 1;
                            break;
                        }
                        Some(x) => {
                            s.push(*x);
                            i += 1;
                        }
                    }
                }
                out.push((start, Tok::Str(s)));
            }
            '=' | '!' | '<' | '>' | '~' | '&' | '|' => {
                let next = cs.get(i + 1).copied();
                let (tok, len) = match (c, next) {
                    ('=', Some('=')) => (Tok::Op(Op::Eq), 2),
                    ('=', Some('~')) => (Tok::Op(Op::Contains), 2),
                    ('=', _) => (Tok::Op(Op::Eq), 1),
                    ('!', Some('=')) => (Tok::Op(Op::Ne), 2),
                    ('!', _) => (Tok::Not, 1),
                    ('<', Some('=')) => (Tok::Op(Op::Le), 2),
                    ('<', _) => (Tok::Op(Op::Lt), 1),
                    ('>', Some('=')) => (Tok::Op(Op::Ge), 2),
                    ('>', _) => (Tok::Op(Op::Gt), 1),
                    ('~', _) => (Tok::Op(Op::Contains), 1),
                    ('&', Some('&')) => (Tok::And, 2),
                    ('|', Some('|')) => (Tok::Or, 2),
                    _ => return Err(err(start, "unexpected character")),
                };
                out.push((start, tok));
                i += len;
            }
            _ => {
                let mut s = String::new();
                while let Some(&x) = cs.get(i) {
                    if x.is_whitespace() || "()'\"=!<>~&|".contains(x) {
                        break;
                    }
                    s.push(x);
                    i += 1;
                }
                let tok = match s.to_ascii_lowercase().as_str() {
                    "and" => Tok::And,
                    "or" => Tok::Or,
                    "not" => Tok::Not,
                    _ => Tok::Ident(s),
                };
                out.push((start, tok));
            }
        }
    }
    Ok(out)
}

struct Parser<'a> {
    q: &'a str,
    toks: Vec<(usize, Tok)>,
    at: usize,
}

impl Parser<'_> {
    fn err(&self, reason: &str) -> ParseError {
        ParseError {
            query: self.q.to_string(),
            at: self
                .toks
                .get(self.at)
                .map_or(self.q.chars().count(), |t| t.0),
            reason: reason.to_string(),
        }
    }

    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.at).map(|t| &t.1)
    }

    fn or(&mut self, depth: usize) -> Result<Expr, ParseError> {
        let mut e = self.and(depth)?;
        while self.peek() == Some(&Tok::Or) {
            self.at += 1;
            e = Expr::Or(Box::new(e), Box::new(self.and(depth)?));
        }
        Ok(e)
    }

    fn and(&mut self, depth: usize) -> Result<Expr, ParseError> {
        let mut e = self.unary(depth)?;
        while self.peek() == Some(&Tok::And) {
            self.at += 1;
            e = Expr::And(Box::new(e), Box::new(self.unary(depth)?));
        }
        Ok(e)
    }

    fn unary(&mut self, depth: usize) -> Result<Expr, ParseError> {
        if depth > MAX_DEPTH {
            return Err(self.err("nested too deeply"));
        }
        match self.peek().cloned() {
            Some(Tok::Not) => {
                self.at += 1;
                Ok(Expr::Not(Box::new(self.unary(depth + 1)?)))
            }
            Some(Tok::Open) => {
                self.at += 1;
                let e = self.or(depth + 1)?;
                if self.peek() != Some(&Tok::Close) {
                    return Err(self.err("expected )"));
                }
                self.at += 1;
                Ok(e)
            }
            Some(Tok::Ident(f))
                if f == "select"
                    && self.toks.get(self.at + 1).map(|t| &t.1) == Some(&Tok::Open) =>
            {
                self.at += 1;
                self.unary(depth + 1)
            }
            Some(Tok::Ident(f)) => {
                self.at += 1;
                let path: Vec<String> = f
                    .trim_start_matches('.')
                    .split('.')
                    .map(str::to_string)
                    .collect();
                if path.iter().any(String::is_empty) {
                    self.at -= 1;
                    return Err(self.err("a field name is empty"));
                }
                let op = match self.peek() {
                    Some(Tok::Op(op)) => *op,
                    _ => return Err(self.err("expected an operator (= != < <= > >= ~)")),
                };
                self.at += 1;
                let value = match self.peek().cloned() {
                    Some(Tok::Str(s)) | Some(Tok::Ident(s)) => s,
                    _ => return Err(self.err("expected a value")),
                };
                self.at += 1;
                Ok(Expr::Cond { path, op, value })
            }
            Some(Tok::Str(_)) => Err(self.err("expected a field name, not a string")),
            Some(_) => Err(self.err("expected a condition")),
            None => Err(self.err("the query ends too early")),
        }
    }
}

impl Expr {
    /// Parses a query; an empty one matches every record.
    ///
    /// # Errors
    /// [`ParseError`] naming where and why.
    pub fn parse(q: &str) -> Result<Expr, ParseError> {
        if q.len() > MAX_QUERY {
            return Err(ParseError {
                query: q.chars().take(64).collect(),
                at: 0,
                reason: format!("longer than {MAX_QUERY} bytes"),
            });
        }
        let toks = lex(q)?;
        if toks.is_empty() {
            return Ok(Expr::True);
        }
        let mut p = Parser { q, toks, at: 0 };
        let e = p.or(0)?;
        if p.at < p.toks.len() {
            return Err(p.err("unexpected text after the query"));
        }
        Ok(e)
    }

    /// Both `self` and `other`.
    pub fn and(self, other: Expr) -> Expr {
        match (self, other) {
            (Expr::True, e) | (e, Expr::True) => e,
            (a, b) => Expr::And(Box::new(a), Box::new(b)),
        }
    }

    /// True when the stored line (a JSON object) satisfies the query.
    pub fn matches(&self, line: &[u8]) -> bool {
        if *self == Expr::True {
            return true;
        }
        match serde_json::from_slice::<Value>(line) {
            Ok(v @ Value::Object(_)) => self.eval(&v),
            _ => false,
        }
    }

    /// Evaluates against a parsed record.
    pub fn eval(&self, v: &Value) -> bool {
        match self {
            Expr::True => true,
            Expr::And(a, b) => a.eval(v) && b.eval(v),
            Expr::Or(a, b) => a.eval(v) || b.eval(v),
            Expr::Not(a) => !a.eval(v),
            Expr::Cond { path, op, value } => cond(v, path, *op, value),
        }
    }

    /// The top-level fields the query reads (aliases expanded).
    fn fields(&self, out: &mut Vec<String>) {
        match self {
            Expr::True => {}
            Expr::And(a, b) | Expr::Or(a, b) => {
                a.fields(out);
                b.fields(out);
            }
            Expr::Not(a) => a.fields(out),
            Expr::Cond { path, .. } => {
                let first = path[0].as_str();
                let more: &[&str] = match (first, path.len()) {
                    ("timestamp", 1) => &["time", "when", "timestamp", "@timestamp", "received_at"],
                    ("level", 1) => &["severity", "level", "pri"],
                    ("message", 1) => &["message", "msg"],
                    _ => &[],
                };
                for f in std::iter::once(first).chain(more.iter().copied()) {
                    if !out.iter().any(|x| x == f) {
                        out.push(f.to_string());
                    }
                }
            }
        }
    }

    /// The conjunction's terms, when the query is one (`a AND b AND …`).
    fn conjuncts(&self) -> Option<Vec<&Expr>> {
        match self {
            Expr::True => Some(Vec::new()),
            Expr::And(a, b) => {
                let mut v = a.conjuncts()?;
                v.extend(b.conjuncts()?);
                Some(v)
            }
            c @ Expr::Cond { .. } => Some(vec![c]),
            _ => None,
        }
    }

    /// A coarse prefilter a server or the journal scan can apply before
    /// [`Expr::matches`]: every record the query matches also matches it.
    /// Returns `(from, to, text, wheres)` for [`crate::Filter`]: times in
    /// RFC 3339 (`to` exclusive), the longest `~` text, and `key=value`
    /// terms for plain equalities.
    pub fn prefilter(&self) -> Prefilter {
        let mut p = Prefilter::default();
        let Some(terms) = self.conjuncts() else {
            return p;
        };
        for t in terms {
            let Expr::Cond { path, op, value } = t else {
                continue;
            };
            let field = path.join(".");
            match (field.as_str(), op) {
                ("timestamp", Op::Ge | Op::Gt) => {
                    if let Some(ns) = sealog_event::parse_rfc3339(value) {
                        p.from_ns = Some(p.from_ns.map_or(ns, |f| f.max(ns)));
                    }
                }
                ("timestamp", Op::Le | Op::Lt) => {
                    if let Some(ns) = sealog_event::parse_rfc3339(value) {
                        let to = if *op == Op::Le {
                            ns.saturating_add(1)
                        } else {
                            ns
                        };
                        p.to_ns = Some(p.to_ns.map_or(to, |t| t.min(to)));
                    }
                }
                ("timestamp" | "level", _) => {}
                // `message ~ x` (msg or message): the text is in the line too.
                (_, Op::Contains) if p.text.as_ref().is_none_or(|t| t.len() < value.len()) => {
                    p.text = Some(value.clone());
                }
                // Plain text equalities only: a number compares by value
                // here but by its text in a `where` term; `severity` and
                // `host` are aliased there, `message` here.
                ("severity" | "host" | "message", _) => {}
                (_, Op::Eq)
                    if !value.is_empty()
                        && value.parse::<f64>().is_err()
                        && !field.contains([':', '='])
                        && !matches!(value.as_str(), "true" | "false" | "null")
                        && !value.starts_with(['[', '{']) =>
                {
                    p.wheres.push(format!("{field}={value}"))
                }
                _ => {}
            }
        }
        p
    }
}

/// What [`Expr::prefilter`] found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Prefilter {
    /// Records at or after (ns).
    pub from_ns: Option<i64>,
    /// Records before (ns).
    pub to_ns: Option<i64>,
    /// Text every match contains (JSON-escaped forms aside: see
    /// [`Prefilter::text_is_safe`]).
    pub text: Option<String>,
    /// `key=value` terms.
    pub wheres: Vec<String>,
}

impl Prefilter {
    /// True when `text` can be searched in the stored line as is: it has
    /// no character JSON would escape (`"`, `\`, controls) and is ASCII,
    /// so the line spells it the same way.
    pub fn text_is_safe(&self) -> bool {
        self.text.as_ref().is_some_and(|t| {
            t.bytes()
                .all(|b| (0x20..0x7f).contains(&b) && b != b'"' && b != b'\\' && b != b'/')
        })
    }
}

/// A query ready to scan a journal: the parsed expression, with its
/// prefilter turned into block pruning (by time) and substring checks that
/// reject most lines before any JSON is parsed.
#[derive(Debug)]
pub struct GrepMatcher {
    expr: Expr,
    pre: Prefilter,
    needles: Vec<memchr::memmem::Finder<'static>>,
    fields: Vec<String>,
}

impl GrepMatcher {
    /// Builds the matcher for `expr`.
    pub fn new(expr: Expr) -> GrepMatcher {
        let pre = expr.prefilter();
        let mut needles = Vec::new();
        if pre.text_is_safe() {
            if let Some(t) = &pre.text {
                needles.push(memchr::memmem::Finder::new(t.as_bytes()).into_owned());
            }
        }
        for w in &pre.wheres {
            if let Some((_, v)) = w.split_once('=') {
                let safe = v
                    .bytes()
                    .all(|b| (0x20..0x7f).contains(&b) && b != b'"' && b != b'\\' && b != b'/');
                if safe {
                    needles.push(memchr::memmem::Finder::new(v.as_bytes()).into_owned());
                }
            }
        }
        let mut fields = Vec::new();
        expr.fields(&mut fields);
        GrepMatcher {
            expr,
            pre,
            needles,
            fields,
        }
    }

    /// The prefilter (for a server-side query).
    pub fn prefilter(&self) -> &Prefilter {
        &self.pre
    }

    /// The expression.
    pub fn expr(&self) -> &Expr {
        &self.expr
    }
}

impl crate::Matcher for GrepMatcher {
    fn block_may_match(&self, b: &sealog_journal::BlockMeta) -> bool {
        self.pre.from_ns.is_none_or(|f| b.max_time >= f)
            && self.pre.to_ns.is_none_or(|t| b.min_time < t)
    }

    fn matches(&self, line: &[u8]) -> bool {
        // A line with escapes may spell a needle differently: parse it.
        if !self.needles.is_empty() && memchr::memchr(b'\\', line).is_none() {
            for n in &self.needles {
                if n.find(line).is_none() {
                    return false;
                }
            }
        }
        if self.expr == Expr::True {
            return true;
        }
        // Only the fields the query reads are parsed into values.
        let Ok(top) = serde_json::from_slice::<Top<'_>>(line) else {
            return false;
        };
        let mut m = serde_json::Map::new();
        for (k, raw) in top.0 {
            if self.fields.iter().any(|f| *f == k) {
                match serde_json::from_str::<Value>(raw.get()) {
                    Ok(v) => {
                        m.insert(k.into_owned(), v);
                    }
                    Err(_) => return false,
                }
            }
        }
        self.expr.eval(&Value::Object(m))
    }
}

/// The record's own time as [`sealog_event::leaf_time`] reads a line: the
/// highest-ranked of `time`, `when`, `timestamp`, `@timestamp` present
/// (if it parses), else `received_at`.
fn time_of(v: &Value) -> Option<i64> {
    let parse = |x: &Value| match x {
        Value::String(s) => sealog_event::parse_time_value(sealog_event::TimeValue::Str(s)),
        Value::Number(n) => n
            .as_f64()
            .and_then(|n| sealog_event::parse_time_value(sealog_event::TimeValue::Num(n))),
        _ => None,
    };
    match sealog_event::TIME_FIELDS.iter().find_map(|f| v.get(*f)) {
        Some(t) => parse(t),
        None => None,
    }
    .or_else(|| v.get("received_at").and_then(parse))
}

/// A line's top-level fields, their values left unparsed.
struct Top<'a>(Vec<(std::borrow::Cow<'a, str>, &'a serde_json::value::RawValue)>);

impl<'de> serde::Deserialize<'de> for Top<'de> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Top<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut m: A,
            ) -> Result<Top<'de>, A::Error> {
                let mut out = Vec::new();
                while let Some(e) = m.next_entry()? {
                    out.push(e);
                }
                Ok(Top(out))
            }
        }
        d.deserialize_map(V)
    }
}

fn lookup<'v>(v: &'v Value, path: &[String]) -> Option<&'v Value> {
    let mut cur = v;
    for k in path {
        cur = cur.get(k)?;
    }
    Some(cur)
}

/// Gravity of a severity: 0 debug … 7 emergency (the reverse of syslog's
/// numbers, so `>=` reads "at least this grave").
fn gravity(s: &str) -> Option<u8> {
    sealog_event::severity_of(s).map(|n| 7 - n)
}

fn record_gravity(v: &Value) -> Option<u8> {
    sealog_event::SEVERITY_FIELDS
        .iter()
        .find_map(|f| match v.get(*f) {
            Some(Value::String(s)) => gravity(s),
            Some(Value::Number(n)) => n.as_u64().filter(|n| *n <= 7).map(|n| 7 - n as u8),
            _ => None,
        })
}

fn compare<T: PartialOrd>(a: T, op: Op, b: T) -> bool {
    match op {
        Op::Eq => a == b,
        Op::Ne => a != b,
        Op::Lt => a < b,
        Op::Le => a <= b,
        Op::Gt => a > b,
        Op::Ge => a >= b,
        Op::Contains => false,
    }
}

fn cond(v: &Value, path: &[String], op: Op, want: &str) -> bool {
    if let [only] = path {
        match only.as_str() {
            "timestamp"
                if v.get("timestamp").is_none_or(|t| !t.is_string()) || op != Op::Contains =>
            {
                let got = time_of(v);
                return match (got, sealog_event::parse_rfc3339(want)) {
                    (Some(g), Some(w)) => compare(g, op, w),
                    (Some(_), None) => false,
                    (None, _) => op == Op::Ne,
                };
            }
            "level" if op != Op::Contains => {
                return match (record_gravity(v), gravity(want)) {
                    (Some(g), Some(w)) => compare(g, op, w),
                    (None, _) => op == Op::Ne,
                    (Some(_), None) => false,
                };
            }
            "message" if v.get("message").is_none() => {
                return cond(v, &["msg".to_string()], op, want);
            }
            _ => {}
        }
    }
    let got = lookup(v, path);
    let Some(got) = got else {
        return op == Op::Ne;
    };
    if op == Op::Contains {
        // Text only: a string's characters are in the stored line as they
        // are (escapes aside), which keeps the line prefilter exact.
        return got.as_str().is_some_and(|s| s.contains(want));
    }
    // A number written in the query compares by value with a number (or a
    // numeric string) in the record; ordering against anything else is
    // false. `nan` and `inf` are text, not numbers.
    let want_num = number(want);
    if let Some(w) = &want_num {
        let got_num = match got {
            Value::Number(n) => Some(n.clone()),
            Value::String(s) => number(s),
            _ => None,
        };
        match got_num {
            Some(g) => return compare_numbers(&g, op, w),
            None if !matches!(op, Op::Eq | Op::Ne) => return false,
            None => {}
        }
    }
    let text = match got {
        Value::String(s) => std::borrow::Cow::Borrowed(s.as_str()),
        // A number against text that is not one: only `!=` holds.
        Value::Number(_) if want_num.is_none() => return op == Op::Ne,
        Value::Null if !matches!(op, Op::Eq | Op::Ne) => return false,
        Value::Null => "null".into(),
        other => other.to_string().into(),
    };
    compare(text.as_ref(), op, want)
}

/// A finite JSON number written as text (`12`, `-3.5`, `1e3`), else `None`.
fn number(s: &str) -> Option<serde_json::Number> {
    let t = s.trim();
    if t.is_empty()
        || !t
            .bytes()
            .all(|b| b.is_ascii_digit() || b"+-.eE".contains(&b))
    {
        return None;
    }
    serde_json::from_str::<serde_json::Number>(t.trim_start_matches('+')).ok()
}

/// Integers compare exactly (no rounding through f64); others as f64.
fn compare_numbers(g: &serde_json::Number, op: Op, w: &serde_json::Number) -> bool {
    if let (Some(a), Some(b)) = (g.as_i64(), w.as_i64()) {
        return compare(a, op, b);
    }
    if let (Some(a), Some(b)) = (g.as_u64(), w.as_u64()) {
        return compare(a, op, b);
    }
    match (g.as_f64(), w.as_f64()) {
        (Some(a), Some(b)) => compare(a, op, b),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LH: &[u8] = br#"{"realm":"r","seq":4,"received_at":"2026-01-01T00:00:00Z","app":"myapp","module":"database","pri":"Err","when":"2023-06-01T12:00:00Z","msg":"query timeout after 30s","status":503,"data":{"x":{"y":"deep"}}}"#;

    fn m(q: &str) -> bool {
        Expr::parse(q).expect("parses").matches(LH)
    }

    #[test]
    fn the_spec_examples() {
        assert!(m("level = 'error'"));
        assert!(m("timestamp > '2023-06-01T00:00:00Z' AND app = 'myapp'"));
        assert!(!m("timestamp > '2023-06-02T00:00:00Z' AND app = 'myapp'"));
        assert!(m("module = 'database'"));
        assert!(m("select(.app == \"myapp\" and .level == \"error\")"));
        assert!(!m("select(.app == \"ABC\" and .level == \"error\")"));
    }

    #[test]
    fn operators_and_logic() {
        assert!(m("level >= warn"));
        assert!(!m("level > crit"));
        assert!(m("message ~ timeout"));
        assert!(m("msg ~ 'after 30'"));
        assert!(m("status >= 500 && status < 504"));
        assert!(!m("status = 50"));
        let g = |q: &str, l: &[u8]| Expr::parse(q).expect("parses").matches(l);
        assert!(!g("status > 100", br#"{"status":null}"#));
        assert!(!g("status > 100", br#"{"status":"60"}"#));
        assert!(g("status > 100", br#"{"status":"600"}"#));
        assert!(!g("n = 9007199254740992", br#"{"n":9007199254740993}"#));
        assert!(g("n = 9007199254740993", br#"{"n":9007199254740993}"#));
        assert!(!g("status != NaN", br#"{"status":"NaN"}"#));
        assert!(!g("status < inf", br#"{"status":5}"#));
        assert!(g(
            "when >= '2026-11-18T00:00:00Z'",
            br#"{"when":"2026-11-19T00:00:00Z"}"#
        ));
        assert!(g(
            "timestamp >= '2026-11-18T00:00:00Z'",
            br#"{"when":1795000000}"#
        ));
        assert!(m("data.x.y = deep"));
        assert!(m("missing != x"));
        assert!(!m("missing = x"));
        assert!(m("NOT app = other"));
        assert!(m("app = other OR (app = myapp AND NOT level = info)"));
        assert!(m(""));
        assert!(Expr::parse("app =").is_err());
        assert!(Expr::parse("app = 'x").is_err());
        assert!(Expr::parse("(app = x").is_err());
        assert!(Expr::parse("app x").is_err());
        assert!(Expr::parse("app = x y").is_err());
        assert!(Expr::parse(&"(".repeat(500)).is_err());
        assert!(Expr::parse("'x' = y").is_err());
        assert!(!Expr::parse("app = x").expect("ok").matches(b"not json"));
    }

    #[test]
    fn the_scan_matcher_answers_as_the_full_evaluation() {
        use crate::Matcher;
        let lines: [&[u8]; 5] = [
            LH,
            br#"{"app":"myapp","msg":"time\u006fut","pri":"Warn","when":"2023-06-01T00:00:00Z"}"#,
            br#"{"app":"myapp","app":"other","msg":"timeout"}"#,
            br#"[1,2]"#,
            br#"{"time":"bad","received_at":"2023-06-01T00:00:00Z","level":"error","n":5}"#,
        ];
        for q in [
            "app = myapp",
            "msg ~ timeout",
            "message ~ timeout AND level >= warn",
            "timestamp >= '2023-06-01T00:00:00Z'",
            "NOT app = other",
            "n > 4 OR data.x.y = deep",
            "",
        ] {
            let e = Expr::parse(q).expect("parses");
            let m = GrepMatcher::new(e.clone());
            for l in lines {
                assert_eq!(
                    m.matches(l),
                    e.matches(l),
                    "{q:?} on {}",
                    String::from_utf8_lossy(l)
                );
            }
        }
    }

    #[test]
    fn the_prefilter_is_a_superset() {
        let e =
            Expr::parse("app = myapp AND msg ~ timeout AND timestamp <= '2023-06-01T12:00:00Z'")
                .expect("ok");
        let p = e.prefilter();
        assert_eq!(p.wheres, vec!["app=myapp".to_string()]);
        assert_eq!(p.text.as_deref(), Some("timeout"));
        assert!(p.to_ns.is_some());
        assert!(p.text_is_safe());
        let or = Expr::parse("app = a OR app = b").expect("ok").prefilter();
        assert_eq!(
            or,
            Prefilter::default(),
            "a disjunction filters nothing early"
        );
    }
}
