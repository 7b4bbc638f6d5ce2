//! Checkpoint notes built line by line: an origin, a size and a root (each
//! valid or malformed in a chosen way), extension lines, the blank line,
//! then up to 120 signature lines: valid and bad ones by the test key,
//! valid Ed25519 lines and 0x04 cosignatures by other keys, lines by the
//! realm's name under another key id, malformed lines and junk lines. The
//! expected result of `VerifierKey::verify` is derived from the lines as
//! built, by the C2SP `signed-note` and `tlog-checkpoint` rules:
//!
//! - malformed (control characters, no final newline, not exactly one blank
//!   line, a bad origin, size or root line, no signature lines, more than
//!   100, or one that is not `— <name> <base64(key id ‖ sig)>`) → Malformed;
//! - another origin → WrongOrigin;
//! - any line by the key (its name and key id) that does not verify →
//!   BadSignature; none at all → NoSignatureByKey; else the checkpoint.
//!
//! The rules are applied to the final text (the expectation is computed
//! from it, apart from the library), so they hold for `Junk` (text
//! inserted anywhere in a built note) and `Raw` (the old behaviour:
//! arbitrary text) too. `Key` builds verifier key strings.
#![no_main]

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use ed25519_dalek::{Signer as _, SigningKey};
use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;
use sealog_journal::checkpoint::{Checkpoint, SignedCheckpoint, Signer, VerifierKey};
use sealog_journal::NoteError;
use sha2::{Digest, Sha256};

const ORIGIN: &str = "sealog/fuzz";
const SEED: u8 = 2;
const MAX_SIG_LINES: usize = 120;

#[derive(Arbitrary, Debug)]
enum Input {
    Note(Note),
    /// A built note with `text` inserted at char `at`.
    Junk {
        note: Note,
        at: u16,
        text: String,
    },
    Key(Key),
    Raw(String),
}

#[derive(Arbitrary, Debug)]
struct Note {
    origin: Origin,
    size: Size,
    root: Root,
    extensions: Vec<String>,
    separator: Sep,
    sigs: Vec<Sig>,
    final_newline: bool,
}

#[derive(Arbitrary, Debug)]
enum Origin {
    Ours,
    Other(String),
}

#[derive(Arbitrary, Debug)]
enum Size {
    Dec(u64),
    LeadingZero(u64),
    Plus(u64),
    Minus(u64),
    Spaced(u64),
    Overflow(u8),
    Text(String),
}

#[derive(Arbitrary, Debug)]
enum Root {
    Valid([u8; 32]),
    Bytes(Vec<u8>),
    Unpadded([u8; 32]),
    Text(String),
}

#[derive(Arbitrary, Debug)]
enum Sep {
    One,
    None,
    Two,
}

#[derive(Arbitrary, Debug)]
enum Sig {
    /// A valid signature by the test key.
    Ours,
    /// A valid signature by the test key with one bit flipped.
    OursFlipped {
        at: u8,
        bit: u8,
    },
    /// The test key's name and key id, these signature bytes.
    OursBytes(Vec<u8>),
    /// The test key's signature over another body.
    OursOtherBody,
    /// An Ed25519 line by the key from `seed` named `name` (signed over the
    /// body, or random bytes).
    Other {
        name: String,
        seed: u8,
        sign: bool,
    },
    /// A witness cosignature line (key id with algorithm 0x04: timestamp
    /// and signature).
    Cosig {
        name: String,
        seed: u8,
        time: u64,
    },
    /// The realm's name with this key id.
    OtherKeyId {
        id: [u8; 4],
        sig: Vec<u8>,
    },
    Malformed(Bad),
    /// Any text as a line.
    Junk(String),
}

#[derive(Arbitrary, Debug)]
enum Bad {
    NoDash(String),
    HyphenNotEmDash,
    NoSpace,
    EmptyName,
    NameWithSpace,
    NameWithPlus,
    EmptySignature,
    NotBase64(String),
    Unpadded,
    Short(Vec<u8>),
    Trailing(String),
}

#[derive(Arbitrary, Debug)]
struct Key {
    name: String,
    seed: u8,
    upper: bool,
    id_xor: u8,
    alg: u8,
    short: bool,
}

