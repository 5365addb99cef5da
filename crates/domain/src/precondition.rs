//! `If-Match` (RFC 9110 §13.1.1) over this service's versions: the header is `*` or a list of
//! entity-tags; a strong tag `"N"` names version N; any other well-formed tag (weak, or not
//! minted here) never matches, so the request is refused with 412, not 400. Only a malformed
//! header is a 400.

/// The condition a write must meet.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum IfMatch {
    /// No header, or `*`: any current version.
    #[default]
    Any,
    /// The versions named by the header's strong tags; empty when none of its tags is one this
    /// service mints (then nothing matches).
    Versions(Vec<i64>),
}

impl IfMatch {
    /// Whether the current version meets the condition (strong comparison).
    pub fn admits(&self, version: i64) -> bool {
        match self {
            IfMatch::Any => true,
            IfMatch::Versions(v) => v.contains(&version),
        }
    }

    /// Parses the field values of every `If-Match` line (a recipient combines them as one list).
    /// `Err` names what is malformed.
    pub fn parse<'a>(lines: impl IntoIterator<Item = &'a str>) -> Result<IfMatch, String> {
        let mut versions = Vec::new();
        let mut star = false;
        let mut any_line = false;
        for line in lines {
            any_line = true;
            let mut rest = line.trim_matches([' ', '\t']);
            if rest == "*" {
                star = true;
                continue;
            }
            loop {
                rest = rest.trim_start_matches([' ', '\t', ',']);
                if rest.is_empty() {
                    break;
                }
                let (weak, tail) = match rest.strip_prefix("W/") {
                    Some(t) => (true, t),
                    None => (false, rest),
                };
                let Some(body) = tail.strip_prefix('"') else {
                    return Err(format!("`{line}` is not a list of entity-tags"));
                };
                let Some(end) = body.find('"') else {
                    return Err(format!("`{line}`: an entity-tag lacks its closing quote"));
                };
                let opaque = &body[..end];
                if !opaque
                    .bytes()
                    .all(|b| b == 0x21 || (0x23..=0x7e).contains(&b) || b >= 0x80)
                {
                    return Err(format!(
                        "`{line}`: an entity-tag holds a character it may not"
                    ));
                }
                rest = &body[end + 1..];
                let after = rest.trim_start_matches([' ', '\t']);
                if !(after.is_empty() || after.starts_with(',')) {
                    return Err(format!("`{line}`: entity-tags are separated by commas"));
                }
                if !weak {
                    if let Ok(v) = opaque.parse::<i64>() {
                        if opaque.bytes().all(|b| b.is_ascii_digit()) {
                            versions.push(v);
                        }
                    }
                }
            }
        }
        if !any_line || star {
            if star && !versions.is_empty() {
                return Err("`*` cannot be combined with entity-tags".into());
            }
            return Ok(IfMatch::Any);
        }
        Ok(IfMatch::Versions(versions))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc_9110_if_match() {
        assert_eq!(IfMatch::parse([]), Ok(IfMatch::Any));
        assert_eq!(IfMatch::parse(["*"]), Ok(IfMatch::Any));
        assert_eq!(IfMatch::parse(["\"3\""]), Ok(IfMatch::Versions(vec![3])));
        assert_eq!(
            IfMatch::parse(["\"stale-0\", \"4\" ,W/\"5\""]),
            Ok(IfMatch::Versions(vec![4]))
        );
        assert_eq!(
            IfMatch::parse(["\"2\"", "\"7\""]),
            Ok(IfMatch::Versions(vec![2, 7]))
        );
        let none = IfMatch::parse(["\"stale-0\""]);
        assert_eq!(none, Ok(IfMatch::Versions(vec![])));
        assert!(!IfMatch::Versions(vec![]).admits(1));
        assert!(IfMatch::Versions(vec![2, 7]).admits(7));
        assert!(IfMatch::parse(["\"+3\""]).is_ok_and(|m| !m.admits(3)));
        for bad in ["3", "\"3", "\"3\" \"4\"", "W/3", "\"a b\"", "*, \"3\""] {
            assert!(IfMatch::parse([bad]).is_err(), "{bad}");
        }
    }
}
