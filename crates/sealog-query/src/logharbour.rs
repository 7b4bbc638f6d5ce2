//! LogHarbour's query functions (`GetLogs`, `GetChanges`, `GetSet`,
//! `GetApps`, `GetUnusualIP`) over a realm's stored lines.
//!
//! A LogHarbour entry is a stored line with a string `app` and a `type` of
//! `C`, `A`, `D` or `U` (seed §2.2); every other line in the realm is
//! skipped by these functions. The semantics are the wiki's, not the
//! upstream code's (seed §2.7), where the two differ:
//!
//! - `pri` is a minimum priority and works for every priority, `Sec`
//!   included (upstream reused a global list, and could not decode `Sec`);
//! - with `pri` and no `type`, `GetLogs` and `GetSet` leave data-change
//!   entries out (upstream ANDed `type=A` with `type=D`, matching nothing);
//! - `field` matches any element of `data.change_data.changes`;
//! - `instance` needs `class`;
//! - a missing `status` is success (`0`): LogHarbour's client omits it.
//!
//! ```
//! use sealog_query::logharbour::{LogsQuery, Pri};
//! use sealog_query::Matcher;
//! let q = LogsQuery { app: Some("payments".into()), min_pri: Some(Pri::Warn), ..LogsQuery::default() };
//! let line = br#"{"realm":"r","seq":0,"received_at":"2026-01-01T00:00:00Z","app":"payments","type":"A","pri":"Err","when":"2026-01-01T00:00:00Z"}"#;
//! assert!(q.matches(line));
//! ```

use std::borrow::Cow;
use std::collections::HashMap;

use rayon::prelude::*;
use sealog_journal::block::DecodedBlock;
use sealog_journal::{BlockMeta, JournalError};
use serde::Deserialize;
use serde_json::value::RawValue;

use crate::{Matcher, QueryError};

/// LogHarbour's priorities, lowest first (`Debug2` = 1 … `Sec` = 8).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Pri {
    /// Finest debug.
    Debug2 = 1,
    /// Debug.
    Debug1,
    /// Coarsest debug.
    Debug0,
    /// Informational.
    Info,
    /// Warning.
    Warn,
    /// Error.
    Err,
    /// Critical.
    Crit,
    /// Security.
    Sec,
}

impl Pri {
    /// Every priority, lowest first.
    pub const ALL: [Pri; 8] = [
        Pri::Debug2,
        Pri::Debug1,
        Pri::Debug0,
        Pri::Info,
        Pri::Warn,
        Pri::Err,
        Pri::Crit,
        Pri::Sec,
    ];

    /// The name LogHarbour writes (`"Warn"`).
    pub fn as_str(self) -> &'static str {
        match self {
            Pri::Debug2 => "Debug2",
            Pri::Debug1 => "Debug1",
            Pri::Debug0 => "Debug0",
            Pri::Info => "Info",
            Pri::Warn => "Warn",
            Pri::Err => "Err",
            Pri::Crit => "Crit",
            Pri::Sec => "Sec",
        }
    }

    /// Parses a name, in any case (`"warn"`, `"Warn"`, `"WARN"`).
    pub fn parse(s: &str) -> Option<Pri> {
        Pri::ALL
            .into_iter()
            .find(|p| p.as_str().eq_ignore_ascii_case(s))
    }
}

/// LogHarbour's entry types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LhType {
    /// `C`: a data change.
    Change,
    /// `A`: an activity.
    Activity,
    /// `D`: debug.
    Debug,
    /// `U`: unknown.
    Unknown,
}

impl LhType {
    /// The letter stored in `type`.
    pub fn as_str(self) -> &'static str {
        match self {
            LhType::Change => "C",
            LhType::Activity => "A",
            LhType::Debug => "D",
            LhType::Unknown => "U",
        }
    }

    /// Parses `C`/`A`/`D`/`U`, or the names `change`, `activity`,
    /// `debug`, `unknown` in any case.
    pub fn parse(s: &str) -> Option<LhType> {
        match s.to_ascii_lowercase().as_str() {
            "c" | "change" => Some(LhType::Change),
            "a" | "activity" => Some(LhType::Activity),
            "d" | "debug" => Some(LhType::Debug),
            "u" | "unknown" => Some(LhType::Unknown),
            _ => None,
        }
    }
}

