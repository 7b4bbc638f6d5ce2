//! The writer role: consumes the ingest topic in a consumer group and
//! commits each realm's batches to its log in PostgreSQL.
//!
//! A message is stored exactly once: the next offset of every (partition,
//! realm) is written in the realm's commit transaction
//! (`sealog_kafka_positions`), and a message below it is skipped, whoever
//! reads it. The update is conditional on the value this writer read, and
//! the realm's row on its size and owner epoch: a writer that lost the
//! partition (paused, cut off) has its next commit refused, logs why,
//! forgets what it held and reads on from where the store says.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance};
use rdkafka::message::{Headers, Message};
use rdkafka::{ClientContext, Offset, TopicPartitionList};
use sealog_event::RealmName;
use sealog_journal::{EventRef, JournalError, JournalOptions, Receipt};
use sealog_pg::{HookPoint, PgLog, PgRealms};
use sealog_store::RealmStore;
use tokio_util::sync::CancellationToken;

use crate::{Cluster, Notice, RECEIPTS_CHANNEL, REQUEST_HEADER};

/// Messages taken per round at most.
const MAX_BATCH: usize = 512;
/// Bytes taken per round at most.
const MAX_BATCH_BYTES: usize = 8 << 20;

/// Notes a rebalance, so the writer forgets what it held.
struct Ctx(Arc<AtomicBool>);

impl ClientContext for Ctx {}

impl ConsumerContext for Ctx {
    fn post_rebalance(&self, _c: &BaseConsumer<Self>, r: &Rebalance<'_>) {
        tracing::info!(rebalance = ?r, "writer partitions changed");
        self.0.store(true, Ordering::SeqCst);
    }
}

/// One message of the ingest topic.
struct Msg {
    partition: i32,
    offset: i64,
    realm: String,
    id: Option<String>,
    body: Vec<u8>,
}

/// Runs the writer role until `stop`.
///
/// # Errors
/// The consumer cannot be made (bad configuration). Lost brokers or
/// database are waited out, not returned.
pub fn run(c: &Cluster, stop: &CancellationToken) -> Result<(), String> {
    let rebalanced = Arc::new(AtomicBool::new(false));
    let consumer: BaseConsumer<Ctx> = ClientConfig::new()
        .set("bootstrap.servers", &c.kafka)
        .set("group.id", "sealog-writers")
        .set("client.id", &c.node)
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .set("session.timeout.ms", "6000")
        .set("heartbeat.interval.ms", "1000")
        .set("fetch.wait.max.ms", "20")
        .create_with_context(Ctx(rebalanced.clone()))
        .map_err(|e| format!("making the writer's Kafka consumer: {e}"))?;
    consumer
        .subscribe(&[&c.topic])
        .map_err(|e| format!("subscribing to {}: {e}", c.topic))?;
    let mut w = Writer {
        c: c.clone(),
        realms: None,
        positions: None,
        cache: HashMap::new(),
        logs: HashMap::new(),
        claims: None,
    };
    let mut backoff = Duration::from_millis(200);
    tracing::info!(node = %c.node, topic = %c.topic, "writer started");
    while !stop.is_cancelled() {
        let batch = take(&consumer);
        if rebalanced.swap(false, Ordering::SeqCst) {
            // Partitions moved: what this writer held may be another's now.
            w.logs.clear();
            w.cache.clear();
            w.claims = None;
        }
        if w.claims.is_none() {
            match consumer.assignment() {
                Ok(tpl) => {
                    let parts: Vec<i32> = tpl.elements().iter().map(|e| e.partition()).collect();
                    if let Err(e) = w.claim(&parts) {
                        tracing::warn!(node = %c.node, error = %e, "cannot claim the assigned partitions yet");
                    }
                }
                Err(e) => tracing::warn!(error = %e, "reading the assignment"),
            }
        }
        if batch.is_empty() {
            continue;
        }
        let mut by_realm: BTreeMap<String, Vec<Msg>> = BTreeMap::new();
        let mut ends: BTreeMap<i32, i64> = BTreeMap::new();
        let mut starts: BTreeMap<i32, i64> = BTreeMap::new();
        // A rebalance inside one round can hand the same offset out twice
        // (re-fetched from the group's offset): each is taken once.
        let mut taken = std::collections::HashSet::new();
        for m in batch {
            if !taken.insert((m.partition, m.offset)) {
                continue;
            }
            ends.entry(m.partition)
                .and_modify(|o| *o = (*o).max(m.offset + 1))
                .or_insert(m.offset + 1);
            starts
                .entry(m.partition)
                .and_modify(|o| *o = (*o).min(m.offset))
                .or_insert(m.offset);
            by_realm.entry(m.realm.clone()).or_default().push(m);
        }
        let mut failed = false;
        for (realm, msgs) in &by_realm {
            if let Err(e) = w.commit_realm(realm, msgs) {
                tracing::warn!(node = %c.node, realm, error = %e, "commit refused or failed; this batch is read again");
                w.logs.remove(realm);
                w.cache.retain(|(_, r), _| r != realm);
                failed = true;
            }
        }
        if failed {
            // Read the whole round again: what did commit is skipped then.
            for (p, off) in &starts {
                if let Err(e) =
                    consumer.seek(&c.topic, *p, Offset::Offset(*off), Duration::from_secs(5))
                {
                    tracing::warn!(partition = p, error = %e, "seek back failed");
                    w.logs.clear();
                    w.cache.clear();
                }
            }
            std::thread::sleep(backoff);
            backoff = (backoff * 2).min(Duration::from_secs(5));
            continue;
        }
        backoff = Duration::from_millis(200);
        // The group's offsets only bound how much is read again after a
        // restart; the store's positions are what count.
        let mut tpl = TopicPartitionList::new();
        for (p, end) in ends {
            let _ = tpl.add_partition_offset(&c.topic, p, Offset::Offset(end));
        }
        let _ = consumer.commit(&tpl, CommitMode::Async);
    }
    tracing::info!(node = %c.node, "writer stopped");
    Ok(())
}

