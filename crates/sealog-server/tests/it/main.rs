//! Integration tests of the server over real sockets on 127.0.0.1.

mod api;
mod audit;
mod auth;
mod console;
mod digests;
mod drains;
mod faults;
mod hostile;
mod logharbour;
mod sidecar;
mod syslog;
mod tls;
mod util;
