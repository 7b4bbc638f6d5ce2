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
//!
//! Parsing is as strict as Go's `golang.org/x/mod/sumdb/note.Open` (and C2SP
//! `signed-note`): the note is UTF-8 without control characters other than
//! newline, ends in a newline, has exactly one blank line (checkpoint bodies
//! have no empty lines), and every line after it is a well-formed signature
//! line `— <name> <base64(key id ‖ signature)>`, at most
//! [`MAX_SIGNATURES`] of them. Lines by other keys (witness cosignatures, a
//! rotated key) are ignored once they are well-formed; every line by the
//! verifying key must verify.

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
pub(crate) const SIG_PREFIX: &str = "\u{2014} ";
/// Largest checkpoint note accepted when parsing.
///
/// 100 Ed25519 or witness cosignature lines take about 20 KiB; C2SP
/// `signed-note` requires accepting at least 16 signatures, and 16
/// post-quantum signatures (up to about 5 kB each, a third more in base64)
/// take about 110 KiB. The number of lines is capped by [`MAX_SIGNATURES`].
pub const MAX_NOTE_LEN: usize = 128 * 1024;
/// Most signature lines a note may carry (`maxSig` in Go's `note.Open`):
/// bounds the work spent on one note.
pub const MAX_SIGNATURES: usize = 100;
// The error messages of `split_note` spell these limits out.
const _: () = assert!(MAX_NOTE_LEN == 128 * 1024 && MAX_SIGNATURES == 100);

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
        SignedCheckpoint {
            checkpoint: cp.clone(),
            text: self.sign_note(&cp.body()),
        }
    }

    /// Signs any note `body` (lines, each ending in a newline, the first
    /// naming this signer) and returns the signed note. Other statements
    /// than checkpoints (retention records) use it; their second line is
    /// never a decimal size, so none of them parses as a checkpoint.
    pub fn sign_note(&self, body: &str) -> String {
        let sig = self.key.sign(body.as_bytes());
        let mut blob = Vec::with_capacity(68);
        blob.extend_from_slice(&self.key_id);
        blob.extend_from_slice(&sig.to_bytes());
        format!("{body}\n{SIG_PREFIX}{} {}\n", self.name, B64.encode(blob))
    }
}

fn key_id(name: &str, key: &[u8; 32]) -> [u8; 4] {
    key_id_for(name, ALG_ED25519, key)
}

/// SHA-256(name ‖ "\n" ‖ alg ‖ key)[:4], the signed-note key id.
pub(crate) fn key_id_for(name: &str, alg: u8, key: &[u8; 32]) -> [u8; 4] {
    let mut h = Sha256::new();
    h.update(name.as_bytes());
    h.update(b"\n");
    h.update([alg]);
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
        f.write_str(&format_vkey(
            &self.name,
            &self.key_id,
            ALG_ED25519,
            &self.key,
        ))
    }
}

impl std::str::FromStr for VerifierKey {
    type Err = NoteError;

    fn from_str(s: &str) -> Result<Self, NoteError> {
        let (name, key_id, key) =
            parse_vkey(s, ALG_ED25519, "key algorithm is not Ed25519 (0x01)")?;
        Ok(Self { name, key_id, key })
    }
}

/// `<name>+<hex key id>+<base64(alg ‖ key)>`.
pub(crate) fn format_vkey(name: &str, key_id: &[u8; 4], alg: u8, key: &VerifyingKey) -> String {
    let mut raw = Vec::with_capacity(33);
    raw.push(alg);
    raw.extend_from_slice(key.as_bytes());
    format!("{name}+{}+{}", hex4(key_id), B64.encode(raw))
}