/// One stored line read as a LogHarbour entry: only the fields the query
/// functions look at, borrowed from the line where no escape forces a copy.
///
/// Read leniently, so no entry drops out of every answer for one odd
/// field: a number where text is expected is taken as its text, an array
/// or object there is ignored, and a repeated key keeps its last value (as
/// a full JSON parse would).
#[derive(Debug, Default)]
pub struct Entry<'a> {
    /// The KSUID the client gave.
    pub id: Option<Cow<'a, str>>,
    /// Application.
    pub app: Option<Cow<'a, str>>,
    /// Host the client ran on.
    pub system: Option<Cow<'a, str>>,
    /// Module.
    pub module: Option<Cow<'a, str>>,
    /// `C`, `A`, `D` or `U`.
    pub typ: Option<Cow<'a, str>>,
    /// Priority name.
    pub pri: Option<Cow<'a, str>>,
    /// Who acted.
    pub who: Option<Cow<'a, str>>,
    /// Operation.
    pub op: Option<Cow<'a, str>>,
    /// Object class.
    pub class: Option<Cow<'a, str>>,
    /// Object instance.
    pub instance: Option<Cow<'a, str>>,
    /// The client's address.
    pub remote_ip: Option<Cow<'a, str>>,
    /// Trace id.
    pub trace_id: Option<Cow<'a, str>>,
    /// `0`/`1` (or `"Success"`/`"Failure"`), kept raw.
    pub status: Option<&'a RawValue>,
    /// `data`, kept raw: parsed only when a change field is asked for.
    pub data: Option<&'a RawValue>,
}

/// A text field's value: a string (borrowed when it can be), a number or
/// boolean as its JSON text, anything else nothing.
struct Lenient<'a>(Option<Cow<'a, str>>);

impl<'de> Deserialize<'de> for Lenient<'de> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Lenient<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a JSON value")
            }
            fn visit_borrowed_str<E>(self, s: &'de str) -> Result<Lenient<'de>, E> {
                Ok(Lenient(Some(Cow::Borrowed(s))))
            }
            fn visit_str<E>(self, s: &str) -> Result<Lenient<'de>, E> {
                Ok(Lenient(Some(Cow::Owned(s.to_string()))))
            }
            fn visit_i64<E>(self, n: i64) -> Result<Lenient<'de>, E> {
                Ok(Lenient(Some(Cow::Owned(n.to_string()))))
            }
            fn visit_u64<E>(self, n: u64) -> Result<Lenient<'de>, E> {
                Ok(Lenient(Some(Cow::Owned(n.to_string()))))
            }
            fn visit_f64<E>(self, n: f64) -> Result<Lenient<'de>, E> {
                Ok(Lenient(Some(Cow::Owned(n.to_string()))))
            }
            fn visit_bool<E>(self, b: bool) -> Result<Lenient<'de>, E> {
                Ok(Lenient(Some(Cow::Borrowed(if b {
                    "true"
                } else {
                    "false"
                }))))
            }
            fn visit_unit<E>(self) -> Result<Lenient<'de>, E> {
                Ok(Lenient(None))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut a: A,
            ) -> Result<Lenient<'de>, A::Error> {
                while a.next_element::<serde::de::IgnoredAny>()?.is_some() {}
                Ok(Lenient(None))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut a: A,
            ) -> Result<Lenient<'de>, A::Error> {
                while a
                    .next_entry::<serde::de::IgnoredAny, serde::de::IgnoredAny>()?
                    .is_some()
                {}
                Ok(Lenient(None))
            }
        }
        d.deserialize_any(V)
    }
}

