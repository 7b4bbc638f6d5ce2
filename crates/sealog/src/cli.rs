//! Command-line arguments (clap derive; the doc comments are the help).

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};
use sealog_event::RealmName;

/// sealog: a forensic log and audit hub. Every realm is a verifiable Merkle
/// log with signed checkpoints.
///
/// Exit codes: 0 ok, 1 verification failed, 2 usage or input error.
#[derive(Debug, Parser)]
#[command(name = "sealog", version)]
pub struct Cli {
    /// Data directory.
    #[arg(
        long,
        global = true,
        env = "SEALOG_DATA",
        default_value = "./sealog-data"
    )]
    pub data: PathBuf,
    /// Talk to this server's API instead of opening the data directory
    /// (used automatically when a running server holds the directory).
    #[arg(long, global = true, env = "SEALOG_URL")]
    pub url: Option<String>,
    /// Bearer token for --url: admin for realm, token and verify commands;
    /// the realm's write token for ingest; its query token for query and
    /// checkpoint. Defaults to <data>/admin.token, which is only ever sent
    /// to the server recorded in <data>/server.json.
    #[arg(long, global = true, env = "SEALOG_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// Use this PostgreSQL store (a `postgresql://` URL or `key=value`
    /// string) instead of the data directory: realm, token, query, grep,
    /// checkpoint, verify and export.
    #[arg(long, global = true, env = "SEALOG_POSTGRES", hide_env_values = true)]
    pub postgres: Option<String>,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// `sealog import`.
#[derive(Debug, Subcommand)]
pub enum ImportCmd {
    /// AWS VPC flow logs (version 2): files or directories (AWS's
    /// `AWSLogs/<account>/vpcflowlogs/...` layout), `.log.gz` or plain. Each
    /// line becomes a record of kind `flow`; the header and NODATA/SKIPDATA
    /// lines are skipped and counted; a bad line is reported with its file
    /// and number and skipped (exit 1 at the end), never aborting the import.
    Vpcflow {
        /// The realm.
        #[arg(long)]
        realm: RealmName,
        /// Files or directories.
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        /// Records per commit.
        #[arg(long, default_value_t = 65_536)]
        batch: usize,
    },
}

/// `sealog digest`.
#[derive(Debug, Subcommand)]
pub enum DigestCmd {
    /// Recompute a digest from the records it names, offline (the server
    /// stopped): the input must match its signed checkpoint and the bytes
    /// the stored digest. Exit 1 naming the difference otherwise.
    Verify {
        /// The realm.
        #[arg(long)]
        realm: RealmName,
        /// Window start, as the digest was asked for (RFC 3339).
        #[arg(long)]
        start: String,
        /// Window stop (RFC 3339).
        #[arg(long)]
        stop: String,
    },
}

/// A node's role (`sealog serve --role`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Role {
    /// The single-node server.
    All,
    /// A cluster ingest node.
    Ingest,
    /// A cluster writer.
    Writer,
    /// A cluster query node.
    Query,
}

