//! Witness cosignatures on checkpoints: C2SP `tlog-cosignature`, the
//! Ed25519 `cosignature/v1` type.
//!
//! A cosignature is a signed-note signature line by a witness:
//!
//! ```text
//! — <witness name> base64(key id ‖ timestamp u64 big-endian ‖ Ed25519 signature)
//! ```
//!
//! The key id is the first four bytes of SHA-256(name ‖ "\n" ‖ 0x04 ‖
//! public key), and the signed message is `cosignature/v1\n`, `time <T>\n`
//! and the checkpoint's whole note body. A witness's verifier key is
//! written `<name>+<hex key id>+<base64(0x04 ‖ key)>`.
//!
//! A cosignature says that, at time T, this is the largest tree the
//! witness has seen for the origin, and that it is consistent with every
//! tree it cosigned before: a log (or whoever holds its key) cannot show
//! two histories to two clients that both carry a quorum of cosignatures
//! from honest witnesses.

use std::fmt;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use ed25519_dalek::{Signature, Signer as _, SigningKey, Verifier as _, VerifyingKey};

use crate::checkpoint::{format_vkey, key_id_for, parse_vkey, split_note, SIG_PREFIX};
use crate::error::NoteError;

/// The key id algorithm byte of Ed25519 `cosignature/v1`.
const ALG_COSIGNATURE_V1: u8 = 0x04;

/// A witness's signing key and name.
#[derive(Clone)]
pub struct Cosigner {
    name: String,
    key: SigningKey,
    key_id: [u8; 4],
}

impl fmt::Debug for Cosigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Cosigner({})", self.verifier())
    }
}

impl Cosigner {
    /// A witness named `name` (a schema-less URL, no spaces or '+').
    ///
    /// # Errors
    /// [`NoteError::BadKey`] for a name a note could not carry.
    pub fn new(name: impl Into<String>, key: SigningKey) -> Result<Self, NoteError> {
        let name = name.into();
        check_name(&name)?;
        let key_id = key_id(&name, key.verifying_key().as_bytes());
        Ok(Self { name, key, key_id })
    }

    /// The witness's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The matching verifier key.
    pub fn verifier(&self) -> CosignatureKey {
        CosignatureKey {
            name: self.name.clone(),
            key_id: self.key_id,
            key: self.key.verifying_key(),
        }
    }

    /// The cosignature line (with its final newline) on a checkpoint whose
    /// note body is `body` (its lines, each ending in a newline), made at
    /// `time` (seconds since the epoch).
    pub fn cosign(&self, body: &str, time: u64) -> String {
        let sig = self.key.sign(&signed_message(body, time));
        let mut blob = Vec::with_capacity(76);
        blob.extend_from_slice(&self.key_id);
        blob.extend_from_slice(&time.to_be_bytes());
        blob.extend_from_slice(&sig.to_bytes());
        format!("{SIG_PREFIX}{} {}\n", self.name, B64.encode(blob))
    }
}

/// What a witness signs: `cosignature/v1`, the time, the note body.
fn signed_message(body: &str, time: u64) -> Vec<u8> {
    format!("cosignature/v1\ntime {time}\n{body}").into_bytes()
}

fn check_name(name: &str) -> Result<(), NoteError> {
    if name.is_empty() || name.contains(|c: char| c.is_whitespace() || c == '+') {
        return Err(NoteError::BadKey("key name is empty or has a space or '+'"));
    }
    Ok(())
}

fn key_id(name: &str, key: &[u8; 32]) -> [u8; 4] {
    key_id_for(name, ALG_COSIGNATURE_V1, key)
}

/// A witness's public key, which checks its cosignatures.
#[derive(Clone, PartialEq, Eq)]
pub struct CosignatureKey {
    name: String,
    key_id: [u8; 4],
    key: VerifyingKey,
}

impl fmt::Debug for CosignatureKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CosignatureKey({self})")
    }
}

impl fmt::Display for CosignatureKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&format_vkey(
            &self.name,
            &self.key_id,
            ALG_COSIGNATURE_V1,
            &self.key,
        ))
    }
}

impl std::str::FromStr for CosignatureKey {
    type Err = NoteError;

    fn from_str(s: &str) -> Result<Self, NoteError> {
        let (name, key_id, key) = parse_vkey(
            s,
            ALG_COSIGNATURE_V1,
            "key type is not an Ed25519 cosignature/v1 key (0x04)",
        )?;
        check_name(&name)?;
        Ok(Self { name, key_id, key })
    }
}

