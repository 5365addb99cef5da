//! Reading input: JSON bodies (size-limited, media type checked, unknown fields refused, every
//! error pointed at its field), query strings and `If-Match`.

use crate::problem::{ApiError, FieldError};
use crate::state::AppState;
use actix_web::dev::Payload;
use actix_web::http::header;
use actix_web::{web, HttpRequest};
use futures_util::StreamExt;
use poam_domain::Violation;
use serde::de::DeserializeOwned;
use std::borrow::Cow;
use validator::{Validate, ValidationErrors, ValidationErrorsKind};

/// Reads the body as JSON bytes: `application/json` or any `+json` type, at most the configured
/// limit.
async fn read_json(req: &HttpRequest, payload: &mut Payload) -> Result<web::BytesMut, ApiError> {
    let limit = req
        .app_data::<web::Data<AppState>>()
        .map_or(crate::state::DEFAULT_BODY_LIMIT, |s| s.body_limit);
    read_json_within(req, payload, limit).await
}

/// Reads a JSON body of any shape, at most `limit` bytes (bulk and import bodies are larger than
/// the default limit), syntax checked, NUL characters refused. The body is kept as the chunks it
/// arrived in, its nesting measured as they come, and each chunk is freed as soon as the parser
/// has read past it: a document never sits in memory twice, as text and as a tree.
pub async fn json_document(
    req: &HttpRequest,
    payload: web::Payload,
    limit: usize,
) -> Result<serde_json::Value, ApiError> {
    json_media_type(req)?;
    let mut scan = Depth::default();
    let mut chunks =
        read_chunks_within(req, &mut payload.into_inner(), limit, |c| scan.feed(c)).await?;
    too_deep(scan.max)?;
    // A document saved by a tool on Windows may begin with a UTF-8 byte-order mark, which JSON
    // must not have (RFC 8259 §8.1) and a parser may ignore: ignored.
    if let Some(first) = chunks.front_mut() {
        if first.starts_with(b"\xEF\xBB\xBF") {
            let _ = first.split_to(3);
        }
    }
    let value = strict::parse(serde_json::Deserializer::from_reader(
        std::io::BufReader::with_capacity(64 << 10, Chunks(chunks)),
    ))?;
    refuse_nul(value)
}

/// A body's chunks read in order; each is dropped once read.
struct Chunks(std::collections::VecDeque<web::Bytes>);

impl std::io::Read for Chunks {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while let Some(front) = self.0.front_mut() {
            if front.is_empty() {
                self.0.pop_front();
                continue;
            }
            let n = front.len().min(buf.len());
            buf[..n].copy_from_slice(&front.split_to(n));
            return Ok(n);
        }
        Ok(0)
    }
}

/// `application/json` or any `+json` type, or 415.
fn json_media_type(req: &HttpRequest) -> Result<(), ApiError> {
    let (content_type, essence) = media_type(req);
    if essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
    {
        return Ok(());
    }
    Err(ApiError::UnsupportedMediaType(if content_type.is_empty() {
        "send the body as application/json".into()
    } else {
        format!("`{content_type}` is not accepted: send application/json")
    }))
}

async fn read_json_within(
    req: &HttpRequest,
    payload: &mut Payload,
    limit: usize,
) -> Result<web::BytesMut, ApiError> {
    json_media_type(req)?;
    read_body_within(req, payload, limit).await
}

/// The request's `Content-Type` as sent, and its essence (type/subtype, lowercase, no
/// parameters); empty when there is none.
pub(crate) fn media_type(req: &HttpRequest) -> (&str, String) {
    let content_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    (content_type, essence)
}

/// The request's `Content-Length`, when it has a readable one.
pub(crate) fn content_length(req: &HttpRequest) -> Option<usize> {
    req.headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok())
}

/// Reads a body as the chunks it arrives in, at most `limit` bytes: a larger `Content-Length`
/// is refused before reading, a body that grows past the limit while read too (413
/// `payload_too_large`). `each` sees every chunk as it comes.
async fn read_chunks_within(
    req: &HttpRequest,
    payload: &mut Payload,
    limit: usize,
    mut each: impl FnMut(&[u8]),
) -> Result<std::collections::VecDeque<web::Bytes>, ApiError> {
    if content_length(req).is_some_and(|len| len > limit) {
        return Err(ApiError::PayloadTooLarge { limit });
    }
    let (mut chunks, mut len) = (std::collections::VecDeque::new(), 0usize);
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|e| crate::protection::body_error(&e))?;
        len += chunk.len();
        if len > limit {
            return Err(ApiError::PayloadTooLarge { limit });
        }
        each(&chunk);
        chunks.push_back(chunk);
    }
    Ok(chunks)
}

