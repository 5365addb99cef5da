//! Every error leaves as RFC 9457 `application/problem+json`, built here and nowhere else.

use actix_web::http::header::{self, HeaderValue};
use actix_web::http::{Method, StatusCode};
use actix_web::{HttpResponse, ResponseError};
use poam_domain::Violation;
use poam_persistence::StoreError;
use serde::Serialize;
use std::fmt;
use utoipa::ToSchema;

pub const PROBLEM_JSON: &str = "application/problem+json";

/// One invalid input: a body field (`pointer`, RFC 6901) or a query or path parameter
/// (`parameter`).
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct FieldError {
    /// JSON pointer into the request body.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(example = "/title")]
    pub pointer: Option<String>,
    /// Name of the query or path parameter.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parameter: Option<String>,
    /// Stable snake_case code of the rule the value breaks.
    #[schema(example = "invalid_length")]
    pub code: String,
    #[schema(example = "must have 1 to 250 characters")]
    pub detail: String,
    /// The spreadsheet cell the error is about (`Open POA&M Items!K12`), for spreadsheet
    /// imports.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(example = "Open POA&M Items!K12")]
    pub cell: Option<String>,
    /// Where in an imported scan file: `line 12, column 4` (XML, CSV) or a JSON pointer into
    /// the file (`/runs/0/results/3`).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(example = "line 12, column 4")]
    pub place: Option<String>,
}

impl FieldError {
    pub fn body(
        pointer: impl Into<String>,
        code: impl Into<String>,
        detail: impl Into<String>,
    ) -> Self {
        FieldError {
            pointer: Some(pointer.into()),
            parameter: None,
            code: code.into(),
            detail: detail.into(),
            cell: None,
            place: None,
        }
    }

    /// An error about a spreadsheet cell (and the item field it maps to, when there is one).
    pub fn at_cell(
        cell: impl Into<String>,
        pointer: Option<String>,
        code: impl Into<String>,
        detail: impl Into<String>,
    ) -> Self {
        FieldError {
            pointer: pointer.filter(|p| !p.is_empty()),
            parameter: None,
            code: code.into(),
            detail: detail.into(),
            cell: Some(cell.into()),
            place: None,
        }
    }

    pub fn param(
        name: impl Into<String>,
        code: impl Into<String>,
        detail: impl Into<String>,
    ) -> Self {
        FieldError {
            pointer: None,
            parameter: Some(name.into()),
            code: code.into(),
            detail: detail.into(),
            cell: None,
            place: None,
        }
    }
}

impl FieldError {
    /// An error about a place in an imported file.
    pub fn at_place(
        place: impl Into<String>,
        code: impl Into<String>,
        detail: impl Into<String>,
    ) -> Self {
        FieldError {
            pointer: None,
            parameter: None,
            code: code.into(),
            detail: detail.into(),
            cell: None,
            place: Some(place.into()),
        }
    }
}

impl From<Violation> for FieldError {
    fn from(v: Violation) -> Self {
        FieldError::body(v.pointer, v.code, v.message)
    }
}

/// An RFC 9457 problem document.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(example = json!({
    "type": "urn:poam:problem:validation_failed",
    "title": "The request body breaks the rules",
    "status": 422,
    "detail": "1 field is invalid",
    "code": "validation_failed",
    "errors": [{"pointer": "/title", "code": "invalid_length", "detail": "must have 1 to 250 characters"}]
}))]
pub struct Problem {
    /// URI of the problem type: `urn:poam:problem:{code}`.
    #[serde(rename = "type")]
    pub type_: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    /// Stable snake_case code clients can branch on.
    pub code: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
}

