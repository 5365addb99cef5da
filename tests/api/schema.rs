//! The two migration folders describe one schema, every migration runs up, down and up again,
//! and the checked-in OpenAPI document is the one the code generates.

use crate::harness::{Backend, PgSchema, TestApp};
use poam::config::Settings;
use poam_persistence::db;
use std::collections::BTreeSet;

fn names(dir: &str) -> BTreeSet<String> {
    std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{dir}: {e}"))
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect()
}

#[test]
fn migration_folders_have_the_same_names() {
    let root = env!("CARGO_MANIFEST_DIR");
    let pg = names(&format!("{root}/migrations/postgres"));
    let sqlite = names(&format!("{root}/migrations/sqlite"));
    assert!(!pg.is_empty());
    assert_eq!(pg, sqlite);
    for name in &pg {
        for backend in ["postgres", "sqlite"] {
            for f in ["up.sql", "down.sql"] {
                let path = format!("{root}/migrations/{backend}/{name}/{f}");
                assert!(std::path::Path::new(&path).exists(), "{path}");
            }
        }
    }
}

fn pool_for(url: &str, dir: &std::path::Path) -> db::DbPool {
    let dir_text = dir.display().to_string();
    let settings = Settings::from_lookup(|k| match k {
        "POAM_DATABASE_URL" => Some(url.to_owned()),
        "POAM_DATA_DIR" => Some(dir_text.clone()),
        _ => None,
    })
    .unwrap_or_else(|e| panic!("{e}"));
    poam::open_pool(&settings).unwrap_or_else(|e| panic!("{e}"))
}

type Tables = (Vec<db::TableShape>, Vec<String>);

fn up_down_up(pool: &db::DbPool) -> Tables {
    let mut conn = pool.get().unwrap_or_else(|e| panic!("{e}"));
    let applied = db::run_migrations(&mut conn).unwrap_or_else(|e| panic!("up: {e}"));
    assert!(!applied.is_empty());
    let first = db::describe_schema(&mut conn).unwrap_or_else(|e| panic!("{e}"));
    let reverted = db::revert_all_migrations(&mut conn).unwrap_or_else(|e| panic!("down: {e}"));
    assert_eq!(reverted.len(), applied.len());
    assert_eq!(
        db::describe_schema(&mut conn).unwrap_or_else(|e| panic!("{e}")),
        (Vec::new(), Vec::new()),
        "down leaves nothing behind"
    );
    db::run_migrations(&mut conn).unwrap_or_else(|e| panic!("up again: {e}"));
    let again = db::describe_schema(&mut conn).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(first, again);
    assert!(db::pending_migrations(&mut conn)
        .unwrap_or_default()
        .is_empty());
    again
}

#[test]
fn both_backends_build_the_same_tables_up_down_and_up_again() {
    let dir = std::env::temp_dir().join(format!("poam-schema-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap_or_default();
    let sqlite = up_down_up(&pool_for(
        &format!("sqlite://{}", dir.join("s.db").display()),
        &dir,
    ));
    let Some(schema) = PgSchema::create() else {
        return;
    };
    let pg = up_down_up(&pool_for(&schema.url, &dir));
    let table_names: Vec<&str> = pg.0.iter().map(|(t, _)| t.as_str()).collect();
    assert!(
        pg.1.contains(&"items_due_key_idx".to_string()),
        "indexes are compared too: {:?}",
        pg.1
    );
    assert_eq!(
        table_names,
        [
            "catalogs",
            "cci_controls",
            "cmmc_assessments",
            "content_keys",
            "epss_scores",
            "events",
            "evidence",
            "evidence_chunks",
            "external_refs",
            "idempotency_keys",
            "item_controls",
            "item_signals",
            "items",
            "kev_entries",
            "milestones",
            "reminder_keys",
            "reviews",
            "scan_chunks",
            "scan_findings",
            "scans",
            "systems",
            "transitions",
            "webhook_attempts",
            "webhook_deliveries",
            "webhook_subscriptions"
        ]
    );
    assert_eq!(
        pg, sqlite,
        "PostgreSQL and SQLite agree on tables, columns, types, nullability and indexes"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_checked_in_openapi_document_is_current() {
    let generated = poam_http::openapi().to_pretty_json().unwrap_or_default();
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/openapi/openapi.json");
    let checked_in = std::fs::read_to_string(path).unwrap_or_default();
    assert!(
        generated.trim_end() == checked_in.trim_end(),
        "openapi/openapi.json is out of date: run `make openapi` and commit the result"
    );
}

#[test]
fn the_checked_in_bundle_schema_is_current() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/openapi/export-bundle.schema.json"
    );
    let on_disk: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap_or_default())
            .unwrap_or_default();
    assert!(
        on_disk == poam_http::bundle_schema(),
        "openapi/export-bundle.schema.json is out of date: run `make openapi` and commit the result"
    );
}

#[test]
fn the_served_document_is_the_generated_one() {
    let Some(app) = TestApp::spawn(Backend::Sqlite) else {
        return;
    };
    let served = app
        .request("GET", "/v1/openapi.json", None, &[], None)
        .expect(200);
    let generated: serde_json::Value =
        serde_json::to_value(poam_http::openapi()).unwrap_or_default();
    assert_eq!(served.body, generated);
    assert_eq!(served.body["openapi"], "3.1.0");
    assert_eq!(served.body["info"]["title"], "POA&M service");
    // Every operation but health and the public schemas declares the bearer scheme.
    for (path, item) in served.body["paths"].as_object().into_iter().flatten() {
        for (method, op) in item.as_object().into_iter().flatten() {
            let secured = op["security"].as_array().is_some_and(|s| !s.is_empty());
            let public = !path.starts_with("/v1/") || path.starts_with("/v1/schemas/");
            assert_eq!(secured, !public, "{method} {path}");
        }
    }
    // The interactive docs are served from the binary.
    let docs = app.request("GET", "/docs/", None, &[], None).expect(200);
    assert!(
        docs.body.as_str().unwrap_or("").contains("swagger"),
        "docs page"
    );
    app.request("GET", "/docs/swagger-ui-bundle.js", None, &[], None)
        .expect(200);
}

/// Every `#[utoipa::path(...)]` attribute of the route modules, with the handler it documents.
fn documented_handlers() -> Vec<(String, String, String)> {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/crates/http/src/routes");
    let mut out = Vec::new();
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{dir}: {e}"))
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "rs"))
        .collect();
    files.sort();
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap_or_default();
        let name = file.display().to_string();
        for chunk in text.split("#[utoipa::path(").skip(1) {
            // The attribute runs to the handler's `fn`.
            let (attribute, after) = chunk.split_once(" fn ").unwrap_or((chunk, ""));
            let handler: String = after
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_' || *c == '$')
                .collect();
            out.push((name.clone(), handler, attribute.to_owned()));
        }
    }
    out
}

