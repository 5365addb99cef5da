//! Mapping an identity provider's claims to this service's roles and system scopes
//! (`POAM_CLAIMS_MAP`, a TOML file):
//!
//! ```toml
//! subject = "sub"          # the claim that names the caller [default: sub]
//! name = "name"            # the claim of the display name [default: name]
//!
//! [[roles]]
//! claim = "groups"         # a claim name, or a dotted path into nested objects
//! value = "poam-admins"    # matches a string claim equal to it, or an array containing it
//! role = "admin"           # admin, editor, approver, auditor or viewer
//! systems = ["*"]          # system ids, or "*" for every system
//!
//! [[roles]]                # a client certificate (mutual TLS, POAM_TLS_CLIENT_CA)
//! claim = "cert.ou"
//! value = "poam-admins"
//! role = "admin"
//! systems = ["*"]
//! ```
//!
//! A verified client certificate is presented to the rules as the claims `cert.cn`, `cert.o`,
//! `cert.ou`, `cert.email` (subject attributes: a string, or an array when the subject has
//! several), `cert.san_dns`, `cert.san_email` (arrays of subject alternative names) and
//! `cert.serial` (upper-case hex, as `openssl x509 -serial` prints it). Rules on `cert.*` claims
//! apply to certificates only, and other rules to tokens only: a token's claims never satisfy a
//! certificate rule. A certificate principal's subject is `certificate_subject` [default:
//! cert.cn] and its display name `cert.cn`.
//!
//! Rules combine as a union: the caller holds every role of every rule that matches, over every
//! system those rules name (`*` in any matched rule: every system). A caller has one set of roles
//! and one scope, so a role granted on one system by one rule applies to every system another
//! matched rule names. A token no rule matches maps to no role and is refused
//! (`no_role_mapped`). With a claims map, the token's own `roles` and `systems` claims are
//! ignored.

use poam_domain::{Role, SystemId, SystemScope};
use serde::Deserialize;
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::Path;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default = "default_subject")]
    subject: String,
    #[serde(default = "default_name")]
    name: String,
    #[serde(default = "default_certificate_subject")]
    certificate_subject: String,
    #[serde(default)]
    roles: Vec<RuleFile>,
}

fn default_certificate_subject() -> String {
    "cert.cn".into()
}

/// The prefix of the claims a client certificate presents (see the module documentation).
pub const CERTIFICATE_PREFIX: &str = "cert.";

fn default_subject() -> String {
    "sub".into()
}

fn default_name() -> String {
    "name".into()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleFile {
    claim: String,
    value: String,
    role: String,
    systems: Vec<String>,
}

/// One `[[roles]]` rule, checked.
#[derive(Debug, Clone)]
pub struct Rule {
    pub claim: String,
    pub value: String,
    pub role: Role,
    /// `None`: every system (`*`).
    pub systems: Option<BTreeSet<SystemId>>,
}

impl Rule {
    /// `groups contains "poam-admins" → admin on *`.
    pub fn describe(&self) -> String {
        let systems = match &self.systems {
            None => "*".to_owned(),
            Some(ids) => ids
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", "),
        };
        format!(
            "{} has {:?} → {} on {systems}",
            self.claim,
            self.value,
            self.role.as_str()
        )
    }
}

/// The checked claims map.
#[derive(Debug, Clone)]
pub struct ClaimsMap {
    pub subject: String,
    pub name: String,
    /// The claim that names a client certificate's principal [default: cert.cn].
    pub certificate_subject: String,
    pub rules: Vec<Rule>,
}

/// What a token's claims map to.
#[derive(Debug, Clone)]
pub struct Mapped {
    pub sub: String,
    pub name: Option<String>,
    pub roles: BTreeSet<Role>,
    pub scope: SystemScope,
    /// The rules that matched, in file order (indexes into [`ClaimsMap::rules`]).
    pub matched: Vec<usize>,
}

/// Why a token's claims map to no one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MapError {
    /// The subject claim is absent or not a string.
    NoSubject(String),
    /// No rule matched.
    NoRole,
}

