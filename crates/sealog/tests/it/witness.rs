//! `sealog witness` checked against C2SP tlog-witness, written from the
//! spec's text: each status it names (200, 400, 403, 404, 409 with its
//! `text/x.tlog.size` body, 422), the atomicity race it describes, state
//! that survives a SIGKILL, and evidence of a fork kept. The witness runs
//! as the real binary; the test speaks HTTP to it. The logs are made here,
//! with the journal's signer and Merkle functions, so a test can fork one.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Barrier};

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use ed25519_dalek::SigningKey;
use sealog_journal::checkpoint::{Checkpoint, Signer};
use sealog_journal::cosignature::CosignatureKey;
use sealog_journal::merkle::{consistency_proof, leaf_hash, root_of, Hash, MemTree};

use crate::util::bin;

/// A witness process on an ephemeral port; killed when dropped.
pub(crate) struct Witness {
    child: Child,
    pub(crate) base: String,
    pub(crate) vkey: String,
}

impl Witness {
    pub(crate) fn start(dir: &Path, name: &str, logs: &[String]) -> Self {
        Self::start_at(dir, "127.0.0.1:0", name, logs)
    }

    /// A witness listening on `addr` (to come back where it was).
    pub(crate) fn start_at(dir: &Path, addr: &str, name: &str, logs: &[String]) -> Self {
        let mut cmd = Command::new(bin());
        cmd.arg("--data")
            .arg(dir)
            .args(["witness", "--http", addr, "--name", name]);
        for l in logs {
            cmd.args(["--log", l]);
        }
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn witness");
        let mut vkey = String::new();
        let mut out = BufReader::new(child.stdout.take().expect("stdout"));
        out.read_line(&mut vkey).expect("the verifier key line");
        let mut err = BufReader::new(child.stderr.take().expect("stderr"));
        let mut line = String::new();
        err.read_line(&mut line).expect("the listening line");
        // Keep reading both, so the witness never writes into a closed pipe.
        std::thread::spawn(move || std::io::copy(&mut out, &mut std::io::sink()));
        std::thread::spawn(move || std::io::copy(&mut err, &mut std::io::sink()));
        let at = line
            .find("http://")
            .unwrap_or_else(|| panic!("no address in {line:?}"));
        let addr = line[at + 7..].split('/').next().expect("address");
        Self {
            base: format!("http://{addr}"),
            vkey: vkey.trim().to_string(),
            child,
        }
    }

    fn post(&self, body: &str) -> (u16, String, String) {
        let r = reqwest::blocking::Client::new()
            .post(format!("{}/add-checkpoint", self.base))
            .body(body.to_string())
            .send()
            .expect("POST add-checkpoint");
        let status = r.status().as_u16();
        let ct = r
            .headers()
            .get("content-type")
            .map(|v| v.to_str().expect("ascii").to_string())
            .unwrap_or_default();
        (status, ct, r.text().expect("body"))
    }

    /// The size the witness last cosigned, learnt the way the spec says a
    /// client may: a request with old size 0, answered 409.
    fn size(&self, log: &Log) -> u64 {
        let (status, ct, body) = self.post(&request(0, &[], &log.note(log.len())));
        if status == 200 {
            return 0;
        }
        assert_eq!((status, ct.as_str()), (409, "text/x.tlog.size"), "{body}");
        body.trim_end_matches('\n').parse().expect("a decimal size")
    }
}

impl Drop for Witness {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A log made in the test: its leaves and its key.
struct Log {
    signer: Signer,
    leaves: Vec<Hash>,
}

impl Log {
    fn new(origin: &str, seed: u8, n: u64, salt: &str) -> Self {
        let mut l = Self {
            signer: Signer::new(origin, SigningKey::from_bytes(&[seed; 32])),
            leaves: Vec::new(),
        };
        l.grow(n, salt);
        l
    }

