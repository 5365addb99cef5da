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
//! - [`Book::list`] and [`Book::list_explained`]: a list data validation on a column range
//!   (drop-down of allowed values, with the error message Excel shows);
//! - [`Book::widths`]: column widths; [`Book::hide_column`], [`Book::freeze_rows`];
//! - for a template with a title block (the eMASS one): [`Book::banner`] (a merged title row),
//!   [`Book::block`] (label and value cells of a header block, merged over their ranges) and
//!   [`Book::headings`] (a shaded, bordered column-header row);
//! - [`Book::wrapping`]: text cells that wrap.
//!
//! The cells are `poam_domain::exchange::sheet::Cell`; the CSV twin is
//! `poam_domain::exchange::sheet::csv_row`.

use poam_domain::Violation;
use poam_persistence::StoreError;
use rust_xlsxwriter::{
    DataValidation, ExcelDateTime, Format, FormatAlign, FormatBorder, Workbook, Worksheet,
    XlsxError,
};
use std::io::Write;
use std::path::Path;

use poam_domain::exchange::sheet::clip;
pub use poam_domain::exchange::sheet::{looks_like_formula, Cell};

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

/// A cell of a header block (above the column headers): a label or a value, over a range that
/// is merged when it spans more than one cell; 0-based (first row, first column, last row, last
/// column).
#[derive(Debug, Clone)]
pub struct BlockCell {
    pub range: (u32, u16, u32, u16),
    pub cell: Cell,
    /// A bold, right-aligned label; otherwise a left-aligned value.
    pub label: bool,
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

    /// Text cells wrap (and the quoted ones too).
    pub fn wrapping(mut self) -> Book {
        self.wrap = self.wrap.set_text_wrap();
        self.quoted = self.quoted.set_text_wrap();
        self
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
                Cell::Date(d) => match excel_date(*d) {
                    Ok(dt) => {
                        ws.write_datetime_with_format(r, c, &dt, &date)
                            .map_err(err)?;
                    }
                    // Outside Excel's calendar (1900–9999): the date as ISO text, never lost.
                    Err(_) => {
                        ws.write_string_with_format(r, c, d.to_string(), &wrap)
                            .map_err(err)?;
                    }
                },
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

    /// Writes a title across columns `0..=last_col` of the next row (merged, bold, large,
    /// centred) and moves to the row after it.
    pub fn banner(&mut self, last_col: u16, text: &str) -> Result<(), StoreError> {
        let r = self.row;
        let format = Format::new()
            .set_bold()
            .set_font_size(14)
            .set_align(FormatAlign::Center);
        self.current()?
            .merge_range(r, 0, r, last_col, clip(text), &format)
            .map_err(err)?;
        self.row += 1;
        Ok(())
    }

    /// Writes a header block (its cells in any order, none above the next row) and moves to
    /// the row below its last one.
    pub fn block(&mut self, mut cells: Vec<BlockCell>) -> Result<(), StoreError> {
        cells.sort_by_key(|c| (c.range.0, c.range.1));
        if cells.first().is_some_and(|c| c.range.0 < self.row) {
            return Err(StoreError::Internal(
                "workbook: a header block above the next row".into(),
            ));
        }
        let label = Format::new().set_bold().set_align(FormatAlign::Right);
        let value = Format::new().set_align(FormatAlign::Left);
        let value_date = value.clone().set_num_format("mm/dd/yyyy");
        let mut next = self.row;
        let ws = self.current()?;
        for BlockCell {
            range: (r1, c1, r2, c2),
            cell,
            label: is_label,
        } in cells
        {
            let format = if is_label { &label } else { &value };
            let single = (r1, c1) == (r2, c2);
            if !single {
                ws.merge_range(r1, c1, r2, c2, "", format).map_err(err)?;
            }
            match cell {
                Cell::Empty if single => {
                    ws.write_blank(r1, c1, format).map_err(err)?;
                }
                Cell::Empty => {}
                Cell::Text(s) => {
                    ws.write_string_with_format(r1, c1, clip(&s), format)
                        .map_err(err)?;
                }
                Cell::Date(d) => match excel_date(d) {
                    Ok(dt) => {
                        ws.write_datetime_with_format(r1, c1, dt, &value_date)
                            .map_err(err)?;
                    }
                    Err(_) => {
                        ws.write_string_with_format(r1, c1, d.to_string(), format)
                            .map_err(err)?;
                    }
                },
                Cell::Number(n) => {
                    ws.write_number_with_format(r1, c1, n, format)
                        .map_err(err)?;
                }
            }
            next = next.max(r2 + 1);
        }
        self.row = next;
        Ok(())
    }

    /// Writes a column-header row (bold, wrapped, centred, shaded, bordered, `height` points
    /// high) of labels from column `first_col`, and moves to the next row.
    pub fn headings(
        &mut self,
        first_col: u16,
        labels: &[&str],
        height: f64,
    ) -> Result<(), StoreError> {
        let r = self.row;
        let heading = Format::new()
            .set_bold()
            .set_text_wrap()
            .set_align(FormatAlign::Center)
            .set_align(FormatAlign::VerticalCenter)
            .set_background_color(0xD9D9D9)
            .set_border(FormatBorder::Thin);
        let ws = self.current()?;
        ws.set_row_height(r, height).map_err(err)?;
        for (i, l) in labels.iter().enumerate() {
            ws.write_string_with_format(r, first_col + i as u16, *l, &heading)
                .map_err(err)?;
        }
        self.row += 1;
        Ok(())
    }

    /// Hides column `col`.
    pub fn hide_column(&mut self, col: u16) -> Result<(), StoreError> {
        self.current()?.set_column_hidden(col).map_err(err)?;
        Ok(())
    }

    /// Keeps the first `rows` rows in view when scrolling.
    pub fn freeze_rows(&mut self, rows: u32) -> Result<(), StoreError> {
        self.current()?.set_freeze_panes(rows, 0).map_err(err)?;
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
        self.list_with(col, first_row, last_row, values, None)
    }

    /// [`Book::list`] with the message Excel shows when a value is not in the list.
    pub fn list_explained(
        &mut self,
        col: u16,
        first_row: u32,
        last_row: u32,
        values: &[&str],
        message: &str,
    ) -> Result<(), StoreError> {
        self.list_with(col, first_row, last_row, values, Some(message))
    }

    fn list_with(
        &mut self,
        col: u16,
        first_row: u32,
        last_row: u32,
        values: &[&str],
        message: Option<&str>,
    ) -> Result<(), StoreError> {
        let mut v = DataValidation::new()
            .allow_list_strings(values)
            .map_err(err)?;
        if let Some(m) = message {
            v = v.set_error_message(m).map_err(err)?;
        }
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
        self.wb.save_to_writer(&mut *out).map_err(err)?;
        out.flush()
            .map_err(|e| StoreError::Internal(format!("workbook: {e}")))
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
