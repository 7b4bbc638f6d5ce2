//! LogHarbour's client library, for sealog.
//!
//! Applications log the way they did with LogHarbour's Go library: a
//! [`Logger`] made for an application, narrowed with copy-on-write setters
//! (each returns a new logger, the original is unchanged), and three kinds
//! of entry: activities, data changes and debug entries. Each entry is one
//! JSON line in LogHarbour's format (seed §2.2), written to a [`Writer`].
//! sealog's LogHarbour query functions, `sealog grep` and its Kafka source
//! (`format = "logharbour"`) read exactly these lines.
//!
//! ```
//! use std::sync::Arc;
//! use sealog_client::{ChangeInfo, Logger, LoggerContext, Priority, VecWriter};
//!
//! let ctx = LoggerContext::new(Priority::Info);
//! let out = Arc::new(VecWriter::default());
//! let log = Logger::new(&ctx, "payments", out.clone())
//!     .with_module("refunds")
//!     .with_who("alice");
//! log.log_activity("refund issued", &serde_json::json!({"amount": 12}));
//! log.log_data_change(
//!     "limit raised",
//!     ChangeInfo::new("account", "update").add_change("limit", 100, 200),
//! );
//! log.debug0().log_debug("not written: debug mode is off", &());
//! assert_eq!(out.lines().len(), 2);
//! ```

mod http;
#[cfg(feature = "kafka")]
mod kafka;
mod logger;
mod query;
mod writer;

pub use http::{HttpConfig, HttpStats, HttpWriter};
#[cfg(feature = "kafka")]
pub use kafka::{KafkaConfig, KafkaStats, KafkaWriter};
pub use logger::{ChangeDetail, ChangeInfo, Logger, LoggerContext, Priority, Status};
pub use query::{LogsPage, LogsParams, QueryClient, QueryError};
pub use writer::{FileWriter, VecWriter, Writer};
