//! Shared OpenAPI fragments: the problem responses each kind of operation can give, and the
//! merge-patch request schemas derived from the write schemas.

use crate::problem::Problem;
use std::borrow::Cow;
use std::collections::BTreeMap;
use utoipa::openapi::schema::Schema;
use utoipa::openapi::{Content, RefOr, Response, ResponseBuilder};
use utoipa::{IntoResponses, PartialSchema, ToSchema};

fn problem(description: &str) -> RefOr<Response> {
    ResponseBuilder::new()
        .description(description)
        .content(
            crate::problem::PROBLEM_JSON,
            Content::new(Some(
                utoipa::openapi::Ref::from_schema_name(Problem::name()),
            )),
        )
        .build()
        .into()
}

fn responses(list: &[(&str, &str)]) -> BTreeMap<String, RefOr<Response>> {
    list.iter()
        .map(|(s, d)| (s.to_string(), problem(d)))
        .collect()
}

const UNAUTHORIZED: (&str, &str) = ("401", "Missing, malformed, expired or wrongly signed bearer token (`missing_token`, `invalid_token`, `token_expired`, `token_not_yet_valid`).");
const NOT_FOUND: (&str, &str) = (
    "404",
    "No such resource, or one outside the systems of the token (`not_found`).",
);
const OTHER_4XX: (&str, &str) = ("4XX", "Any other client error, as a problem document.");
const SERVER: (&str, &str) = ("5XX", "`service_unavailable` (503: the database is unreachable or busy; retry) or `internal_error` (500: the cause is in the log under the `x-request-id` of the response).");

/// A spreadsheet workbook (`.xlsx`), as the raw body of a request or response (documentation
/// of the wire shape: a binary string, not an array of numbers).
#[derive(ToSchema)]
#[schema(value_type = String, format = Binary)]
pub struct Workbook(pub Vec<u8>);

/// A file's raw bytes, as the body of a response (a binary string: generated clients hand it
/// over as bytes or a `Blob`).
#[derive(ToSchema)]
#[schema(value_type = String, format = Binary)]
pub struct Binary(pub Vec<u8>);

/// A JSON object whose members another specification defines (named where it is used): any
/// members.
#[derive(ToSchema)]
#[schema(value_type = std::collections::HashMap<String, serde_json::Value>)]
pub struct JsonObject(pub serde_json::Map<String, serde_json::Value>);

/// An OSCAL POA&M document (NIST OSCAL 1.1.2 or 1.2.1, `plan-of-action-and-milestones` model):
/// its top level; NIST's JSON schema of the version is the full definition.
#[derive(serde::Serialize, ToSchema)]
#[allow(dead_code)]
pub struct OscalPoamDocument {
    #[serde(rename = "plan-of-action-and-milestones")]
    plan_of_action_and_milestones: OscalPoam,
}

/// The OSCAL `plan-of-action-and-milestones` assembly.
#[derive(serde::Serialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
#[allow(dead_code)]
pub struct OscalPoam {
    uuid: uuid::Uuid,
    metadata: OscalMetadata,
    /// `href` of the system security plan.
    #[schema(value_type = Option<std::collections::HashMap<String, serde_json::Value>>)]
    import_ssp: Option<()>,
    /// `{"identifier-type": …, "id": …}`.
    #[schema(value_type = Option<std::collections::HashMap<String, serde_json::Value>>)]
    system_id: Option<()>,
    #[schema(value_type = Option<std::collections::HashMap<String, serde_json::Value>>)]
    local_definitions: Option<()>,
    #[schema(value_type = Option<Vec<std::collections::HashMap<String, serde_json::Value>>>)]
    observations: Option<()>,
    #[schema(value_type = Option<Vec<std::collections::HashMap<String, serde_json::Value>>>)]
    risks: Option<()>,
    #[schema(value_type = Option<Vec<std::collections::HashMap<String, serde_json::Value>>>)]
    findings: Option<()>,
    poam_items: Vec<OscalPoamItem>,
    #[schema(value_type = Option<std::collections::HashMap<String, serde_json::Value>>)]
    back_matter: Option<()>,
}

