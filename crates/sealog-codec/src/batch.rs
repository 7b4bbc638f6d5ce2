//! The one batch parser every ingest path uses: the CLI, `POST /v1/ingest`,
//! `/log-events` (and, per message, the sidecar and syslog listeners go
//! through the same event limits). A batch is all or nothing: any bad line
//! refuses the whole batch, naming up to `max_listed` bad lines in order.
//!
//! - [`Format::Ndjson`]: one JSON object per line, kept byte for byte
//!   (surrounding whitespace trimmed; blank lines skipped). Lines are
//!   numbered from 1.
//! - [`Format::JsonArray`]: a JSON array of objects; each element is
//!   compacted (whitespace outside strings removed, so a pretty-printed
//!   element becomes one leaf line). Elements are numbered from 0.
//! - [`Format::LogSpec`]: logshuttle's fluentd/Kubernetes `LogSpec`
//!   objects, one per line, each rewritten as the event
//!   [`crate::logshuttle::fluentd`] makes of it.
//!
//! Large NDJSON bodies are validated in parallel over ~1 MiB chunks.

use std::ops::Range;

use rayon::prelude::*;

/// How a batch body is laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Newline-delimited JSON objects.
    Ndjson,
    /// One JSON array of objects.
    JsonArray,
    /// logshuttle `LogSpec` objects, one per line.
    LogSpec,
    /// AWS VPC flow-log lines (version 2), each a record of kind `flow`
    /// ([`crate::vpcflow`]); the header and `NODATA`/`SKIPDATA` lines are
    /// skipped and counted in [`Batch::skipped`].
    VpcFlow,
}

/// One refused line or element.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct BadLine {
    /// 1-based line number, or 0-based array index.
    pub line: usize,
    /// Why it was refused.
    pub reason: String,
}

/// Why a batch was refused; nothing in it may be committed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BatchError {
    /// Some lines are bad.
    #[error("{count} invalid line(s); nothing was committed")]
    BadLines {
        /// How many lines are bad.
        count: usize,
        /// The first of them, in order.
        lines: Vec<BadLine>,
    },
    /// The body holds no events at all.
    #[error("body holds no events")]
    Empty,
    /// The body is not of its format at all (e.g. not a JSON array).
    #[error("{0}")]
    Malformed(String),
}

/// Events as ranges into a buffer, each with its own time.
pub type EventRanges = Vec<(Range<usize>, Option<i64>)>;

/// Parsed events: their bytes and, per event, its range and its own time.
#[derive(Debug, Default)]
pub struct Batch {
    /// The bytes the events live in.
    pub buf: Vec<u8>,
    /// Each event's range in `buf` and its own time.
    pub events: EventRanges,
    /// Lines the format skips by design, not errors (a VPC flow-log
    /// header, `NODATA` and `SKIPDATA` lines).
    pub skipped: u64,
}

/// Parses and validates a whole body. Events longer than `max_line` bytes
/// (never more than [`sealog_event::MAX_EVENT_BYTES`]) are refused.
///
/// # Errors
/// [`BatchError`]; nothing of a refused batch is kept.
pub fn parse(
    body: Vec<u8>,
    format: Format,
    max_line: usize,
    max_listed: usize,
) -> Result<Batch, BatchError> {
    let max_line = max_line.min(sealog_event::MAX_EVENT_BYTES);
    let batch = match format {
        Format::Ndjson => ndjson(body, max_line, max_listed)?,
        Format::JsonArray => array(&body, max_line, max_listed)?,
        Format::LogSpec => logspec(&body, max_line, max_listed)?,
        Format::VpcFlow => vpcflow(&body, max_line, max_listed)?,
    };
    if batch.events.is_empty() {
        return Err(BatchError::Empty);
    }
    Ok(batch)
}

fn too_long(what: &str, len: usize, max: usize) -> String {
    format!("{what} is {len} bytes, over the limit of {max}")
}

/// Collects bad lines: the count, and the first `max` of them.
struct Bad {
    count: usize,
    lines: Vec<BadLine>,
    max: usize,
}