/// Reads a body of any type, at most `limit` bytes, into one buffer (see
/// [`read_chunks_within`]), sized once when the whole body is in.
pub(crate) async fn read_body_within(
    req: &HttpRequest,
    payload: &mut Payload,
    limit: usize,
) -> Result<web::BytesMut, ApiError> {
    let chunks = read_chunks_within(req, payload, limit, |_| {}).await?;
    let mut body = web::BytesMut::with_capacity(chunks.iter().map(|c| c.len()).sum());
    for c in chunks {
        body.extend_from_slice(&c);
    }
    Ok(body)
}

/// Converts a serde path into an RFC 6901 pointer.
fn pointer(path: &serde_path_to_error::Path) -> String {
    use serde_path_to_error::Segment;
    let mut out = String::new();
    for seg in path.iter() {
        let part: Cow<'_, str> = match seg {
            Segment::Seq { index } => index.to_string().into(),
            Segment::Map { key } => key.replace('~', "~0").replace('/', "~1").into(),
            Segment::Enum { variant } => variant.as_str().into(),
            Segment::Unknown => continue,
        };
        out.push('/');
        out.push_str(&part);
    }
    out
}

/// The text between the first pair of backticks.
fn quoted(message: &str) -> Option<&str> {
    let start = message.find('`')? + 1;
    let len = message[start..].find('`')?;
    Some(&message[start..start + len])
}

/// serde_json's message without its " at line L column C" suffix.
fn without_position(message: &str) -> &str {
    message.find(" at line ").map_or(message, |i| &message[..i])
}

/// Maps a data error (not a syntax error) to a field violation with a pointer and a code.
fn data_violation(path: &serde_path_to_error::Path, message: &str) -> Violation {
    let message = without_position(message);
    let mut at = pointer(path);
    let code = if message.starts_with("unknown field") {
        if !at.ends_with(&format!("/{}", quoted(message).unwrap_or(""))) {
            at = format!("{at}/{}", quoted(message).unwrap_or(""));
        }
        "unknown_field"
    } else if message.starts_with("missing field") {
        at = format!("{at}/{}", quoted(message).unwrap_or(""));
        "missing_field"
    } else if message.starts_with("unknown variant") {
        "invalid_value"
    } else if message.starts_with("invalid type") {
        "invalid_type"
    } else if message.starts_with("duplicate field") {
        "duplicate_field"
    } else {
        "invalid_value"
    };
    Violation::new(code, at, message.to_owned())
}

/// Deserialises a JSON value into `T`, reporting every problem with a pointer.
pub fn from_value<T: DeserializeOwned>(value: serde_json::Value) -> Result<T, Vec<Violation>> {
    serde_path_to_error::deserialize(value)
        .map_err(|e| vec![data_violation(e.path(), &e.inner().to_string())])
}

/// A write shape whose nested structs must arrive as JSON objects. (serde also accepts an array
/// for a struct, by position; the wire contract does not.)
pub trait ObjectMembers {
    /// JSON pointers of the members that must be objects when present and not null.
    const OBJECTS: &'static [&'static str] = &[];
}

impl ObjectMembers for poam_domain::ItemFields {
    const OBJECTS: &'static [&'static str] = &[
        "/source",
        "/source/details",
        "/owner",
        "/implementer",
        "/resources",
        "/deviation",
        "/vendor_dependency",
        "/change_management",
        "/escalation_contact",
        "/evaluation",
        "/evaluation/false_positive",
        "/evaluation/next_reduction",
        "/evaluation/accepted",
    ];
}

impl ObjectMembers for poam_domain::SystemFields {
    const OBJECTS: &'static [&'static str] = &[
        "/contacts",
        "/contacts/system_owner",
        "/contacts/issm",
        "/contacts/alternate_issm",
        "/deadline_policy",
        "/reminders",
        "/emass",
        "/emass/poc",
        "/cws_labels",
        "/scans",
        "/scans/csv_mapping",
        "/scans/csv_mapping/severity_values",
    ];
}

