//! Severity, as syslog numbers it (0 emergency … 7 debug), read from the
//! several ways senders write it.

/// Fields that may hold a record's severity, in order of preference:
/// `severity`, `level` (most loggers), `pri` (LogHarbour).
pub const SEVERITY_FIELDS: [&str; 3] = ["severity", "level", "pri"];

/// The syslog severity (0..=7) a value names: a number 0..=7, a syslog
/// keyword (`emerg`, `alert`, `crit`, `err`, `warning`, `notice`, `info`,
/// `debug` and common spellings), or a LogHarbour priority (`Debug2`,
/// `Debug1`, `Debug0`, `Info`, `Warn`, `Err`, `Crit`, `Sec`; `Sec`, a
/// security event, is taken as alert). Case does not matter.
pub fn severity_of(value: &str) -> Option<u8> {
    let v = value.trim().to_ascii_lowercase();
    if let Ok(n) = v.parse::<u8>() {
        return (n <= 7).then_some(n);
    }
    Some(match v.as_str() {
        "emerg" | "emergency" | "panic" | "fatal" => 0,
        "alert" | "sec" | "security" => 1,
        "crit" | "critical" => 2,
        "err" | "error" => 3,
        "warn" | "warning" => 4,
        "notice" => 5,
        "info" | "informational" | "information" => 6,
        "debug" | "debug0" | "debug1" | "debug2" | "trace" => 7,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spellings() {
        assert_eq!(severity_of("Warn"), Some(4));
        assert_eq!(severity_of("warning"), Some(4));
        assert_eq!(severity_of("4"), Some(4));
        assert_eq!(severity_of("Debug2"), Some(7));
        assert_eq!(severity_of("Sec"), Some(1));
        assert_eq!(severity_of("ERROR"), Some(3));
        assert_eq!(severity_of("9"), None);
        assert_eq!(severity_of("loud"), None);
    }
}
