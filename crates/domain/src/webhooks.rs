//! Webhooks, the pure part: which subscription an event matches, when a failed delivery is
//! tried again (an exponential schedule with jitter, the randomness passed in), when a failing
//! subscription is paused, the Standard Webhooks signature, and which addresses a delivery may
//! never reach (server-side request forgery). No I/O: the clock and the randomness are inputs.

use chrono::NaiveDateTime;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::net::IpAddr;
use std::time::Duration;

/// The prefix of a Standard Webhooks symmetric secret.
pub const SECRET_PREFIX: &str = "whsec_";

/// The event type of a history event: `<resource kind>.<action>`, e.g. `item.updated`.
pub fn event_type(resource_kind: &str, action: &str) -> String {
    format!("{resource_kind}.{action}")
}

/// Checks one pattern of a subscription's `events`: `*`, `<kind>.*`, `*.<action>` or
/// `<kind>.<action>`, against the known kinds and actions.
pub fn check_pattern(pattern: &str, kinds: &[&str], actions: &[&str]) -> Result<(), String> {
    if pattern == "*" {
        return Ok(());
    }
    let Some((kind, action)) = pattern.split_once('.') else {
        return Err(format!(
            "`{pattern}` is not `*`, `<kind>.*`, `*.<action>` or `<kind>.<action>`"
        ));
    };
    if kind != "*" && !kinds.contains(&kind) {
        return Err(format!(
            "unknown resource kind `{kind}`: one of {}",
            kinds.join(", ")
        ));
    }
    if action != "*" && !actions.contains(&action) {
        return Err(format!(
            "unknown action `{action}`: one of {}",
            actions.join(", ")
        ));
    }
    Ok(())
}

/// Whether an event type matches one of the patterns.
pub fn matches_type(patterns: &[String], event_type: &str) -> bool {
    let (kind, action) = event_type.split_once('.').unwrap_or((event_type, ""));
    patterns.iter().any(|p| {
        if p == "*" {
            return true;
        }
        match p.split_once('.') {
            Some((k, a)) => (k == "*" || k == kind) && (a == "*" || a == action),
            None => false,
        }
    })
}

/// What a subscription listens to, as the outbox sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Interest {
    pub events: Vec<String>,
    /// The systems named by the subscription; `None`: every system of `scope`.
    pub systems: Option<Vec<String>>,
    /// The systems the subscribing token could see; `None`: every system.
    pub scope: Option<Vec<String>>,
}

impl Interest {
    /// Whether an event of `system_id` with `event_type` is to be delivered.
    pub fn wants(&self, system_id: &str, event_type: &str) -> bool {
        let named = self
            .systems
            .as_ref()
            .is_none_or(|s| s.iter().any(|x| x == system_id));
        let visible = self
            .scope
            .as_ref()
            .is_none_or(|s| s.iter().any(|x| x == system_id));
        named && visible && matches_type(&self.events, event_type)
    }
}

/// The delays between attempts: after the first attempt fails, the first delay, and so on;
/// when they are spent the delivery is dead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetrySchedule {
    pub delays: Vec<Duration>,
}

impl Default for RetrySchedule {
    /// The schedule the Standard Webhooks specification gives as its example: about three days
    /// and eleven attempts in all.
    fn default() -> Self {
        let s = |secs: u64| Duration::from_secs(secs);
        RetrySchedule {
            delays: vec![
                s(5),
                s(5 * 60),
                s(30 * 60),
                s(2 * 3600),
                s(5 * 3600),
                s(10 * 3600),
                s(14 * 3600),
                s(20 * 3600),
                s(24 * 3600),
            ],
        }
    }
}

/// The share of a delay that jitter may add or take away.
pub const JITTER: f64 = 0.2;

impl RetrySchedule {
    /// Parses `5s,5m,30m,2h` (units ms, s, m, h, d).
    pub fn parse(text: &str) -> Result<Self, String> {
        let delays = text
            .split(',')
            .map(|d| parse_delay(d.trim()))
            .collect::<Result<Vec<_>, _>>()?;
        if delays.is_empty() {
            return Err("at least one delay".into());
        }
        Ok(RetrySchedule { delays })
    }

    /// The attempts a delivery gets in all.
    pub fn attempts(&self) -> usize {
        self.delays.len() + 1
    }

    /// The wait after `failed` attempts have failed (1 after the first), or `None` when the
    /// delivery is dead. `random` in `[0, 1)` spreads the delay by up to ±[`JITTER`].
    pub fn delay_after(&self, failed: usize, random: f64) -> Option<Duration> {
        let base = self.delays.get(failed.checked_sub(1)?)?;
        let factor = 1.0 + JITTER * (2.0 * random.clamp(0.0, 1.0) - 1.0);
        Some(base.mul_f64(factor))
    }
}