/// Top-level commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server: the HTTP API over the embedded journal. Needs no
    /// other service. SIGTERM or SIGINT stop it gracefully.
    Serve {
        /// TOML configuration file (see sealog.example.toml).
        #[arg(long)]
        config: Option<PathBuf>,
        /// HTTP API address (default 127.0.0.1:7700).
        #[arg(long)]
        http: Option<std::net::SocketAddr>,
        /// A sidecar TCP listener: ADDR (hello frame with a write token
        /// required) or REALM@ADDR. Repeatable; adds to the config file's.
        #[arg(long)]
        sidecar: Vec<sealog_server::config::SidecarListener>,
        /// A syslog TCP listener (octet counting or LF): ADDR or REALM@ADDR.
        /// Without a realm each message needs [sealog@32473 token="..."].
        #[arg(long)]
        syslog_tcp: Vec<sealog_server::config::SyslogListener>,
        /// A syslog UDP listener: ADDR or REALM@ADDR.
        #[arg(long)]
        syslog_udp: Vec<sealog_server::config::SyslogListener>,
        /// A syslog TLS listener (RFC 5425): ADDR or REALM@ADDR; needs
        /// --tls-cert and --tls-key.
        #[arg(long, requires_all = ["tls_cert", "tls_key"])]
        syslog_tls: Option<sealog_server::config::SyslogListener>,
        /// PEM certificate chain for --syslog-tls.
        #[arg(long)]
        tls_cert: Option<PathBuf>,
        /// PEM private key for --syslog-tls.
        #[arg(long)]
        tls_key: Option<PathBuf>,
        /// Where audit bodies that are not messages are written (default
        /// `<data>/audit-errors`; overrides `[audit] error_dir`).
        #[arg(long)]
        audit_error_dir: Option<PathBuf>,
        /// A MaxMind DB (GeoLite2-City) for the city, country and location
        /// of unusual IPs (overrides `[logharbour] geoip_db`).
        #[arg(long, value_name = "FILE")]
        geoip_db: Option<PathBuf>,
        /// Kafka bootstrap brokers for --kafka-source (overrides
        /// `[kafka] brokers`), and the cluster's bus for --role.
        #[arg(long, value_name = "BROKERS")]
        kafka: Option<String>,
        /// What this node does: `all` (the single-node server on the data
        /// directory, the default); in a cluster over --kafka and the
        /// global --postgres, `ingest` (takes batches, answers with
        /// receipts once written), `writer` (owns realms' logs) or `query`
        /// (queries and proofs from PostgreSQL).
        #[arg(long, value_enum, default_value = "all")]
        role: Role,
        /// The cluster's ingest topic.
        #[arg(long, default_value = "sealog.ingest")]
        topic: String,
        /// This node's name in a cluster (default: role and process id).
        #[arg(long)]
        node: Option<String>,
        /// Seconds an ingest node waits for a writer's receipt before
        /// answering 503.
        #[arg(long, default_value_t = 10)]
        receipt_timeout_secs: u64,
        /// A Kafka source: REALM@TOPIC:FORMAT, TOPIC a name, a,b,c or
        /// /regex/; FORMAT logshuttle, logshuttle-web, logshuttle-istio,
        /// logshuttle-build, palisade-success, palisade-error, logharbour or
        /// ndjson. Repeatable; adds to the config file's.
        #[arg(long, value_name = "REALM@TOPIC:FORMAT")]
        kafka_source: Vec<sealog_server::config::KafkaSource>,
        /// A witness that cosigns every realm's checkpoints (C2SP
        /// tlog-witness): its verifier key, then the URL prefix of its
        /// add-checkpoint. Repeatable; adds to `[witnessing] witnesses`.
        #[arg(long, value_name = "NAME+KEYID+KEY@URL")]
        witness: Vec<sealog_server::config::WitnessTarget>,
        /// Cosignatures a checkpoint needs before GET /v1/checkpoint serves
        /// it (default: every witness's).
        #[arg(long, value_name = "N")]
        witness_quorum: Option<usize>,
        /// Least time between two submissions of one realm's checkpoint to
        /// the witnesses, e.g. 500ms, 2s (default 1s).
        #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
        witness_interval: Option<std::time::Duration>,
        /// How long a realm's newest records may go without a quorum of
        /// cosignatures before /ready names the realm, e.g. 30s, 5m
        /// (default 5m).
        #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
        witness_max_lag: Option<std::time::Duration>,
    },
    /// Create and list realms.
    #[command(subcommand)]
    Realm(RealmCmd),
    /// Issue, list and revoke tokens.
    #[command(subcommand)]
    Token(TokenCmd),
    /// Append NDJSON events to a realm without a server; prints the receipt.
    ///
    /// The whole input is validated first: one bad line refuses it all
    /// (exit 2, each bad line's number and reason) and nothing is appended.
    Ingest {
        /// The realm.
        #[arg(long)]
        realm: RealmName,
        /// NDJSON file, or - for standard input.
        #[arg(default_value = "-")]
        input: String,
        /// Records per commit (each commit is fsynced and signed).
        #[arg(long, default_value_t = 65_536)]
        batch: usize,
        /// Append the receipt of every commit to this file as it happens.
        #[arg(long)]
        receipts_out: Option<PathBuf>,
    },
    /// Print a realm's records that match, as stored leaf lines.
    Query {
        /// The realm.
        #[arg(long)]
        realm: RealmName,
        /// Records filed at or after this time (RFC 3339).
        #[arg(long)]
        from: Option<String>,
        /// Records filed before this time (RFC 3339).
        #[arg(long)]
        to: Option<String>,
        /// Records whose line contains this text.
        #[arg(long)]
        q: Option<String>,
        /// Records whose field equals a value: key=value (dots descend). Repeatable.
        #[arg(long = "where")]
        wheres: Vec<String>,
        /// At most this many records.
        #[arg(long)]
        limit: Option<u64>,
        /// Newest first.
        #[arg(long)]
        newest: bool,
    },
    /// Copy a realm's log between the data directory and PostgreSQL (the
    /// scale-out store), either way, byte for byte with the checkpoints it
    /// was signed with: the source is verified first, each commit is
    /// checked against its checkpoint, the copy is verified after. Run it
    /// again to copy what was committed since.
    Migrate {
        /// The realm.
        #[arg(long)]
        realm: RealmName,
        /// The PostgreSQL store to copy into.
        #[arg(
            long,
            env = "SEALOG_MIGRATE_TO",
            hide_env_values = true,
            conflicts_with = "from_postgres",
            required_unless_present = "from_postgres"
        )]
        to_postgres: Option<String>,
        /// The PostgreSQL store to copy from, into the data directory (the
        /// realm keeps its key; new tokens are printed).
        #[arg(long, env = "SEALOG_MIGRATE_FROM", hide_env_values = true)]
        from_postgres: Option<String>,
    },
    /// Print the realm's latest signed checkpoint (C2SP signed note).
    Checkpoint {
        /// The realm.
        #[arg(long)]
        realm: RealmName,
    },
    /// Verify every record, checkpoint and stored hash of a realm; with
    /// checkpoints or receipts a client kept, prove nothing they cover changed.
    Verify {
        /// The realm.
        #[arg(long)]
        realm: RealmName,
        /// A signed checkpoint note a client kept. Repeatable.
        #[arg(long)]
        checkpoint: Vec<PathBuf>,
        /// Receipts a client kept: JSON objects, one per line.
        #[arg(long)]
        receipts: Vec<PathBuf>,
        /// Verifier key to trust instead of the one in the data directory.
        #[arg(long)]
        key: Option<String>,
        /// A witness's verifier key (`NAME+KEYID+KEY`). With it, every
        /// --checkpoint and the realm's newest cosigned checkpoint must
        /// carry a quorum of these witnesses' cosignatures, and that
        /// checkpoint must cover every record the realm committed.
        /// Repeatable.
        #[arg(long, value_name = "NAME+KEYID+KEY")]
        witness: Vec<String>,
        /// Cosignatures needed (default: every --witness's).
        #[arg(long, value_name = "N", requires = "witness")]
        witness_quorum: Option<usize>,
    },
    /// Remove the bodies of old records, verifiably (LogHarbour's cleanup).
    ///
    /// The bodies of matching records older than --days are removed; what
    /// the Merkle tree needs of them stays (32 bytes per up to 256 records),
    /// with a retention record signed by the realm's key, so every
    /// checkpoint and proof still verifies and `sealog verify` reports the
    /// ranges as retained out. Without --force it counts first
    /// and asks (on a terminal; elsewhere it refuses).
    Retention {
        /// The realm.
        #[arg(long)]
        realm: RealmName,
        /// Remove records older than this many days (required: no default
        /// for a command that deletes).
        #[arg(long, env = "RETENTION_DAYS")]
        days: u32,
        /// Only entries of this app.
        #[arg(long)]
        app: Option<String>,
        /// Only entries of this LogHarbour type (A, C, D).
        #[arg(long = "type")]
        typ: Option<String>,
        /// Only entries of exactly this priority (Debug2 … Sec).
        #[arg(long)]
        priority: Option<String>,
        /// Only count what would be removed.
        #[arg(long)]
        dry_run: bool,
        /// Do not ask before removing.
        #[arg(long)]
        force: bool,
    },
    /// Write a slice of a realm with its proof, verifiable offline.
    Export {
        /// The realm.
        #[arg(long)]
        realm: RealmName,
        /// First seq (default 0, or just after the last record retention
        /// removed: a bundle carries bodies).
        #[arg(long)]
        from_seq: Option<u64>,
        /// Last seq, inclusive (default: the newest).
        #[arg(long)]
        to_seq: Option<u64>,
        /// Bundle file to write.
        #[arg(long)]
        out: PathBuf,
    },
    /// A transparency-log witness (C2SP tlog-witness): cosigns a log's
    /// checkpoints only when they extend the last one it cosigned, so not
    /// even the log's operator can show two histories. Prints its verifier
    /// key at start; `sealog witness --data DIR key` prints it again.
    Witness(WitnessArgs),
    /// Verify an export bundle with only the realm's public key.
    VerifyBundle {
        /// The bundle.
        file: PathBuf,
        /// The realm's verifier key (`sealog/<realm>+<id>+<key>`).
        #[arg(long)]
        key: String,
        /// A witness's verifier key (`NAME+KEYID+KEY`): the bundle's
        /// checkpoint must carry a quorum of these witnesses'
        /// cosignatures. Repeatable.
        #[arg(long, value_name = "NAME+KEYID+KEY")]
        witness: Vec<String>,
        /// Cosignatures needed (default: every --witness's).
        #[arg(long, value_name = "N", requires = "witness")]
        witness_quorum: Option<usize>,
    },
    /// Search LogHarbour-style logs (lhgrep): a realm through the server or
    /// in the data directory, or an NDJSON file (`-f`, `-` for stdin).
    ///
    /// Query: `level = 'error'`, `timestamp > '2023-06-01T00:00:00Z' AND
    /// app = 'myapp'`, `select(.app == "x" and .level == "warn")`; operators
    /// = != < <= > >= ~ (contains), AND OR NOT and parentheses.
    Grep {
        /// The realm (unless -f).
        #[arg(long, required_unless_present = "file", conflicts_with = "file")]
        realm: Option<RealmName>,
        /// Read NDJSON logs from this file instead (`-`: standard input).
        #[arg(short = 'f', long)]
        file: Option<PathBuf>,
        /// app equals.
        #[arg(long)]
        app: Option<String>,
        /// Severity equals (debug, info, warn, error, crit, …; LogHarbour's
        /// Debug2..Sec too).
        #[arg(long)]
        level: Option<String>,
        /// Print only these fields, comma-separated (e.g. when,pri,msg).
        #[arg(long, value_delimiter = ',')]
        fields: Vec<String>,
        /// The record's own time is at or after this (RFC 3339).
        #[arg(long)]
        from: Option<String>,
        /// The record's own time is at or before this (RFC 3339).
        #[arg(long)]
        to: Option<String>,
        /// The message (msg or message) contains this text.
        #[arg(long)]
        message: Option<String>,
        /// module equals.
        #[arg(long)]
        module: Option<String>,
        /// thread equals.
        #[arg(long)]
        thread: Option<String>,
        /// A query (also accepted as the positional argument).
        #[arg(long)]
        query: Option<String>,
        /// The query.
        #[arg(value_name = "QUERY")]
        positional: Option<String>,
        /// Output: text (default) or json (the stored lines).
        #[arg(short = 'o', long, default_value = "text")]
        output: crate::grep::Output,
        /// Colour: auto (on a terminal), always, never.
        #[arg(long, default_value = "auto")]
        color: crate::grep::Color,
        /// Print only the number of matching records.
        #[arg(short = 'c', long)]
        count: bool,
        /// At most this many records.
        #[arg(long)]
        limit: Option<u64>,
        /// Newest first (a realm only).
        #[arg(long)]
        newest: bool,
        /// Read every block instead of the realm's message index
        /// (`grep.index`, which grep builds and extends as it reads).
        #[arg(long)]
        no_index: bool,
    },
    /// Print a realm's new records as they are committed (live tail through
    /// the server; needs the realm's query token).
    Tail {
        /// The realm.
        #[arg(long)]
        realm: RealmName,
        /// Records whose line contains this text.
        #[arg(long)]
        q: Option<String>,
        /// Records whose field equals a value: key=value. Repeatable.
        #[arg(long = "where")]
        wheres: Vec<String>,
        /// Start at this seq instead of now.
        #[arg(long)]
        since_seq: Option<u64>,
    },
    /// Manage a realm's drains through the server (logshuttle's drain API;
    /// --token is the realm's write token).
    #[command(subcommand)]
    Drains(DrainsCmd),
    /// Import records from files.
    #[command(subcommand)]
    Import(ImportCmd),
    /// VPC flow-log digests.
    #[command(subcommand)]
    Digest(DigestCmd),
    /// Benchmarks that print their figures.
    #[command(subcommand)]
    Bench(BenchCmd),
}

