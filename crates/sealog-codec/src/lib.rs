//! Wire formats sealog reads, without I/O.
//!
//! - [`batch`]: the one parser of ingest batches (NDJSON, JSON arrays,
//!   logshuttle `LogSpec` lines), shared by the CLI and every HTTP path;
//! - [`drain`]: what goes out to drains: destination URLs checked at
//!   create time, logshuttle's syslog packet, stream framing, logplex;
//! - [`frame`]: Mojaloop sidecar framing, a 4-byte big-endian length and
//!   that many bytes, with a maximum size (the seed had none);
//! - [`sidecar`]: what a sidecar message becomes as an event, and the
//!   hello and ack frames sealog adds to the protocol;
//! - [`vpcflow`]: AWS VPC flow-log lines as `flow` records, and their
//!   digest.
//!
//! ```
//! use bytes::BytesMut;
//! use sealog_codec::frame::{encode, FrameDecoder};
//! let mut buf = BytesMut::new();
//! buf.extend_from_slice(&encode(b"{\"msg\":\"hi\"}"));
//! let mut d = FrameDecoder::new(1024);
//! assert_eq!(d.decode(&mut buf).unwrap().as_deref(), Some(&b"{\"msg\":\"hi\"}"[..]));
//! ```

pub mod batch;
pub mod drain;
pub mod frame;
pub mod logshuttle;
pub mod sidecar;
pub mod syslog;
pub mod vpcflow;
