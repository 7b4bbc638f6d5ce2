//! Realm names: short, lowercase, safe as a path component and inside JSON
//! without escaping.

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

#[cfg(test)]
mod tests {
    use super::*;

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