/// Parses one delay: a number with `ms`, `s`, `m`, `h` or `d`.
pub fn parse_delay(text: &str) -> Result<Duration, String> {
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (digits, unit) = text.split_at(split);
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("`{text}` is not a duration (e.g. 500ms, 5s, 5m, 2h, 1d)"))?;
    let d = match unit {
        "ms" => Duration::from_millis(n),
        "s" | "" => Duration::from_secs(n),
        "m" => Duration::from_secs(n.saturating_mul(60)),
        "h" => Duration::from_secs(n.saturating_mul(3600)),
        "d" => Duration::from_secs(n.saturating_mul(86_400)),
        _ => {
            return Err(format!(
                "`{text}`: unknown unit `{unit}`; use ms, s, m, h or d"
            ))
        }
    };
    if d.is_zero() {
        return Err(format!("`{text}` must be more than zero"));
    }
    Ok(d)
}

/// What follows an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AfterAttempt {
    Delivered,
    RetryAt(NaiveDateTime),
    Dead,
}

/// Decides what follows an attempt: delivered on a 2xx; else another attempt on the schedule,
/// or dead when the schedule is spent.
pub fn after_attempt(
    schedule: &RetrySchedule,
    failed_before: usize,
    success: bool,
    now: NaiveDateTime,
    random: f64,
) -> AfterAttempt {
    if success {
        return AfterAttempt::Delivered;
    }
    match schedule
        .delay_after(failed_before + 1, random)
        .and_then(|d| chrono::Duration::from_std(d).ok())
    {
        Some(d) => AfterAttempt::RetryAt(now + d),
        None => AfterAttempt::Dead,
    }
}

/// Whether a subscription failing since `failing_since` has failed long enough to be paused.
pub fn should_pause(
    failing_since: NaiveDateTime,
    now: NaiveDateTime,
    pause_after: Duration,
) -> bool {
    chrono::Duration::from_std(pause_after).is_ok_and(|p| now - failing_since >= p)
}

/// Whether a response status counts as delivered: 2xx only (a redirect is a failure: it is not
/// followed).
pub fn delivered(status: u16) -> bool {
    (200..300).contains(&status)
}

/// A new secret from 32 random bytes: `whsec_` and their base64.
pub fn secret_from(random: &[u8; 32]) -> String {
    use base64::Engine;
    format!(
        "{SECRET_PREFIX}{}",
        base64::engine::general_purpose::STANDARD.encode(random)
    )
}

/// The Standard Webhooks symmetric signature: `v1,` and the base64 HMAC-SHA256, keyed with the
/// secret's base64-decoded bytes (after `whsec_`), of `{id}.{timestamp}.{body}`.
pub fn sign(secret: &str, id: &str, timestamp: i64, body: &[u8]) -> Result<String, String> {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD;
    let key = b64
        .decode(secret.strip_prefix(SECRET_PREFIX).unwrap_or(secret))
        .map_err(|e| format!("the secret is not base64: {e}"))?;
    let mut mac =
        Hmac::<Sha256>::new_from_slice(&key).map_err(|e| format!("unusable secret: {e}"))?;
    mac.update(id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    Ok(format!("v1,{}", b64.encode(mac.finalize().into_bytes())))
}

/// The `webhook-signature` header: one signature per secret, space-delimited (during a
/// rotation's overlap, the new secret's and the old one's).
pub fn signature_header(
    secrets: &[&str],
    id: &str,
    timestamp: i64,
    body: &[u8],
) -> Result<String, String> {
    let signatures = secrets
        .iter()
        .map(|s| sign(s, id, timestamp, body))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(signatures.join(" "))
}

/// Hosts and networks an operator allows despite the private-range rule (and over http).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AllowList {
    hosts: Vec<String>,
    networks: Vec<(IpAddr, u8)>,
}

impl AllowList {
    /// Parses a comma-separated list of host names, addresses and CIDRs.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut list = AllowList::default();
        for entry in text.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            if let Some((addr, bits)) = entry.split_once('/') {
                let ip: IpAddr = addr
                    .parse()
                    .map_err(|_| format!("`{entry}`: `{addr}` is not an IP address"))?;
                let max = if ip.is_ipv4() { 32 } else { 128 };
                let bits: u8 =
                    bits.parse().ok().filter(|b| *b <= max).ok_or_else(|| {
                        format!("`{entry}`: the prefix length must be 0 to {max}")
                    })?;
                list.networks.push((ip, bits));
            } else if let Ok(ip) = entry.trim_matches(['[', ']']).parse::<IpAddr>() {
                list.networks
                    .push((ip, if ip.is_ipv4() { 32 } else { 128 }));
            } else {
                list.hosts.push(entry.to_ascii_lowercase());
            }
        }
        Ok(list)
    }

    pub fn is_empty(&self) -> bool {
        self.hosts.is_empty() && self.networks.is_empty()
    }

    /// Whether the host name (as written in the URL) is allowed.
    pub fn allows_host(&self, host: &str) -> bool {
        let host = host.trim_matches(['[', ']']).to_ascii_lowercase();
        self.hosts.contains(&host) || host.parse::<IpAddr>().is_ok_and(|ip| self.allows_ip(ip))
    }

    /// Whether an address lies in an allowed network.
    pub fn allows_ip(&self, ip: IpAddr) -> bool {
        self.networks
            .iter()
            .any(|(net, bits)| in_network(ip, *net, *bits))
    }
}

