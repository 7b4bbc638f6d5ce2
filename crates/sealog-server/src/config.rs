//! Server configuration: typed TOML (`--config`), then `SEALOG_*`
//! environment overrides, then command-line flags.

use std::net::SocketAddr;
use std::path::Path;

use serde::{Deserialize, Serialize};

/// The whole server configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Address of the HTTP API.
    pub http: SocketAddr,
    /// Limits on requests and queues.
    pub limits: Limits,
    /// `fsync` (default: a 200 only after the commit is on stable storage)
    /// or `buffered` (no fsync; for tests and comparisons only).
    pub durability: sealog_journal::Durability,
    /// Mojaloop-style length-prefixed TCP listeners.
    pub sidecar: Vec<SidecarListener>,
    /// Syslog over TCP (RFC 6587 octet counting or LF) listeners.
    pub syslog_tcp: Vec<SyslogListener>,
    /// Syslog over UDP listeners.
    pub syslog_udp: Vec<SyslogListener>,
    /// Syslog over TLS (RFC 5425) listeners.
    pub syslog_tls: Vec<SyslogTlsListener>,
    /// The background verifier.
    pub integrity: Integrity,
    /// Delivery to drains and log sessions.
    pub drains: Drains,
    /// The audit service (Palisade's `/api/success` and `/api/error`).
    pub audit: Audit,
    /// Forensic inquiries (Mojaloop central-kms `/inquiry`).
    pub inquiries: Inquiries,
    /// VPC flow-log digests.
    pub digests: Digests,
    /// Kafka sources (logshuttle, Palisade and LogHarbour topics).
    pub kafka: Kafka,
    /// LogHarbour's query functions and web service.
    pub logharbour: Logharbour,
    /// Witnesses that cosign every realm's checkpoints.
    pub witnessing: Witnessing,
}

/// Witnesses that cosign every realm's checkpoints (C2SP tlog-witness):
/// after commits, each realm sends its newest checkpoint with a
/// consistency proof to every witness and keeps the newest checkpoint a
/// quorum of them cosigned; `GET /v1/checkpoint` serves that one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Witnessing {
    /// The witnesses, each `NAME+KEYID+KEY@URL` (the witness's verifier
    /// key, then the prefix its `add-checkpoint` is under).
    pub witnesses: Vec<WitnessTarget>,
    /// Cosignatures a checkpoint needs (0: every witness's).
    pub quorum: usize,
    /// Least milliseconds between two submissions of one realm.
    pub interval_ms: u64,
    /// Seconds a realm's newest records may stay without a quorum of
    /// cosignatures before `/ready` names the realm.
    pub max_lag_secs: u64,
    /// Seconds one request to a witness may take.
    pub timeout_secs: u64,
    /// PEM CA certificates to trust for `https://` witnesses, beside the
    /// system's.
    pub ca_file: Option<std::path::PathBuf>,
}

impl Default for Witnessing {
    fn default() -> Self {
        Self {
            witnesses: Vec::new(),
            quorum: 0,
            interval_ms: 1000,
            max_lag_secs: 300,
            timeout_secs: 10,
            ca_file: None,
        }
    }
}

impl Witnessing {
    /// Cosignatures a checkpoint needs: `quorum`, or every witness's.
    pub fn needed(&self) -> usize {
        if self.quorum == 0 {
            self.witnesses.len()
        } else {
            self.quorum
        }
    }

    /// Checks the settings together.
    ///
    /// # Errors
    /// A quorum above the witnesses given, or one witness named twice.
    pub fn check(&self) -> Result<(), String> {
        if self.quorum > self.witnesses.len() {
            return Err(format!(
                "witness quorum {} is more than the {} witnesses given",
                self.quorum,
                self.witnesses.len()
            ));
        }
        for (i, w) in self.witnesses.iter().enumerate() {
            if self.witnesses[..i]
                .iter()
                .any(|o| o.key.name() == w.key.name())
            {
                return Err(format!("witness {} is given twice", w.key.name()));
            }
        }
        if self.interval_ms == 0 || self.timeout_secs == 0 {
            return Err("witness interval_ms and timeout_secs must be above 0".into());
        }
        Ok(())
    }
}

/// One witness: its verifier key and the URL prefix of its
/// `add-checkpoint`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct WitnessTarget {
    /// The witness's `cosignature/v1` verifier key.
    pub key: sealog_journal::cosignature::CosignatureKey,
    /// `http://` or `https://` prefix, without a final `/`.
    pub url: String,
}

impl std::str::FromStr for WitnessTarget {
    type Err = String;

