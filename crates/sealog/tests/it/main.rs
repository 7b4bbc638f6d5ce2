//! Integration tests of the `sealog` binary on real files.

mod cli;
mod crash;
mod server_crash;
mod tamper;
mod util;
