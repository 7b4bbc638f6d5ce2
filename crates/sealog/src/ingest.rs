//! NDJSON ingest without a server: validate everything, then append in
//! pipelined group commits (the next batch is sealed while the previous
//! one is being fsynced).

use std::sync::mpsc::sync_channel;

use rayon::prelude::*;
use sealog_journal::{prepare, EventRef, Journal, JournalError, Receipt};

/// One refused input line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadLine {
    /// 1-based line number.
    pub line: usize,
    /// Why.
    pub reason: String,
}

/// Splits `input` into NDJSON lines (blank lines skipped) and validates them
/// all, in parallel over chunks of the input. Returns the events, or the bad
/// lines (up to `max_bad`, in order).
///
/// # Errors
/// The bad lines, in order.
pub fn validate_ndjson(input: &[u8], max_bad: usize) -> Result<Vec<EventRef<'_>>, Vec<BadLine>> {
    // Cut the input at newlines into chunks of about 1 MiB.
    let mut chunks = Vec::new();
    let mut start = 0;
    while start < input.len() {
        let want = (start + (1 << 20)).min(input.len());
        let end = match memchr::memchr(b'\n', &input[want..]) {
            Some(at) if want < input.len() => want + at + 1,
            _ => input.len(),
        };
        chunks.push(&input[start..end]);
        start = end;
    }
    struct Part<'a> {
        lines: usize,
        events: Vec<EventRef<'a>>,
        bad: Vec<BadLine>,
    }
    let parts: Vec<Part<'_>> = chunks
        .par_iter()
        .map(|chunk| {
            let mut p = Part {
                lines: 0,
                events: Vec::with_capacity(chunk.len() / 128),
                bad: Vec::new(),
            };
            for line in chunk.split(|b| *b == b'\n') {
                p.lines += 1;
                let line = trim(line);
                if line.is_empty() {
                    continue;
                }
                if line.len() > sealog_event::MAX_EVENT_BYTES {
                    if p.bad.len() < max_bad {
                        p.bad.push(BadLine {
                            line: p.lines,
                            reason: format!(
                                "event is {} bytes; the most one event may be is {} bytes",
                                line.len(),
                                sealog_event::MAX_EVENT_BYTES
                            ),
                        });
                    }
                    continue;
                }
                match sealog_event::validate(line) {
                    Ok(info) => p.events.push(EventRef {
                        bytes: line,
                        time_ns: info.time_ns,
                    }),
                    Err(e) if p.bad.len() < max_bad => p.bad.push(BadLine {
                        line: p.lines,
                        reason: e.to_string(),
                    }),
                    Err(_) => {}
                }
            }
            // A chunk ending in a newline did not start another line.
            if chunk.last() == Some(&b'\n') {
                p.lines -= 1;
            }
            p
        })
        .collect();
    let mut bad = Vec::new();
    let mut before = 0;
    for p in &parts {
        bad.extend(p.bad.iter().map(|b| BadLine {
            line: before + b.line,
            reason: b.reason.clone(),
        }));
        before += p.lines;
    }
    if !bad.is_empty() {
        bad.truncate(max_bad);
        return Err(bad);
    }
    let mut events = Vec::with_capacity(parts.iter().map(|p| p.events.len()).sum());
    for p in parts {
        events.extend(p.events);
    }
    Ok(events)
}

fn trim(mut l: &[u8]) -> &[u8] {
    while let [first, rest @ ..] = l {
        if first.is_ascii_whitespace() {
            l = rest;
        } else {
            break;
        }
    }
    while let [rest @ .., last] = l {
        if last.is_ascii_whitespace() {
            l = rest;
        } else {
            break;
        }
    }
    l
}

/// Appends `events` in commits of `batch`, calling `on_commit` with each
/// receipt as soon as it is durable. Returns one receipt covering all.
///
/// # Errors
/// The first journal error; receipts already handed to `on_commit` stay valid.
pub fn append_pipelined(
    journal: &mut Journal,
    events: &[EventRef<'_>],
    batch: usize,
    on_commit: &mut dyn FnMut(&Receipt),
) -> Result<Option<Receipt>, JournalError> {
    let batch = batch.max(1);
    let realm = journal.realm().to_string();
    let level = journal.options().compression_level;
    let first = journal.size();
    let mut total: Option<Receipt> = None;
    std::thread::scope(|s| {
        let (tx, rx) = sync_channel(1);
        s.spawn(move || {
            let mut seq = first;
            for chunk in events.chunks(batch) {
                let p = prepare(&realm, seq, chunk, sealog_event::now_ns(), level);
                seq += chunk.len() as u64;
                if tx.send(p).is_err() {
                    break;
                }
            }
        });
        for p in rx {
            let r = journal.commit(p?)?;
            on_commit(&r);
            total = Some(match total.take() {
                None => r,
                Some(t) => Receipt {
                    last_seq: r.last_seq,
                    count: t.count + r.count,
                    checkpoint: r.checkpoint,
                    ..t
                },
            });
        }
        Ok(total)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_every_bad_line() {
        let input = b"{\"a\":1}\n\n{\"b\":\n[1]\n{\"seq\":3}\n  {\"ok\":true}  \n{\"last\":1}";
        let bad = validate_ndjson(input, 10).expect_err("bad lines");
        let lines: Vec<usize> = bad.iter().map(|b| b.line).collect();
        assert_eq!(lines, vec![3, 4, 5]);
        assert!(bad[1].reason.contains("object"), "{bad:?}");
        assert!(bad[2].reason.contains("reserved"), "{bad:?}");
        let ok = validate_ndjson(b"{\"a\":1}\r\n\n {\"b\":2}", 10).expect("valid");
        assert_eq!(ok.len(), 2);
        assert_eq!(ok[1].bytes, b"{\"b\":2}");
    }
}
