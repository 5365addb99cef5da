//! The eMASS POA&M template out (`format=emass`, `format=emass_csv`): the workbook eMASS
//! imports, written with `rust_xlsxwriter` in constant-memory mode (one row in memory, the rest
//! in a temp file in the spool directory) into the export's spool file; the same columns as CSV;
//! and the dry run that lists what eMASS would refuse. The mapping and the rules are the
//! domain's (`poam_domain::exchange::emass`).

use poam_domain::exchange::emass::{self, Exported, Field, Status, Variant};
use poam_domain::exchange::sheet::{self, Cell};
use poam_domain::exchange::ItemRecord;
use poam_domain::profiles::Finding;
use poam_domain::System;
use poam_persistence::StoreError;
use rust_xlsxwriter::{
    DataValidation, ExcelDateTime, Format, FormatAlign, FormatBorder, Workbook, XlsxError,
};
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

fn xlsx_err(e: XlsxError) -> StoreError {
    StoreError::Internal(format!("eMASS workbook: {e}"))
}

fn io_err(e: std::io::Error) -> StoreError {
    StoreError::Internal(format!("eMASS export: {e}"))
}

fn excel_date(d: chrono::NaiveDate) -> Result<ExcelDateTime, StoreError> {
    use chrono::Datelike;
    let year = u16::try_from(d.year()).map_err(|_| StoreError::Internal("year".into()))?;
    ExcelDateTime::from_ymd(year, d.month() as u8, d.day() as u8).map_err(xlsx_err)
}

/// The workbook being written: the `POA&M` sheet, rows in order.
pub struct Book {
    workbook: Workbook,
    variant: Variant,
    row: u32,
    date: Format,
    text: Format,
}

const SHEET_INDEX: usize = 0;

impl Book {
    /// A workbook with the banner, the header block and row 7 written; temp files in `tempdir`.
    pub fn new(
        variant: Variant,
        banner: &str,
        system: &System,
        exported_by: &str,
        today: chrono::NaiveDate,
        tempdir: &std::path::Path,
    ) -> Result<Book, StoreError> {
        let mut workbook = Workbook::new();
        workbook.set_tempdir(tempdir).map_err(xlsx_err)?;
        workbook.use_zip_large_file(true);
        let date = Format::new().set_num_format("mm/dd/yyyy");
        let text = Format::new().set_align(FormatAlign::Top).set_text_wrap();
        let banner_format = Format::new()
            .set_bold()
            .set_font_size(14)
            .set_align(FormatAlign::Center);
        let label = Format::new().set_bold().set_align(FormatAlign::Right);
        let value = Format::new().set_align(FormatAlign::Left);
        let value_date = Format::new()
            .set_align(FormatAlign::Left)
            .set_num_format("mm/dd/yyyy");
        let heading = Format::new()
            .set_bold()
            .set_text_wrap()
            .set_align(FormatAlign::Center)
            .set_align(FormatAlign::VerticalCenter)
            .set_background_color(0xD9D9D9)
            .set_border(FormatBorder::Thin);
        let ws = workbook.add_worksheet_with_constant_memory();
        ws.set_name(emass::SHEET).map_err(xlsx_err)?;
        // Column A is hidden and unused, as in the template.
        ws.set_column_hidden(0).map_err(xlsx_err)?;
        for (i, f) in variant.fields().iter().enumerate() {
            let col = i as u16 + 1;
            let width = if f.is_date() || f.list().is_some() {
                16.0
            } else {
                28.0
            };
            ws.set_column_width(col, width).map_err(xlsx_err)?;
        }
        // Row 1: the banner across the sheet.
        ws.merge_range(0, 0, 0, variant.last_column(), banner, &banner_format)
            .map_err(xlsx_err)?;
        // Rows 2–6, in row order (constant memory writes rows in order).
        let mut cells: Vec<(u32, u16, u32, u16, Cell, bool)> = Vec::new();
        for h in variant.header() {
            let (Some(l), Some(v)) = (
                emass::range_ref(h.label_range),
                emass::range_ref(h.value_range),
            ) else {
                return Err(StoreError::Internal(format!("bad template range {h:?}")));
            };
            cells.push((l.0, l.1, l.2, l.3, Cell::text(h.label), true));
            let content = emass::header_value(h.key, system, today, exported_by);
            cells.push((v.0, v.1, v.2, v.3, content, false));
        }
        cells.sort_by_key(|c| (c.0, c.1));
        for (r1, c1, r2, c2, content, is_label) in cells {
            let format = if is_label { &label } else { &value };
            if (r1, c1) != (r2, c2) {
                ws.merge_range(r1, c1, r2, c2, "", format)
                    .map_err(xlsx_err)?;
            }
            match content {
                Cell::Empty => {
                    if (r1, c1) == (r2, c2) {
                        ws.write_blank(r1, c1, format).map_err(xlsx_err)?;
                    }
                }
                Cell::Text(s) => {
                    ws.write_string_with_format(r1, c1, emass::clip(&s), format)
                        .map_err(xlsx_err)?;
                }
                Cell::Date(d) => {
                    ws.write_datetime_with_format(r1, c1, excel_date(d)?, &value_date)
                        .map_err(xlsx_err)?;
                }
                Cell::Number(n) => {
                    ws.write_number_with_format(r1, c1, n, format)
                        .map_err(xlsx_err)?;
                }
            }
        }
        // Row 7: the column headers.
        let header_row = emass::HEADER_ROW - 1;
        ws.set_row_height(header_row, 45).map_err(xlsx_err)?;
        for (i, label) in variant.columns().iter().enumerate() {
            ws.write_string_with_format(header_row, i as u16 + 1, *label, &heading)
                .map_err(xlsx_err)?;
        }
        ws.set_freeze_panes(emass::FIRST_DATA_ROW - 1, 0)
            .map_err(xlsx_err)?;
        Ok(Book {
            workbook,
            variant,
            row: emass::FIRST_DATA_ROW - 1,
            date,
            text,
        })
    }