/// The HTTP room's error. Handlers return it; it renders itself once, here.
#[derive(Debug)]
pub enum ApiError {
    /// 401: no usable bearer token.
    Unauthorized { code: &'static str, detail: String },
    /// 403: authenticated, but the role does not allow it.
    Forbidden(String),
    /// 403: a rule reserves this change to another role; the code names the rule.
    Refused(Violation),
    /// 404: unknown resource, or one outside the caller's systems.
    NotFound,
    /// 404: no such route.
    RouteNotFound(String),
    /// 405, with the allowed methods.
    MethodNotAllowed(Vec<Method>),
    /// 400: the request cannot be read (malformed JSON, bad query, bad header).
    BadRequest {
        code: &'static str,
        detail: String,
        errors: Vec<FieldError>,
    },
    /// 422: well-formed, but it breaks the rules.
    Invalid(Vec<FieldError>),
    /// 422 with its own code: what was asked cannot be produced by the rules (an eMASS export
    /// with `strict=true` and items eMASS would refuse), each reason in `errors`.
    Unprocessable {
        code: &'static str,
        detail: String,
        errors: Vec<FieldError>,
    },
    /// 409: conflicts with the current state.
    Conflict(Violation),
    /// 412: `If-Match` is stale.
    PreconditionFailed { current: Option<i64> },
    /// 413.
    PayloadTooLarge { limit: usize },
    /// 413: more bulk elements than allowed.
    BatchTooLarge { limit: usize },
    /// 415.
    UnsupportedMediaType(String),
    /// 503: the database is unreachable or saturated.
    Unavailable,
    /// 429: a rate limit or the caller's share of a concurrency limit; with `Retry-After`
    /// (and the `RateLimit` headers of the budget it spent).
    TooManyRequests {
        code: &'static str,
        detail: String,
        standing: Option<crate::protection::Standing>,
    },
    /// 503: the service runs all the heavy work it may at once; with `Retry-After`.
    Busy { code: &'static str, detail: String },
    /// 408: the request body paused too long or arrived too slowly; the connection is closed.
    BodyTimeout(String),
    /// 413: storing this would exceed a quota.
    QuotaExceeded(String),
    /// 500: the cause is in the log, never in the body.
    Internal,
    /// Any other status that actix produced by itself.
    Other(StatusCode),
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.code())
    }
}

impl ApiError {
    pub fn bad_request(code: &'static str, detail: impl Into<String>) -> Self {
        ApiError::BadRequest {
            code,
            detail: detail.into(),
            errors: Vec::new(),
        }
    }

    pub fn invalid_param(name: &str, code: &'static str, detail: impl Into<String>) -> Self {
        let detail = detail.into();
        ApiError::BadRequest {
            code: "invalid_query",
            detail: format!("query parameter `{name}`: {detail}"),
            errors: vec![FieldError::param(name, code, detail)],
        }
    }

    pub fn code(&self) -> &str {
        match self {
            ApiError::Unauthorized { code, .. } => code,
            ApiError::Forbidden(_) => "forbidden",
            ApiError::Refused(v) => v.code,
            ApiError::NotFound => "not_found",
            ApiError::RouteNotFound(_) => "route_not_found",
            ApiError::MethodNotAllowed(_) => "method_not_allowed",
            ApiError::BadRequest { code, .. } => code,
            ApiError::Invalid(_) => "validation_failed",
            ApiError::Unprocessable { code, .. } => code,
            ApiError::Conflict(v) => v.code,
            ApiError::PreconditionFailed { .. } => "precondition_failed",
            ApiError::PayloadTooLarge { .. } => "payload_too_large",
            ApiError::BatchTooLarge { .. } => "batch_too_large",
            ApiError::UnsupportedMediaType(_) => "unsupported_media_type",
            ApiError::Unavailable => "service_unavailable",
            ApiError::TooManyRequests { code, .. } | ApiError::Busy { code, .. } => code,
            ApiError::BodyTimeout(_) => "body_timeout",
            ApiError::QuotaExceeded(_) => "evidence_quota_exceeded",
            ApiError::Internal => "internal_error",
            ApiError::Other(s) => generic_code(*s),
        }
    }

