//! An application logging through sealog-client, the way LogHarbour's
//! examples did: activities, data changes and debug entries, sent over
//! HTTP with every receipt checked.
//!
//! ```sh
//! sealog --data /tmp/d realm create shop      # note the tokens and public_key
//! sealog --data /tmp/d serve &
//! SEALOG_URL=http://127.0.0.1:7700 SEALOG_WRITE_TOKEN=slw_... \
//! SEALOG_QUERY_TOKEN=slq_... SEALOG_REALM_KEY='sealog/shop+...' \
//!   cargo run -p sealog-client --example shop -- 100000
//! ```

use std::sync::Arc;

use sealog_client::{ChangeInfo, HttpConfig, HttpWriter, Logger, LoggerContext, Priority};

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let n: usize = std::env::args().nth(1).map_or(Ok(1000), |a| a.parse())?;
    let url = env("SEALOG_URL").unwrap_or_else(|| "http://127.0.0.1:7700".into());
    let token = env("SEALOG_WRITE_TOKEN").ok_or("set SEALOG_WRITE_TOKEN")?;
    let mut cfg = HttpConfig::new(url, token, "shop.fallback.ndjson");
    cfg.query_token = env("SEALOG_QUERY_TOKEN");
    cfg.verifier_key = env("SEALOG_REALM_KEY");
    let writer = Arc::new(HttpWriter::start(cfg)?);

    let ctx = LoggerContext::new(Priority::Info);
    let log = Logger::new(&ctx, "shop", writer.clone()).with_module("orders");
    for i in 0..n {
        let user = log
            .with_who(format!("user{}", i % 100))
            .with_remote_ip("203.0.113.7");
        match i % 10 {
            0 => user.log_data_change(
                "address changed",
                ChangeInfo::new("customer", "update").add_change("city", "Pune", "Mumbai"),
            ),
            9 => user
                .warn()
                .log_activity("payment retried", &serde_json::json!({"order": i})),
            _ => user.log_activity("order placed", &serde_json::json!({"order": i})),
        }
    }
    writer.flush();
    let stats = writer.stats();
    println!("{stats:?}");
    for v in writer.violations() {
        eprintln!("violation: {v}");
    }
    writer.close();
    if stats.violations > 0 {
        return Err("the server's log failed a receipt check".into());
    }
    Ok(())
}