/// Deserialises a document of `T`: objects where `T` has structs, then the fields themselves.
pub(crate) fn shaped<T: DeserializeOwned + ObjectMembers>(
    value: serde_json::Value,
) -> Result<T, Vec<Violation>> {
    if !value.is_object() {
        return Err(vec![Violation::new(
            "invalid_type",
            "",
            "the body must be a JSON object",
        )]);
    }
    let wrong: Vec<Violation> = T::OBJECTS
        .iter()
        .filter(|p| {
            value
                .pointer(p)
                .is_some_and(|v| !(v.is_object() || v.is_null()))
        })
        .map(|p| Violation::new("invalid_type", *p, "must be a JSON object"))
        .collect();
    if !wrong.is_empty() {
        return Err(wrong);
    }
    from_value(value)
}

/// The pointer of the first string (or key) holding U+0000, which PostgreSQL cannot store.
fn find_nul(v: &serde_json::Value, at: &str) -> Option<String> {
    use serde_json::Value;
    // Pointers are built along the one path that leads to a NUL, not for every member.
    fn has_nul(v: &Value) -> bool {
        match v {
            Value::String(s) => s.contains('\0'),
            Value::Array(items) => items.iter().any(has_nul),
            Value::Object(map) => map.iter().any(|(k, x)| k.contains('\0') || has_nul(x)),
            _ => false,
        }
    }
    match v {
        Value::String(s) => s.contains('\0').then(|| at.to_owned()),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .find(|(_, x)| has_nul(x))
            .and_then(|(i, x)| find_nul(x, &format!("{at}/{i}"))),
        Value::Object(map) => map
            .iter()
            .find(|(k, x)| k.contains('\0') || has_nul(x))
            .and_then(|(k, x)| {
                let here = format!("{at}/{}", k.replace('~', "~0").replace('/', "~1"));
                if k.contains('\0') {
                    Some(here)
                } else {
                    find_nul(x, &here)
                }
            }),
        _ => None,
    }
}

/// Parses a document of `T` strictly and checks its limits: every problem as a violation.
pub fn parse_fields<T>(value: serde_json::Value) -> Result<T, Vec<Violation>>
where
    T: DeserializeOwned + Validate + ObjectMembers,
{
    if let Some(at) = find_nul(&value, "") {
        return Err(vec![Violation::new(
            "invalid_character",
            at,
            "text may not contain the NUL character (U+0000)",
        )]);
    }
    let parsed: T = shaped(value)?;
    validate(&parsed)?;
    Ok(parsed)
}

/// Parses JSON syntax (400 when broken); text may not hold NUL characters (422).
/// The deepest nesting of arrays and objects a body may have: far beyond any document of this
/// API (an OSCAL POA&M nests about 10 deep), far below what could exhaust a stack.
pub const MAX_DEPTH: usize = 64;

/// The nesting depth of a JSON text, strings skipped (a cheap scan before parsing), fed as
/// much text at a time as there is.
#[derive(Default)]
struct Depth {
    depth: usize,
    max: usize,
    in_string: bool,
    escaped: bool,
}

impl Depth {
    fn feed(&mut self, bytes: &[u8]) {
        for &b in bytes {
            if self.in_string {
                match (self.escaped, b) {
                    (true, _) => self.escaped = false,
                    (false, b'\\') => self.escaped = true,
                    (false, b'"') => self.in_string = false,
                    _ => {}
                }
                continue;
            }
            match b {
                b'"' => self.in_string = true,
                b'[' | b'{' => {
                    self.depth += 1;
                    self.max = self.max.max(self.depth);
                }
                b']' | b'}' => self.depth = self.depth.saturating_sub(1),
                _ => {}
            }
        }
    }
}

fn too_deep(depth: usize) -> Result<(), ApiError> {
    if depth > MAX_DEPTH {
        return Err(ApiError::Invalid(vec![FieldError::body(
            "",
            "too_deeply_nested",
            format!("arrays and objects may nest at most {MAX_DEPTH} deep"),
        )]));
    }
    Ok(())
}

fn parse_json(bytes: &[u8]) -> Result<serde_json::Value, ApiError> {
    let mut scan = Depth::default();
    scan.feed(bytes);
    too_deep(scan.max)?;
    refuse_nul(strict::parse(serde_json::Deserializer::from_slice(bytes))?)
}

