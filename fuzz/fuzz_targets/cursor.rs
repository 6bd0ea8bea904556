//! The page cursor a client sends back (`cursor=`, `before=`, `after=`): decoded or refused,
//! never a panic; a cursor that decodes to a position is the one encoding of it.
#![no_main]

use libfuzzer_sys::fuzz_target;
use messages_core::Cursor;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(cursor @ Cursor::Seq(_)) = Cursor::decode(text) {
        assert_eq!(cursor.encode(), text, "a position has one encoding");
    }
});