/// Up to a round of messages: waits a little for the first.
fn take(consumer: &BaseConsumer<Ctx>) -> Vec<Msg> {
    let mut out = Vec::new();
    let mut bytes = 0usize;
    let mut wait = Duration::from_millis(200);
    while out.len() < MAX_BATCH && bytes < MAX_BATCH_BYTES {
        match consumer.poll(wait) {
            Some(Ok(m)) => {
                let realm = m
                    .key()
                    .and_then(|k| std::str::from_utf8(k).ok())
                    .unwrap_or_default()
                    .to_string();
                let id = m.headers().and_then(|h| {
                    h.iter()
                        .find(|h| h.key == REQUEST_HEADER)
                        .and_then(|h| h.value)
                        .and_then(|v| std::str::from_utf8(v).ok())
                        .map(str::to_string)
                });
                let body = m.payload().unwrap_or_default().to_vec();
                bytes += body.len();
                out.push(Msg {
                    partition: m.partition(),
                    offset: m.offset(),
                    realm,
                    id,
                    body,
                });
            }
            Some(Err(e)) => {
                tracing::warn!(error = %e, "Kafka");
                break;
            }
            None => break,
        }
        wait = Duration::ZERO;
    }
    out
}

/// Where each partition's messages for a realm move: (as read, after).
type Moves = BTreeMap<i32, (Option<i64>, i64)>;

/// Sends `notice` to the ingest nodes when `tx` commits.
fn notify(tx: &mut postgres::Transaction<'_>, notice: &Notice) -> Result<(), postgres::Error> {
    let text = serde_json::to_string(notice).unwrap_or_default();
    tx.execute("SELECT pg_notify($1, $2)", &[&RECEIPTS_CHANNEL, &text])
        .map(|_| ())
}

