//! The executive and technical report (`/v1/systems/{id}/report`, `/v1/report`): its figures
//! against a hand-computed fixture, its authorization, its escaping, and the HTML page in a
//! real browser.

use crate::both;
use crate::exchange::close;
use crate::harness::{days, id, Backend, TestApp};
use poam_domain::{Role, SystemId};
use serde_json::{json, Value};

const SCRIPT_TITLE: &str = "Banner shows <script>alert(1)</script>";

fn move_milestone(app: &TestApp, m: &str, to: &str) {
    app.request(
        "PATCH",
        &format!("/v1/milestones/{m}"),
        Some(&app.admin()),
        &[("Content-Type", "application/json")],
        Some(
            json!({"due_on": to, "change_reason": "vendor patch late"})
                .to_string()
                .as_bytes(),
        ),
    )
    .expect(200);
}

/// A FedRAMP system with items in every state:
/// - A critical, open, detected 200 days ago, due in 40 days, owner Dana, AC-2, planned
///   1000 / 10 h / spent 200, funded; a milestone moved +10 days (20 → 30) and one overdue
///   (5 days ago); one evidence file.
/// - B high, in progress, detected 40 days ago, due 3 days ago (overdue), owner Lee, SC-7,
///   planned 500, unfunded; a milestone moved twice (−20 → −15 → −12: +5, +3), overdue.
/// - C moderate, open, detected 5 days ago, no date (FedRAMP sets +90: in 85 days), the
///   `<script>` title.
/// - D low, completed today (awaiting verification), detected 20 days ago.
/// - E high, closed today, detected 12 days ago; F moderate, closed today, detected 30 days ago.
fn seeded(app: &TestApp) -> (String, Vec<String>) {
    let sid = app.system_in("Report", "fedramp");
    let admin = app.admin();
    let a = id(&app
        .item(
            &sid,
            json!({"title": "Default admin password on the hypervisor", "risk_rating": "critical",
                "detected_on": days(-200), "scheduled_completion": days(40),
                "owner": {"name": "Dana"}, "controls": ["AC-2"],
                "remediation_plan": "Rotate and vault the credential.",
                "resources": {"estimated_cost": 1000, "hours": 10, "funded": true},
                "actual_cost": 200}),
        )
        .expect(201)
        .body);
    let m = app.milestone(&a, &days(20));
    move_milestone(app, &m, &days(30));
    app.milestone(&a, &days(-5));
    app.evidence(&a).expect(201);
    let b = id(&app
        .item(
            &sid,
            json!({"title": "Flat network between tiers", "risk_rating": "high",
                "detected_on": days(-40), "scheduled_completion": days(-3),
                "owner": {"name": "Lee"}, "controls": ["SC-7"],
                "resources": {"estimated_cost": 500, "funded": false}}),
        )
        .expect(201)
        .body);
    let m = app.milestone(&b, &days(-20));
    move_milestone(app, &m, &days(-15));
    move_milestone(app, &m, &days(-12));
    app.transition(&b, &admin, json!({"to": "in_progress"}))
        .expect(200);
    let c = id(&app
        .item(
            &sid,
            json!({"title": SCRIPT_TITLE, "risk_rating": "moderate", "detected_on": days(-5)}),
        )
        .expect(201)
        .body);
    let d = id(&app
        .item(
            &sid,
            json!({"title": "Old TLS ciphers", "risk_rating": "low", "detected_on": days(-20)}),
        )
        .expect(201)
        .body);
    app.milestone(&d, &days(0));
    app.evidence(&d).expect(201);
    app.transition(&d, &admin, json!({"to": "in_progress"}))
        .expect(200);
    app.transition(
        &d,
        &admin,
        json!({"to": "completed", "comment": "Ciphers removed.", "completed_on": days(0)}),
    )
    .expect(200);
    let e = id(&app
        .item(
            &sid,
            json!({"title": "Unpatched kernel", "risk_rating": "high", "detected_on": days(-12)}),
        )
        .expect(201)
        .body);
    app.milestone(&e, &days(0));
    close(app, &e);
    let f = id(&app
        .item(
            &sid,
            json!({"title": "Verbose errors", "risk_rating": "moderate", "detected_on": days(-30)}),
        )
        .expect(201)
        .body);
    app.milestone(&f, &days(0));
    close(app, &f);
    (sid, vec![a, b, c, d, e, f])
}