impl<'de> Deserialize<'de> for Entry<'de> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Entry<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut m: A,
            ) -> Result<Entry<'de>, A::Error> {
                let mut e = Entry::default();
                while let Some(k) = m.next_key::<Cow<'de, str>>()? {
                    let slot = match k.as_ref() {
                        "id" => &mut e.id,
                        "app" => &mut e.app,
                        "system" => &mut e.system,
                        "module" => &mut e.module,
                        "type" => &mut e.typ,
                        "pri" => &mut e.pri,
                        "who" => &mut e.who,
                        "op" => &mut e.op,
                        "class" => &mut e.class,
                        "instance" => &mut e.instance,
                        "remote_ip" => &mut e.remote_ip,
                        "trace_id" => &mut e.trace_id,
                        "status" => {
                            e.status = Some(m.next_value()?);
                            continue;
                        }
                        "data" => {
                            e.data = Some(m.next_value()?);
                            continue;
                        }
                        _ => {
                            m.next_value::<serde::de::IgnoredAny>()?;
                            continue;
                        }
                    };
                    *slot = m.next_value::<Lenient<'de>>()?.0;
                }
                Ok(e)
            }
        }
        d.deserialize_map(V)
    }
}

#[derive(Deserialize)]
struct Data<'a> {
    #[serde(borrow, default)]
    change_data: Option<ChangeData<'a>>,
}

#[derive(Deserialize)]
struct ChangeData<'a> {
    #[serde(borrow, default)]
    changes: Vec<ChangeField<'a>>,
}

/// One element of `changes`: its `field` (leniently), or nothing for an
/// element that is not an object.
struct ChangeField<'a>(Option<Cow<'a, str>>);

impl<'de: 'a, 'a> Deserialize<'de> for ChangeField<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> serde::de::Visitor<'de> for V<'a> {
            type Value = ChangeField<'a>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a change")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut m: A,
            ) -> Result<ChangeField<'a>, A::Error> {
                let mut field = None;
                while let Some(k) = m.next_key::<Cow<'_, str>>()? {
                    if k == "field" {
                        field = m.next_value::<Lenient<'de>>()?.0;
                    } else {
                        m.next_value::<serde::de::IgnoredAny>()?;
                    }
                }
                Ok(ChangeField(field))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut a: A,
            ) -> Result<ChangeField<'a>, A::Error> {
                while a.next_element::<serde::de::IgnoredAny>()?.is_some() {}
                Ok(ChangeField(None))
            }
            fn visit_str<E>(self, _: &str) -> Result<ChangeField<'a>, E> {
                Ok(ChangeField(None))
            }
            fn visit_i64<E>(self, _: i64) -> Result<ChangeField<'a>, E> {
                Ok(ChangeField(None))
            }
            fn visit_u64<E>(self, _: u64) -> Result<ChangeField<'a>, E> {
                Ok(ChangeField(None))
            }
            fn visit_f64<E>(self, _: f64) -> Result<ChangeField<'a>, E> {
                Ok(ChangeField(None))
            }
            fn visit_bool<E>(self, _: bool) -> Result<ChangeField<'a>, E> {
                Ok(ChangeField(None))
            }
            fn visit_unit<E>(self) -> Result<ChangeField<'a>, E> {
                Ok(ChangeField(None))
            }
        }
        d.deserialize_any(V(std::marker::PhantomData))
    }
}

