//! Query filter words: control ids and vocabularies, parsed from any text without panicking.
#![no_main]
use libfuzzer_sys::fuzz_target;
use poam_domain::{ItemStatus, RiskRating, SourceKind};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    for word in text.split(',') {
        let _ = poam_domain::controls::normalize_control(word);
        let _ = word.trim().parse::<ItemStatus>();
        let _ = word.trim().parse::<RiskRating>();
        let _ = word.trim().parse::<SourceKind>();
    }
});
