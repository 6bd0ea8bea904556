//! A message's reaction summary as a store keeps it (JSON): read or refused, never a panic;
//! one that reads writes back to JSON that reads the same.
#![no_main]

use libfuzzer_sys::fuzz_target;
use messages_core::{summary_from_json, summary_to_json};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(summary) = summary_from_json(text) {
        let again = summary_from_json(&summary_to_json(&summary)).expect("its own JSON reads");
        assert_eq!(again, summary);
    }
});