impl ClaimsMap {
    /// Reads and checks the TOML file.
    pub fn load(path: &Path) -> Result<ClaimsMap, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        ClaimsMap::parse(&text).map_err(|e| format!("{}: {e}", path.display()))
    }

    /// Parses and checks the TOML text.
    pub fn parse(text: &str) -> Result<ClaimsMap, String> {
        let file: File = toml::from_str(text).map_err(|e| e.to_string())?;
        if file.subject.trim().is_empty() {
            return Err("`subject` names no claim".into());
        }
        if !file.certificate_subject.starts_with(CERTIFICATE_PREFIX) {
            return Err(format!(
                "`certificate_subject` must name a certificate claim ({CERTIFICATE_PREFIX}cn, \
                 {CERTIFICATE_PREFIX}serial…), not `{}`",
                file.certificate_subject
            ));
        }
        if file.roles.is_empty() {
            return Err(
                "no [[roles]] rule: every token would map to no role and be refused".into(),
            );
        }
        let mut rules = Vec::with_capacity(file.roles.len());
        for (n, r) in file.roles.into_iter().enumerate() {
            let at = |e: String| format!("[[roles]] rule {}: {e}", n + 1);
            if r.claim.trim().is_empty() {
                return Err(at("`claim` is empty".into()));
            }
            if r.value.is_empty() {
                return Err(at("`value` is empty".into()));
            }
            let role: Role = r.role.trim().parse().map_err(|_| {
                at(format!(
                    "unknown role `{}`; use admin, editor, approver, auditor or viewer",
                    r.role
                ))
            })?;
            if r.systems.is_empty() {
                return Err(at(
                    "`systems` is empty: list system ids, or [\"*\"] for every system".into(),
                ));
            }
            let systems = if r.systems.iter().any(|s| s.trim() == "*") {
                None
            } else {
                Some(
                    r.systems
                        .iter()
                        .map(|s| {
                            s.trim()
                                .parse::<SystemId>()
                                .map_err(|_| at(format!("`{s}` is not a system id nor \"*\"")))
                        })
                        .collect::<Result<BTreeSet<_>, _>>()?,
                )
            };
            rules.push(Rule {
                claim: r.claim,
                value: r.value,
                role,
                systems,
            });
        }
        Ok(ClaimsMap {
            subject: file.subject,
            name: file.name,
            certificate_subject: file.certificate_subject,
            rules,
        })
    }

    /// The roles and scope a token's `claims` map to (rules on `cert.*` claims do not apply).
    pub fn apply(&self, claims: &Value) -> Result<Mapped, MapError> {
        self.apply_as(claims, &self.subject, &self.name, false)
    }

    /// The roles and scope a verified client certificate's claims map to: only rules on
    /// `cert.*` claims apply; the subject is `certificate_subject`, the name `cert.cn`.
    pub fn apply_certificate(&self, claims: &Value) -> Result<Mapped, MapError> {
        self.apply_as(claims, &self.certificate_subject, "cert.cn", true)
    }

    fn apply_as(
        &self,
        claims: &Value,
        subject: &str,
        name: &str,
        certificate: bool,
    ) -> Result<Mapped, MapError> {
        let sub = lookup(claims, subject)
            .and_then(Value::as_str)
            .ok_or_else(|| MapError::NoSubject(subject.to_owned()))?
            .to_owned();
        let name = lookup(claims, name)
            .and_then(Value::as_str)
            .map(str::to_owned);
        let mut roles = BTreeSet::new();
        let mut all = false;
        let mut ids = BTreeSet::new();
        let mut matched = Vec::new();
        for (i, rule) in self.rules.iter().enumerate() {
            if rule.claim.starts_with(CERTIFICATE_PREFIX) != certificate {
                continue;
            }
            if !lookup(claims, &rule.claim).is_some_and(|v| holds(v, &rule.value)) {
                continue;
            }
            matched.push(i);
            roles.insert(rule.role);
            match &rule.systems {
                None => all = true,
                Some(s) => ids.extend(s.iter().copied()),
            }
        }
        if matched.is_empty() {
            return Err(MapError::NoRole);
        }
        Ok(Mapped {
            sub,
            name,
            roles,
            scope: if all {
                SystemScope::All
            } else {
                SystemScope::Only(ids)
            },
            matched,
        })
    }

    /// The values of the claims the rules read (for `poam auth explain`), each claim once.
    pub fn claims_read(&self, claims: &Value) -> Vec<(String, Option<Value>)> {
        let mut seen = BTreeSet::new();
        self.rules
            .iter()
            .filter(|r| !r.claim.starts_with(CERTIFICATE_PREFIX))
            .filter(|r| seen.insert(r.claim.clone()))
            .map(|r| (r.claim.clone(), lookup(claims, &r.claim).cloned()))
            .collect()
    }
}

/// The claim named `path`: a top-level claim of that exact name (names may hold dots, like
/// `https://example.org/groups`), else a dotted path into nested objects
/// (`realm_access.roles`).
pub fn lookup<'a>(claims: &'a Value, path: &str) -> Option<&'a Value> {
    if let Some(v) = claims.get(path) {
        return Some(v);
    }
    let mut at = claims;
    for part in path.split('.') {
        at = at.get(part)?;
    }
    Some(at)
}

