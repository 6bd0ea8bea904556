//! The per-thread sequence: what a position in it is, and how a client names one.
//!
//! Every write of a thread (create, edit, delete) takes the next number of the thread's
//! sequence in the same transaction as the write, and the numbers become visible in that
//! order: a reader that has seen number N has seen every change numbered up to N. A message's
//! `seq` is the number its creation took and orders pages; its `rev` is the number of its
//! latest change and orders the changes feed. How each store keeps that promise is said where
//! it does (`storage::memory`, `storage::sqlite`, `storage::postgres`); the changes feed
//! (`changes`) and the pages by `seq` (`page`) read by it.

use crate::error::{Error, Result};

/// Parses a position the client holds (`since`, `before_seq`, `after_seq`): a non-negative
/// decimal integer.
pub fn parse_position(field: &'static str, s: &str) -> Result<i64> {
    if s.is_empty() || s.len() > 19 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(Error::invalid(field, "must be a non-negative integer"));
    }
    s.parse()
        .map_err(|_| Error::invalid(field, "must be a non-negative integer"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_parse_strictly() {
        assert_eq!(parse_position("since", "0").unwrap(), 0);
        assert_eq!(
            parse_position("since", "9223372036854775807").unwrap(),
            i64::MAX
        );
        for bad in ["", "-1", "+1", "1.5", "9223372036854775808", "x", " 1"] {
            assert!(parse_position("since", bad).is_err(), "{bad:?}");
        }
    }
}
