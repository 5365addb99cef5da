//! Identifiers the domain recognises: security control references, CVE ids and CAGE codes.
//! Each is checked and normalised on the way in, so filters and exports match reliably.

/// Normalises a control reference or says why it is not one. Accepted forms:
/// - NIST SP 800-53: `AC-2`, `AC-2(1)`, `SI-4(23)`;
/// - NIST SP 800-171: `3.1.1`, `3.13.11`;
/// - CMMC 2.0: `AC.L2-3.1.1`, `SC.L1-3.13.1`.
///
/// Letters are upper-cased; surrounding whitespace is dropped.
pub fn normalize_control(raw: &str) -> Option<String> {
    let s = raw.trim().to_ascii_uppercase();
    if is_sp800_53(&s) || is_sp800_171(&s) || is_cmmc(&s) {
        Some(s)
    } else {
        None
    }
}

fn is_family(s: &str) -> bool {
    s.len() == 2 && s.bytes().all(|b| b.is_ascii_uppercase())
}

fn is_number(s: &str, max_digits: usize) -> bool {
    !s.is_empty() && s.len() <= max_digits && s.bytes().all(|b| b.is_ascii_digit())
}

fn is_sp800_53(s: &str) -> bool {
    let Some((family, rest)) = s.split_once('-') else {
        return false;
    };
    if !is_family(family) {
        return false;
    }
    match rest.split_once('(') {
        None => is_number(rest, 2),
        Some((base, enh)) => {
            is_number(base, 2) && enh.strip_suffix(')').is_some_and(|n| is_number(n, 2))
        }
    }
}

fn is_sp800_171(s: &str) -> bool {
    let parts: Vec<&str> = s.split('.').collect();
    parts.len() == 3 && parts[0] == "3" && is_number(parts[1], 2) && is_number(parts[2], 2)
}

fn is_cmmc(s: &str) -> bool {
    let Some((prefix, requirement)) = s.split_once('-') else {
        return false;
    };
    let Some((family, level)) = prefix.split_once('.') else {
        return false;
    };
    is_family(family) && matches!(level, "L1" | "L2" | "L3") && is_sp800_171(requirement)
}

/// Normalises a CVE id (`CVE-2024-3094`): the year has four digits, the sequence four or more.
pub fn normalize_cve(raw: &str) -> Option<String> {
    let s = raw.trim().to_ascii_uppercase();
    let rest = s.strip_prefix("CVE-")?;
    let (year, seq) = rest.split_once('-')?;
    let ok = year.len() == 4
        && year.bytes().all(|b| b.is_ascii_digit())
        && (4..=19).contains(&seq.len())
        && seq.bytes().all(|b| b.is_ascii_digit());
    ok.then_some(s)
}

/// Normalises a CAGE code: five characters, digits and upper-case letters.
pub fn normalize_cage_code(raw: &str) -> Option<String> {
    let s = raw.trim().to_ascii_uppercase();
    (s.len() == 5 && s.bytes().all(|b| b.is_ascii_alphanumeric())).then_some(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_the_three_control_catalogues_and_normalises_case() {
        for (raw, want) in [
            ("AC-2", "AC-2"),
            ("ac-2(1)", "AC-2(1)"),
            (" si-4(23) ", "SI-4(23)"),
            ("3.1.1", "3.1.1"),
            ("3.13.11", "3.13.11"),
            ("ac.l2-3.1.1", "AC.L2-3.1.1"),
            ("SC.L1-3.13.1", "SC.L1-3.13.1"),
        ] {
            assert_eq!(normalize_control(raw).as_deref(), Some(want), "{raw}");
        }
    }

    #[test]
    fn refuses_what_is_not_a_control() {
        for raw in [
            "",
            "AC",
            "AC-",
            "A-2",
            "AC-2(",
            "AC-2()",
            "AC-123",
            "4.1.1",
            "3.1",
            "3.1.1.1",
            "AC.L4-3.1.1",
            "AC.L2-3.1",
            "AC2",
            "drop table",
        ] {
            assert_eq!(normalize_control(raw), None, "{raw}");
        }
    }

    #[test]
    fn cve_ids() {
        assert_eq!(
            normalize_cve("cve-2024-3094").as_deref(),
            Some("CVE-2024-3094")
        );
        assert_eq!(
            normalize_cve("CVE-2021-44228").as_deref(),
            Some("CVE-2021-44228")
        );
        for raw in ["CVE-24-3094", "CVE-2024-309", "2024-3094", "CVE-2024-30a4"] {
            assert_eq!(normalize_cve(raw), None, "{raw}");
        }
    }

    #[test]
    fn cage_codes() {
        assert_eq!(normalize_cage_code("1abc2").as_deref(), Some("1ABC2"));
        for raw in ["1ABC", "1ABC23", "1AB-2"] {
            assert_eq!(normalize_cage_code(raw), None, "{raw}");
        }
    }
}
