//! What a hint carries between replicas besides its thread: the position the thread reached
//! and when it was sent, so the receiver can measure the lag (`<rev> <sent at, µs>`).

use std::time::Duration;

use crate::message::Timestamp;

/// Now, in microseconds since the epoch.
pub(crate) fn now_micros() -> i64 {
    Timestamp::from(chrono::Utc::now()).as_micros()
}

/// `<rev> <sent at>` for a hint sent now.
pub(crate) fn encode(rev: i64, sent_at: i64) -> String {
    format!("{rev} {sent_at}")
}

/// Reads `<rev> <sent at>` from `parts`; the lag is `None` for a clock that went backwards.
/// `None` for anything else.
pub(crate) fn decode<'a>(mut parts: impl Iterator<Item = &'a str>) -> Option<Option<Duration>> {
    let _rev: i64 = parts.next()?.parse().ok()?;
    let sent: i64 = parts.next()?.parse().ok()?;
    if parts.next().is_some() {
        return None;
    }
    Some(
        u64::try_from(now_micros() - sent)
            .ok()
            .map(Duration::from_micros),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hint_round_trips_and_carries_its_lag() {
        let sent = now_micros() - 1_500;
        let lag = decode(encode(42, sent).split(' ')).unwrap();
        assert!(lag.is_some_and(|l| l >= Duration::from_micros(1_500)));
        // From a clock ahead of ours: a hint, without a lag.
        assert_eq!(
            decode(encode(1, now_micros() + 60_000_000).split(' ')),
            Some(None)
        );
        assert!(decode("x 1".split(' ')).is_none());
        assert!(decode("1".split(' ')).is_none());
        assert!(decode("1 2 3".split(' ')).is_none());
    }
}