/// OSCAL document metadata (its other members, `parties`, `roles`, `props`, …, as OSCAL
/// defines them).
#[derive(serde::Serialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
#[allow(dead_code)]
pub struct OscalMetadata {
    title: String,
    #[schema(value_type = String, format = DateTime)]
    last_modified: String,
    version: String,
    #[schema(example = "1.1.2")]
    oscal_version: String,
    #[schema(value_type = Option<Vec<std::collections::HashMap<String, serde_json::Value>>>)]
    props: Option<()>,
    #[schema(value_type = Option<Vec<std::collections::HashMap<String, serde_json::Value>>>)]
    parties: Option<()>,
    #[schema(value_type = Option<Vec<std::collections::HashMap<String, serde_json::Value>>>)]
    roles: Option<()>,
    #[schema(value_type = Option<Vec<std::collections::HashMap<String, serde_json::Value>>>)]
    responsible_parties: Option<()>,
}

/// One OSCAL `poam-item`.
#[derive(serde::Serialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
#[allow(dead_code)]
pub struct OscalPoamItem {
    uuid: Option<uuid::Uuid>,
    title: String,
    description: String,
    #[schema(value_type = Option<Vec<std::collections::HashMap<String, serde_json::Value>>>)]
    props: Option<()>,
    #[schema(value_type = Option<Vec<std::collections::HashMap<String, serde_json::Value>>>)]
    links: Option<()>,
    #[schema(value_type = Option<Vec<std::collections::HashMap<String, serde_json::Value>>>)]
    origins: Option<()>,
    #[schema(value_type = Option<Vec<std::collections::HashMap<String, serde_json::Value>>>)]
    related_findings: Option<()>,
    #[schema(value_type = Option<Vec<std::collections::HashMap<String, serde_json::Value>>>)]
    related_observations: Option<()>,
    #[schema(value_type = Option<Vec<std::collections::HashMap<String, serde_json::Value>>>)]
    related_risks: Option<()>,
    remarks: Option<String>,
}

/// Problems of a read by id.
pub struct ReadProblems;
impl IntoResponses for ReadProblems {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        responses(&[UNAUTHORIZED, NOT_FOUND, OTHER_4XX, SERVER])
    }
}

/// Problems of a list.
pub struct ListProblems;
impl IntoResponses for ListProblems {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        responses(&[
            ("400", "A query parameter is unknown or invalid, or the cursor belongs to another list (`invalid_query`, `invalid_cursor`)."),
            UNAUTHORIZED,
            NOT_FOUND,
            OTHER_4XX,
            SERVER,
        ])
    }
}

/// Problems of a create, update or archive.
pub struct WriteProblems;
impl IntoResponses for WriteProblems {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        responses(&[
            ("400", "The body is not valid JSON (`malformed_json`), or `If-Match` is not an entity tag (`invalid_if_match`)."),
            UNAUTHORIZED,
            ("403", "The token's roles do not allow this write (`forbidden`)."),
            NOT_FOUND,
            ("409", "The write conflicts with the current state: `external_id_taken`, `archived`."),
            ("412", "`If-Match` does not name the current version (`precondition_failed`)."),
            ("413", "The body is larger than the limit (`payload_too_large`)."),
            ("415", "The body is not JSON (`unsupported_media_type`)."),
            ("422", "The body breaks a rule: each entry of `errors` points at a field (`validation_failed`)."),
            OTHER_4XX,
            SERVER,
        ])
    }
}

