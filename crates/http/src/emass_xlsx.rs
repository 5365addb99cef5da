//! The eMASS POA&M template out (`format=emass`, and `format=emass&as=csv`): the workbook eMASS
//! imports, laid out on the shared writer ([`crate::xlsx::Book`]: constant memory, spooled);
//! the same columns as CSV; and the dry run that lists what eMASS would refuse. The mapping
//! and the rules are the domain's (`poam_domain::exchange::emass`).

use crate::xlsx::{BlockCell, Book};
use poam_domain::exchange::emass::{self, Exported, Field, Status, Variant};
use poam_domain::exchange::sheet::{self, Cell};
use poam_domain::exchange::ItemRecord;
use poam_domain::profiles::Finding;
use poam_domain::System;
use poam_persistence::StoreError;
use serde::Serialize;
use std::io::Write;
use utoipa::ToSchema;

/// The response header with the number of items eMASS would refuse.
pub const REFUSALS_HEADER: &str = "poam-emass-refusals";

/// An item eMASS would refuse, and why.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Refusal {
    pub item_id: uuid::Uuid,
    #[schema(example = "POAM-0003")]
    pub display_id: String,
    /// The item's `POA&M Status` in the template.
    pub emass_status: Status,
    /// The broken rules (`emass.*` codes of the eMASS validation profile and the template).
    pub findings: Vec<Finding>,
}

/// The answer of `dry_run=true`: what an eMASS export would hold and what eMASS would refuse.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct EmassDryRun {
    pub variant: Variant,
    /// Items the export would hold.
    pub items: usize,
    /// Data rows (one per milestone, at least one per item).
    pub rows: usize,
    /// Items eMASS would refuse.
    pub refused: usize,
    /// How many items break each rule.
    pub by_rule: std::collections::BTreeMap<String, usize>,
    /// Each refused item with its broken rules, in display order: the first 1,000.
    pub refusals: Vec<Refusal>,
    /// More items are refused than `refusals` lists.
    pub truncated: bool,
}

/// The most refused items a dry run or a strict refusal lists (memory stays bounded).
pub const LISTED: usize = 1000;

/// Counts while items are rendered; keeps the refusals when asked.
pub struct Tally {
    pub items: usize,
    pub rows: usize,
    pub refused: usize,
    pub by_rule: std::collections::BTreeMap<String, usize>,
    pub refusals: Option<Vec<Refusal>>,
}

impl Tally {
    pub fn new(keep: bool) -> Tally {
        Tally {
            items: 0,
            rows: 0,
            refused: 0,
            by_rule: Default::default(),
            refusals: keep.then(Vec::new),
        }
    }

    /// Counts an exported item.
    pub fn add(&mut self, rec: &ItemRecord, e: &Exported) {
        self.items += 1;
        self.rows += e.rows.len();
        if !e.findings.is_empty() {
            self.refused += 1;
            for f in &e.findings {
                *self.by_rule.entry(f.rule.clone()).or_default() += 1;
            }
            if let Some(list) = self.refusals.as_mut().filter(|_| self.refused <= LISTED) {
                list.push(Refusal {
                    item_id: rec.item.id.as_uuid(),
                    display_id: rec.item.display_id.clone(),
                    emass_status: e.status,
                    findings: e.findings.clone(),
                });
            }
        }
    }
}

fn io_err(e: std::io::Error) -> StoreError {
    StoreError::Internal(format!("eMASS export: {e}"))
}