impl CosignatureKey {
    /// The witness's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The time of this witness's valid cosignature on the signed note
    /// `text`, or `None` when the note carries none. A line by this key
    /// that does not verify is an error, as C2SP signed-note asks.
    ///
    /// # Errors
    /// [`NoteError::Malformed`] for a malformed note or a cosignature line
    /// of the wrong length; [`NoteError::BadSignature`] when a line by this
    /// key does not verify.
    pub fn cosigned_at(&self, text: &str) -> Result<Option<u64>, NoteError> {
        let (body, sigs) = split_note(text)?;
        let mut found = None;
        for line in &sigs {
            if line.name != self.name || line.key_id != self.key_id {
                continue;
            }
            if line.sig.len() != 8 + 64 {
                return Err(NoteError::Malformed(
                    "a cosignature is not a timestamp and an Ed25519 signature",
                ));
            }
            let (time, sig) = line.sig.split_at(8);
            let time = u64::from_be_bytes(time.try_into().expect("8 bytes"));
            if time > i64::MAX as u64 {
                return Err(NoteError::Malformed("cosignature time is above 2^63 - 1"));
            }
            let sig = Signature::from_slice(sig).map_err(|_| NoteError::BadSignature)?;
            self.key
                .verify(&signed_message(body, time), &sig)
                .map_err(|_| NoteError::BadSignature)?;
            found = Some(found.map_or(time, |t: u64| t.max(time)));
        }
        Ok(found)
    }
}

/// How many of `witnesses` validly cosigned the note `text` (each witness
/// counted once). A line by a known witness that does not verify is an
/// error, not merely uncounted.
///
/// # Errors
/// As [`CosignatureKey::cosigned_at`].
pub fn count_cosigners(text: &str, witnesses: &[CosignatureKey]) -> Result<usize, NoteError> {
    let mut n = 0;
    for (i, w) in witnesses.iter().enumerate() {
        if witnesses[..i].contains(w) {
            continue;
        }
        if w.cosigned_at(text)?.is_some() {
            n += 1;
        }
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checkpoint::{Checkpoint, Signer};

    fn note() -> (Signer, String) {
        let log = Signer::new("sealog/acme", SigningKey::from_bytes(&[3; 32]));
        let cp = Checkpoint {
            origin: "sealog/acme".into(),
            size: 7,
            root: [9; 32],
        };
        let text = log.sign(&cp).text;
        (log, text)
    }

    #[test]
    fn a_cosignature_verifies_and_travels_with_the_note() {
        let (log, text) = note();
        let w =
            Cosigner::new("witness.example/w1", SigningKey::from_bytes(&[5; 32])).expect("name");
        let body = &text[..text.find("\n\n").expect("blank") + 1];
        let line = w.cosign(body, 1_679_315_147);
        let cosigned = format!("{text}{line}");
        let key: CosignatureKey = w.verifier().to_string().parse().expect("round trip");
        assert_eq!(key, w.verifier());
        assert_eq!(
            key.cosigned_at(&cosigned).expect("valid"),
            Some(1_679_315_147)
        );
        assert_eq!(key.cosigned_at(&text).expect("valid"), None);
        // The log's own key still opens the note with the cosignature on it.
        assert_eq!(log.verifier().verify(&cosigned).expect("log sig").size, 7);
        assert_eq!(
            count_cosigners(&cosigned, &[key.clone(), key.clone()]).expect("ok"),
            1
        );
        // A changed time breaks the signature.
        let other = w.cosign(body, 1_679_315_148);
        let blob_a = B64
            .decode(line.trim_end().rsplit(' ').next().expect("b64"))
            .expect("b64");
        let mut blob_b = B64
            .decode(other.trim_end().rsplit(' ').next().expect("b64"))
            .expect("b64");
        blob_b[12..].copy_from_slice(&blob_a[12..]);
        let forged = format!(
            "{text}{SIG_PREFIX}witness.example/w1 {}\n",
            B64.encode(blob_b)
        );
        assert!(matches!(
            key.cosigned_at(&forged),
            Err(NoteError::BadSignature)
        ));
    }

    #[test]
    fn keys_of_other_types_and_names_are_refused() {
        let w = Cosigner::new("w", SigningKey::from_bytes(&[5; 32])).expect("name");
        let s = w.verifier().to_string();
        // The log's key type (0x01) is not a cosignature key.
        let log = Signer::new("w", SigningKey::from_bytes(&[5; 32]));
        assert!(log
            .verifier()
            .to_string()
            .parse::<CosignatureKey>()
            .is_err());
        assert!(Cosigner::new("a b", SigningKey::from_bytes(&[5; 32])).is_err());
        let renamed = s.replacen("w+", "x+", 1);
        assert!(renamed.parse::<CosignatureKey>().is_err());
    }
}
