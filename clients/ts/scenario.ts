// A realistic integration written against the types openapi-typescript generates from
// openapi/openapi.json (target/clients/ts/schema.d.ts, imported as "poam-api") and the
// openapi-fetch client: a system, items, a milestone, evidence with a digest, an item taken to
// closed, a multi-value filter, the history, every export format, a bulk upsert, the validation
// dry run and typed problems. Compiled by tsc --strict; no `as`, no `any`.
//
// Environment: POAM_URL, POAM_ADMIN_TOKEN (role admin), POAM_APPROVER_TOKEN (role approver).

import { createHash } from "node:crypto";
import createClient from "openapi-fetch";
import type { components, paths } from "poam-api";

type Schemas = components["schemas"];
type Problem = Schemas["Problem"];
type ItemWrite = Schemas["ItemWrite"];
type ItemPatch = Schemas["ItemPatch"];

function env(name: string): string {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set`);
  return value;
}

const baseUrl = env("POAM_URL");
const admin = createClient<paths>({ baseUrl, headers: { Authorization: `Bearer ${env("POAM_ADMIN_TOKEN")}` } });
const approver = createClient<paths>({ baseUrl, headers: { Authorization: `Bearer ${env("POAM_APPROVER_TOKEN")}` } });
const today = new Date().toISOString().slice(0, 10);
const daysFromNow = (n: number): string => new Date(Date.now() + n * 86_400_000).toISOString().slice(0, 10);

/** The typed success of a call, or a failure that shows the typed problem. */
function ok<T>(what: string, r: { data?: T; error?: Problem; response: Response }): T {
  if (r.data !== undefined) return r.data;
  const p = r.error;
  throw new Error(`${what}: ${r.response.status} ${p ? `${p.code}: ${p.detail}` : "(no problem document)"}`);
}

/** The typed problem of a call that must fail. */
function problem(what: string, r: { data?: unknown; error?: Problem; response: Response }, status: number, code: string): Problem {
  if (r.error === undefined) throw new Error(`${what}: expected ${status} ${code}, got ${r.response.status}`);
  if (r.error.status !== status || r.error.code !== code) {
    throw new Error(`${what}: expected ${status} ${code}, got ${r.error.status} ${r.error.code}`);
  }
  return r.error;
}

function check(condition: boolean, message: string): void {
  if (!condition) throw new Error(message);
}

function step(what: string): void {
  console.log(`  ts: ${what}`);
}

function finding(title: string, externalId: string): ItemWrite {
  return {
    title,
    description: `${title}, found by the weekly scan.`,
    source: { kind: "scan", detector: "Nessus", identifier: externalId },
    risk_rating: "moderate",
    detected_on: daysFromNow(-3),
    external_id: externalId,
    controls: ["SC-8(1)"],
    assets: ["lb-prod-1.example.org"],
  };
}

async function main(): Promise<void> {
  step("create a system");
  const system = ok("create system", await admin.POST("/v1/systems", {
    body: { name: "TypeScript client scenario", regime: "fedramp", organization: "CI" },
  }));
  const system_id = system.id;

  step("create items and a milestone");
  const create = async (item: ItemWrite) =>
    await admin.POST("/v1/systems/{system_id}/items", { params: { path: { system_id } }, body: item });
  const tls = ok("item", await create(finding("TLS 1.0 on the load balancer", "ts-1")));
  const kept = ok("item", await create(finding("Banner discloses version", "ts-2")));
  check(tls.status === "open" && tls.display_id.length > 0, `new item: ${tls.status}`);
  const milestone = ok("milestone", await admin.POST("/v1/items/{item_id}/milestones", {
    params: { path: { item_id: tls.id } },
    body: { title: "Disable TLS 1.0", due_on: daysFromNow(30) },
  }));

  step("a typed 422: an item without a title");
  const invalid = problem("invalid item", await create(finding("", "ts-invalid")), 422, "validation_failed");
  check(invalid.errors?.[0]?.pointer === "/title", `pointer: ${JSON.stringify(invalid.errors)}`);

  step("upload evidence with the file's SHA-256, and download it");
  const content = "Nessus rescan of lb-prod-1: TLS 1.2+ only \u2713\n";
  const bytes = new TextEncoder().encode(content);
  const sha256 = createHash("sha256").update(bytes).digest("hex");
  const upload = async (digest: string) =>
    await admin.POST("/v1/items/{item_id}/evidence", {
      params: { path: { item_id: tls.id } },
      // openapi-typescript types a `format: binary` part as string: the file's text here.
      body: { file: content, title: "Rescan after the fix", kind: "scan_report", milestone_id: milestone.id, collected_on: today, sha256: digest },
      bodySerializer(body) {
        const form = new FormData();
        form.append("title", body.title);
        form.append("kind", body.kind);
        if (body.milestone_id) form.append("milestone_id", body.milestone_id);
        if (body.collected_on) form.append("collected_on", body.collected_on);
        if (body.sha256) form.append("sha256", body.sha256);
        form.append("file", new Blob([body.file], { type: "text/plain" }), "rescan.txt");
        return form;
      },
    });
  problem("upload with a wrong digest", await upload("0".repeat(64)), 400, "digest_mismatch");
  const evidence = ok("upload", await upload(sha256));
  check(evidence.size === bytes.length && evidence.media_type.startsWith("text/plain"), `evidence: ${JSON.stringify(evidence)}`);
  const downloaded = ok("download", await admin.GET("/v1/evidence/{evidence_id}/content", {
    params: { path: { evidence_id: evidence.id } },
    parseAs: "arrayBuffer",
  }));
  check(Buffer.from(downloaded).equals(Buffer.from(bytes)), "the downloaded bytes differ");

  step("open -> in_progress -> completed -> closure review (approver) -> closed");
  ok("complete the milestone", await admin.POST("/v1/milestones/{milestone_id}/complete", {
    params: { path: { milestone_id: milestone.id } },
  }));
  const transition = async (client: typeof admin, body: Schemas["TransitionBody"]) =>
    ok(`to ${body.to}`, await client.POST("/v1/items/{item_id}/transitions", { params: { path: { item_id: tls.id } }, body }));
  await transition(admin, { to: "in_progress" });
  await transition(admin, { to: "completed", comment: "Patched and rescanned.", completed_on: today });
  ok("closure verification", await approver.POST("/v1/items/{item_id}/reviews", {
    params: { path: { item_id: tls.id } },
    body: { kind: "closure_verification", decision: "approved", requested_by: "ci-client" },
  }));
  const closed = await transition(approver, { to: "closed" });
  check(closed.status === "closed" && closed.closed_on === today, `closed: ${closed.status} ${closed.closed_on}`);

  step("list with a multi-value filter (status=open&status=closed)");
  const page = ok("list", await admin.GET("/v1/systems/{system_id}/items", {
    params: { path: { system_id }, query: { status: ["open", "closed"] } },
  }));
  const got = page.items.map((i) => `${i.id}:${i.status}`).sort();
  const want = [`${tls.id}:closed`, `${kept.id}:open`].sort();
  check(JSON.stringify(got) === JSON.stringify(want), `listed ${got.join(", ")}`);

  step("read the item's history");
  const history = ok("history", await admin.GET("/v1/items/{item_id}/history", { params: { path: { item_id: tls.id } } }));
  check(history.items.length >= 5, `history: ${history.items.map((e) => e.action).join(", ")}`);
  check(history.items.every((e, i, all) => i === 0 || (all[i - 1]?.seq ?? 0) < e.seq), "history out of order");

  step("export: json (typed bundle), oscal (typed document), emass dry run (typed)");
  // One operation per format, each with one media type: the answers are typed as they are.
  const params = { params: { path: { system_id } } };
  const json = ok("json", await admin.GET("/v1/systems/{system_id}/exports/json", params));
  check(json.items.length === 2 && json.system.id === system_id, "json bundle");
  const oscal = ok("oscal", await admin.GET("/v1/systems/{system_id}/exports/oscal", params));
  check(oscal["plan-of-action-and-milestones"]["poam-items"].length === 2, "oscal document");
  const dry = ok("emass dry run", await admin.GET("/v1/systems/{system_id}/exports/emass-dry-run", params));
  check(dry.items === 2, "emass dry run");

  step("export: fedramp, emass and nisp csv (text)");
  const csvs: [string, string][] = [
    ["fedramp csv", ok("fedramp csv", await admin.GET("/v1/systems/{system_id}/exports/fedramp-csv", { ...params, parseAs: "text" }))],
    ["emass csv", ok("emass csv", await admin.GET("/v1/systems/{system_id}/exports/emass-csv", { ...params, parseAs: "text" }))],
    ["nisp csv", ok("nisp csv", await admin.GET("/v1/systems/{system_id}/exports/nisp-csv", { ...params, parseAs: "text" }))],
  ];
  for (const [what, csv] of csvs) check(csv.includes("Banner discloses version"), `${what} lacks the open item`);

  const workbook = (what: string, r: { data?: ArrayBuffer; error?: Problem; response: Response }): void => {
    step(`export: ${what} (bytes)`);
    const bytes = new Uint8Array(ok(what, r));
    check(bytes[0] === 0x50 && bytes[1] === 0x4b && bytes.length > 1000, `${what}: not a zip`);
    check(r.response.headers.get("content-type")?.startsWith("application/vnd.openxmlformats") ?? false, `${what}: media type`);
  };
  workbook("fedramp xlsx", await admin.GET("/v1/systems/{system_id}/exports/fedramp-xlsx", { ...params, parseAs: "arrayBuffer" }));
  workbook("emass xlsx", await admin.GET("/v1/systems/{system_id}/exports/emass-xlsx", { ...params, parseAs: "arrayBuffer" }));
  workbook("nisp xlsx", await admin.GET("/v1/systems/{system_id}/exports/nisp-xlsx", { ...params, parseAs: "arrayBuffer" }));

  step("bulk upsert: two created, then the same two unchanged, one invalid element");
  const scanRow = (n: number, title: string): ItemPatch => ({
    external_id: `ts-bulk-${n}`,
    title,
    description: "From the nightly scan.",
    source: { kind: "scan", detector: "Nessus", identifier: String(104000 + n) },
    risk_rating: "low",
    detected_on: today,
  });
  const rows = [scanRow(1, "Weak SSH MACs"), scanRow(2, "Self-signed certificate")];
  const bulk = async (items: ItemPatch[]) =>
    ok("bulk", await admin.POST("/v1/systems/{system_id}/items/bulk", { params: { path: { system_id } }, body: { items } }));
  const first = await bulk(rows);
  check(first.summary.created === 2 && first.summary.failed === 0, `bulk: ${JSON.stringify(first.summary)}`);
  const again = await bulk([...rows, scanRow(3, "")]);
  check(JSON.stringify(again.results.map((r) => r.status)) === JSON.stringify(["unchanged", "unchanged", "failed"]), "bulk again");
  check(again.results[2]?.problem?.errors?.[0]?.pointer === "/title", "bulk: the invalid element's pointer");

  step("validation dry run: a High with an operational requirement breaks a FedRAMP rule");
  const proposed: ItemWrite = {
    ...finding("Proposed: SMBv1 enabled", "ts-proposed"),
    risk_rating: "high",
    deviation: { kind: "operational_requirement", rationale: "Legacy printers." },
  };
  const findings = ok("validate", await admin.POST("/v1/items/validate", { body: { system_id, item: proposed } }));
  check(findings.findings.some((f) => f.rule === "fedramp.operational_requirement_on_high"
    && f.severity === "error" && f.pointer === "/item/deviation/kind"), `findings: ${JSON.stringify(findings.findings)}`);
  const after = ok("list", await admin.GET("/v1/systems/{system_id}/items", {
    params: { path: { system_id }, query: { external_id: "ts-proposed" } },
  }));
  check(after.items.length === 0, "the dry run stored an item");

  console.log("ts scenario: ok");
}

main().catch((e: unknown) => {
  console.error(`ts scenario failed: ${e instanceof Error ? e.message : String(e)}`);
  process.exit(1);
});