    fn grow(&mut self, n: u64, salt: &str) {
        for _ in 0..n {
            let i = self.leaves.len();
            self.leaves.push(leaf_hash(
                format!("{{\"i\":{i},\"s\":\"{salt}\"}}").as_bytes(),
            ));
        }
    }

    fn len(&self) -> u64 {
        self.leaves.len() as u64
    }

    fn vkey(&self) -> String {
        self.signer.verifier().to_string()
    }

    fn checkpoint(&self, size: u64) -> Checkpoint {
        Checkpoint {
            origin: self.signer.verifier().name().to_string(),
            size,
            root: root_of(&self.leaves[..size as usize]),
        }
    }

    fn note(&self, size: u64) -> String {
        self.signer.sign(&self.checkpoint(size)).text
    }

    fn proof(&self, old: u64, new: u64) -> Vec<Hash> {
        if old == 0 || old == new {
            return Vec::new();
        }
        consistency_proof(&MemTree(&self.leaves[..new as usize]), old, new).expect("proof")
    }
}

/// An add-checkpoint body: old size line, proof lines, empty line, note.
fn request(old: u64, proof: &[Hash], note: &str) -> String {
    let mut s = format!("old {old}\n");
    for h in proof {
        s.push_str(&B64.encode(h));
        s.push('\n');
    }
    s.push('\n');
    s.push_str(note);
    s
}

/// Checks that a peer program succeeded and printed `want`.
fn assert_prints(out: &std::process::Output, want: &str) {
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(out.status.success(), "{stdout} {stderr}");
    assert_eq!(stdout.trim(), want);
}

/// Checks that `line` (the 200 body) is one cosignature line by `key` on
/// `note`, made within the last minute.
fn assert_cosigned(key: &CosignatureKey, note: &str, body: &str) {
    assert!(
        body.starts_with("\u{2014} ") && body.ends_with('\n') && body.lines().count() == 1,
        "a note signature line ending in a newline: {body:?}"
    );
    let t = key
        .cosigned_at(&format!("{note}{body}"))
        .expect("a valid cosignature")
        .expect("a cosignature by the witness's key");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    assert!(t <= now && now - t < 60, "timestamp {t} is not now ({now})");
}

#[test]
fn every_status_of_add_checkpoint_as_the_spec_names_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut log = Log::new("sealog/acme", 1, 5, "a");
    let other = Log::new("sealog/other", 2, 3, "o");
    let w = Witness::start(dir.path(), "witness.test/w1", &[log.vkey()]);
    let key: CosignatureKey = w
        .vkey
        .parse()
        .expect("the printed key is a cosignature/v1 vkey");
    assert!(w.vkey.starts_with("witness.test/w1+"));

    // 404: an origin this witness does not serve.
    let (status, _, body) = w.post(&request(0, &[], &other.note(3)));
    assert_eq!(status, 404, "{body}");

    // 403: the right origin, signed by a key the witness does not trust.
    let impostor = Log::new("sealog/acme", 9, 5, "a");
    let (status, _, body) = w.post(&request(0, &[], &impostor.note(5)));
    assert_eq!(status, 403, "{body}");

