//! Markdown tables, columns padded so they also read well in a terminal; and the number
//! formats every table uses.

use std::time::Duration;

#[derive(Debug, Clone, Default)]
pub struct Table {
    title: String,
    header: Vec<String>,
    rows: Vec<Vec<String>>,
    notes: Vec<String>,
}

impl Table {
    pub fn new(title: impl Into<String>, header: &[&str]) -> Self {
        Table { title: title.into(), header: header.iter().map(|s| (*s).to_owned()).collect(), ..Default::default() }
    }

    /// A row; missing cells are left empty, extra cells dropped.
    pub fn row(&mut self, cells: Vec<String>) {
        let mut cells = cells;
        cells.resize(self.header.len(), String::new());
        self.rows.push(cells);
    }

    /// A line printed under the table.
    pub fn note(&mut self, note: impl Into<String>) {
        self.notes.push(note.into());
    }

    pub fn render(&self) -> String {
        let esc = |s: &str| s.replace('|', "\\|");
        let widths: Vec<usize> = (0..self.header.len())
            .map(|i| {
                std::iter::once(&self.header[i])
                    .chain(self.rows.iter().map(|r| &r[i]))
                    .map(|s| esc(s).chars().count())
                    .max()
                    .unwrap_or(0)
                    .max(3)
            })
            .collect();
        let line = |cells: &[String]| {
            let mut s = String::from("|");
            for (c, w) in cells.iter().zip(&widths) {
                let c = esc(c);
                let pad = w - c.chars().count();
                s.push(' ');
                s.push_str(&c);
                s.push_str(&" ".repeat(pad));
                s.push_str(" |");
            }
            s.push('\n');
            s
        };
        let mut out = String::new();
        if !self.title.is_empty() {
            out.push_str(&format!("### {}\n\n", self.title));
        }
        out.push_str(&line(&self.header));
        out.push('|');
        for w in &widths {
            out.push_str(&"-".repeat(w + 2));
            out.push('|');
        }
        out.push('\n');
        for r in &self.rows {
            out.push_str(&line(r));
        }
        if !self.notes.is_empty() {
            out.push('\n');
            for n in &self.notes {
                out.push_str(n);
                out.push('\n');
            }
        }
        out
    }
}

/// A rate with 3 significant digits at most, no decimals above 100: `12 345`, `987`, `12.3`.
pub fn rate(v: f64) -> String {
    if !v.is_finite() {
        return "–".into();
    }
    if v >= 100.0 { group(v.round() as u64) } else { format!("{v:.1}") }
}

/// Thousands separated by a thin space-free comma-less form: `12 345`.
pub fn group(v: u64) -> String {
    let s = v.to_string();
    let mut out = String::new();
    for (i, ch) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(' ');
        }
        out.push(ch);
    }
    out
}

/// A latency in the most readable unit: `850 ns`, `42.1 µs`, `3.20 ms`, `1.25 s`.
pub fn latency(d: Duration) -> String {
    let ns = d.as_nanos() as f64;
    if ns < 1e3 {
        format!("{ns:.0} ns")
    } else if ns < 1e6 {
        format!("{:.1} µs", ns / 1e3)
    } else if ns < 1e9 {
        format!("{:.2} ms", ns / 1e6)
    } else {
        format!("{:.2} s", ns / 1e9)
    }
}

/// A ratio such as `0.87×`.
pub fn ratio(a: f64, b: f64) -> String {
    if b > 0.0 && a.is_finite() { format!("{:.2}×", a / b) } else { "–".into() }
}

/// Mebibytes, one decimal.
pub fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / 1048576.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_a_padded_markdown_table() {
        let mut t = Table::new("Small objects", &["server", "ops/s"]);
        t.row(vec!["coffer".into(), "12 345".into()]);
        t.row(vec!["a|b".into()]);
        t.note("note");
        assert_eq!(
            t.render(),
            "### Small objects\n\n| server | ops/s  |\n|--------|--------|\n| coffer | 12 345 |\n| a\\|b   |        |\n\nnote\n"
        );
    }

    #[test]
    fn number_formats() {
        assert_eq!(group(1234567), "1 234 567");
        assert_eq!(group(999), "999");
        assert_eq!(rate(12.345), "12.3");
        assert_eq!(rate(12345.4), "12 345");
        assert_eq!(latency(Duration::from_nanos(850)), "850 ns");
        assert_eq!(latency(Duration::from_nanos(42_100)), "42.1 µs");
        assert_eq!(latency(Duration::from_micros(3200)), "3.20 ms");
        assert_eq!(latency(Duration::from_millis(1250)), "1.25 s");
        assert_eq!(ratio(1.0, 2.0), "0.50×");
        assert_eq!(ratio(1.0, 0.0), "–");
        assert_eq!(mib(1572864), "1.5 MiB");
    }
}