impl Bad {
    fn new(max: usize) -> Self {
        Self {
            count: 0,
            lines: Vec::new(),
            max,
        }
    }
    fn push(&mut self, line: usize, reason: String) {
        self.count += 1;
        if self.lines.len() < self.max {
            self.lines.push(BadLine { line, reason });
        }
    }
    fn check(self) -> Result<(), BatchError> {
        if self.count == 0 {
            return Ok(());
        }
        Err(BatchError::BadLines {
            count: self.count,
            lines: self.lines,
        })
    }
}

fn trim(body: &[u8], mut r: Range<usize>) -> Range<usize> {
    while r.start < r.end && body[r.start].is_ascii_whitespace() {
        r.start += 1;
    }
    while r.end > r.start && body[r.end - 1].is_ascii_whitespace() {
        r.end -= 1;
    }
    r
}

fn ndjson(body: Vec<u8>, max_line: usize, max_listed: usize) -> Result<Batch, BatchError> {
    let events = ndjson_events(&body, max_line, max_listed)?;
    Ok(Batch {
        buf: body,
        events,
        skipped: 0,
    })
}

/// The NDJSON events of `body` as ranges into it with their own times,
/// for callers that keep the bytes themselves (the CLI reads a file once
/// and commits straight from it). No emptiness check.
///
/// # Errors
/// [`BatchError::BadLines`].
pub fn ndjson_events(
    body: &[u8],
    max_line: usize,
    max_listed: usize,
) -> Result<EventRanges, BatchError> {
    let max_line = max_line.min(sealog_event::MAX_EVENT_BYTES);
    // Cut at newlines into chunks of about 1 MiB, validated in parallel.
    let mut chunks = Vec::new();
    let mut start = 0;
    while start < body.len() {
        let want = (start + (1 << 20)).min(body.len());
        let end = match memchr::memchr(b'\n', &body[want..]) {
            Some(at) if want < body.len() => want + at + 1,
            _ => body.len(),
        };
        chunks.push(start..end);
        start = end;
    }
    struct Part {
        lines: usize,
        events: Vec<(Range<usize>, Option<i64>)>,
        bad: Bad,
    }
    let run = |chunk: &Range<usize>| {
        let mut p = Part {
            lines: 0,
            events: Vec::new(),
            bad: Bad::new(max_listed),
        };
        let mut at = chunk.start;
        for line in body[chunk.clone()].split(|b| *b == b'\n') {
            p.lines += 1;
            let range = trim(body, at..at + line.len());
            at += line.len() + 1;
            if range.is_empty() {
                continue;
            }
            let bytes = &body[range.clone()];
            if bytes.len() > max_line {
                p.bad.push(p.lines, too_long("line", bytes.len(), max_line));
                continue;
            }
            match sealog_event::validate(bytes) {
                Ok(info) => p.events.push((range, info.time_ns)),
                Err(e) => p.bad.push(p.lines, e.to_string()),
            }
        }
        // A chunk ending in a newline did not start another line.
        if body[..chunk.end].last() == Some(&b'\n') {
            p.lines -= 1;
        }
        p
    };
    let parts: Vec<Part> = if chunks.len() > 1 {
        chunks.par_iter().map(run).collect()
    } else {
        chunks.iter().map(run).collect()
    };
    let mut bad = Bad::new(max_listed);
    let mut before = 0;
    for p in &parts {
        bad.count += p.bad.count - p.bad.lines.len();
        for b in &p.bad.lines {
            bad.push(before + b.line, b.reason.clone());
        }
        before += p.lines;
    }
    bad.check()?;
    let mut events = Vec::with_capacity(parts.iter().map(|p| p.events.len()).sum());
    for p in parts {
        events.extend(p.events);
    }
    Ok(events)
}

