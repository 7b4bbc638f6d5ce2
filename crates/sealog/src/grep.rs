//! `sealog grep`: lhgrep's spec (LogHarbour §2.12) over a realm (through
//! the server or in the data directory) or an NDJSON file.
//!
//! The flags become conditions ANDed with the query; the query's
//! prefilter (plain equalities, the longest `~` text, a time range) goes
//! into the journal scan or the server's query, and every line is then
//! checked against the whole query, so a server never needs to understand
//! the language.
//!
//! Colour is four ANSI escapes written here: not worth a dependency.

use std::io::{BufRead, BufWriter, IsTerminal, Write};
use std::path::Path;

use sealog_event::RealmName;
use sealog_query::grep::{Expr, GrepMatcher, Op};
use serde_json::Value;

use crate::backend::{Backend, GrepOptions, QuerySpec};
use crate::Failure;

/// Output form.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Output {
    /// `time LEVEL app module: message`, or the chosen fields.
    Text,
    /// The stored lines (or an object of the chosen fields).
    Json,
}

/// When to colour text output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Color {
    /// On a terminal.
    Auto,
    /// Always.
    Always,
    /// Never.
    Never,
}

/// The flag conditions and queries.
#[derive(Debug, Default)]
pub struct Terms {
    /// `--app`.
    pub app: Option<String>,
    /// `--level`.
    pub level: Option<String>,
    /// `--from`.
    pub from: Option<String>,
    /// `--to`.
    pub to: Option<String>,
    /// `--message`.
    pub message: Option<String>,
    /// `--module`.
    pub module: Option<String>,
    /// `--thread`.
    pub thread: Option<String>,
    /// `--query` and the positional query.
    pub queries: Vec<String>,
}

/// How to print.
#[derive(Debug)]
pub struct Show {
    /// Text or JSON.
    pub output: Output,
    /// Colour.
    pub color: Color,
    /// Only these fields.
    pub fields: Vec<String>,
    /// Only the count.
    pub count: bool,
}

fn cond(field: &str, op: Op, value: &str) -> Expr {
    Expr::Cond {
        path: vec![field.to_string()],
        op,
        value: value.to_string(),
    }
}

/// The whole query: the flags' conditions and every query, ANDed.
///
/// # Errors
/// A time that is not RFC 3339; a query that does not parse (exit 2).
pub fn expr(t: &Terms) -> Result<Expr, Failure> {
    let mut e = Expr::True;
    let time = |name: &str, v: &str| -> Result<(), Failure> {
        sealog_event::parse_rfc3339(v).map(|_| ()).ok_or_else(|| {
            format!("--{name} {v:?} is not RFC 3339 (e.g. 2026-11-22T06:00:00Z)").into()
        })
    };
    if let Some(v) = &t.from {
        time("from", v)?;
        e = e.and(cond("timestamp", Op::Ge, v));
    }
    if let Some(v) = &t.to {
        time("to", v)?;
        e = e.and(cond("timestamp", Op::Le, v));
    }
    if let Some(v) = &t.level {
        if sealog_event::severity_of(v).is_none() {
            return Err(format!(
                "--level {v:?} is not a severity (debug, info, notice, warn, error, crit, alert, emerg)"
            )
            .into());
        }
        e = e.and(cond("level", Op::Eq, v));
    }
    for (f, v) in [
        ("app", &t.app),
        ("module", &t.module),
        ("thread", &t.thread),
    ] {
        if let Some(v) = v {
            e = e.and(cond(f, Op::Eq, v));
        }
    }
    if let Some(v) = &t.message {
        e = e.and(cond("message", Op::Contains, v));
    }
    for q in &t.queries {
        e = e.and(Expr::parse(q)?);
    }
    Ok(e)
}

/// Which matches, in which order, found how.
#[derive(Debug, Clone, Copy)]
pub struct Scope {
    /// `--limit`.
    pub limit: Option<u64>,
    /// `--newest`.
    pub newest: bool,
    /// `--no-index`.
    pub no_index: bool,
}

