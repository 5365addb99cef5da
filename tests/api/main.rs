//! Integration tests: the real server over HTTP, on SQLite and on PostgreSQL. One binary, to
//! keep link time down.

mod harness;

mod auth;
mod backup;
mod cli;
mod cmmc;
mod deadlines;
mod errors;
mod evidence_crypto;
mod exchange;
mod faults;
mod history;
mod idempotency;
mod idp;
mod items;
mod limits;
mod lists;
mod matrix;
mod metrics;
mod observability;
mod oscal;
mod plan;
mod protection;
mod push;
mod reminders;
mod report;
mod rules;
mod scans;
mod schema;
mod sheets_emass;
mod sheets_import;
mod sheets_out;
mod systems;
mod tls;
mod validation;
mod vdr;
mod webhooks;
mod workflow;
