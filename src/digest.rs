//! Daily e-mail digests (off unless `POAM_SMTP_URL` is set): from `POAM_DIGEST_HOUR` (UTC) on,
//! each address the attention list says something waits on (an owner, implementer or
//! escalation contact by the item's e-mail; an approver's entry to the system's ISSM and
//! alternate ISSM) gets one plain-text e-mail listing those entries.
//!
//! Sent once per day per address across restarts and instances: before sending, the scheduler
//! claims the key `digest:<date>:<address>` in the reminder key table for every system the
//! digest covers (a system another instance claimed is left out of this one's e-mail); a
//! digest that cannot be sent gives its claims back, so the next tick tries again.

use crate::config::Secret;
use chrono::{DateTime, NaiveDate, Timelike, Utc};
use lettre::message::header::ContentType;
use lettre::message::Mailbox;
use lettre::{Message, SmtpTransport, Transport};
use poam_domain::reminders;
use poam_persistence::db::DbPool;
use std::sync::Mutex;
use std::time::Duration;

/// The digest settings.
#[derive(Clone)]
pub struct DigestSettings {
    /// `POAM_SMTP_URL`: may carry a password, so never shown.
    pub url: Secret,
    /// `POAM_SMTP_FROM`.
    pub from: String,
    /// `POAM_DIGEST_HOUR`: the UTC hour from which the day's digests go out.
    pub hour: u32,
}

impl std::fmt::Debug for DigestSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DigestSettings")
            .field("url", &redact(self.url.expose()))
            .field("from", &self.from)
            .field("hour", &self.hour)
            .finish()
    }
}

/// The URL with its password (and user) replaced: what logs may show.
pub fn redact(url: &str) -> String {
    match url.split_once("://") {
        Some((scheme, rest)) => {
            let host = rest.rsplit_once('@').map_or(rest, |(_, h)| h);
            if rest.contains('@') {
                format!("{scheme}://[redacted]@{host}")
            } else {
                format!("{scheme}://{host}")
            }
        }
        None => "[redacted]".to_owned(),
    }
}

impl DigestSettings {
    /// Reads `POAM_SMTP_URL`, `POAM_SMTP_FROM` and `POAM_DIGEST_HOUR`; `None` without a URL.
    pub fn from_lookup(
        get: &impl Fn(&str) -> Option<String>,
    ) -> Result<Option<DigestSettings>, String> {
        let hour = match get("POAM_DIGEST_HOUR") {
            None => 7,
            Some(v) => match v.trim().parse::<u32>() {
                Ok(h) if h < 24 => h,
                _ => {
                    return Err(format!(
                        "POAM_DIGEST_HOUR: `{v}` is not an hour from 0 to 23"
                    ))
                }
            },
        };
        let Some(url) = get("POAM_SMTP_URL").filter(|u| !u.trim().is_empty()) else {
            return Ok(None);
        };
        let url = url.trim().to_owned();
        let from = get("POAM_SMTP_FROM")
            .filter(|f| !f.trim().is_empty())
            .ok_or("POAM_SMTP_FROM: required with POAM_SMTP_URL")?;
        from.trim()
            .parse::<Mailbox>()
            .map_err(|e| format!("POAM_SMTP_FROM: `{from}` is not an address: {e}"))?;
        SmtpTransport::from_url(&url)
            .map_err(|e| format!("POAM_SMTP_URL: {} is not usable: {e}", redact(&url)))?;
        Ok(Some(DigestSettings {
            url: Secret::new(url),
            from: from.trim().to_owned(),
            hour,
        }))
    }
}

/// Sends the digests.
pub struct Mailer {
    transport: SmtpTransport,
    from: Mailbox,
    hour: u32,
    /// The last day whose digests all went out: later ticks that day do nothing.
    done: Mutex<Option<NaiveDate>>,
}

impl Mailer {
    pub fn new(s: &DigestSettings) -> Result<Mailer, String> {
        let transport = SmtpTransport::from_url(s.url.expose())
            .map_err(|e| {
                format!(
                    "POAM_SMTP_URL: {} is not usable: {e}",
                    redact(s.url.expose())
                )
            })?
            .timeout(Some(Duration::from_secs(20)))
            .build();
        let from = s
            .from
            .parse::<Mailbox>()
            .map_err(|e| format!("POAM_SMTP_FROM: {e}"))?;
        tracing::info!(smtp = %redact(s.url.expose()), hour = s.hour, "e-mail digests on");
        Ok(Mailer {
            transport,
            from,
            hour: s.hour,
            done: Mutex::new(None),
        })
    }

    /// Sends the digests of `now`'s day when its hour has come and they are not all out yet;
    /// answers how many e-mails this call sent.
    pub fn run(&self, pool: &DbPool, now: DateTime<Utc>) -> usize {
        let today = now.date_naive();
        if now.hour() < self.hour {
            return 0;
        }
        if self.done.lock().is_ok_and(|d| *d == Some(today)) {
            return 0;
        }
        let mut conn = match pool.get() {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(error = %e, "digest: no database connection");
                return 0;
            }
        };
        let digests = match poam_persistence::reminders::digests(&mut conn, today) {
            Ok(d) => d,
            Err(e) => {
                tracing::warn!(error = %e, "digest: cannot read the attention list");
                return 0;
            }
        };
        let mut sent = 0;
        let mut failed = false;
        for d in digests {
            let key = poam_persistence::reminders::digest_key(today, &d.email);
            let mut systems: Vec<poam_domain::SystemId> =
                d.entries.iter().map(|a| a.system_id).collect();
            systems.sort();
            systems.dedup();
            let claimed = match poam_persistence::reminders::claim_digest(&mut conn, &systems, &key)
            {
                Ok(c) => c,
                Err(e) => {
                    tracing::warn!(error = %e, "digest: cannot claim");
                    failed = true;
                    continue;
                }
            };
            if claimed.is_empty() {
                continue;
            }
            let mine = reminders::Digest {
                entries: d
                    .entries
                    .iter()
                    .filter(|a| claimed.contains(&a.system_id))
                    .cloned()
                    .collect(),
                ..d
            };
            match self.send(&mine, today) {
                Ok(()) => sent += 1,
                Err(e) => {
                    tracing::warn!(error = %e, "digest: not sent; tried again next tick");
                    failed = true;
                    if let Err(e) =
                        poam_persistence::reminders::release_digest(&mut conn, &claimed, &key)
                    {
                        tracing::warn!(error = %e, "digest: cannot release the claim");
                    }
                }
            }
        }
        if !failed {
            if let Ok(mut d) = self.done.lock() {
                *d = Some(today);
            }
        }
        if sent > 0 {
            tracing::info!(sent, %today, "digest: e-mails sent");
        }
        sent
    }

    fn send(&self, d: &reminders::Digest, today: NaiveDate) -> Result<(), String> {
        let to = Mailbox::new(
            d.name.clone(),
            d.email
                .parse()
                .map_err(|e| format!("`{}` is not an address: {e}", d.email))?,
        );
        let (subject, body) = reminders::digest_text(d, today);
        let message = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(subject)
            .header(ContentType::TEXT_PLAIN)
            .body(body)
            .map_err(|e| e.to_string())?;
        self.transport
            .send(&message)
            .map(|_| ())
            .map_err(|e| e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_shown_without_their_password() {
        assert_eq!(
            redact("smtps://user:hunter2@mail.example.org:465"),
            "smtps://[redacted]@mail.example.org:465"
        );
        assert_eq!(redact("smtp://relay:25"), "smtp://relay:25");
    }
}