/// What `verify` must return.
#[derive(Debug, PartialEq, Eq)]
enum Want {
    Malformed,
    WrongOrigin,
    BadSignature,
    NoSignatureByKey,
    Ok(Checkpoint),
}

/// A built note: its lines and whether it ends in a newline.
struct Built {
    lines: Vec<String>,
    final_newline: bool,
}

impl Built {
    fn text(&self) -> String {
        let mut t = self.lines.join("\n");
        if self.final_newline {
            t.push('\n');
        }
        t
    }
}

fn no_newlines(s: &str) -> String {
    s.replace('\n', "_")
}

fn key_id(name: &str, alg: u8, key: &[u8; 32]) -> [u8; 4] {
    let mut h = Sha256::new();
    h.update(name.as_bytes());
    h.update(b"\n");
    h.update([alg]);
    h.update(key);
    let d = h.finalize();
    [d[0], d[1], d[2], d[3]]
}

fn sk(seed: u8) -> SigningKey {
    SigningKey::from_bytes(&[seed; 32])
}

fn sig_line(name: &str, id: &[u8; 4], sig: &[u8]) -> String {
    let mut raw = id.to_vec();
    raw.extend_from_slice(sig);
    format!("\u{2014} {name} {}", B64.encode(raw))
}

fn build(n: &Note) -> Built {
    let mut lines = Vec::new();
    lines.push(match &n.origin {
        Origin::Ours => ORIGIN.to_string(),
        Origin::Other(s) => no_newlines(s),
    });
    lines.push(match &n.size {
        Size::Dec(v) => v.to_string(),
        Size::LeadingZero(v) => format!("0{v}"),
        Size::Plus(v) => format!("+{v}"),
        Size::Minus(v) => format!("-{v}"),
        Size::Spaced(v) => format!(" {v}"),
        Size::Overflow(d) => format!("{}{}", u64::MAX as u128 + 1, d % 10),
        Size::Text(s) => no_newlines(s),
    });
    lines.push(match &n.root {
        Root::Valid(r) => B64.encode(r),
        Root::Bytes(b) => B64.encode(&b[..b.len().min(64)]),
        Root::Unpadded(r) => B64.encode(r).trim_end_matches('=').to_string(),
        Root::Text(s) => no_newlines(s),
    });
    for e in n.extensions.iter().take(4) {
        lines.push(no_newlines(e));
    }
    let mut body = lines.join("\n");
    body.push('\n');
    match n.separator {
        Sep::One => lines.push(String::new()),
        Sep::None => {}
        Sep::Two => {
            lines.push(String::new());
            lines.push(String::new());
        }
    }
    let ours = sk(SEED);
    let our_id = key_id(ORIGIN, 1, ours.verifying_key().as_bytes());
    let ours_sig = ours.sign(body.as_bytes()).to_bytes();
    for s in n.sigs.iter().take(MAX_SIG_LINES) {
        let line = match s {
            Sig::Ours => sig_line(ORIGIN, &our_id, &ours_sig),
            Sig::OursFlipped { at, bit } => {
                let mut sig = ours_sig;
                sig[usize::from(*at) % 64] ^= 1 << (bit % 8);
                sig_line(ORIGIN, &our_id, &sig)
            }
            Sig::OursBytes(b) if b.is_empty() => sig_line(ORIGIN, &our_id, &[0]),
            Sig::OursBytes(b) => sig_line(ORIGIN, &our_id, &b[..b.len().min(128)]),
            Sig::OursOtherBody => {
                let sig = ours.sign(format!("{body}x\n").as_bytes()).to_bytes();
                sig_line(ORIGIN, &our_id, &sig)
            }
            Sig::Other { name, seed, sign } => {
                let name = no_newlines(name);
                let k = sk(*seed);
                let id = key_id(&name, 1, k.verifying_key().as_bytes());
                let sig = if *sign {
                    k.sign(body.as_bytes()).to_bytes()
                } else {
                    [seed.wrapping_add(1); 64]
                };
                sig_line(&name, &id, &sig)
            }
            Sig::Cosig { name, seed, time } => {
                let name = no_newlines(name);
                let k = sk(*seed);
                let id = key_id(&name, 4, k.verifying_key().as_bytes());
                let mut sig = time.to_be_bytes().to_vec();
                sig.extend_from_slice(&k.sign(body.as_bytes()).to_bytes());
                sig_line(&name, &id, &sig)
            }
            Sig::OtherKeyId { id, sig } => {
                let sig = if sig.is_empty() {
                    &[1u8][..]
                } else {
                    &sig[..sig.len().min(96)]
                };
                sig_line(ORIGIN, id, sig)
            }
            Sig::Malformed(bad) => {
                let good = sig_line(ORIGIN, &our_id, &ours_sig);
                let b64 = good.rsplit(' ').next().expect("has a space").to_string();
                let line = match bad {
                    Bad::NoDash(s) => format!("{} {b64}", no_newlines(s)),
                    Bad::HyphenNotEmDash => format!("- {ORIGIN} {b64}"),
                    Bad::NoSpace => format!("\u{2014} {ORIGIN}{b64}"),
                    Bad::EmptyName => format!("\u{2014}  {b64}"),
                    Bad::NameWithSpace => format!("\u{2014} sealog fuzz {b64}"),
                    Bad::NameWithPlus => format!("\u{2014} sealog+fuzz {b64}"),
                    Bad::EmptySignature => format!("\u{2014} {ORIGIN} "),
                    Bad::NotBase64(s) => format!("\u{2014} {ORIGIN} {}", no_newlines(s)),
                    Bad::Unpadded => {
                        format!("\u{2014} {ORIGIN} {}", b64.trim_end_matches('='))
                    }
                    Bad::Short(b) => {
                        format!("\u{2014} {ORIGIN} {}", B64.encode(&b[..b.len().min(4)]))
                    }
                    Bad::Trailing(s) => format!("{good} {}", no_newlines(s)),
                };
                line
            }
            Sig::Junk(s) => no_newlines(s),
        };
        lines.push(line);
    }
    Built {
        lines,
        final_newline: n.final_newline,
    }
}

