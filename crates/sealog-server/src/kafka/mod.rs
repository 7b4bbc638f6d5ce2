//! Kafka sources: logshuttle, Palisade and LogHarbour topics consumed into
//! realms, exactly once.
//!
//! Each source runs on its own thread with a librdkafka consumer (rdkafka:
//! the field's mature client; the consumer is not ours to write). The
//! partitions are *assigned*, not subscribed: sealog resumes every
//! partition from the offset its own journal says (see [`positions`]), so
//! a group rebalance can never move it elsewhere. A batch of messages is
//! converted ([`convert`]) and committed to the realm as one journal
//! commit whose records carry their offsets; only after that commit is
//! durable are the offsets also committed to the consumer group, for lag
//! monitoring. A crash at any point then neither loses a message (its
//! offset is not in the journal, so it is read again) nor stores one twice
//! (an offset below the journal's position is skipped).
//!
//! A message that cannot be read becomes a refused record (and, with
//! `dlq`, a copy on `<topic>_dlq`); the consumer never stops for bad
//! input. A full commit queue pauses the partitions until there is room.
//! While the brokers cannot be reached, librdkafka reconnects with backoff
//! and `/ready` names the source and the cause.

pub mod convert;
pub mod positions;

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rdkafka::client::ClientContext;
use rdkafka::config::{ClientConfig, RDKafkaLogLevel};
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext};
use rdkafka::error::KafkaError;
use rdkafka::message::{Headers, Message};
use rdkafka::producer::{BaseProducer, BaseRecord, DeliveryResult, Producer, ProducerContext};
use rdkafka::{Offset, TopicPartitionList};
use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;

use crate::config::{Kafka, KafkaFormat, KafkaSource};
use crate::realm::{CommitError, CommitRequest, QueueError, RealmHandle};
use crate::state::AppState;
use convert::{Converted, Msg, TokenRealm};
use positions::{RealmPositions, Tp};

/// Commits in flight per source.
const MAX_IN_FLIGHT: usize = 4;

/// Longest wait between two tries after a failure.
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// How often the position hint is saved.
const HINT_EVERY: Duration = Duration::from_secs(5);

/// Problems of the Kafka sources, by source name, for `/ready`; and which
/// source consumes each topic of a group.
#[derive(Debug, Default)]
pub struct Health(
    Mutex<BTreeMap<String, String>>,
    Mutex<HashMap<(String, String), String>>,
);

impl Health {
    /// Claims `topic` in `group` for `source`: false when another source
    /// has it (two sources of one group on one topic would store every
    /// message twice, and resume each other's positions).
    fn claim(&self, group: &str, topic: &str, source: &str) -> bool {
        let Ok(mut c) = self.1.lock() else {
            return false;
        };
        let owner = c
            .entry((group.to_string(), topic.to_string()))
            .or_insert_with(|| source.to_string());
        owner == source
    }

    fn set(&self, source: &str, problem: Option<String>) {
        if let Ok(mut m) = self.0.lock() {
            match problem {
                Some(p) => {
                    if m.get(source) != Some(&p) {
                        tracing::warn!(source, problem = %p, "kafka source not ready");
                    }
                    m.insert(source.to_string(), p);
                }
                None => {
                    if m.remove(source).is_some() {
                        tracing::info!(source, "kafka source ready");
                    }
                }
            }
        }
    }