/// The component a property refers to (`$ref`, or one of a `oneOf` such as `[null, $ref]`).
fn referenced(property: &RefOr<Schema>) -> Option<String> {
    let name = |r: &utoipa::openapi::Ref| {
        r.ref_location
            .strip_prefix("#/components/schemas/")
            .map(str::to_owned)
    };
    match property {
        RefOr::Ref(r) => name(r),
        RefOr::T(Schema::OneOf(o)) => o.items.iter().find_map(|i| match i {
            RefOr::Ref(r) => name(r),
            _ => None,
        }),
        RefOr::T(Schema::AllOf(o)) => o.items.iter().find_map(|i| match i {
            RefOr::Ref(r) => name(r),
            _ => None,
        }),
        _ => None,
    }
}

/// The suffix of the patch variant of a component: `Person` → `PersonPatch`.
pub const PATCH: &str = "Patch";

/// A nested object in a merge patch: the patch variant of its schema (any subset of its fields,
/// each nullable), or `null` to clear it. The variant (`<Name>Patch`) is added to the
/// components by [`document_patches`].
fn nested_patch(property: RefOr<Schema>, description: &str) -> RefOr<Schema> {
    use utoipa::openapi::schema::{OneOfBuilder, Type};
    match referenced(&property) {
        Some(name) => RefOr::T(Schema::OneOf(
            OneOfBuilder::new()
                .item(utoipa::openapi::Ref::from_schema_name(format!(
                    "{name}{PATCH}"
                )))
                .item(utoipa::openapi::ObjectBuilder::new().schema_type(Type::Null))
                .description(Some(description))
                .build(),
        )),
        None => nullable(property),
    }
}

/// `property`, accepting `null` too.
fn nullable(property: RefOr<Schema>) -> RefOr<Schema> {
    use utoipa::openapi::schema::{OneOfBuilder, SchemaType, Type};
    let add_null = |t: &SchemaType| match t {
        SchemaType::Type(x) if *x != Type::Null => SchemaType::from_iter([x.clone(), Type::Null]),
        SchemaType::Array(v) if !v.contains(&Type::Null) => {
            SchemaType::from_iter(v.iter().cloned().chain([Type::Null]))
        }
        other => other.clone(),
    };
    match property {
        RefOr::T(Schema::Object(mut o)) => {
            if !matches!(o.schema_type, SchemaType::AnyValue) {
                o.schema_type = add_null(&o.schema_type);
            }
            RefOr::T(Schema::Object(o))
        }
        RefOr::T(Schema::Array(mut a)) => {
            a.schema_type = add_null(&a.schema_type);
            RefOr::T(Schema::Array(a))
        }
        RefOr::T(Schema::OneOf(mut o)) => {
            let has_null = o.items.iter().any(|i| {
                matches!(i, RefOr::T(Schema::Object(x)) if x.schema_type == SchemaType::Type(Type::Null))
            });
            if !has_null {
                o.items.insert(
                    0,
                    utoipa::openapi::ObjectBuilder::new()
                        .schema_type(Type::Null)
                        .into(),
                );
            }
            RefOr::T(Schema::OneOf(o))
        }
        other => RefOr::T(Schema::OneOf(
            OneOfBuilder::new()
                .item(utoipa::openapi::ObjectBuilder::new().schema_type(Type::Null))
                .item(other)
                .build(),
        )),
    }
}

/// Turns a write schema into its merge-patch schema: nothing is required, nested objects may be
/// partial (or `null`), lists may be `null` (which resets them).
fn optional_fields(schema: RefOr<Schema>, title: &str, objects: &[&str]) -> RefOr<Schema> {
    use utoipa::openapi::schema::{SchemaType, Type};
    match schema {
        RefOr::T(Schema::Object(mut o)) => {
            o.required.clear();
            for (name, property) in o.properties.iter_mut() {
                if objects.contains(&format!("/{name}").as_str()) {
                    *property = nested_patch(
                        property.clone(),
                        &format!(
                            "A merge patch of `{name}`: the fields to change, or null to clear it."
                        ),
                    );
                } else if let RefOr::T(Schema::Array(a)) = property {
                    a.schema_type = SchemaType::from_iter([Type::Array, Type::Null]);
                }
            }
            o.title = Some(title.to_owned());
            o.description = Some(
                "A JSON merge patch (RFC 7396): the fields to change; `null` clears a field. \
                 The result is validated as a whole, as on create."
                    .to_owned(),
            );
            RefOr::T(Schema::Object(o))
        }
        other => other,
    }
}