/// Runs `sealog grep`.
///
/// # Errors
/// Usage errors (exit 2); read, journal or API errors.
pub fn run(
    backend: &dyn Backend,
    realm: Option<&RealmName>,
    file: Option<&Path>,
    terms: &Terms,
    show: &Show,
    scope: Scope,
) -> Result<(), Failure> {
    let Scope {
        limit,
        newest,
        no_index,
    } = scope;
    let matcher = GrepMatcher::new(expr(terms)?);
    let stdout = std::io::stdout();
    let color = match show.color {
        Color::Always => true,
        Color::Never => false,
        Color::Auto => stdout.is_terminal() && std::env::var_os("NO_COLOR").is_none(),
    };
    let mut out = BufWriter::with_capacity(1 << 16, stdout.lock());
    let mut printer = Printer {
        show,
        color,
        count: 0,
    };
    match (realm, file) {
        (Some(realm), _) => {
            let pre = matcher.prefilter();
            let when = |ns: Option<i64>| ns.map(sealog_event::format_rfc3339_nanos);
            // The server's query gets the plain equalities and the time
            // range; the text is checked here (a stored line may spell it
            // with escapes).
            let spec = QuerySpec::new(
                when(pre.from_ns),
                when(pre.to_ns),
                None,
                pre.wheres.clone(),
                newest,
            )?;
            let opts = GrepOptions {
                limit,
                count_only: show.count,
                index: !no_index,
            };
            printer.count = backend.grep(realm, &spec, &matcher, opts, &mut |line| {
                printer.print(&mut out, line)
            })?;
        }
        (None, Some(path)) => {
            if newest {
                return Err("--newest needs --realm (a file is read in order)".into());
            }
            let reader: Box<dyn BufRead> = if path == Path::new("-") {
                Box::new(std::io::stdin().lock())
            } else {
                let f = std::fs::File::open(path)
                    .map_err(|e| format!("open {}: {e}", path.display()))?;
                Box::new(std::io::BufReader::with_capacity(1 << 20, f))
            };
            grep_lines(reader, &matcher, limit, &mut |line| {
                printer.print(&mut out, line)
            })?;
        }
        (None, None) => return Err("give --realm or -f FILE".into()),
    }
    if show.count {
        writeln!(out, "{}", printer.count)?;
    }
    out.flush()?;
    Ok(())
}

/// Greps NDJSON lines from `r`: blank lines are skipped, a line that is not
/// JSON never matches.
fn grep_lines(
    mut r: Box<dyn BufRead>,
    m: &GrepMatcher,
    limit: Option<u64>,
    emit: &mut dyn FnMut(&[u8]) -> std::io::Result<()>,
) -> Result<(), Failure> {
    use sealog_query::Matcher;
    let mut line = Vec::new();
    let mut n = 0u64;
    while limit.is_none_or(|l| n < l) {
        line.clear();
        if r.read_until(b'\n', &mut line)? == 0 {
            break;
        }
        let l = line.strip_suffix(b"\n").unwrap_or(&line);
        let l = l.strip_suffix(b"\r").unwrap_or(l);
        if !l.iter().all(u8::is_ascii_whitespace) && m.matches(l) {
            emit(l)?;
            n += 1;
        }
    }
    Ok(())
}

/// Text with control characters (ESC, CR, LF, C1 …) written as `\u{..}`
/// escapes: a record must not move the operator's cursor or forge lines.
fn safe(s: &str) -> std::borrow::Cow<'_, str> {
    if !s.chars().any(char::is_control) {
        return s.into();
    }
    s.chars()
        .map(|c| {
            if c.is_control() {
                format!("\\u{{{:x}}}", u32::from(c))
            } else {
                c.to_string()
            }
        })
        .collect::<String>()
        .into()
}

struct Printer<'a> {
    show: &'a Show,
    color: bool,
    count: u64,
}

