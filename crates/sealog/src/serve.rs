//! `sealog serve`: configuration, the listener, signals, and a deadline.

use std::path::Path;
use std::time::Duration;

use sealog_server::{Config, Server};
use tokio_util::sync::CancellationToken;

use crate::Failure;

/// How long shutdown may take before the process exits anyway.
const SHUTDOWN_DEADLINE: Duration = Duration::from_secs(10);

/// `serve --witness*` flags, over `[witnessing]`.
#[derive(Debug, Default)]
pub struct WitnessFlags {
    /// `--witness`, added to the configured ones.
    pub witnesses: Vec<sealog_server::config::WitnessTarget>,
    /// `--witness-quorum`.
    pub quorum: Option<usize>,
    /// `--witness-interval`.
    pub interval: Option<std::time::Duration>,
    /// `--witness-max-lag`.
    pub max_lag: Option<std::time::Duration>,
}

/// Runs the server until SIGTERM or SIGINT.
///
/// # Errors
/// Configuration, data directory and listener errors (exit 2).
pub fn run(
    data: &Path,
    config: Option<&Path>,
    http: Option<std::net::SocketAddr>,
    (sidecars, syslog_tcp, syslog_udp, syslog_tls): (
        Vec<sealog_server::config::SidecarListener>,
        Vec<sealog_server::config::SyslogListener>,
        Vec<sealog_server::config::SyslogListener>,
        Option<sealog_server::config::SyslogTlsListener>,
    ),
    (audit_error_dir, geoip_db): (Option<std::path::PathBuf>, Option<std::path::PathBuf>),
    (kafka, kafka_sources): (Option<String>, Vec<sealog_server::config::KafkaSource>),
    witness: WitnessFlags,
) -> Result<(), Failure> {
    let mut cfg = Config::load(config)?;
    cfg.witnessing.witnesses.extend(witness.witnesses);
    if let Some(q) = witness.quorum {
        cfg.witnessing.quorum = q;
    }
    if let Some(d) = witness.interval {
        cfg.witnessing.interval_ms = u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
    }
    if let Some(d) = witness.max_lag {
        // Whole seconds, rounded up: 500ms is 1 s, not 0.
        cfg.witnessing.max_lag_secs = d.as_secs() + u64::from(d.subsec_nanos() > 0);
    }
    cfg.witnessing.check()?;
    if let Some(b) = kafka {
        cfg.kafka.brokers = b;
    }
    cfg.kafka.sources.extend(kafka_sources);
    cfg.kafka.check()?;
    if audit_error_dir.is_some() {
        cfg.audit.error_dir = audit_error_dir;
    }
    if geoip_db.is_some() {
        cfg.logharbour.geoip_db = geoip_db;
    }
    if let Some(addr) = http {
        cfg.http = addr;
    }
    cfg.sidecar.extend(sidecars);
    cfg.syslog_tcp.extend(syslog_tcp);
    cfg.syslog_udp.extend(syslog_udp);
    cfg.syslog_tls.extend(syslog_tls);
    // Every connection is a file descriptor: raise the soft limit to the
    // hard one, and say when even that is short of the configured caps.
    let want = cfg.limits.max_http_connections as u64
        + cfg
            .sidecar
            .iter()
            .map(|l| l.max_connections as u64)
            .sum::<u64>()
        + cfg
            .syslog_tcp
            .iter()
            .map(|l| l.max_connections as u64)
            .sum::<u64>()
        + cfg.syslog_tls.len() as u64
            * sealog_server::config::SyslogListener::default().max_connections as u64
        + 256;
    match sealog_server::listen::raise_fd_limit() {
        Some(n) if n < want => eprintln!(
            "sealog: warning: open-file limit is {n}, below the {want} the connection limits allow; \
             connections past it wait in the backlog (raise the hard limit or lower max_http_connections)"
        ),
        Some(_) => {}
        None => eprintln!("sealog: open-file limit is unlimited"),
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("sealog-http")
        .build()?;
    rt.block_on(async move {
        let addr = cfg.http;
        let side_cfgs = cfg.sidecar.clone();
        let (tcp_cfgs, udp_cfgs) = (cfg.syslog_tcp.clone(), cfg.syslog_udp.clone());
        let tls_cfgs = cfg.syslog_tls.clone();
        let (server, admin) = Server::open(data, cfg)?;
        let missing = |realm: &Option<String>| match realm {
            Some(r) if !server.has_realm(r) => format!(
                " (realm {r} does not exist yet: its messages are refused and counted until it is created)"
            ),
            _ => String::new(),
        };
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|e| format!("bind {addr}: {e}"))?;
        let local = listener.local_addr()?;
        let mut listeners = sealog_server::Listeners::default();
        let mut sidecars = Vec::new();
        let mut side_addrs = Vec::new();
        for c in side_cfgs {
            let l = tokio::net::TcpListener::bind(c.addr)
                .await
                .map_err(|e| format!("bind sidecar {}: {e}", c.addr))?;
            side_addrs.push(l.local_addr()?.to_string());
            eprintln!(
                "sealog: sidecar listener on {} (realm {})",
                l.local_addr()?,
                c.realm.as_deref().unwrap_or("from hello")
            );
            sidecars.push((l, c));
        }
        // Tell other sealog commands where the server holding this directory listens.
        let mut tcp_addrs = Vec::new();
        for c in tcp_cfgs {
            let l = tokio::net::TcpListener::bind(c.addr)
                .await
                .map_err(|e| format!("bind syslog tcp {}: {e}", c.addr))?;
            tcp_addrs.push(l.local_addr()?.to_string());
            eprintln!(
                "sealog: syslog tcp listener on {}{}",
                l.local_addr()?,
                missing(&c.realm)
            );
            listeners.syslog_tcp.push((l, c));
        }
        let mut udp_addrs = Vec::new();
        for c in udp_cfgs {
            let s = tokio::net::UdpSocket::bind(c.addr)
                .await
                .map_err(|e| format!("bind syslog udp {}: {e}", c.addr))?;
            udp_addrs.push(s.local_addr()?.to_string());
            eprintln!(
                "sealog: syslog udp listener on {}{}",
                s.local_addr()?,
                missing(&c.realm)
            );
            listeners.syslog_udp.push((s, c));
        }
        let mut tls_addrs = Vec::new();
        for c in tls_cfgs {
            let acceptor = sealog_server::syslog::tls_acceptor(&c.cert, &c.key)?;
            let l = tokio::net::TcpListener::bind(c.addr)
                .await
                .map_err(|e| format!("bind syslog tls {}: {e}", c.addr))?;
            tls_addrs.push(l.local_addr()?.to_string());
            eprintln!(
                "sealog: syslog tls listener on {}{}",
                l.local_addr()?,
                missing(&c.realm)
            );
            listeners.syslog_tls.push((l, c.syslog(), acceptor));
        }
        listeners.sidecar = sidecars;
        let info = serde_json::json!({
            "http": local.to_string(),
            "sidecar": side_addrs,
            "syslog_tcp": tcp_addrs,
            "syslog_udp": udp_addrs,
            "syslog_tls": tls_addrs,
            "pid": std::process::id(),
        });
        std::fs::write(data.join("server.json"), info.to_string())?;
        if let Some(token) = admin {
            println!(
                "admin token (shown once; also in {}): {token}",
                data.join("admin.token").display()
            );
        }
        eprintln!("sealog: serving http://{local} from {}", data.display());
        let stop = CancellationToken::new();
        let signals = stop.clone();
        tokio::spawn(async move {
            wait_for_signal().await;
            tracing::info!("signal received: stopping");
            signals.cancel();
        });
        let stopped = stop.clone();
        let serve = tokio::spawn(server.serve_with(listener, listeners, stop));
        stopped.cancelled().await;
        match tokio::time::timeout(SHUTDOWN_DEADLINE, serve).await {
            Ok(Ok(Ok(()))) => {}
            Ok(Ok(Err(e))) => return Err(Failure::from(e)),
            Ok(Err(e)) => return Err(Failure::from(e)),
            Err(_) => eprintln!("sealog: shutdown took longer than {SHUTDOWN_DEADLINE:?}; exiting"),
        }
        let _ = std::fs::remove_file(data.join("server.json"));
        eprintln!("sealog: stopped");
        Ok(())
    })
}

