use crate::both;
use crate::harness::{Backend, TestApp, SECRET};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use poam_domain::{Role, SystemId};
use serde_json::json;

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

fn sign(claims: &serde_json::Value, secret: &str) -> String {
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        claims,
        &EncodingKey::from_secret(secret.as_bytes()),
    )
    .unwrap_or_default()
}

fn b64(v: &serde_json::Value) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string())
}

fn tokens_are_checked(app: &TestApp) {
    let good = json!({"sub": "a", "roles": ["admin"], "systems": ["*"], "exp": now() + 600});
    app.get("/v1/systems", &sign(&good, SECRET)).expect(200);

    let r = app
        .request("GET", "/v1/systems", None, &[], None)
        .problem(401, "missing_token");
    assert_eq!(r.header("www-authenticate"), Some("Bearer realm=\"poam\""));
    app.request(
        "GET",
        "/v1/systems",
        None,
        &[("Authorization", "Basic YTpi")],
        None,
    )
    .problem(401, "missing_token");
    let r = app
        .get(
            "/v1/systems",
            &sign(&good, "another-secret-another-secret-0000"),
        )
        .problem(401, "invalid_token");
    assert!(r
        .header("www-authenticate")
        .unwrap_or("")
        .contains("error=\"invalid_token\""));
    app.get(
        "/v1/systems",
        &sign(
            &json!({"sub": "a", "roles": ["admin"], "systems": ["*"], "exp": now() - 120}),
            SECRET,
        ),
    )
    .problem(401, "token_expired");
    app.get("/v1/systems", &sign(&json!({"sub": "a", "roles": ["admin"], "systems": ["*"], "exp": now() + 600, "nbf": now() + 300}), SECRET))
        .problem(401, "token_not_yet_valid");
    app.get(
        "/v1/systems",
        &sign(
            &json!({"sub": "a", "roles": ["admin"], "systems": ["*"]}),
            SECRET,
        ),
    )
    .problem(401, "invalid_token");
    // alg: none, with and without a signature.
    let unsigned = format!(
        "{}.{}.",
        b64(&json!({"alg": "none", "typ": "JWT"})),
        b64(&good)
    );
    app.get("/v1/systems", &unsigned)
        .problem(401, "invalid_token");
    let signed = sign(&good, SECRET);
    let sig = signed.rsplit('.').next().unwrap_or_default();
    app.get(
        "/v1/systems",
        &format!("{}.{}.{sig}", b64(&json!({"alg": "none"})), b64(&good)),
    )
    .problem(401, "invalid_token");
    // A tampered payload breaks the signature.
    let mut parts: Vec<String> = signed.split('.').map(str::to_owned).collect();
    parts[1] =
        b64(&json!({"sub": "a", "roles": ["admin"], "systems": ["*"], "exp": now() + 99999}));
    app.get("/v1/systems", &parts.join("."))
        .problem(401, "invalid_token");
    app.get("/v1/systems", "not.a.jwt")
        .problem(401, "invalid_token");
    // Health and the spec are open.
    app.request("GET", "/healthz", None, &[], None).expect(200);
    app.request("GET", "/readyz", None, &[], None).expect(200);
    app.request("GET", "/v1/openapi.json", None, &[], None)
        .expect(200);
}
both!(tokens_are_checked);