    /// Writes an item's rows.
    pub fn add(&mut self, e: &Exported) -> Result<(), StoreError> {
        let ws = self
            .workbook
            .worksheet_from_index(SHEET_INDEX)
            .map_err(xlsx_err)?;
        for row in &e.rows {
            for (i, c) in row.iter().enumerate() {
                let col = i as u16 + 1;
                match c {
                    Cell::Empty => {}
                    Cell::Text(s) => {
                        ws.write_string_with_format(self.row, col, emass::clip(s), &self.text)
                            .map_err(xlsx_err)?;
                    }
                    Cell::Date(d) => {
                        ws.write_datetime_with_format(self.row, col, excel_date(*d)?, &self.date)
                            .map_err(xlsx_err)?;
                    }
                    Cell::Number(n) => {
                        ws.write_number(self.row, col, *n).map_err(xlsx_err)?;
                    }
                }
            }
            self.row += 1;
        }
        Ok(())
    }

    /// Adds the list validations and writes the workbook into `w`.
    pub fn finish(mut self, w: &mut (impl Write + Send)) -> Result<(), StoreError> {
        let variant = self.variant;
        let ws = self
            .workbook
            .worksheet_from_index(SHEET_INDEX)
            .map_err(xlsx_err)?;
        // The lists cover the data rows and those a user adds below them.
        let first = emass::FIRST_DATA_ROW - 1;
        let last = 1_048_575;
        for (i, f) in variant.fields().iter().enumerate() {
            let Some(list) = f.list() else { continue };
            let message = match f {
                Field::Status => "The POA&M status: Completed, Ongoing, Not Applicable, Archived or Risk Accepted.",
                Field::MilestoneStatus => "The milestone status: Open, In Progress, Delayed, Completed or Archived.",
                _ => "Very Low, Low, Moderate, High or Very High.",
            };
            let v = DataValidation::new()
                .allow_list_strings(list)
                .map_err(xlsx_err)?
                .set_error_message(message)
                .map_err(xlsx_err)?;
            ws.add_data_validation(first, i as u16 + 1, last, i as u16 + 1, &v)
                .map_err(xlsx_err)?;
        }
        self.workbook.save_to_writer(&mut *w).map_err(xlsx_err)?;
        w.flush().map_err(io_err)
    }
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
