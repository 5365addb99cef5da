//! One place registers every route and, with it, the OpenAPI document; one middleware gives
//! every response a request id, logs it, and turns any error actix produced by itself into a
//! problem document.

use crate::problem::{ApiError, PROBLEM_JSON};
use crate::routes::{
    attention, catalogs, cmmc, evidence, exchange, health, history, items, metrics, report,
    reports, scans, sheet_import, systems, validation, webhooks, workflow,
};
use crate::state::AppState;
use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceFactory, ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderName, HeaderValue};
use actix_web::http::Method;
use actix_web::middleware::{from_fn, Next};
use actix_web::{web, App, HttpMessage, HttpRequest, HttpResponse, ResponseError};
use std::sync::OnceLock;
use std::time::Instant;
use tracing::Instrument;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::OpenApi as OpenApiDoc;
use utoipa::{Modify, OpenApi};
use utoipa_actix_web::{scope, AppExt};
use utoipa_swagger_ui::SwaggerUi;

pub const REQUEST_ID: &str = "x-request-id";

/// The most header bytes a request may carry (names and values): a bearer token is ~1 KiB.
/// Larger is a 431 problem; far larger (beyond actix's own buffer) a bare 431 from actix.
pub const MAX_HEADER_BYTES: usize = 16 << 10;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "POA&M service",
        description = "Plans of Action and Milestones for CMMC (NIST SP 800-171), FedRAMP and DoD RMF (eMASS).\n\n\
Every operation but health and this document needs `Authorization: Bearer <JWT>`; mint one with `poam token`. \
Errors are RFC 9457 problem documents (`application/problem+json`) with a stable `code` and, for invalid \
input, `errors[]` pointing at each field. Writes honour `If-Match` with the `ETag` of the last read.",
        license(name = "Apache-2.0", identifier = "Apache-2.0"),
        version = "1.0.0",
    ),
    components(schemas(crate::problem::Problem, crate::problem::FieldError)),
    tags(
        (name = "systems", description = "Information systems and the header of their POA&M."),
        (name = "items", description = "POA&M items: the weaknesses and their remediation."),
        (name = "milestones", description = "The steps of an item's plan, with every due-date change kept."),
        (name = "reviews", description = "Recorded decisions: periodic reviews, approvals, closure verification, risk acceptance, deviations, extensions. Append-only."),
        (name = "evidence", description = "Immutable files proving remediation and verification, with SHA-256."),
        (name = "validation", description = "Dry runs against the regime profiles (eMASS, FedRAMP, CMMC): findings with rule, severity, pointer and citation."),
        (name = "metrics", description = "Counts, overdue items, aging, time to close and slips, computed in the database."),
        (name = "cmmc", description = "CMMC Level 2: the self-assessment, the SPRS score and the Conditional status check (32 CFR 170.21)."),
        (name = "exchange", description = "Exports (auditor bundle, OSCAL POA&M, FedRAMP template as CSV and XLSX), bulk upserts with one result per element, OSCAL imports."),
        (name = "reports", description = "FedRAMP 2026 (VDR/VER) reports: the vulnerability detail report and accepted vulnerability info valid against FedRAMP's 2026-06-24 schemas, the historical activity feed and the printable monthly report."),
        (name = "report", description = "The reports people look at: the executive (one page) and technical report of a system or of the portfolio, as self-contained printable HTML (inline CSS and SVG charts, no script) or JSON: headline, burn-down, aging, slips, time to close against the deadlines, resources, the 90-day remediation roadmap and what needs attention."),
        (name = "attention", description = "What needs someone now, most urgent first: overdue and escalated items, overdue and due-soon milestones, late vendor check-ins, deviations and completed items awaiting a decision, each with its reason and whom it waits on."),
        (name = "scans", description = "Scanner results in (Nessus, STIG checklists CKL/CKLB, SARIF, CSV through a mapping): new findings, the same weakness again, findings no longer seen; each scan stored as the system's evidence."),
        (name = "catalogs", description = "Threat and control catalogs loaded offline: CISA KEV, FIRST EPSS, DISA's CCI list."),
        (name = "history", description = "The hash-chained record of every change: feed, item history, verification."),
        (name = "webhooks", description = "Subscriptions to the history's events, delivered at least once, in chain order per system, signed per Standard Webhooks (admin)."),
        (name = "health", description = "Liveness and readiness, unauthenticated."),
    ),
    modifiers(&BearerScheme),
)]
struct ApiDoc;

struct BearerScheme;

impl Modify for BearerScheme {
    fn modify(&self, openapi: &mut OpenApiDoc) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .description(Some(
                        "A JWT with `sub` (1 to 255 characters), `roles`, `systems` and `exp` claims, \
                         living at most the configured maximum (`POAM_TOKEN_MAX_TTL`, 90 days by default) \
                         from `iat`; `poam token` mints one.",
                    ))
                    .build(),
            ),
        );
    }
}

