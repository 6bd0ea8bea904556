//! The `Idempotency-Key` header: kept as sent, or refused; never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use messages_core::IdempotencyKey;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(key) = IdempotencyKey::parse(text) {
        assert_eq!(key.as_str(), text);
    }
});
