//! Workbooks for the template exports (FedRAMP Rev5 and v3.0, NISP, eMASS): the shared writer.
//!
//! Built on the maintained `rust_xlsxwriter` crate in constant-memory mode: each worksheet
//! keeps one row in memory and flushes the rest to a temp file in the export spool directory;
//! [`Book::finish`] streams the ZIP container (deflated, ZIP64 when an entry needs it) into the
//! export's spool file. Rows must be written in order, sheet after sheet.
//!
//! What every export gets from here:
//! - [`Book::header`]: a bold header row;
//! - [`Book::row`]: typed cells ([`Cell`]): dates are real Excel dates formatted `mm/dd/yyyy`,
//!   numbers are numbers, text is text — text that a spreadsheet would take for a formula
//!   (leading `=`, `+`, `-`, `@`, tab or carriage return) gets Excel's quote prefix, so it stays
//!   text even when the cell is edited, and keeps its value for readers;
//! - [`Book::list`]: a list data validation on a column range (drop-down of allowed values);
//! - [`Book::widths`]: column widths.
//!
//! Helper for the eMASS export (issue 15, part C): use this module, `crate::xlsx::Book`, with
//! the cells of `poam_domain::exchange::sheet::Cell`; the CSV twin is
//! `poam_domain::exchange::sheet::csv_row`.

use poam_domain::Violation;
use poam_persistence::StoreError;
use rust_xlsxwriter::{
    DataValidation, ExcelDateTime, Format, FormatAlign, Workbook, Worksheet, XlsxError,
};
use std::io::Write;
use std::path::Path;

pub use poam_domain::exchange::sheet::{looks_like_formula, Cell};

/// Excel's longest cell text.
const MAX_TEXT: usize = 32_767;
/// Excel's last row (0-based).
const LAST_ROW: u32 = 1_048_575;

fn err(e: XlsxError) -> StoreError {
    match e {
        XlsxError::RowColumnLimitError => StoreError::Conflict(Violation::new(
            "sheet_too_long",
            "",
            "the sheet would pass Excel's 1,048,576 rows: export it as csv",
        )),
        e => StoreError::Internal(format!("workbook: {e}")),
    }
}

/// A workbook being written into a spool file, sheet by sheet, row by row.
pub struct Book {
    wb: Workbook,
    sheet: Option<usize>,
    count: usize,
    /// The next row of the current sheet (0-based).
    row: u32,
    bold: Format,
    date: Format,
    quoted: Format,
    wrap: Format,
}

impl Book {
    /// A workbook whose worksheets spool to temp files in `spool_dir`.
    pub fn new(spool_dir: &Path) -> Result<Book, StoreError> {
        let mut wb = Workbook::new();
        wb.set_tempdir(spool_dir).map_err(err)?;
        wb.use_zip_large_file(true);
        Ok(Book {
            wb,
            sheet: None,
            count: 0,
            row: 0,
            bold: Format::new().set_bold().set_align(FormatAlign::Top),
            date: Format::new()
                .set_num_format("mm/dd/yyyy")
                .set_align(FormatAlign::Top),
            quoted: Format::new().set_quote_prefix().set_align(FormatAlign::Top),
            wrap: Format::new().set_align(FormatAlign::Top),
        })
    }

    fn current(&mut self) -> Result<&mut Worksheet, StoreError> {
        let Some(i) = self.sheet else {
            return Err(StoreError::Internal("workbook: no sheet started".into()));
        };
        self.wb.worksheet_from_index(i).map_err(err)
    }

    /// Starts the next sheet; rows start at its first row.
    pub fn sheet(&mut self, name: &str) -> Result<(), StoreError> {
        let ws = self.wb.add_worksheet_with_constant_memory();
        ws.set_name(name).map_err(err)?;
        self.sheet = Some(self.count);
        self.count += 1;
        self.row = 0;
        Ok(())
    }

    /// The next row to be written (0-based).
    pub fn next_row(&self) -> u32 {
        self.row
    }

    /// Moves to `row` (0-based), leaving the rows in between empty. Never back.
    pub fn skip_to(&mut self, row: u32) {
        self.row = self.row.max(row);
    }

