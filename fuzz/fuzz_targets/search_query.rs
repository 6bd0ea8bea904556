//! A search query as a person types it (`GET /search?q=`): parsed into folded terms or refused
//! with a reason; never a panic. What it parses into holds what it says: at least one term, at
//! most the most, each folded and once, and a text made of its terms matches it.
#![no_main]

use libfuzzer_sys::fuzz_target;
use messages_core::search::{MAX_TERMS, SearchText, fold};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(query) = SearchText::parse(text) {
        let terms = query.terms();
        assert!(!terms.is_empty() && terms.len() <= MAX_TERMS);
        for (i, term) in terms.iter().enumerate() {
            assert!(!term.is_empty());
            assert_eq!(&fold(term), term, "folded");
            assert!(!terms[..i].contains(term), "each once");
        }
        assert!(query.matches(&terms.join(" ")));
    }
});