    /// `NAME+KEYID+KEY@URL`.
    fn from_str(s: &str) -> Result<Self, String> {
        let (key, url) = s
            .split_once('@')
            .ok_or_else(|| format!("witness {s:?} is not NAME+KEYID+KEY@URL"))?;
        let key = key
            .parse()
            .map_err(|e| format!("witness key {key:?}: {e}"))?;
        let url = url.trim_end_matches('/');
        let rest = url
            .strip_prefix("http://")
            .or_else(|| url.strip_prefix("https://"))
            .ok_or_else(|| format!("witness URL {url:?} is not http:// or https://"))?;
        if rest.is_empty() || rest.contains(char::is_whitespace) {
            return Err(format!("witness URL {url:?} has no host or has a space"));
        }
        Ok(Self {
            key,
            url: url.to_string(),
        })
    }
}

impl TryFrom<String> for WitnessTarget {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        s.parse()
    }
}

impl From<WitnessTarget> for String {
    fn from(w: WitnessTarget) -> String {
        format!("{}@{}", w.key, w.url)
    }
}

/// LogHarbour's query functions and web service (`/v1/logs` …,
/// `/api/v1/*`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Logharbour {
    /// A MaxMind DB (GeoLite2-City or GeoIP2-City) that gives unusual IPs
    /// their city, country and location; without it those are null.
    pub geoip_db: Option<std::path::PathBuf>,
    /// Scheduled retention: each policy removes the bodies of records older
    /// than its `days` (keeping their leaf hashes and a signed retention
    /// record), as `sealog retention` does.
    pub retention: Vec<RetentionPolicy>,
    /// Seconds between scheduled retention runs (default 3600).
    pub retention_interval_secs: Option<u64>,
    /// Realms whose `GetSet` block summaries are made in the background as
    /// blocks are committed (`*`: every realm). A realm counted once is
    /// summarized in the background from then on anyway.
    pub summarize_realms: Vec<String>,
    /// Most records a second the background summarizer reads (default
    /// 200,000; 0: no cap).
    pub summarize_records_per_sec: Option<u64>,
}

/// One scheduled retention policy (`[[logharbour.retention]]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetentionPolicy {
    /// The realm, or `*` for every realm.
    pub realm: String,
    /// Remove records older than this many days.
    pub days: u32,
    /// Only entries of this app.
    #[serde(default)]
    pub app: Option<String>,
    /// Only entries of this type (A, C, D).
    #[serde(default, rename = "type")]
    pub typ: Option<String>,
    /// Only entries of exactly this priority.
    #[serde(default)]
    pub priority: Option<String>,
}

impl RetentionPolicy {
    /// The policy as a retention spec.
    ///
    /// # Errors
    /// A message naming the bad value.
    pub fn spec(&self) -> Result<crate::retention::Spec, String> {
        if self.realm != "*" {
            sealog_event::RealmName::new(&self.realm)
                .map_err(|e| format!("realm {:?}: {e}", self.realm))?;
        }
        crate::retention::Spec::new(
            self.days,
            self.app.as_deref(),
            self.typ.as_deref(),
            self.priority.as_deref(),
        )
    }
}

/// The Kafka client and the sources it consumes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Kafka {
    /// Bootstrap brokers, `host:port[,host:port...]`.
    pub brokers: String,
    /// `plaintext` (default), `ssl`, `sasl_plaintext` or `sasl_ssl`.
    pub security_protocol: String,
    /// PEM CA bundle the brokers' certificates are checked against.
    pub ssl_ca_location: Option<std::path::PathBuf>,
    /// PEM client certificate, for brokers that ask for one.
    pub ssl_certificate_location: Option<std::path::PathBuf>,
    /// PEM client key.
    pub ssl_key_location: Option<std::path::PathBuf>,
    /// `PLAIN`, `SCRAM-SHA-256` or `SCRAM-SHA-512`.
    pub sasl_mechanism: Option<String>,
    /// SASL user name.
    pub sasl_username: Option<String>,
    /// SASL password.
    pub sasl_password: Option<String>,
    /// Further librdkafka client properties, passed as they are (for
    /// example `"socket.keepalive.enable" = "true"`).
    pub options: std::collections::BTreeMap<String, String>,
    /// The sources.
    pub sources: Vec<KafkaSource>,
}

impl Default for Kafka {
    fn default() -> Self {
        Self {
            brokers: String::new(),
            security_protocol: "plaintext".into(),
            ssl_ca_location: None,
            ssl_certificate_location: None,
            ssl_key_location: None,
            sasl_mechanism: None,
            sasl_username: None,
            sasl_password: None,
            options: Default::default(),
            sources: Vec::new(),
        }
    }
}

/// How a source's messages are read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum KafkaFormat {
    /// fluentd/Kubernetes `LogSpec` JSON (logshuttle's app topics).
    Logshuttle,
    /// `alamoweblogs` `key=value` router lines.
    LogshuttleWeb,
    /// istio mixer JSON or Envoy ALS `HTTPAccessLogEntry` JSON.
    LogshuttleIstio,
    /// `alamobuildlogs` build log JSON.
    LogshuttleBuild,
    /// Palisade `AuditSuccessMessage` with an `x-request-token` header.
    PalisadeSuccess,
    /// Palisade `AuditErrorMessage` with an `x-request-token` header.
    PalisadeError,
    /// One LogHarbour `LogEntry` JSON per message.
    Logharbour,
    /// One JSON object per line.
    Ndjson,
}