/// Parses a verifier key of algorithm `alg` (`wrong_alg` names the refusal
/// of another), checking its key id.
pub(crate) fn parse_vkey(
    s: &str,
    alg: u8,
    wrong_alg: &'static str,
) -> Result<(String, [u8; 4], VerifyingKey), NoteError> {
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
    let (got, key) = raw.split_first().ok_or(NoteError::BadKey("key is empty"))?;
    if *got != alg {
        return Err(NoteError::BadKey(wrong_alg));
    }
    let key: [u8; 32] = key
        .try_into()
        .map_err(|_| NoteError::BadKey("Ed25519 key is not 32 bytes"))?;
    let key =
        VerifyingKey::from_bytes(&key).map_err(|_| NoteError::BadKey("not an Ed25519 point"))?;
    let want = key_id_for(name, alg, key.as_bytes());
    if id_hex.len() != 8 || hex4(&want) != id_hex.to_ascii_lowercase() {
        return Err(NoteError::BadKey("key id does not match name and key"));
    }
    Ok((name.to_string(), want, key))
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
    /// Signature lines by other keys (another name or key id) are ignored;
    /// every line by this key must verify, and at least one must be present.
    ///
    /// # Errors
    /// [`NoteError::Malformed`] when the note is malformed (see the module
    /// docs), [`NoteError::WrongOrigin`] when it names another origin,
    /// [`NoteError::BadSignature`] when a line by this key does not verify,
    /// [`NoteError::NoSignatureByKey`] when no line is by this key.
    pub fn verify(&self, text: &str) -> Result<Checkpoint, NoteError> {
        let (body, _) = split_note(text)?;
        let cp = Checkpoint::parse_body(body)?;
        if cp.origin != self.name {
            return Err(NoteError::WrongOrigin {
                want: self.name.clone(),
                got: cp.origin,
            });
        }
        self.verify_note(text)?;
        Ok(cp)
    }

    /// Checks the signatures of any signed note by this key and returns its
    /// body (each line ending in a newline). The caller parses the body.
    ///
    /// # Errors
    /// As [`VerifierKey::verify`], but the body is not parsed.
    pub fn verify_note<'t>(&self, text: &'t str) -> Result<&'t str, NoteError> {
        let (body, sigs) = split_note(text)?;
        // C2SP signed-note: a line whose name and key id match a known key
        // MUST be verified, and a failure SHOULD reject the note. Go's
        // note.Open verifies only the first line per key and drops later
        // ones unchecked (so it accepts a valid line followed by an invalid
        // one, but refuses an invalid one followed by a valid one). We verify
        // every line by our key, so an invalid one is refused wherever it
        // stands. Repeated identical valid lines are accepted, as note.Open
        // accepts repeated signatures by one key; they are not re-verified.
        let mut verified: Vec<&[u8]> = Vec::new();
        for line in &sigs {
            if line.name != self.name || line.key_id != self.key_id {
                continue;
            }
            if verified.contains(&line.sig.as_slice()) {
                continue;
            }
            let sig = Signature::from_slice(&line.sig).map_err(|_| NoteError::BadSignature)?;
            self.key
                .verify(body.as_bytes(), &sig)
                .map_err(|_| NoteError::BadSignature)?;
            verified.push(&line.sig);
        }
        if verified.is_empty() {
            Err(NoteError::NoSignatureByKey(self.to_string()))
        } else {
            Ok(body)
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

/// One well-formed signature line: `— <name> <base64(key id ‖ sig)>`.
pub(crate) struct SigLine<'a> {
    pub(crate) name: &'a str,
    pub(crate) key_id: [u8; 4],
    /// The bytes after the key id (at least one).
    pub(crate) sig: Vec<u8>,
}

fn malformed(reason: &'static str) -> NoteError {
    NoteError::Malformed(reason)
}

impl<'a> SigLine<'a> {
    fn parse(line: &'a str) -> Result<Self, NoteError> {
        let rest = line.strip_prefix(SIG_PREFIX).ok_or(malformed(
            "signature line does not start with an em dash and a space",
        ))?;
        let (name, b64) = rest.split_once(' ').ok_or(malformed(
            "signature line has no space between key name and signature",
        ))?;
        if name.is_empty() {
            return Err(malformed("signature line has an empty key name"));
        }
        if name.contains(|c: char| c.is_whitespace() || c == '+') {
            return Err(malformed("signature key name contains a space or '+'"));
        }
        if b64.is_empty() {
            return Err(malformed("signature line has an empty signature"));
        }
        // Text after the signature (another space) fails here too.
        let raw = B64
            .decode(b64)
            .map_err(|_| malformed("signature is not standard padded base64"))?;
        if raw.len() < 5 {
            return Err(malformed(
                "signature is shorter than a 4-byte key id and a signature",
            ));
        }
        let (id, sig) = raw.split_at(4);
        Ok(Self {
            name,
            key_id: [id[0], id[1], id[2], id[3]],
            sig: sig.to_vec(),
        })
    }
}

