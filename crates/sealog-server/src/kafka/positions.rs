//! How far each partition has been read, as the realm's own journal says.
//!
//! Every record the consumer writes carries its `kafka` provenance (topic,
//! partition, offset, group), in the same commit as the message it came
//! from, and `kafka` is a reserved field no other sender may write. So
//! the journal alone says where to resume: the next offset of a partition
//! is one past the highest offset of that group's records in the realm.
//! Nothing else needs to be durable for exactly-once; a hint file per
//! source (`<data>/kafka/<group>/<realm>/<source>.json`, written now and
//! then) only saves re-reading the whole realm at a start: the records
//! after the seq it names are read again, and a hint past the journal's end
//! is ignored. Two sources never consume the same topic in one group (the
//! second is refused the topic), so one source's hint covers its topics.

use std::collections::{HashMap, HashSet, VecDeque};
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::realm::SharedLog;

/// LogHarbour ids remembered per realm for the redelivery check.
pub const ID_WINDOW: usize = 1_000_000;

/// A topic and partition.
pub type Tp = (String, i32);

/// One realm's positions for one group.
#[derive(Debug, Default)]
pub struct RealmPositions {
    /// The next offset to store, per partition: only what is durable.
    pub durable: HashMap<Tp, i64>,
    /// The next offset handed to the journal (durable or in flight).
    pub submitted: HashMap<Tp, i64>,
    /// Recent LogHarbour ids, oldest first.
    ids: VecDeque<String>,
    id_set: HashSet<String>,
    /// Seq up to which the journal was read for these positions.
    pub through: u64,
}

impl RealmPositions {
    /// True if `id` was stored (or is in flight) in this realm lately.
    pub fn seen_id(&self, id: &str) -> bool {
        self.id_set.contains(id)
    }

    /// Remembers `id`.
    pub fn note_id(&mut self, id: String) {
        if self.id_set.insert(id.clone()) {
            self.ids.push_back(id);
            while self.ids.len() > ID_WINDOW {
                if let Some(old) = self.ids.pop_front() {
                    self.id_set.remove(&old);
                }
            }
        }
    }

    /// Forgets `id` (its commit failed).
    pub fn forget_id(&mut self, id: &str) {
        if self.id_set.remove(id) {
            if let Some(i) = self.ids.iter().rposition(|x| x == id) {
                self.ids.remove(i);
            }
        }
    }

    /// Marks offsets up to `next` of `tp` durable.
    pub fn advance(&mut self, tp: &Tp, next: i64) {
        let d = self.durable.entry(tp.clone()).or_insert(next);
        *d = (*d).max(next);
    }

    /// Drops what was submitted and not made durable: the next batch
    /// starts from the durable positions.
    pub fn rewind(&mut self) {
        self.submitted = self.durable.clone();
    }
}

#[derive(Debug, Serialize, Deserialize)]
struct Hint {
    through: u64,
    next: Vec<(String, i32, i64)>,
}

/// The hint file of `source` (its name) in `group` and `realm`.
pub fn hint_path(data: &Path, group: &str, realm: &str, source: &str) -> PathBuf {
    use sha2::Digest as _;
    // Group ids and source names are free text: keep file names safe, and
    // tell apart names that differ only in what was replaced.
    let safe = |s: &str| -> String {
        let clean: String = s
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || "._-".contains(c) {
                    c
                } else {
                    '_'
                }
            })
            .take(48)
            .collect();
        let id = hex::encode(&sha2::Sha256::digest(s.as_bytes())[..6]);
        format!("{clean}-{id}")
    };
    data.join("kafka")
        .join(safe(group))
        .join(realm)
        .join(format!("{}.json", safe(source)))
}

/// Writes the hint for `p` (atomically; a failure only costs a longer
/// read at the next start).
pub fn save_hint(path: &Path, p: &RealmPositions) {
    let hint = Hint {
        through: p.through,
        next: p
            .durable
            .iter()
            .map(|((t, part), n)| (t.clone(), *part, *n))
            .collect(),
    };
    let Ok(bytes) = serde_json::to_vec(&hint) else {
        return;
    };
    let (Some(dir), Some(name)) = (path.parent(), path.file_name().and_then(|n| n.to_str())) else {
        return;
    };
    let _ = std::fs::create_dir_all(dir);
    if let Err(e) = crate::digest::write_atomic(dir, name, &bytes) {
        tracing::warn!(path = %path.display(), cause = %e, "kafka position hint not saved; the next start reads more of the journal");
    }
}

#[derive(Deserialize)]
struct Scan<'a> {
    #[serde(borrow)]
    kafka: Option<Prov<'a>>,
    #[serde(default)]
    id: Option<AnyId>,
}

/// An `id` of any type: only strings are LogHarbour ids.
#[derive(Deserialize)]
#[serde(untagged)]
enum AnyId {
    Text(String),
    Other(serde::de::IgnoredAny),
}

#[derive(Deserialize)]
struct Prov<'a> {
    #[serde(borrow)]
    topic: std::borrow::Cow<'a, str>,
    partition: i32,
    offset: i64,
    #[serde(borrow)]
    group: std::borrow::Cow<'a, str>,
    #[serde(borrow)]
    format: std::borrow::Cow<'a, str>,
}

/// Reads `group`'s positions in a realm: the hint, then every record after
/// it (and at least the last [`ID_WINDOW`] records, for LogHarbour ids).
///
/// # Errors
/// Journal read errors, as text.
pub fn load(
    journal: &SharedLog,
    hint: &Path,
    group: &str,
    with_ids: bool,
) -> Result<RealmPositions, String> {
    let mut p = RealmPositions::default();
    let j = journal
        .read()
        .map_err(|_| "journal lock poisoned".to_string())?;
    let size = j.size();
    let mut from = 0;
    if let Ok(bytes) = std::fs::read(hint) {
        match serde_json::from_slice::<Hint>(&bytes) {
            Ok(h) if h.through <= size => {
                from = h.through;
                for (t, part, n) in h.next {
                    p.durable.insert((t, part), n);
                }
            }
            Ok(h) => {
                tracing::warn!(hint = %hint.display(), through = h.through, size, "kafka position hint is past the journal's end; reading the whole realm")
            }
            Err(e) => {
                tracing::warn!(hint = %hint.display(), cause = %e, "kafka position hint unreadable; reading the whole realm")
            }
        }
    }
    let start = if with_ids {
        from.min(size.saturating_sub(ID_WINDOW as u64))
    } else {
        from
    };
    let mut bad = 0u64;
    j.read(start, size, &mut |seq, line| {
        // Records without provenance are skipped without a full parse.
        if memchr::memmem::find(line, br#""kafka":{"#).is_none() {
            return ControlFlow::Continue(());
        }
        match serde_json::from_slice::<Scan<'_>>(line) {
            Ok(Scan { kafka: Some(k), id }) => {
                if k.group == group && seq >= from {
                    let tp = (k.topic.into_owned(), k.partition);
                    let next = k.offset.saturating_add(1);
                    let e = p.durable.entry(tp).or_insert(next);
                    *e = (*e).max(next);
                }
                if with_ids && k.format == "logharbour" {
                    if let Some(AnyId::Text(id)) = id {
                        p.note_id(id);
                    }
                }
            }
            Ok(_) => {}
            Err(_) => bad += 1,
        }
        ControlFlow::Continue(())
    })
    .map_err(|e| e.to_string())?;
    if bad > 0 {
        tracing::warn!(realm = %j.realm(), bad, "records with unreadable kafka provenance skipped while reading positions");
    }
    p.through = size;
    p.submitted = p.durable.clone();
    Ok(p)
}
