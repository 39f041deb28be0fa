//! The one Markdown table writer of the results: a header, its separator, then rows whose
//! cells are escaped (a `|` or a line break in a figure or an error would break the table).

use std::fmt::Write as _;

/// A Markdown table being written at the end of `out`.
pub struct Table<'a> {
    out: &'a mut String,
}

impl<'a> Table<'a> {
    /// Writes the header row and its separator.
    pub fn new(out: &'a mut String, headers: &[&str]) -> Self {
        let mut table = Table { out };
        table.line(headers.iter().map(|h| (*h).to_owned()));
        table.line(headers.iter().map(|_| "---".to_owned()));
        table
    }

    /// Writes one row, a cell per column.
    pub fn row(&mut self, cells: &[&str]) {
        self.line(cells.iter().map(|c| cell(c)));
    }

    fn line(&mut self, cells: impl Iterator<Item = String>) {
        let _ = writeln!(self.out, "| {} |", cells.collect::<Vec<_>>().join(" | "));
    }
}

fn cell(text: &str) -> String {
    text.replace('|', "\\|").replace('\n', " ")
}