/// Every operation, listed once: `$register!` gets the unscoped ones, then those under `/v1`.
/// actix tries a scope's routes in this order, matching each parameter route by its regex, so
/// the busiest reads come first (GET by id tried seven regexes before its own: a quarter of its
/// CPU). No route may hide a later one (`no_route_hides_a_later_one`).
macro_rules! every_route {
    ($register:ident) => {
        $register!(
            [health::healthz, health::readyz],
            [
                items::get_item,
                items::list_items,
                items::update_item,
                systems::create_system,
                systems::list_systems,
                systems::get_system,
                systems::update_system,
                systems::archive_system,
                validation::validate_item,
                validation::validate_system,
                items::create_item,
                items::archive_item,
                workflow::transition,
                workflow::create_milestone,
                workflow::list_milestones,
                workflow::get_milestone,
                workflow::update_milestone,
                workflow::complete_milestone,
                workflow::cancel_milestone,
                workflow::create_system_review,
                workflow::list_system_reviews,
                workflow::create_item_review,
                workflow::list_item_reviews,
                evidence::upload,
                evidence::list,
                evidence::get,
                evidence::content,
                evidence::withdraw,
                cmmc::put_assessment,
                cmmc::get_assessment,
                cmmc::score,
                cmmc::what_if,
                metrics::system_metrics,
                metrics::all_metrics,
                attention::attention,
                attention::system_attention,
                reports::fedramp_vdt,
                reports::fedramp_avi,
                reports::fedramp_history,
                reports::fedramp_monthly,
                report::system_report,
                report::portfolio_report,
                history::list_events,
                history::verify_events,
                history::item_history,
                exchange::export,
                exchange::export_json,
                exchange::export_oscal,
                exchange::export_fedramp_csv,
                exchange::export_fedramp_xlsx,
                exchange::export_emass_xlsx,
                exchange::export_emass_csv,
                exchange::export_emass_dry_run,
                exchange::export_nisp_xlsx,
                exchange::export_nisp_csv,
                exchange::bundle_schema,
                exchange::bulk,
                exchange::import_oscal,
                sheet_import::import_fedramp,
                sheet_import::import_emass,
                scans::import_nessus,
                scans::import_ckl,
                scans::import_cklb,
                scans::import_sarif,
                scans::import_csv,
                scans::list_scans,
                scans::get_scan,
                scans::scan_content,
                catalogs::list_catalogs,
                catalogs::put_kev,
                catalogs::put_epss,
                catalogs::put_cci,
                webhooks::create_webhook,
                webhooks::list_webhooks,
                webhooks::get_webhook,
                webhooks::update_webhook,
                webhooks::delete_webhook,
                webhooks::list_deliveries,
                webhooks::redeliver
            ]
        )
    };
}

/// The routes with their OpenAPI paths, for the document.
fn routes<T>(app: utoipa_actix_web::UtoipaApp<T>) -> utoipa_actix_web::UtoipaApp<T>
where
    T: ServiceFactory<ServiceRequest, Config = (), Error = actix_web::Error, InitError = ()>,
{
    macro_rules! register {
        ([$($top:path),*], [$($v1:path),*]) => {
            app$(.service($top))*.service(scope::scope("/v1")$(.service($v1))*)
        };
    }
    every_route!(register)
}

/// The same routes on a plain actix app, for serving: no worker builds OpenAPI paths it would
/// throw away.
fn serving_routes<T>(app: App<T>) -> App<T>
where
    T: ServiceFactory<ServiceRequest, Config = (), Error = actix_web::Error, InitError = ()>,
{
    macro_rules! register {
        ([$($top:path),*], [$($v1:path),*]) => {
            app$(.service($top))*.service(web::scope("/v1")$(.service($v1))*)
        };
    }
    every_route!(register)
}

/// The OpenAPI document, built from the same registration as the server.
pub fn openapi() -> OpenApiDoc {
    let mut openapi = routes(App::new().into_utoipa_app().openapi(ApiDoc::openapi()))
        .split_for_parts()
        .1;
    document_idempotency(&mut openapi);
    document_protection(&mut openapi);
    crate::routes::docs::document_patches(&mut openapi);
    crate::routes::exchange::document_export_headers(&mut openapi);
    document_summaries(&mut openapi);
    document_optional_bodies(&mut openapi);
    document_problem_examples(&mut openapi);
    openapi
}