/// The expected result of verifying `text`, by the C2SP rules, written
/// apart from the library: split into lines, exactly one blank line, the
/// checkpoint body before it, 1..=100 signature lines after it. A line by
/// the test key verifies iff it holds the key's (deterministic) Ed25519
/// signature over the body.
fn expect(text: &str) -> Want {
    if text.len() > 128 * 1024 || text.chars().any(|c| c.is_control() && c != '\n') {
        return Want::Malformed;
    }
    let Some(text) = text.strip_suffix('\n') else {
        return Want::Malformed;
    };
    let lines: Vec<&str> = text.split('\n').collect();
    let blanks: Vec<usize> = (0..lines.len()).filter(|i| lines[*i].is_empty()).collect();
    let [e] = blanks[..] else {
        return Want::Malformed;
    };
    // origin, size and root (then extension lines) before the blank line.
    let sigs = &lines[e + 1..];
    if e < 3 || sigs.is_empty() || sigs.len() > 100 {
        return Want::Malformed;
    }
    let size_line = lines[1];
    let size_ok = size_line.bytes().all(|c| c.is_ascii_digit())
        && (size_line.len() == 1 || !size_line.starts_with('0'));
    let Some(size) = size_ok.then(|| size_line.parse::<u64>().ok()).flatten() else {
        return Want::Malformed;
    };
    let Some(root) = B64
        .decode(lines[2])
        .ok()
        .and_then(|v| <[u8; 32]>::try_from(v).ok())
    else {
        return Want::Malformed;
    };
    // Each signature line: "— " name " " base64(key id ‖ sig), the name
    // non-empty without spaces or '+', at least one signature byte.
    let mut parsed = Vec::new();
    for line in sigs {
        let Some(rest) = line.strip_prefix("\u{2014} ") else {
            return Want::Malformed;
        };
        let Some((name, b64)) = rest.split_once(' ') else {
            return Want::Malformed;
        };
        if name.is_empty() || name.contains(|c: char| c.is_whitespace() || c == '+') {
            return Want::Malformed;
        }
        let Ok(raw) = B64.decode(b64) else {
            return Want::Malformed;
        };
        if raw.len() < 5 {
            return Want::Malformed;
        }
        parsed.push((name, raw));
    }
    if lines[0] != ORIGIN {
        return Want::WrongOrigin;
    }
    let mut body = lines[..e].join("\n");
    body.push('\n');
    let ours = sk(SEED);
    let our_id = key_id(ORIGIN, 1, ours.verifying_key().as_bytes());
    let good = ours.sign(body.as_bytes()).to_bytes();
    let by_us: Vec<bool> = parsed
        .iter()
        .filter(|(name, raw)| *name == ORIGIN && raw[..4] == our_id)
        .map(|(_, raw)| raw[4..] == good)
        .collect();
    if by_us.is_empty() {
        Want::NoSignatureByKey
    } else if by_us.iter().all(|g| *g) {
        Want::Ok(Checkpoint {
            origin: ORIGIN.into(),
            size,
            root,
        })
    } else {
        Want::BadSignature
    }
}

