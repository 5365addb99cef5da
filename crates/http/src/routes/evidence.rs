//! Evidence: streamed upload (hashed and measured on the way in, spooled to disk, never held
//! whole in memory), metadata, exact-bytes download, recorded withdrawal.

use super::docs::{ReadProblems, WriteProblems};
use crate::auth::Actor;
use crate::idempotency::hex;
use crate::input::json_body;
use crate::problem::{ApiError, FieldError};
use crate::state::AppState;
use actix_multipart::Multipart;
use actix_web::http::header;
use actix_web::{get, post, web, HttpRequest, HttpResponse};
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use futures_util::StreamExt;
use poam_domain::workflow::{Evidence, EvidenceKind, WithdrawEvidence};
use poam_domain::{EvidenceId, ItemId, MilestoneId, Permission};
use poam_persistence::evidence::{self as store, NewEvidence};
use serde::Serialize;
use sha2::{Digest, Sha256, Sha512};
use std::cell::RefCell;
use std::io::Write;
use std::path::PathBuf;
use std::rc::Rc;
use utoipa::ToSchema;

/// The multipart form of an upload (documentation of the wire shape).
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct EvidenceUpload {
    /// The file. Its part's `Content-Type` is kept as the media type.
    #[schema(value_type = String, format = Binary)]
    file: Vec<u8>,
    #[schema(
        min_length = 1,
        max_length = 250,
        example = "Rescan of lb-prod-1 after the fix"
    )]
    title: String,
    kind: EvidenceKind,
    /// A milestone of the same item this evidence proves.
    #[schema(value_type = Option<String>, format = Uuid)]
    milestone_id: Option<String>,
    /// When the evidence was collected (not in the future).
    #[schema(value_type = Option<String>, format = Date)]
    collected_on: Option<String>,
    /// The SHA-256 of the file itself (not of the request), hex: checked against the streamed
    /// file; a mismatch is 400 `digest_mismatch` and nothing is stored. The part may come before
    /// or after `file`.
    #[schema(value_type = Option<String>, pattern = "^[0-9a-fA-F]{64}$", example = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08")]
    sha256: Option<String>,
    /// The digest of the file itself in RFC 9530 form (`sha-256=:<base64>:`), as an
    /// alternative to `sha256`: checked the same way. Other algorithms than `sha-256` are
    /// ignored; a value naming none is 400 `invalid_content_digest`.
    #[schema(value_type = Option<String>, example = "sha-256=:n4bQgYhMfWWaL+qgxVrQFaO/TxsrC4Is0V1sFbDwCgg=:")]
    content_digest: Option<String>,
}

impl crate::input::ObjectMembers for WithdrawEvidence {}

/// A spooled upload, removed when dropped.
/// A temporary file, removed when dropped.
pub(crate) struct Spool {
    pub(crate) path: PathBuf,
}

