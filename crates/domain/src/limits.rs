//! Field limits. eMASS (REST API v3.22) caps contact fields at 100 characters, resources at 250
//! and narratives at 2000; integrators meet the same limits here, so nothing they send us is
//! refused later by eMASS. The constants are what `validator` enforces and what the OpenAPI
//! document states.

/// Names, e-mail addresses, phone numbers, organisations, detectors, external ids.
pub const CONTACT: u64 = 100;
/// Resources required, titles, asset names and source identifiers.
pub const RESOURCE: u64 = 250;
/// Descriptions, plans, mitigations, justifications and comments.
pub const NARRATIVE: u64 = 2000;
/// Entries in one list field (controls, CVEs, assets, CAGE codes).
pub const LIST: u64 = 500;
