//! The schema, as numbered migrations applied in order on connect.
//!
//! `sealog_migrations` records each version applied. A database whose
//! newest version is above this build's is refused rather than used with a
//! schema this build does not know.

use postgres::Client;
use sealog_journal::JournalError;

use crate::db;

/// Advisory lock key held while migrating ("sealog" in ASCII, as a number).
const MIGRATION_LOCK: i64 = 0x7365_616c_6f67;

/// The migrations: version, what it adds, the SQL.
pub const MIGRATIONS: &[(i32, &str, &str)] = &[
    (
        1,
        "realm logs: realms, sealed blocks, tree hashes, checkpoints",
        r"
CREATE TABLE sealog_realms (
    name        text PRIMARY KEY,
    verifier    text NOT NULL,
    size        bigint NOT NULL DEFAULT 0 CHECK (size >= 0),
    epoch       bigint NOT NULL DEFAULT 0,
    owner       text,
    frontier    bytea NOT NULL DEFAULT '\x'::bytea,
    checkpoint  text,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE sealog_blocks (
    realm      text NOT NULL REFERENCES sealog_realms (name),
    first_seq  bigint NOT NULL,
    count      integer NOT NULL CHECK (count > 0),
    min_time   bigint NOT NULL,
    max_time   bigint NOT NULL,
    crc        bigint NOT NULL,
    body       bytea NOT NULL,
    PRIMARY KEY (realm, first_seq)
);
-- Bodies are zstd already: keep them out of line, uncompressed.
ALTER TABLE sealog_blocks ALTER COLUMN body SET STORAGE EXTERNAL;
CREATE TABLE sealog_tree_nodes (
    realm     text NOT NULL REFERENCES sealog_realms (name),
    position  bigint NOT NULL,
    hash      bytea NOT NULL CHECK (length(hash) = 32),
    PRIMARY KEY (realm, position)
);
CREATE TABLE sealog_checkpoints (
    realm  text NOT NULL REFERENCES sealog_realms (name),
    size   bigint NOT NULL,
    note   text NOT NULL,
    PRIMARY KEY (realm, size)
);
",
    ),
    (
        2,
        "realm keys and hashed tokens",
        r"
-- A realm's Ed25519 seed: whoever can read this table can sign for the
-- realm, so grant it only to the roles that sign (writers, admin).
CREATE TABLE sealog_realm_keys (
    realm         text PRIMARY KEY REFERENCES sealog_realms (name),
    ed25519_seed  bytea NOT NULL CHECK (length(ed25519_seed) = 32)
);
-- Tokens by the SHA-256 of the secret; the secret is never stored.
CREATE TABLE sealog_tokens (
    id          text PRIMARY KEY,
    realm       text NOT NULL,
    scope       text NOT NULL CHECK (scope IN ('write', 'query', 'admin')),
    sha256      bytea NOT NULL UNIQUE CHECK (length(sha256) = 32),
    created_at  text NOT NULL,
    revoked_at  text,
    CHECK ((scope = 'admin') = (realm = ''))
);
CREATE INDEX sealog_tokens_realm ON sealog_tokens (realm);
",
    ),
    (
        3,
        "Kafka positions of the cluster's writers, per partition and realm",
        r"
-- The next offset of each (topic, partition) whose messages for a realm
-- are committed: written in the realm's commit transaction, so a message
-- is stored exactly once whoever consumes it.
CREATE TABLE sealog_kafka_positions (
    topic        text NOT NULL,
    partition    integer NOT NULL,
    realm        text NOT NULL REFERENCES sealog_realms (name),
    next_offset  bigint NOT NULL,
    PRIMARY KEY (topic, partition, realm)
);
",
    ),
    (
        4,
        "partition claims of the cluster's writers",
        r"
-- Which writer holds each partition of the ingest topic, and since which
-- claim: a writer claims its partitions on every assignment and commits
-- only while its claim is the latest.
CREATE TABLE sealog_partition_claims (
    topic      text NOT NULL,
    partition  integer NOT NULL,
    owner      text NOT NULL,
    epoch      bigint NOT NULL,
    PRIMARY KEY (topic, partition)
);
",
    ),
    (
        5,
        "receipts of the cluster's batches by request id",
        r"
-- Every batch a writer committed, by the id its ingest node (or its
-- client's Idempotency-Key) gave it: a batch Kafka delivers twice, or a
-- client sends again, is stored once and answered with its first receipt.
CREATE TABLE sealog_requests (
    realm       text NOT NULL REFERENCES sealog_realms (name),
    id          text NOT NULL,
    first_seq   bigint NOT NULL,
    count       bigint NOT NULL,
    checkpoint  text NOT NULL,
    PRIMARY KEY (realm, id)
);
",
    ),
    (
        6,
        "Kafka positions also for keys that name no realm",
        r"
-- Messages whose key names no realm are refused and passed: their
-- position must be recordable too.
ALTER TABLE sealog_kafka_positions DROP CONSTRAINT IF EXISTS sealog_kafka_positions_realm_fkey;
",
    ),
    (
        7,
        "drains and their delivery cursors",
        r"
-- A realm's drains, in the order they were added (n). select_json is the
-- selection as the data directory's drains.meta spells it.
CREATE TABLE sealog_drains (
    id           text PRIMARY KEY,
    n            bigserial UNIQUE,
    realm        text NOT NULL REFERENCES sealog_realms (name),
    select_json  text NOT NULL,
    url          text NOT NULL,
    framing      text NOT NULL CHECK (framing IN ('newline', 'octet-counting')),
    created_at   text NOT NULL,
    updated_at   text NOT NULL
);
CREATE INDEX sealog_drains_realm ON sealog_drains (realm, n);
-- Where each drain's delivery stands; goes with its drain.
CREATE TABLE sealog_drain_cursors (
    id         text PRIMARY KEY REFERENCES sealog_drains (id) ON DELETE CASCADE,
    cursor     bigint NOT NULL CHECK (cursor >= 0),
    delivered  bigint NOT NULL CHECK (delivered >= 0),
    failing    text
);
",
    ),
];

/// The schema version this build writes.
pub fn latest_version() -> i32 {
    MIGRATIONS.last().map_or(0, |m| m.0)
}

/// Checks, without changing anything, that the schema is at this build's
/// version.
///
/// # Errors
/// Database errors; no schema yet, or one at another version.
pub fn check(c: &mut Client) -> Result<i32, JournalError> {
    let op = "checking the PostgreSQL schema";
    let have: i32 = c
        .query_one(
            "SELECT CASE WHEN to_regclass('sealog_migrations') IS NULL THEN 0 ELSE 1 END",
            &[],
        )
        .map_err(|e| db(op, &e))?
        .get(0);
    let have = if have == 0 {
        0
    } else {
        c.query_one(
            "SELECT coalesce(max(version), 0) FROM sealog_migrations",
            &[],
        )
        .map_err(|e| db(op, &e))?
        .get(0)
    };
    if have != latest_version() {
        return Err(JournalError::Store {
            op,
            reason: format!(
                "the database's schema is at version {have} and this build reads version {}: {}",
                latest_version(),
                if have < latest_version() {
                    "a writer (or `sealog serve --postgres`) brings it up to date"
                } else {
                    "upgrade sealog"
                }
            ),
        });
    }
    Ok(have)
}

/// Applies the migrations the database lacks, in one transaction; returns
/// the version it is at afterwards.
///
/// # Errors
/// Database errors; a database at a version newer than this build's.
pub fn migrate(c: &mut Client) -> Result<i32, JournalError> {
    let op = "migrating the PostgreSQL schema";
    let mut tx = c.transaction().map_err(|e| db(op, &e))?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .map_err(|e| db(op, &e))?;
    // No "already exists, skipping" notice on every connect.
    tx.batch_execute("SET LOCAL client_min_messages = warning")
        .map_err(|e| db(op, &e))?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS sealog_migrations (
            version integer PRIMARY KEY,
            description text NOT NULL,
            applied_at timestamptz NOT NULL DEFAULT now())",
    )
    .map_err(|e| db(op, &e))?;
    let have: i32 = tx
        .query_one(
            "SELECT coalesce(max(version), 0) FROM sealog_migrations",
            &[],
        )
        .map_err(|e| db(op, &e))?
        .get(0);
    if have > latest_version() {
        return Err(JournalError::Store {
            op,
            reason: format!(
                "the database's schema is at version {have}, newer than this build's {}: upgrade sealog",
                latest_version()
            ),
        });
    }
    for (version, description, sql) in MIGRATIONS.iter().filter(|m| m.0 > have) {
        tx.batch_execute(sql).map_err(|e| db(op, &e))?;
        tx.execute(
            "INSERT INTO sealog_migrations (version, description) VALUES ($1, $2)",
            &[version, description],
        )
        .map_err(|e| db(op, &e))?;
        tracing::info!(version, description, "applied PostgreSQL schema migration");
    }
    tx.commit().map_err(|e| db(op, &e))?;
    Ok(latest_version())
}
