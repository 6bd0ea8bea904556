//! Reading variables: unset or blank takes the default, a bad value is an error naming the
//! variable.

use std::str::FromStr;
use std::time::Duration;

/// A variable that is present but wrong.
#[derive(Debug, thiserror::Error)]
#[error("{var}: {reason}")]
pub struct ConfigError {
    /// The environment variable.
    pub var: &'static str,
    /// What is wrong with it.
    pub reason: String,
}

/// Reads variables through a lookup function, so tests need not touch the process
/// environment.
pub(super) struct Env<F> {
    pub(super) lookup: F,
}

impl<F: Fn(&str) -> Option<String>> Env<F> {
    /// The value, trimmed; `None` when unset or blank.
    pub(super) fn get(&self, var: &'static str) -> Option<String> {
        (self.lookup)(var)
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    }

    pub(super) fn parse<T: FromStr>(
        &self,
        var: &'static str,
        default: T,
        what: &str,
    ) -> Result<T, ConfigError>
    where
        T::Err: std::fmt::Display,
    {
        match self.get(var) {
            None => Ok(default),
            Some(raw) => raw.parse().map_err(|e| ConfigError {
                var,
                reason: format!("expected {what}, got {raw:?} ({e})"),
            }),
        }
    }

    /// A whole number in `min..=max`.
    pub(super) fn range(
        &self,
        var: &'static str,
        default: u64,
        min: u64,
        max: u64,
    ) -> Result<u64, ConfigError> {
        let v: u64 = self.parse(var, default, "a whole number")?;
        if !(min..=max).contains(&v) {
            return Err(ConfigError {
                var,
                reason: format!("must be from {min} to {max}, got {v}"),
            });
        }
        Ok(v)
    }

    /// A count in `min..=max`.
    pub(super) fn count(
        &self,
        var: &'static str,
        default: usize,
        min: usize,
        max: usize,
    ) -> Result<usize, ConfigError> {
        self.range(var, default as u64, min as u64, max as u64)
            .map(|v| v as usize)
    }

    /// Whole seconds in `min..=max`.
    pub(super) fn seconds(
        &self,
        var: &'static str,
        default: Duration,
        min: u64,
        max: u64,
    ) -> Result<Duration, ConfigError> {
        self.range(var, default.as_secs(), min, max)
            .map(Duration::from_secs)
    }

    /// Whole milliseconds in `min..=max`.
    pub(super) fn millis(
        &self,
        var: &'static str,
        default: Duration,
        min: u64,
        max: u64,
    ) -> Result<Duration, ConfigError> {
        self.range(var, default.as_millis() as u64, min, max)
            .map(Duration::from_millis)
    }

    pub(super) fn flag(&self, var: &'static str, default: bool) -> Result<bool, ConfigError> {
        match self.get(var).map(|v| v.to_ascii_lowercase()) {
            None => Ok(default),
            Some(v) => match v.as_str() {
                "1" | "true" | "yes" | "on" => Ok(true),
                "0" | "false" | "no" | "off" => Ok(false),
                _ => Err(ConfigError {
                    var,
                    reason: format!("expected true or false, got {v:?}"),
                }),
            },
        }
    }

    /// One of `choices` (case-insensitive), or the default.
    pub(super) fn choice(
        &self,
        var: &'static str,
        default: &'static str,
        choices: &[&'static str],
    ) -> Result<&'static str, ConfigError> {
        let Some(value) = self.get(var) else {
            return Ok(default);
        };
        choices
            .iter()
            .find(|c| c.eq_ignore_ascii_case(&value))
            .copied()
            .ok_or_else(|| ConfigError {
                var,
                reason: format!("expected one of {}, got {value:?}", choices.join(", ")),
            })
    }
}

/// Quotes a value for a libpq key/value connection string.
pub(super) fn quote_conninfo(value: &str) -> String {
    format!("'{}'", value.replace('\\', "\\\\").replace('\'', "\\'"))
}

/// Percent-encodes everything but RFC 3986 unreserved characters.
pub(super) fn percent_encode(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
