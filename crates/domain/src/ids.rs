//! Typed ids, so that the id of one table never stands in for another's.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;
use uuid::Uuid;

macro_rules! typed_id {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, utoipa::ToSchema)]
        #[serde(transparent)]
        #[schema(value_type = String, format = Uuid)]
        pub struct $name(Uuid);

        impl $name {
            /// A fresh id: version 7, time-ordered, so that new rows land at the right edge
            /// of every index keyed by id instead of on a random page of it.
            pub fn new() -> Self {
                Self(Uuid::now_v7())
            }
            pub fn from_uuid(uuid: Uuid) -> Self {
                Self(uuid)
            }
            pub fn as_uuid(&self) -> Uuid {
                self.0
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.hyphenated().fmt(f)
            }
        }

        impl FromStr for $name {
            type Err = uuid::Error;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Uuid::parse_str(s).map(Self)
            }
        }
    };
}

typed_id!(
    /// The id of an information system.
    SystemId
);
typed_id!(
    /// The stable id of a POA&M item (a weakness).
    ItemId
);
typed_id!(
    /// The id of a milestone of an item's plan.
    MilestoneId
);
typed_id!(
    /// The id of a review (a recorded decision or periodic review).
    ReviewId
);
typed_id!(
    /// The id of a piece of evidence.
    EvidenceId
);

/// The human id of an item within its system: `POAM-0001`, `POAM-0002`, … (at least four digits).
pub fn display_id(sequence: i64) -> String {
    format!("POAM-{sequence:04}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_ids_are_padded_to_four_digits_and_grow_past_them() {
        assert_eq!(display_id(1), "POAM-0001");
        assert_eq!(display_id(42), "POAM-0042");
        assert_eq!(display_id(12345), "POAM-12345");
    }

    #[test]
    fn ids_round_trip_through_text() {
        let id = ItemId::new();
        assert_eq!(id.to_string().parse::<ItemId>().ok(), Some(id));
        assert!("not-a-uuid".parse::<SystemId>().is_err());
    }
}