impl<'a> Entry<'a> {
    /// Reads `line`; `None` unless it is a JSON object with an `app` and a
    /// known `type`.
    pub fn parse(line: &'a [u8]) -> Option<Entry<'a>> {
        let e: Entry<'a> = serde_json::from_slice(line).ok()?;
        (e.app.is_some() && e.lh_type().is_some()).then_some(e)
    }

    /// The entry's type.
    pub fn lh_type(&self) -> Option<LhType> {
        match self.typ.as_deref() {
            Some("C") => Some(LhType::Change),
            Some("A") => Some(LhType::Activity),
            Some("D") => Some(LhType::Debug),
            Some("U") => Some(LhType::Unknown),
            _ => None,
        }
    }

    /// The entry's priority (`None` when absent or not a LogHarbour name).
    pub fn priority(&self) -> Option<Pri> {
        self.pri.as_deref().and_then(Pri::parse)
    }

    /// `0` success, `1` failure; a missing status is success (the client
    /// leaves it out for success). `None` for a value that is neither.
    pub fn status_code(&self) -> Option<u8> {
        match self.status.map(RawValue::get) {
            None | Some("\"Success\"") | Some("false") => Some(0),
            Some("\"Failure\"") | Some("true") => Some(1),
            Some(n) => match n.parse::<f64>() {
                Ok(0.0) => Some(0),
                Ok(1.0) => Some(1),
                _ => None,
            },
        }
    }

    /// The fields named in `data.change_data.changes`, in order.
    pub fn change_fields(&self) -> Vec<String> {
        let Some(raw) = self.data else {
            return Vec::new();
        };
        let Ok(d) = serde_json::from_str::<Data<'_>>(raw.get()) else {
            return Vec::new();
        };
        d.change_data
            .map(|c| {
                c.changes
                    .into_iter()
                    .filter_map(|f| f.0.map(Cow::into_owned))
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// The filters of `GetLogs` (and, with `types` set to changes only,
/// `GetChanges`; with the `field` set, `getLogsForIP`'s too).
#[derive(Debug, Clone, Default)]
pub struct LogsQuery {
    /// `app` equals.
    pub app: Option<String>,
    /// Types allowed; empty = any type.
    pub types: Vec<LhType>,
    /// `module` equals.
    pub module: Option<String>,
    /// `who` equals.
    pub who: Option<String>,
    /// `class` equals.
    pub class: Option<String>,
    /// `instance` equals.
    pub instance: Option<String>,
    /// `op` equals.
    pub op: Option<String>,
    /// `remote_ip` equals.
    pub remote_ip: Option<String>,
    /// `trace_id` equals.
    pub trace_id: Option<String>,
    /// `system` equals.
    pub system: Option<String>,
    /// `status` equals (0 success, 1 failure).
    pub status: Option<u8>,
    /// Some element of `data.change_data.changes` has this `field`.
    pub field: Option<String>,
    /// Filed at or after (ns).
    pub from_ns: Option<i64>,
    /// Filed at or before (ns), as LogHarbour's `lte`.
    pub to_ns: Option<i64>,
    /// Priority at least this.
    pub min_pri: Option<Pri>,
}

impl LogsQuery {
    /// True when the entry (read from `line`) satisfies every filter.
    pub fn entry_matches(&self, e: &Entry<'_>, line: &[u8]) -> bool {
        fn eq(want: &Option<String>, got: &Option<Cow<'_, str>>) -> bool {
            match want {
                None => true,
                Some(w) => got.as_deref() == Some(w.as_str()),
            }
        }
        let Some(ty) = e.lh_type() else {
            return false;
        };
        if !self.types.is_empty() && !self.types.contains(&ty) {
            return false;
        }
        if !(eq(&self.app, &e.app)
            && eq(&self.module, &e.module)
            && eq(&self.who, &e.who)
            && eq(&self.class, &e.class)
            && eq(&self.instance, &e.instance)
            && eq(&self.op, &e.op)
            && eq(&self.remote_ip, &e.remote_ip)
            && eq(&self.trace_id, &e.trace_id)
            && eq(&self.system, &e.system))
        {
            return false;
        }
        if let Some(min) = self.min_pri {
            if e.priority().is_none_or(|p| p < min) {
                return false;
            }
        }
        if let Some(s) = self.status {
            if e.status_code() != Some(s) {
                return false;
            }
        }
        if self.from_ns.is_some() || self.to_ns.is_some() {
            // The time blocks are filed under, read the same way.
            let Some(t) = sealog_event::leaf_time(line) else {
                return false;
            };
            if self.from_ns.is_some_and(|f| t < f) || self.to_ns.is_some_and(|to| t > to) {
                return false;
            }
        }
        if let Some(f) = &self.field {
            if !e.change_fields().iter().any(|x| x == f) {
                return false;
            }
        }
        true
    }

    /// Strings that must appear verbatim in a matching line (a line that
    /// spells them with escapes is parsed anyway).
    fn verbatim(&self) -> impl Iterator<Item = &str> {
        [
            &self.app,
            &self.module,
            &self.who,
            &self.class,
            &self.instance,
            &self.op,
            &self.remote_ip,
            &self.trace_id,
            &self.system,
            &self.field,
        ]
        .into_iter()
        .flatten()
        .map(String::as_str)
        .filter(|s| !s.is_empty())
    }
}

impl Matcher for LogsQuery {
    fn block_may_match(&self, b: &BlockMeta) -> bool {
        self.from_ns.is_none_or(|f| b.max_time >= f) && self.to_ns.is_none_or(|t| b.min_time <= t)
    }

    fn matches(&self, line: &[u8]) -> bool {
        self.may_match(line) && Entry::parse(line).is_some_and(|e| self.entry_matches(&e, line))
    }
}

impl LogsQuery {
    /// False when a filter's value is missing from the line, which rules it
    /// out without parsing (a line with escapes is never ruled out here).
    pub fn may_match(&self, line: &[u8]) -> bool {
        let escaped = memchr::memchr(b'\\', line).is_some();
        escaped
            || self
                .verbatim()
                .all(|s| memchr::memmem::find(line, s.as_bytes()).is_some())
    }
}

/// The attributes `GetSet` counts (LogHarbour's list; `field` is
/// `data.change_data.changes.field`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SetAttr {
    /// `app`
    App,
    /// `type`
    Type,
    /// `op`
    Op,
    /// `instance`
    Instance,
    /// `class`
    Class,
    /// `module`
    Module,
    /// `pri`
    Pri,
    /// `status`
    Status,
    /// `remote_ip`
    RemoteIp,
    /// `system`
    System,
    /// `who`
    Who,
    /// `data.change_data.changes.field` (alias `field`)
    Field,
}

impl SetAttr {
    /// The names accepted, in LogHarbour's order.
    pub const NAMES: [&'static str; 12] = [
        "app",
        "type",
        "op",
        "instance",
        "class",
        "module",
        "pri",
        "status",
        "remote_ip",
        "system",
        "who",
        "data.change_data.changes.field",
    ];

    /// Parses an attribute name (`field` is short for the change field).
    ///
    /// # Errors
    /// LogHarbour's message: `attribute 'x' is not allowed for set retrieval`.
    pub fn parse(s: &str) -> Result<SetAttr, String> {
        Ok(match s {
            "app" => SetAttr::App,
            "type" => SetAttr::Type,
            "op" => SetAttr::Op,
            "instance" => SetAttr::Instance,
            "class" => SetAttr::Class,
            "module" => SetAttr::Module,
            "pri" => SetAttr::Pri,
            "status" => SetAttr::Status,
            "remote_ip" => SetAttr::RemoteIp,
            "system" => SetAttr::System,
            "who" => SetAttr::Who,
            "field" | "data.change_data.changes.field" => SetAttr::Field,
            other => {
                return Err(format!(
                    "attribute '{other}' is not allowed for set retrieval"
                ))
            }
        })
    }

    /// Calls `f` with each value the entry has for this attribute (none,
    /// one, or for `field` one per distinct changed field).
    pub fn values(self, e: &Entry<'_>, f: &mut dyn FnMut(&str)) {
        let one = |v: &Option<Cow<'_, str>>, f: &mut dyn FnMut(&str)| {
            if let Some(v) = v.as_deref() {
                f(v);
            }
        };
        match self {
            SetAttr::App => one(&e.app, f),
            SetAttr::Type => one(&e.typ, f),
            SetAttr::Op => one(&e.op, f),
            SetAttr::Instance => one(&e.instance, f),
            SetAttr::Class => one(&e.class, f),
            SetAttr::Module => one(&e.module, f),
            SetAttr::Pri => one(&e.pri, f),
            SetAttr::Status => {
                if let Some(s) = e.status_code() {
                    f(if s == 0 { "0" } else { "1" });
                }
            }
            SetAttr::RemoteIp => one(&e.remote_ip, f),
            SetAttr::System => one(&e.system, f),
            SetAttr::Who => one(&e.who, f),
            SetAttr::Field => {
                let mut seen: Vec<String> = e.change_fields();
                seen.sort();
                seen.dedup();
                for s in &seen {
                    f(s);
                }
            }
        }
    }
}

/// Counts per value of `attr` over the entries `q` matches in seqs
/// `[0, size)`, reading blocks in parallel. `None` when the table would
/// take more than about `max_bytes` (each value counted with its length
/// and 64 bytes of overhead).
///
/// # Errors
/// Whatever `read_block` fails with.
///
/// With a `store`, a block every entry of which matches (see
/// [`LogsQuery::covers_block`]) is answered from its summary, made on first
/// use.
pub fn count_set(
    blocks: &[BlockMeta],
    size: u64,
    read_block: &(dyn Fn(usize) -> Result<DecodedBlock, JournalError> + Sync),
    q: &LogsQuery,
    attr: SetAttr,
    max_bytes: u64,
    store: Option<&dyn FacetStore>,
) -> Result<Option<HashMap<String, u64>>, QueryError> {
    let candidates: Vec<usize> = (0..blocks.len())
        .filter(|&i| blocks[i].first_seq < size && q.block_may_match(&blocks[i]))
        .collect();
    let summarised = |f: &BlockFacets| {
        f.get(attr)
            .map(|v| v.iter().map(|(k, c)| (k.to_string(), *c)).collect())
    };
    let count_block = |i: usize| -> Result<HashMap<String, u64>, JournalError> {
        let m = &blocks[i];
        let whole = m.first_seq + u64::from(m.count) <= size;
        let store = store.filter(|_| whole && q.covers_block(m));
        if let Some(found) = store.and_then(|s| s.get(m)) {
            if let Some(c) = summarised(&found) {
                return Ok(c);
            }
        }
        let b = read_block(i)?;
        if let Some(s) = store {
            if s.get(m).is_none() {
                let f = s.put(m, BlockFacets::of(&b, m.count as usize));
                if let Some(c) = summarised(&f) {
                    return Ok(c);
                }
            }
        }
        let mut counts: HashMap<String, u64> = HashMap::new();
        let n = (u64::from(m.count)).min(size - m.first_seq) as usize;
        for k in 0..n {
            let line = b.line(k);
            // Empty: a record retention removed.
            if line.is_empty() || !q.may_match(line) {
                continue;
            }
            if let Some(e) = Entry::parse(line).filter(|e| q.entry_matches(e, line)) {
                attr.values(&e, &mut |v| {
                    if let Some(c) = counts.get_mut(v) {
                        *c += 1;
                    } else {
                        counts.insert(v.to_string(), 1);
                    }
                });
            }
        }
        Ok(counts)
    };
    // A few blocks at a time, merged as they come, so the memory held is
    // the table plus a few blocks' worth, and a table over the limit stops
    // the count early.
    let mut total: HashMap<String, u64> = HashMap::new();
    let mut bytes = 0u64;
    for step in candidates.chunks(16) {
        let parts: Vec<Result<HashMap<String, u64>, JournalError>> =
            step.par_iter().map(|&i| count_block(i)).collect();
        for p in parts {
            for (k, v) in p? {
                match total.get_mut(&k) {
                    Some(n) => *n += v,
                    None => {
                        bytes += k.len() as u64 + 64;
                        if bytes > max_bytes {
                            return Ok(None);
                        }
                        total.insert(k, v);
                    }
                }
            }
        }
    }
    Ok(Some(total))
}

/// The attributes a block summary counts: those with few values per block.
const FACET_ATTRS: [SetAttr; 8] = [
    SetAttr::App,
    SetAttr::Type,
    SetAttr::Op,
    SetAttr::Class,
    SetAttr::Module,
    SetAttr::Pri,
    SetAttr::Status,
    SetAttr::System,
];
/// More distinct values than this in one block and the summary does not
/// keep that attribute (the block is read for it instead).
const FACET_MAX_VALUES: usize = 64;

/// Values of one attribute with their counts, sorted by value.
type ValueCounts = Vec<(Box<str>, u64)>;

/// A block's summary for `GetSet`: per low-cardinality attribute, how many
/// of its LogHarbour entries have each value. Derived from the block alone,
/// so it holds for as long as the block does (retention rewrites a block,
/// which changes its checksum and so its key in a [`FacetStore`]).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct BlockFacets {
    /// By position in `FACET_ATTRS`; `None` when the block has too many values.
    counts: Vec<Option<ValueCounts>>,
}

impl BlockFacets {
    /// Counts over the first `n` records of `b`, one parse per entry.
    pub fn of(b: &DecodedBlock, n: usize) -> Self {
        let mut maps: Vec<Option<HashMap<String, u64>>> =
            vec![Some(HashMap::new()); FACET_ATTRS.len()];
        for k in 0..n.min(b.len()) {
            let line = b.line(k);
            let Some(e) = (!line.is_empty())
                .then(|| Entry::parse(line))
                .flatten()
                .filter(|e| e.lh_type().is_some())
            else {
                continue;
            };
            for (slot, attr) in maps.iter_mut().zip(FACET_ATTRS) {
                let Some(m) = slot else { continue };
                attr.values(&e, &mut |v| match m.get_mut(v) {
                    Some(c) => *c += 1,
                    None => {
                        m.insert(v.to_string(), 1);
                    }
                });
                if m.len() > FACET_MAX_VALUES {
                    *slot = None;
                }
            }
        }
        Self {
            counts: maps
                .into_iter()
                .map(|m| {
                    m.map(|m| {
                        let mut v: Vec<(Box<str>, u64)> =
                            m.into_iter().map(|(k, c)| (k.into(), c)).collect();
                        v.sort();
                        v
                    })
                })
                .collect(),
        }
    }