fn in_network(ip: IpAddr, net: IpAddr, bits: u8) -> bool {
    match (canonical(ip), canonical(net)) {
        (IpAddr::V4(a), IpAddr::V4(n)) => {
            let mask = u32::MAX.checked_shl(32 - u32::from(bits)).unwrap_or(0);
            u32::from(a) & mask == u32::from(n) & mask
        }
        (IpAddr::V6(a), IpAddr::V6(n)) => {
            let mask = u128::MAX.checked_shl(128 - u32::from(bits)).unwrap_or(0);
            u128::from(a) & mask == u128::from(n) & mask
        }
        _ => false,
    }
}

/// An IPv4-mapped IPv6 address as the IPv4 address it is.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// Why a delivery may not reach an address, or `None` when it may: loopback, unspecified,
/// private (RFC 1918, IPv6 unique local), link-local (which holds the cloud metadata services at
/// 169.254.169.254 and fd00:ec2::254's neighbours), shared address space (CGNAT, RFC 6598),
/// multicast, broadcast, documentation and other reserved ranges.
pub fn refused_address(ip: IpAddr) -> Option<&'static str> {
    match canonical(ip) {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            if v4.is_loopback() {
                Some("loopback")
            } else if v4.is_unspecified() || o[0] == 0 {
                Some("unspecified")
            } else if v4.is_private() {
                Some("private")
            } else if v4.is_link_local() {
                Some("link-local (cloud metadata)")
            } else if o[0] == 100 && (64..128).contains(&o[1]) {
                Some("shared address space (CGNAT)")
            } else if v4.is_multicast() || v4.is_broadcast() || o[0] >= 240 {
                Some("multicast or reserved")
            } else if v4.is_documentation() || (o[0] == 192 && o[1] == 0 && o[2] == 0) {
                Some("reserved")
            } else if o[0] == 198 && (o[1] == 18 || o[1] == 19) {
                Some("benchmarking")
            } else {
                None
            }
        }
        IpAddr::V6(v6) => {
            let s = v6.segments();
            if v6.is_loopback() {
                Some("loopback")
            } else if v6.is_unspecified() {
                Some("unspecified")
            } else if s[0] & 0xfe00 == 0xfc00 {
                Some("private (unique local)")
            } else if s[0] & 0xffc0 == 0xfe80 {
                Some("link-local")
            } else if s[0] & 0xff00 == 0xff00 {
                Some("multicast")
            } else if s[0] == 0x2001 && s[1] == 0x0db8 {
                Some("reserved")
            } else if s[0] == 0x0064 && s[1] == 0xff9b {
                // NAT64 embeds an IPv4 address: judge that one.
                let v4 = std::net::Ipv4Addr::new(
                    (s[6] >> 8) as u8,
                    s[6] as u8,
                    (s[7] >> 8) as u8,
                    s[7] as u8,
                );
                refused_address(IpAddr::V4(v4))
            } else {
                None
            }
        }
    }
}

