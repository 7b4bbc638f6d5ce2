//! Realm names: short, lowercase, safe as a path component and inside JSON
//! without escaping.
//!
//! [`RealmName`] is a name that passed [`validate_realm_name`]: it can be
//! made only by validation (including when deserialized), so a function
//! that takes one (the data directory's path helpers, for one) never sees
//! `..`, a slash or an empty name.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The longest realm name accepted.
pub const MAX_REALM_NAME: usize = 63;

/// Why a realm name was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RealmNameError {
    /// The name is empty.
    #[error("realm name is empty")]
    Empty,
    /// The name is longer than [`MAX_REALM_NAME`].
    #[error("realm name is longer than {MAX_REALM_NAME} bytes")]
    TooLong,
    /// The name has a character outside `[a-z0-9._-]` or starts with one of `._-`.
    #[error("realm name {0:?} must be lowercase letters, digits, '.', '_' or '-', starting with a letter or digit")]
    BadChar(String),
}

/// Checks that `name` can be a realm name.
///
/// # Errors
/// Returns the reason when the name is empty, too long, or has characters
/// outside `[a-z0-9._-]` (the first must be a letter or digit).
pub fn validate_realm_name(name: &str) -> Result<(), RealmNameError> {
    if name.is_empty() {
        return Err(RealmNameError::Empty);
    }
    if name.len() > MAX_REALM_NAME {
        return Err(RealmNameError::TooLong);
    }
    let ok_char = |c: u8| c.is_ascii_lowercase() || c.is_ascii_digit() || b"._-".contains(&c);
    let first_ok = name
        .bytes()
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    if !first_ok || !name.bytes().all(ok_char) {
        return Err(RealmNameError::BadChar(name.to_string()));
    }
    Ok(())
}

/// A validated realm name: lowercase letters, digits, `.`, `_` or `-`,
/// starting with a letter or digit, at most [`MAX_REALM_NAME`] bytes.
///
/// ```
/// use sealog_event::RealmName;
/// let r: RealmName = "payments-prod".parse().expect("a valid name");
/// assert_eq!(r.as_str(), "payments-prod");
/// assert!(RealmName::new("../etc").is_err());
/// assert!(serde_json::from_str::<RealmName>("\"../etc\"").is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RealmName(String);

impl RealmName {
    /// Validates `name`.
    ///
    /// # Errors
    /// As [`validate_realm_name`].
    pub fn new(name: &str) -> Result<Self, RealmNameError> {
        validate_realm_name(name)?;
        Ok(Self(name.to_owned()))
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The name, as an owned string.
    pub fn into_string(self) -> String {
        self.0
    }
}

impl FromStr for RealmName {
    type Err = RealmNameError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::new(s)
    }
}

impl TryFrom<String> for RealmName {
    type Error = RealmNameError;

    fn try_from(s: String) -> Result<Self, Self::Error> {
        validate_realm_name(&s)?;
        Ok(Self(s))
    }
}

impl From<RealmName> for String {
    fn from(r: RealmName) -> Self {
        r.0
    }
}

impl fmt::Display for RealmName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for RealmName {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

/// Read-only access as a `str`, so a validated name goes wherever a name
/// is only compared or printed; there is no way back without validation.
impl std::ops::Deref for RealmName {
    type Target = str;

    fn deref(&self) -> &str {
        &self.0
    }
}

impl PartialEq<str> for RealmName {
    fn eq(&self, other: &str) -> bool {
        self.0 == other
    }
}

impl PartialEq<&str> for RealmName {
    fn eq(&self, other: &&str) -> bool {
        self.0 == *other
    }
}

impl Serialize for RealmName {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for RealmName {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::try_from(s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn realm_name_is_made_only_by_validation() {
        let r = RealmName::new("acme.eu_1-prod").expect("valid");
        assert_eq!(r.as_str(), "acme.eu_1-prod");
        assert_eq!(r.to_string(), "acme.eu_1-prod");
        assert_eq!("acme.eu_1-prod".parse::<RealmName>(), Ok(r.clone()));
        for bad in ["", "../../x", "a/b", ".hidden", "Acme", "a b", "caf\u{e9}"] {
            assert!(RealmName::new(bad).is_err(), "{bad:?}");
            assert!(bad.parse::<RealmName>().is_err(), "{bad:?}");
            assert!(RealmName::try_from(bad.to_string()).is_err(), "{bad:?}");
        }
        assert_eq!(
            serde_json::to_string(&r).expect("serialize"),
            "\"acme.eu_1-prod\""
        );
        let back: RealmName = serde_json::from_str("\"acme.eu_1-prod\"").expect("deserialize");
        assert_eq!(back, r);
    }

    #[test]
    fn deserializing_an_invalid_realm_name_fails() {
        for bad in [
            r#""../../x""#,
            r#""""#,
            r#""Acme""#,
            r#""a/b""#,
            r#"5"#,
            r#"null"#,
        ] {
            let e = serde_json::from_str::<RealmName>(bad).expect_err(bad);
            if bad.starts_with('"') {
                assert!(e.to_string().contains("realm name"), "{bad}: {e}");
            }
        }
        #[derive(Debug, Deserialize)]
        struct Req {
            realm: RealmName,
        }
        assert!(serde_json::from_str::<Req>(r#"{"realm":"../../etc"}"#).is_err());
        let ok: Req = serde_json::from_str(r#"{"realm":"ok"}"#).expect("valid");
        assert_eq!(ok.realm, "ok");
    }

    #[test]
    fn names() {
        assert!(validate_realm_name("payments-prod.eu_1").is_ok());
        assert_eq!(validate_realm_name(""), Err(RealmNameError::Empty));
        assert!(matches!(
            validate_realm_name("../etc"),
            Err(RealmNameError::BadChar(_))
        ));
        assert!(matches!(
            validate_realm_name("Acme"),
            Err(RealmNameError::BadChar(_))
        ));
        assert_eq!(
            validate_realm_name(&"a".repeat(64)),
            Err(RealmNameError::TooLong)
        );
    }
}
