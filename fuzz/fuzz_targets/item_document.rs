//! A bulk element or item body: parsed, validated and checked by the rules and every regime's
//! profile without panicking, whatever it holds.
#![no_main]
use libfuzzer_sys::fuzz_target;
use poam_domain::{profiles, rules, ItemFields, Regime};

fuzz_target!(|data: &[u8]| {
    let Ok(fields) = serde_json::from_slice::<ItemFields>(data) else {
        return;
    };
    let _ = validator::Validate::validate(&fields);
    let today = chrono::NaiveDate::from_ymd_opt(2026, 11, 22).unwrap_or_default();
    if let Ok(checked) = rules::check_item(fields, today) {
        for regime in Regime::ALL {
            let _ = profiles::blocking(*regime, &checked, today);
        }
    }
});