/// Sends `notice` to the ingest nodes now.
fn notify_now(db: &mut postgres::Client, notice: &Notice) -> Result<(), String> {
    let text = serde_json::to_string(notice).unwrap_or_default();
    db.execute("SELECT pg_notify($1, $2)", &[&RECEIPTS_CHANNEL, &text])
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// Refuses (fenced) unless every partition in `mine` is still claimed by
/// `node` at the epoch it holds.
fn check_claims(
    tx: &mut postgres::Transaction<'_>,
    topic: &str,
    node: &str,
    mine: &BTreeMap<i32, i64>,
) -> sealog_journal::Result<()> {
    for (p, epoch) in mine {
        let row = tx
            .query_opt(
                "SELECT owner, epoch FROM sealog_partition_claims WHERE topic = $1 AND partition = $2",
                &[&topic, p],
            )
            .map_err(|e| JournalError::Store {
                op: "checking the partition claim",
                reason: e.to_string(),
            })?;
        let now = row.and_then(|r| {
            Some((
                r.try_get::<_, String>(0).ok()?,
                r.try_get::<_, i64>(1).ok()?,
            ))
        });
        if now.as_ref() != Some(&(node.to_string(), *epoch)) {
            let (owner, e) = now.unwrap_or_else(|| ("nobody".into(), 0));
            return Err(JournalError::Fenced(format!(
                "partition {p} of {topic} is claimed by {owner} at epoch {e}, not by this writer ({node}, epoch {epoch}): it was paused or cut off while its partitions moved, so it commits nothing more for them"
            )));
        }
    }
    Ok(())
}

/// Records `moves` in `tx`, each only from the position this writer read:
/// the outer error is the database's, the inner names a partition another
/// writer moved.
fn record_positions(
    tx: &mut postgres::Transaction<'_>,
    topic: &str,
    realm: &str,
    moves: &Moves,
) -> Result<Result<(), String>, postgres::Error> {
    for (p, (old, new)) in moves {
        let n = match old {
            None => tx.execute(
                "INSERT INTO sealog_kafka_positions (topic, partition, realm, next_offset) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
                &[&topic, p, &realm, new],
            )?,
            Some(old) => tx.execute(
                "UPDATE sealog_kafka_positions SET next_offset = $5 WHERE topic = $1 AND partition = $2 AND realm = $3 AND next_offset = $4",
                &[&topic, p, &realm, old, new],
            )?,
        };
        if n != 1 {
            return Ok(Err(format!(
                "partition {p} of {topic} for realm {realm} is no longer at offset {} for this writer: another writer consumed it",
                old.map_or_else(|| "(none)".into(), |o| o.to_string())
            )));
        }
    }
    Ok(Ok(()))
}

struct Writer {
    c: Cluster,
    realms: Option<PgRealms>,
    positions: Option<postgres::Client>,
    /// Next offset per (partition, realm) as this writer last read or
    /// wrote it; `None` when the store has none.
    cache: HashMap<(i32, String), Option<i64>>,
    logs: HashMap<String, PgLog>,
    /// This writer's claim epoch of each partition it was assigned;
    /// `None` until the assignment is claimed.
    claims: Option<HashMap<i32, i64>>,
}

impl Writer {
    /// Claims `parts` for this writer (a new epoch each), after every
    /// assignment: from then on only this writer's commits for them apply.
    fn claim(&mut self, parts: &[i32]) -> Result<(), String> {
        let (topic, node) = (self.c.topic.clone(), self.c.node.clone());
        let db = self.db()?;
        let mut claims = HashMap::new();
        for p in parts {
            let row = db
                .query_one(
                    "INSERT INTO sealog_partition_claims (topic, partition, owner, epoch) VALUES ($1, $2, $3, 1) ON CONFLICT (topic, partition) DO UPDATE SET owner = $3, epoch = sealog_partition_claims.epoch + 1 RETURNING epoch",
                    &[&topic, p, &node],
                )
                .map_err(|e| format!("claiming partition {p}: {e}"))?;
            claims.insert(*p, row.try_get::<_, i64>(0).map_err(|e| e.to_string())?);
        }
        tracing::info!(node = %self.c.node, claims = ?claims, "claimed partitions");
        self.claims = Some(claims);
        Ok(())
    }

    fn db(&mut self) -> Result<&mut postgres::Client, String> {
        if self
            .positions
            .as_ref()
            .is_none_or(postgres::Client::is_closed)
        {
            self.positions = Some(sealog_pg::connect(&self.c.postgres).map_err(|e| e.to_string())?);
        }
        Ok(self.positions.as_mut().expect("connected above"))
    }

    /// Moves positions without a commit (every message refused).
    fn advance(&mut self, realm: &str, moves: &Moves) -> Result<(), String> {
        let topic = self.c.topic.clone();
        let db = self.db()?;
        let pg = |e: postgres::Error| sealog_pg::describe(&e);
        let mut tx = db.transaction().map_err(pg)?;
        record_positions(&mut tx, &topic, realm, moves).map_err(pg)??;
        tx.commit().map_err(pg)?;
        for (p, (_, new)) in moves {
            self.cache.insert((*p, realm.to_string()), Some(*new));
        }
        Ok(())
    }

    /// Why `realm` can never be written, if it cannot: a key that is not a
    /// realm name, or a realm (or its key) missing from the store.
    fn permanent_refusal(&mut self, realm: &str) -> Result<Option<String>, String> {
        let Ok(name) = RealmName::new(realm) else {
            return Ok(Some(format!("{realm:?} is not a realm name")));
        };
        if self.logs.contains_key(realm) {
            return Ok(None);
        }
        if self.realms.is_none() {
            self.realms = Some(PgRealms::connect(&self.c.postgres).map_err(|e| e.to_string())?);
        }
        match self
            .realms
            .as_ref()
            .expect("connected above")
            .realm_signer(&name)
        {
            Ok(_) => Ok(None),
            Err(sealog_store::StoreError::UnknownRealm(_)) => Ok(Some(
                "the realm or its signing key is not in the store".into(),
            )),
            Err(e) => {
                self.realms = None;
                Err(e.to_string())
            }
        }
    }

    /// The receipts of the batches among `ids` already committed to `realm`.
    fn committed(
        &mut self,
        realm: &str,
        ids: &[String],
    ) -> Result<HashMap<String, Notice>, String> {
        if ids.is_empty() {
            return Ok(HashMap::new());
        }
        let rows = self
            .db()?
            .query(
                "SELECT id, first_seq, count, checkpoint FROM sealog_requests WHERE realm = $1 AND id = ANY($2)",
                &[&realm, &ids],
            )
            .map_err(|e| format!("reading committed requests: {e}"))?;
        let mut out = HashMap::new();
        for r in rows {
            let (id, first, n, checkpoint): (String, i64, i64, String) = (
                r.try_get(0).map_err(|e| e.to_string())?,
                r.try_get(1).map_err(|e| e.to_string())?,
                r.try_get(2).map_err(|e| e.to_string())?,
                r.try_get(3).map_err(|e| e.to_string())?,
            );
            let (first, n) = (first.max(0) as u64, n.max(1) as u64);
            out.insert(
                id.clone(),
                Notice {
                    id,
                    receipt: Receipt {
                        realm: realm.to_string(),
                        first_seq: first,
                        last_seq: first + n - 1,
                        count: n,
                        checkpoint,
                    },
                },
            );
        }
        Ok(out)
    }

    fn position(&mut self, partition: i32, realm: &str) -> Result<Option<i64>, String> {
        if let Some(p) = self.cache.get(&(partition, realm.to_string())) {
            return Ok(*p);
        }
        let topic = self.c.topic.clone();
        let row = self
            .db()?
            .query_opt(
                "SELECT next_offset FROM sealog_kafka_positions WHERE topic = $1 AND partition = $2 AND realm = $3",
                &[&topic, &partition, &realm],
            )
            .map_err(|e| format!("reading the Kafka position: {e}"))?;
        let p = row.and_then(|r| r.try_get::<_, i64>(0).ok());
        self.cache.insert((partition, realm.to_string()), p);
        Ok(p)
    }

    fn log(&mut self, realm: &str) -> Result<&mut PgLog, String> {
        if !self.logs.contains_key(realm) {
            if self.realms.is_none() {
                self.realms = Some(PgRealms::connect(&self.c.postgres).map_err(|e| e.to_string())?);
            }
            let name = RealmName::new(realm).map_err(|e| e.to_string())?;
            let signer = self
                .realms
                .as_ref()
                .expect("connected above")
                .realm_signer(&name)
                .map_err(|e| {
                    // A dead connection is made again next time.
                    self.realms = None;
                    e.to_string()
                })?;
            let log = PgLog::open_writer(
                &self.c.postgres,
                realm,
                signer,
                &self.c.node,
                JournalOptions::default(),
            )
            .map_err(|e| e.to_string())?;
            self.logs.insert(realm.to_string(), log);
        }
        Ok(self.logs.get_mut(realm).expect("inserted above"))
    }

    /// Commits `msgs` (one realm's, in offset order per partition) that
    /// the store does not have yet.
    fn commit_realm(&mut self, realm: &str, msgs: &[Msg]) -> Result<(), String> {
        let mut fresh: Vec<&Msg> = Vec::new();
        let mut moves: Moves = BTreeMap::new();
        for m in msgs {
            let at = self.position(m.partition, realm)?;
            if at.is_some_and(|next| m.offset < next) {
                continue;
            }
            moves
                .entry(m.partition)
                .and_modify(|mv| mv.1 = mv.1.max(m.offset + 1))
                .or_insert((at, m.offset + 1));
            fresh.push(m);
        }
        if fresh.is_empty() {
            return Ok(());
        }
        // A realm whose name or key is not in the store can never be
        // committed: its messages are refused (passed, not retried), so they
        // do not hold up the other realms of their partitions.
        if let Some(why) = self.permanent_refusal(realm)? {
            tracing::error!(node = %self.c.node, realm, messages = fresh.len(), reason = %why, "messages for a realm that cannot be written are refused");
            return self.advance(realm, &moves);
        }
        // A batch already committed (Kafka delivered it twice, or its client
        // sent it again under the same Idempotency-Key) is not stored again:
        // its first receipt is sent once more.
        let ids: Vec<String> = fresh.iter().filter_map(|m| m.id.clone()).collect();
        let done = self.committed(realm, &ids)?;
        let mut seen = std::collections::HashSet::new();
        let mut again = Vec::new();
        fresh.retain(|m| match &m.id {
            Some(id) if done.contains_key(id) => {
                again.push(done[id].clone());
                false
            }
            Some(id) => seen.insert(id.clone()),
            None => true,
        });
        // Parse every batch (the ingest node validated them; a message
        // that still does not parse is refused alone, its offset passed).
        let mut events: Vec<EventRef<'_>> = Vec::new();
        let mut counts: Vec<(Option<&str>, u64)> = Vec::new();
        for m in &fresh {
            match sealog_codec::batch::ndjson_events(&m.body, sealog_event::MAX_EVENT_BYTES, 1) {
                Ok(ranges) if !ranges.is_empty() => {
                    counts.push((m.id.as_deref(), ranges.len() as u64));
                    for (r, t) in ranges {
                        events.push(EventRef {
                            bytes: &m.body[r],
                            time_ns: t,
                        });
                    }
                }
                Ok(_) | Err(_) => {
                    tracing::warn!(
                        realm,
                        partition = m.partition,
                        offset = m.offset,
                        "message on the ingest topic is not a batch of events; refused"
                    );
                }
            }
        }
        let topic = self.c.topic.clone();
        let realm_s = realm.to_string();
        let node = self.c.node.clone();
        let mine: BTreeMap<i32, i64> = {
            let claims = self
                .claims
                .as_ref()
                .ok_or("the assigned partitions are not claimed yet")?;
            moves
                .keys()
                .map(|p| {
                    claims
                        .get(p)
                        .map(|e| (*p, *e))
                        .ok_or_else(|| format!("partition {p} is not assigned to this writer"))
                })
                .collect::<Result<_, String>>()?
        };
        // Before a realm is taken over (its epoch raised), the claims must
        // still be this writer's.
        if !self.logs.contains_key(realm) {
            let db = self.db()?;
            let mut tx = db.transaction().map_err(|e| e.to_string())?;
            check_claims(&mut tx, &topic, &node, &mine).map_err(|e| e.to_string())?;
        }
        let log = self.log(realm)?;
        let mut hook = |tx: &mut postgres::Transaction<'_>,
                        at: HookPoint<'_>|
         -> sealog_journal::Result<()> {
            let db = |e: postgres::Error| JournalError::Store {
                op: "recording Kafka positions",
                reason: e.to_string(),
            };
            let r = match at {
                HookPoint::Begin => return check_claims(tx, &topic, &node, &mine),
                HookPoint::End(r) => r,
            };
            record_positions(tx, &topic, &realm_s, &moves)
                .map_err(db)?
                .map_err(JournalError::Fenced)?;
            let mut first = r.first_seq;
            for (id, n) in &counts {
                if let Some(id) = id {
                    let notice = Notice {
                        id: (*id).to_string(),
                        receipt: Receipt {
                            realm: r.realm.clone(),
                            first_seq: first,
                            last_seq: first + n - 1,
                            count: *n,
                            checkpoint: r.checkpoint.clone(),
                        },
                    };
                    tx.execute(
                            "INSERT INTO sealog_requests (realm, id, first_seq, count, checkpoint) VALUES ($1, $2, $3, $4, $5)",
                            &[&realm_s, id, &(first as i64), &(*n as i64), &r.checkpoint],
                        )
                        .map_err(db)?;
                    notify(tx, &notice).map_err(db)?;
                }
                first += n;
            }
            for notice in &again {
                notify(tx, notice).map_err(db)?;
            }
            Ok(())
        };
        if events.is_empty() {
            // Nothing to commit, but the refused and repeated messages are
            // passed, and the repeated ones answered again.
            self.advance(realm, &moves)?;
            if !again.is_empty() {
                let db = self.db()?;
                for notice in &again {
                    notify_now(db, notice)?;
                }
            }
            return Ok(());
        }
        let receipt = log
            .append_with(&events, &mut hook)
            .map_err(|e| e.to_string())?;
        tracing::debug!(
            realm,
            first = receipt.first_seq,
            count = receipt.count,
            "committed"
        );
        for (p, (_, new)) in moves {
            self.cache.insert((p, realm.to_string()), Some(new));
        }
        Ok(())
    }
}