/// `sealog drains ...`
#[derive(Debug, Subcommand)]
pub enum DrainsCmd {
    /// Add a drain; prints it as JSON. Select records by --app with
    /// --space, by --site, or by --where/--q (a query filter).
    Add {
        /// Destination: syslog://, syslog+tcp://, syslog+udp://,
        /// syslog+tls:// (HOST:PORT), http:// or https://.
        #[arg(value_name = "URL")]
        destination: String,
        /// The app (with --space).
        #[arg(long, requires = "space", conflicts_with_all = ["site", "wheres", "q"])]
        app: Option<String>,
        /// The space (with --app).
        #[arg(long, requires = "app")]
        space: Option<String>,
        /// The site.
        #[arg(long, conflicts_with_all = ["wheres", "q"])]
        site: Option<String>,
        /// Records whose field equals a value: key=value. Repeatable.
        #[arg(long = "where")]
        wheres: Vec<String>,
        /// Records whose line contains this text.
        #[arg(long)]
        q: Option<String>,
        /// Stream framing for syslog: newline (default) or octet-counting.
        #[arg(long)]
        framing: Option<String>,
    },
    /// List the realm's drains with their delivery state.
    List {
        /// Print the JSON the server answered.
        #[arg(long)]
        json: bool,
    },
    /// Remove a drain; delivery stops at once.
    Rm {
        /// The drain's id.
        id: String,
    },
}

