//! The POA&M's vocabulary and its rules. No I/O: every function here is pure and unit-tested
//! without a database or a server.
//!
//! The value types double as the validated write shape of the API (serde, `validator` and
//! `utoipa` derives are metadata, not I/O): the limits they carry are the domain's own (eMASS's
//! 100/250/2000 characters), so they live here, once.

pub mod access;
pub mod change;
pub mod cmmc;
pub mod controls;
pub mod deadlines;
pub mod exchange;
pub mod history;
pub mod ids;
pub mod item;
pub mod json_time;
pub mod lifecycle;
pub mod limits;
pub mod metrics;
pub mod precondition;
pub mod profiles;
pub mod reminders;
pub mod report;
pub mod rules;
pub mod scan;
pub mod system;
pub mod threat;
pub mod vdr;
pub mod vdr_reports;
pub mod vocab;
pub mod webhooks;
pub mod workflow;

pub use access::{Permission, Role, SystemScope};
pub use ids::{EvidenceId, ItemId, MilestoneId, ReviewId, SystemId};
pub use item::{
    ChangeManagement, Deviation, Item, ItemFields, ItemMeta, OperationalImpact, Person, Resources,
    Source, VendorDependency,
};
pub use precondition::IfMatch;
pub use rules::Violation;
pub use system::{Contact, Contacts, System, SystemFields, SystemMeta};
pub use vocab::{
    DeviationKind, DeviationStatus, ImpactLevel, ItemStatus, Level, Regime, RiskRating, SourceKind,
};