fn array(body: &[u8], max_line: usize, max_listed: usize) -> Result<Batch, BatchError> {
    let items: Vec<&serde_json::value::RawValue> = serde_json::from_slice(body)
        .map_err(|e| BatchError::Malformed(format!("body is not a JSON array of objects: {e}")))?;
    let mut batch = Batch::default();
    let mut bad = Bad::new(max_listed);
    for (i, item) in items.iter().enumerate() {
        let at = batch.buf.len();
        sealog_event::compact_json(item.get().as_bytes(), &mut batch.buf);
        let len = batch.buf.len() - at;
        let res = if len > max_line {
            Err(too_long("element", len, max_line))
        } else {
            sealog_event::validate(&batch.buf[at..]).map_err(|e| e.to_string())
        };
        match res {
            Ok(info) => batch.events.push((at..batch.buf.len(), info.time_ns)),
            Err(reason) => {
                batch.buf.truncate(at);
                bad.push(i, reason);
            }
        }
    }
    bad.check()?;
    Ok(batch)
}

fn logspec(body: &[u8], max_line: usize, max_listed: usize) -> Result<Batch, BatchError> {
    let mut batch = Batch::default();
    let mut bad = Bad::new(max_listed);
    for (n, line) in body.split(|b| *b == b'\n').enumerate() {
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        match crate::logshuttle::fluentd(line) {
            Ok(_) if line.len() > max_line => {
                bad.push(n + 1, too_long("line", line.len(), max_line))
            }
            Ok((ev, t)) if ev.len() <= max_line => {
                let at = batch.buf.len();
                batch.buf.extend_from_slice(&ev);
                batch.events.push((at..batch.buf.len(), t));
            }
            Ok((ev, _)) => bad.push(n + 1, too_long("event", ev.len(), max_line)),
            Err(e) => bad.push(n + 1, e.to_string()),
        }
    }
    bad.check()?;
    Ok(batch)
}