fn refuse_nul(value: serde_json::Value) -> Result<serde_json::Value, ApiError> {
    match find_nul(&value, "") {
        None => Ok(value),
        Some(at) => Err(ApiError::Invalid(vec![FieldError::body(
            at,
            "invalid_character",
            "text may not contain the NUL character (U+0000)",
        )])),
    }
}

/// JSON parsing that refuses an object with two members of one name (RFC 8259 says names
/// SHOULD be unique; serde_json keeps the last silently, so what a client meant is guessed).
mod strict {
    use crate::problem::{ApiError, FieldError};
    use serde::de::{DeserializeSeed, Error as _, MapAccess, SeqAccess, Visitor};
    use serde_json::{Map, Value};
    use std::fmt;

    /// Where a value is: its parent and its key or index, rendered only for an error.
    #[derive(Clone, Copy)]
    enum At<'a> {
        Root,
        Key(&'a At<'a>, &'a str),
        Index(&'a At<'a>, usize),
    }

    impl At<'_> {
        fn pointer(&self) -> String {
            match self {
                At::Root => String::new(),
                At::Key(parent, k) => format!(
                    "{}/{}",
                    parent.pointer(),
                    k.replace('~', "~0").replace('/', "~1")
                ),
                At::Index(parent, i) => format!("{}/{i}", parent.pointer()),
            }
        }
    }

    const DUPLICATE: &str = "duplicate key";

    struct Seed<'a>(At<'a>);

    impl<'de> DeserializeSeed<'de> for Seed<'_> {
        type Value = Value;
        fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
            d.deserialize_any(self)
        }
    }

    impl<'de> Visitor<'de> for Seed<'_> {
        type Value = Value;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("any JSON value")
        }
        fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
            Ok(Value::Bool(v))
        }
        fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
            Ok(Value::from(v))
        }
        fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
            Ok(Value::from(v))
        }
        fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
            Ok(serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number))
        }
        fn visit_str<E>(self, v: &str) -> Result<Value, E> {
            Ok(Value::String(v.to_owned()))
        }
        fn visit_string<E>(self, v: String) -> Result<Value, E> {
            Ok(Value::String(v))
        }
        fn visit_unit<E>(self) -> Result<Value, E> {
            Ok(Value::Null)
        }
        fn visit_none<E>(self) -> Result<Value, E> {
            Ok(Value::Null)
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
            let mut out = Vec::new();
            while let Some(v) = seq.next_element_seed(Seed(At::Index(&self.0, out.len())))? {
                out.push(v);
            }
            Ok(Value::Array(out))
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
            let mut out = Map::new();
            while let Some(key) = map.next_key::<String>()? {
                let at = At::Key(&self.0, &key);
                if out.contains_key(&key) {
                    return Err(A::Error::custom(format!(
                        "{DUPLICATE}\u{0}{}\u{0}{key}",
                        at.pointer()
                    )));
                }
                let value = map.next_value_seed(Seed(at))?;
                out.insert(key, value);
            }
            Ok(Value::Object(out))
        }
    }

    /// Parses a JSON text: 400 `malformed_json` when broken, 400 `duplicate_key` naming the
    /// key and where it is when an object repeats a member.
    pub(super) fn parse<'de, R: serde_json::de::Read<'de>>(
        mut de: serde_json::Deserializer<R>,
    ) -> Result<Value, ApiError> {
        let parsed = Seed(At::Root)
            .deserialize(&mut de)
            .and_then(|v| de.end().map(|()| v));
        parsed.map_err(|e| {
            let message = e.to_string();
            let mut parts = message.split('\u{0}');
            match (parts.next(), parts.next(), parts.next()) {
                (Some(DUPLICATE), Some(pointer), Some(rest)) => {
                    let key = rest.find(" at line ").map_or(rest, |i| &rest[..i]);
                    let detail = format!(
                        "the member `{key}` appears twice in one object (at {}): send it once",
                        if pointer.is_empty() {
                            "the top level"
                        } else {
                            pointer
                        }
                    );
                    ApiError::BadRequest {
                        code: "duplicate_key",
                        detail: detail.clone(),
                        errors: vec![FieldError::body(pointer, "duplicate_key", detail)],
                    }
                }
                _ => ApiError::bad_request(
                    "malformed_json",
                    format!("the body is not valid JSON: {e}"),
                ),
            }
        })
    }
}