    /// Writes a row of typed cells from column `first_col` and moves to the next row.
    pub fn row(&mut self, first_col: u16, cells: &[Cell]) -> Result<(), StoreError> {
        let r = self.row;
        if r > LAST_ROW {
            return Err(err(XlsxError::RowColumnLimitError));
        }
        let (date, quoted, wrap) = (self.date.clone(), self.quoted.clone(), self.wrap.clone());
        let ws = self.current()?;
        for (i, cell) in cells.iter().enumerate() {
            let c = first_col + i as u16;
            match cell {
                Cell::Empty => {}
                Cell::Text(s) => {
                    let s = clip(s);
                    let format = if looks_like_formula(s) {
                        &quoted
                    } else {
                        &wrap
                    };
                    ws.write_string_with_format(r, c, s, format).map_err(err)?;
                }
                Cell::Date(d) => {
                    let dt = excel_date(*d)?;
                    ws.write_datetime_with_format(r, c, &dt, &date)
                        .map_err(err)?;
                }
                Cell::Number(n) => {
                    ws.write_number_with_format(r, c, *n, &wrap).map_err(err)?;
                }
            }
        }
        self.row += 1;
        Ok(())
    }

    /// Writes a bold header row of labels from column `first_col`.
    pub fn header(&mut self, first_col: u16, labels: &[&str]) -> Result<(), StoreError> {
        let r = self.row;
        let bold = self.bold.clone();
        let ws = self.current()?;
        for (i, l) in labels.iter().enumerate() {
            ws.write_string_with_format(r, first_col + i as u16, *l, &bold)
                .map_err(err)?;
        }
        self.row += 1;
        Ok(())
    }

    /// Writes a bold label in `label_col` and typed cells after it, on one row.
    pub fn labelled(
        &mut self,
        label_col: u16,
        label: &str,
        cells: &[Cell],
    ) -> Result<(), StoreError> {
        let r = self.row;
        let bold = self.bold.clone();
        self.current()?
            .write_string_with_format(r, label_col, label, &bold)
            .map_err(err)?;
        self.row(label_col + 1, cells)?;
        self.row = r + 1;
        Ok(())
    }

    /// A drop-down of `values` on column `col`, rows `first_row..=last_row` (0-based).
    pub fn list(
        &mut self,
        col: u16,
        first_row: u32,
        last_row: u32,
        values: &[&str],
    ) -> Result<(), StoreError> {
        let v = DataValidation::new()
            .allow_list_strings(values)
            .map_err(err)?;
        self.current()?
            .add_data_validation(first_row, col, last_row.min(LAST_ROW), col, &v)
            .map_err(err)?;
        Ok(())
    }

    /// Column widths (in characters) from column `first_col`.
    pub fn widths(&mut self, first_col: u16, widths: &[f64]) -> Result<(), StoreError> {
        let ws = self.current()?;
        for (i, w) in widths.iter().enumerate() {
            ws.set_column_width(first_col + i as u16, *w).map_err(err)?;
        }
        Ok(())
    }

    /// Writes the workbook into `out` (the spool file): the sheets' temp files are copied into
    /// a streamed ZIP container.
    pub fn finish(mut self, out: &mut (impl Write + Send)) -> Result<(), StoreError> {
        self.wb.save_to_writer(out).map_err(err)
    }
}

/// Text clipped to Excel's cell limit, on a character boundary.
fn clip(s: &str) -> &str {
    if s.len() <= MAX_TEXT {
        return s;
    }
    match s.char_indices().nth(MAX_TEXT) {
        Some((at, _)) => &s[..at],
        None => s,
    }
}

fn excel_date(d: chrono::NaiveDate) -> Result<ExcelDateTime, StoreError> {
    use chrono::Datelike;
    let year = u16::try_from(d.year())
        .map_err(|_| StoreError::Internal(format!("workbook: {d} is outside Excel's calendar")))?;
    ExcelDateTime::from_ymd(year, d.month() as u8, d.day() as u8).map_err(err)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_text_is_clipped_on_a_character_boundary() {
        let s = "é".repeat(MAX_TEXT + 5);
        assert_eq!(clip(&s).chars().count(), MAX_TEXT);
        assert_eq!(clip("short"), "short");
    }

    #[test]
    fn a_workbook_streams_into_a_writer() -> Result<(), StoreError> {
        let dir = std::env::temp_dir();
        let mut book = Book::new(&dir)?;
        book.sheet("One")?;
        book.header(0, &["A", "B"])?;
        let d = chrono::NaiveDate::from_ymd_opt(2026, 10, 1).unwrap_or_default();
        book.row(0, &[Cell::text("=1+1"), Cell::Date(d), Cell::Number(3.0)])?;
        book.list(0, 1, 100, &["Yes", "No"])?;
        let mut out = Vec::new();
        book.finish(&mut out)?;
        assert!(out.starts_with(b"PK\x03\x04"));
        Ok(())
    }
}
