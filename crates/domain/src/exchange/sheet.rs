//! Spreadsheet cells, shared by the template exports (FedRAMP Rev5 and v3.0, NISP, eMASS): a
//! value typed as the workbook writes it (text, a real date, a number), and as a CSV field.
//! The HTTP room writes them into a workbook (`poam_http::xlsx`) or a CSV record
//! ([`csv_row`]).

use chrono::NaiveDate;

/// One cell of a template row.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    /// Nothing written.
    Empty,
    Text(String),
    /// A real date in a workbook (formatted `mm/dd/yyyy`), `MM/DD/YYYY` in CSV.
    Date(NaiveDate),
    Number(f64),
}

impl Cell {
    /// Text, or [`Cell::Empty`] when it is empty.
    pub fn text(s: impl Into<String>) -> Cell {
        let s = s.into();
        if s.is_empty() {
            Cell::Empty
        } else {
            Cell::Text(s)
        }
    }

    /// A date, or [`Cell::Empty`].
    pub fn date(d: Option<NaiveDate>) -> Cell {
        d.map_or(Cell::Empty, Cell::Date)
    }

    /// The cell as CSV writes it (before quoting and the formula guard).
    pub fn to_field(&self) -> String {
        match self {
            Cell::Empty => String::new(),
            Cell::Text(s) => s.clone(),
            Cell::Date(d) => super::fedramp::date(*d),
            Cell::Number(n) => {
                if n.fract() == 0.0 && n.abs() < 1e15 {
                    format!("{n:.0}")
                } else {
                    n.to_string()
                }
            }
        }
    }
}

/// Whether a spreadsheet would read text starting like this as a formula: a leading `=`, `+`,
/// `-` or `@`, or a tab or carriage return before one (OWASP's list).
pub fn looks_like_formula(s: &str) -> bool {
    s.starts_with(['=', '+', '-', '@', '\t', '\r'])
}

/// One CSV record of typed cells (see [`super::fedramp::csv_record`]).
pub fn csv_row(cells: &[Cell]) -> String {
    let fields: Vec<String> = cells.iter().map(Cell::to_field).collect();
    super::fedramp::csv_record(&fields)
}

/// Excel's longest cell text, in characters.
pub const EXCEL_CELL_LIMIT: usize = 32_767;

/// A text cut to Excel's cell limit, on a character boundary.
pub fn clip(s: &str) -> &str {
    if s.len() <= EXCEL_CELL_LIMIT {
        return s;
    }
    match s.char_indices().nth(EXCEL_CELL_LIMIT) {
        Some((at, _)) => &s[..at],
        None => s,
    }
}

/// The labels of a header row as cells.
pub fn labels(labels: &[&str]) -> Vec<Cell> {
    labels.iter().map(|l| Cell::text(*l)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_render_as_csv_fields() {
        let d = NaiveDate::from_ymd_opt(2026, 10, 1).unwrap_or_default();
        assert_eq!(
            csv_row(&[
                Cell::Date(d),
                Cell::Number(12.0),
                Cell::Number(2.5),
                Cell::Empty,
                Cell::text("=1+1")
            ]),
            "10/01/2026,12,2.5,,'=1+1\r\n"
        );
        assert!(looks_like_formula("@SUM(A1)"));
        assert!(!looks_like_formula("plain"));
    }

    #[test]
    fn long_text_is_clipped_on_a_character_boundary() {
        let s = "é".repeat(EXCEL_CELL_LIMIT + 5);
        assert_eq!(clip(&s).chars().count(), EXCEL_CELL_LIMIT);
        assert_eq!(clip("short"), "short");
    }
}
