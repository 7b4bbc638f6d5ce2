//! The `sealog` command line. Thin: parsing, then a call into a library.

mod backend;
mod bench;
mod bench_cluster;
mod bench_digest;
mod bench_drain;
mod bench_http;
mod bench_ingest;
mod bench_kafka;
mod bench_logharbour;
mod bench_realms;
mod bench_witness;
mod cli;
mod cmd;
mod flows;
mod grep;
mod ingest;
mod local;
mod pg;
mod progress;
mod remote;
mod serve;
mod witness;

use std::process::ExitCode;

use clap::Parser;

/// mimalloc keeps freed memory for reuse; glibc's allocator returns large
/// blocks to the OS and the kernel zeroes them again on the next batch.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Exit code for a failed verification.
pub const EXIT_VERIFY_FAILED: u8 = 1;
/// Exit code for a usage or input error.
pub const EXIT_USAGE: u8 = 2;

/// An error that carries its exit code.
#[derive(Debug)]
pub struct Failure {
    code: u8,
    message: String,
}

impl Failure {
    /// A verification failure (exit 1).
    pub fn verify(message: impl Into<String>) -> Self {
        Self {
            code: EXIT_VERIFY_FAILED,
            message: message.into(),
        }
    }
}

impl<E: std::fmt::Display> From<E> for Failure {
    fn from(e: E) -> Self {
        Self {
            code: EXIT_USAGE,
            message: e.to_string(),
        }
    }
}

fn main() -> ExitCode {
    // mimalloc asks for transparent huge pages on its arenas; the kernel
    // then backs any touched 2 MiB of them whole, and purged 64 KiB pieces
    // no longer give memory back. Under `bench http` that held 304–318 MiB
    // resident against 170 MiB without, at the same throughput (the
    // SPEC's bound is 256 MiB). The flag is the process's and its
    // children's; failure (an old kernel) only costs memory.
    #[cfg(target_os = "linux")]
    let _ = rustix::thread::disable_transparent_huge_pages(true);
    let args = cli::Cli::parse();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("SEALOG_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .init();
    match cmd::run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => {
            eprintln!("sealog: {}", f.message);
            ExitCode::from(f.code)
        }
    }
}