/// Turns `validator`'s nested errors into pointed violations, sorted by pointer.
pub fn validation_violations(errors: &ValidationErrors) -> Vec<Violation> {
    fn walk(prefix: &str, errors: &ValidationErrors, out: &mut Vec<Violation>) {
        for (field, kind) in errors.errors() {
            let at = format!("{prefix}/{field}");
            match kind {
                ValidationErrorsKind::Field(list) => {
                    for e in list {
                        out.push(describe(&at, e));
                    }
                }
                ValidationErrorsKind::Struct(inner) => walk(&at, inner, out),
                ValidationErrorsKind::List(items) => {
                    for (i, inner) in items {
                        walk(&format!("{at}/{i}"), inner, out);
                    }
                }
            }
        }
    }
    let mut out = Vec::new();
    walk("", errors, &mut out);
    out.sort_by(|a, b| a.pointer.cmp(&b.pointer));
    out
}

fn describe(at: &str, e: &validator::ValidationError) -> Violation {
    let param = |k: &str| e.params.get(k).map(|v| v.to_string());
    match e.code.as_ref() {
        "length" => {
            let detail = match (param("min"), param("max")) {
                (Some(min), Some(max)) => {
                    format!("must have {min} to {max} characters (or entries)")
                }
                (None, Some(max)) => format!("must have at most {max} characters (or entries)"),
                (Some(min), None) => format!("must have at least {min} characters (or entries)"),
                _ => "has the wrong length".into(),
            };
            Violation::new("invalid_length", at, detail)
        }
        "range" => {
            let detail = match (param("min"), param("max")) {
                (Some(min), Some(max)) => format!("must be between {min} and {max}"),
                _ => "is out of range".into(),
            };
            Violation::new("out_of_range", at, detail)
        }
        "email" => Violation::new("invalid_email", at, "is not a valid e-mail address"),
        _ => Violation::new(
            "invalid_value",
            at,
            e.message.as_deref().unwrap_or("is not valid").to_owned(),
        ),
    }
}

/// Checks `validator` limits and returns the violations, if any.
pub fn validate<T: Validate>(value: &T) -> Result<(), Vec<Violation>> {
    value.validate().map_err(|e| validation_violations(&e))
}

fn invalid(violations: Vec<Violation>) -> ApiError {
    ApiError::Invalid(violations.into_iter().map(FieldError::from).collect())
}

/// Reads a JSON body of type `T`, parsed strictly and checked against its `validator` limits.
/// Handlers call it after the permission check, so a caller without the role never has a body
/// read.
pub async fn json_body<T>(req: &HttpRequest, payload: web::Payload) -> Result<T, ApiError>
where
    T: DeserializeOwned + Validate + ObjectMembers,
{
    let bytes = read_json(req, &mut payload.into_inner()).await?;
    let value: T = shaped(parse_json(&bytes)?).map_err(invalid)?;
    validate(&value).map_err(invalid)?;
    Ok(value)
}

/// Like [`json_body`], for a body whose every field is optional: a request without a body (no
/// `Content-Type` and nothing in it), or a JSON body with nothing in it, is read as `{}`. A body
/// without a `Content-Type` is still 415.
pub async fn optional_json_body<T>(req: &HttpRequest, payload: web::Payload) -> Result<T, ApiError>
where
    T: DeserializeOwned + Validate + ObjectMembers,
{
    if !req.headers().contains_key(header::CONTENT_TYPE) {
        let limit = req
            .app_data::<web::Data<AppState>>()
            .map_or(crate::state::DEFAULT_BODY_LIMIT, |s| s.body_limit);
        let bytes = read_body_within(req, &mut payload.into_inner(), limit).await?;
        if !bytes.is_empty() {
            return Err(ApiError::UnsupportedMediaType(
                "send the body as application/json, or send none".into(),
            ));
        }
        let value: T = shaped(serde_json::Value::Object(Default::default())).map_err(invalid)?;
        validate(&value).map_err(invalid)?;
        return Ok(value);
    }
    // A JSON body that is empty (what some generated clients send for an all-optional body):
    // read as `{}` too.
    let bytes = read_json(req, &mut payload.into_inner()).await?;
    let doc = if bytes.iter().all(u8::is_ascii_whitespace) {
        serde_json::Value::Object(Default::default())
    } else {
        parse_json(&bytes)?
    };
    let value: T = shaped(doc).map_err(invalid)?;
    validate(&value).map_err(invalid)?;
    Ok(value)
}

