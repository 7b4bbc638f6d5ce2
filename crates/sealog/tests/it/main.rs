//! Integration tests of the `sealog` binary on real files.

mod cli;
mod crash;
mod server_crash;
mod server_integrity;
mod tamper;
mod util;