/// Starts the workbook in the shared writer ([`crate::xlsx::Book`]): the `POA&M` sheet with
/// column A hidden (unused, as in the template), the banner in row 1, the header block in rows
/// 2–6 and the column headers in row 7; data rows follow with [`add`]. Temp files go to
/// `spool_dir`.
pub fn start(
    variant: Variant,
    banner: &str,
    system: &System,
    exported_by: &str,
    today: chrono::NaiveDate,
    spool_dir: &std::path::Path,
) -> Result<Book, StoreError> {
    let mut book = Book::new(spool_dir)?.wrapping();
    book.sheet(emass::SHEET)?;
    book.hide_column(0)?;
    let widths: Vec<f64> = variant
        .fields()
        .iter()
        .map(|f| {
            if f.is_date() || f.list().is_some() {
                16.0
            } else {
                28.0
            }
        })
        .collect();
    book.widths(1, &widths)?;
    // Row 1: the banner across the sheet.
    book.banner(variant.last_column(), banner)?;
    // Rows 2–6.
    let mut block = Vec::new();
    for h in variant.header() {
        let (Some(l), Some(v)) = (
            emass::range_ref(h.label_range),
            emass::range_ref(h.value_range),
        ) else {
            return Err(StoreError::Internal(format!("bad template range {h:?}")));
        };
        block.push(BlockCell {
            range: l,
            cell: Cell::text(h.label),
            label: true,
        });
        block.push(BlockCell {
            range: v,
            cell: emass::header_value(h.key, system, today, exported_by),
            label: false,
        });
    }
    book.block(block)?;
    // Row 7: the column headers.
    book.skip_to(emass::HEADER_ROW - 1);
    book.headings(1, variant.columns(), 45.0)?;
    book.freeze_rows(emass::FIRST_DATA_ROW - 1)?;
    Ok(book)
}

/// Writes an item's rows (from column B).
pub fn add(book: &mut Book, e: &Exported) -> Result<(), StoreError> {
    for row in &e.rows {
        book.row(1, row)?;
    }
    Ok(())
}

/// Adds the list validations and writes the workbook into `w`.
pub fn finish(
    mut book: Book,
    variant: Variant,
    w: &mut (impl Write + Send),
) -> Result<(), StoreError> {
    // The lists cover the data rows and those a user adds below them.
    let first = emass::FIRST_DATA_ROW - 1;
    for (i, f) in variant.fields().iter().enumerate() {
        let Some(list) = f.list() else { continue };
        let message = match f {
            Field::Status => {
                "The POA&M status: Completed, Ongoing, Not Applicable, Archived or Risk Accepted."
            }
            Field::MilestoneStatus => {
                "The milestone status: Open, In Progress, Delayed, Completed or Archived."
            }
            _ => "Very Low, Low, Moderate, High or Very High.",
        };
        book.list_explained(i as u16 + 1, first, u32::MAX, list, message)?;
    }
    book.finish(w)
}

/// The CSV of the same columns (row 7's labels, then the rows; no banner, no header block),
/// with a byte-order mark and the formula guard of every CSV export.
pub fn csv_header(variant: Variant, w: &mut impl Write) -> Result<(), StoreError> {
    w.write_all("\u{feff}".as_bytes()).map_err(io_err)?;
    w.write_all(sheet::csv_row(&sheet::labels(variant.columns())).as_bytes())
        .map_err(io_err)
}

/// An item's rows as CSV records.
pub fn csv_rows(e: &Exported, w: &mut impl Write) -> Result<(), StoreError> {
    for row in &e.rows {
        w.write_all(sheet::csv_row(row).as_bytes())
            .map_err(io_err)?;
    }
    Ok(())
}

impl Tally {
    /// The dry run's answer.
    pub fn dry_run(self, variant: Variant) -> EmassDryRun {
        EmassDryRun {
            variant,
            items: self.items,
            rows: self.rows,
            refused: self.refused,
            truncated: self.refused > LISTED,
            by_rule: self.by_rule,
            refusals: self.refusals.unwrap_or_default(),
        }
    }

    /// The 422 of `strict=true`: one error per item and broken rule, the item in the pointer
    /// (`/items/POAM-0003/milestones`).
    pub fn refusal(self) -> crate::problem::ApiError {
        let refused = self.refused;
        let errors = self
            .refusals
            .unwrap_or_default()
            .into_iter()
            .flat_map(|r| {
                let (display, status) = (r.display_id, r.emass_status);
                r.findings.into_iter().map(move |f| {
                    crate::problem::FieldError::body(
                        format!("/items/{display}{}", f.pointer),
                        f.rule,
                        format!(
                            "{display} ({}): {} ({})",
                            status.word(),
                            f.message,
                            f.citation
                        ),
                    )
                })
            })
            .collect();
        crate::problem::ApiError::Unprocessable {
            code: "emass_refused",
            detail: format!(
                "eMASS would refuse {refused} item(s){}: the export is not written (strict=true); \
                 drop strict to export them anyway, or fix what `errors` names",
                if refused > LISTED {
                    format!(" (the first {LISTED} are listed)")
                } else {
                    String::new()
                }
            ),
            errors,
        }
    }
}