/// Adds the patch variant (`<Name>Patch`) of every component a patch schema refers to: the
/// component's fields, none required, each nullable; its own nested objects patch variants too.
pub fn document_patches(openapi: &mut utoipa::openapi::OpenApi) {
    let Some(components) = openapi.components.as_mut() else {
        return;
    };
    loop {
        let mut wanted: Vec<String> = Vec::new();
        let mut collect = |schema: &RefOr<Schema>| {
            let mut stack = vec![schema];
            while let Some(s) = stack.pop() {
                match s {
                    RefOr::Ref(r) => {
                        if let Some(name) = r.ref_location.strip_prefix("#/components/schemas/") {
                            wanted.push(name.to_owned());
                        }
                    }
                    RefOr::T(Schema::Object(o)) => stack.extend(o.properties.values()),
                    RefOr::T(Schema::OneOf(o)) => stack.extend(o.items.iter()),
                    RefOr::T(Schema::AllOf(o)) => stack.extend(o.items.iter()),
                    RefOr::T(Schema::AnyOf(o)) => stack.extend(o.items.iter()),
                    _ => {}
                }
            }
        };
        components.schemas.values().for_each(&mut collect);
        let missing: Vec<(String, String)> = wanted
            .into_iter()
            .filter(|n| !components.schemas.contains_key(n))
            .filter_map(|n| {
                let base = n.strip_suffix(PATCH)?.to_owned();
                components.schemas.contains_key(&base).then_some((n, base))
            })
            .collect();
        if missing.is_empty() {
            return;
        }
        for (name, base) in missing {
            let Some(RefOr::T(Schema::Object(mut o))) = components.schemas.get(&base).cloned()
            else {
                // Not an object: the patch of it is the value itself.
                let same = utoipa::openapi::Ref::from_schema_name(base.clone());
                components.schemas.insert(name, RefOr::Ref(same));
                continue;
            };
            o.required.clear();
            let objects: Vec<String> = o
                .properties
                .iter()
                .filter(|(_, p)| {
                    referenced(p).is_some_and(|r| {
                        matches!(components.schemas.get(&r), Some(RefOr::T(Schema::Object(x))) if !x.properties.is_empty())
                    })
                })
                .map(|(k, _)| k.clone())
                .collect();
            for (field, property) in o.properties.iter_mut() {
                *property = if objects.contains(field) {
                    nested_patch(
                        property.clone(),
                        &format!("A merge patch of `{field}`, or null to clear it."),
                    )
                } else {
                    nullable(property.clone())
                };
            }
            o.title = Some(name.clone());
            o.description = Some(format!(
                "A merge patch (RFC 7396) of a `{base}`: the fields to change; `null` clears a field."
            ));
            components.schemas.insert(name, RefOr::T(Schema::Object(o)));
        }
    }
}

macro_rules! patch_schema {
    ($name:ident, $write:ty) => {
        /// The merge-patch body for the resource.
        pub struct $name;
        impl PartialSchema for $name {
            fn schema() -> RefOr<Schema> {
                optional_fields(
                    <$write as PartialSchema>::schema(),
                    stringify!($name),
                    <$write as crate::input::ObjectMembers>::OBJECTS,
                )
            }
        }
        impl ToSchema for $name {
            fn name() -> Cow<'static, str> {
                Cow::Borrowed(stringify!($name))
            }
            fn schemas(schemas: &mut Vec<(String, RefOr<Schema>)>) {
                <$write as ToSchema>::schemas(schemas)
            }
        }
    };
}

patch_schema!(ItemPatch, poam_domain::ItemFields);
patch_schema!(SystemPatch, poam_domain::SystemFields);