    /// Every problem, as `kafka source S: problem`.
    pub fn problems(&self) -> Vec<String> {
        self.0
            .lock()
            .map(|m| {
                m.iter()
                    .map(|(s, p)| format!("kafka source {s}: {p}"))
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// librdkafka's callbacks: its log lines go to tracing, and errors such as
/// "all brokers down" to the source's health.
struct Ctx {
    source: String,
    broker_error: Mutex<Option<String>>,
    /// The last error logged and when: the same error is logged at most
    /// every 10 s (librdkafka repeats it on every retry).
    last_logged: Mutex<Option<(String, Instant)>>,
    /// High watermarks from librdkafka's statistics, for the lag gauge.
    high: Mutex<HashMap<Tp, i64>>,
}

impl ClientContext for Ctx {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, log_message: &str) {
        match level {
            RDKafkaLogLevel::Emerg
            | RDKafkaLogLevel::Alert
            | RDKafkaLogLevel::Critical
            | RDKafkaLogLevel::Error => {
                tracing::error!(source = %self.source, facility = fac, "librdkafka: {log_message}")
            }
            RDKafkaLogLevel::Warning => {
                tracing::warn!(source = %self.source, facility = fac, "librdkafka: {log_message}")
            }
            _ => {
                tracing::debug!(source = %self.source, facility = fac, "librdkafka: {log_message}")
            }
        }
    }

    fn stats(&self, statistics: rdkafka::Statistics) {
        if let Ok(mut h) = self.high.lock() {
            for (topic, t) in statistics.topics {
                for (p, part) in t.partitions {
                    if p >= 0 && part.hi_offset >= 0 {
                        h.insert((topic.clone(), p), part.hi_offset);
                    }
                }
            }
        }
    }

    fn error(&self, error: KafkaError, reason: &str) {
        let text = format!("{error}: {reason}");
        if let Ok(mut last) = self.last_logged.lock() {
            let repeat = last
                .as_ref()
                .is_some_and(|(t, at)| *t == text && at.elapsed() < Duration::from_secs(10));
            if !repeat {
                tracing::warn!(source = %self.source, %error, reason, "kafka client error");
                *last = Some((text.clone(), Instant::now()));
            }
        }
        if let Ok(mut e) = self.broker_error.lock() {
            *e = Some(text);
        }
    }
}

impl ConsumerContext for Ctx {}

/// Counts failed DLQ deliveries.
struct DlqCtx {
    source: String,
}

impl ClientContext for DlqCtx {}

impl ProducerContext for DlqCtx {
    type DeliveryOpaque = ();
    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        if let Err((e, _)) = result {
            metrics::counter!("sealog_kafka_dlq_failed_total", "source" => self.source.clone())
                .increment(1);
            tracing::error!(source = %self.source, cause = %e, "a message could not be written to its dead-letter topic; its refused record is in the realm");
        }
    }
}

/// The client settings every consumer and producer of `k` shares.
pub fn client_config(k: &Kafka) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", &k.brokers)
        .set("security.protocol", &k.security_protocol)
        .set("client.id", "sealog")
        .set("reconnect.backoff.ms", "100")
        .set("reconnect.backoff.max.ms", "10000");
    let path = |p: &std::path::PathBuf| p.to_string_lossy().into_owned();
    if let Some(p) = &k.ssl_ca_location {
        c.set("ssl.ca.location", path(p));
    }
    if let Some(p) = &k.ssl_certificate_location {
        c.set("ssl.certificate.location", path(p));
    }
    if let Some(p) = &k.ssl_key_location {
        c.set("ssl.key.location", path(p));
    }
    if let Some(m) = &k.sasl_mechanism {
        c.set("sasl.mechanism", m);
    }
    if let Some(u) = &k.sasl_username {
        c.set("sasl.username", u);
    }
    if let Some(p) = &k.sasl_password {
        c.set("sasl.password", p);
    }
    for (key, v) in &k.options {
        c.set(key, v);
    }
    c
}

/// Creates `topic` with `partitions` partitions (for tools and benchmarks;
/// an existing topic is not an error).
///
/// # Errors
/// The broker's answer, as text.
pub async fn create_topic(k: &Kafka, topic: &str, partitions: i32) -> Result<(), String> {
    use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
    let admin: AdminClient<rdkafka::client::DefaultClientContext> =
        client_config(k).create().map_err(|e| e.to_string())?;
    let opts = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)));
    let made = admin
        .create_topics(
            &[NewTopic::new(topic, partitions, TopicReplication::Fixed(1))],
            &opts,
        )
        .await
        .map_err(|e| e.to_string())?;
    for r in made {
        match r {
            Ok(_) | Err((_, rdkafka::types::RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((t, e)) => return Err(format!("create topic {t}: {e}")),
        }
    }
    Ok(())
}

/// Starts a thread per configured source. Each stops once `stop` is
/// cancelled, after its commits in flight are answered.
pub fn start(state: &Arc<AppState>, stop: &CancellationToken) -> Vec<std::thread::JoinHandle<()>> {
    let mut threads = Vec::new();
    for src in state.config.kafka.sources.clone() {
        let (st, stop) = (state.clone(), stop.clone());
        let rt = tokio::runtime::Handle::current();
        let name = src.name();
        let spawned = std::thread::Builder::new()
            .name("sealog-kafka".into())
            .spawn(move || {
                let _rt = rt.enter();
                run(&st, &src, &stop, &rt);
            });
        match spawned {
            Ok(t) => threads.push(t),
            Err(e) => {
                tracing::error!(source = %name, cause = %e, "kafka source thread not started");
                state
                    .kafka
                    .set(&name, Some(format!("thread not started: {e}")));
            }
        }
    }
    threads
}

/// Runs one source until `stop`; restarts it after a failure to start.
fn run(
    state: &Arc<AppState>,
    src: &KafkaSource,
    stop: &CancellationToken,
    rt: &tokio::runtime::Handle,
) {
    let name = src.name();
    let mut backoff = Duration::from_millis(200);
    while !stop.is_cancelled() {
        match Source::new(state, src, rt) {
            Ok(mut s) => {
                s.run(stop);
                return;
            }
            Err(e) => {
                state.kafka.set(&name, Some(e));
                sleep_until(stop, backoff);
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        }
    }
}

fn sleep_until(stop: &CancellationToken, d: Duration) {
    let end = Instant::now() + d;
    while !stop.is_cancelled() && Instant::now() < end {
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A commit's answer: still waited for, or known.
enum Reply {
    Waiting(oneshot::Receiver<Result<sealog_journal::Receipt, CommitError>>),
    Done(Result<(), String>),
}

impl Reply {
    /// Takes the answer if it is there (or waits for it when `block`).
    fn poll(&mut self, realm: &str, rt: &tokio::runtime::Handle, block: bool) -> bool {
        let Reply::Waiting(rx) = self else {
            return true;
        };
        let got = if block {
            Some(rt.block_on(rx).map_err(|_| ()))
        } else {
            match rx.try_recv() {
                Ok(v) => Some(Ok(v)),
                Err(oneshot::error::TryRecvError::Empty) => None,
                Err(oneshot::error::TryRecvError::Closed) => Some(Err(())),
            }
        };
        let Some(got) = got else {
            return false;
        };
        *self = Reply::Done(match got {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(format!("commit to realm {realm} failed: {e}")),
            Err(_) => Err(format!("realm {realm} closed before answering")),
        });
        true
    }
}

/// A batch on its way to the journals.
struct Pending {
    /// Answers to wait for, by realm, in commit order.
    replies: Vec<(String, Reply)>,
    /// Next offsets per realm and partition once durable.
    next: Vec<(String, Tp, i64)>,
    /// LogHarbour ids stored, per realm (forgotten if the commit fails).
    ids: Vec<(String, String)>,
    records: u64,
}

/// One running source.
struct Source<'a> {
    state: &'a Arc<AppState>,
    cfg: &'a KafkaSource,
    name: String,
    rt: &'a tokio::runtime::Handle,
    consumer: Arc<BaseConsumer<Ctx>>,
    dlq: Option<BaseProducer<DlqCtx>>,
    /// DLQ topics known to exist.
    dlq_topics: std::collections::HashSet<String>,
    /// Topics another source of the group has (reported once).
    refused_topics: std::collections::HashSet<String>,
    regex: Option<regex::Regex>,
    /// Assigned partitions.
    assigned: Vec<Tp>,
    /// Positions per realm (the source's realm, and realms LogHarbour
    /// tokens name).
    positions: HashMap<String, RealmPositions>,
    in_flight: VecDeque<Pending>,
    last_refresh: Option<Instant>,
    /// Set while the brokers cannot be reached: topics are looked up
    /// again every 2 s, which also tells when they are back.
    unhealthy: bool,
    last_hint: Instant,
    audit_files: Option<convert::AuditFiles>,
}

impl<'a> Source<'a> {
    fn new(
        state: &'a Arc<AppState>,
        cfg: &'a KafkaSource,
        rt: &'a tokio::runtime::Handle,
    ) -> Result<Self, String> {
        let name = cfg.name();
        let regex = cfg
            .topic_regex
            .as_deref()
            .map(|r| regex::Regex::new(&format!("^(?:{r})$")))
            .transpose()
            .map_err(|e| format!("topic regex: {e}"))?;
        let mut cc = client_config(&state.config.kafka);
        cc.set("group.id", &cfg.group_id)
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("enable.partition.eof", "false")
            .set("auto.offset.reset", &cfg.start)
            .set("isolation.level", "read_committed")
            .set("statistics.interval.ms", "1000")
            // librdkafka waits a whole second (its default) before fetching
            // a partition again once its local queue was full: a consumer
            // faster than that would idle most of the time.
            .set("fetch.queue.backoff.ms", "10")
            // A 5 MiB message must be fetched to be refused.
            .set("fetch.message.max.bytes", "1048576")
            .set("receive.message.max.bytes", "104857600")
            .set_log_level(RDKafkaLogLevel::Warning);
        // The operator's own properties win over these defaults.
        for (key, v) in &state.config.kafka.options {
            cc.set(key, v);
        }
        let consumer: BaseConsumer<Ctx> = cc
            .create_with_context(Ctx {
                source: name.clone(),
                broker_error: Mutex::new(None),
                last_logged: Mutex::new(None),
                high: Mutex::new(HashMap::new()),
            })
            .map_err(|e| format!("kafka consumer: {e}"))?;
        let dlq = if cfg.dlq {
            let mut pc = client_config(&state.config.kafka);
            pc.set("acks", "all")
                .set("message.max.bytes", "104857600")
                .set("message.send.max.retries", "3");
            Some(
                pc.create_with_context(DlqCtx {
                    source: name.clone(),
                })
                .map_err(|e| format!("kafka DLQ producer: {e}"))?,
            )
        } else {
            None
        };
        let audit_files = matches!(
            cfg.format,
            KafkaFormat::PalisadeSuccess | KafkaFormat::PalisadeError
        )
        .then(|| {
            crate::audit::error_dir(state).map(|dir| convert::AuditFiles {
                dir,
                max: state.config.audit.error_dir_max_bytes,
                used: state.audit_error_bytes.clone(),
            })
        })
        .transpose()
        .map_err(|e| e.to_string())?;
        Ok(Self {
            state,
            cfg,
            name,
            rt,
            consumer: Arc::new(consumer),
            dlq,
            dlq_topics: Default::default(),
            refused_topics: Default::default(),
            regex,
            assigned: Vec::new(),
            positions: HashMap::new(),
            in_flight: VecDeque::new(),
            last_refresh: None,
            unhealthy: false,
            last_hint: Instant::now(),
            audit_files,
        })
    }

    fn health(&self, problem: Option<String>) {
        self.state.kafka.set(&self.name, problem);
    }

    /// The realm, opened, or why not.
    fn realm(&self, name: &str) -> Result<Arc<RealmHandle>, String> {
        self.state
            .realm(name)
            .map_err(|e| format!("realm {name}: {e}"))
    }

    /// Positions of `realm`, read from its journal on first use.
    fn positions(&mut self, realm: &str) -> Result<&mut RealmPositions, String> {
        if !self.positions.contains_key(realm) {
            let handle = self.realm(realm)?;
            let hint = self.hint_path(realm)?;
            let started = Instant::now();
            let with_ids = self.cfg.format == KafkaFormat::Logharbour;
            let p = positions::load(handle.journal(), &hint, &self.cfg.group_id, with_ids)
                .map_err(|e| format!("realm {realm}: reading positions: {e}"))?;
            tracing::info!(source = %self.name, realm, partitions = p.durable.len(), through = p.through, took_ms = started.elapsed().as_millis() as u64, "kafka positions read from the journal");
            self.positions.insert(realm.to_string(), p);
        }
        self.positions
            .get_mut(realm)
            .ok_or_else(|| "positions vanished".to_string())
    }

    fn hint_path(&self, realm: &str) -> Result<std::path::PathBuf, String> {
        let root = self
            .state
            .data_dir()
            .map_err(|e| e.to_string())?
            .root()
            .to_path_buf();
        Ok(positions::hint_path(
            &root,
            &self.cfg.group_id,
            realm,
            &self.name,
        ))
    }

    /// Looks the topics up again and assigns every partition (new ones
    /// from the journal's position, or `start`).
    fn refresh(&mut self) -> Result<(), String> {
        let md = self
            .consumer
            .fetch_metadata(None, Duration::from_secs(5))
            .map_err(|e| format!("brokers unreachable: {e}"))?;
        let mut want: Vec<Tp> = Vec::new();
        for t in md.topics() {
            let name = t.name();
            if name.starts_with('_') || t.error().is_some() {
                continue;
            }
            let chosen = match &self.regex {
                // A source never reads its own dead letters.
                Some(re) => re.is_match(name) && !(self.cfg.dlq && name.ends_with("_dlq")),
                None => self.cfg.topics.iter().any(|x| x == name),
            };
            if chosen && !self.state.kafka.claim(&self.cfg.group_id, name, &self.name) {
                if self.refused_topics.insert(name.to_string()) {
                    tracing::error!(source = %self.name, topic = name, group = %self.cfg.group_id, "topic left out: another source of this group consumes it (give one of them its own group_id)");
                }
                continue;
            }
            if chosen {
                want.extend(t.partitions().iter().map(|p| (name.to_string(), p.id())));
            }
        }
        want.sort();
        if self.dlq.is_some() {
            let existing: std::collections::HashSet<&str> =
                md.topics().iter().map(|t| t.name()).collect();
            let mut missing: Vec<String> = want
                .iter()
                .map(|(t, _)| format!("{t}_dlq"))
                .filter(|d| !existing.contains(d.as_str()) && !self.dlq_topics.contains(d))
                .collect();
            missing.dedup();
            for d in want.iter().map(|(t, _)| format!("{t}_dlq")) {
                if existing.contains(d.as_str()) {
                    self.dlq_topics.insert(d);
                }
            }
            if !missing.is_empty() {
                self.create_dlq_topics(&missing);
            }
        }
        if self.regex.is_none() {
            let missing: Vec<&String> = self
                .cfg
                .topics
                .iter()
                .filter(|t| !want.iter().any(|(w, _)| w == *t))
                .collect();
            if !missing.is_empty() {
                tracing::debug!(source = %self.name, ?missing, "topics not found yet");
            }
        }
        if want == self.assigned {
            return Ok(());
        }
        let realm = self.cfg.realm.clone();
        let start = if self.cfg.start == "latest" {
            Offset::End
        } else {
            Offset::Beginning
        };
        // `latest` means the end when a partition is first seen, pinned in
        // the journal then: a restart before its first message must not
        // skip what arrived while sealog was down.
        if self.cfg.start == "latest" {
            let fresh: Vec<Tp> = {
                let p = self.positions(&realm)?;
                want.iter()
                    .filter(|tp| !p.submitted.contains_key(*tp))
                    .cloned()
                    .collect()
            };
            for tp in fresh {
                self.pin_end(&realm, &tp)?;
            }
        }
        let p = self.positions(&realm)?;
        let mut tpl = TopicPartitionList::new();
        for tp in &want {
            let off = p.submitted.get(tp).map_or(start, |n| Offset::Offset(*n));
            tpl.add_partition_offset(&tp.0, tp.1, off)
                .map_err(|e| e.to_string())?;
        }
        self.consumer
            .assign(&tpl)
            .map_err(|e| format!("assign: {e}"))?;
        tracing::info!(source = %self.name, partitions = want.len(), from = ?tpl.elements().iter().map(|e| format!("{}/{}@{:?}", e.topic(), e.partition(), e.offset())).collect::<Vec<_>>(), "kafka partitions assigned");
        self.assigned = want;
        Ok(())
    }

    /// Records the partition's current end as its position (a
    /// `kafka_position` record for the offset before it), durably.
    fn pin_end(&mut self, realm: &str, tp: &Tp) -> Result<(), String> {
        let (_, high) = self
            .consumer
            .fetch_watermarks(&tp.0, tp.1, Duration::from_secs(10))
            .map_err(|e| format!("{}/{}: end offset: {e}", tp.0, tp.1))?;
        // Written even for an empty partition (offset -1: next is 0).
        {
            let m = Msg {
                topic: &tp.0,
                partition: tp.1,
                offset: high - 1,
                timestamp_ms: None,
                key: None,
                payload: None,
                request_token: None,
                sealog_token: None,
            };
            let line = convert::position_record(convert::provenance(
                &m,
                &self.cfg.group_id,
                self.cfg.format,
                None,
            ));
            let handle = self.realm(realm)?;
            let (tx, rx) = oneshot::channel();
            let len = line.len();
            let req = CommitRequest {
                buf: line,
                events: vec![(0..len, None)],
                reply: tx,
            };
            self.rt
                .block_on(handle.submit_wait(req))
                .map_err(|_| format!("realm {realm} is closing"))?;
            let mut reply = Reply::Waiting(rx);
            reply.poll(realm, self.rt, true);
            if let Reply::Done(Err(e)) = reply {
                return Err(e);
            }
        }
        let p = self.positions(realm)?;
        p.advance(tp, high);
        p.submitted.insert(tp.clone(), high);
        tracing::info!(source = %self.name, topic = %tp.0, partition = tp.1, at = high, "new partition starts at its end (start = latest)");
        Ok(())
    }

    /// Creates the dead-letter topics that are missing (one partition; a
    /// broker that creates topics itself, or an operator, may have made
    /// them already).
    fn create_dlq_topics(&mut self, names: &[String]) {
        use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
        let admin: Result<AdminClient<rdkafka::client::DefaultClientContext>, _> =
            client_config(&self.state.config.kafka).create();
        let admin = match admin {
            Ok(a) => a,
            Err(e) => {
                tracing::error!(source = %self.name, cause = %e, "kafka admin client not created; dead-letter topics not made");
                return;
            }
        };
        let topics: Vec<NewTopic<'_>> = names
            .iter()
            .map(|n| NewTopic::new(n, 1, TopicReplication::Fixed(1)))
            .collect();
        let opts = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
        match self.rt.block_on(admin.create_topics(&topics, &opts)) {
            Ok(results) => {
                for r in results {
                    match r {
                        Ok(t) => {
                            tracing::info!(source = %self.name, topic = %t, "dead-letter topic created");
                            self.dlq_topics.insert(t);
                        }
                        Err((t, rdkafka::types::RDKafkaErrorCode::TopicAlreadyExists)) => {
                            self.dlq_topics.insert(t);
                        }
                        Err((t, e)) => {
                            tracing::error!(source = %self.name, topic = %t, cause = %e, "dead-letter topic not created")
                        }
                    }
                }
            }
            Err(e) => {
                tracing::error!(source = %self.name, cause = %e, "dead-letter topics not created")
            }
        }
    }

    /// Re-assigns every partition at its durable position: after a failed
    /// commit, what was in flight is read again.
    fn rewind(&mut self) -> Result<(), String> {
        for p in self.positions.values_mut() {
            p.rewind();
        }
        self.assigned.clear();
        self.refresh()
    }

    fn run(&mut self, stop: &CancellationToken) {
        let mut backoff = Duration::from_millis(200);
        let mut lag_at = Instant::now();
        while !stop.is_cancelled() {
            let every = if self.unhealthy {
                Duration::from_secs(2)
            } else {
                Duration::from_secs(self.cfg.refresh_secs)
            };
            let due = self.last_refresh.is_none_or(|t| t.elapsed() >= every);
            if due {
                match self.refresh() {
                    Ok(()) => {
                        self.last_refresh = Some(Instant::now());
                        backoff = Duration::from_millis(200);
                        self.broker_ok();
                    }
                    Err(e) => {
                        self.unhealthy = true;
                        self.last_refresh = Some(Instant::now());
                        self.health(Some(e));
                        metrics::gauge!("sealog_kafka_up", "source" => self.name.clone()).set(0.0);
                        sleep_until(stop, backoff);
                        backoff = (backoff * 2).min(MAX_BACKOFF);
                        continue;
                    }
                }
            }
            if let Err(e) = self.step(stop) {
                self.health(Some(e));
                self.finish_all();
                if let Err(e) = self.rewind() {
                    self.health(Some(e));
                    self.last_refresh = None;
                }
                sleep_until(stop, backoff);
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
            if lag_at.elapsed() >= Duration::from_secs(1) {
                lag_at = Instant::now();
                self.publish_lag();
                if self.last_hint.elapsed() >= HINT_EVERY {
                    self.save_hints();
                }
            }
        }
        self.finish_all();
        self.save_hints();
        tracing::info!(source = %self.name, "kafka source stopped");
    }

    fn broker_ok(&mut self) {
        self.unhealthy = false;
        if let Ok(mut e) = self.consumer.context().broker_error.lock() {
            *e = None;
        }
        self.health(None);
        metrics::gauge!("sealog_kafka_up", "source" => self.name.clone()).set(1.0);
    }

    /// Reads one batch and queues its commits.
    fn step(&mut self, stop: &CancellationToken) -> Result<(), String> {
        self.reap(false)?;
        let linger = Duration::from_millis(self.cfg.linger_ms);
        let started = Instant::now();
        let mut batch = Batch::default();
        // Room for a full batch up front: growing the buffer by doubling
        // copied every record again.
        batch
            .own
            .buf
            .reserve((self.cfg.batch_bytes + self.cfg.batch_records * 192).min(32 << 20));
        batch
            .own
            .events
            .reserve(self.cfg.batch_records.min(1 << 20));
        let (mut n, mut bytes) = (0usize, 0usize);
        let headers_needed = matches!(
            self.cfg.format,
            KafkaFormat::PalisadeSuccess | KafkaFormat::PalisadeError | KafkaFormat::Logharbour
        );
        let consumer = self.consumer.clone();
        let mut wait = Duration::from_millis(100);
        while n < self.cfg.batch_records && bytes < self.cfg.batch_bytes {
            // The clock and the stop flag every 64 messages: reading them
            // for each cost more than the poll.
            if n % 64 == 0 {
                if stop.is_cancelled() {
                    break;
                }
                if n > 0 {
                    wait = linger.saturating_sub(started.elapsed());
                }
            }
            let Some(polled) = consumer.poll(wait) else {
                if n > 0 || started.elapsed() >= Duration::from_millis(100) {
                    break;
                }
                continue;
            };
            let m = match polled {
                Ok(m) => m,
                Err(e) => {
                    // The client context logs errors (at most every 10 s).
                    tracing::debug!(source = %self.name, cause = %e, "kafka consumer error");
                    metrics::counter!("sealog_kafka_errors_total", "source" => self.name.clone())
                        .increment(1);
                    if n == 0 {
                        self.note_broker_error();
                    }
                    break;
                }
            };
            n += 1;
            bytes += m.payload_len();
            let headers = if headers_needed { m.headers() } else { None };
            let last = |name: &str| {
                headers.and_then(|h| {
                    h.iter()
                        .filter(|x| x.key.eq_ignore_ascii_case(name))
                        .last()
                        .and_then(|x| x.value)
                })
            };
            let msg = Msg {
                topic: m.topic(),
                partition: m.partition(),
                offset: m.offset(),
                timestamp_ms: m.timestamp().to_millis(),
                key: m.key(),
                payload: m.payload(),
                request_token: last("x-request-token"),
                sealog_token: last("sealog-token"),
            };
            self.take(&msg, &mut batch)?;
        }
        if n > 0 {
            self.broker_ok();
        } else {
            self.note_broker_error();
        }
        if batch.is_empty() {
            return Ok(());
        }
        self.send(batch, stop)
    }

    fn note_broker_error(&mut self) {
        let e = self
            .consumer
            .context()
            .broker_error
            .lock()
            .ok()
            .and_then(|e| e.clone());
        if let Some(e) = e {
            if e.contains("brokers are down")
                || e.contains("BrokerTransportFailure")
                || e.contains("AllBrokersDown")
            {
                self.unhealthy = true;
                self.health(Some(format!("brokers unreachable: {e}")));
                metrics::gauge!("sealog_kafka_up", "source" => self.name.clone()).set(0.0);
            }
        }
    }

    /// Converts one message into `batch` (or skips it as already stored).
    fn take(&mut self, m: &Msg<'_>, batch: &mut Batch) -> Result<(), String> {
        batch.consumed += 1;
        // The partition's slot in this batch: messages come in runs of one
        // partition, so this is nearly always the last slot used.
        let i = match batch.find(m.topic, m.partition) {
            Some(i) => i,
            None => {
                let tp: Tp = (m.topic.to_string(), m.partition);
                let own = self.cfg.realm.clone();
                let next = self.positions(&own)?.submitted.get(&tp).copied();
                batch.slots.push(Slot {
                    tp,
                    next,
                    last: -1,
                    stored_own: false,
                    own_next: None,
                    marker: None,
                });
                batch.cur = batch.slots.len() - 1;
                batch.cur
            }
        };
        let slot = &mut batch.slots[i];
        if slot.next.is_some_and(|next| m.offset < next) {
            batch.duplicates += 1;
            return Ok(());
        }
        if let Some(next) = slot.next {
            if m.offset > next {
                // Offsets the broker did not deliver: compaction, aborted
                // transactions' markers, or a broker fault. Counted and
                // logged so that a gap is never silent.
                metrics::counter!("sealog_kafka_offset_gaps_total", "source" => self.name.clone())
                    .increment(1);
                metrics::counter!("sealog_kafka_offsets_skipped_total", "source" => self.name.clone())
                    .increment((m.offset - next) as u64);
                tracing::warn!(source = %self.name, topic = %m.topic, partition = m.partition, from = next, to = m.offset - 1, "the broker delivered no message for these offsets (compacted, transaction markers, or a broker fault)");
            }
        }
        slot.next = Some(m.offset + 1);
        let state: &AppState = self.state;
        let token_realm = |t: &str| -> TokenRealm {
            let Ok(table) = state.tokens.read() else {
                return TokenRealm::Refused("token table unavailable");
            };
            match table.find(t) {
                Some(i) if i.scope == sealog_store::Scope::Write => {
                    TokenRealm::Realm(i.realm.clone())
                }
                Some(_) => TokenRealm::Refused("sealog-token is not a write token"),
                None => TokenRealm::Refused("sealog-token is unknown or revoked"),
            }
        };
        let ctx = convert::Ctx {
            format: self.cfg.format,
            group: &self.cfg.group_id,
            success_services: &state.config.audit.success_services,
            audit_files: self.audit_files.as_ref(),
            token_realm: &token_realm,
        };
        let Converted { records, refused } = convert::convert(&ctx, m);
        for why in &refused {
            metrics::counter!("sealog_kafka_refused_total", "source" => self.name.clone(), "reason" => why.reason)
                .increment(1);
            state.metrics.refused(&self.cfg.realm, "kafka_refused", 1);
        }
        if !refused.is_empty() && self.dlq.is_some() {
            // Only the refused parts when the rest was stored (NDJSON
            // lines), else the message as it came.
            let value = if refused.iter().all(|r| r.part.is_some()) {
                Some(
                    refused
                        .iter()
                        .filter_map(|r| r.part.as_deref())
                        .collect::<Vec<_>>()
                        .join(&b'\n'),
                )
            } else {
                m.payload.map(<[u8]>::to_vec)
            };
            batch.dlq.push(DlqEntry {
                topic: format!("{}_dlq", m.topic),
                key: m.key.map(<[u8]>::to_vec),
                value,
                reason: refused
                    .iter()
                    .map(convert::Refusal::dlq_reason)
                    .collect::<Vec<_>>()
                    .join("; "),
                original: (m.topic.to_string(), m.partition),
                offset: m.offset,
            });
        }
        let mut stored_own = false;
        for r in records {
            if r.realm.as_deref().is_none_or(|x| x == self.cfg.realm) {
                if let Some(id) = &r.id {
                    let own = self.cfg.realm.clone();
                    let rp = self.positions(&own)?;
                    if rp.seen_id(id) {
                        metrics::counter!("sealog_kafka_duplicate_ids_total", "source" => self.name.clone())
                            .increment(1);
                        continue;
                    }
                    rp.note_id(id.clone());
                    batch.ids.push((own, id.clone()));
                }
                batch.own.add(&r.line, r.time);
                stored_own = true;
                continue;
            }
            let realm = r.realm.clone().unwrap_or_default();
            // Another realm (a LogHarbour token): its own positions.
            let tp: Tp = (m.topic.to_string(), m.partition);
            let rp = self.positions(&realm)?;
            if rp.submitted.get(&tp).is_some_and(|next| m.offset < *next) {
                batch.duplicates += 1;
                continue;
            }
            if let Some(id) = &r.id {
                if rp.seen_id(id) {
                    metrics::counter!("sealog_kafka_duplicate_ids_total", "source" => self.name.clone())
                        .increment(1);
                    continue;
                }
                rp.note_id(id.clone());
                batch.ids.push((realm.clone(), id.clone()));
            }
            rp.submitted.insert(tp.clone(), m.offset + 1);
            batch.push(&realm, r.line, r.time, &tp, m.offset);
        }
        let slot = &mut batch.slots[i];
        slot.last = m.offset;
        slot.stored_own = stored_own;
        if stored_own {
            slot.own_next = Some(m.offset + 1);
            slot.marker = None;
        } else {
            slot.marker = Some(convert::provenance(
                m,
                &self.cfg.group_id,
                self.cfg.format,
                None,
            ));
        }
        Ok(())
    }

    /// Writes the DLQ copies, then queues the batch: other realms first
    /// and waited for, the source's realm last (its records carry the
    /// position the source resumes from).
    fn send(&mut self, mut batch: Batch, stop: &CancellationToken) -> Result<(), String> {
        if let Some(p) = &self.dlq {
            for d in &batch.dlq {
                let part = d.original.1.to_string();
                let off = d.offset.to_string();
                let headers = rdkafka::message::OwnedHeaders::new()
                    .insert(rdkafka::message::Header {
                        key: "dlq_reason",
                        value: Some(d.reason.as_bytes()),
                    })
                    .insert(rdkafka::message::Header {
                        key: "original_topic",
                        value: Some(d.original.0.as_bytes()),
                    })
                    .insert(rdkafka::message::Header {
                        key: "original_partition",
                        value: Some(part.as_bytes()),
                    })
                    .insert(rdkafka::message::Header {
                        key: "original_offset",
                        value: Some(off.as_bytes()),
                    });
                let mut rec: BaseRecord<'_, Vec<u8>, Vec<u8>> =
                    BaseRecord::to(&d.topic).headers(headers);
                if let Some(k) = &d.key {
                    rec = rec.key(k);
                }
                if let Some(v) = &d.value {
                    rec = rec.payload(v);
                }
                if let Err((e, _)) = p.send(rec) {
                    metrics::counter!("sealog_kafka_dlq_failed_total", "source" => self.name.clone()).increment(1);
                    tracing::error!(source = %self.name, cause = %e, "dead-letter message not queued; its refused record is in the realm");
                }
            }
            if !batch.dlq.is_empty() {
                // At least once on the DLQ: delivered before the offsets
                // are stored.
                if let Err(e) = p.flush(Duration::from_secs(30)) {
                    tracing::error!(source = %self.name, cause = %e, "dead-letter topic not flushed; the refused records are in the realm");
                }
                metrics::counter!("sealog_kafka_dlq_total", "source" => self.name.clone())
                    .increment(batch.dlq.len() as u64);
            }
        }
        let own = self.cfg.realm.clone();
        // What this batch read of each partition is now in flight.
        {
            let p = self.positions(&own)?;
            for slot in &batch.slots {
                if let Some(n) = slot.next {
                    p.submitted.insert(slot.tp.clone(), n);
                }
            }
        }
        metrics::counter!("sealog_kafka_consumed_total", "source" => self.name.clone())
            .increment(batch.consumed);
        if batch.duplicates > 0 {
            metrics::counter!("sealog_kafka_duplicates_total", "source" => self.name.clone())
                .increment(batch.duplicates);
        }
        // Positions in the source's realm for partitions whose last
        // message made no record there.
        for slot in &mut batch.slots {
            if !slot.stored_own {
                if let Some(head) = slot.marker.take() {
                    batch.own.add(&convert::position_record(head), None);
                    slot.own_next = Some(slot.last + 1);
                }
            }
        }
        let own_next: HashMap<Tp, i64> = batch
            .slots
            .iter()
            .filter_map(|s| s.own_next.map(|n| (s.tp.clone(), n)))
            .collect();
        if !batch.own.events.is_empty() {
            let mut part = std::mem::take(&mut batch.own);
            part.next = own_next;
            batch.realms.insert(own.clone(), part);
        }
        let mut others: Vec<String> = batch
            .realms
            .keys()
            .filter(|r| **r != own)
            .cloned()
            .collect();
        others.sort();
        let mut pending = Pending {
            replies: Vec::new(),
            next: Vec::new(),
            ids: std::mem::take(&mut batch.ids),
            records: 0,
        };
        for realm in others.iter().chain(std::iter::once(&own)) {
            let Some(part) = batch.realms.remove(realm) else {
                continue;
            };
            if realm == &own && !others.is_empty() {
                // The other realms' records must be durable before the
                // source's position moves past them.
                for (r, reply) in &mut pending.replies {
                    reply.poll(r, self.rt, true);
                    if let Reply::Done(Err(e)) = reply {
                        let e = e.clone();
                        self.in_flight.push_back(pending);
                        return Err(e);
                    }
                }
            }
            let handle = self.realm(realm)?;
            for (tp, next) in &part.next {
                pending.next.push((realm.clone(), tp.clone(), *next));
            }
            pending.records += part.events.len() as u64;
            let (tx, rx) = oneshot::channel();
            let req = CommitRequest {
                buf: part.buf,
                events: part.events,
                reply: tx,
            };
            if !handle.has_room(req.buf.len()) {
                self.pause(realm);
                let queued = self.rt.block_on(handle.submit_wait(req));
                self.resume();
                if queued.is_err() {
                    self.in_flight.push_back(pending);
                    return Err(format!("realm {realm} is closing"));
                }
            } else {
                match handle.submit(req) {
                    Ok(()) => {}
                    Err(QueueError::Full) => {
                        self.in_flight.push_back(pending);
                        return Err(format!(
                            "realm {realm}: commit queue full; the batch is read again"
                        ));
                    }
                    Err(QueueError::Closed) => {
                        self.in_flight.push_back(pending);
                        return Err(format!("realm {realm} is closing"));
                    }
                }
            }
            pending.replies.push((realm.clone(), Reply::Waiting(rx)));
        }
        let _ = stop;
        self.in_flight.push_back(pending);
        while self.in_flight.len() >= MAX_IN_FLIGHT {
            self.reap(true)?;
        }
        Ok(())
    }

    /// Backpressure: stops fetching every partition while `realm`'s commit
    /// queue is full, instead of buffering without bound.
    fn pause(&mut self, realm: &str) {
        metrics::counter!("sealog_kafka_paused_total", "source" => self.name.clone()).increment(1);
        tracing::debug!(source = %self.name, realm, "commit queue full: partitions paused");
        let _ = self.consumer.pause(&self.assigned_list());
    }

    fn resume(&mut self) {
        let _ = self.consumer.resume(&self.assigned_list());
    }

    fn assigned_list(&self) -> TopicPartitionList {
        let mut tpl = TopicPartitionList::new();
        for (t, p) in &self.assigned {
            tpl.add_partition(t, *p);
        }
        tpl
    }

    /// Answers finished commits, oldest first; with `block`, waits for the
    /// oldest.
    fn reap(&mut self, block: bool) -> Result<(), String> {
        let mut first = true;
        while let Some(front) = self.in_flight.front_mut() {
            let wait = block && first;
            let mut done = true;
            for (realm, reply) in &mut front.replies {
                done &= reply.poll(realm, self.rt, wait);
            }
            if !done {
                return Ok(());
            }
            first = false;
            if let Some(p) = self.in_flight.pop_front() {
                self.complete(p)?;
            }
        }
        Ok(())
    }

    /// Waits for every commit in flight; errors are logged (the caller
    /// rewinds).
    fn finish_all(&mut self) {
        while let Some(p) = self.in_flight.pop_front() {
            if let Err(e) = self.complete(p) {
                tracing::warn!(source = %self.name, cause = %e, "kafka commit failed");
            }
        }
    }

    fn complete(&mut self, p: Pending) -> Result<(), String> {
        let mut failed: Option<String> = None;
        let mut ok_realms = Vec::new();
        for (realm, mut reply) in p.replies {
            reply.poll(&realm, self.rt, true);
            match reply {
                Reply::Done(Ok(())) => ok_realms.push(realm),
                Reply::Done(Err(e)) => {
                    failed.get_or_insert(e);
                }
                Reply::Waiting(_) => {
                    failed.get_or_insert(format!("realm {realm}: no answer"));
                }
            }
        }
        for (realm, tp, next) in &p.next {
            if ok_realms.contains(realm) {
                if let Some(rp) = self.positions.get_mut(realm) {
                    rp.advance(tp, *next);
                }
            }
        }
        for (realm, id) in &p.ids {
            if !ok_realms.contains(realm) {
                if let Some(rp) = self.positions.get_mut(realm) {
                    rp.forget_id(id);
                }
            }
        }
        if let Some(e) = failed {
            return Err(e);
        }
        metrics::counter!("sealog_kafka_records_total", "source" => self.name.clone())
            .increment(p.records);
        // Offsets to the group, for lag monitoring only.
        let own = self.cfg.realm.clone();
        if let Some(rp) = self.positions.get(&own) {
            let mut tpl = TopicPartitionList::new();
            for (realm, tp, _) in &p.next {
                if *realm == own {
                    if let Some(n) = rp.durable.get(tp) {
                        let _ = tpl.add_partition_offset(&tp.0, tp.1, Offset::Offset(*n));
                    }
                }
            }
            if tpl.count() > 0 {
                if let Err(e) = self.consumer.commit(&tpl, CommitMode::Async) {
                    tracing::debug!(source = %self.name, cause = %e, "group offset commit failed (lag monitoring only)");
                }
            }
        }
        Ok(())
    }

    fn publish_lag(&self) {
        let Some(rp) = self.positions.get(&self.cfg.realm) else {
            return;
        };
        let Ok(highs) = self.consumer.context().high.lock().map(|h| h.clone()) else {
            return;
        };
        for tp in &self.assigned {
            if let Some(&high) = highs.get(tp) {
                let at = rp.durable.get(tp).copied().unwrap_or(0);
                metrics::gauge!("sealog_kafka_lag", "source" => self.name.clone(), "topic" => tp.0.clone(), "partition" => tp.1.to_string())
                    .set((high - at).max(0) as f64);
            }
        }
    }

    fn save_hints(&mut self) {
        self.last_hint = Instant::now();
        let realms: Vec<String> = self.positions.keys().cloned().collect();
        for realm in realms {
            let (Ok(path), Ok(handle)) = (self.hint_path(&realm), self.realm(&realm)) else {
                continue;
            };
            let size = *handle.committed().borrow();
            if let Some(p) = self.positions.get_mut(&realm) {
                // Only when nothing is in flight is everything up to the
                // committed size reflected in `durable`.
                if self.in_flight.is_empty() {
                    p.through = size;
                    positions::save_hint(&path, p);
                }
            }
        }
    }
}

/// A DLQ copy waiting to be produced.
struct DlqEntry {
    topic: String,
    key: Option<Vec<u8>>,
    value: Option<Vec<u8>>,
    reason: String,
    original: Tp,
    offset: i64,
}

/// One realm's part of a batch.
#[derive(Default)]
struct Part {
    buf: Vec<u8>,
    events: Vec<(std::ops::Range<usize>, Option<i64>)>,
    next: HashMap<Tp, i64>,
}

/// What a batch read of one partition.
struct Slot {
    tp: Tp,
    /// The next offset expected (None: no position yet).
    next: Option<i64>,
    /// The last offset read.
    last: i64,
    /// Whether the last message made a record in the source's realm.
    stored_own: bool,
    /// One past the last offset with a record in the source's realm.
    own_next: Option<i64>,
    /// The provenance for a position record, when the last message made
    /// none there.
    marker: Option<Vec<u8>>,
}

/// Records read: the source's realm's, and other realms' by name.
#[derive(Default)]
struct Batch {
    own: Part,
    realms: HashMap<String, Part>,
    dlq: Vec<DlqEntry>,
    ids: Vec<(String, String)>,
    slots: Vec<Slot>,
    cur: usize,
    consumed: u64,
    duplicates: u64,
}

impl Part {
    fn add(&mut self, line: &[u8], time: Option<i64>) {
        let start = self.buf.len();
        self.buf.extend_from_slice(line);
        self.events.push((start..self.buf.len(), time));
    }
}

impl Batch {
    fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// The slot of a partition, if this batch has one.
    fn find(&mut self, topic: &str, partition: i32) -> Option<usize> {
        let hit = |s: &Slot| s.tp.1 == partition && s.tp.0 == topic;
        if self.slots.get(self.cur).is_some_and(hit) {
            return Some(self.cur);
        }
        let i = self.slots.iter().position(hit)?;
        self.cur = i;
        Some(i)
    }

    fn push(&mut self, realm: &str, line: Vec<u8>, time: Option<i64>, tp: &Tp, offset: i64) {
        let part = self.realms.entry(realm.to_string()).or_default();
        part.add(&line, time);
        let n = part.next.entry(tp.clone()).or_insert(offset + 1);
        *n = (*n).max(offset + 1);
    }
}