    fn title(&self) -> &'static str {
        match self {
            ApiError::Unauthorized { .. } => "Authentication required",
            ApiError::Forbidden(_) | ApiError::Refused(_) => "Not allowed",
            ApiError::NotFound => "Not found",
            ApiError::RouteNotFound(_) => "No such route",
            ApiError::MethodNotAllowed(_) => "Method not allowed",
            ApiError::BadRequest { .. } => "The request cannot be read",
            ApiError::Invalid(_) => "The request breaks the rules",
            ApiError::Unprocessable { .. } => "The request cannot be met under the rules",
            ApiError::Conflict(_) => "Conflict with the current state",
            ApiError::PreconditionFailed { .. } => "The resource has changed",
            ApiError::PayloadTooLarge { .. } => "Request body too large",
            ApiError::BatchTooLarge { .. } => "Too many elements in one batch",
            ApiError::UnsupportedMediaType(_) => "Unsupported media type",
            ApiError::Unavailable => "Service unavailable",
            ApiError::TooManyRequests { .. } => "Too many requests",
            ApiError::Busy { .. } => "Service busy",
            ApiError::BodyTimeout(_) => "The request body timed out",
            ApiError::QuotaExceeded(_) => "Quota exceeded",
            ApiError::Internal => "Internal Server Error",
            ApiError::Other(s) => s.canonical_reason().unwrap_or("Error"),
        }
    }

    fn detail(&self) -> String {
        match self {
            ApiError::Unauthorized { detail, .. } | ApiError::Forbidden(detail) => detail.clone(),
            ApiError::NotFound => "no such resource".into(),
            ApiError::RouteNotFound(path) => format!("no route matches {path}"),
            ApiError::MethodNotAllowed(allowed) => format!(
                "allowed: {}",
                allowed
                    .iter()
                    .map(Method::as_str)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            ApiError::BadRequest { detail, .. } | ApiError::Unprocessable { detail, .. } => {
                detail.clone()
            }
            ApiError::Invalid(errors) => match errors.len() {
                1 => "1 field is invalid".into(),
                n => format!("{n} fields are invalid"),
            },
            ApiError::Conflict(v) | ApiError::Refused(v) => v.message.clone(),
            ApiError::PreconditionFailed {
                current: Some(current),
            } => format!(
                "If-Match does not name the current version; the current ETag is \"{current}\": \
                 fetch the resource, re-apply your change and retry"
            ),
            ApiError::PreconditionFailed { current: None } => {
                "If-Match names no current version of the resource (a weak tag, or one this \
                 service did not mint): send the strong ETag (\"N\") you read"
                    .into()
            }
            ApiError::PayloadTooLarge { limit } => format!("the limit is {limit} bytes"),
            ApiError::BatchTooLarge { limit } => {
                format!("a batch holds at most {limit} elements: split it")
            }
            ApiError::UnsupportedMediaType(detail)
            | ApiError::BodyTimeout(detail)
            | ApiError::QuotaExceeded(detail)
            | ApiError::TooManyRequests { detail, .. }
            | ApiError::Busy { detail, .. } => detail.clone(),
            ApiError::Unavailable => {
                "the database is unavailable or busy; retry after a short wait".into()
            }
            ApiError::Internal => "Internal Server Error".into(),
            ApiError::Other(s) => s.canonical_reason().unwrap_or("Error").into(),
        }
    }

    pub fn problem(&self) -> Problem {
        let code = self.code().to_owned();
        let errors = match self {
            ApiError::BadRequest { errors, .. }
            | ApiError::Invalid(errors)
            | ApiError::Unprocessable { errors, .. } => errors.clone(),
            ApiError::Conflict(v) | ApiError::Refused(v) if !v.pointer.is_empty() => {
                vec![FieldError::from(v.clone())]
            }
            _ => Vec::new(),
        };
        Problem {
            type_: format!("urn:poam:problem:{code}"),
            title: self.title().to_owned(),
            status: self.status_code().as_u16(),
            detail: self.detail(),
            code,
            errors,
        }
    }
}