/// The limits every authenticated operation is under (see `crate::protection`): 429 with
/// `Retry-After` and the `RateLimit` headers, 503 when a heavy-operation budget is spent, 408
/// for a request body that stalls; and the `RateLimit` headers on every answer.
fn document_protection(openapi: &mut OpenApiDoc) {
    use utoipa::openapi::header::HeaderBuilder;
    use utoipa::openapi::schema::Type;
    use utoipa::openapi::{ObjectBuilder, Ref};
    let header = |description: &str, kind: Type| {
        HeaderBuilder::new()
            .schema(ObjectBuilder::new().schema_type(kind))
            .description(Some(description))
            .build()
    };
    let policy = header(
        "The caller's quota (draft-ietf-httpapi-ratelimit-headers): `\"token\";q=<requests>;w=<seconds>`, \
         or `\"address\"` for calls without a token.",
        Type::String,
    );
    let state = header(
        "What is left of the quota: `\"token\";r=<remaining>;t=<seconds until whole again>`.",
        Type::String,
    );
    let retry = header("Seconds to wait before trying again.", Type::Integer);
    let problem = |description: &str, retry_after: bool| {
        let mut b = utoipa::openapi::ResponseBuilder::new()
            .description(description)
            .content(
                crate::problem::PROBLEM_JSON,
                utoipa::openapi::Content::new(Some(Ref::from_schema_name("Problem"))),
            );
        if retry_after {
            b = b
                .header("Retry-After", retry.clone())
                .header("RateLimit-Policy", policy.clone())
                .header("RateLimit", state.clone());
        }
        b.build()
    };
    for item in openapi.paths.paths.values_mut() {
        for op in [
            item.get.as_mut(),
            item.post.as_mut(),
            item.put.as_mut(),
            item.patch.as_mut(),
            item.delete.as_mut(),
        ]
        .into_iter()
        .flatten()
        {
            if op.security.as_ref().is_none_or(|s| s.is_empty()) {
                continue;
            }
            let responses = &mut op.responses.responses;
            for (status, response) in responses.iter_mut() {
                if let (true, utoipa::openapi::RefOr::T(r)) = (status.starts_with('2'), response) {
                    r.headers
                        .entry("RateLimit-Policy".into())
                        .or_insert_with(|| policy.clone());
                    r.headers
                        .entry("RateLimit".into())
                        .or_insert_with(|| state.clone());
                }
            }
            responses.entry("429".into()).or_insert_with(|| {
                problem(
                    "A budget is spent: the token's or the address's request rate (`rate_limited`), \
                     the address's failed authentications (`too_many_failed_authentications`), or the \
                     token's concurrent heavy operations (`too_many_concurrent`). Wait `Retry-After` \
                     seconds.",
                    true,
                )
                .into()
            });
            responses.entry("503".into()).or_insert_with(|| {
                problem(
                    "The service is busy: the overall budget of concurrent heavy operations \
                     (`server_busy`) or their memory budget (`memory_budget_exhausted`) is spent, or the \
                     database is unreachable or busy (`service_unavailable`). Retry after \
                     `Retry-After` seconds.",
                    true,
                )
                .into()
            });
            if op.request_body.is_some() {
                responses.entry("408".into()).or_insert_with(|| {
                    problem(
                        "The request body stalled: nothing arrived for the idle timeout, or it came \
                         slower than the minimum rate (`body_timeout`).",
                        false,
                    )
                    .into()
                });
            }
        }
    }
}

/// Summaries are plain text (Swagger UI and most generators show them as is, unlike
/// descriptions, which are CommonMark): the code spans' backticks go, and the line breaks of
/// the doc comment's first paragraph become spaces.
fn document_summaries(openapi: &mut OpenApiDoc) {
    for item in openapi.paths.paths.values_mut() {
        for op in [
            item.get.as_mut(),
            item.post.as_mut(),
            item.put.as_mut(),
            item.patch.as_mut(),
            item.delete.as_mut(),
        ]
        .into_iter()
        .flatten()
        {
            if let Some(summary) = op.summary.as_mut() {
                *summary = summary
                    .replace('`', "")
                    .split_whitespace()
                    .collect::<Vec<_>>()
                    .join(" ");
            }
        }
    }
}

/// Every operation of the document, mutably.
pub(crate) fn operations(
    openapi: &mut OpenApiDoc,
) -> impl Iterator<Item = &mut utoipa::openapi::path::Operation> {
    openapi.paths.paths.values_mut().flat_map(|item| {
        [
            item.get.as_mut(),
            item.post.as_mut(),
            item.put.as_mut(),
            item.patch.as_mut(),
            item.delete.as_mut(),
        ]
        .into_iter()
        .flatten()
    })
}

/// A body declared `Option<T>` (utoipa: `oneOf [null, T]`) is an optional body of `T`: the
/// request may have none, but a body sent is `T`, never the JSON `null`.
fn document_optional_bodies(openapi: &mut OpenApiDoc) {
    use utoipa::openapi::schema::{Schema, SchemaType, Type};
    use utoipa::openapi::{RefOr, Required};
    for op in operations(openapi) {
        let Some(body) = op.request_body.as_mut() else {
            continue;
        };
        let mut optional = false;
        for content in body.content.values_mut() {
            if let Some(RefOr::T(Schema::OneOf(o))) = content.schema.as_ref() {
                let rest: Vec<_> = o
                    .items
                    .iter()
                    .filter(|i| !matches!(i, RefOr::T(Schema::Object(x)) if x.schema_type == SchemaType::Type(Type::Null)))
                    .cloned()
                    .collect();
                if rest.len() == 1 && rest.len() < o.items.len() {
                    content.schema = rest.into_iter().next();
                    optional = true;
                }
            }
        }
        if optional {
            body.required = Some(Required::False);
        }
    }
}