impl Drop for Spool {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

fn invalid(pointer: &str, code: &str, detail: impl Into<String>) -> ApiError {
    ApiError::Invalid(vec![FieldError::body(pointer, code, detail)])
}

/// The digests a `Content-Digest` header names, in the algorithms this service computes.
#[derive(Default)]
struct Wanted {
    sha256: Option<Vec<u8>>,
    sha512: Option<Vec<u8>>,
}

/// Parses a `Content-Digest` header (RFC 9530); algorithms we do not compute are ignored.
fn wanted_digests(value: &str) -> Result<Wanted, ApiError> {
    let mut sha256 = None;
    let mut sha512 = None;
    for member in value.split(',') {
        let Some((alg, rest)) = member.trim().split_once('=') else {
            return Err(ApiError::bad_request(
                "invalid_content_digest",
                "Content-Digest must be a list of algorithm=:base64:",
            ));
        };
        let bytes = rest
            .trim()
            .strip_prefix(':')
            .and_then(|r| r.strip_suffix(':'))
            .and_then(|b| BASE64.decode(b).ok())
            .ok_or_else(|| {
                ApiError::bad_request(
                    "invalid_content_digest",
                    "Content-Digest values are byte sequences (:base64:)",
                )
            })?;
        match alg.trim().to_ascii_lowercase().as_str() {
            "sha-256" => sha256 = Some(bytes),
            "sha-512" => sha512 = Some(bytes),
            _ => {}
        }
    }
    Ok(Wanted { sha256, sha512 })
}

/// Keeps the last path segment of a client's file name, without control characters.
fn clean_filename(raw: Option<&str>) -> String {
    let name: String = raw
        .unwrap_or("")
        .rsplit(['/', '\\'])
        .next()
        .unwrap_or("")
        .chars()
        .filter(|c| !c.is_control())
        .take(255)
        .collect();
    let name = name.trim().to_owned();
    if name.is_empty() || name == "." || name == ".." {
        "evidence".into()
    } else {
        name
    }
}

const FIELD_LIMIT: usize = 4096;

/// Checks the digests of the file a client sent as form fields (`sha256`: hex;
/// `content_digest`: RFC 9530 `sha-256=:base64:`) against the file's SHA-256 (`actual`, hex).
fn check_file_digest(
    actual: &str,
    sha256: Option<&str>,
    content_digest: Option<&str>,
) -> Result<(), ApiError> {
    let mismatch = || {
        ApiError::bad_request(
            "digest_mismatch",
            "the digest of the file sent with it does not match the file: nothing was stored",
        )
    };
    if let Some(want) = sha256.map(str::trim) {
        if want.len() != 64 || !want.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(ApiError::bad_request(
                "invalid_content_digest",
                "the `sha256` form field is the file's SHA-256 as 64 hexadecimal digits",
            ));
        }
        if !want.eq_ignore_ascii_case(actual) {
            return Err(mismatch());
        }
    }
    if let Some(value) = content_digest {
        let Some(want) = wanted_digests(value)?.sha256 else {
            return Err(ApiError::bad_request(
                "invalid_content_digest",
                "the `content_digest` form field must name a sha-256 digest (`sha-256=:base64:`)",
            ));
        };
        if hex(&want) != actual.to_ascii_lowercase() {
            return Err(mismatch());
        }
    }
    Ok(())
}

/// A broken form is 400; a body cut off for idling is 408.
fn multipart_error(e: actix_multipart::MultipartError) -> ApiError {
    match e {
        actix_multipart::MultipartError::Payload(p) => crate::protection::body_error(&p),
        other => ApiError::bad_request("malformed_multipart", other.to_string()),
    }
}