/// Whether a claim value is `value` or an array holding it.
fn holds(claim: &Value, value: &str) -> bool {
    match claim {
        Value::String(s) => s == value,
        Value::Array(items) => items.iter().any(|v| v.as_str() == Some(value)),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const SYS: &str = "01937c3e-0000-7000-8000-000000000001";

    fn map() -> ClaimsMap {
        ClaimsMap::parse(&format!(
            r#"
subject = "email"
name = "name"
[[roles]]
claim = "groups"
value = "poam-admins"
role = "admin"
systems = ["*"]
[[roles]]
claim = "groups"
value = "sys-payroll-editors"
role = "editor"
systems = ["{SYS}"]
[[roles]]
claim = "realm_access.roles"
value = "auditor"
role = "auditor"
systems = ["{SYS}"]
"#
        ))
        .unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn rules_match_strings_arrays_and_paths() {
        let m = map();
        let admin = m
            .apply(&json!({"email": "a@x", "groups": ["x", "poam-admins"]}))
            .unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(admin.sub, "a@x");
        assert!(admin.roles.contains(&Role::Admin));
        assert_eq!(admin.scope, SystemScope::All);
        let editor = m
            .apply(&json!({"email": "e@x", "name": "E", "groups": "sys-payroll-editors"}))
            .unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(editor.name.as_deref(), Some("E"));
        let sys: SystemId = SYS.parse().unwrap_or_else(|_| panic!("id"));
        assert_eq!(editor.scope, SystemScope::Only([sys].into_iter().collect()));
        let nested = m
            .apply(&json!({"email": "n@x", "realm_access": {"roles": ["auditor"]}}))
            .unwrap_or_else(|e| panic!("{e:?}"));
        assert!(nested.roles.contains(&Role::Auditor));
        // Both an all-systems and a per-system rule: roles accumulate, `*` wins.
        let both = m
            .apply(&json!({"email": "b@x", "groups": ["poam-admins", "sys-payroll-editors"]}))
            .unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(both.roles.len(), 2);
        assert_eq!(both.scope, SystemScope::All);
        assert_eq!(both.matched, vec![0, 1]);
    }

    #[test]
    fn no_rule_no_subject() {
        let m = map();
        assert_eq!(
            m.apply(&json!({"email": "a@x", "groups": ["poam-admin"]}))
                .err(),
            Some(MapError::NoRole)
        );
        assert_eq!(
            m.apply(&json!({"sub": "a", "groups": ["poam-admins"]}))
                .err(),
            Some(MapError::NoSubject("email".into()))
        );
    }

    #[test]
    fn certificate_rules_apply_to_certificates_only() {
        let m = ClaimsMap::parse(
            r#"
[[roles]]
claim = "groups"
value = "poam-admins"
role = "admin"
systems = ["*"]
[[roles]]
claim = "cert.ou"
value = "poam-admins"
role = "admin"
systems = ["*"]
"#,
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let cert = json!({"cert": {"cn": "scanner-01", "ou": ["ops", "poam-admins"]}});
        let mapped = m
            .apply_certificate(&cert)
            .unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(mapped.sub, "scanner-01");
        assert_eq!(mapped.name.as_deref(), Some("scanner-01"));
        assert_eq!(mapped.matched, vec![1]);
        // A token carrying a `cert` claim does not satisfy a certificate rule, nor a
        // certificate a token rule.
        let token = json!({"sub": "t", "cert": {"ou": "poam-admins"}});
        assert_eq!(m.apply(&token).err(), Some(MapError::NoRole));
        let cert_with_groups = json!({"cert": {"cn": "c"}, "groups": ["poam-admins"]});
        assert_eq!(
            m.apply_certificate(&cert_with_groups).err(),
            Some(MapError::NoRole)
        );
        assert_eq!(
            m.apply_certificate(&json!({"cert": {"ou": "poam-admins"}}))
                .err(),
            Some(MapError::NoSubject("cert.cn".into()))
        );
    }

    #[test]
    fn bad_files_are_named() {
        for (text, needle) in [
            ("subject = \"sub\"\n", "no [[roles]]"),
            (
                "[[roles]]\nclaim = \"g\"\nvalue = \"v\"\nrole = \"boss\"\nsystems = [\"*\"]\n",
                "unknown role `boss`",
            ),
            (
                "[[roles]]\nclaim = \"g\"\nvalue = \"v\"\nrole = \"viewer\"\nsystems = [\"nope\"]\n",
                "not a system id",
            ),
            (
                "[[roles]]\nclaim = \"g\"\nvalue = \"v\"\nrole = \"viewer\"\n",
                "systems",
            ),
            ("subjet = \"sub\"\n", "subjet"),
            (
                "certificate_subject = \"sub\"\n[[roles]]\nclaim = \"g\"\nvalue = \"v\"\nrole = \"viewer\"\nsystems = [\"*\"]\n",
                "certificate_subject",
            ),
        ] {
            let err = ClaimsMap::parse(text).err().unwrap_or_default();
            assert!(err.contains(needle), "{text}: {err}");
        }
    }
}