    // 400: old size above the checkpoint's size.
    let (status, _, body) = w.post(&request(6, &[], &log.note(5)));
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("old size 6"), "{body}");

    // 400: malformed requests.
    for bad in [
        format!("old 05\n\n{}", log.note(5)),
        format!("old -1\n\n{}", log.note(5)),
        format!("new 0\n\n{}", log.note(5)),
        format!("old 0\n{}", log.note(5)),
        format!("old 0\nnot-base64!\n\n{}", log.note(5)),
        format!("old 0\n{}\n\n{}", B64.encode([1u8; 31]), log.note(5)),
        request(0, &vec![[7u8; 32]; 64], &log.note(5)),
        "old 0\n\nsealog/acme\n5\n".to_string(),
    ] {
        let (status, _, body) = w.post(&bad);
        assert_eq!(status, 400, "{bad:?}: {body}");
    }

    // 200: the first checkpoint (old size 0, no proof), with an unknown
    // key's signature beside the trusted one, which must be ignored.
    let note = format!(
        "{}{}",
        log.note(5),
        impostor.note(5).lines().last().expect("sig").to_string() + "\n"
    );
    let (status, _, body) = w.post(&request(0, &[], &note));
    assert_eq!(status, 200, "{body}");
    assert_cosigned(&key, &note, &body);

    // 409: old size 0 again; the body is the size cosigned last.
    let (status, ct, body) = w.post(&request(0, &[], &log.note(5)));
    assert_eq!(
        (status, ct.as_str(), body.as_str()),
        (409, "text/x.tlog.size", "5\n")
    );

    // 200: the same checkpoint again (old size = size, same root).
    let (status, _, body) = w.post(&request(5, &[], &log.note(5)));
    assert_eq!(status, 200, "{body}");

    // 409: the same size with another root, validly signed by the log: a
    // fork, kept as evidence.
    let fork = Log::new("sealog/acme", 1, 5, "forked");
    let (status, ct, body) = w.post(&request(5, &[], &fork.note(5)));
    assert_eq!(
        (status, ct.as_str(), body.as_str()),
        (409, "text/x.tlog.size", "5\n")
    );

    // 422: a proof with a flipped byte, and a valid proof of a forked tree.
    log.grow(4, "a");
    let mut broken = log.proof(5, 9);
    broken[0][0] ^= 1;
    let (status, _, body) = w.post(&request(5, &broken, &log.note(9)));
    assert_eq!(status, 422, "{body}");
    // (A log whose first 5 records differ: its own proof is valid, but
    // not from the root this witness cosigned at 5.)
    let mut fork = Log::new("sealog/acme", 1, 5, "forked");
    fork.grow(4, "forked");
    let (status, _, body) = w.post(&request(5, &fork.proof(5, 9), &fork.note(9)));
    assert_eq!(status, 422, "{body}");
    // 422: a proof where none is due (old size 5 to size 5).
    let (status, _, body) = w.post(&request(5, &log.proof(5, 9)[..1], &log.note(5)));
    assert_eq!(status, 422, "{body}");
    assert_eq!(w.size(&log), 5, "no refused checkpoint moved the witness");

    // 200: the real extension, with its proof.
    let (status, _, body) = w.post(&request(5, &log.proof(5, 9), &log.note(9)));
    assert_eq!(status, 200, "{body}");
    assert_cosigned(&key, &log.note(9), &body);
    assert_eq!(w.size(&log), 9);

    // Evidence: the one proof of a fork, the two roots the log signed for
    // size 5, each note with the log's own signature only. The 422s prove
    // nothing about the log (anyone can send a bad proof) and are not kept.
    let evidence = std::fs::read_to_string(dir.path().join("evidence.ndjson")).expect("evidence");
    let lines: Vec<serde_json::Value> = evidence
        .lines()
        .map(|l| serde_json::from_str(l).expect("json"))
        .collect();
    assert_eq!(lines.len(), 1, "{evidence}");
    let e = &lines[0];
    assert_eq!(
        (e["kind"].as_str(), e["size"].as_u64()),
        (Some("fork"), Some(5))
    );
    let cosigned = e["cosigned"].as_str().expect("cosigned note");
    let conflicting = e["conflicting"].as_str().expect("conflicting note");
    let fork5 = Log::new("sealog/acme", 1, 5, "forked");
    assert_eq!(
        cosigned,
        log.note(5),
        "the note cosigned, without the impostor's line"
    );
    assert_eq!(conflicting, fork5.note(5));
    for n in [cosigned, conflicting] {
        log.signer
            .verifier()
            .verify(n)
            .expect("both are signed by the log");
    }

    // The answers, counted.
    let metrics = reqwest::blocking::get(format!("{}/metrics", w.base))
        .expect("metrics")
        .text()
        .expect("text");
    for want in [
        "sealog_witness_requests_total{outcome=\"cosigned\"} 3",
        "sealog_witness_requests_total{outcome=\"bad_proof\"} 3",
        "sealog_witness_forks_total 1",
    ] {
        assert!(metrics.contains(want), "{want} in {metrics}");
    }
}