impl KafkaFormat {
    /// Every format, as written in configuration.
    pub const ALL: [(&'static str, KafkaFormat); 8] = [
        ("logshuttle", KafkaFormat::Logshuttle),
        ("logshuttle-web", KafkaFormat::LogshuttleWeb),
        ("logshuttle-istio", KafkaFormat::LogshuttleIstio),
        ("logshuttle-build", KafkaFormat::LogshuttleBuild),
        ("palisade-success", KafkaFormat::PalisadeSuccess),
        ("palisade-error", KafkaFormat::PalisadeError),
        ("logharbour", KafkaFormat::Logharbour),
        ("ndjson", KafkaFormat::Ndjson),
    ];

    /// The name as written in configuration.
    pub fn as_str(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(_, f)| *f == self)
            .map_or("ndjson", |(n, _)| n)
    }
}

impl std::str::FromStr for KafkaFormat {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Self::ALL
            .iter()
            .find(|(n, _)| *n == s)
            .map(|(_, f)| *f)
            .ok_or_else(|| {
                let names: Vec<_> = Self::ALL.iter().map(|(n, _)| *n).collect();
                format!("unknown Kafka format {s:?}; one of {}", names.join(", "))
            })
    }
}

/// One binding of topics to a realm and a format.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KafkaSource {
    /// The realm records go to (LogHarbour messages may name another
    /// with a write token in a `sealog-token` header).
    pub realm: String,
    /// Topic names.
    pub topics: Vec<String>,
    /// Or a regular expression every topic name is matched against in
    /// full, re-checked every `refresh_secs`; topics starting with `_` are
    /// never consumed.
    pub topic_regex: Option<String>,
    /// How messages are read.
    pub format: KafkaFormat,
    /// Consumer group the offsets are committed to (for lag monitoring;
    /// sealog resumes from the offsets in its own journal).
    pub group_id: String,
    /// Where a partition with no record in the realm yet starts:
    /// `earliest` or `latest`.
    pub start: String,
    /// Send messages that cannot be read to `<topic>_dlq` as well (headers
    /// `dlq_reason`, `original_topic`, `original_partition`,
    /// `original_offset`).
    pub dlq: bool,
    /// Most messages in one commit.
    pub batch_records: usize,
    /// Most message bytes in one commit.
    pub batch_bytes: usize,
    /// Longest a batch waits to fill, in milliseconds.
    pub linger_ms: u64,
    /// How often topics and partitions are looked up again, in seconds.
    pub refresh_secs: u64,
}

impl Default for KafkaSource {
    fn default() -> Self {
        Self {
            realm: String::new(),
            topics: Vec::new(),
            topic_regex: None,
            format: KafkaFormat::Ndjson,
            group_id: "sealog".into(),
            start: "earliest".into(),
            dlq: false,
            batch_records: 20_000,
            batch_bytes: 16 << 20,
            linger_ms: 20,
            refresh_secs: 30,
        }
    }
}

impl KafkaSource {
    /// A name for logs, metrics and `/ready`: `realm@topics`.
    pub fn name(&self) -> String {
        match &self.topic_regex {
            Some(r) => format!("{}@/{r}/", self.realm),
            None => format!("{}@{}", self.realm, self.topics.join(",")),
        }
    }
}

/// `REALM@TOPIC:FORMAT`, TOPIC a name, a comma-separated list, or
/// `/regex/`.
impl std::str::FromStr for KafkaSource {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let bad = |why: &str| {
            format!("--kafka-source {s:?}: {why} (want REALM@TOPIC:FORMAT, TOPIC a name, a,b,c or /regex/)")
        };
        let (realm, rest) = s.split_once('@').ok_or_else(|| bad("no @"))?;
        let (topic, format) = rest.rsplit_once(':').ok_or_else(|| bad("no :FORMAT"))?;
        sealog_event::validate_realm_name(realm).map_err(|e| bad(&e.to_string()))?;
        let format: KafkaFormat = format.parse().map_err(|e: String| bad(&e))?;
        let mut src = KafkaSource {
            realm: realm.to_string(),
            format,
            ..Default::default()
        };
        if let Some(re) = topic.strip_prefix('/').and_then(|t| t.strip_suffix('/')) {
            src.topic_regex = Some(re.to_string());
        } else {
            src.topics = topic.split(',').map(str::to_string).collect();
        }
        src.check().map_err(|e| bad(&e))?;
        Ok(src)
    }
}

