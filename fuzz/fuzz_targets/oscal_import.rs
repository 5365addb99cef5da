//! The OSCAL importer on any JSON: it refuses or maps, never panics.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(doc) = serde_json::from_slice::<serde_json::Value>(data) {
        if let Ok(plan) = poam_domain::exchange::oscal::read(&doc, Default::default()) {
            for item in plan.items {
                let _ =
                    serde_json::from_value::<poam_domain::ItemFields>(item.fields.to_document());
            }
        }
    }
});