#[test]
fn concurrent_submissions_never_roll_the_stored_size_back() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut log = Log::new("sealog/race", 3, 10, "r");
    let w = Arc::new(Witness::start(
        dir.path(),
        "witness.test/race",
        &[log.vkey()],
    ));
    let (status, _, body) = w.post(&request(0, &[], &log.note(10)));
    assert_eq!(status, 200, "{body}");
    let mut size = 10;
    for round in 0..5 {
        // Sixteen requests from the same old size to sizes size+1..size+16,
        // released together: the spec's race, many times over.
        log.grow(16, "r");
        let barrier = Arc::new(Barrier::new(16));
        let threads: Vec<_> = (1..=16u64)
            .map(|k| {
                let body = request(size, &log.proof(size, size + k), &log.note(size + k));
                let (w, barrier) = (w.clone(), barrier.clone());
                std::thread::spawn(move || {
                    barrier.wait();
                    (size + k, w.post(&body))
                })
            })
            .collect();
        let results: Vec<_> = threads
            .into_iter()
            .map(|t| t.join().expect("thread"))
            .collect();
        let won: Vec<u64> = results
            .iter()
            .filter(|r| r.1 .0 == 200)
            .map(|r| r.0)
            .collect();
        assert_eq!(
            won.len(),
            1,
            "round {round}: exactly one request wins: {results:?}"
        );
        for (_, (status, ct, body)) in &results {
            if *status != 200 {
                assert_eq!((*status, ct.as_str()), (409, "text/x.tlog.size"));
                assert_eq!(
                    body,
                    &format!("{}\n", won[0]),
                    "losers are told the winner's size"
                );
            }
        }
        assert_eq!(
            w.size(&log),
            won[0],
            "round {round}: the stored size is the winner's"
        );
        // The log's later checkpoints build on what was cosigned.
        let next = log.len();
        let (status, _, body) = w.post(&request(won[0], &log.proof(won[0], next), &log.note(next)));
        assert_eq!(status, 200, "{body}");
        size = next;
    }
}

#[test]
fn what_was_cosigned_survives_a_kill_and_the_key_its_name() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = Log::new("sealog/keep", 4, 7, "k");
    let w = Witness::start(dir.path(), "witness.test/keep", &[log.vkey()]);
    let vkey = w.vkey.clone();
    let (status, _, body) = w.post(&request(0, &[], &log.note(7)));
    assert_eq!(status, 200, "{body}");
    drop(w); // SIGKILL: the state was on disk before the 200.

    let w = Witness::start(dir.path(), "witness.test/keep", &[log.vkey()]);
    assert_eq!(w.vkey, vkey, "the same key after a restart");
    assert_eq!(w.size(&log), 7, "the cosigned size survived the kill");
    let (status, _, _) = w.post(&request(7, &[], &log.note(7)));
    assert_eq!(status, 200);
    drop(w);

    let key = Command::new(bin())
        .arg("--data")
        .arg(dir.path())
        .args(["witness", "key"])
        .output()
        .expect("witness key");
    assert!(key.status.success());
    assert_eq!(String::from_utf8_lossy(&key.stdout).trim(), vkey);

    // One witness process per data directory: a second would keep its own
    // view of what was cosigned and could cosign the other side of a fork.
    let vk = log.vkey();
    let first = Witness::start(dir.path(), "witness.test/keep", std::slice::from_ref(&vk));
    refused(dir.path(), &["--log", &vk], "held by another process");
    drop(first);

    // A lost state file is refused, not taken for a log never seen (which
    // would start it over at size 0 and cosign anything).
    let state = std::fs::read_dir(dir.path().join("logs"))
        .expect("logs")
        .map(|e| e.expect("entry").path())
        .find(|p| p.extension().is_none())
        .expect("the log's state file");
    let saved = std::fs::read(&state).expect("state");
    std::fs::remove_file(&state).expect("remove");
    refused(dir.path(), &["--log", &vk], "is missing");
    std::fs::write(&state, saved).expect("restore");

    // A prefix the router cannot take, another name on the same key (a
    // witness keeps its name), no log at all: refused before serving.
    refused(dir.path(), &["--prefix", "/{x}", "--log", &vk], "--prefix");
    refused(
        dir.path(),
        &["--name", "other", "--log", &vk],
        "keeps its name",
    );
    refused(dir.path(), &[], "at least one --log");
}