impl Kafka {
    /// Checks every source, and that no two sources of one group name the
    /// same topic (each would store every message).
    ///
    /// # Errors
    /// What is wrong, in words.
    pub fn check(&self) -> Result<(), String> {
        let mut seen = std::collections::HashMap::new();
        for (i, s) in self.sources.iter().enumerate() {
            s.check()
                .map_err(|e| format!("kafka source {}: {e}", s.name()))?;
            for t in &s.topics {
                if let Some(j) = seen.insert((s.group_id.clone(), t.clone()), i) {
                    return Err(format!(
                        "kafka sources {} and {} both consume topic {t} in group {}: give one its own group_id",
                        self.sources[j].name(),
                        s.name(),
                        s.group_id
                    ));
                }
            }
        }
        if !self.sources.is_empty() && self.brokers.trim().is_empty() {
            return Err(
                "Kafka sources need brokers: pass --kafka BROKERS or set [kafka] brokers".into(),
            );
        }
        Ok(())
    }
}

impl KafkaSource {
    /// Checks the binding.
    ///
    /// # Errors
    /// What is wrong, in words.
    pub fn check(&self) -> Result<(), String> {
        sealog_event::validate_realm_name(&self.realm).map_err(|e| e.to_string())?;
        match (&self.topic_regex, self.topics.is_empty()) {
            (Some(_), false) => return Err("give topics or topic_regex, not both".into()),
            (None, true) => return Err("no topic".into()),
            (Some(r), true) => {
                if r.is_empty() {
                    return Err("empty topic regex".into());
                }
                regex::Regex::new(&format!("^(?:{r})$"))
                    .map_err(|e| format!("topic regex /{r}/: {e}"))?;
            }
            _ => {}
        }
        for t in &self.topics {
            let ok = !t.is_empty()
                && t.len() <= 249
                && t.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
            if !ok {
                return Err(format!(
                    "{t:?} is not a Kafka topic name ([a-zA-Z0-9._-], at most 249)"
                ));
            }
        }
        if self.group_id.is_empty() {
            return Err("empty group_id".into());
        }
        if !matches!(self.start.as_str(), "earliest" | "latest") {
            return Err(format!("start {:?}: earliest or latest", self.start));
        }
        if self.batch_records == 0 || self.batch_bytes == 0 || self.refresh_secs == 0 {
            return Err("batch_records, batch_bytes and refresh_secs must be above 0".into());
        }
        Ok(())
    }
}

/// The audit service: Palisade's message rules and dead-letter directory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Audit {
    /// Services an `AuditSuccessMessage` is accepted from; a success from
    /// any other is kept, marked rejected, and answered `rejected`.
    pub success_services: Vec<String>,
    /// Where bodies that cannot be read as audit messages are written
    /// (`Success-<UTC time>.json`, `Error-<UTC time>.json`); default
    /// `<data>/audit-errors`.
    pub error_dir: Option<std::path::PathBuf>,
    /// Most bytes of bodies kept in the error directory; past it a refused
    /// body is kept only in its dead-letter record (the first 128 KiB and
    /// its SHA-256), and the server logs that the directory is full.
    pub error_dir_max_bytes: u64,
}

impl Default for Audit {
    fn default() -> Self {
        Self {
            success_services: vec!["filtered-resource-service".into(), "data-service".into()],
            error_dir: None,
            error_dir_max_bytes: 1 << 30,
        }
    }
}

/// Forensic inquiries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Inquiries {
    /// An inquiry still checking after this long completes anyway, naming
    /// the commits it did not reach as unverified.
    pub deadline_secs: u64,
    /// Inquiries kept (oldest finished ones are forgotten first).
    pub max_kept: usize,
}

impl Default for Inquiries {
    fn default() -> Self {
        Self {
            deadline_secs: 300,
            max_kept: 1000,
        }
    }
}

/// VPC flow-log digests.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Digests {
    /// Digest jobs run at once; more wait in the queue.
    pub workers: usize,
    /// An in-progress marker older than this is stale: the job is taken
    /// for abandoned and may be queued again (vpcflow-digesterd's
    /// `DIGEST_PROGRESS_TIMEOUT`, here in seconds).
    pub timeout_secs: u64,
}

impl Default for Digests {
    fn default() -> Self {
        Self {
            workers: 2,
            timeout_secs: 600,
        }
    }
}

