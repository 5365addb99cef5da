//! Who may do what: roles, the permissions they grant, and the systems a caller may see.

use crate::ids::SystemId;
use std::collections::BTreeSet;

crate::vocab::vocabulary_pub!(
    /// A role carried in a token's `roles` claim.
    Role, "role" {
        Admin => "admin",
        Editor => "editor",
        Approver => "approver",
        Auditor => "auditor",
        Viewer => "viewer",
    }
);

/// What an operation needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Permission {
    /// Read systems, items and their history.
    Read,
    /// Create and change items (and, later, milestones, evidence, transitions, periodic reviews).
    WriteItems,
    /// Record approval-type reviews and make decision transitions (closed, risk accepted).
    Decide,
    /// Export and verify history.
    Audit,
    /// Create, change and archive systems.
    ManageSystems,
}

impl Role {
    pub fn grants(self, p: Permission) -> bool {
        use Permission::*;
        match self {
            Role::Admin => true,
            Role::Editor => matches!(p, Read | WriteItems),
            Role::Approver => matches!(p, Read | Decide),
            Role::Auditor => matches!(p, Read | Audit),
            Role::Viewer => matches!(p, Read),
        }
    }
}

/// The systems a caller may see: all of them (`*`), or a set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SystemScope {
    All,
    Only(BTreeSet<SystemId>),
}

impl SystemScope {
    pub fn allows(&self, id: SystemId) -> bool {
        match self {
            SystemScope::All => true,
            SystemScope::Only(ids) => ids.contains(&id),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Permission::*;

    #[test]
    fn the_role_matrix() {
        let all = [Read, WriteItems, Decide, Audit, ManageSystems];
        let granted = |r: Role| all.iter().filter(|p| r.grants(**p)).count();
        assert_eq!(granted(Role::Admin), 5);
        assert!(Role::Editor.grants(WriteItems) && !Role::Editor.grants(Decide));
        assert!(Role::Approver.grants(Decide) && !Role::Approver.grants(WriteItems));
        assert!(Role::Auditor.grants(Audit) && !Role::Auditor.grants(WriteItems));
        assert_eq!(granted(Role::Viewer), 1);
        for r in Role::ALL {
            assert!(r.grants(Read), "{r} reads");
            assert_eq!(r.grants(ManageSystems), *r == Role::Admin, "{r}");
        }
    }

    #[test]
    fn scopes() {
        let a = SystemId::new();
        let b = SystemId::new();
        assert!(SystemScope::All.allows(a));
        let only = SystemScope::Only([a].into_iter().collect());
        assert!(only.allows(a) && !only.allows(b));
    }
}
