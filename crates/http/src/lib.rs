//! The only room that knows HTTP: wire handling (strict JSON, limits, merge patch), the bearer
//! extractor and roles, problem+json, the route table and the OpenAPI document.

pub mod app;
pub mod auth;
pub mod background;
pub mod claims_map;
pub mod delivery;
pub mod emass_xlsx;
pub mod idempotency;
pub mod input;
pub mod item_cache;
pub mod jwks;
pub mod problem;
pub mod protection;
mod render;
pub mod routes;
pub mod state;
pub mod telemetry;
pub mod xlsx;

pub use app::{app, bundle_schema, openapi};
pub use auth::{Actor, Authenticator, TokenIssuer};
pub use state::AppState;