/// Delivery to drains (syslog and HTTP destinations) and log sessions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Drains {
    /// Most connections open at once to one destination (transport, host
    /// and port) across all drains; logshuttle's `MAX_SYSLOG_CONNECTIONS`.
    pub max_connections_per_destination: usize,
    /// PEM file of CA certificates trusted for `syslog+tls://` and
    /// `https://` besides the system's roots.
    pub ca_file: Option<std::path::PathBuf>,
    /// PEM client certificate chain presented to TLS destinations (with
    /// `client_key`).
    pub client_cert: Option<std::path::PathBuf>,
    /// PEM private key of `client_cert`.
    pub client_key: Option<std::path::PathBuf>,
    /// Largest `syslog+udp://` datagram; a longer packet is cut and counted
    /// (logshuttle's 1024).
    pub udp_max_datagram: usize,
    /// Records read from the journal per delivery batch.
    pub batch_records: usize,
    /// Frames per logplex HTTP POST.
    pub http_max_frames: usize,
    /// Ceiling of the exponential backoff between failed attempts.
    pub max_backoff_secs: u64,
    /// A stream destination (syslog TCP/TLS) has no acknowledgements: records
    /// written to a connection less than this long before it broke are sent
    /// again on the next one, and the persisted cursor stays this far behind.
    pub resend_window_secs: u64,
    /// A write or HTTP request that makes no progress for this long breaks
    /// the connection (and is retried).
    pub write_timeout_secs: u64,
    /// How often a failing drain (its destination refused the records with
    /// an HTTP 4xx) tries its batch again.
    pub failing_retry_secs: u64,
    /// Base URL of this server as log-session clients reach it, for
    /// `logplex_url` (default: from the request's `Host`).
    pub session_url: Option<String>,
    /// How long a log session's id may be used to start reading it.
    pub session_ttl_secs: u64,
    /// A session stream that sends nothing new for this long ends (0:
    /// never), as logshuttle's after 60 s.
    pub session_idle_secs: u64,
    /// Most records a session's `lines` may ask for.
    pub session_max_lines: usize,
}

impl Default for Drains {
    fn default() -> Self {
        Self {
            max_connections_per_destination: 40,
            ca_file: None,
            client_cert: None,
            client_key: None,
            udp_max_datagram: 1024,
            batch_records: 4096,
            http_max_frames: 1000,
            max_backoff_secs: 30,
            resend_window_secs: 10,
            write_timeout_secs: 30,
            failing_retry_secs: 600,
            session_url: None,
            session_ttl_secs: 300,
            session_idle_secs: 60,
            session_max_lines: 10_000,
        }
    }
}

/// The background verifier: it re-hashes every realm's records after start
/// and then every `verify_interval_secs`, and marks a realm failed (503 on
/// its endpoints, named by `/ready`, `sealog_realm_failed` 1) when they do
/// not hash to the realm's signed checkpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Integrity {
    /// Seconds between the end of one pass over all realms and the next
    /// (the first pass starts at once). 0 turns the verifier off.
    pub verify_interval_secs: u64,
    /// Most records re-hashed per second across all realms (0: as fast as
    /// one core allows), to bound the I/O and CPU it takes from ingest.
    pub verify_records_per_sec: u64,
}

impl Default for Integrity {
    fn default() -> Self {
        Self {
            verify_interval_secs: 3600,
            verify_records_per_sec: 0,
        }
    }
}

/// One syslog TLS listener: a syslog listener plus its certificate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SyslogTlsListener {
    /// Address to listen on.
    pub addr: SocketAddr,
    /// Realm, as for [`SyslogListener::realm`].
    #[serde(default)]
    pub realm: Option<String>,
    /// PEM certificate chain.
    pub cert: std::path::PathBuf,
    /// PEM private key.
    pub key: std::path::PathBuf,
    /// Largest message.
    #[serde(default = "default_max_message")]
    pub max_message_bytes: usize,
}

fn default_max_message() -> usize {
    SyslogListener::default().max_message_bytes
}

impl SyslogTlsListener {
    /// The syslog settings shared with plain TCP.
    pub fn syslog(&self) -> SyslogListener {
        SyslogListener {
            addr: self.addr,
            realm: self.realm.clone(),
            max_message_bytes: self.max_message_bytes,
            ..SyslogListener::default()
        }
    }
}

/// One syslog listener (TCP or UDP).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SyslogListener {
    /// Address to listen on.
    pub addr: SocketAddr,
    /// Realm the listener writes to. Without one, each message must carry
    /// `[sealog@32473 token="<write token>"]`.
    pub realm: Option<String>,
    /// Largest message; a larger one closes a TCP connection (what came
    /// before is kept) or is dropped from UDP, and is counted.
    pub max_message_bytes: usize,
    /// TCP connections at once.
    pub max_connections: usize,
    /// Most messages committed together.
    pub batch_records: usize,
}

impl Default for SyslogListener {
    fn default() -> Self {
        Self {
            addr: SocketAddr::from(([127, 0, 0, 1], 6514)),
            realm: None,
            max_message_bytes: 64 * 1024,
            max_connections: 1024,
            batch_records: 4096,
        }
    }
}

impl std::str::FromStr for SyslogListener {
    type Err = String;

    /// `ADDR` or `REALM@ADDR`.
    fn from_str(s: &str) -> Result<Self, String> {
        let l: SidecarListener = s.parse()?;
        Ok(Self {
            addr: l.addr,
            realm: l.realm,
            ..Self::default()
        })
    }
}

