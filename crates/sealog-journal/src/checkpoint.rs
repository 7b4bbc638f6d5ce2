//! Checkpoints as C2SP signed notes (`tlog-checkpoint`, `signed-note`).
//!
//! A checkpoint body is three lines: the origin (`sealog/<realm>`), the
//! tree size in decimal, and the base64 root hash. The signed note is the
//! body, a blank line, and one signature line per signer:
//!
//! ```text
//! sealog/acme
//! 1000000
//! 9bK0...base64 root...=
//!
//! — sealog/acme AbCdEf...base64(key id ‖ Ed25519 signature)...
//! ```
//!
//! The key id is the first four bytes of SHA-256(name ‖ "\n" ‖ 0x01 ‖ public
//! key); a verifier key is written `<name>+<hex key id>+<base64(0x01 ‖ key)>`.

use std::fmt;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use ed25519_dalek::{Signature, Signer as _, SigningKey, Verifier as _, VerifyingKey};
use sha2::{Digest, Sha256};

use crate::error::NoteError;
use crate::merkle::Hash;

/// The signature algorithm byte for Ed25519 in C2SP signed notes.
const ALG_ED25519: u8 = 0x01;
/// The em dash that starts every signature line.
const SIG_PREFIX: &str = "\u{2014} ";
/// Largest checkpoint note accepted when parsing.
pub const MAX_NOTE_LEN: usize = 4096;

/// The origin line for a realm's log.
pub fn origin_for(realm: &str) -> String {
    format!("sealog/{realm}")
}

/// An unsigned tree head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    /// `sealog/<realm>`.
    pub origin: String,
    /// Number of leaves.
    pub size: u64,
    /// MTH over the leaves.
    pub root: Hash,
}

impl Checkpoint {
    /// The note body: origin, size and base64 root, each ending in a newline.
    pub fn body(&self) -> String {
        format!(
            "{}\n{}\n{}\n",
            self.origin,
            self.size,
            B64.encode(self.root)
        )
    }

    fn parse_body(body: &str) -> Result<Self, NoteError> {
        let mut lines = body.split_terminator('\n');
        let origin = lines
            .next()
            .filter(|l| !l.is_empty())
            .ok_or(NoteError::Malformed("missing origin line"))?;
        let size = lines
            .next()
            .filter(|s| {
                !s.is_empty()
                    && s.bytes().all(|b| b.is_ascii_digit())
                    && (s.len() == 1 || !s.starts_with('0'))
            })
            .and_then(|s| s.parse().ok())
            .ok_or(NoteError::Malformed(
                "tree size line is not a decimal number",
            ))?;
        let root_line = lines
            .next()
            .ok_or(NoteError::Malformed("missing root hash line"))?;
        let root: Hash = B64
            .decode(root_line)
            .ok()
            .and_then(|v| v.try_into().ok())
            .ok_or(NoteError::Malformed("root hash is not base64 of 32 bytes"))?;
        Ok(Self {
            origin: origin.to_string(),
            size,
            root,
        })
    }
}

/// A key that signs a realm's checkpoints.
#[derive(Clone)]
pub struct Signer {
    name: String,
    key: SigningKey,
    key_id: [u8; 4],
}

impl fmt::Debug for Signer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Signer")
            .field("name", &self.name)
            .field("key_id", &hex4(&self.key_id))
            .finish_non_exhaustive()
    }
}

impl Signer {
    /// A signer named `name` (the origin) holding `key`.
    pub fn new(name: impl Into<String>, key: SigningKey) -> Self {
        let name = name.into();
        let key_id = key_id(&name, key.verifying_key().as_bytes());
        Self { name, key, key_id }
    }

    /// The matching verifier key.
    pub fn verifier(&self) -> VerifierKey {
        VerifierKey {
            name: self.name.clone(),
            key_id: self.key_id,
            key: self.key.verifying_key(),
        }
    }

    /// Signs `cp` and returns the full signed note.
    pub fn sign(&self, cp: &Checkpoint) -> SignedCheckpoint {
        let body = cp.body();
        let sig = self.key.sign(body.as_bytes());
        let mut blob = Vec::with_capacity(68);
        blob.extend_from_slice(&self.key_id);
        blob.extend_from_slice(&sig.to_bytes());
        let text = format!("{body}\n{SIG_PREFIX}{} {}\n", self.name, B64.encode(blob));
        SignedCheckpoint {
            checkpoint: cp.clone(),
            text,
        }
    }
}