/// Each problem response shows an example of its own status (not the component's 422): the
/// first code its description names, or the status's usual one.
fn document_problem_examples(openapi: &mut OpenApiDoc) {
    use utoipa::openapi::RefOr;
    for op in operations(openapi) {
        for (status, response) in op.responses.responses.iter_mut() {
            let RefOr::T(response) = response else {
                continue;
            };
            let Some(content) = response.content.get_mut(PROBLEM_JSON) else {
                continue;
            };
            if content.example.is_some() || !content.examples.is_empty() {
                continue;
            }
            let number: u16 = match status.as_str() {
                "4XX" => 405,
                "5XX" => 503,
                s => s.parse().unwrap_or(500),
            };
            let code = response
                .description
                .split('`')
                .skip(1)
                .step_by(2)
                .find(|c| {
                    !c.is_empty()
                        && *c != "errors"
                        && c.bytes().all(|b| b.is_ascii_lowercase() || b == b'_')
                })
                .map(str::to_owned)
                .unwrap_or_else(|| match number {
                    405 => "method_not_allowed".to_owned(),
                    _ => actix_web::http::StatusCode::from_u16(number)
                        .ok()
                        .and_then(|s| s.canonical_reason())
                        .unwrap_or("error")
                        .to_ascii_lowercase()
                        .replace(' ', "_"),
                });
            let title = actix_web::http::StatusCode::from_u16(number)
                .ok()
                .and_then(|s| s.canonical_reason())
                .unwrap_or("Error");
            let mut example = serde_json::json!({
                "type": format!("urn:poam:problem:{code}"),
                "title": title,
                "status": number,
                "detail": match response.description.split(['.', ':', '(']).next().unwrap_or("").trim() {
                    d if d.is_empty() || d.starts_with('`') => title,
                    d => d,
                },
                "code": code,
            });
            if number == 422 {
                example["errors"] = serde_json::json!([{"pointer": "/title", "code": "invalid_length", "detail": "must have 1 to 250 characters"}]);
            }
            content.example = Some(example);
        }
    }
}

/// Every POST takes an `Idempotency-Key` (see `crate::idempotency`).
fn document_idempotency(openapi: &mut OpenApiDoc) {
    use utoipa::openapi::path::{ParameterBuilder, ParameterIn};
    use utoipa::openapi::Required;
    for item in openapi.paths.paths.values_mut() {
        if let Some(op) = item.post.as_mut() {
            let parameter = ParameterBuilder::new()
                    .name("Idempotency-Key")
                    .parameter_in(ParameterIn::Header)
                    .required(Required::False)
                    .description(Some(
                        "Makes the POST safe to retry: a retry with the same key and content gets the first \
                         response again (`Idempotent-Replayed: true`) and creates nothing; the same key with \
                         other content is 422 `idempotency_key_reused`; while the first runs, 409 \
                         `idempotency_key_in_use`. Keys are per caller, kept 24 hours. A replay answers only \
                         a token that may still make the request: without the role the first needed it is \
                         403, without the system in its scope 404, as the operation itself would answer.",
                    ))
                    .schema(Some(
                        utoipa::openapi::ObjectBuilder::new()
                            .schema_type(utoipa::openapi::schema::Type::String)
                            .min_length(Some(1))
                            .max_length(Some(255))
                            .pattern(Some("^[!-~]+$")),
                    ))
                    .build();
            op.parameters.get_or_insert_with(Vec::new).push(parameter);
            let replayed = utoipa::openapi::header::HeaderBuilder::new()
                .schema(
                    utoipa::openapi::ObjectBuilder::new()
                        .schema_type(utoipa::openapi::schema::Type::String)
                        .enum_values(Some(["true"])),
                )
                .description(Some(
                    "`true` when this is the stored response of an earlier request with the same \
                     `Idempotency-Key` (nothing was done again); absent otherwise.",
                ))
                .build();
            for (status, response) in op.responses.responses.iter_mut() {
                if let (true, utoipa::openapi::RefOr::T(r)) = (status.starts_with('2'), response) {
                    r.headers
                        .entry("Idempotent-Replayed".into())
                        .or_insert_with(|| replayed.clone());
                }
            }
        }
    }
}