fn roles_are_enforced(app: &TestApp) {
    let sid = app.system("Roles");
    let item = app.item(&sid, json!({})).expect(201);
    let item_path = format!("/v1/items/{}", item.body["id"].as_str().unwrap_or_default());
    let items_path = format!("/v1/systems/{sid}/items");
    let new_system = json!({"name": "New"});
    for role in Role::ALL {
        let t = app.token(&[*role], &[]);
        // Everyone reads.
        app.get("/v1/systems", &t).expect(200);
        app.get(&item_path, &t).expect(200);
        app.get(&items_path, &t).expect(200);
        let can_write_items = matches!(role, Role::Admin | Role::Editor);
        let r = app.post(&items_path, &t, &crate::harness::minimal_item());
        if can_write_items {
            r.expect(201);
        } else {
            r.problem(403, "forbidden");
        }
        let r = app.patch(
            &item_path,
            &t,
            &json!({"comments": format!("by {role}")}),
            None,
        );
        if can_write_items {
            r.expect(200);
        } else {
            r.problem(403, "forbidden");
        }
        let r = app.post("/v1/systems", &t, &new_system);
        if *role == Role::Admin {
            r.expect(201);
        } else {
            r.problem(403, "forbidden");
        }
        let r = app.patch(
            &format!("/v1/systems/{sid}"),
            &t,
            &json!({"description": format!("by {role}")}),
            None,
        );
        if *role == Role::Admin {
            r.expect(200);
        } else {
            r.problem(403, "forbidden");
        }
    }
    // Decisions are the approver's: an editor cannot close an item or approve a deviation by PATCH
    // (a status changes only through a transition, whoever asks).
    let editor = app.token(&[Role::Editor], &[]);
    let r = app
        .patch(
            &item_path,
            &editor,
            &json!({"status": "closed", "closed_on": "2026-11-01"}),
            None,
        )
        .problem(422, "validation_failed");
    assert_eq!(r.body["errors"][0]["code"], "status_via_transition");
    assert_eq!(app.get(&item_path, &editor).body["status"], "open");
    app.patch(
        &item_path,
        &editor,
        &json!({"deviation": {"kind": "false_positive", "status": "approved", "rationale": "x"}}),
        None,
    )
    .problem(403, "decision_needs_approver");
    app.patch(
        &item_path,
        &editor,
        &json!({"deviation": {"kind": "false_positive", "rationale": "x"}}),
        None,
    )
    .expect(200);
    // The role is checked before the body is read: a viewer's malformed body is still a 403.
    app.request(
        "POST",
        &items_path,
        Some(&app.token(&[Role::Viewer], &[])),
        &[("Content-Type", "application/json")],
        Some(b"{oops"),
    )
    .problem(403, "forbidden");
    // A token with no roles reads nothing.
    app.get("/v1/systems", &app.token(&[], &[]))
        .problem(403, "forbidden");
}
both!(roles_are_enforced);