/// Upload a piece of evidence (editor): `multipart/form-data` with a `file` part and the
/// fields `title`, `kind`, optional `milestone_id` and `collected_on`.
///
/// The server computes the SHA-256 and size. To have the file checked on the way in, send its
/// digest as a form field, before or after the `file` part: `sha256` (hex) or `content_digest`
/// (RFC 9530, `sha-256=:base64:`); the `file` part's own `Content-Digest` header works too. A
/// `Content-Digest` request header (RFC 9530, `sha-256` or `sha-512`) covers the whole
/// multipart request content instead. Any digest that does not match is 400 `digest_mismatch`
/// and nothing is stored. Over the size limit (default 30 MiB, `POAM_EVIDENCE_MAX_BYTES`): 413.
#[utoipa::path(
    operation_id = "upload_evidence",
    tag = "evidence",
    params(
        ("item_id" = uuid::Uuid, Path, description = "The item's id."),
        ("Content-Digest" = Option<String>, Header, nullable = false, description = "RFC 9530 digest of the request content, e.g. `sha-256=:…:`."),
    ),
    request_body(content = EvidenceUpload, content_type = "multipart/form-data"),
    responses(
        (status = 201, body = Evidence, headers(("Location" = String))),
        WriteProblems,
    ),
    security(("bearer" = []))
)]
#[post("/items/{item_id}/evidence")]
pub async fn upload(
    state: web::Data<AppState>,
    actor: Actor,
    req: HttpRequest,
    path: web::Path<ItemId>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    actor.require(Permission::WriteItems)?;
    let item_id = path.into_inner();
    let content_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !content_type
        .to_ascii_lowercase()
        .starts_with("multipart/form-data")
    {
        return Err(ApiError::UnsupportedMediaType(
            "send evidence as multipart/form-data with a `file` part".into(),
        ));
    }
    let limit = state.evidence_limit;
    let declared = crate::input::content_length(&req);
    if declared.is_some_and(|n| n > limit + 64 * 1024) {
        return Err(ApiError::PayloadTooLarge { limit });
    }
    // A slot of the heavy operations (the file streams to disk: a small share of memory).
    let _pass = state
        .protection
        .enter(crate::protection::Heavy::Write, &actor.sub, 1 << 20)?;
    let wanted = match req.headers().get("content-digest") {
        Some(v) => Some(wanted_digests(v.to_str().unwrap_or(""))?),
        None => None,
    };
    let body256 = Rc::new(RefCell::new(Sha256::new()));
    let body512 = Rc::new(RefCell::new(Sha512::new()));
    let (h256, h512) = (body256.clone(), body512.clone());
    let stream = payload.into_inner().inspect(move |chunk| {
        if let Ok(bytes) = chunk {
            h256.borrow_mut().update(bytes);
            h512.borrow_mut().update(bytes);
        }
    });
    let mut form = Multipart::new(req.headers(), stream);

    let mut title = None;
    let mut kind = None;
    let mut milestone_id = None;
    let mut collected_on = None;
    let mut file_sha256: Option<String> = None;
    let mut file_digest: Option<String> = None;
    let mut file: Option<(Spool, String, String, i64, String)> = None;
    while let Some(field) = form.next().await {
        let mut field = field.map_err(multipart_error)?;
        let name = field.name().unwrap_or("").to_owned();
        if name == "file" {
            if file.is_some() {
                return Err(invalid("/file", "duplicate_field", "send one `file` part"));
            }
            let filename =
                clean_filename(field.content_disposition().and_then(|cd| cd.get_filename()));
            let media_type = field
                .content_type()
                .map(|m| m.essence_str().to_owned())
                .filter(|m| m.len() <= 100)
                .unwrap_or_else(|| "application/octet-stream".into());
            let spool = Spool {
                path: state
                    .spool_dir
                    .join(format!("upload-{}", uuid::Uuid::new_v4())),
            };
            let mut out = std::fs::File::create(&spool.path).map_err(|e| {
                tracing::error!(cause = %e, "cannot create the upload spool file");
                ApiError::Internal
            })?;
            let mut hasher = Sha256::new();
            let mut size: usize = 0;
            let mut pending: Vec<u8> = Vec::with_capacity(store::CHUNK);
            while let Some(chunk) = field.next().await {
                let chunk = chunk.map_err(multipart_error)?;
                size += chunk.len();
                if size > limit {
                    return Err(ApiError::PayloadTooLarge { limit });
                }
                hasher.update(&chunk);
                pending.extend_from_slice(&chunk);
                if pending.len() >= store::CHUNK {
                    let buf = std::mem::replace(&mut pending, Vec::with_capacity(store::CHUNK));
                    out = web::block(move || out.write_all(&buf).map(|_| out))
                        .await
                        .map_err(|_| ApiError::Internal)?
                        .map_err(|e| {
                            tracing::error!(cause = %e, "cannot write the upload spool file");
                            ApiError::Internal
                        })?;
                }
            }
            web::block(move || out.write_all(&pending).and_then(|_| out.sync_all()))
                .await
                .map_err(|_| ApiError::Internal)?
                .map_err(|e| {
                    tracing::error!(cause = %e, "cannot write the upload spool file");
                    ApiError::Internal
                })?;
            let digest = hasher.finalize();
            if let Some(v) = field.headers().get("content-digest") {
                let want = wanted_digests(v.to_str().unwrap_or(""))?.sha256;
                if want.is_some_and(|w| w.as_slice() != &digest[..]) {
                    return Err(ApiError::bad_request("digest_mismatch", "the file part's Content-Digest does not match its content: nothing was stored"));
                }
            }
            file = Some((
                spool,
                filename,
                media_type,
                i64::try_from(size).unwrap_or(i64::MAX),
                hex(&digest),
            ));
            continue;
        }
        let mut text = Vec::new();
        while let Some(chunk) = field.next().await {
            let chunk = chunk.map_err(multipart_error)?;
            if text.len() + chunk.len() > FIELD_LIMIT {
                return Err(invalid(
                    &format!("/{name}"),
                    "invalid_length",
                    format!("form fields have at most {FIELD_LIMIT} bytes"),
                ));
            }
            text.extend_from_slice(&chunk);
        }
        let text = String::from_utf8(text)
            .map_err(|_| invalid(&format!("/{name}"), "invalid_value", "must be UTF-8 text"))?;
        if text.contains('\0') {
            return Err(invalid(
                &format!("/{name}"),
                "invalid_character",
                "text may not contain the NUL character (U+0000)",
            ));
        }
        match name.as_str() {
            "title" => title = Some(text),
            "kind" => kind = Some(text),
            "milestone_id" => milestone_id = Some(text),
            "collected_on" => collected_on = Some(text),
            "sha256" => file_sha256 = Some(text),
            "content_digest" => file_digest = Some(text),
            other => return Err(invalid(&format!("/{other}"), "unknown_field", format!("unknown form field `{other}`; expected file, title, kind, milestone_id, collected_on, sha256, content_digest"))),
        }
    }
    if let Some(Wanted {
        sha256: want256,
        sha512: want512,
    }) = wanted
    {
        let got256 = body256.borrow_mut().clone().finalize();
        let got512 = body512.borrow_mut().clone().finalize();
        let bad = want256.is_some_and(|w| w.as_slice() != &got256[..])
            || want512.is_some_and(|w| w.as_slice() != &got512[..]);
        if bad {
            return Err(ApiError::bad_request(
                "digest_mismatch",
                "Content-Digest does not match the request content: nothing was stored",
            ));
        }
    }
    let mut errors = Vec::new();
    let Some((spool, filename, media_type, size, sha256)) = file else {
        return Err(invalid("/file", "missing_field", "missing the `file` part"));
    };
    check_file_digest(&sha256, file_sha256.as_deref(), file_digest.as_deref())?;
    let title = match title.map(|t| t.trim().to_owned()) {
        Some(t) if !t.is_empty() && t.chars().count() <= 250 => Some(t),
        Some(_) => {
            errors.push(FieldError::body(
                "/title",
                "invalid_length",
                "must have 1 to 250 characters",
            ));
            None
        }
        None => {
            errors.push(FieldError::body(
                "/title",
                "missing_field",
                "missing field `title`",
            ));
            None
        }
    };
    let kind = match kind.as_deref().map(str::parse::<EvidenceKind>) {
        Some(Ok(k)) => Some(k),
        Some(Err(e)) => {
            errors.push(FieldError::body("/kind", "invalid_value", e.to_string()));
            None
        }
        None => {
            errors.push(FieldError::body(
                "/kind",
                "missing_field",
                "missing field `kind`",
            ));
            None
        }
    };
    let milestone_id = match milestone_id
        .filter(|m| !m.is_empty())
        .map(|m| m.trim().parse::<MilestoneId>())
    {
        Some(Ok(u)) => Some(u),
        Some(Err(_)) => {
            errors.push(FieldError::body(
                "/milestone_id",
                "invalid_value",
                "not a milestone id",
            ));
            None
        }
        None => None,
    };
    let collected_on = match collected_on
        .filter(|c| !c.is_empty())
        .map(|c| c.trim().parse::<chrono::NaiveDate>())
    {
        Some(Ok(d)) if poam_domain::rules::date_in_range(d) => Some(d),
        Some(_) => {
            errors.push(FieldError::body(
                "/collected_on",
                "invalid_value",
                "a date, YYYY-MM-DD",
            ));
            None
        }
        None => None,
    };
    if !errors.is_empty() {
        return Err(ApiError::Invalid(errors));
    }
    let (Some(title), Some(kind)) = (title, kind) else {
        return Err(ApiError::Internal);
    };
    let meta = NewEvidence {
        title,
        kind,
        milestone_id,
        collected_on,
        filename,
        media_type,
        size,
        sha256,
    };
    let quota = match state.protection.limits.evidence_quota {
        0 => None,
        q => Some(i64::try_from(q).unwrap_or(i64::MAX)),
    };
    let e = state
        .db(move |conn| {
            let stored = store::create(
                conn,
                item_id,
                &actor.scope,
                &meta,
                &spool.path,
                &actor.sub,
                quota,
            );
            drop(spool);
            stored
        })
        .await
        .map_err(|e| match e {
            ApiError::Conflict(v) if v.code == store::QUOTA_EXCEEDED => {
                ApiError::QuotaExceeded(v.message)
            }
            other => other,
        })?;
    crate::telemetry::metrics().evidence_stored(u64::try_from(e.size).unwrap_or(0));
    Ok(super::located(
        HttpResponse::Created().json(&e),
        &format!("/v1/evidence/{}", e.id),
    ))
}

