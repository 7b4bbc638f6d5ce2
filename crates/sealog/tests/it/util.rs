//! Runs the real `sealog` binary against a temporary data directory.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub struct Sealog {
    pub dir: tempfile::TempDir,
}

pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    fn from(o: Output) -> Self {
        Self {
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }

    pub fn ok(self) -> Self {
        assert_eq!(
            self.code, 0,
            "expected success\nstdout: {}\nstderr: {}",
            self.stdout, self.stderr
        );
        self
    }
}

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_sealog")
}

impl Sealog {
    pub fn new() -> Self {
        Self {
            dir: tempfile::tempdir().expect("tempdir"),
        }
    }

    pub fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(bin());
        c.arg("--data").arg(self.data()).args(args);
        // The caller's environment must not pick a server or a token.
        for var in ["SEALOG_DATA", "SEALOG_URL", "SEALOG_TOKEN"] {
            c.env_remove(var);
        }
        c
    }

    pub fn run(&self, args: &[&str]) -> Run {
        Run::from(
            self.cmd(args)
                .stdin(Stdio::null())
                .output()
                .expect("spawn sealog"),
        )
    }

    pub fn run_stdin(&self, args: &[&str], input: &[u8]) -> Run {
        use std::io::Write;
        let mut child = self
            .cmd(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn sealog");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(input)
            .expect("write stdin");
        Run::from(child.wait_with_output().expect("wait"))
    }

    /// Creates a realm and returns its JSON.
    pub fn realm(&self, name: &str) -> serde_json::Value {
        let r = self.run(&["realm", "create", name]).ok();
        serde_json::from_str(&r.stdout).expect("realm JSON")
    }

    pub fn file(&self, name: &str, bytes: &[u8]) -> PathBuf {
        let p = self.dir.path().join(name);
        std::fs::write(&p, bytes).expect("write file");
        p
    }

    pub fn segment(&self, realm: &str) -> PathBuf {
        self.data()
            .join("realms")
            .join(realm)
            .join("journal/00000000000000000000.seg")
    }
}

/// `n` NDJSON events starting at `from`; every 7th is app=payments.
pub fn events(from: u64, n: u64) -> Vec<u8> {
    let mut out = Vec::new();
    for i in from..from + n {
        let app = if i % 7 == 0 { "payments" } else { "search" };
        out.extend_from_slice(
            format!(
                r#"{{"time":"2026-11-22T06:{:02}:{:02}Z","app":"{app}","level":"info","n":{i},"msg":"event number {i}"}}"#,
                (i / 60) % 60,
                i % 60
            )
            .as_bytes(),
        );
        out.push(b'\n');
    }
    out
}

pub fn path_str(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

/// `sealog serve` on an ephemeral port over a [`Sealog`]'s data directory;
/// killed when dropped.
pub struct Served {
    child: Child,
    /// `http://ADDR`, as recorded in `server.json`.
    pub base: String,
}

impl Served {
    pub fn start(s: &Sealog) -> Self {
        Self::start_with(s, &[], None)
    }

    /// Like [`Served::start`], with more `serve` arguments, and the soft
    /// open-file limit set to `nofile` before exec when given.
    pub fn start_with(s: &Sealog, extra: &[&str], nofile: Option<u64>) -> Self {
        let _ = std::fs::remove_file(s.data().join("server.json"));
        let log = std::fs::File::create(s.dir.path().join("serve.log")).expect("log file");
        let mut args = vec!["serve", "--http", "127.0.0.1:0"];
        args.extend_from_slice(extra);
        let mut cmd = match nofile {
            None => s.cmd(&args),
            Some(n) => {
                let inner = s.cmd(&args);
                let mut c = Command::new("sh");
                c.arg("-c")
                    .arg(format!("ulimit -Sn {n} && exec \"$0\" \"$@\""))
                    .arg(inner.get_program())
                    .args(inner.get_args());
                for (k, v) in inner.get_envs() {
                    match v {
                        Some(v) => c.env(k, v),
                        None => c.env_remove(k),
                    };
                }
                c
            }
        };
        let mut child = cmd
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn serve");
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(text) = std::fs::read_to_string(s.data().join("server.json")) {
                if let Ok(v) = serde_json::from_str::<serde_json::Value>(&text) {
                    let addr = v["http"].as_str().expect("http").to_string();
                    return Self {
                        child,
                        base: format!("http://{addr}"),
                    };
                }
            }
            if let Ok(Some(st)) = child.try_wait() {
                panic!(
                    "server exited with {st}: {}",
                    std::fs::read_to_string(s.dir.path().join("serve.log")).unwrap_or_default()
                );
            }
            assert!(
                Instant::now() < deadline,
                "server did not start within 20 s"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGTERM, then wait: the server removes `server.json` and lets the
    /// directory go.
    pub fn stop(mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
