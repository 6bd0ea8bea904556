//! A position a client names (`Last-Event-ID`, `since=`, `after_seq=`, `before_seq=`): a
//! non-negative integer that prints back as sent, or refused; never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use messages_core::parse_position;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(position) = parse_position("since", text) {
        assert!(position >= 0);
        assert_eq!(
            position.to_string().trim_start_matches('0'),
            text.trim_start_matches('0')
        );
    }
});