/// An item's evidence, oldest first (withdrawn included, marked).
#[derive(Serialize, ToSchema)]
pub struct EvidenceList {
    pub items: Vec<Evidence>,
}

/// List an item's evidence.
#[utoipa::path(
    operation_id = "list_evidence",
    tag = "evidence",
    params(("item_id" = uuid::Uuid, Path, description = "The item's id.")),
    responses((status = 200, body = EvidenceList), ReadProblems),
    security(("bearer" = []))
)]
#[get("/items/{item_id}/evidence")]
pub async fn list(
    state: web::Data<AppState>,
    actor: Actor,
    path: web::Path<ItemId>,
) -> Result<HttpResponse, ApiError> {
    actor.require(Permission::Read)?;
    let item_id = path.into_inner();
    let items = state
        .db(move |conn| store::list(conn, item_id, &actor.scope))
        .await?;
    Ok(HttpResponse::Ok().json(EvidenceList { items }))
}

/// Get a piece of evidence's metadata.
#[utoipa::path(
    operation_id = "get_evidence",
    tag = "evidence",
    params(("evidence_id" = uuid::Uuid, Path, description = "The evidence's id.")),
    responses((status = 200, body = Evidence), ReadProblems),
    security(("bearer" = []))
)]
#[get("/evidence/{evidence_id}")]
pub async fn get(
    state: web::Data<AppState>,
    actor: Actor,
    path: web::Path<EvidenceId>,
) -> Result<HttpResponse, ApiError> {
    actor.require(Permission::Read)?;
    let id = path.into_inner();
    let e = state
        .db(move |conn| store::get(conn, id, &actor.scope))
        .await?;
    Ok(HttpResponse::Ok().json(e))
}