fn rating(v: &Value) -> [i64; 4] {
    ["critical", "high", "moderate", "low"].map(|r| v[r].as_i64().unwrap_or(-1))
}

fn report_figures_match_a_hand_computed_fixture(app: &TestApp) {
    let (sid, ids) = seeded(app);
    let r = app
        .get(
            &format!("/v1/systems/{sid}/report?format=json"),
            &app.admin(),
        )
        .expect(200);
    let b = &r.body;
    assert_eq!(b["level"], "executive");
    assert_eq!(b["period"]["to"], days(0));
    assert_eq!(b["period"]["from"], days(-30));
    assert_eq!(
        b["weights"],
        json!({"critical": 4, "high": 3, "moderate": 2, "low": 1})
    );
    let h = &b["headline"];
    assert_eq!(rating(&h["open"]), [1, 1, 1, 0], "{h}");
    assert_eq!(h["open_total"], 3);
    assert_eq!(h["open_weighted"], 4 + 3 + 2);
    assert_eq!(rating(&h["overdue"]), [0, 1, 0, 0]);
    let oldest: Vec<&str> = h["oldest_critical_high"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|i| i["id"].as_str())
        .collect();
    assert_eq!(oldest, [ids[0].as_str(), ids[1].as_str()]);
    assert_eq!(h["oldest_critical_high"][0]["age_days"], 200);
    assert_eq!(rating(&h["closed_in_period"]), [0, 1, 1, 0]);
    assert_eq!(h["risk_reduced"], 3 + 2);
    assert_eq!(h["cmmc"], json!([]));

    // Burn-down: 31 daily points. 30 days ago A, B and F (detected that day) were open
    // (4 + 3 + 2); today A, B and C are (D completed, E and F closed today).
    let burn = b["burn_down"].as_array().cloned().unwrap_or_default();
    assert_eq!(burn.len(), 31);
    assert_eq!(burn[0]["date"], days(-30));
    assert_eq!(
        (burn[0]["open"].as_i64(), burn[0]["open_weighted"].as_i64()),
        (Some(3), Some(9))
    );
    assert_eq!(burn[30]["open"], 3);
    assert_eq!(burn[30]["open_weighted"], 9);
    // 10 days ago: A, B, D (from -20), E (from -12), F open; weights 4+3+1+3+2.
    assert_eq!(burn[20]["open"], 5);
    assert_eq!(burn[20]["open_weighted"], 13);
    // The plan today: A (due +40) and C (due +85) still scheduled open, B was due 3 days ago;
    // D, E, F are due by FedRAMP's policy from their detection (low 180 days: D still
    // scheduled open; high 30: E; moderate 90: F).
    assert_eq!(burn[30]["scheduled_open"], 5);

    // Aging: C 0–30, B 31–90, A over 180.
    let aging = b["aging"].as_array().cloned().unwrap_or_default();
    assert_eq!(aging.len(), 4);
    assert_eq!(rating(&aging[0]["by_rating"]), [0, 0, 1, 0]);
    assert_eq!(rating(&aging[1]["by_rating"]), [0, 1, 0, 0]);
    assert_eq!(aging[2]["total"], 0);
    assert_eq!(rating(&aging[3]["by_rating"]), [1, 0, 0, 0]);

    // Slip: A's milestone +10, B's +5 and +3.
    let s = &b["slip"];
    assert_eq!(s["milestones_moved"], 2);
    assert_eq!(s["moves"], 3);
    assert_eq!(s["days_moved"], 18);
    assert_eq!(
        s["by_family"],
        json!([{"key": "AC", "milestones": 1, "moves": 1, "days_moved": 10},
               {"key": "SC", "milestones": 1, "moves": 2, "days_moved": 8}])
    );
    assert_eq!(s["by_owner"][0]["key"], "Dana");
    assert_eq!(s["by_owner"][1]["key"], "Lee");

    // Time to close: E 12 days (high), F 30 days (moderate), against 30/30/90/180.
    let t = b["time_to_close"].as_array().cloned().unwrap_or_default();
    assert_eq!(t.len(), 4);
    assert_eq!(t[0]["rating"], "critical");
    assert_eq!(t[0]["closed"], 0);
    assert_eq!(t[0]["median_days"], Value::Null);
    assert_eq!(t[0]["deadline_days"], 30);
    assert_eq!(
        (t[1]["median_days"].as_f64(), t[1]["p90_days"].as_f64()),
        (Some(12.0), Some(12.0))
    );
    assert_eq!(t[1]["deadline_days"], 30);
    assert_eq!(t[2]["median_days"].as_f64(), Some(30.0));
    assert_eq!(t[2]["deadline_days"], 90);
    assert_eq!(t[3]["deadline_days"], 180);

    // Resources.
    let res = &b["resources"];
    assert_eq!(res["planned_cost"].as_f64(), Some(1500.0));
    assert_eq!(res["planned_hours"].as_f64(), Some(10.0));
    assert_eq!(res["actual_cost"].as_f64(), Some(200.0));
    assert_eq!(res["funded"]["items"], 1);
    assert_eq!(res["funded"]["estimated_cost"].as_f64(), Some(1000.0));
    assert_eq!(res["unfunded"]["items"], 1);
    assert_eq!(res["unfunded"]["estimated_cost"].as_f64(), Some(500.0));
    assert_eq!(res["funding_unknown"]["items"], 4);

    // Roadmap: Dana's overdue milestone and the moved one, then Lee's overdue one.
    let rows = b["roadmap"]["rows"].as_array().cloned().unwrap_or_default();
    let got: Vec<(String, String, bool)> = rows
        .iter()
        .map(|r| {
            (
                r["owner"].as_str().unwrap_or("").to_owned(),
                r["due_on"].as_str().unwrap_or("").to_owned(),
                r["overdue"].as_bool().unwrap_or(false),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            ("Dana".to_owned(), days(-5), true),
            ("Dana".to_owned(), days(30), false),
            ("Lee".to_owned(), days(-12), true),
        ]
    );
    assert_eq!(b["roadmap"]["to"], days(90));

    // Items: A, B, C by risk; A with its plan, two milestones and one evidence file.
    let items = b["items"].as_array().cloned().unwrap_or_default();
    let order: Vec<&str> = items
        .iter()
        .filter_map(|i| i["item"]["id"].as_str())
        .collect();
    assert_eq!(order, [ids[0].as_str(), ids[1].as_str(), ids[2].as_str()]);
    assert_eq!(items[0]["evidence"], 1);
    assert_eq!(items[0]["milestones"].as_array().map(Vec::len), Some(2));
    assert_eq!(
        items[0]["remediation_plan"],
        "Rotate and vault the credential."
    );
    assert_eq!(items[0]["item"]["overdue"], false);
    assert_eq!(items[1]["item"]["overdue"], true);
    assert_eq!(b["items_not_listed"], 0);

    // Attention: the same entries as the attention list.
    let attention = app
        .get(
            &format!("/v1/systems/{sid}/attention?limit=10"),
            &app.admin(),
        )
        .expect(200);
    assert_eq!(b["attention"], attention.body["data"]);
    assert!(b["attention"].as_array().is_some_and(|a| !a.is_empty()));

    // The portfolio: another system's open low item adds to the counts, and the systems
    // listed are both.
    let other = app.system("Other");
    app.item(
        &other,
        json!({"risk_rating": "low", "detected_on": days(-1)}),
    )
    .expect(201);
    let p = app.get("/v1/report", &app.admin()).expect(200);
    assert_eq!(rating(&p.body["headline"]["open"]), [1, 1, 1, 1]);
    assert_eq!(p.body["systems"].as_array().map(Vec::len), Some(2));
    // Systems with different policies: no single deadline.
    assert_eq!(p.body["time_to_close"][1]["deadline_days"], Value::Null);

    // Technical: every open item, a chosen period.
    let tech = app
        .get(
            &format!(
                "/v1/systems/{sid}/report?format=json&level=technical&from={}&to={}",
                days(-7),
                days(0)
            ),
            &app.admin(),
        )
        .expect(200);
    assert_eq!(tech.body["level"], "technical");
    assert_eq!(tech.body["burn_down"].as_array().map(Vec::len), Some(8));
    assert_eq!(tech.body["items"].as_array().map(Vec::len), Some(3));
}
both!(report_figures_match_a_hand_computed_fixture);

fn report_formats_escaping_and_parameters(app: &TestApp) {
    let (sid, _) = seeded(app);
    let admin = app.admin();
    // Accept: text/html gives the page; `format` wins over Accept.
    let html = app.request(
        "GET",
        &format!("/v1/systems/{sid}/report"),
        Some(&admin),
        &[("Accept", "text/html,application/xhtml+xml")],
        None,
    );
    assert_eq!(html.status, 200);
    assert!(html
        .header("content-type")
        .is_some_and(|c| c.starts_with("text/html")));
    assert!(html
        .header("content-security-policy")
        .is_some_and(|c| c.contains("default-src 'none'") && !c.contains("script-src")));
    let page = html.body.as_str().unwrap_or_default().to_owned();
    assert!(
        page.contains("Banner shows &lt;script&gt;alert(1)&lt;/script&gt;")
            || page.contains("Banner shows &#60;script&#62;alert(1)&#60;/script&#62;"),
        "the title escaped"
    );
    assert!(!page.contains("<script"), "no script at all");
    assert!(
        !page.contains(" src=") && !page.contains(" href=") && !page.contains("https://"),
        "no external reference"
    );
    for id in [
        "c-open", "c-burn", "c-aging", "c-slip", "c-close", "c-res", "c-road",
    ] {
        assert!(
            page.contains(&format!("<title id=\"{id}-t\">")),
            "chart {id}"
        );
    }
    assert!(page.contains("@media print"));
    assert!(page.contains("<details"));
    let json = app.request(
        "GET",
        &format!("/v1/systems/{sid}/report?format=json"),
        Some(&admin),
        &[("Accept", "text/html")],
        None,
    );
    assert_eq!(json.status, 200);
    assert!(json.body.is_object());
    let default = app
        .get(&format!("/v1/systems/{sid}/report"), &admin)
        .expect(200);
    assert!(default.body.is_object(), "JSON without Accept: text/html");
    let tech = app.request(
        "GET",
        &format!("/v1/systems/{sid}/report?format=html&level=technical"),
        Some(&admin),
        &[],
        None,
    );
    assert_eq!(tech.status, 200);
    let tech = tech.body.as_str().unwrap_or_default().to_owned();
    assert!(tech.contains("Rotate and vault the credential."));
    assert!(
        tech.contains("Technical POA&amp;M report") || tech.contains("Technical POA&#38;M report")
    );
    // Bad parameters.
    app.get(
        &format!("/v1/systems/{sid}/report?from={}&to={}", days(0), days(-1)),
        &admin,
    )
    .problem(400, "invalid_query");
    app.get(
        &format!("/v1/systems/{sid}/report?level=everything"),
        &admin,
    )
    .problem(400, "invalid_query");
    app.get(&format!("/v1/systems/{sid}/report?colour=red"), &admin)
        .problem(400, "invalid_query");
    app.get(&format!("/v1/systems/{sid}/report?from=2000-01-01"), &admin)
        .problem(400, "invalid_query");
}
both!(report_formats_escaping_and_parameters);

fn report_is_read_with_the_viewer_role_and_scoped(app: &TestApp) {
    let sid = app.system("Mine");
    let other = app.system("Theirs");
    app.item(&sid, json!({})).expect(201);
    app.item(&other, json!({"risk_rating": "critical"}))
        .expect(201);
    let sys: SystemId = sid.parse().unwrap_or_default();
    let viewer = app.token(&[Role::Viewer], &[sys]);
    let r = app
        .get(&format!("/v1/systems/{sid}/report?format=json"), &viewer)
        .expect(200);
    assert_eq!(r.body["headline"]["open_total"], 1);
    app.get(&format!("/v1/systems/{other}/report"), &viewer)
        .problem(404, "not_found");
    // The portfolio sees only the token's systems.
    let p = app.get("/v1/report?format=json", &viewer).expect(200);
    assert_eq!(p.body["systems"].as_array().map(Vec::len), Some(1));
    assert_eq!(p.body["headline"]["open"]["critical"], 0);
    // Unauthenticated.
    let anon = app.request("GET", &format!("/v1/systems/{sid}/report"), None, &[], None);
    assert_eq!(anon.status, 401);
    let anon = app.request("GET", "/v1/report", None, &[], None);
    assert_eq!(anon.status, 401);
    // An empty system and an empty portfolio answer, charts and all.
    let empty = app.system("Empty");
    let e = app
        .get(
            &format!("/v1/systems/{empty}/report?format=json"),
            &app.admin(),
        )
        .expect(200);
    assert_eq!(e.body["headline"]["open_total"], 0);
    let (status, _, body) = app.get_bytes(
        &format!("/v1/systems/{empty}/report?format=html&level=technical"),
        &app.admin(),
    );
    assert_eq!(status, 200);
    assert!(String::from_utf8_lossy(&body).contains("No open milestone"));
    let nobody = app.token(&[Role::Viewer], &[SystemId::new()]);
    app.get("/v1/report?format=html", &nobody).expect(200);
}
both!(report_is_read_with_the_viewer_role_and_scoped);

/// The page in a real browser: headless Chromium renders the saved page with no console error,
/// every chart's SVG is there and drawn, the `<script>` title is text, and it prints to PDF.
/// With `POAM_REPORT_SCREENSHOTS=1` it writes the screenshots the README shows to `docs/`.
#[test]
fn report_renders_in_a_real_browser() {
    let Some(browser) = ["chromium", "chromium-browser", "google-chrome"]
        .into_iter()
        .find(|b| {
            std::process::Command::new(b)
                .arg("--version")
                .output()
                .is_ok_and(|o| o.status.success())
        })
    else {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "CI needs chromium for the report check (apt-get install chromium)"
        );
        eprintln!("skipped: no chromium (apt-get install chromium)");
        return;
    };
    let Some(app) = TestApp::spawn(Backend::Sqlite) else {
        return;
    };
    let (sid, _) = seeded(&app);
    let dir = std::env::temp_dir().join(format!("poam-report-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap_or_default();
    let docs = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs");
    for level in ["executive", "technical"] {
        let (status, _, body) = app.get_bytes(
            &format!("/v1/systems/{sid}/report?format=html&level={level}"),
            &app.admin(),
        );
        assert_eq!(status, 200);
        let file = dir.join(format!("{level}.html"));
        std::fs::write(&file, &body).unwrap_or_else(|e| panic!("{e}"));
        let run = |extra: &[String]| {
            let profile = dir.join(format!("profile-{}", uuid::Uuid::new_v4()));
            let out = std::process::Command::new(browser)
                .args([
                    "--headless",
                    "--no-sandbox",
                    "--disable-gpu",
                    "--disable-dev-shm-usage",
                    "--no-first-run",
                    "--hide-scrollbars",
                    "--enable-logging=stderr",
                    "--v=0",
                ])
                .arg(format!("--user-data-dir={}", profile.display()))
                .args(extra)
                .arg(format!("file://{}", file.display()))
                .output()
                .unwrap_or_else(|e| panic!("{browser}: {e}"));
            let _ = std::fs::remove_dir_all(&profile);
            out
        };
        let dom = run(&["--dump-dom".to_owned()]);
        let text = String::from_utf8_lossy(&dom.stdout).into_owned();
        let log = String::from_utf8_lossy(&dom.stderr).into_owned();
        assert!(
            !log.lines().any(|l| l.contains("CONSOLE")),
            "console messages:\n{log}"
        );
        // Every chart: an <svg> with drawn content (rect, polyline or text) after its title.
        for id in [
            "c-open", "c-burn", "c-aging", "c-slip", "c-close", "c-res", "c-road",
        ] {
            let at = text
                .find(&format!("aria-labelledby=\"{id}-t"))
                .unwrap_or_else(|| panic!("chart {id} missing from the rendered page"));
            let chart = &text[at..];
            let end = chart.find("</svg>").unwrap_or(chart.len());
            let chart = &chart[..end];
            assert!(
                chart.contains("<rect") || chart.contains("<polyline"),
                "chart {id} is empty"
            );
        }
        assert!(text.contains("Banner shows &lt;script&gt;alert(1)&lt;/script&gt;"));
        assert!(!text.contains("<script>alert(1)"));
        let shot = dir.join(format!("{level}.png"));
        let out = run(&[
            "--window-size=1000,2600".to_owned(),
            format!("--screenshot={}", shot.display()),
        ]);
        let png = std::fs::read(&shot).unwrap_or_default();
        assert!(
            png.starts_with(b"\x89PNG") && png.len() > 10_000,
            "no screenshot: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let pdf = dir.join(format!("{level}.pdf"));
        run(&[
            "--no-pdf-header-footer".to_owned(),
            format!("--print-to-pdf={}", pdf.display()),
        ]);
        let pdf_bytes = std::fs::read(&pdf).unwrap_or_default();
        assert!(pdf_bytes.starts_with(b"%PDF"), "no PDF");
        if std::env::var("POAM_REPORT_SCREENSHOTS").as_deref() == Ok("1") && docs.is_dir() {
            let _ = std::fs::write(docs.join(format!("report-{level}.png")), &png);
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}