/// One sidecar TCP listener.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SidecarListener {
    /// Address to listen on.
    pub addr: SocketAddr,
    /// Realm the listener writes to. Without one, each connection's first
    /// frame must be a hello `{"token": "<write token>"}`.
    pub realm: Option<String>,
    /// Service name added to text messages (`service` field).
    pub service: Option<String>,
    /// Largest frame; a larger length prefix gets an error frame and the
    /// connection is closed (nothing before it is lost).
    pub max_frame_bytes: usize,
    /// Connections at once; more wait in the kernel's accept queue.
    pub max_connections: usize,
    /// Most frames committed together from one connection.
    pub batch_records: usize,
    /// Ack frames queued for a client that is not reading them; beyond it
    /// acks (never records) are dropped and counted.
    pub max_unread_acks: usize,
}

impl Default for SidecarListener {
    fn default() -> Self {
        Self {
            addr: SocketAddr::from(([127, 0, 0, 1], 5678)),
            realm: None,
            service: None,
            max_frame_bytes: 1024 * 1024,
            max_connections: 1024,
            batch_records: 4096,
            max_unread_acks: 1024,
        }
    }
}

impl std::str::FromStr for SidecarListener {
    type Err = String;

    /// `ADDR` or `REALM@ADDR`.
    fn from_str(s: &str) -> Result<Self, String> {
        let (realm, addr) = match s.split_once('@') {
            Some((r, a)) => (Some(r.to_string()), a),
            None => (None, s),
        };
        let addr = addr
            .parse()
            .map_err(|e| format!("{addr:?} is not an address like 127.0.0.1:5678: {e}"))?;
        Ok(Self {
            addr,
            realm,
            ..Self::default()
        })
    }
}

/// Limits on what one request and the server as a whole may hold.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Largest request body, after decompression (413 above it).
    pub max_body_bytes: usize,
    /// Largest single event line (400 names the line above it).
    pub max_line_bytes: usize,
    /// Requests served at once; more are refused with 503.
    pub max_concurrency: usize,
    /// Most ingest body bytes held at once across all requests, from the
    /// moment a body is read until its commit is answered (a gzipped body
    /// is charged `max_body_bytes`). Beyond it: 503 with `Retry-After`.
    pub max_inflight_bytes: usize,
    /// Ingest requests queued per realm for commit; a full queue answers
    /// 503 with `Retry-After`.
    pub commit_queue: usize,
    /// Most event bytes queued per realm (after parsing); above it ingest
    /// answers 503 with `Retry-After`. Bounds memory under a fast sender.
    pub max_queued_bytes: usize,
    /// Most records one group commit takes from the queue.
    pub max_group_records: usize,
    /// Threads that seal batches (leaf lines, hashes, compression), shared
    /// by every realm; 0 = one per core.
    pub seal_threads: usize,
    /// Threads that write, fsync and sign commits, shared by every realm;
    /// 0 = two per core (they mostly wait for the disk).
    pub commit_threads: usize,
    /// Journal file descriptors kept open across all realms; idle files
    /// beyond it are closed and reopened on next use (never one with
    /// unsynced writes).
    pub max_open_files: usize,
    /// Live tail sessions at once.
    pub max_tail_sessions: usize,
    /// Distinct realms labelled in per-realm metrics; the rest are `other`.
    pub metrics_realm_cap: usize,
    /// Ingest requests one realm may have in flight (reading a body or
    /// waiting for its commit); more from that realm answer 503 while
    /// other realms go on. One tenant cannot take every request slot.
    pub max_realm_requests: usize,
    /// Ingest body bytes one realm may hold in flight (its share of
    /// `max_inflight_bytes`; at least `max_body_bytes` is always allowed).
    pub max_realm_inflight_bytes: usize,
    /// HTTP connections open at once; more wait in the kernel's backlog.
    pub max_http_connections: usize,
    /// Seconds a client has to send a request's headers (and, on a
    /// keep-alive connection, to start the next request) before the
    /// connection is closed.
    pub header_timeout_secs: u64,
    /// Seconds an ingest request body may take to arrive, whole: 408.
    pub body_timeout_secs: u64,
    /// Live tail sessions one realm may hold (its share of
    /// `max_tail_sessions`).
    pub max_realm_tail_sessions: usize,
    /// Seconds a sidecar or syslog TCP connection may stay silent before
    /// it is closed (what it sent before is committed).
    pub stream_idle_timeout_secs: u64,
    /// Seconds from accept for a whole sidecar hello, a syslog TLS
    /// handshake, and the first message with a valid token on an unbound
    /// syslog listener.
    pub hello_timeout_secs: u64,
    /// Most bytes of records one query page holds; the page ends early
    /// with `x-sealog-next-cursor` when it would exceed this.
    pub max_page_bytes: usize,
    /// Most bytes of query pages held at once across all requests; beyond
    /// it a query answers 503 with `Retry-After`.
    pub max_query_buffer_bytes: usize,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            http: SocketAddr::from(([127, 0, 0, 1], 7700)),
            limits: Limits::default(),
            durability: sealog_journal::Durability::Fsync,
            sidecar: Vec::new(),
            syslog_tcp: Vec::new(),
            syslog_udp: Vec::new(),
            syslog_tls: Vec::new(),
            integrity: Integrity::default(),
            drains: Drains::default(),
            audit: Audit::default(),
            inquiries: Inquiries::default(),
            digests: Digests::default(),
            kafka: Kafka::default(),
            logharbour: Logharbour::default(),
            witnessing: Witnessing::default(),
        }
    }
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_body_bytes: 16 * 1024 * 1024,
            max_line_bytes: 1024 * 1024,
            max_concurrency: 512,
            max_inflight_bytes: 96 * 1024 * 1024,
            commit_queue: 1024,
            max_queued_bytes: 64 * 1024 * 1024,
            max_group_records: 131_072,
            seal_threads: 0,
            commit_threads: 0,
            max_open_files: 512,
            max_tail_sessions: 256,
            metrics_realm_cap: 100,
            max_realm_requests: 64,
            max_realm_inflight_bytes: 24 * 1024 * 1024,
            max_http_connections: 16_384,
            header_timeout_secs: 10,
            body_timeout_secs: 60,
            max_realm_tail_sessions: 32,
            stream_idle_timeout_secs: 600,
            hello_timeout_secs: 10,
            max_page_bytes: 4 * 1024 * 1024,
            max_query_buffer_bytes: 128 * 1024 * 1024,
        }
    }
}