/// `attachment; filename="…"; filename*=UTF-8''…` (RFC 6266), safe for any name.
pub(crate) fn disposition(filename: &str) -> String {
    let ascii: String = filename
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() && c != '"' && c != '\\' || c == ' ' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let encoded: String = filename
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect();
    format!("attachment; filename=\"{ascii}\"; filename*=UTF-8''{encoded}")
}

/// Download the exact bytes, with the SHA-256 as `ETag` and `Content-Digest`.
///
/// Every download is recorded in the system's history (an event `downloaded` of the evidence,
/// with who and when) before the content is sent. Content stored encrypted is decrypted chunk
/// by chunk on the way out; the digests are those of the plaintext.
#[utoipa::path(
    operation_id = "download_evidence",
    tag = "evidence",
    params(("evidence_id" = uuid::Uuid, Path, description = "The evidence's id.")),
    responses(
        (status = 200, description = "The file as uploaded, with the media type it was uploaded with (`application/octet-stream` when none was given).",
         content((super::docs::Binary = "application/octet-stream"), (super::docs::Binary = "*/*")),
         headers(("ETag" = String, description = "The SHA-256, hex, quoted."), ("Content-Digest" = String), ("Content-Disposition" = String))),
        ReadProblems,
    ),
    security(("bearer" = []))
)]
#[get("/evidence/{evidence_id}/content")]
pub async fn content(
    state: web::Data<AppState>,
    actor: Actor,
    path: web::Path<EvidenceId>,
) -> Result<HttpResponse, ApiError> {
    actor.require(Permission::Read)?;
    let id = path.into_inner();
    let e = state
        .write(move |conn| store::record_download(conn, id, &actor.scope, &actor.sub))
        .await?;
    let digest: Vec<u8> = (0..e.sha256.len() / 2)
        .filter_map(|i| u8::from_str_radix(e.sha256.get(2 * i..2 * i + 2)?, 16).ok())
        .collect();
    let key = e.id.to_string();
    let chunks = futures_util::stream::unfold(Some(0i32), move |next| {
        let state = state.clone();
        let key = key.clone();
        async move {
            let n = next?;
            match state.db(move |conn| store::chunk(conn, &key, n)).await {
                Ok(Some(bytes)) => Some((
                    Ok::<_, actix_web::Error>(web::Bytes::from(bytes)),
                    Some(n + 1),
                )),
                Ok(None) => None,
                Err(err) => Some((Err(actix_web::Error::from(err)), None)),
            }
        }
    });
    let media_type = e
        .media_type
        .parse::<mime::Mime>()
        .map(|m| m.to_string())
        .unwrap_or_else(|_| "application/octet-stream".into());
    Ok(HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, media_type))
        .insert_header((header::ETAG, format!("\"{}\"", e.sha256)))
        .insert_header((
            "Content-Digest",
            format!("sha-256=:{}:", BASE64.encode(&digest)),
        ))
        .insert_header((header::CONTENT_DISPOSITION, disposition(&e.filename)))
        .insert_header(("X-Content-Type-Options", "nosniff"))
        // Whatever the uploader called it, the file never runs as a page of this origin.
        .insert_header((header::CONTENT_SECURITY_POLICY, "sandbox"))
        .no_chunking(u64::try_from(e.size).unwrap_or(0))
        .streaming(chunks))
}

/// Withdraw a piece of evidence (editor): recorded with who and why, never deleted; refused
/// once the item is completed or closed.
#[utoipa::path(
    operation_id = "withdraw_evidence",
    tag = "evidence",
    params(("evidence_id" = uuid::Uuid, Path, description = "The evidence's id.")),
    request_body = WithdrawEvidence,
    responses((status = 200, body = Evidence), WriteProblems),
    security(("bearer" = []))
)]
#[post("/evidence/{evidence_id}/withdraw")]
pub async fn withdraw(
    state: web::Data<AppState>,
    actor: Actor,
    req: HttpRequest,
    path: web::Path<EvidenceId>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    actor.require(Permission::WriteItems)?;
    let id = path.into_inner();
    let body: WithdrawEvidence = json_body(&req, payload).await?;
    let e = state
        .write(move |conn| store::withdraw(conn, id, &actor.scope, &actor.sub, &body.reason))
        .await?;
    Ok(HttpResponse::Ok().json(e))
}
