//! An emoji path segment (`/reactions/{emoji}`, already percent-decoded): one emoji or
//! shortcode, or refused; never a panic. The form kept (an emoji's canonical one) parses to
//! itself, so a reaction sent in either form lands on one key.
#![no_main]

use libfuzzer_sys::fuzz_target;
use messages_core::Emoji;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(emoji) = Emoji::parse(text) {
        let again = Emoji::parse(emoji.as_str()).expect("the kept form parses");
        assert_eq!(again, emoji);
    }
});