/// A bare object: `type: object` (or `[object, null]`) with nothing saying what it holds.
fn bare_objects(v: &serde_json::Value, at: &str, out: &mut Vec<String>) {
    use serde_json::Value;
    match v {
        Value::Object(m) => {
            let object = match m.get("type") {
                Some(Value::String(t)) => t == "object",
                Some(Value::Array(ts)) => ts.iter().any(|t| t == "object"),
                _ => false,
            };
            let described = [
                "properties",
                "additionalProperties",
                "patternProperties",
                "$ref",
                "oneOf",
                "anyOf",
                "allOf",
            ]
            .iter()
            .any(|k| m.contains_key(*k));
            if object && !described {
                out.push(at.to_owned());
            }
            for (k, x) in m {
                // `example`s are data, not schemas.
                if k != "example" && k != "examples" {
                    bare_objects(x, &format!("{at}/{k}"), out);
                }
            }
        }
        Value::Array(a) => {
            for (i, x) in a.iter().enumerate() {
                bare_objects(x, &format!("{at}/{i}"), out);
            }
        }
        _ => {}
    }
}

/// What a generated client needs of the document: every operation named on purpose, no bare
/// object, every media type a handler sends declared.
#[test]
fn the_document_is_fit_for_generated_clients() {
    let spec = serde_json::to_value(poam_http::openapi()).unwrap_or_default();
    let methods = ["get", "put", "post", "patch", "delete"];
    let operations: Vec<(String, String, serde_json::Value)> = spec["paths"]
        .as_object()
        .into_iter()
        .flatten()
        .flat_map(|(path, item)| {
            methods.iter().filter_map(move |m| {
                item.get(*m)
                    .map(|op| (m.to_string(), path.clone(), op.clone()))
            })
        })
        .collect();
    assert!(operations.len() > 60, "{}", operations.len());

    // 1. Every handler sets its operation_id: utoipa would otherwise use the fn name, and the
    //    generic ones (`list`, `get`, `content`, ...) clash and read poorly in generated code.
    let handlers = documented_handlers();
    assert!(handlers.len() >= 60, "{}", handlers.len());
    for (file, handler, attribute) in &handlers {
        assert!(
            attribute.contains("operation_id ="),
            "{file}: the #[utoipa::path] of `{handler}` has no explicit operation_id"
        );
    }
    let generic = [
        "list",
        "get",
        "content",
        "upload",
        "export",
        "bulk",
        "score",
        "withdraw",
        "transition",
        "attention",
        "redeliver",
        "create",
        "update",
        "delete",
        "put",
        "post",
        "healthz",
        "readyz",
    ];
    let mut seen = BTreeSet::new();
    for (method, path, op) in &operations {
        let id = op["operationId"].as_str().unwrap_or("");
        assert!(
            !id.is_empty()
                && id.contains('_')
                && id
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'),
            "{method} {path}: operationId `{id}` is not a descriptive snake_case name"
        );
        assert!(
            !generic.contains(&id),
            "{method} {path}: generic operationId `{id}`"
        );
        assert!(
            seen.insert(id.to_owned()),
            "operationId `{id}` is used twice"
        );
    }

    // 1b. A parameter is present or absent, never null: `Option<T>` on a header parameter makes
    //     utoipa write `"type": ["string", "null"]`, which generated clients type as nullable and
    //     Swagger UI shows as `stringnull`. Optional is `required: false`.
    for (method, path, op) in &operations {
        for param in op["parameters"].as_array().into_iter().flatten() {
            let schema = param["schema"].to_string();
            assert!(
                !schema.contains("\"null\""),
                "{method} {path}: parameter `{}` admits null: {schema}",
                param["name"].as_str().unwrap_or("")
            );
        }
    }

    // 2. No bare object, in the components and in every operation's bodies.
    let mut bare = Vec::new();
    bare_objects(&spec["components"], "#/components", &mut bare);
    bare_objects(&spec["paths"], "#/paths", &mut bare);
    assert!(
        bare.is_empty(),
        "bare `{{\"type\": \"object\"}}` schemas: {bare:#?}"
    );

    // 3. Every media type a handler sends is declared on its success response (the JSON-only
    //    operations: `application/json`; those below send more).
    let sheet = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet";
    let sends: &[(&str, &str, &[&str])] = &[
        (
            "get",
            "/v1/systems/{system_id}/export",
            &[
                "application/json",
                "application/oscal+json",
                "text/csv",
                sheet,
            ],
        ),
        // One operation per export format, each with one media type.
        (
            "get",
            "/v1/systems/{system_id}/exports/json",
            &["application/json"],
        ),
        (
            "get",
            "/v1/systems/{system_id}/exports/oscal",
            &["application/oscal+json"],
        ),
        (
            "get",
            "/v1/systems/{system_id}/exports/fedramp-csv",
            &["text/csv"],
        ),
        (
            "get",
            "/v1/systems/{system_id}/exports/fedramp-xlsx",
            &[sheet],
        ),
        (
            "get",
            "/v1/systems/{system_id}/exports/emass-xlsx",
            &[sheet],
        ),
        (
            "get",
            "/v1/systems/{system_id}/exports/emass-csv",
            &["text/csv"],
        ),
        (
            "get",
            "/v1/systems/{system_id}/exports/emass-dry-run",
            &["application/json"],
        ),
        ("get", "/v1/systems/{system_id}/exports/nisp-xlsx", &[sheet]),
        (
            "get",
            "/v1/systems/{system_id}/exports/nisp-csv",
            &["text/csv"],
        ),
        (
            "get",
            "/v1/evidence/{evidence_id}/content",
            &["application/octet-stream", "*/*"],
        ),
        (
            "get",
            "/v1/scans/{scan_id}/content",
            &["application/octet-stream", "*/*"],
        ),
        (
            "get",
            "/v1/systems/{system_id}/reports/fedramp-monthly",
            &["text/html"],
        ),
        (
            "get",
            "/v1/systems/{system_id}/report",
            &["application/json", "text/html"],
        ),
        ("get", "/v1/report", &["application/json", "text/html"]),
        (
            "get",
            "/v1/schemas/export-bundle.json",
            &["application/schema+json"],
        ),
    ];
    for (method, path, op) in &operations {
        let declared: BTreeSet<String> = op["responses"]
            .as_object()
            .into_iter()
            .flatten()
            .filter(|(status, _)| status.starts_with('2'))
            .flat_map(|(_, r)| r["content"].as_object().into_iter().flatten())
            .map(|(media, _)| media.clone())
            .collect();
        let expected: BTreeSet<String> =
            match sends.iter().find(|(m, p, _)| m == method && p == path) {
                Some((_, _, media)) => media.iter().map(|m| m.to_string()).collect(),
                None if declared.is_empty() => BTreeSet::new(),
                None => ["application/json".to_owned()].into(),
            };
        assert_eq!(
            declared, expected,
            "{method} {path}: the media types it sends"
        );
        // Binary bodies are binary strings, not arrays of numbers.
        for (media, content) in op["responses"]
            .as_object()
            .into_iter()
            .flatten()
            .flat_map(|(_, r)| r["content"].as_object().into_iter().flatten())
        {
            let schema = &content["schema"];
            let resolved = match schema["$ref"].as_str() {
                Some(r) => spec
                    .pointer(&r.replace("#/", "/"))
                    .cloned()
                    .unwrap_or_default(),
                None => schema.clone(),
            };
            if media == sheet || media.ends_with("octet-stream") || media == "*/*" {
                assert_eq!(
                    (resolved["type"].as_str(), resolved["format"].as_str()),
                    (Some("string"), Some("binary")),
                    "{method} {path} {media}"
                );
            }
        }
    }
    for (method, path, _) in sends {
        assert!(
            operations.iter().any(|(m, p, _)| m == method && p == path),
            "{method} {path} is not in the document"
        );
    }
}