/// Splits a signed note into its body (with its final newline) and its
/// signature lines, refusing anything note.Open would refuse.
pub(crate) fn split_note(text: &str) -> Result<(&str, Vec<SigLine<'_>>), NoteError> {
    if text.len() > MAX_NOTE_LEN {
        return Err(malformed("note is longer than 128 KiB"));
    }
    if text.chars().any(|c| c.is_control() && c != '\n') {
        return Err(malformed("note has control characters"));
    }
    if !text.ends_with('\n') {
        return Err(malformed("note does not end in a newline"));
    }
    let at = text
        .find("\n\n")
        .ok_or(malformed("note has no blank line before its signatures"))?;
    // Checkpoint bodies have no empty lines, so the first blank line is the
    // separator and there must be no other (C2SP splits at the last one;
    // with a single blank line both agree).
    if text[at + 1..].contains("\n\n") {
        return Err(if text[at + 2..].starts_with(SIG_PREFIX) {
            malformed("empty line inside the signature block")
        } else {
            malformed("more than one blank line before the signatures")
        });
    }
    let (body, block) = (&text[..=at], &text[at + 2..]);
    if block.is_empty() {
        return Err(malformed("note has no signature lines"));
    }
    let mut sigs = Vec::new();
    for line in block.split_terminator('\n') {
        if sigs.len() == MAX_SIGNATURES {
            return Err(malformed("note has more than 100 signature lines"));
        }
        sigs.push(SigLine::parse(line)?);
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

    fn cp(size: u64) -> Checkpoint {
        Checkpoint {
            origin: "sealog/acme".into(),
            size,
            root: [9; 32],
        }
    }

    /// The signature block of a note (after the blank line).
    fn sig_block(text: &str) -> &str {
        let at = text.find("\n\n").expect("blank line");
        &text[at + 2..]
    }

    /// A line shaped like a C2SP tlog-cosignature (0x04 key id, 8-byte
    /// timestamp, 64-byte signature) by witness `i`, about `len` bytes long.
    fn cosig_line(i: usize, len: usize) -> String {
        let name = format!(
            "witness{i:03}.example.org/{}",
            "w".repeat(len.saturating_sub(134))
        );
        let mut h = Sha256::new();
        h.update(name.as_bytes());
        h.update(b"\n");
        h.update([0x04]);
        h.update([i as u8; 32]);
        let mut blob = h.finalize()[..4].to_vec();
        blob.extend_from_slice(&(1_700_000_000u64 + i as u64).to_be_bytes());
        blob.extend_from_slice(&[i as u8; 64]);
        format!("{SIG_PREFIX}{name} {}\n", B64.encode(blob))
    }

    /// Asserts both parse_unverified and verify refuse `text` as malformed
    /// for the same reason, and returns it.
    fn malformed_reason(text: &str) -> &'static str {
        let a = SignedCheckpoint::parse_unverified(text);
        let b = signer(1).verifier().verify(text);
        match (a, b) {
            (Err(NoteError::Malformed(x)), Err(NoteError::Malformed(y))) if x == y => x,
            other => panic!("expected the same Malformed from both, got {other:?}"),
        }
    }

    #[test]
    fn junk_after_signatures_is_refused() {
        let text = signer(1).sign(&cp(5)).text;
        assert_eq!(
            malformed_reason(&format!("{text}junk\n")),
            "signature line does not start with an em dash and a space"
        );
        assert_eq!(
            malformed_reason(&format!("{text}junk")),
            "note does not end in a newline"
        );
        // Text after the base64 on the signature line itself.
        let trailing = format!("{} junk\n", text.strip_suffix('\n').expect("newline"));
        assert!(trailing.ends_with(" junk\n"));
        assert_eq!(
            malformed_reason(&trailing),
            "signature is not standard padded base64"
        );
        // A trailing empty line.
        assert_eq!(
            malformed_reason(&format!("{text}\n")),
            "empty line inside the signature block"
        );
    }

    #[test]
    fn blank_lines_are_refused() {
        let s = signer(1);
        let text = s.sign(&cp(5)).text;
        let (body, ours) = (cp(5).body(), sig_block(&text));
        let w = cosig_line(1, 150);
        assert!(s.verifier().verify(&format!("{body}\n{ours}{w}")).is_ok());
        assert_eq!(
            malformed_reason(&format!("{body}\n{ours}\n{w}")),
            "empty line inside the signature block"
        );
        assert_eq!(
            malformed_reason(&format!("{body}\n\n{ours}")),
            "more than one blank line before the signatures"
        );
        let gap = format!("sealog/acme\n\n5\n{}\n\n{ours}", B64.encode([9; 32]));
        assert_eq!(
            malformed_reason(&gap),
            "more than one blank line before the signatures"
        );
        assert_eq!(
            malformed_reason(&format!("{body}\n")),
            "note has no signature lines"
        );
        assert_eq!(
            malformed_reason(&format!("{body}{ours}")),
            "note has no blank line before its signatures"
        );
    }

    #[test]
    fn missing_final_newline_is_refused() {
        let text = signer(1).sign(&cp(5)).text;
        let cut = text.strip_suffix('\n').expect("ends in newline");
        assert_eq!(malformed_reason(cut), "note does not end in a newline");
    }

    #[test]
    fn at_most_100_signature_lines() {
        let s = signer(1);
        let signed = s.sign(&cp(5));
        // Ours plus 99 cosignature-like lines of about 200 bytes: 100 lines,
        // about 20 KiB, far over the old 4 KiB limit.
        let mut text = signed.text.clone();
        for i in 0..99 {
            text.push_str(&cosig_line(i, 200));
        }
        assert_eq!(sig_block(&text).lines().count(), 100);
        assert!(text.len() > 19 * 1024, "{}", text.len());
        assert_eq!(s.verifier().verify(&text), Ok(cp(5)));
        let parsed = SignedCheckpoint::parse_unverified(&text).expect("parses");
        assert_eq!(parsed.text, text, "text is kept exactly");
        assert_eq!(parsed.checkpoint, cp(5));
        // Our line last works as well.
        let mut last = format!("{}\n", cp(5).body());
        for i in 0..99 {
            last.push_str(&cosig_line(i, 200));
        }
        last.push_str(sig_block(&signed.text));
        assert_eq!(s.verifier().verify(&last), Ok(cp(5)));
        // A 101st line is refused, whoever signed it.
        text.push_str(&cosig_line(99, 200));
        assert_eq!(
            malformed_reason(&text),
            "note has more than 100 signature lines"
        );
        let mut ours_101st = last.clone();
        ours_101st.push_str(sig_block(&signed.text));
        assert_eq!(
            malformed_reason(&ours_101st),
            "note has more than 100 signature lines"
        );
    }

    #[test]
    fn hundred_cosignatures_parse_without_ours() {
        let mut text = format!("{}\n", cp(5).body());
        for i in 0..100 {
            text.push_str(&cosig_line(i, 205));
        }
        assert!(
            (19 * 1024..22 * 1024).contains(&text.len()),
            "{}",
            text.len()
        );
        let parsed = SignedCheckpoint::parse_unverified(&text).expect("100 lines parse");
        assert_eq!(parsed.text, text);
        assert!(matches!(
            signer(1).verifier().verify(&text),
            Err(NoteError::NoSignatureByKey(_))
        ));
    }

    #[test]
    fn over_max_len_is_refused() {
        let text = signer(1).sign(&cp(5)).text;
        let long = format!(
            "{text}{SIG_PREFIX}big {}\n",
            B64.encode(vec![1u8; MAX_NOTE_LEN])
        );
        assert_eq!(malformed_reason(&long), "note is longer than 128 KiB");
    }

    #[test]
    fn bad_signature_by_our_key_is_refused_wherever_it_stands() {
        let s = signer(1);
        let v = s.verifier();
        let good = s.sign(&cp(5));
        let ours = sig_block(&good.text);
        // Our key's signature over another body: right name and key id,
        // wrong signature.
        let bad = sig_block(&s.sign(&cp(6)).text).to_string();
        assert_ne!(bad, ours);
        let body = cp(5).body();
        assert_eq!(
            v.verify(&format!("{body}\n{bad}{ours}")),
            Err(NoteError::BadSignature)
        );
        // note.Open would accept this order (it checks only the first line
        // per key); we refuse it too.
        assert_eq!(
            v.verify(&format!("{body}\n{ours}{bad}")),
            Err(NoteError::BadSignature)
        );
        // Still well-formed: parsing without verifying accepts it.
        assert!(SignedCheckpoint::parse_unverified(&format!("{body}\n{bad}{ours}")).is_ok());
        // A line with our name and key id but a signature of the wrong length.
        let mut short = s.verifier().key_id.to_vec();
        short.extend_from_slice(&[0; 10]);
        let short = format!("{SIG_PREFIX}sealog/acme {}\n", B64.encode(short));
        assert_eq!(
            v.verify(&format!("{body}\n{short}{ours}")),
            Err(NoteError::BadSignature)
        );
        // Repeated valid signatures by our key are accepted, like note.Open.
        assert_eq!(v.verify(&format!("{body}\n{ours}{ours}")), Ok(cp(5)));
    }

    #[test]
    fn bad_signatures_by_unknown_keys_are_ignored() {
        let s = signer(1);
        let v = s.verifier();
        let body = cp(5).body();
        let ours = sig_block(&s.sign(&cp(5)).text).to_string();
        // Same name, another key (so another key id), signing another body.
        let same_name = sig_block(&signer(2).sign(&cp(6)).text).to_string();
        // Our key id under another name.
        let mut blob = v.key_id.to_vec();
        blob.extend_from_slice(&[0; 64]);
        let same_id = format!("{SIG_PREFIX}other.example/log {}\n", B64.encode(blob));
        let witness = cosig_line(7, 150);
        for junk in [&same_name, &same_id, &witness] {
            assert_eq!(v.verify(&format!("{body}\n{junk}{ours}")), Ok(cp(5)));
            assert_eq!(v.verify(&format!("{body}\n{ours}{junk}")), Ok(cp(5)));
        }
    }

    #[test]
    fn malformed_signature_lines_are_refused() {
        let text = signer(1).sign(&cp(5)).text;
        // "AQIDBAUG" is the base64 of six bytes: a well-formed signature.
        assert_eq!(B64.encode([1, 2, 3, 4, 5, 6]), "AQIDBAUG");
        let cases = [
            (
                "— w.example/a !!notbase64!!",
                "signature is not standard padded base64",
            ),
            (
                "— w.example/a AQIDBAUGBw",
                "signature is not standard padded base64",
            ),
            (
                "— w.example/a AQIDBA==",
                "signature is shorter than a 4-byte key id and a signature",
            ),
            ("— w.example/a ", "signature line has an empty signature"),
            (
                "— w.example/a",
                "signature line has no space between key name and signature",
            ),
            ("—  AQIDBAUG", "signature line has an empty key name"),
            (
                "— w+x AQIDBAUG",
                "signature key name contains a space or '+'",
            ),
            (
                "— w\u{a0}x AQIDBAUG",
                "signature key name contains a space or '+'",
            ),
            (
                "—w.example/a AQIDBAUG",
                "signature line does not start with an em dash and a space",
            ),
            (
                "- w.example/a AQIDBAUG",
                "signature line does not start with an em dash and a space",
            ),
            (
                " — w.example/a AQIDBAUG",
                "signature line does not start with an em dash and a space",
            ),
        ];
        for (line, want) in cases {
            assert_eq!(
                malformed_reason(&format!("{text}{line}\n")),
                want,
                "{line:?}"
            );
            // Before our line as well as after it.
            let before = format!("{}\n{line}\n{}", cp(5).body(), sig_block(&text));
            assert_eq!(malformed_reason(&before), want, "{line:?}");
        }
        // The shortest well-formed line: a key id and one byte.
        let ok = format!("{text}— w.example/a {}\n", B64.encode([1, 2, 3, 4, 5]));
        assert!(signer(1).verifier().verify(&ok).is_ok());
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

        #[test]
        fn anything_but_a_signature_line_after_the_signatures_is_refused(s in "\\PC{0,80}") {
            prop_assume!(!s.starts_with(SIG_PREFIX));
            let text = signer(1).sign(&cp(5)).text;
            let mut bad = vec![format!("{text}{s}\n")];
            if !s.is_empty() {
                bad.push(format!("{text}{s}"));
            }
            for bad in bad {
                prop_assert!(matches!(
                    SignedCheckpoint::parse_unverified(&bad),
                    Err(NoteError::Malformed(_))
                ));
                prop_assert!(matches!(
                    signer(1).verifier().verify(&bad),
                    Err(NoteError::Malformed(_))
                ));
            }
        }
    }
}