/// Reads a JSON merge patch (RFC 7396): any JSON object.
pub async fn merge_patch_body(
    req: &HttpRequest,
    payload: web::Payload,
) -> Result<serde_json::Map<String, serde_json::Value>, ApiError> {
    let bytes = read_json(req, &mut payload.into_inner()).await?;
    match parse_json(&bytes)? {
        serde_json::Value::Object(map) => Ok(map),
        _ => Err(invalid(vec![Violation::new(
            "invalid_type",
            "",
            "a merge patch is a JSON object of the fields to change",
        )])),
    }
}

/// Applies an RFC 7396 merge patch to `target`.
pub fn merge(target: &mut serde_json::Value, patch: &serde_json::Value) {
    use serde_json::Value;
    match patch {
        Value::Object(p) => {
            if !target.is_object() {
                *target = Value::Object(Default::default());
            }
            if let Value::Object(t) = target {
                for (k, v) in p {
                    if v.is_null() {
                        t.remove(k);
                    } else {
                        merge(t.entry(k.clone()).or_insert(Value::Null), v);
                    }
                }
            }
        }
        other => *target = other.clone(),
    }
}

/// Applies a merge patch to a resource's writable fields and re-validates the result as a whole.
/// Read-only fields in the patch are refused by name.
pub fn apply_patch<F>(
    current: &F,
    patch: &serde_json::Map<String, serde_json::Value>,
    read_only: &[&str],
) -> Result<F, Vec<Violation>>
where
    F: serde::Serialize + DeserializeOwned + Validate + ObjectMembers,
{
    let read_only_hits: Vec<Violation> = patch
        .keys()
        .filter(|k| read_only.contains(&k.as_str()))
        .map(|k| {
            Violation::new(
                "read_only_field",
                format!("/{k}"),
                format!("`{k}` is kept by the server and cannot be written"),
            )
        })
        .collect();
    if !read_only_hits.is_empty() {
        return Err(read_only_hits);
    }
    let mut doc = serde_json::to_value(current)
        .map_err(|e| vec![Violation::new("internal", "", e.to_string())])?;
    merge(&mut doc, &serde_json::Value::Object(patch.clone()));
    let next: F = shaped(doc)?;
    validate(&next)?;
    Ok(next)
}

/// Parses `If-Match` (RFC 9110 §13.1.1): `*` or a list of entity-tags, over every header line.
/// A well-formed tag this service did not mint, or a weak one, never matches (strong
/// comparison): the write answers 412. Only a malformed header is a 400.
pub fn if_match(req: &HttpRequest) -> Result<poam_domain::IfMatch, ApiError> {
    let mut lines = Vec::new();
    for raw in req.headers().get_all(header::IF_MATCH) {
        lines.push(raw.to_str().map_err(|_| malformed_if_match())?);
    }
    poam_domain::IfMatch::parse(lines).map_err(|why| ApiError::BadRequest {
        code: "invalid_if_match",
        detail: format!("If-Match must be `*` or a list of entity-tags (RFC 9110): {why}"),
        errors: vec![FieldError::param("If-Match", "invalid_value", why)],
    })
}

fn malformed_if_match() -> ApiError {
    ApiError::bad_request(
        "invalid_if_match",
        "If-Match must be `*` or a list of entity-tags (RFC 9110), in visible ASCII",
    )
}

/// Parses a query string strictly into `T`: unknown parameters refused, each error named.
pub fn query<T: DeserializeOwned>(req: &HttpRequest) -> Result<T, ApiError> {
    query_with_lists(req, &[])
}