/// The JSON Schema (2020-12) of the export bundle, built from the same component schemas as
/// the OpenAPI document (OpenAPI 3.1 schemas are JSON Schema): only those the bundle reaches.
pub fn bundle_schema() -> serde_json::Value {
    use serde_json::{json, Map, Value};
    fn refs(v: &Value, out: &mut Vec<String>) {
        match v {
            Value::Object(m) => {
                for (k, x) in m {
                    match (k.as_str(), x) {
                        ("$ref", Value::String(r)) => {
                            if let Some(name) = r.strip_prefix("#/components/schemas/") {
                                out.push(name.to_owned());
                            }
                        }
                        _ => refs(x, out),
                    }
                }
            }
            Value::Array(a) => a.iter().for_each(|x| refs(x, out)),
            _ => {}
        }
    }
    fn rewrite(v: &mut Value) {
        match v {
            Value::Object(m) => {
                for (k, x) in m.iter_mut() {
                    match (k.as_str(), &mut *x) {
                        ("$ref", Value::String(r)) => {
                            *r = r.replace("#/components/schemas/", "#/$defs/");
                        }
                        _ => rewrite(x),
                    }
                }
            }
            Value::Array(a) => a.iter_mut().for_each(rewrite),
            _ => {}
        }
    }
    let spec = serde_json::to_value(spec()).unwrap_or(Value::Null);
    let all = spec
        .pointer("/components/schemas")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    let mut defs = Map::new();
    let mut todo = vec!["ExportBundle".to_owned()];
    while let Some(name) = todo.pop() {
        if defs.contains_key(&name) {
            continue;
        }
        if let Some(schema) = all.get(&name) {
            refs(schema, &mut todo);
            defs.insert(name, schema.clone());
        }
    }
    let mut defs = Value::Object(defs);
    rewrite(&mut defs);
    json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://poam-service.dev/schemas/export-bundle.json",
        "title": "POA&M export bundle",
        "description": "GET /v1/systems/{id}/export?format=json: a system's whole POA&M and its hash-chained history, read from one snapshot. Each event's hash is SHA-256 over its prev_hash and the canonical JSON of its other members; the last one equals chain.head.",
        "$ref": "#/$defs/ExportBundle",
        "$defs": defs,
    })
}

/// The route table, for telling 404 from 405. Literal segments win over parameters: a path
/// that matches `/v1/items/validate` is judged by that route's methods, never by
/// `/v1/items/{item_id}`'s.
struct RouteTable {
    /// Every route with its methods, most specific first.
    routes: Vec<(Pattern, Vec<Method>)>,
    /// The routes a parameter route could take a request for (a literal segment where a
    /// sibling has a parameter): checked before routing, so a method they lack is a 405.
    shadowed: Vec<usize>,
}

/// A route's path pattern, segment by segment: a `{parameter}` segment matches any one
/// non-empty segment, as actix's `[^/]+` does. (actix's own `ResourceDef` compiles a regex per
/// pattern: 70 more of them, kept for the process, for a table that needs none.)
/// Its text up to the first parameter is compared first: most paths differ from most patterns
/// there, and a path is looked up against the shadowed routes on every request.
struct Pattern {
    segments: Vec<Option<String>>,
    prefix: String,
}

impl Pattern {
    fn new(pattern: &str) -> Self {
        Pattern {
            segments: pattern
                .split('/')
                .map(|s| (!s.starts_with('{')).then(|| s.to_owned()))
                .collect(),
            prefix: pattern[..pattern.find('{').unwrap_or(pattern.len())].to_owned(),
        }
    }

    /// A path `pattern` matches, each parameter filled in with `x`.
    fn sample(pattern: &str) -> String {
        pattern
            .split('/')
            .map(|s| if s.starts_with('{') { "x" } else { s })
            .collect::<Vec<_>>()
            .join("/")
    }

    fn is_match(&self, path: &str) -> bool {
        if !path.starts_with(&self.prefix) {
            return false;
        }
        let mut segments = path.split('/');
        self.segments
            .iter()
            .all(|want| match (want, segments.next()) {
                (Some(literal), Some(segment)) => literal == segment,
                (None, Some(segment)) => !segment.is_empty(),
                (_, None) => false,
            })
            && segments.next().is_none()
    }
}

/// Orders patterns so that, of two that match one path, the one with a literal segment where
/// the other has a parameter comes first.
fn specificity(pattern: &str) -> Vec<u8> {
    pattern
        .split('/')
        .map(|segment| u8::from(segment.contains('{')))
        .collect()
}

/// Every registered handler's path and methods in registration order, from the handlers'
/// `utoipa::Path` impls (static functions: no operation, schema or document is built).
fn registered_routes_in_order() -> Vec<(String, Vec<Method>)> {
    use utoipa::openapi::path::HttpMethod;
    use utoipa::Path as _;
    fn method(m: HttpMethod) -> Option<Method> {
        match m {
            HttpMethod::Get => Some(Method::GET),
            HttpMethod::Post => Some(Method::POST),
            HttpMethod::Put => Some(Method::PUT),
            HttpMethod::Patch => Some(Method::PATCH),
            HttpMethod::Delete => Some(Method::DELETE),
            _ => None,
        }
    }
    macro_rules! collect {
        ([$($top:path),*], [$($v1:path),*]) => {
            vec![
                $((<$top>::path(), <$top>::methods()),)*
                $((format!("/v1{}", <$v1>::path()), <$v1>::methods()),)*
            ]
        };
    }
    every_route!(collect)
        .into_iter()
        .map(|(path, methods): (String, Vec<HttpMethod>)| {
            (path, methods.into_iter().filter_map(method).collect())
        })
        .collect()
}

/// Every registered route's path and methods, merged by path.
fn registered_routes() -> Vec<(String, Vec<Method>)> {
    let mut table: Vec<(String, Vec<Method>)> = Vec::new();
    for (path, methods) in registered_routes_in_order() {
        match table.iter_mut().find(|(p, _)| *p == path) {
            Some((_, known)) => known.extend(methods),
            None => table.push((path, methods)),
        }
    }
    // `Allow` lists them in the document's order.
    let order = [
        Method::GET,
        Method::POST,
        Method::PUT,
        Method::PATCH,
        Method::DELETE,
    ];
    for (_, methods) in &mut table {
        methods.sort_by_key(|m| order.iter().position(|o| o == m));
    }
    table
}

