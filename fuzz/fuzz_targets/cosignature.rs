//! Witness cosignatures (`cosignature/v1`) on a log-signed checkpoint: a
//! note signed by the log, then up to 24 lines by up to four witnesses
//! (valid ones at chosen times, ones with a bit flipped, ones over another
//! body, ones of the wrong length) and junk lines, plus arbitrary text. The
//! expected result of `CosignatureKey::cosigned_at` and `count_cosigners`
//! is derived from the lines as built, by C2SP tlog-cosignature and
//! signed-note: a line by a witness's name and key id that is not 8 + 64
//! bytes, whose time is above 2^63 - 1, or whose signature does not verify
//! is an error; otherwise the newest valid time, or none. Junk lines make
//! the whole note malformed or not, as the library's own note parser says;
//! then every witness must agree on the error.
#![no_main]

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use ed25519_dalek::{Signer as _, SigningKey};
use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;
use sealog_journal::checkpoint::{Checkpoint, Signer};
use sealog_journal::cosignature::{count_cosigners, CosignatureKey, Cosigner};
use sealog_journal::NoteError;

#[derive(Arbitrary, Debug)]
enum Input {
    Note {
        size: u64,
        root: [u8; 32],
        lines: Vec<Line>,
    },
    Raw(String),
}

#[derive(Arbitrary, Debug)]
enum Line {
    Valid { w: u8, time: u64 },
    Flipped { w: u8, time: u64, at: u8, bit: u8 },
    OtherBody { w: u8, time: u64 },
    WrongLen { w: u8, bytes: Vec<u8> },
    Junk(String),
}

/// The four witnesses: names and keys.
fn witnesses() -> Vec<Cosigner> {
    (0..4u8)
        .map(|i| {
            Cosigner::new(
                format!("w{i}.example"),
                SigningKey::from_bytes(&[i + 10; 32]),
            )
            .expect("name")
        })
        .collect()
}

/// What a witness's line does to `cosigned_at`.
enum Effect {
    Time(u64),
    Error,
}

fuzz_target!(|input: Input| {
    let ws = witnesses();
    let keys: Vec<CosignatureKey> = ws.iter().map(Cosigner::verifier).collect();
    let (text, effects, junk, malformed) = match input {
        Input::Raw(text) => {
            for k in &keys {
                let _ = k.cosigned_at(&text);
            }
            let _ = count_cosigners(&text, &keys);
            return;
        }
        Input::Note { size, root, lines } => {
            let log = Signer::new("sealog/fuzz", SigningKey::from_bytes(&[2; 32]));
            let note = log
                .sign(&Checkpoint {
                    origin: "sealog/fuzz".into(),
                    size,
                    root,
                })
                .text;
            let body = &note[..note.find("\n\n").expect("blank line") + 1];
            let mut text = note.clone();
            let mut effects: Vec<Vec<Effect>> = (0..4).map(|_| Vec::new()).collect();
            let mut junk = false;
            let mut malformed = false;
            for l in lines.iter().take(24) {
                let (w, line, effect) = match l {
                    Line::Valid { w, time } => {
                        let w = usize::from(*w % 4);
                        let e = if *time > i64::MAX as u64 {
                            Effect::Error
                        } else {
                            Effect::Time(*time)
                        };
                        (w, ws[w].cosign(body, *time), e)
                    }
                    Line::Flipped { w, time, at, bit } => {
                        let w = usize::from(*w % 4);
                        let line = ws[w].cosign(body, *time);
                        let b64 = line.trim_end().rsplit(' ').next().expect("b64");
                        let mut raw = B64.decode(b64).expect("b64");
                        // Past the key id: the time or the signature.
                        let i = 4 + usize::from(*at) % 72;
                        raw[i] ^= 1 << (bit % 8);
                        let line = format!("\u{2014} w{w}.example {}\n", B64.encode(raw));
                        (w, line, Effect::Error)
                    }
                    Line::OtherBody { w, time } => {
                        let w = usize::from(*w % 4);
                        (w, ws[w].cosign(&format!("{body}x\n"), *time), Effect::Error)
                    }
                    Line::WrongLen { w, bytes } => {
                        let w = usize::from(*w % 4);
                        // A key id alone is not a signature line at all:
                        // signed-note makes the whole note malformed.
                        malformed |= bytes.is_empty();
                        let good = ws[w].cosign(body, 1);
                        let b64 = good.trim_end().rsplit(' ').next().expect("b64");
                        let mut raw = B64.decode(b64).expect("b64")[..4].to_vec();
                        raw.extend_from_slice(&bytes[..bytes.len().min(100)]);
                        // The wrong length, or by chance the right one
                        // with a signature that does not verify.
                        let line = format!("\u{2014} w{w}.example {}\n", B64.encode(raw));
                        (w, line, Effect::Error)
                    }
                    Line::Junk(s) => {
                        junk = true;
                        text.push_str(s);
                        continue;
                    }
                };
                effects[w].push(effect);
                text.push_str(&line);
            }
            (text, effects, junk, malformed)
        }
    };
    let results: Vec<Result<Option<u64>, NoteError>> =
        keys.iter().map(|k| k.cosigned_at(&text)).collect();
    let count = count_cosigners(&text, &keys);
    // Junk may make the note malformed, or itself be a line by a witness:
    // then only the absence of panics is checked.
    if junk {
        return;
    }
    if malformed {
        for r in &results {
            assert!(
                matches!(r, Err(NoteError::Malformed(_))),
                "a malformed note: {r:?}"
            );
        }
        assert!(
            count.is_err(),
            "count_cosigners on a malformed note: {count:?}"
        );
        return;
    }
    let mut n = 0;
    for (w, (r, e)) in results.iter().zip(&effects).enumerate() {
        let want_err = e.iter().any(|x| matches!(x, Effect::Error));
        let want = e
            .iter()
            .filter_map(|x| match x {
                Effect::Time(t) => Some(*t),
                Effect::Error => None,
            })
            .max();
        if want_err {
            assert!(
                r.is_err(),
                "witness {w}: a bad line was not refused: {r:?} on {text:?}"
            );
        } else {
            assert_eq!(
                r.as_ref().ok().copied().flatten(),
                want,
                "witness {w}: {r:?} on {text:?}"
            );
            n += usize::from(want.is_some());
        }
    }
    if effects.iter().flatten().any(|x| matches!(x, Effect::Error)) {
        assert!(count.is_err(), "count_cosigners took a bad line: {count:?}");
    } else {
        assert_eq!(count.expect("well-formed"), n);
    }
});
