//! Exchange formats: OSCAL POA&M (out and in) and the FedRAMP POA&M template (out). Pure
//! conversions between the domain's records and the formats' documents; the store reads, the
//! HTTP room streams.

pub mod emass;
pub mod fedramp;
pub mod fedramp_v3;
pub mod json_out;
pub mod nisp;
pub mod oscal;
pub mod sheet;
pub mod sheet_import;

use crate::workflow::{Evidence, Milestone, Review};
use crate::{Item, ItemStatus};
use chrono::{DateTime, Utc};

/// A recorded status change of an item.
#[derive(Debug, Clone, PartialEq)]
pub struct StatusChange {
    pub id: String,
    pub from: ItemStatus,
    pub to: ItemStatus,
    pub comment: Option<String>,
    pub actor: String,
    pub at: DateTime<Utc>,
}

/// An item with everything an export renders beside it.
#[derive(Debug, Clone, PartialEq)]
pub struct ItemRecord {
    pub item: Item,
    /// In plan order.
    pub milestones: Vec<Milestone>,
    /// Oldest first.
    pub transitions: Vec<StatusChange>,
    /// Oldest first, withdrawn ones included (they say so).
    pub evidence: Vec<Evidence>,
    /// The reviews recorded on the item, oldest first.
    pub reviews: Vec<Review>,
}
