//! Reading variables: unset or blank takes the default, a bad value is an error naming the
//! variable. A reader may record every variable it was asked for with its default, which is
//! how `messages-server facts` lists them (see [`Variable`]).

use std::cell::RefCell;
use std::fmt::Display;
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

/// A variable the server reads, and what it is when unset.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Variable {
    /// Its name.
    pub name: &'static str,
    /// Its default in the variable's own terms (seconds for `..._SECONDS`, a name for a
    /// choice); empty when unset means "not configured".
    pub default: String,
}

/// Reads variables through a lookup function, so tests need not touch the process
/// environment.
pub(super) struct Env<F> {
    lookup: F,
    /// Every variable asked for, when recording.
    seen: Option<RefCell<Vec<Variable>>>,
}

impl<F: Fn(&str) -> Option<String>> Env<F> {
    /// A reader through `lookup`.
    pub(super) fn new(lookup: F) -> Self {
        Env { lookup, seen: None }
    }

    /// A reader through `lookup` that records every variable it is asked for.
    pub(super) fn recording(lookup: F) -> Self {
        Env {
            lookup,
            seen: Some(RefCell::default()),
        }
    }

    /// The variables asked for so far, when recording.
    pub(super) fn seen(self) -> Vec<Variable> {
        self.seen.map(RefCell::into_inner).unwrap_or_default()
    }

    fn note(&self, name: &'static str, default: impl Display) {
        if let Some(seen) = &self.seen {
            let mut seen = seen.borrow_mut();
            if !seen.iter().any(|v| v.name == name) {
                seen.push(Variable {
                    name,
                    default: default.to_string(),
                });
            }
        }
    }

    /// The value, trimmed; `None` when unset or blank.
    fn value(&self, var: &'static str) -> Option<String> {
        (self.lookup)(var)
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    }

    /// The value, trimmed; `None` when unset or blank: a variable without a default.
    pub(super) fn get(&self, var: &'static str) -> Option<String> {
        self.note(var, "");
        self.value(var)
    }

    /// The value as given, not trimmed (a secret may end in spaces); `None` when unset or
    /// blank.
    pub(super) fn secret(&self, var: &'static str) -> Option<String> {
        self.note(var, "");
        (self.lookup)(var).filter(|s| !s.trim().is_empty())
    }

    /// The value, or `default` when unset or blank.
    pub(super) fn text(&self, var: &'static str, default: &str) -> String {
        self.note(var, default);
        self.value(var).unwrap_or_else(|| default.to_owned())
    }

    pub(super) fn parse<T: FromStr + Display>(
        &self,
        var: &'static str,
        default: T,
        what: &str,
    ) -> Result<T, ConfigError>
    where
        T::Err: std::fmt::Display,
    {
        self.note(var, &default);
        self.parsed(var, default, what)
    }

    /// `parse` without recording (for readers that record in their own terms).
    fn parsed<T: FromStr>(
        &self,
        var: &'static str,
        default: T,
        what: &str,
    ) -> Result<T, ConfigError>
    where
        T::Err: std::fmt::Display,
    {
        match self.value(var) {
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
        self.note(var, default);
        let v: u64 = self.parsed(var, default, "a whole number")?;
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
        self.note(var, default);
        match self.value(var).map(|v| v.to_ascii_lowercase()) {
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

    /// One of the values of `T` by its name (case-insensitive), or `default`.
    pub(super) fn choice<T: Choice>(
        &self,
        var: &'static str,
        default: T,
    ) -> Result<T, ConfigError> {
        self.note(var, default.name());
        let Some(value) = self.value(var) else {
            return Ok(default);
        };
        T::ALL
            .iter()
            .find(|c| c.name().eq_ignore_ascii_case(&value))
            .copied()
            .ok_or_else(|| ConfigError {
                var,
                reason: format!(
                    "expected one of {}, got {value:?}",
                    T::ALL
                        .iter()
                        .map(|c| c.name())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            })
    }
}

/// A setting that takes one of a few names: every value and its name, stated once.
pub(super) trait Choice: Copy + 'static {
    /// Every value.
    const ALL: &'static [Self];
    /// The value's name in the environment.
    fn name(self) -> &'static str;
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