fn key_id(name: &str, key: &[u8; 32]) -> [u8; 4] {
    let mut h = Sha256::new();
    h.update(name.as_bytes());
    h.update(b"\n");
    h.update([ALG_ED25519]);
    h.update(key);
    let d = h.finalize();
    [d[0], d[1], d[2], d[3]]
}

fn hex4(b: &[u8; 4]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// A public key that verifies checkpoints, in note verifier key form.
#[derive(Clone, PartialEq, Eq)]
pub struct VerifierKey {
    name: String,
    key_id: [u8; 4],
    key: VerifyingKey,
}

impl fmt::Debug for VerifierKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "VerifierKey({self})")
    }
}

impl fmt::Display for VerifierKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut raw = Vec::with_capacity(33);
        raw.push(ALG_ED25519);
        raw.extend_from_slice(self.key.as_bytes());
        write!(
            f,
            "{}+{}+{}",
            self.name,
            hex4(&self.key_id),
            B64.encode(raw)
        )
    }
}

impl std::str::FromStr for VerifierKey {
    type Err = NoteError;

    fn from_str(s: &str) -> Result<Self, NoteError> {
        let s = s.trim();
        // Names cannot contain '+', base64 can: split from the left.
        let mut parts = s.splitn(3, '+');
        let (Some(name), Some(id_hex), Some(key_b64)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(NoteError::BadKey(
                "expected <name>+<hex key id>+<base64 key>",
            ));
        };
        if name.is_empty() || name.contains(char::is_whitespace) {
            return Err(NoteError::BadKey("key name is empty or has spaces"));
        }
        let raw = B64
            .decode(key_b64)
            .map_err(|_| NoteError::BadKey("key is not base64"))?;
        let (alg, key) = raw.split_first().ok_or(NoteError::BadKey("key is empty"))?;
        if *alg != ALG_ED25519 {
            return Err(NoteError::BadKey("key algorithm is not Ed25519 (0x01)"));
        }
        let key: [u8; 32] = key
            .try_into()
            .map_err(|_| NoteError::BadKey("Ed25519 key is not 32 bytes"))?;
        let key = VerifyingKey::from_bytes(&key)
            .map_err(|_| NoteError::BadKey("not an Ed25519 point"))?;
        let want = key_id(name, key.as_bytes());
        if id_hex.len() != 8 || hex4(&want) != id_hex.to_ascii_lowercase() {
            return Err(NoteError::BadKey("key id does not match name and key"));
        }
        Ok(Self {
            name: name.to_string(),
            key_id: want,
            key,
        })
    }
}

impl VerifierKey {
    /// The key's name: the origin it signs for.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The key id as 8 hex digits.
    pub fn key_id_hex(&self) -> String {
        hex4(&self.key_id)
    }

    /// Parses a signed checkpoint note and checks its signature with this key.
    ///
    /// # Errors
    /// [`NoteError`] when the note is malformed, names another origin, or has
    /// no valid signature by this key.
    pub fn verify(&self, text: &str) -> Result<Checkpoint, NoteError> {
        let (body, sigs) = split_note(text)?;
        let cp = Checkpoint::parse_body(body)?;
        if cp.origin != self.name {
            return Err(NoteError::WrongOrigin {
                want: self.name.clone(),
                got: cp.origin,
            });
        }
        let mut seen_ours = false;
        for line in sigs.split_terminator('\n') {
            let rest = line.strip_prefix(SIG_PREFIX).ok_or(NoteError::Malformed(
                "signature line must start with an em dash",
            ))?;
            let (name, b64) = rest.split_once(' ').ok_or(NoteError::Malformed(
                "signature line needs a name and a signature",
            ))?;
            if name != self.name {
                continue;
            }
            let blob = B64
                .decode(b64)
                .map_err(|_| NoteError::Malformed("signature is not base64"))?;
            if blob.len() != 68 || blob[..4] != self.key_id {
                continue;
            }
            seen_ours = true;
            let sig = Signature::from_slice(&blob[4..]).map_err(|_| NoteError::BadSignature)?;
            if self.key.verify(body.as_bytes(), &sig).is_ok() {
                return Ok(cp);
            }
        }
        if seen_ours {
            Err(NoteError::BadSignature)
        } else {
            Err(NoteError::NoSignatureByKey(self.to_string()))
        }
    }
}