impl RouteTable {
    fn new(mut table: Vec<(String, Vec<Method>)>) -> Self {
        table.push(("/v1/openapi.json".into(), vec![Method::GET]));
        table.push(("/metrics".into(), vec![Method::GET]));
        table.sort_by_key(|(path, _)| specificity(path));
        let routes: Vec<(Pattern, Vec<Method>)> = table
            .iter()
            .map(|(path, methods)| (Pattern::new(path), methods.clone()))
            .collect();
        // A route is shadowed when another route matches its path with every parameter
        // filled in (`x`): `/v1/items/{item_id}` matches `/v1/items/validate`.
        let shadowed = table
            .iter()
            .enumerate()
            .filter(|(i, (path, _))| {
                let sample = Pattern::sample(path);
                routes
                    .iter()
                    .enumerate()
                    .any(|(j, (def, _))| j != *i && def.is_match(&sample))
            })
            .map(|(i, _)| i)
            .collect();
        RouteTable { routes, shadowed }
    }

    /// The methods of the most specific route matching `path`.
    fn allowed(&self, path: &str) -> Option<&[Method]> {
        self.routes
            .iter()
            .find(|(def, _)| def.is_match(path))
            .map(|(_, m)| m.as_slice())
    }

    /// The methods of the shadowed route `path` matches, when they exclude `method`.
    fn refused(&self, path: &str, method: &Method) -> Option<&[Method]> {
        self.shadowed
            .iter()
            .filter_map(|i| self.routes.get(*i))
            .find(|(def, _)| def.is_match(path))
            .map(|(_, m)| m.as_slice())
            .filter(|methods| !methods.contains(method))
    }
}

/// Built on first use from the handlers' paths and methods. (It was once built from the whole
/// OpenAPI document, then dropped: 8 MiB of heap the allocator kept, a third of the idle RSS.)
fn route_table() -> &'static RouteTable {
    static TABLE: OnceLock<RouteTable> = OnceLock::new();
    TABLE.get_or_init(|| RouteTable::new(registered_routes()))
}

async fn fallback(req: HttpRequest) -> HttpResponse {
    match route_table().allowed(req.path()) {
        Some(methods) => ApiError::MethodNotAllowed(methods.to_vec()).error_response(),
        None => ApiError::RouteNotFound(req.path().to_owned()).error_response(),
    }
}

/// Literal segments before parameters: actix would hand `PATCH /v1/items/validate` to
/// `PATCH /v1/items/{item_id}` (and its 404 for a malformed id); the literal route's methods
/// decide, so it is a 405.
async fn literal_routes_first(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    if let Some(methods) = route_table().refused(req.path(), req.method()) {
        let e = ApiError::MethodNotAllowed(methods.to_vec());
        let (req, _) = req.into_parts();
        return Ok(ServiceResponse::new(req, e.error_response()));
    }
    next.call(req)
        .await
        .map(ServiceResponse::map_into_boxed_body)
}