/// `sealog realm ...`
#[derive(Debug, Subcommand)]
pub enum RealmCmd {
    /// Create a realm; prints JSON with its write and query tokens and public key.
    Create {
        /// Lowercase letters, digits, '.', '_' or '-', starting with a
        /// letter or digit; at most 63 bytes.
        name: RealmName,
        /// Also write the JSON to this file (mode 0600).
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// List realms.
    List,
    /// Print a realm's checkpoint verifier key (for verify-bundle and clients).
    Key {
        /// The realm.
        name: RealmName,
    },
}

/// Token scopes a user may issue from the CLI.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ScopeArg {
    /// Append only.
    Write,
    /// Read only.
    Query,
}

/// `sealog token ...`
#[derive(Debug, Subcommand)]
pub enum TokenCmd {
    /// Issue a token; prints JSON with its id and secret (shown only once).
    Issue {
        /// The realm.
        #[arg(long)]
        realm: RealmName,
        /// What the token may do.
        #[arg(long, value_enum)]
        scope: ScopeArg,
        /// Also write the JSON to this file (mode 0600).
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// List tokens (ids and scopes; never secrets).
    List {
        /// Only this realm's.
        #[arg(long)]
        realm: Option<RealmName>,
    },
    /// Revoke a token by id.
    Revoke {
        /// The token id (tok_...).
        token_id: String,
    },
}

/// `sealog bench ...`
#[derive(Debug, Subcommand)]
pub enum BenchCmd {
    /// Records/s from the journal to one rsyslog imptcp receiver through a
    /// drain, against rsyslog relaying the same lines to it (omfwd over
    /// TCP); then a log session's commit-to-line latency.
    Drain {
        /// Records to deliver in each round (long enough that each side's
        /// start-up does not weigh as much as its steady rate).
        #[arg(long, default_value_t = 2_000_000)]
        records: u64,
        /// Rounds, alternating rsyslog and sealog; medians are compared.
        #[arg(long, default_value_t = 3)]
        rounds: u32,
        /// Directory to run in (absent; removed after).
        #[arg(long, default_value = "./sealog-bench-drain")]
        dir: PathBuf,
    },
    /// The cluster: records/s through ingest → Kafka → writer → PostgreSQL
    /// with 1 and with 2 writers against the embedded single node, CPU per
    /// record, and commit latency p50/p99 (tansu is started; PostgreSQL is
    /// the global --postgres, default the local test database).
    Cluster {
        /// Records per path.
        #[arg(long, default_value_t = 200_000)]
        records: u64,
        /// Records per request.
        #[arg(long, default_value_t = 500)]
        batch: u64,
        /// Concurrent clients.
        #[arg(long, default_value_t = 8)]
        clients: usize,
        /// Realms the load is spread over.
        #[arg(long, default_value_t = 8)]
        realms: usize,
        /// Partitions of the cluster's topic.
        #[arg(long, default_value_t = 8)]
        partitions: i32,
        /// Directory to run in (absent; removed after).
        #[arg(long, default_value = "./sealog-bench-cluster")]
        dir: PathBuf,
    },
    /// Kafka: records/s from a preloaded topic into the sealed journal, side
    /// by side with rsyslog (imkafka into omfile) and kcat -C -e copying
    /// the same topic to a file.
    Kafka {
        /// Messages preloaded on the topic.
        #[arg(long, default_value_t = 5_000_000)]
        messages: u64,
        /// Partitions of the topic.
        #[arg(long, default_value_t = 4)]
        partitions: i32,
        /// An existing broker; by default a tansu broker is started on
        /// loopback.
        #[arg(long)]
        brokers: Option<String>,
        /// Directory with the librdkafka.so.1 kcat and rsyslog are run with
        /// (default: the one sealog was built with, under target/).
        #[arg(long)]
        librdkafka_dir: Option<PathBuf>,
        /// Directory to run in (absent; removed after).
        #[arg(long, default_value = "./sealog-bench-kafka")]
        dir: PathBuf,
    },
    /// LogHarbour's query functions and `sealog grep` over generated
    /// entries: /v1/sets and the newest /v1/logs page through a server, and
    /// grep -c against ripgrep (rg -c) over the same entries as NDJSON.
    Logharbour {
        /// Entries to generate.
        #[arg(long, default_value_t = 10_000_000)]
        records: u64,
        /// Directory to run in (absent; removed after).
        #[arg(long, default_value = "./sealog-bench-logharbour")]
        dir: PathBuf,
        /// Keep the directory.
        #[arg(long)]
        keep: bool,
    },
    /// VPC flow-log digests: sealog's digest from the journal against `awk |
    /// sort` doing the same aggregation over the same lines; both outputs
    /// must be identical.
    Digest {
        /// Flow records.
        #[arg(long, default_value_t = 10_000_000)]
        records: u64,
        /// Directory to run in (absent; removed after).
        #[arg(long, default_value = "./sealog-bench-digest")]
        dir: PathBuf,
        /// Keep the directory (flows.log, the journal, awk's digest).
        #[arg(long)]
        keep: bool,
    },
    /// The same RFC 5424 stream into rsyslog (imptcp -> omfile) and into
    /// sealog (syslog TCP -> durable journal), then sealog's sidecar; prints
    /// both rates and the ratio, and the sealing floor of the stored records
    /// and of lean ones against rsyslog.
    Ingest {
        /// The peer to compare with.
        #[arg(long, default_value = "rsyslog")]
        vs: String,
        /// Lines to send.
        #[arg(long, default_value_t = 1_000_000, value_parser = clap::value_parser!(u64).range(1..))]
        lines: u64,
        /// Rounds, alternating rsyslog and sealog; medians are compared.
        #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=20))]
        rounds: u32,
        /// Directory to run in (removed after).
        #[arg(long, default_value = "./sealog-bench-ingest")]
        dir: PathBuf,
    },
    /// Run a server and POST 1,000-record batches from concurrent clients;
    /// prints records/s, ack latency, CPU split, RSS, query and tail latency.
    Http {
        /// Records to ingest.
        #[arg(long, default_value_t = 10_000_000)]
        records: u64,
        /// Concurrent clients.
        #[arg(long, default_value_t = 8)]
        clients: usize,
        /// Directory to run in (removed after).
        #[arg(long, default_value = "./sealog-bench-http")]
        dir: PathBuf,
    },
    /// HTTP ingest with two local witnesses (quorum 2) against the same
    /// ingest without, in alternating rounds, and the lag from a commit to
    /// its cosigned checkpoint.
    Witnessing {
        /// Records per round.
        #[arg(long, default_value_t = 1_000_000)]
        records: u64,
        /// Concurrent clients.
        #[arg(long, default_value_t = 8)]
        clients: usize,
        /// Rounds of each kind.
        #[arg(long, default_value_t = 5)]
        rounds: usize,
        /// The server's --witness-interval.
        #[arg(long, default_value = "1s", value_parser = parse_duration)]
        interval: std::time::Duration,
        /// Directory to run in (removed after).
        #[arg(long, default_value = "./sealog-bench-witnessing")]
        dir: PathBuf,
    },
    /// Create many realms, start a server over them, and measure its idle
    /// cost (RSS, threads, fds) and its ingest with clients spread over
    /// every realm against the same load on one realm.
    Realms {
        /// Realms to create.
        #[arg(long, default_value_t = 10_000)]
        realms: usize,
        /// Seconds of each load.
        #[arg(long, default_value_t = 30)]
        seconds: u64,
        /// Concurrent clients.
        #[arg(long, default_value_t = 8)]
        clients: usize,
        /// Records per batch.
        #[arg(long, default_value_t = 100)]
        batch: u64,
        /// MiB of raw records written into each realm before the server
        /// starts (measures startup over a full data directory).
        #[arg(long, default_value_t = 0)]
        fill_mib: u64,
        /// Directory to run in (absent; removed after unless --keep).
        #[arg(long, default_value = "./sealog-bench-realms")]
        dir: PathBuf,
        /// Keep the data directory.
        #[arg(long)]
        keep: bool,
    },
    /// Append records of ~200 bytes with durable group commit, then verify;
    /// prints records/s, MB/s, bytes on disk per record and verify rate,
    /// and the floors: what verify and sealing cannot skip, timed alone.
    Journal {
        /// Records to append.
        #[arg(long, default_value_t = 10_000_000)]
        records: u64,
        /// Records per commit.
        #[arg(long, default_value_t = 65_536)]
        batch: usize,
        /// Directory to run in (on the disk being measured; removed after).
        #[arg(long, default_value = "./sealog-bench")]
        dir: PathBuf,
        /// Keep the data directory (realm `bench`) for inspection.
        #[arg(long)]
        keep: bool,
    },
}

/// `sealog witness`.
#[derive(Debug, clap::Args)]
pub struct WitnessArgs {
    /// `key`: print the witness's verifier key and exit.
    #[command(subcommand)]
    pub cmd: Option<WitnessCmd>,
    /// HTTP address to serve add-checkpoint on.
    #[arg(long, default_value = "127.0.0.1:7780")]
    pub http: std::net::SocketAddr,
    /// The witness's name (a schema-less URL, e.g. witness.example/w1);
    /// fixed at the first start, when its key is made.
    #[arg(long)]
    pub name: Option<String>,
    /// A log to witness: its checkpoint verifier key, NAME+KEYID+KEY, whose
    /// name is the log's origin (`sealog realm key` prints a realm's).
    /// Repeatable; several keys for one origin are all trusted.
    #[arg(long = "log", value_name = "VKEY")]
    pub logs: Vec<String>,
    /// The submission prefix: add-checkpoint is served at PREFIX/add-checkpoint.
    #[arg(long, default_value = "")]
    pub prefix: String,
}

/// `sealog witness` subcommands.
#[derive(Debug, Subcommand)]
pub enum WitnessCmd {
    /// Print the witness's verifier key (NAME+KEYID+base64(0x04 || key)).
    Key,
}

/// A duration as `<n>ms`, `<n>s`, `<n>m`, `<n>h` or bare seconds. (Four
/// units do not call for a crate.)
pub fn parse_duration(s: &str) -> Result<std::time::Duration, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (n, unit) = s.split_at(split);
    let n: u64 = n
        .parse()
        .map_err(|_| format!("{s:?} is not a duration such as 500ms, 2s, 5m or 1h"))?;
    let ms = match unit {
        "ms" => Some(n),
        "" | "s" => n.checked_mul(1000),
        "m" => n.checked_mul(60_000),
        "h" => n.checked_mul(3_600_000),
        _ => None,
    }
    .ok_or_else(|| format!("{s:?} is not a duration such as 500ms, 2s, 5m or 1h"))?;
    Ok(std::time::Duration::from_millis(ms))
}
