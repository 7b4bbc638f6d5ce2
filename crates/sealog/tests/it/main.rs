//! Integration tests of the `sealog` binary on real files.

mod bundle;
mod cli;
mod crash;
mod realm_out;
mod server_crash;
mod server_integrity;
mod tamper;
mod util;
mod verify_meta;