/// A checkpoint together with its signed note text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedCheckpoint {
    /// The tree head.
    pub checkpoint: Checkpoint,
    /// The whole signed note, ending in a newline.
    pub text: String,
}

impl SignedCheckpoint {
    /// Parses a note without checking any signature (the journal re-checks
    /// what it reads; clients must use [`VerifierKey::verify`]).
    ///
    /// # Errors
    /// [`NoteError`] when the note is malformed.
    pub fn parse_unverified(text: &str) -> Result<Self, NoteError> {
        let (body, _) = split_note(text)?;
        Ok(Self {
            checkpoint: Checkpoint::parse_body(body)?,
            text: text.to_string(),
        })
    }
}

/// Splits a signed note into body (with its final newline) and signature lines.
fn split_note(text: &str) -> Result<(&str, &str), NoteError> {
    if text.len() > MAX_NOTE_LEN {
        return Err(NoteError::Malformed("note is too long"));
    }
    if text.chars().any(|c| c.is_control() && c != '\n') {
        return Err(NoteError::Malformed("note has control characters"));
    }
    let at = text.find("\n\n").ok_or(NoteError::Malformed(
        "note has no blank line before its signatures",
    ))?;
    let (body, sigs) = (&text[..=at], &text[at + 2..]);
    if sigs.is_empty() || !sigs.ends_with('\n') {
        return Err(NoteError::Malformed("note has no signature lines"));
    }
    Ok((body, sigs))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn signer(seed: u8) -> Signer {
        Signer::new("sealog/acme", SigningKey::from_bytes(&[seed; 32]))
    }

    #[test]
    fn sign_and_verify() {
        let s = signer(1);
        let cp = Checkpoint {
            origin: "sealog/acme".into(),
            size: 12,
            root: [7; 32],
        };
        let signed = s.sign(&cp);
        assert!(signed.text.contains("\n\n\u{2014} sealog/acme "));
        let vk: VerifierKey = s.verifier().to_string().parse().expect("round trip");
        assert_eq!(vk.verify(&signed.text).expect("valid"), cp);
        assert_eq!(
            SignedCheckpoint::parse_unverified(&signed.text).expect("parses"),
            signed
        );
        // Another key with the same name: the key id differs, so no signature is ours.
        let other = signer(2).verifier();
        assert!(matches!(
            other.verify(&signed.text),
            Err(NoteError::NoSignatureByKey(_))
        ));
        // A changed body fails.
        let forged = signed.text.replacen("\n12\n", "\n13\n", 1);
        assert_eq!(vk.verify(&forged), Err(NoteError::BadSignature));
    }

    #[test]
    fn bad_keys() {
        let good = signer(1).verifier().to_string();
        assert!(good.starts_with("sealog/acme+"));
        let raw = B64
            .decode(good.rsplit('+').next().unwrap_or(""))
            .expect("base64");
        let mut other_alg = raw.clone();
        other_alg[0] = 0x02;
        let other_alg = format!(
            "sealog/acme+{}+{}",
            signer(1).verifier().key_id_hex(),
            B64.encode(other_alg)
        );
        for bad in ["", "a+b", "sealog/acme+00000000+AQ==", other_alg.as_str()] {
            assert!(bad.parse::<VerifierKey>().is_err(), "{bad}");
        }
        let wrong_id = format!(
            "sealog/acme+deadbeef+{}",
            good.rsplit('+').next().unwrap_or("")
        );
        assert!(wrong_id.parse::<VerifierKey>().is_err());
    }

    proptest! {
        #[test]
        fn keys_round_trip(seed in any::<[u8; 32]>()) {
            let v = Signer::new("sealog/r", SigningKey::from_bytes(&seed)).verifier();
            prop_assert_eq!(v.to_string().parse::<VerifierKey>().ok(), Some(v));
        }

        #[test]
        fn parsing_never_panics(s in "\\PC{0,200}") {
            let _ = SignedCheckpoint::parse_unverified(&s);
            let _ = signer(3).verifier().verify(&s);
            let _ = s.parse::<VerifierKey>();
        }
    }
}
