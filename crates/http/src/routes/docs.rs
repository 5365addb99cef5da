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

/// A nested object in a merge patch: any subset of its fields, or `null` to clear it.
fn nested_patch(description: &str) -> RefOr<Schema> {
    use utoipa::openapi::schema::{ObjectBuilder, SchemaType, Type};
    RefOr::T(Schema::Object(
        ObjectBuilder::new()
            .schema_type(SchemaType::from_iter([Type::Object, Type::Null]))
            .description(Some(description))
            .build(),
    ))
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
                    *property = nested_patch(&format!(
                        "A merge patch of `{name}`: the fields to change, or null to clear it."
                    ));
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