/// Why the configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("read config {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The file is not valid TOML for this configuration.
    #[error("config {path}: {message}")]
    Parse {
        /// The file.
        path: String,
        /// What is wrong (from the TOML parser, with the line).
        message: String,
    },
    /// An environment override has a bad value.
    #[error("environment variable {name}={value:?}: {reason}")]
    Env {
        /// The variable.
        name: String,
        /// Its value.
        value: String,
        /// What is wrong.
        reason: String,
    },
}

impl Config {
    /// Parses TOML text.
    ///
    /// # Errors
    /// [`ConfigError::Parse`] naming the problem.
    pub fn from_toml(text: &str, path: &str) -> Result<Self, ConfigError> {
        let c: Self = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: path.to_string(),
            message: e.to_string(),
        })?;
        // Brokers may still come from --kafka: checked again once merged.
        let mut k = c.kafka.clone();
        if k.brokers.trim().is_empty() {
            k.brokers = "-".into();
        }
        k.check().map_err(|message| ConfigError::Parse {
            path: path.to_string(),
            message,
        })?;
        for p in &c.logharbour.retention {
            p.spec().map_err(|e| ConfigError::Parse {
                path: path.to_string(),
                message: format!("[[logharbour.retention]] for realm {:?}: {e}", p.realm),
            })?;
        }
        if c.logharbour.retention_interval_secs == Some(0) {
            return Err(ConfigError::Parse {
                path: path.to_string(),
                message: "logharbour.retention_interval_secs must be at least 1".into(),
            });
        }
        Ok(c)
    }

    /// Loads `path`, or the defaults when `None`, then applies `SEALOG_*`
    /// environment overrides (`SEALOG_HTTP`, `SEALOG_DURABILITY`,
    /// `SEALOG_MAX_BODY_BYTES`, `SEALOG_COMMIT_QUEUE`).
    ///
    /// # Errors
    /// Unreadable or invalid file; bad override values.
    pub fn load(path: Option<&Path>) -> Result<Self, ConfigError> {
        let mut c = match path {
            Some(p) => {
                let text = std::fs::read_to_string(p).map_err(|e| ConfigError::Read {
                    path: p.display().to_string(),
                    source: e,
                })?;
                Self::from_toml(&text, &p.display().to_string())?
            }
            None => Self::default(),
        };
        c.apply_env(|k| std::env::var(k).ok())?;
        Ok(c)
    }

    /// Applies overrides read through `get`.
    ///
    /// # Errors
    /// [`ConfigError::Env`] for a value that does not parse.
    pub fn apply_env(&mut self, get: impl Fn(&str) -> Option<String>) -> Result<(), ConfigError> {
        fn parse<T: std::str::FromStr>(name: &str, v: String) -> Result<T, ConfigError>
        where
            T::Err: std::fmt::Display,
        {
            v.parse().map_err(|e: T::Err| ConfigError::Env {
                name: name.into(),
                value: v.clone(),
                reason: e.to_string(),
            })
        }
        if let Some(v) = get("SEALOG_HTTP") {
            self.http = parse("SEALOG_HTTP", v)?;
        }
        if let Some(v) = get("SEALOG_DURABILITY") {
            self.durability = match v.as_str() {
                "fsync" => sealog_journal::Durability::Fsync,
                "buffered" => sealog_journal::Durability::Buffered,
                _ => {
                    return Err(ConfigError::Env {
                        name: "SEALOG_DURABILITY".into(),
                        value: v,
                        reason: "expected fsync or buffered".into(),
                    })
                }
            };
        }
        if let Some(v) = get("SEALOG_MAX_BODY_BYTES") {
            self.limits.max_body_bytes = parse("SEALOG_MAX_BODY_BYTES", v)?;
        }
        if let Some(v) = get("SEALOG_COMMIT_QUEUE") {
            self.limits.commit_queue = parse("SEALOG_COMMIT_QUEUE", v)?;
        }
        if let Some(v) = get("SEALOG_VERIFY_INTERVAL_SECS") {
            self.integrity.verify_interval_secs = parse("SEALOG_VERIFY_INTERVAL_SECS", v)?;
        }
        if let Some(v) = get("SEALOG_VERIFY_RECORDS_PER_SEC") {
            self.integrity.verify_records_per_sec = parse("SEALOG_VERIFY_RECORDS_PER_SEC", v)?;
        }
        // logshuttle's variables: MAX_SYSLOG_CONNECTIONS (1..=1024; logshuttle
        // fell back to 40 silently, sealog says what is wrong) and SESSION_URL.
        if let Some(v) = get("MAX_SYSLOG_CONNECTIONS") {
            let n: usize = parse("MAX_SYSLOG_CONNECTIONS", v.clone())?;
            if !(1..=1024).contains(&n) {
                return Err(ConfigError::Env {
                    name: "MAX_SYSLOG_CONNECTIONS".into(),
                    value: v,
                    reason: "expected 1 to 1024".into(),
                });
            }
            self.drains.max_connections_per_destination = n;
        }
        if let Some(v) = get("SESSION_URL") {
            self.drains.session_url = Some(v);
        }
        // vpcflow-digesterd's DIGEST_PROGRESS_TIMEOUT, in milliseconds.
        if let Some(v) = get("DIGEST_PROGRESS_TIMEOUT") {
            let ms: u64 = parse("DIGEST_PROGRESS_TIMEOUT", v)?;
            self.digests.timeout_secs = ms.div_ceil(1000).max(1);
        }
        // The Mojaloop sidecar's variables: SIDE_PORT opens (or moves) a
        // sidecar listener on 127.0.0.1, SIDE_SERVICE names the service,
        // SIDE_BATCH_SIZE caps frames per commit, SIDE_REALM binds a realm.
        let side = ["SIDE_PORT", "SIDE_SERVICE", "SIDE_BATCH_SIZE", "SIDE_REALM"].map(&get);
        if side.iter().any(Option::is_some) {
            if self.sidecar.is_empty() {
                self.sidecar.push(SidecarListener::default());
            }
            let l = &mut self.sidecar[0];
            let [port, service, batch, realm] = side;
            if let Some(v) = port {
                let port: u16 = parse("SIDE_PORT", v)?;
                l.addr = SocketAddr::from(([127, 0, 0, 1], port));
            }
            if let Some(v) = service {
                l.service = Some(v);
            }
            if let Some(v) = batch {
                l.batch_records = parse("SIDE_BATCH_SIZE", v)?;
            }
            if let Some(v) = realm {
                l.realm = Some(v);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn example_config_loads() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../sealog.example.toml");
        let c = Config::load(Some(&path)).expect("example config is valid");
        assert_eq!(c.http, "127.0.0.1:7700".parse().expect("addr"));
        assert_eq!(c.limits.max_body_bytes, 16 * 1024 * 1024);
    }

    #[test]
    fn unknown_fields_and_bad_env_are_refused() {
        let e = Config::from_toml("htp = \"1.2.3.4:1\"", "x.toml").expect_err("typo");
        assert!(e.to_string().contains("unknown field"), "{e}");
        let mut c = Config::default();
        let e = c
            .apply_env(|k| (k == "SEALOG_HTTP").then(|| "nowhere".to_string()))
            .expect_err("bad addr");
        assert!(e.to_string().contains("SEALOG_HTTP"), "{e}");
        c.apply_env(|k| (k == "SEALOG_COMMIT_QUEUE").then(|| "7".to_string()))
            .expect("ok");
        assert_eq!(c.limits.commit_queue, 7);
        c.apply_env(|k| match k {
            "SIDE_PORT" => Some("5999".into()),
            "SIDE_SERVICE" => Some("central-ledger".into()),
            "SIDE_BATCH_SIZE" => Some("64".into()),
            _ => None,
        })
        .expect("ok");
        assert_eq!(c.sidecar[0].addr, "127.0.0.1:5999".parse().expect("addr"));
        assert_eq!(c.sidecar[0].service.as_deref(), Some("central-ledger"));
        assert_eq!(c.sidecar[0].batch_records, 64);
        let l: SidecarListener = "payments@127.0.0.1:7000".parse().expect("realm@addr");
        assert_eq!(l.realm.as_deref(), Some("payments"));
        assert!("nowhere".parse::<SidecarListener>().is_err());
    }
}