/// `sealog serve --role ingest|writer`: a cluster node over Kafka and
/// PostgreSQL, until SIGTERM or SIGINT.
///
/// # Errors
/// Missing --kafka or --postgres; the role failing to start.
pub fn run_role(
    role: crate::cli::Role,
    kafka: Option<String>,
    postgres: Option<String>,
    http: Option<std::net::SocketAddr>,
    (topic, node): (String, Option<String>),
    receipt_timeout: Duration,
) -> Result<(), Failure> {
    use crate::cli::Role;
    let kafka = match (kafka, role) {
        (Some(k), _) => k,
        // A query node reads only PostgreSQL.
        (None, Role::Query) => String::new(),
        (None, _) => {
            return Err("--role ingest|writer needs --kafka BROKERS (the cluster's bus)".into())
        }
    };
    let postgres = postgres.ok_or("--role needs --postgres URL (the cluster's store)")?;
    let name = format!("{role:?}").to_lowercase();
    let c = sealog_cluster::Cluster {
        kafka,
        postgres,
        topic,
        node: node.unwrap_or_else(|| format!("{name}-{}", std::process::id())),
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let stop = CancellationToken::new();
    let signals = stop.clone();
    rt.spawn(async move {
        wait_for_signal().await;
        tracing::info!("signal received: stopping");
        signals.cancel();
    });
    match role {
        Role::Writer => {
            eprintln!(
                "sealog writer {} consuming {} from {}",
                c.node, c.topic, c.kafka
            );
            let s = stop.clone();
            rt.block_on(async move {
                tokio::task::spawn_blocking(move || sealog_cluster::writer::run(&c, &s))
                    .await
                    .map_err(|e| e.to_string())?
            })?;
        }
        Role::Ingest | Role::Query => {
            let addr = http.unwrap_or_else(|| std::net::SocketAddr::from(([127, 0, 0, 1], 7700)));
            rt.block_on(async move {
                let l = tokio::net::TcpListener::bind(addr)
                    .await
                    .map_err(|e| format!("bind {addr}: {e}"))?;
                eprintln!(
                    "sealog {name} {} listening on http://{}",
                    c.node,
                    l.local_addr().map_err(|e| e.to_string())?
                );
                if role == Role::Ingest {
                    sealog_cluster::ingest::serve(c, l, receipt_timeout, stop).await
                } else {
                    sealog_cluster::query::serve(c, l, stop).await
                }
            })?;
        }
        Role::All => return Err("--role all is the single-node server".into()),
    }
    Ok(())
}

pub(crate) async fn wait_for_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        // Without signal handlers, run until killed.
        std::future::pending::<()>().await;
        return;
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
}