fn got(r: Result<Checkpoint, NoteError>) -> Want {
    match r {
        Ok(cp) => Want::Ok(cp),
        Err(NoteError::Malformed(_)) => Want::Malformed,
        Err(NoteError::WrongOrigin { .. }) => Want::WrongOrigin,
        Err(NoteError::BadSignature) => Want::BadSignature,
        Err(NoteError::NoSignatureByKey(_)) => Want::NoSignatureByKey,
        Err(e @ NoteError::BadKey(_)) => panic!("verify returned a key error: {e}"),
    }
}

fn key() -> VerifierKey {
    Signer::new(ORIGIN, sk(SEED)).verifier()
}

/// Verifies `text` and checks the result against the rules and against
/// `parse_unverified`.
fn check(text: &str, key: &VerifierKey) {
    let r = got(key.verify(text));
    assert_eq!(
        r,
        expect(text),
        "verify disagrees with the C2SP rules on {text:?}"
    );
    let parsed = SignedCheckpoint::parse_unverified(text);
    match &r {
        Want::Malformed => assert!(parsed.is_err(), "verify says malformed, parse does not"),
        Want::Ok(cp) => {
            assert_eq!(&parsed.expect("verified note parses").checkpoint, cp);
            assert_eq!(cp.origin, key.name());
        }
        _ => assert!(parsed.is_ok(), "a well-formed note fails to parse"),
    }
}

fuzz_target!(|input: Input| {
    let key = key();
    match input {
        Input::Note(n) => {
            check(&build(&n).text(), &key);
        }
        Input::Junk {
            note,
            at,
            text: junk,
        } => {
            let mut text = build(&note).text();
            let chars = text.chars().count();
            let at = text
                .char_indices()
                .nth(usize::from(at) % (chars + 1))
                .map_or(text.len(), |(i, _)| i);
            text.insert_str(at, &junk);
            check(&text, &key);
        }
        Input::Key(k) => {
            let s = Signer::new(k.name.clone(), sk(k.seed));
            let v = s.verifier();
            let mut id = u32::from_str_radix(&v.key_id_hex(), 16).expect("hex key id");
            id ^= u32::from(k.id_xor);
            let mut id = format!("{id:08x}");
            if k.upper {
                id = id.to_uppercase();
            }
            let mut raw = vec![k.alg];
            raw.extend_from_slice(sk(k.seed).verifying_key().as_bytes());
            if k.short {
                raw.pop();
            }
            let text = format!("{}+{id}+{}", k.name, B64.encode(&raw));
            let parsed = text.parse::<VerifierKey>();
            let name_ok =
                !k.name.is_empty() && !k.name.contains(|c: char| c.is_whitespace() || c == '+');
            let want = name_ok && k.id_xor == 0 && k.alg == 1 && !k.short;
            assert_eq!(parsed.is_ok(), want, "verifier key {text:?}: {parsed:?}");
            if let Ok(p) = parsed {
                assert_eq!(p, v);
                assert_eq!(p.to_string().parse::<VerifierKey>().expect("round trip"), v);
            }
        }
        Input::Raw(text) => {
            check(&text, &key);
            if let Ok(k) = text.parse::<VerifierKey>() {
                assert_eq!(k.to_string().parse::<VerifierKey>().expect("round trip"), k);
            }
        }
    }
});