    /// The counts for `attr`, when this summary keeps it.
    pub fn get(&self, attr: SetAttr) -> Option<&[(Box<str>, u64)]> {
        let i = FACET_ATTRS.iter().position(|a| *a == attr)?;
        self.counts.get(i)?.as_deref()
    }

    /// Values kept, for memory accounting.
    pub fn values(&self) -> usize {
        self.counts.iter().flatten().map(Vec::len).sum()
    }
}

/// Where block summaries are kept between queries (the server keeps one
/// per realm in memory).
pub trait FacetStore: Sync {
    /// The summary of block `b`, if known.
    fn get(&self, b: &BlockMeta) -> Option<std::sync::Arc<BlockFacets>>;
    /// Keeps the summary of block `b`.
    fn put(&self, b: &BlockMeta, f: BlockFacets) -> std::sync::Arc<BlockFacets>;
}

impl LogsQuery {
    /// True when every LogHarbour entry of block `b` matches: no filter but
    /// a time range that holds the whole block. Its summary then answers.
    pub fn covers_block(&self, b: &BlockMeta) -> bool {
        self.app.is_none()
            && self.types.is_empty()
            && self.module.is_none()
            && self.who.is_none()
            && self.class.is_none()
            && self.instance.is_none()
            && self.op.is_none()
            && self.remote_ip.is_none()
            && self.trace_id.is_none()
            && self.system.is_none()
            && self.status.is_none()
            && self.field.is_none()
            && self.min_pri.is_none()
            && self.from_ns.is_none_or(|f| b.min_time >= f)
            && self.to_ns.is_none_or(|t| b.max_time <= t)
    }
}

/// `GetUnusualIP` with the wiki's semantics: of the entries `counts`
/// covers (counts per `remote_ip`), the addresses seen at most
/// `max(1, ⌊total · pct / 100⌋)` times, where `total` counts every entry
/// with an address; `LOCAL` (internal jobs) is never unusual. Sorted by
/// count, then address.
pub fn unusual_ips(counts: &HashMap<String, u64>, pct: f64) -> Vec<(String, u64)> {
    let total: u64 = counts.values().sum();
    let threshold = ((total as f64 * pct / 100.0).floor() as u64).max(1);
    let mut out: Vec<(String, u64)> = counts
        .iter()
        .filter(|(ip, n)| ip.as_str() != "LOCAL" && **n <= threshold)
        .map(|(ip, n)| (ip.clone(), *n))
        .collect();
    out.sort_by(|a, b| a.1.cmp(&b.1).then_with(|| a.0.cmp(&b.0)));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const CHANGE: &[u8] = br#"{"realm":"r","seq":7,"received_at":"2026-01-01T00:00:00Z","id":"k1","app":"crm","system":"h1","module":"m","type":"C","pri":"Info","when":"2026-01-02T00:00:00Z","who":"ann","op":"update","class":"user","instance":"u1","data":{"change_data":{"entity":"user","op":"update","changes":[{"field":"email","old_value":"a","new_value":"b"},{"field":"name","old_value":"x","new_value":"y"}]}}}"#;

    #[test]
    fn entries_parse_and_filters_apply() {
        let e = Entry::parse(CHANGE).expect("entry");
        assert_eq!(e.lh_type(), Some(LhType::Change));
        assert_eq!(e.change_fields(), vec!["email", "name"]);
        assert_eq!(e.status_code(), Some(0), "a missing status is success");
        let q = |f: &dyn Fn(&mut LogsQuery)| {
            let mut q = LogsQuery::default();
            f(&mut q);
            q.matches(CHANGE)
        };
        assert!(q(&|q| q.field = Some("email".into())));
        assert!(!q(&|q| q.field = Some("phone".into())));
        assert!(q(&|q| q.min_pri = Some(Pri::Info)));
        assert!(!q(&|q| q.min_pri = Some(Pri::Warn)));
        assert!(q(&|q| q.types = vec![LhType::Change]));
        assert!(!q(&|q| q.types = vec![LhType::Activity, LhType::Debug]));
        assert!(q(
            &|q| q.to_ns = sealog_event::parse_rfc3339("2026-01-02T00:00:00Z")
        ));
        assert!(!q(
            &|q| q.from_ns = sealog_event::parse_rfc3339("2026-01-02T00:00:01Z")
        ));
        assert!(!q(&|q| q.app = Some("cr".into())));
        assert!(Entry::parse(br#"{"app":"x","type":"Q"}"#).is_none());
        assert!(Entry::parse(b"not json").is_none());
    }

    #[test]
    fn sec_is_a_priority_and_names_parse_in_any_case() {
        assert_eq!(Pri::parse("sec"), Some(Pri::Sec));
        assert_eq!(Pri::parse("DEBUG2"), Some(Pri::Debug2));
        assert!(Pri::Sec > Pri::Crit && Pri::Debug2 < Pri::Debug1);
        assert_eq!(Pri::parse("Secure"), None);
    }

    #[test]
    fn unusual_threshold_is_clamped_to_one_and_local_is_excluded() {
        let c: HashMap<String, u64> = [("10.0.0.1", 50u64), ("LOCAL", 1), ("10.0.0.2", 1)]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect();
        // total 52, 1% → 0.52 → clamped to 1.
        assert_eq!(unusual_ips(&c, 1.0), vec![("10.0.0.2".to_string(), 1)]);
        assert_eq!(SetAttr::parse("field"), Ok(SetAttr::Field));
        assert!(SetAttr::parse("msg")
            .expect_err("not allowed")
            .contains("'msg' is not allowed"));
    }
}

/// Which LogHarbour entries a retention run may remove: LogHarbour's
/// cleanup filters (`--app`, `--type`, `--priority`), each an exact match
/// as its `term` queries were. No filter selects every entry (the age limit
/// is the journal's cutoff).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RetentionFilter {
    /// `app` equals this.
    pub app: Option<String>,
    /// `type` is this (A, C or D; LogHarbour's long names are accepted).
    pub typ: Option<LhType>,
    /// `pri` is exactly this.
    pub pri: Option<Pri>,
}

impl RetentionFilter {
    /// True when `line` (a leaf line) is selected.
    pub fn matches(&self, line: &[u8]) -> bool {
        if self.app.is_none() && self.typ.is_none() && self.pri.is_none() {
            return true;
        }
        if let Some(app) = &self.app {
            // Cheap rejection before a parse: the value appears verbatim
            // unless it was written with escapes.
            if !app.contains(['\\', '"']) && memchr::memmem::find(line, app.as_bytes()).is_none() {
                return false;
            }
        }
        let Some(e) = Entry::parse(line) else {
            return false;
        };
        self.app
            .as_deref()
            .is_none_or(|a| e.app.as_deref() == Some(a))
            && self.typ.is_none_or(|t| e.lh_type() == Some(t))
            && self.pri.is_none_or(|p| e.priority() == Some(p))
    }

    /// The filters as `app=… type=… priority=…` (empty when none).
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        if let Some(a) = &self.app {
            // Quoted when it could read as more than one word.
            if a.contains(|c: char| c.is_whitespace() || c == '=' || c == '"') {
                parts.push(format!("app={a:?}"));
            } else {
                parts.push(format!("app={a}"));
            }
        }
        if let Some(t) = self.typ {
            parts.push(format!("type={}", t.as_str()));
        }
        if let Some(p) = self.pri {
            parts.push(format!("priority={}", p.as_str()));
        }
        parts.join(" ")
    }
}