/// Runs `sealog witness ARGS` on `dir` and checks it exits 2 saying `says`.
fn refused(dir: &Path, args: &[&str], says: &str) {
    let out = Command::new(bin())
        .arg("--data")
        .arg(dir)
        .args(["witness", "--http", "127.0.0.1:0"])
        .args(args)
        .output()
        .expect("witness");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
    assert!(stderr.contains(says), "{args:?}: {stderr}");
}

/// Acceptance 2 of issue 16: the cosignature checked by an Ed25519
/// implementation that is not sealog's (Python `cryptography`), and the
/// cosigned checkpoint still opened under the log's key by the Go team's
/// `golang.org/x/mod/sumdb/note`, which ignores the witness's line as an
/// unknown signature. `.ci/run` installs both.
#[test]
fn cosignatures_verify_independently_and_cosigned_notes_still_open_in_go() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = Log::new("sealog/peer", 5, 12, "p");
    let w = Witness::start(
        dir.path().join("w").as_path(),
        "witness.test/peer",
        &[log.vkey()],
    );
    let note = log.note(12);
    let (status, _, line) = w.post(&request(0, &[], &note));
    assert_eq!(status, 200, "{line}");
    let peers = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/peers");
    let file = dir.path().join("cosigned.note");

    let python = std::env::var("SEALOG_TEST_PYTHON").unwrap_or_else(|_| "python3".into());
    let py = |text: &str| {
        std::fs::write(&file, text).expect("write note");
        Command::new(&python)
            .arg(peers.join("cosignature_verify.py"))
            .arg(&w.vkey)
            .arg(&file)
            .output()
            .expect("run python (SEALOG_TEST_PYTHON, with cryptography)")
    };
    assert_prints(&py(&format!("{note}{line}")), "cosignatures verified: 1");
    // One bit of the signature changed: Python refuses it.
    let (head, b64) = line.trim_end().rsplit_once(' ').expect("signature line");
    let mut blob = B64.decode(b64).expect("base64");
    blob[40] ^= 1;
    let out = py(&format!("{note}{head} {}\n", B64.encode(&blob)));
    assert!(
        !out.status.success(),
        "a flipped cosignature must not verify"
    );

    let go = dir.path().join("note_open");
    let built = Command::new("go")
        .args(["build", "-o"])
        .arg(&go)
        .arg(peers.join("note_open.go"))
        .env("GO111MODULE", "off")
        .env("GOPATH", "/usr/share/gocode")
        .env("GOCACHE", dir.path().join("gocache"))
        .output()
        .expect("go (Debian golang-go and golang-golang-x-mod-dev)");
    assert!(
        built.status.success(),
        "go build: {}",
        String::from_utf8_lossy(&built.stderr)
    );
    let open = |text: String| {
        let mut child = Command::new(&go)
            .arg(log.vkey())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("note_open");
        std::io::Write::write_all(&mut child.stdin.take().expect("stdin"), text.as_bytes())
            .expect("write");
        child.wait_with_output().expect("wait")
    };
    assert_prints(&open(format!("{note}{line}")), "verified 1 unverified 1");
    // And Go's check is real: a note whose log signature is broken fails.
    let mut bad = note.clone();
    let at = bad.rfind(' ').expect("sig") + 5;
    bad.replace_range(at..at + 1, if &note[at..at + 1] == "A" { "B" } else { "A" });
    let out = open(format!("{bad}{line}"));
    assert!(
        !out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}
