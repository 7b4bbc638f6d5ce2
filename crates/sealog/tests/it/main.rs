//! Integration tests of the `sealog` binary on real files.

mod bundle;
mod cli;
mod cluster;
mod crash;
mod drain_crash;
mod flows;
mod grep;
mod hostile;
mod kafka;
mod postgres;
mod realm_names;
mod realm_out;
mod remote_cli;
mod retention;
mod server_crash;
mod server_integrity;
mod tamper;
mod util;
mod verify_meta;
mod witness;
mod witnessed;
