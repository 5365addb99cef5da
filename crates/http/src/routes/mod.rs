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
    // Rendered into a buffer the size of a typical record, not grown from empty.
    let mut json = Vec::with_capacity(4096);
    if serde_json::to_writer(&mut json, body).is_err() {
        return actix_web::ResponseError::error_response(&crate::problem::ApiError::Internal);
    }
    HttpResponse::build(status)
        .insert_header((header::ETAG, format!("\"{version}\"")))
        .insert_header(header::ContentType::json())
        .body(json)
}