const RED: &str = "\x1b[31m";
const YELLOW: &str = "\x1b[33m";
const DIM: &str = "\x1b[2m";
const RESET: &str = "\x1b[0m";

impl Printer<'_> {
    fn print(&mut self, out: &mut dyn Write, line: &[u8]) -> std::io::Result<()> {
        self.count += 1;
        if self.show.count {
            return Ok(());
        }
        if self.show.output == Output::Json && self.show.fields.is_empty() {
            out.write_all(line)?;
            return out.write_all(b"\n");
        }
        let Ok(v) = serde_json::from_slice::<Value>(line) else {
            out.write_all(line)?;
            return out.write_all(b"\n");
        };
        if !self.show.fields.is_empty() {
            let get = |f: &str| {
                let mut cur = &v;
                for k in f.split('.') {
                    cur = cur.get(k)?;
                }
                Some(cur.clone())
            };
            if self.show.output == Output::Json {
                let mut o = serde_json::Map::new();
                for f in &self.show.fields {
                    o.insert(f.clone(), get(f).unwrap_or(Value::Null));
                }
                serde_json::to_writer(&mut *out, &Value::Object(o))?;
            } else {
                let parts: Vec<String> = self
                    .show
                    .fields
                    .iter()
                    .map(|f| match get(f) {
                        Some(Value::String(s)) => safe(&s).into_owned(),
                        Some(other) => other.to_string(),
                        None => "-".to_string(),
                    })
                    .collect();
                out.write_all(parts.join(" ").as_bytes())?;
            }
            return out.write_all(b"\n");
        }
        self.text(out, &v, line)
    }

    /// `time LEVEL app module: message` when the record has a message,
    /// else the stored line.
    fn text(&self, out: &mut dyn Write, v: &Value, line: &[u8]) -> std::io::Result<()> {
        let s = |k: &str| v.get(k).and_then(Value::as_str);
        let Some(msg) = s("message").or(s("msg")) else {
            out.write_all(line)?;
            return out.write_all(b"\n");
        };
        let time = ["time", "when", "timestamp", "@timestamp", "received_at"]
            .iter()
            .find_map(|k| s(k))
            .unwrap_or("-");
        let level = ["pri", "level", "severity"]
            .iter()
            .find_map(|k| s(k))
            .unwrap_or("-");
        let gravity = sealog_event::severity_of(level);
        let (on, off) = match (self.color, gravity) {
            (true, Some(0..=3)) => (RED, RESET),
            (true, Some(4)) => (YELLOW, RESET),
            (true, Some(7)) => (DIM, RESET),
            _ => ("", ""),
        };
        let (dim, undim) = if self.color { (DIM, RESET) } else { ("", "") };
        let app = s("app").unwrap_or("-");
        let module = s("module").unwrap_or("-");
        let (time, level, app, module, msg) =
            (safe(time), safe(level), safe(app), safe(module), safe(msg));
        writeln!(
            out,
            "{dim}{time}{undim} {on}{level:<6}{off} {app} {module}: {msg}"
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_escaped() {
        assert_eq!(safe("a\x1b[2Jb\nc\r"), "a\\u{1b}[2Jb\\u{a}c\\u{d}");
        assert_eq!(safe("plain é"), "plain é");
    }

    #[test]
    fn flags_become_conditions() {
        let t = Terms {
            app: Some("shop".into()),
            level: Some("error".into()),
            message: Some("timeout".into()),
            queries: vec!["module = db".into()],
            ..Terms::default()
        };
        let e = expr(&t).expect("ok");
        assert!(e.matches(br#"{"app":"shop","pri":"Err","module":"db","msg":"a timeout"}"#));
        assert!(!e.matches(br#"{"app":"shop","pri":"Warn","module":"db","msg":"a timeout"}"#));
        assert!(expr(&Terms {
            from: Some("yesterday".into()),
            ..Terms::default()
        })
        .is_err());
        assert!(expr(&Terms {
            level: Some("loud".into()),
            ..Terms::default()
        })
        .is_err());
    }
}
