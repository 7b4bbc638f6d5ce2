//! NDJSON ingest without a server: validate everything, then append in
//! pipelined group commits (the next batch is sealed while the previous
//! one is being fsynced).

use std::sync::mpsc::sync_channel;

use sealog_journal::{prepare, EventRef, Journal, JournalError, Receipt};

/// One refused input line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadLine {
    /// 1-based line number.
    pub line: usize,
    /// Why.
    pub reason: String,
}

/// Validates `input` as NDJSON with the one batch parser every ingest path
/// uses ([`sealog_codec::batch`]; in parallel over ~1 MiB chunks) and
/// returns the events borrowed from it, or the bad lines (up to
/// `max_bad`, in order).
///
/// # Errors
/// The bad lines, in order.
pub fn validate_ndjson(input: &[u8], max_bad: usize) -> Result<Vec<EventRef<'_>>, Vec<BadLine>> {
    match sealog_codec::batch::ndjson_events(input, sealog_event::MAX_EVENT_BYTES, max_bad) {
        Ok(events) => Ok(events
            .into_iter()
            .map(|(r, t)| EventRef {
                bytes: &input[r],
                time_ns: t,
            })
            .collect()),
        Err(sealog_codec::batch::BatchError::BadLines { lines, .. }) => Err(lines
            .into_iter()
            .map(|b| BadLine {
                line: b.line,
                reason: b.reason,
            })
            .collect()),
        Err(other) => Err(vec![BadLine {
            line: 0,
            reason: other.to_string(),
        }]),
    }
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