fn other_systems_are_invisible(app: &TestApp) {
    let mine = app.system("Mine");
    let theirs = app.system("Theirs");
    let their_item = app.item(&theirs, json!({})).expect(201);
    let their_item_path = format!(
        "/v1/items/{}",
        their_item.body["id"].as_str().unwrap_or_default()
    );
    let mine_id: SystemId = mine.parse().unwrap_or_default();
    let t = app.token(&[Role::Admin], &[mine_id]);
    let listed = app.get("/v1/systems", &t).expect(200);
    let ids: Vec<&str> = listed.body["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| s["id"].as_str())
        .collect();
    assert_eq!(ids, [mine.as_str()]);
    app.get(&format!("/v1/systems/{mine}"), &t).expect(200);
    // Everything about the other system answers 404, exactly like an id that does not exist.
    app.get(&format!("/v1/systems/{theirs}"), &t)
        .problem(404, "not_found");
    app.get(&format!("/v1/systems/{theirs}/items"), &t)
        .problem(404, "not_found");
    app.post(
        &format!("/v1/systems/{theirs}/items"),
        &t,
        &crate::harness::minimal_item(),
    )
    .problem(404, "not_found");
    app.patch(
        &format!("/v1/systems/{theirs}"),
        &t,
        &json!({"name": "x"}),
        None,
    )
    .problem(404, "not_found");
    app.delete(&format!("/v1/systems/{theirs}"), &t, None)
        .problem(404, "not_found");
    app.get(&their_item_path, &t).problem(404, "not_found");
    app.patch(&their_item_path, &t, &json!({"title": "x"}), None)
        .problem(404, "not_found");
    app.delete(&their_item_path, &t, None)
        .problem(404, "not_found");
    let missing = app
        .get(&format!("/v1/items/{}", uuid::Uuid::new_v4()), &t)
        .problem(404, "not_found");
    let hidden = app.get(&their_item_path, &t).problem(404, "not_found");
    assert_eq!(
        missing.body, hidden.body,
        "a hidden item is indistinguishable from a missing one"
    );
    // Nothing was changed through the refused calls.
    assert_eq!(app.get(&their_item_path, &app.admin()).body["version"], 1);
}
both!(other_systems_are_invisible);

fn issuer_and_audience_are_checked_when_configured(backend: Backend) {
    let Some(app) = TestApp::spawn_with(
        backend,
        &[
            ("POAM_JWT_ISSUER", "https://idp.example.org"),
            ("POAM_JWT_AUDIENCE", "poam"),
        ],
    ) else {
        return;
    };
    let base = json!({"sub": "a", "roles": ["viewer"], "systems": ["*"], "exp": now() + 600});
    let with = |iss: Option<&str>, aud: Option<&str>| {
        let mut c = base.clone();
        if let Some(i) = iss {
            c["iss"] = json!(i);
        }
        if let Some(a) = aud {
            c["aud"] = json!(a);
        }
        sign(&c, SECRET)
    };
    app.get(
        "/v1/systems",
        &with(Some("https://idp.example.org"), Some("poam")),
    )
    .expect(200);
    app.get(
        "/v1/systems",
        &with(Some("https://evil.example.org"), Some("poam")),
    )
    .problem(401, "invalid_token");
    app.get(
        "/v1/systems",
        &with(Some("https://idp.example.org"), Some("other")),
    )
    .problem(401, "invalid_token");
    app.get("/v1/systems", &with(None, Some("poam")))
        .problem(401, "invalid_token");
    app.get("/v1/systems", &with(Some("https://idp.example.org"), None))
        .problem(401, "invalid_token");
    // Tokens the service mints carry both.
    app.get("/v1/systems", &app.token(&[Role::Viewer], &[]))
        .expect(200);
}

#[test]
fn issuer_and_audience_sqlite() {
    issuer_and_audience_are_checked_when_configured(Backend::Sqlite);
}

/// An identity provider's EdDSA tokens verify against its public key; an HS256 token signed with
/// that public key as the secret (algorithm confusion) does not.
#[test]
fn public_key_tokens_and_algorithm_confusion() {
    let dir = std::env::temp_dir().join(format!("poam-keys-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap_or_default();
    let private = dir.join("ed25519.pem");
    let public = dir.join("ed25519.pub.pem");
    let ok = std::process::Command::new("openssl")
        .args(["genpkey", "-algorithm", "ed25519", "-out"])
        .arg(&private)
        .status();
    assert!(ok.map(|s| s.success()).unwrap_or(false), "openssl genpkey");
    let ok = std::process::Command::new("openssl")
        .args(["pkey", "-pubout", "-in"])
        .arg(&private)
        .arg("-out")
        .arg(&public)
        .status();
    assert!(ok.map(|s| s.success()).unwrap_or(false), "openssl pkey");
    let Some(app) = TestApp::spawn_with(
        Backend::Sqlite,
        &[
            ("POAM_JWT_SECRET", ""),
            ("POAM_JWT_ALGORITHM", "EdDSA"),
            ("POAM_JWT_PUBLIC_KEY_FILE", &public.display().to_string()),
            ("POAM_JWT_PRIVATE_KEY_FILE", &private.display().to_string()),
        ],
    ) else {
        return;
    };
    let claims =
        json!({"sub": "idp-user", "roles": ["viewer"], "systems": ["*"], "exp": now() + 600});
    let pem = std::fs::read(&private).unwrap_or_default();
    let key = EncodingKey::from_ed_pem(&pem).unwrap_or_else(|e| panic!("{e}"));
    let idp_token =
        jsonwebtoken::encode(&Header::new(Algorithm::EdDSA), &claims, &key).unwrap_or_default();
    app.get("/v1/systems", &idp_token).expect(200);
    app.get("/v1/systems", &app.token(&[Role::Viewer], &[]))
        .expect(200);
    let public_pem = std::fs::read_to_string(&public).unwrap_or_default();
    app.get("/v1/systems", &sign(&claims, &public_pem))
        .problem(401, "invalid_token");
    app.get("/v1/systems", &sign(&claims, SECRET))
        .problem(401, "invalid_token");
    let _ = std::fs::remove_dir_all(&dir);
}

/// `sub` is required, not blank, at most 255 characters: it is the actor of every change and
/// half of an idempotency record's key.
fn subjects_are_bounded(app: &TestApp) {
    let sid = app.system("Subjects");
    let items = format!("/v1/systems/{sid}/items");
    let body = serde_json::to_vec(&crate::harness::minimal_item()).unwrap_or_default();
    let post = |token: &str, key: &str| {
        app.request(
            "POST",
            &items,
            Some(token),
            &[
                ("Content-Type", "application/json"),
                ("Idempotency-Key", key),
            ],
            Some(&body),
        )
    };
    let with_sub = |sub: &str| {
        sign(
            &json!({"sub": sub, "roles": ["admin"], "systems": ["*"], "iat": now(), "exp": now() + 600}),
            SECRET,
        )
    };
    // 9 KB that does not compress: refused before anything is recorded (it was a 500 on
    // PostgreSQL, an index row too large), with or without a key.
    let noise: String = (0..288)
        .map(|_| uuid::Uuid::new_v4().simple().to_string())
        .collect();
    assert_eq!(noise.len(), 9 * 1024);
    let huge = with_sub(&noise);
    let r = post(&huge, "long-sub-1").problem(401, "invalid_token");
    let detail = r.body["detail"].as_str().unwrap_or_default();
    assert!(detail.contains("255"), "{detail}");
    app.get("/v1/systems", &huge).problem(401, "invalid_token");
    // Empty and blank subjects are no one.
    for blank in ["", "   ", "\t"] {
        let r = post(&with_sub(blank), "blank-sub").problem(401, "invalid_token");
        let detail = r.body["detail"].as_str().unwrap_or_default();
        assert!(detail.contains("`sub`"), "{detail}");
    }
    // A control character is refused too; 255 characters (multi-byte ones count once) are fine.
    post(&with_sub("a\u{7}b"), "control-sub").problem(401, "invalid_token");
    post(&with_sub(&"é".repeat(256)), "long-sub-2").problem(401, "invalid_token");
    post(&with_sub(&"é".repeat(255)), "long-sub-3").expect(201);
    // Only that one item was made.
    assert_eq!(
        app.get(&items, &app.admin()).body["items"]
            .as_array()
            .map(Vec::len),
        Some(1)
    );
}
both!(subjects_are_bounded);

/// A token may live at most the configured maximum (90 days by default): `exp - iat`, or
/// `exp - now` without `iat`.
fn token_lifetimes_are_bounded(app: &TestApp) {
    const DAY: i64 = 86_400;
    let token = |iat: Option<i64>, exp: i64| {
        let mut claims =
            json!({"sub": "long-lived", "roles": ["viewer"], "systems": ["*"], "exp": exp});
        if let Some(iat) = iat {
            claims["iat"] = json!(iat);
        }
        sign(&claims, SECRET)
    };
    let t = now();
    // At the limit.
    app.get("/v1/systems", &token(Some(t), t + 90 * DAY))
        .expect(200);
    app.get("/v1/systems", &token(None, t + 90 * DAY - 60))
        .expect(200);
    // Beyond it, with and without iat.
    let r = app
        .get("/v1/systems", &token(Some(t), t + 90 * DAY + 1))
        .problem(401, "invalid_token");
    let detail = r.body["detail"].as_str().unwrap_or_default();
    assert!(
        detail.contains("lifetime") && detail.contains("exceeds"),
        "{detail}"
    );
    app.get("/v1/systems", &token(None, t + 91 * DAY))
        .problem(401, "invalid_token");
    app.get("/v1/systems", &token(Some(t - 10 * DAY), t + 81 * DAY))
        .problem(401, "invalid_token");
    // An iat in the future does not stretch a token's life.
    app.get("/v1/systems", &token(Some(t + 200 * DAY), t + 201 * DAY))
        .problem(401, "invalid_token");
}
both!(token_lifetimes_are_bounded);

#[test]
fn the_token_lifetime_maximum_is_configurable() {
    let Some(app) = TestApp::spawn_with(Backend::Sqlite, &[("POAM_TOKEN_MAX_TTL", "1h")]) else {
        return;
    };
    let token = |ttl: i64| {
        let t = now();
        sign(
            &json!({"sub": "a", "roles": ["viewer"], "systems": ["*"], "iat": t, "exp": t + ttl}),
            SECRET,
        )
    };
    app.get("/v1/systems", &token(3600)).expect(200);
    let r = app
        .get("/v1/systems", &token(3601))
        .problem(401, "invalid_token");
    assert!(
        r.body["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("3600"),
        "{}",
        r.body
    );
    app.get("/v1/systems", &app.token(&[Role::Viewer], &[]))
        .expect(200);
}