/// Whether the URL's scheme is acceptable: https always; http only for an allowed host.
pub fn scheme_allowed(scheme: &str, host_allowed: bool) -> bool {
    scheme == "https" || (scheme == "http" && host_allowed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_standard_webhooks_test_vector() {
        // libraries/go/webhook_test.go of standard-webhooks/standard-webhooks (TestWebhookSign).
        let sig = sign(
            "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1_614_265_330,
            br#"{"test": 2432232314}"#,
        );
        assert_eq!(
            sig.as_deref(),
            Ok("v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=")
        );
        let both = signature_header(
            &[
                "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
                &secret_from(&[7; 32]),
            ],
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1_614_265_330,
            br#"{"test": 2432232314}"#,
        )
        .unwrap_or_default();
        assert_eq!(both.split(' ').count(), 2);
        assert!(both.starts_with("v1,g0hM9SsE"));
    }

    #[test]
    fn patterns_and_interest() {
        let kinds = ["item", "milestone"];
        let actions = ["created", "updated"];
        for ok in ["*", "item.*", "*.created", "milestone.updated"] {
            assert_eq!(check_pattern(ok, &kinds, &actions), Ok(()), "{ok}");
        }
        for bad in ["item", "thing.created", "item.exploded", ""] {
            assert!(check_pattern(bad, &kinds, &actions).is_err(), "{bad}");
        }
        let i = Interest {
            events: vec!["item.*".into(), "*.created".into()],
            systems: Some(vec!["a".into(), "b".into()]),
            scope: Some(vec!["a".into()]),
        };
        assert!(i.wants("a", "item.updated"));
        assert!(i.wants("a", "milestone.created"));
        assert!(!i.wants("a", "milestone.updated"));
        assert!(!i.wants("b", "item.updated"), "outside the token's scope");
        assert!(!i.wants("c", "item.updated"));
        let all = Interest {
            events: vec!["*".into()],
            systems: None,
            scope: None,
        };
        assert!(all.wants("z", "system.archived"));
    }

    #[test]
    fn the_schedule_grows_jitters_and_ends() {
        let s = RetrySchedule::default();
        assert_eq!(s.attempts(), 10);
        let total: Duration = s.delays.iter().sum();
        assert!(total > Duration::from_secs(3 * 86_400) && total < Duration::from_secs(4 * 86_400));
        assert_eq!(s.delay_after(1, 0.5), Some(Duration::from_secs(5)));
        assert_eq!(s.delay_after(1, 0.0), Some(Duration::from_secs(4)));
        assert!(s
            .delay_after(1, 0.999)
            .is_some_and(|d| d < Duration::from_secs(6)));
        assert_eq!(s.delay_after(10, 0.5), None);
        assert_eq!(s.delay_after(0, 0.5), None);
        let now = chrono::DateTime::from_timestamp(1_700_000_000, 0)
            .map(|d| d.naive_utc())
            .unwrap_or_default();
        assert_eq!(
            after_attempt(&s, 0, true, now, 0.5),
            AfterAttempt::Delivered
        );
        assert_eq!(
            after_attempt(&s, 0, false, now, 0.5),
            AfterAttempt::RetryAt(now + chrono::Duration::seconds(5))
        );
        assert_eq!(after_attempt(&s, 9, false, now, 0.5), AfterAttempt::Dead);
        assert!(should_pause(
            now,
            now + chrono::Duration::days(3),
            Duration::from_secs(3 * 86_400)
        ));
        assert!(!should_pause(
            now,
            now + chrono::Duration::days(2),
            Duration::from_secs(3 * 86_400)
        ));
        assert_eq!(
            RetrySchedule::parse("100ms, 2s,1m").map(|s| s.delays),
            Ok(vec![
                Duration::from_millis(100),
                Duration::from_secs(2),
                Duration::from_secs(60)
            ])
        );
        assert!(RetrySchedule::parse("1x").is_err());
        assert!(RetrySchedule::parse("0s").is_err());
    }

    #[test]
    fn private_and_metadata_addresses_are_refused() {
        for bad in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "::1",
            "fd00:ec2::254",
            "fe80::1",
            "::ffff:127.0.0.1",
            "64:ff9b::a9fe:a9fe",
            "224.0.0.1",
        ] {
            let ip: IpAddr = bad.parse().unwrap_or(IpAddr::from([0, 0, 0, 0]));
            assert!(refused_address(ip).is_some(), "{bad}");
        }
        for good in ["93.184.216.34", "2606:2800:220:1::1", "100.128.0.1"] {
            let ip: IpAddr = good.parse().unwrap_or(IpAddr::from([0, 0, 0, 0]));
            assert_eq!(refused_address(ip), None, "{good}");
        }
    }

    #[test]
    fn the_allow_list_names_hosts_and_networks() {
        let a =
            AllowList::parse("hooks.internal, 127.0.0.1, 10.0.0.0/8, fd00::/8").unwrap_or_default();
        assert!(a.allows_host("HOOKS.internal"));
        assert!(a.allows_host("127.0.0.1"));
        assert!(a.allows_ip("10.200.1.1".parse().unwrap_or(IpAddr::from([0; 4]))));
        assert!(a.allows_ip("::ffff:10.0.0.1".parse().unwrap_or(IpAddr::from([0; 4]))));
        assert!(!a.allows_ip("11.0.0.1".parse().unwrap_or(IpAddr::from([0; 4]))));
        assert!(a.allows_host("[fd12::1]"));
        assert!(AllowList::parse("10.0.0.0/33").is_err());
        assert!(scheme_allowed("https", false));
        assert!(!scheme_allowed("http", false));
        assert!(scheme_allowed("http", true));
        assert!(!scheme_allowed("ftp", true));
    }
}
