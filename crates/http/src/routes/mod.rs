//! Handlers. Each parses its input, checks the caller's permission, calls one store function on
//! the blocking pool and renders the result; errors go back as `ApiError`.

pub mod attention;
pub mod catalogs;
pub mod cmmc;
mod distinct;
pub mod docs;
pub mod evidence;
pub mod exchange;
pub mod health;
pub mod history;
pub mod items;
pub mod metrics;
pub mod report;
pub mod reports;
pub mod scans;
pub mod sheet_import;
pub mod systems;
pub mod validation;
pub mod webhooks;
pub mod workflow;

use actix_web::http::header;
use actix_web::http::StatusCode;
use actix_web::HttpResponse;
use serde::Serialize;

/// Adds the `Location` of a created resource.
pub(crate) fn located(mut res: HttpResponse, location: &str) -> HttpResponse {
    if let Ok(v) = header::HeaderValue::from_str(location) {
        res.headers_mut().insert(header::LOCATION, v);
    }
    res
}

/// A 201 with the new resource's `Location` and version as its ETag.
pub(crate) fn created<T: Serialize>(location: &str, version: i64, body: &T) -> HttpResponse {
    located(versioned(StatusCode::CREATED, version, body), location)
}

/// A JSON response carrying the resource's version as a strong ETag.
pub(crate) fn versioned<T: Serialize>(status: StatusCode, version: i64, body: &T) -> HttpResponse {
    // Rendered into a buffer the size of a typical record, not grown from empty, by sonic-rs:
    // serde_json's escaping looks at one byte at a time, a fifth of a GET by id.
    versioned_with(status, version, |json| {
        sonic_rs::to_writer(json, body).map_err(std::io::Error::other)
    })
}

/// An item, as [`versioned`] answers it, written by [`crate::render::item`].
pub(crate) fn versioned_item(status: StatusCode, item: &poam_domain::Item) -> HttpResponse {
    versioned_with(status, item.version, |json| crate::render::item(json, item))
}

fn versioned_with(
    status: StatusCode,
    version: i64,
    render: impl FnOnce(&mut Vec<u8>) -> crate::render::Rendered,
) -> HttpResponse {
    let mut json = Vec::with_capacity(4096);
    if render(&mut json).is_err() {
        return actix_web::ResponseError::error_response(&crate::problem::ApiError::Internal);
    }
    versioned_body(status, version, json.into())
}

/// A JSON body of the given version, with its `ETag`.
pub(crate) fn versioned_body(
    status: StatusCode,
    version: i64,
    json: actix_web::web::Bytes,
) -> HttpResponse {
    let mut etag = String::with_capacity(22);
    etag.push('"');
    etag.push_str(itoa::Buffer::new().format(version));
    etag.push('"');
    HttpResponse::build(status)
        .insert_header((header::ETAG, etag))
        .insert_header(header::ContentType::json())
        .body(json)
}

#[cfg(test)]
mod tests {
    use poam_domain::{Item, ItemFields, ItemId, ItemMeta, SystemId};

    /// Every byte JSON escapes (the controls, `"`, `\`), the ones it does not (`/`, DEL,
    /// U+2028, astral characters), numbers with and without fractions, every optional part
    /// filled: sonic-rs writes what serde_json writes, byte for byte.
    #[test]
    fn single_resources_render_as_serde_json_does() {
        let nasty = crate::render::tests::nasty();
        let fields: Result<ItemFields, _> = serde_json::from_value(serde_json::json!({
            "external_id": nasty,
            "title": format!("Title {nasty}"),
            "description": nasty.repeat(40),
            "controls": ["SC-8(1)", "3.13.8"],
            "source": {"kind": "scan", "detector": nasty, "identifier": "plugin 104743",
                       "details": {"k\"ey": nasty, "plain": "text"}},
            "cves": ["CVE-2011-3389"],
            "assets": [nasty, "10.0.0.7"],
            "likelihood": "moderate", "impact": "high", "risk_rating": "high",
            "adjusted_risk_rating": "moderate", "risk_justification": nasty,
            "owner": {"name": "Dana \"D\" Whitfield", "email": "dana@example.org"},
            "implementer": {"name": "Lee Park", "email": null},
            "remediation_plan": nasty,
            "resources": {"description": "x", "estimated_cost": 1200.5, "hours": 16, "funded": true, "recurring": false},
            "actual_cost": 0.1,
            "interim_mitigation": nasty, "residual_risk": nasty,
            "detected_on": "2026-10-01", "scheduled_completion": "2026-10-31",
            "completed_on": "2026-11-02", "closed_on": null,
            "deviation": {"kind": "risk_adjustment", "rationale": nasty},
            "vendor_dependency": {"product": "Acme LB 9.2", "vendor": "Acme", "last_check_in": "2026-11-01"},
            "comments": nasty,
        }));
        let fields = fields.unwrap_or_else(|e| panic!("fixture: {e}"));
        let at = chrono::DateTime::from_timestamp(1_790_000_000, 123_456_000).unwrap_or_default();
        let mut item = Item::assemble(
            ItemMeta {
                id: ItemId::from_uuid(uuid::Uuid::nil()),
                display_id: "POAM-0001".into(),
                system_id: SystemId::from_uuid(uuid::Uuid::nil()),
                deadline_rule: Some("manual".into()),
                version: 7,
                created_at: at,
                updated_at: at,
                archived_at: Some(at),
                archive_reason: Some(nasty.clone()),
            },
            fields,
            at.date_naive(),
        );
        item.not_seen_since = Some(at);
        item.not_seen_scan = Some(uuid::Uuid::nil());
        let ours = sonic_rs::to_vec(&item).unwrap_or_default();
        let theirs = serde_json::to_vec(&item).unwrap_or_default();
        assert!(ours.len() > 4000, "the fixture renders");
        assert_eq!(
            String::from_utf8_lossy(&ours),
            String::from_utf8_lossy(&theirs)
        );
        for x in [0.1, 1e21, 1e-7, 123_456_789.0, f64::MAX, 5e-324, -0.0, 3.0] {
            assert_eq!(
                sonic_rs::to_string(&x).ok(),
                serde_json::to_string(&x).ok(),
                "{x}"
            );
        }
    }
}
