//! The Kafka writer (feature `kafka`): one JSON line per message, as
//! LogHarbour's Kafka writer sends them, for sealog's Kafka source with
//! `format = "logharbour"`.

use std::io::{BufRead as _, Write as _};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rdkafka::config::ClientConfig;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{BaseRecord, DeliveryResult, Producer, ProducerContext, ThreadedProducer};
use rdkafka::ClientContext;
use rdkafka::Message as _;

use crate::Writer;

/// How a [`KafkaWriter`] produces.
///
/// ```
/// let cfg = sealog_client::KafkaConfig::new("127.0.0.1:9092", "log_topic", "fallback.ndjson");
/// assert_eq!(cfg.topic, "log_topic");
/// ```
#[derive(Debug, Clone)]
pub struct KafkaConfig {
    /// Bootstrap brokers, `host:port[,host:port...]`.
    pub brokers: String,
    /// The topic (LogHarbour's default was `log_topic`).
    pub topic: String,
    /// Messages the brokers did not take are appended here, and produced
    /// again by [`KafkaWriter::replay`] (called at start).
    pub fallback: PathBuf,
    /// More librdkafka settings (`acks`, `compression.type`, TLS, SASL …);
    /// they win over the defaults (`acks=all`, idempotence on).
    pub options: Vec<(String, String)>,
}

impl KafkaConfig {
    /// A config for `topic` on `brokers`.
    ///
    /// ```
    /// let cfg = sealog_client::KafkaConfig::new("b:9092", "t", "f");
    /// assert!(cfg.options.is_empty());
    /// ```
    pub fn new(
        brokers: impl Into<String>,
        topic: impl Into<String>,
        fallback: impl Into<PathBuf>,
    ) -> KafkaConfig {
        KafkaConfig {
            brokers: brokers.into(),
            topic: topic.into(),
            fallback: fallback.into(),
            options: Vec::new(),
        }
    }
}

/// Counts of a [`KafkaWriter`].
///
/// ```
/// let s = sealog_client::KafkaStats::default();
/// assert_eq!((s.delivered, s.to_fallback), (0, 0));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KafkaStats {
    /// Messages the brokers acknowledged.
    pub delivered: u64,
    /// Messages written to the fallback file.
    pub to_fallback: u64,
}

struct Ctx {
    fallback: PathBuf,
    stats: Arc<Mutex<KafkaStats>>,
}

impl ClientContext for Ctx {}

impl ProducerContext for Ctx {
    type DeliveryOpaque = ();
    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        match result {
            Ok(_) => {
                if let Ok(mut s) = self.stats.lock() {
                    s.delivered += 1;
                }
            }
            Err((e, msg)) => {
                eprintln!(
                    "sealog-client: a message was not delivered ({e}); kept in the fallback file"
                );
                append(
                    &self.fallback,
                    msg.payload().unwrap_or_default(),
                    &self.stats,
                );
            }
        }
    }
}

fn append(path: &PathBuf, line: &[u8], stats: &Mutex<KafkaStats>) {
    let r = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .and_then(|mut f| {
            let mut buf = line.to_vec();
            if !buf.ends_with(b"\n") {
                buf.push(b'\n');
            }
            f.write_all(&buf)
        });
    match r {
        Ok(()) => {
            if let Ok(mut s) = stats.lock() {
                s.to_fallback += 1;
            }
        }
        Err(e) => eprintln!(
            "sealog-client: an entry was lost: {} is not writable: {e}",
            path.display()
        ),
    }
}

/// Produces each entry as one Kafka message (no key), as LogHarbour's
/// `KafkaWriter`. Delivery is asynchronous; a message the brokers refuse or
/// that times out (`message.timeout.ms`) goes to the fallback file.
///
/// ```no_run
/// use std::sync::Arc;
/// use sealog_client::{KafkaConfig, KafkaWriter, Logger, LoggerContext, Priority};
/// let w = Arc::new(KafkaWriter::start(KafkaConfig::new("127.0.0.1:9092", "log_topic", "fb.ndjson")).unwrap());
/// Logger::new(&LoggerContext::new(Priority::Info), "shop", w.clone()).log("started");
/// w.flush(std::time::Duration::from_secs(10));
/// ```
pub struct KafkaWriter {
    producer: ThreadedProducer<Ctx>,
    cfg: KafkaConfig,
    stats: Arc<Mutex<KafkaStats>>,
}

