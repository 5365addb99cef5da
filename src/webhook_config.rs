//! The webhook settings (`POAM_WEBHOOK_*`), read by `config::Settings`.

use poam_domain::webhooks::{parse_delay, AllowList, RetrySchedule};
use poam_http::delivery::WebhookSettings;

/// Reads the webhook settings from a lookup; every missing one takes its default.
pub fn from_lookup(get: &impl Fn(&str) -> Option<String>) -> Result<WebhookSettings, String> {
    let d = WebhookSettings::default();
    let delay = |name: &str, default| match get(name) {
        Some(v) => parse_delay(v.trim()).map_err(|e| format!("{name}: {e}")),
        None => Ok(default),
    };
    let allow = match get("POAM_WEBHOOK_ALLOW") {
        Some(v) => AllowList::parse(&v).map_err(|e| format!("POAM_WEBHOOK_ALLOW: {e}"))?,
        None => d.allow,
    };
    let retry = match get("POAM_WEBHOOK_RETRY_SCHEDULE") {
        Some(v) => {
            RetrySchedule::parse(&v).map_err(|e| format!("POAM_WEBHOOK_RETRY_SCHEDULE: {e}"))?
        }
        None => d.retry,
    };
    let concurrency = match get("POAM_WEBHOOK_CONCURRENCY") {
        Some(v) => match v.trim().parse::<usize>() {
            Ok(n @ 1..=256) => n,
            _ => return Err(format!("POAM_WEBHOOK_CONCURRENCY: `{v}` is not 1 to 256")),
        },
        None => d.concurrency,
    };
    let deliver = match get("POAM_WEBHOOK_DELIVERY").as_deref() {
        None | Some("on") => true,
        Some("off") => false,
        Some(other) => return Err(format!("POAM_WEBHOOK_DELIVERY: `{other}` is not on or off")),
    };
    Ok(WebhookSettings {
        allow,
        retry,
        timeout: delay("POAM_WEBHOOK_TIMEOUT", d.timeout)?,
        connect_timeout: delay("POAM_WEBHOOK_CONNECT_TIMEOUT", d.connect_timeout)?,
        poll: delay("POAM_WEBHOOK_POLL", d.poll)?,
        pause_after: delay("POAM_WEBHOOK_PAUSE_AFTER", d.pause_after)?,
        secret_overlap: delay("POAM_WEBHOOK_SECRET_OVERLAP", d.secret_overlap)?,
        concurrency,
        deliver,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn defaults_and_overrides() {
        let none = from_lookup(&|_: &str| None).unwrap_or_default();
        assert_eq!(none.retry.attempts(), 10);
        assert!(none.deliver && none.allow.is_empty());
        let set = from_lookup(&|k: &str| match k {
            "POAM_WEBHOOK_RETRY_SCHEDULE" => Some("100ms,200ms".into()),
            "POAM_WEBHOOK_ALLOW" => Some("127.0.0.1,hooks.local".into()),
            "POAM_WEBHOOK_TIMEOUT" => Some("2s".into()),
            _ => None,
        })
        .unwrap_or_default();
        assert_eq!(set.retry.attempts(), 3);
        assert!(set.allow.allows_host("hooks.local"));
        assert_eq!(set.timeout, Duration::from_secs(2));
        for (k, v) in [
            ("POAM_WEBHOOK_ALLOW", "10.0.0.0/99"),
            ("POAM_WEBHOOK_TIMEOUT", "soon"),
            ("POAM_WEBHOOK_DELIVERY", "maybe"),
            ("POAM_WEBHOOK_CONCURRENCY", "0"),
        ] {
            let err = from_lookup(&|x: &str| (x == k).then(|| v.to_owned()))
                .err()
                .unwrap_or_default();
            assert!(err.starts_with(k), "{err}");
        }
    }
}
