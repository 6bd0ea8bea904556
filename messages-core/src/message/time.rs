//! Time: the microsecond timestamp every store holds, and the service's monotonic clock.

use std::sync::atomic::{AtomicI64, Ordering};

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize, Serializer};

/// A point in time at microsecond precision, the precision PostgreSQL stores.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize)]
#[serde(from = "DateTime<Utc>")]
pub struct Timestamp(i64);

impl Timestamp {
    /// The earliest instant the crate accepts from outside: 0001-01-01T00:00:00Z. Every store
    /// and RFC 3339 can hold every instant from here to [`Timestamp::MAX`].
    pub const MIN: Timestamp = Timestamp(-62_135_596_800_000_000);
    /// The latest instant the crate accepts from outside: 9999-12-31T23:59:59.999999Z.
    pub const MAX: Timestamp = Timestamp(253_402_300_799_999_999);

    /// Microseconds since the Unix epoch.
    pub const fn from_micros(micros: i64) -> Self {
        Timestamp(micros)
    }

    /// Microseconds since the Unix epoch, if within [`Timestamp::MIN`]..=[`Timestamp::MAX`]:
    /// for values that come from outside (a cursor), so no backend is asked for an instant it
    /// cannot store.
    pub const fn checked_from_micros(micros: i64) -> Option<Self> {
        if micros >= Self::MIN.0 && micros <= Self::MAX.0 {
            Some(Timestamp(micros))
        } else {
            None
        }
    }

    /// Microseconds since the Unix epoch.
    pub const fn as_micros(self) -> i64 {
        self.0
    }

    /// The same instant as a chrono value. chrono's range (about ±262,000 years) is narrower
    /// than an `i64` of microseconds (about ±292,000 years); instants beyond it, which only a
    /// caller of [`Timestamp::from_micros`] can make, saturate at its ends.
    pub fn to_datetime(self) -> DateTime<Utc> {
        DateTime::from_timestamp_micros(self.0).unwrap_or(if self.0 < 0 {
            DateTime::<Utc>::MIN_UTC
        } else {
            DateTime::<Utc>::MAX_UTC
        })
    }

    /// RFC 3339 in UTC with six fractional digits, e.g. `2026-01-02T03:04:05.678901Z`.
    pub fn to_rfc3339(self) -> String {
        self.to_datetime()
            .to_rfc3339_opts(SecondsFormat::Micros, true)
    }
}

impl From<DateTime<Utc>> for Timestamp {
    fn from(value: DateTime<Utc>) -> Self {
        Timestamp(value.timestamp_micros())
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.to_rfc3339())
    }
}

/// The service's clock: wall time in microseconds that never goes backwards within a process,
/// so a message created later never sorts before an earlier one from the same process.
#[derive(Debug, Default)]
pub struct Clock {
    last: AtomicI64,
}

impl Clock {
    /// A new clock.
    pub fn new() -> Self {
        Clock::default()
    }

    /// The current time, never earlier than the previous reading.
    pub fn now(&self) -> Timestamp {
        let wall = Utc::now().timestamp_micros();
        let prev = self.last.fetch_max(wall, Ordering::Relaxed);
        Timestamp(prev.max(wall))
    }
}