/// Like [`query`], with the list parameters `lists` accepted both repeated
/// (`status=open&status=closed`, OpenAPI's `explode: true`, what generated clients send) and
/// comma-separated (`status=open,closed`): the repeated values are joined with commas, in
/// order, so the handler sees one comma-separated value. Any other repeated parameter stays a
/// `duplicate field` error.
pub fn query_with_lists<T: DeserializeOwned>(
    req: &HttpRequest,
    lists: &[&str],
) -> Result<T, ApiError> {
    let qs = req.query_string();
    let mut pairs: Vec<(String, String)> = Vec::new();
    for (k, v) in form_urlencoded::parse(qs.as_bytes()) {
        if k.contains('\0') || v.contains('\0') {
            return Err(ApiError::invalid_param(
                &k.replace('\0', ""),
                "invalid_character",
                "text may not contain the NUL character (U+0000)",
            ));
        }
        match pairs.iter_mut().find(|(name, _)| *name == k) {
            Some((_, joined)) if lists.contains(&k.as_ref()) => {
                joined.push(',');
                joined.push_str(&v);
            }
            _ => pairs.push((k.into_owned(), v.into_owned())),
        }
    }
    let joined = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(&pairs)
        .finish();
    let de = serde_urlencoded::Deserializer::new(form_urlencoded::parse(joined.as_bytes()));
    serde_path_to_error::deserialize(de).map_err(|e| {
        let message = e.inner().to_string();
        let name = quoted(&message)
            .filter(|_| {
                message.starts_with("unknown field")
                    || message.starts_with("duplicate field")
                    || message.starts_with("missing field")
            })
            .map(str::to_owned)
            .unwrap_or_else(|| e.path().to_string());
        let code = if message.starts_with("unknown field") {
            "unknown_parameter"
        } else {
            "invalid_value"
        };
        ApiError::invalid_param(&name, code, message)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn merge_patch_follows_rfc_7396() {
        // The examples of RFC 7396, appendix A (a selection).
        let cases = [
            (json!({"a":"b"}), json!({"a":"c"}), json!({"a":"c"})),
            (json!({"a":"b"}), json!({"b":"c"}), json!({"a":"b","b":"c"})),
            (json!({"a":"b"}), json!({"a":null}), json!({})),
            (
                json!({"a":{"b":"c"}}),
                json!({"a":{"b":"d","c":null}}),
                json!({"a":{"b":"d"}}),
            ),
            (json!({"a":[{"b":"c"}]}), json!({"a":[1]}), json!({"a":[1]})),
            (json!({"e":null}), json!({"a":1}), json!({"e":null,"a":1})),
            (json!([1, 2]), json!({"a":"b","c":null}), json!({"a":"b"})),
            (
                json!({}),
                json!({"a":{"bb":{"ccc":null}}}),
                json!({"a":{"bb":{}}}),
            ),
        ];
        for (mut target, patch, want) in cases {
            merge(&mut target, &patch);
            assert_eq!(target, want, "patch {patch}");
        }
    }

    #[test]
    fn pointers_escape_per_rfc_6901() {
        let v: Result<std::collections::BTreeMap<String, u8>, _> =
            from_value(json!({"a/b~c": "x"}));
        let err = v.err().unwrap_or_default();
        assert_eq!(err[0].pointer, "/a~1b~0c");
        assert_eq!(err[0].code, "invalid_type");
    }

    /// The body as the chunks a client's writes split it into, at every split point.
    fn every_split(text: &str) -> impl Iterator<Item = Chunks> + '_ {
        (0..=text.len()).map(move |at| {
            let (a, b) = text.as_bytes().split_at(at);
            Chunks(
                [a, b]
                    .into_iter()
                    .map(web::Bytes::copy_from_slice)
                    .collect(),
            )
        })
    }

    fn depth_of(chunks: &Chunks) -> usize {
        let mut scan = Depth::default();
        for c in &chunks.0 {
            scan.feed(c);
        }
        scan.max
    }

    fn parsed(chunks: Chunks) -> Result<serde_json::Value, ApiError> {
        strict::parse(serde_json::Deserializer::from_reader(
            std::io::BufReader::with_capacity(3, chunks),
        ))
    }

    #[test]
    fn a_body_read_in_chunks_parses_and_measures_as_one_text() {
        // Brackets and an escaped quote inside strings are not nesting, wherever a chunk ends.
        let text = r#"{"a":[{"b":"x"]}[{"}],"c":"\","d":{"e":[1,2]}}"#;
        let whole = serde_json::from_str::<serde_json::Value>(text).ok();
        for chunks in every_split(text) {
            assert_eq!(depth_of(&chunks), 3);
            assert_eq!(parsed(chunks).ok(), whole);
        }
    }

    #[test]
    fn a_duplicate_key_is_named_whatever_the_chunks() {
        for chunks in every_split(r#"{"items":[{"title":"a","title":"b"}]}"#) {
            match parsed(chunks) {
                Err(ApiError::BadRequest { code, errors, .. }) => {
                    assert_eq!(code, "duplicate_key");
                    assert_eq!(errors[0].pointer.as_deref(), Some("/items/0/title"));
                }
                other => panic!("{other:?}"),
            }
        }
    }
}