/// The route pattern a request answered through [`hot_routes`] reports to the access log and
/// the metrics: the one actix would have matched.
#[derive(Clone, Copy)]
struct HotRoute(&'static str);

/// `GET /v1/items/{item_id}` with a hyphenated id, the service's busiest request, is answered
/// here without actix's router: the router tries each route with a `regex-lite` regex, and the
/// one that matches costs about 37,000 instructions, a fifth of the whole request. The same
/// extractor and handler body answer ([`items::read_item`]); the request id, access log,
/// metrics, rate limits and protective headers (`edge`, `protection::guard`) wrap it as any
/// other; the two middlewares inside it have nothing to do for this request (idempotency keys
/// are for `POST`, and no literal route shadows a UUID), so it answers before them. Any other
/// shape of the path (another spelling of the id, a longer path) goes through the router as
/// before.
async fn hot_routes(
    mut req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let item = (req.method() == Method::GET)
        .then(|| req.path().strip_prefix(ITEM_PREFIX))
        .flatten()
        .filter(|rest| rest.len() == 36)
        .and_then(|rest| uuid::Uuid::try_parse(rest).ok());
    // Every other request goes on without looking anything up.
    let Some(id) = item else {
        return next
            .call(req)
            .await
            .map(ServiceResponse::map_into_boxed_body);
    };
    req.extensions_mut().insert(HotRoute(ITEM_ROUTE));
    // The state borrowed through a second handle on the request (its count is the worker's
    // own), not cloned: an `Arc`'s count is a line every worker writes.
    let shared = req.request().clone();
    let Some(state) = shared.app_data::<web::Data<AppState>>() else {
        return Err(ApiError::Internal.into());
    };
    let (http, payload) = req.parts_mut();
    let answer =
        match <crate::auth::Actor as actix_web::FromRequest>::from_request(http, payload).await {
            Ok(actor) => items::read_item(state, actor, poam_domain::ItemId::from_uuid(id)).await,
            Err(e) => Err(e),
        };
    let res = match answer {
        Ok(res) => res,
        Err(e) => HttpResponse::from_error(e),
    };
    drop(shared);
    let (http, _) = req.into_parts();
    Ok(ServiceResponse::new(http, res))
}

const ITEM_PREFIX: &str = "/v1/items/";
const ITEM_ROUTE: &str = "/v1/items/{item_id}";

/// A request id: the caller's `x-request-id` when it is short and printable, else a new one.
fn request_id(req: &ServiceRequest) -> HeaderValue {
    req.headers()
        .get(REQUEST_ID)
        .filter(|v| !v.is_empty() && v.len() <= 64 && v.as_bytes().iter().all(u8::is_ascii_graphic))
        .cloned()
        .unwrap_or_else(new_request_id)
}

/// A fresh request id, UUID-shaped and unique within the process (and, by its random base,
/// across processes) without a call into the kernel's random source per request. Each thread
/// counts in its own range (its number in the high 32 bits of the counter): no line shared
/// between the workers is written per request.
fn new_request_id() -> HeaderValue {
    use std::cell::Cell;
    use std::sync::atomic::{AtomicU64, Ordering};
    static BASE: std::sync::OnceLock<u128> = std::sync::OnceLock::new();
    static THREADS: AtomicU64 = AtomicU64::new(0);
    thread_local! {
        static NEXT: Cell<u64> = Cell::new(THREADS.fetch_add(1, Ordering::Relaxed) << 32);
    }
    let base = *BASE.get_or_init(|| uuid::Uuid::new_v4().as_u128());
    let n = NEXT.with(|next| {
        let n = next.get();
        next.set(n.wrapping_add(1));
        n
    });
    let mut buf = uuid::Uuid::encode_buffer();
    let id = uuid::Uuid::from_u128(base ^ u128::from(n))
        .hyphenated()
        .encode_lower(&mut buf);
    HeaderValue::from_str(id).unwrap_or(HeaderValue::from_static("-"))
}

/// Request id, span, access log, and problem+json for errors actix produced by itself
/// (unknown route, bad path, oversized headers, ...).
async fn edge(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let id = request_id(&req);
    let header_bytes: usize = req
        .headers()
        .iter()
        .map(|(k, v)| k.as_str().len() + v.len())
        .sum();
    if header_bytes > MAX_HEADER_BYTES {
        let (req, _) = req.into_parts();
        let mut res = ApiError::Other(actix_web::http::StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE)
            .error_response();
        res.headers_mut()
            .insert(HeaderName::from_static(REQUEST_ID), id);
        return Ok(ServiceResponse::new(req, res));
    }
    let span = tracing::info_span!("request", request_id = id.to_str().unwrap_or("-"), method = %req.method(), path = %req.path());
    let started = Instant::now();
    let res = next.call(req).instrument(span.clone()).await?;
    let mut res = res.map_into_boxed_body();
    let status = res.status();
    let is_problem = res
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(PROBLEM_JSON.as_bytes()));
    if (status.is_client_error() || status.is_server_error()) && !is_problem {
        let (req, _) = res.into_parts();
        res = ServiceResponse::new(req, ApiError::Other(status).error_response());
    }
    res.headers_mut()
        .insert(HeaderName::from_static(REQUEST_ID), id);
    let seconds = started.elapsed().as_secs_f64();
    let ms = seconds * 1000.0;
    {
        let req = res.request();
        let extensions = req.extensions();
        let route: std::borrow::Cow<'static, str> = match extensions.get::<HotRoute>() {
            Some(HotRoute(route)) => std::borrow::Cow::Borrowed(route),
            None => req.match_pattern().map_or(
                std::borrow::Cow::Borrowed("unmatched"),
                std::borrow::Cow::Owned,
            ),
        };
        let route = route.as_ref();
        let subject = extensions
            .get::<crate::auth::Subject>()
            .map_or("", |s| s.0.as_str());
        crate::telemetry::metrics().request(req.method().as_str(), route, status.as_u16(), seconds);
        span.in_scope(|| {
            if status.is_server_error() {
                tracing::error!(status = status.as_u16(), ms, route, subject, "response");
            } else {
                tracing::info!(status = status.as_u16(), ms, route, subject, "response");
            }
        });
    }
    Ok(res)
}

/// The document, built once per process.
fn spec() -> &'static OpenApiDoc {
    static SPEC: OnceLock<OpenApiDoc> = OnceLock::new();
    SPEC.get_or_init(openapi)
}