fn generic_code(s: StatusCode) -> &'static str {
    match s.as_u16() {
        400 => "bad_request",
        401 => "unauthorized",
        403 => "forbidden",
        404 => "not_found",
        405 => "method_not_allowed",
        406 => "not_acceptable",
        408 => "request_timeout",
        411 => "length_required",
        413 => "payload_too_large",
        414 => "uri_too_long",
        415 => "unsupported_media_type",
        431 => "request_header_fields_too_large",
        500..=599 => "internal_error",
        _ => "client_error",
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            ApiError::Unauthorized { .. } => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) | ApiError::Refused(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound | ApiError::RouteNotFound(_) => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::BadRequest { .. } => StatusCode::BAD_REQUEST,
            ApiError::Invalid(_) | ApiError::Unprocessable { .. } => {
                StatusCode::UNPROCESSABLE_ENTITY
            }
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::PreconditionFailed { .. } => StatusCode::PRECONDITION_FAILED,
            ApiError::PayloadTooLarge { .. } | ApiError::BatchTooLarge { .. } => {
                StatusCode::PAYLOAD_TOO_LARGE
            }
            ApiError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::Unavailable | ApiError::Busy { .. } => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::BodyTimeout(_) => StatusCode::REQUEST_TIMEOUT,
            ApiError::QuotaExceeded(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::Internal => StatusCode::INTERNAL_SERVER_ERROR,
            ApiError::Other(s) => *s,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let mut res = HttpResponse::build(self.status_code());
        res.insert_header((header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON)));
        match self {
            ApiError::Unauthorized { code, .. } => {
                let challenge = if *code == "missing_token" {
                    "Bearer realm=\"poam\"".to_owned()
                } else {
                    format!("Bearer realm=\"poam\", error=\"invalid_token\", error_description=\"{code}\"")
                };
                res.insert_header((header::WWW_AUTHENTICATE, challenge));
            }
            ApiError::MethodNotAllowed(allowed) => {
                let allow = allowed
                    .iter()
                    .map(Method::as_str)
                    .collect::<Vec<_>>()
                    .join(", ");
                res.insert_header((header::ALLOW, allow));
            }
            ApiError::Unavailable | ApiError::Busy { .. } => {
                res.insert_header((header::RETRY_AFTER, "1"));
            }
            ApiError::TooManyRequests { standing, .. } => {
                let mut headers = header::HeaderMap::new();
                match standing {
                    Some(s) => s.insert_into(&mut headers),
                    None => {
                        headers.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
                    }
                }
                for (k, v) in headers {
                    res.insert_header((k, v));
                }
            }
            ApiError::BodyTimeout(_) => {
                res.force_close();
            }
            _ => {}
        }
        let body = serde_json::to_vec(&self.problem()).unwrap_or_else(|_| {
            br#"{"type":"about:blank","title":"Internal Server Error","status":500}"#.to_vec()
        });
        res.body(body)
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound => ApiError::NotFound,
            StoreError::Stale { current } => ApiError::PreconditionFailed {
                current: Some(current),
            },
            StoreError::Conflict(v) => ApiError::Conflict(v),
            StoreError::Forbidden(v) => ApiError::Refused(v),
            StoreError::BadCursor => ApiError::invalid_param(
                "cursor",
                "invalid_cursor",
                "this cursor was not issued for this list and sort; start again without it",
            ),
            StoreError::Invalid(v) => {
                ApiError::Invalid(v.into_iter().map(FieldError::from).collect())
            }
            StoreError::Unavailable(cause) => {
                tracing::warn!(%cause, "database unavailable");
                ApiError::Unavailable
            }
            StoreError::Internal(cause) => {
                tracing::error!(%cause, "internal error");
                ApiError::Internal
            }
        }
    }
}