impl std::fmt::Debug for KafkaWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaWriter")
            .field("brokers", &self.cfg.brokers)
            .field("topic", &self.cfg.topic)
            .finish()
    }
}

impl KafkaWriter {
    /// Starts the producer and replays the fallback file.
    ///
    /// # Errors
    /// A bad setting.
    ///
    /// ```no_run
    /// let w = sealog_client::KafkaWriter::start(sealog_client::KafkaConfig::new("b:9092", "t", "f")).unwrap();
    /// ```
    pub fn start(cfg: KafkaConfig) -> Result<KafkaWriter, KafkaError> {
        let mut c = ClientConfig::new();
        c.set("bootstrap.servers", &cfg.brokers)
            .set("acks", "all")
            .set("enable.idempotence", "true")
            .set("client.id", "sealog-client");
        for (k, v) in &cfg.options {
            c.set(k, v);
        }
        let stats = Arc::new(Mutex::new(KafkaStats::default()));
        let producer = c.create_with_context(Ctx {
            fallback: cfg.fallback.clone(),
            stats: stats.clone(),
        })?;
        let w = KafkaWriter {
            producer,
            cfg,
            stats,
        };
        w.replay();
        Ok(w)
    }

    /// Produces the fallback file's entries again and removes the file.
    /// (Those that fail again go back into it.)
    ///
    /// ```no_run
    /// # let w = sealog_client::KafkaWriter::start(sealog_client::KafkaConfig::new("b:9092", "t", "f")).unwrap();
    /// w.replay();
    /// ```
    pub fn replay(&self) {
        // Moved aside first, so deliveries failing meanwhile (appended to
        // the fallback file by the producer's thread) are not lost.
        let path = &self.cfg.fallback;
        let mut aside = path.clone().into_os_string();
        aside.push(".replaying");
        let aside = PathBuf::from(aside);
        if !aside.exists() && std::fs::rename(path, &aside).is_err() {
            return;
        }
        let Ok(f) = std::fs::File::open(&aside) else {
            return;
        };
        let mut lines = Vec::new();
        for l in std::io::BufReader::new(f).split(b'\n') {
            match l {
                Ok(l) if !l.iter().all(u8::is_ascii_whitespace) => lines.push(l),
                Ok(_) => {}
                // Unreadable: keep the file for the next attempt.
                Err(e) => {
                    eprintln!("sealog-client: cannot read {}: {e}", aside.display());
                    return;
                }
            }
        }
        for mut l in lines {
            l.push(b'\n');
            self.write(&l);
        }
        // Each line is now queued again (or back in the fallback file).
        let _ = std::fs::remove_file(&aside);
    }

    /// Waits up to `within` for every message to be delivered (or put in
    /// the fallback file).
    ///
    /// ```no_run
    /// # let w = sealog_client::KafkaWriter::start(sealog_client::KafkaConfig::new("b:9092", "t", "f")).unwrap();
    /// w.flush(std::time::Duration::from_secs(5));
    /// ```
    pub fn flush(&self, within: Duration) {
        let _ = self.producer.flush(within);
    }

    /// Counts so far.
    ///
    /// ```no_run
    /// # let w = sealog_client::KafkaWriter::start(sealog_client::KafkaConfig::new("b:9092", "t", "f")).unwrap();
    /// println!("{:?}", w.stats());
    /// ```
    pub fn stats(&self) -> KafkaStats {
        self.stats.lock().map(|s| s.clone()).unwrap_or_default()
    }
}

impl Drop for KafkaWriter {
    fn drop(&mut self) {
        let _ = self.producer.flush(Duration::from_secs(10));
    }
}

impl Writer for KafkaWriter {
    fn write(&self, line: &[u8]) {
        let mut tries = 0;
        loop {
            let record: BaseRecord<'_, (), [u8]> = BaseRecord::to(&self.cfg.topic).payload(line);
            match self.producer.send(record) {
                Ok(()) => return,
                // The local queue is full: let it drain a little.
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _))
                    if tries < 50 =>
                {
                    tries += 1;
                    std::thread::sleep(Duration::from_millis(20));
                }
                Err((e, _)) => {
                    eprintln!("sealog-client: not produced ({e}); kept in the fallback file");
                    append(&self.cfg.fallback, line, &self.stats);
                    return;
                }
            }
        }
    }
}