/// Prometheus metrics (text format 0.0.4), for tokens with the audit permission (admin,
/// auditor); 404 when `POAM_METRICS=off`.
async fn serve_metrics(
    state: web::Data<AppState>,
    actor: crate::auth::Actor,
) -> Result<HttpResponse, ApiError> {
    if !state.metrics_enabled {
        return Err(ApiError::RouteNotFound("/metrics".into()));
    }
    actor.require(poam_domain::Permission::Audit)?;
    let stored = state
        .db(poam_persistence::evidence::stored_bytes_by_system)
        .await?;
    let mut text = crate::telemetry::metrics().render(&state.pool);
    // The protection series go before the closing `# EOF`.
    let eof = text.rfind("# EOF").unwrap_or(text.len());
    let mut series = crate::protection::metrics_text(&state.protection, &stored);
    series.push_str(&state.item_cache.metrics_text());
    text.insert_str(eof, &series);
    Ok(HttpResponse::Ok()
        .content_type(crate::telemetry::CONTENT_TYPE)
        .body(text))
}

async fn serve_spec() -> HttpResponse {
    HttpResponse::Ok().json(spec())
}

/// The application: every route, the docs, the spec, the error handling.
pub fn app(
    state: AppState,
) -> App<
    impl ServiceFactory<
        ServiceRequest,
        Config = (),
        Response = ServiceResponse<impl MessageBody>,
        Error = actix_web::Error,
        InitError = (),
    >,
> {
    // The spec's own route comes before the /v1 scope, which would otherwise claim it.
    let app = App::new()
        .app_data(web::Data::new(state))
        .app_data(web::PathConfig::default().error_handler(|_, _| ApiError::NotFound.into()))
        .route("/v1/openapi.json", web::get().to(serve_spec))
        .route("/metrics", web::get().to(serve_metrics));
    serving_routes(app)
        .service(web::redirect("/docs", "/docs/"))
        .service(
            SwaggerUi::new("/docs/{_:.*}")
                .config(utoipa_swagger_ui::Config::new(["/v1/openapi.json"]).validator_url("none")),
        )
        .default_service(web::to(fallback))
        .wrap(from_fn(crate::idempotency::middleware))
        .wrap(from_fn(literal_routes_first))
        .wrap(from_fn(hot_routes))
        .wrap(from_fn(crate::protection::guard))
        .wrap(from_fn(edge))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The route table (404 against 405) knows exactly the document's paths and methods.
    #[test]
    fn the_route_table_is_the_documents_paths() {
        let spec = openapi();
        let mut documented: Vec<(String, Vec<String>)> = spec
            .paths
            .paths
            .iter()
            .map(|(path, item)| {
                let methods = [
                    (item.get.is_some(), "GET"),
                    (item.post.is_some(), "POST"),
                    (item.put.is_some(), "PUT"),
                    (item.patch.is_some(), "PATCH"),
                    (item.delete.is_some(), "DELETE"),
                ]
                .into_iter()
                .filter(|(present, _)| *present)
                .map(|(_, m)| m.to_owned())
                .collect();
                (path.clone(), methods)
            })
            .collect();
        let mut registered: Vec<(String, Vec<String>)> = registered_routes()
            .into_iter()
            .map(|(path, methods)| {
                // In `Allow`'s order, which is the document's.
                let methods = methods.iter().map(|m| m.as_str().to_owned()).collect();
                (path, methods)
            })
            .collect();
        documented.sort();
        registered.sort();
        assert!(documented.len() > 60, "{}", documented.len());
        assert_eq!(registered, documented);
    }

    /// `hot_routes` answers for this route: it must stay the registered `GET` of items.
    #[test]
    fn the_hot_route_is_the_registered_item_read() {
        use utoipa::Path as _;
        assert_eq!(format!("/v1{}", items::get_item::path()), ITEM_ROUTE);
        assert!(ITEM_ROUTE.starts_with(ITEM_PREFIX));
        assert!(registered_routes()
            .iter()
            .any(|(p, m)| p == ITEM_ROUTE && m.contains(&Method::GET)));
    }

    #[test]
    fn patterns_match_as_actix_does() {
        let p = Pattern::new("/v1/items/{item_id}/history");
        assert!(p.is_match("/v1/items/abc/history"));
        assert!(!p.is_match("/v1/items//history"));
        assert!(!p.is_match("/v1/items/abc/history/"));
        assert!(!p.is_match("/v1/items/abc"));
        assert!(!p.is_match("/v1/items/a/b/history"));
        assert!(!p.is_match("/v1/systems/abc/history"));
        assert!(Pattern::new("/v1/items/validate").is_match("/v1/items/validate"));
        assert!(!Pattern::new("/v1/items/validate").is_match("/v1/items/validated"));
    }

    /// Routes are tried in registration order and the first whose path and method match wins:
    /// a route listed before another must not take the other's requests (its path with each
    /// parameter filled in, for a method both have).
    #[test]
    fn no_route_hides_a_later_one() {
        let routes = registered_routes_in_order();
        for (j, (later, later_methods)) in routes.iter().enumerate() {
            let sample = Pattern::sample(later);
            for (earlier, earlier_methods) in &routes[..j] {
                let shared = earlier_methods.iter().any(|m| later_methods.contains(m));
                assert!(
                    !(shared && earlier != later && Pattern::new(earlier).is_match(&sample)),
                    "{earlier} is registered before {later} and takes its requests"
                );
            }
        }
    }
}