/// Flow-log lines, numbered from 1; a batch of only skipped lines is
/// empty, and refused as such.
fn vpcflow(body: &[u8], max_line: usize, max_listed: usize) -> Result<Batch, BatchError> {
    let mut batch = Batch::default();
    let mut bad = Bad::new(max_listed);
    for (n, line) in body.split(|b| *b == b'\n').enumerate() {
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        if line.len() > max_line {
            bad.push(n + 1, too_long("line", line.len(), max_line));
            continue;
        }
        let Ok(text) = std::str::from_utf8(line) else {
            bad.push(n + 1, "line is not UTF-8".into());
            continue;
        };
        match crate::vpcflow::parse_line(text) {
            Ok(crate::vpcflow::Line::Flow(ev, t)) => {
                let at = batch.buf.len();
                batch.buf.extend_from_slice(&ev);
                batch.events.push((at..batch.buf.len(), Some(t)));
            }
            Ok(crate::vpcflow::Line::Skip(_)) => batch.skipped += 1,
            Err(e) => bad.push(n + 1, e),
        }
    }
    bad.check()?;
    Ok(batch)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vpcflow_skips_counts_and_names_bad_lines() {
        let body = b"version account-id interface-id srcaddr dstaddr srcport dstport protocol packets bytes start end action log-status\n\
2 1 eni-1 10.0.0.1 10.0.0.2 443 5000 6 1 60 1600000000 1600000060 ACCEPT OK\n\
2 1 eni-1 - - - - - - - 1600000000 1600000060 - NODATA\n";
        let b = parse(body.to_vec(), Format::VpcFlow, 4096, 10).expect("batch");
        assert_eq!((b.events.len(), b.skipped), (1, 2));
        let bad = b"2 1 eni-1 10.0.0.1 10.0.0.2 443 5000 6 1 60 1600000000 1600000060 ACCEPT OK\n2 1 eni\n2 1 eni-1 a b x 1 6 1 1 1 1 ACCEPT OK\n";
        match parse(bad.to_vec(), Format::VpcFlow, 4096, 10) {
            Err(BatchError::BadLines { count, lines }) => {
                assert_eq!(count, 2);
                assert_eq!(lines[0].line, 2);
                assert_eq!(lines[1].line, 3);
                assert!(lines[1].reason.contains("srcport"), "{}", lines[1].reason);
            }
            other => panic!("{other:?}"),
        }
    }

    fn lines(b: &Batch) -> Vec<&[u8]> {
        b.events.iter().map(|(r, _)| &b.buf[r.clone()]).collect()
    }

    #[test]
    fn ndjson_names_every_bad_line_and_keeps_bytes() {
        let input = b"{\"a\":1}\n\n{\"b\":\n[1]\n{\"seq\":3}\n  {\"ok\" : true}  \n{\"last\":1}";
        match parse(input.to_vec(), Format::Ndjson, 1000, 10) {
            Err(BatchError::BadLines { count, lines }) => {
                assert_eq!(count, 3);
                let n: Vec<usize> = lines.iter().map(|b| b.line).collect();
                assert_eq!(n, vec![3, 4, 5]);
            }
            other => panic!("expected bad lines, got {other:?}"),
        }
        let ok = parse(
            b"{\"a\":1}\r\n\n {\"b\" : 2}".to_vec(),
            Format::Ndjson,
            1000,
            10,
        )
        .expect("valid");
        assert_eq!(lines(&ok), vec![&b"{\"a\":1}"[..], &b"{\"b\" : 2}"[..]]);
    }

    #[test]
    fn ndjson_line_numbers_cross_parallel_chunks() {
        let mut input = Vec::new();
        for i in 0..60_000 {
            input.extend_from_slice(
                format!("{{\"i\":{i},\"pad\":\"xxxxxxxxxxxxxxxx\"}}\n").as_bytes(),
            );
        }
        input.extend_from_slice(b"{oops}\n");
        let total = 60_001;
        match parse(input, Format::Ndjson, 1000, 10) {
            Err(BatchError::BadLines { count, lines }) => {
                assert_eq!(count, 1);
                assert_eq!(lines[0].line, total);
            }
            other => panic!("expected bad lines, got {other:?}"),
        }
    }

    #[test]
    fn count_is_total_even_past_the_listed_cap() {
        let input = b"x\ny\nz\nw\n".to_vec();
        match parse(input, Format::Ndjson, 1000, 2) {
            Err(BatchError::BadLines { count, lines }) => {
                assert_eq!((count, lines.len()), (4, 2));
            }
            other => panic!("expected bad lines, got {other:?}"),
        }
    }

    #[test]
    fn arrays_are_compacted_in_order_and_elements_numbered_from_zero() {
        let body = b"[ {\"b\" : 1,\n \"a\": \"x y\\\" z\"}, {\"c\":[1, 2]} ]".to_vec();
        let p = parse(body, Format::JsonArray, 1000, 10).expect("valid");
        assert_eq!(
            lines(&p),
            vec![&br#"{"b":1,"a":"x y\" z"}"#[..], &br#"{"c":[1,2]}"#[..]]
        );
        match parse(b"[{\"a\":1}, 5]".to_vec(), Format::JsonArray, 1000, 10) {
            Err(BatchError::BadLines { lines, .. }) => assert_eq!(lines[0].line, 1),
            other => panic!("expected bad lines, got {other:?}"),
        }
        assert!(matches!(
            parse(b"[1,".to_vec(), Format::JsonArray, 1000, 10),
            Err(BatchError::Malformed(_))
        ));
    }

    #[test]
    fn long_lines_and_empty_bodies() {
        let long = format!("{{\"a\":\"{}\"}}\n", "x".repeat(100));
        assert!(matches!(
            parse(long.into_bytes(), Format::Ndjson, 50, 10),
            Err(BatchError::BadLines { .. })
        ));
        assert_eq!(
            parse(b"\n \n".to_vec(), Format::Ndjson, 50, 10).err(),
            Some(BatchError::Empty)
        );
        assert_eq!(
            parse(b"[]".to_vec(), Format::JsonArray, 50, 10).err(),
            Some(BatchError::Empty)
        );
    }
}
