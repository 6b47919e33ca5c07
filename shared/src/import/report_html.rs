//! report.html (DESIGN section 15): the page a person reads at a glance, rendered from
//! an import's [`Summary`] and its first rejected rows ([`RejectedSample`]). It has no
//! script and no external resource (its Content-Security-Policy forbids both), so it
//! opens offline and as a mail attachment.
//!
//! The page is built by `Page`, whose only ways in are `raw` (markup written here, a
//! `&'static str`), `text` (escaped by [`escape`]) and `count` (digits): a value from the
//! file or the summary cannot reach the page unescaped.

use std::borrow::Cow;

use super::report::{RejectedRow, RejectedSample, Summary};
use crate::domain::keys::summary_key;
use crate::domain::outcome::{ImportStatus, Outcome, RowCounts};
use crate::domain::phone::PhoneRejection;
use crate::domain::validate::WarningCode;

/// HTML-escapes `& < > " '`: the one way a value reaches the page.
pub fn escape(value: &str) -> Cow<'_, str> {
    if !value.contains(['&', '<', '>', '"', '\'']) {
        return Cow::Borrowed(value);
    }
    let mut out = String::with_capacity(value.len() + 16);
    for c in value.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// The page, written in order.
#[derive(Default)]
struct Page {
    out: String,
}

impl Page {
    /// Markup written in this file.
    fn raw(&mut self, markup: &'static str) -> &mut Page {
        self.out.push_str(markup);
        self
    }

    /// A value, escaped.
    fn text(&mut self, value: &str) -> &mut Page {
        self.out.push_str(&escape(value));
        self
    }

    /// A count, with thousands separators.
    fn count(&mut self, n: u64) -> &mut Page {
        let digits = n.to_string();
        for (i, group) in digits.as_bytes().rchunks(3).rev().enumerate() {
            if i > 0 {
                self.out.push(',');
            }
            self.out.extend(group.iter().map(|&b| char::from(b)));
        }
        self
    }

    /// A width in hundredths of a percent, as CSS: `12.34%`.
    fn percent(&mut self, basis_points: u32) -> &mut Page {
        let (whole, hundredths) = (basis_points / 100, basis_points % 100);
        self.out.push_str(&format!("{whole}.{hundredths:02}%"));
        self
    }
}

/// Renders report.html for `summary`, with `sample`'s rejected rows.
pub fn render(summary: &Summary, sample: &RejectedSample) -> String {
    let mut page = Page::default();
    head(&mut page, summary);
    overview(&mut page, summary);
    file_facts(&mut page, summary);
    outcomes(&mut page, &summary.rows);
    reasons(&mut page, summary);
    warnings(&mut page, summary);
    rejected_rows(&mut page, summary, sample);
    report_files(&mut page, summary);
    page.raw("</main>\n</body>\n</html>\n");
    page.out
}

const STYLE: &str = "
*{box-sizing:border-box}
body{margin:0;color:#1f2328;background:#fff;line-height:1.45;font:15px/1.45 system-ui,-apple-system,'Segoe UI',Roboto,'DejaVu Sans',sans-serif;-webkit-print-color-adjust:exact;print-color-adjust:exact}
main{max-width:70rem;margin:0 auto;padding:1.5rem}
h1{font-size:1.6rem;margin:0 0 .5rem}
h2{font-size:1.2rem;margin:2rem 0 .6rem;padding-bottom:.25rem;border-bottom:1px solid #d0d7de}
code{font-family:ui-monospace,'DejaVu Sans Mono',monospace;font-size:.9em;background:#f6f8fa;padding:0 .25rem;border-radius:.2rem;white-space:nowrap}
.status{display:inline-block;padding:.15rem .7rem;border-radius:1rem;font-weight:600}
.status-completed{background:#dafbe1;color:#116329}
.status-completed_with_errors{background:#fff8c5;color:#7d4e00}
.status-failed,.status-running{background:#ffebe9;color:#a40e26}
.message{font-size:1.2rem;margin:.6rem 0}
.dry-run,.note{background:#ddf4ff;border-left:4px solid #0969da;padding:.5rem .8rem;margin:.6rem 0}
.error{background:#ffebe9;border-left:4px solid #cf222e;padding:.5rem .8rem;margin:.6rem 0}
dl{display:grid;grid-template-columns:max-content 1fr;gap:.2rem 1.2rem;margin:0}
dt{color:#57606a}
dd{margin:0;overflow-wrap:anywhere}
.bar{display:flex;height:2.4rem;border:1px solid #d0d7de;border-radius:.4rem;overflow:hidden}
.seg{min-width:3px;overflow:hidden;white-space:nowrap;color:#fff;font-weight:600;font-size:.85rem;padding:.6rem .4rem}
.legend{list-style:none;display:flex;flex-wrap:wrap;gap:.3rem 1.4rem;padding:0;margin:.6rem 0}
.swatch{display:inline-block;width:.9rem;height:.9rem;border-radius:.2rem;margin-right:.35rem;vertical-align:-.1rem}
.zero{color:#8c959f}
.created{background:#1a7f37}
.updated{background:#0969da}
.unchanged{background:#6e7781}
.skipped_existing{background:#8250df}
.skipped_new{background:#bf8700}
.duplicate_in_file{background:#9a6700}
.rejected{background:#cf222e}
.scroll{overflow-x:auto}
table{border-collapse:collapse;width:100%;margin:.4rem 0}
th,td{border:1px solid #d0d7de;padding:.3rem .5rem;text-align:left;vertical-align:top}
th{background:#f6f8fa}
.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
table.rows{font-size:.9rem}
td.bad{background:#ffcecb;color:#82071e;font-weight:700;outline:2px solid #cf222e;outline-offset:-2px;white-space:nowrap}
.blank{font-style:italic;font-weight:400}
table.rows td{overflow-wrap:break-word}
table.rows td.why{min-width:10em}
@media print{tr{break-inside:avoid}.scroll{overflow:visible}main{max-width:none;padding:0}table.rows{font-size:.7rem}}
";

fn head(page: &mut Page, summary: &Summary) {
    page.raw("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n")
        .raw("<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\">\n")
        .raw("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n")
        .raw("<title>Import report: ")
        .text(file_name(&summary.source.key))
        .raw("</title>\n<style>")
        .raw(STYLE)
        .raw("</style>\n</head>\n<body>\n<main>\n");
}

/// The last segment of the upload's key: the name the user gave the file.
fn file_name(key: &str) -> &str {
    key.rsplit('/').next().unwrap_or(key)
}

fn overview(page: &mut Page, summary: &Summary) {
    page.raw("<h1>Import report: ")
        .text(file_name(&summary.source.key))
        .raw("</h1>\n<p><span class=\"status status-")
        .raw(summary.status.as_str())
        .raw("\">")
        .raw(status_label(summary.status))
        .raw("</span></p>\n<p class=\"message\">")
        .text(&summary.message)
        .raw("</p>\n");
    if summary.dry_run {
        page.raw("<p class=\"dry-run\"><strong>Dry run:</strong> the counts say what the import would do; nothing was written.</p>\n");
    }
    if let Some(error) = &summary.error {
        page.raw("<div class=\"error\" id=\"file-error\"><strong>The file could not be imported</strong> (<code>")
            .text(error.code.as_str())
            .raw("</code>): ")
            .text(&error.message)
            .raw("</div>\n");
    }
}

fn status_label(status: ImportStatus) -> &'static str {
    match status {
        ImportStatus::Running => "Still running",
        ImportStatus::Completed => "Completed",
        ImportStatus::CompletedWithErrors => "Completed, some rows rejected",
        ImportStatus::Failed => "Failed",
    }
}

fn file_facts(page: &mut Page, summary: &Summary) {
    let source = &summary.source;
    page.raw("<h2>The file</h2>\n<dl>\n");
    fact(page, "File", &source.key);
    fact(page, "Bucket", &source.bucket);
    let format = source.format.as_deref().unwrap_or("not a format we read");
    fact(page, "Format", format);
    if let Some(encoding) = &source.encoding {
        fact(page, "Encoding", encoding);
    }
    if let Some(delimiter) = &source.delimiter {
        fact(page, "Delimiter", delimiter_name(delimiter));
    }
    if let Some(sheet) = &source.sheet {
        fact(page, "Sheet", sheet);
    }
    page.raw("<dt>Size</dt><dd>")
        .count(source.size_bytes)
        .raw(" bytes</dd>\n");
    fact(page, "Channel", &summary.channel);
    fact(page, "Account", &summary.account_id);
    fact(page, "Import", &summary.import_id);
    fact(page, "Started", &summary.started_at);
    fact(page, "Finished", &summary.finished_at);
    page.raw("</dl>\n");
}

/// A delimiter as a person names it (a tab would show as nothing).
fn delimiter_name(delimiter: &str) -> &str {
    match delimiter {
        "," => "comma (,)",
        ";" => "semicolon (;)",
        "\t" => "tab",
        "|" => "vertical bar (|)",
        other => other,
    }
}

fn fact(page: &mut Page, name: &'static str, value: &str) {
    page.raw("<dt>")
        .raw(name)
        .raw("</dt><dd>")
        .text(value)
        .raw("</dd>\n");
}

/// Every outcome, in the order the bar draws them.
const OUTCOMES: [Outcome; 7] = [
    Outcome::Created,
    Outcome::Updated,
    Outcome::Unchanged,
    Outcome::SkippedExisting,
    Outcome::SkippedNew,
    Outcome::DuplicateInFile,
    Outcome::Rejected,
];

fn count_of(rows: &RowCounts, outcome: Outcome) -> u64 {
    match outcome {
        Outcome::Created => rows.created,
        Outcome::Updated => rows.updated,
        Outcome::Unchanged => rows.unchanged,
        Outcome::SkippedExisting => rows.skipped_existing,
        Outcome::SkippedNew => rows.skipped_new,
        Outcome::DuplicateInFile => rows.duplicate_in_file,
        Outcome::Rejected => rows.rejected,
    }
}

fn outcome_label(outcome: Outcome) -> &'static str {
    match outcome {
        Outcome::Created => "created",
        Outcome::Updated => "updated",
        Outcome::Unchanged => "unchanged",
        Outcome::SkippedExisting => "skipped, already in the book",
        Outcome::SkippedNew => "skipped, not in the book",
        Outcome::DuplicateInFile => "repeated in the file",
        Outcome::Rejected => "rejected",
    }
}

/// Each count's share of their sum in hundredths of a percent, summing to exactly
/// 10 000 (largest remainders round up); all zero when the sum is.
fn widths(counts: &[u64]) -> Vec<u32> {
    let total: u128 = counts.iter().map(|&c| u128::from(c)).sum();
    if total == 0 {
        return vec![0; counts.len()];
    }
    let scaled: Vec<u128> = counts.iter().map(|&c| u128::from(c) * 10_000).collect();
    let mut widths: Vec<u32> = scaled.iter().map(|s| (s / total) as u32).collect();
    let short = 10_000 - widths.iter().sum::<u32>();
    let mut by_remainder: Vec<usize> = (0..counts.len()).collect();
    by_remainder.sort_by_key(|&i| std::cmp::Reverse(scaled[i] % total));
    for &i in by_remainder.iter().take(short as usize) {
        widths[i] += 1;
    }
    widths
}

fn outcomes(page: &mut Page, rows: &RowCounts) {
    page.raw("<h2>What became of the rows</h2>\n<p>")
        .count(rows.total)
        .raw(" data rows read (the header and blank lines are not counted).</p>\n");
    let counts = OUTCOMES.map(|o| count_of(rows, o));
    if rows.total > 0 {
        page.raw("<div class=\"bar\" role=\"img\" aria-label=\"rows by outcome\">");
        for ((outcome, count), width) in OUTCOMES.iter().zip(counts).zip(widths(&counts)) {
            if count > 0 {
                segment(page, *outcome, count, width);
            }
        }
        page.raw("</div>\n");
    }
    page.raw("<ul class=\"legend\">\n");
    for (outcome, count) in OUTCOMES.iter().zip(counts) {
        page.raw(if count == 0 {
            "<li class=\"zero\">"
        } else {
            "<li>"
        })
        .raw("<span class=\"swatch ")
        .raw(outcome.as_str())
        .raw("\"></span>")
        .count(count)
        .raw(" ")
        .raw(outcome_label(*outcome))
        .raw("</li>\n");
    }
    page.raw("</ul>\n");
}

/// A segment of the bar, labelled as far as its width allows (the legend below it
/// always has the count and the name).
fn segment(page: &mut Page, outcome: Outcome, count: u64, width: u32) {
    page.raw("<div class=\"seg ")
        .raw(outcome.as_str())
        .raw("\" style=\"width:")
        .percent(width)
        .raw("\" title=\"")
        .count(count)
        .raw(" ")
        .raw(outcome_label(outcome))
        .raw("\">");
    if width >= LABEL_COUNT {
        page.count(count);
    }
    if width >= LABEL_NAME {
        page.raw(" ").raw(outcome_label(outcome));
    }
    page.raw("</div>");
}

/// From this width (hundredths of a percent) a segment shows its count ...
const LABEL_COUNT: u32 = 400;
/// ... and from this one its name too.
const LABEL_NAME: u32 = 1_800;

/// What a code means and how to fix it, for the person who uploaded the file.
struct Help {
    means: &'static str,
    fix: &'static str,
}

fn rejection_help(reason: PhoneRejection) -> Help {
    let (means, fix) = match reason {
        PhoneRejection::Missing => (
            "The phone number cell is blank, so nothing identifies the contact.",
            "Fill in the number with its country code (for example +44 7911 123456), or delete the row if the person has no number.",
        ),
        PhoneRejection::Invalid => (
            "The phone cell is not a valid number for its country: too few or too many digits, letters, or a number range that does not exist.",
            "Check the number against your original record and correct it, written in international form such as +44 7911 123456.",
        ),
        PhoneRejection::MissingCountryCode => (
            "The number is written the national way (such as 07911 123456) and nothing says which country it belongs to.",
            "Write it with its country code (+44 7911 123456), add a country code column, or set the default-country upload option (for example GB) for the whole file.",
        ),
        PhoneRejection::InvalidCountryCode => (
            "The country code column holds something that is not an international calling code.",
            "Put the calling code in that column, written as 44, +44 or 0044, or leave it blank when the number already starts with +.",
        ),
        PhoneRejection::NotMobile => (
            "The number is valid but is a landline or another line that cannot receive WhatsApp or SMS messages.",
            "Replace it with the person's mobile number; landlines belong in a voice upload.",
        ),
        PhoneRejection::ExcelScientificNotation => (
            "Excel stored this long number in scientific notation (like 4.47911E+11), so its last digits are lost and cannot be recovered from the file.",
            "In the original spreadsheet, format the phone column as Text (or export it again from the system it came from), check the numbers are whole, and upload again.",
        ),
        PhoneRejection::Suppressed => (
            "This person asked for their data to be erased, so their number may not be stored again.",
            "Nothing to fix: leave the row out. The contact comes back only when the person messages you themselves.",
        ),
        PhoneRejection::InvalidUserId => (
            "The phone cell is blank and the WhatsApp User ID cell, the only other way to identify the contact, does not hold a WhatsApp user id.",
            "Add the phone number, or copy the user id exactly as WhatsApp gives it: two capital letters, a dot, then letters and digits (GB.13491208655302741918).",
        ),
    };
    Help { means, fix }
}

fn warning_help(code: WarningCode) -> Help {
    let (means, fix) = match code {
        WarningCode::InvalidName => (
            "The name holds characters a name cannot have (symbols, emoji), so the name was not saved; the rest of the row was.",
            "Keep to letters, digits, spaces and ' ’ - . , & in names, then upload the row again to save the name.",
        ),
        WarningCode::InvalidEmail => (
            "The e-mail cell is not an e-mail address, so it was not saved; the rest of the row was.",
            "Correct it to the form name@example.com, one address per cell, and upload the row again.",
        ),
        WarningCode::FieldTooLong => (
            "A value is longer than its field allows, or the contact already holds as many custom attributes as it can, so that value was not saved; the rest of the row was.",
            "Shorten the value to the limit the message gives, or use fewer custom columns, and upload the row again.",
        ),
        WarningCode::InvalidDate => (
            "A date cell could not be read as a date, so it was not saved; the rest of the row was.",
            "Write dates as year-month-day (2024-03-31), or format the column as a date in the spreadsheet, and upload again.",
        ),
        WarningCode::InvalidBoolean => (
            "A yes/no cell (such as an opt-in column) holds neither yes nor no, so it was not saved; the rest of the row was.",
            "Use TRUE/FALSE, yes/no or 1/0 in that column.",
        ),
        WarningCode::ExtraCells => (
            "The row has more cells than the header has titles; the cells past the last title have no column to go to and were ignored.",
            "Give those columns a title in the header row, or remove the stray cells (often a comma inside a value that is not quoted).",
        ),
        WarningCode::UntitledColumn => (
            "A cell has a value in a column whose title is blank, so it was not imported.",
            "Give the column a title in the header row: a known one such as Email, or any name to keep it as a custom attribute.",
        ),
        WarningCode::DuplicateHeader => (
            "Two columns have the same title; only the first was imported, so this value in the repeated column was ignored.",
            "Rename or merge the repeated column so that every title is different.",
        ),
        WarningCode::ConsentKeptOptedOut => (
            "The row says the person opted in, but they opted out themselves and only they can undo that: the contact stays opted out; the rest of the row was saved.",
            "Nothing to fix in the file: the person opts in again by messaging you (for example by replying START).",
        ),
        WarningCode::InvalidUserId => (
            "The WhatsApp User ID cell does not hold a WhatsApp user id, so it was dropped; the row was saved by its phone number.",
            "Remove the value, or copy the user id exactly as WhatsApp gives it (GB.13491208655302741918).",
        ),
    };
    Help { means, fix }
}

/// Codes with their counts, the largest first (ties in code order).
fn by_count<K: Copy>(counts: impl Iterator<Item = (K, u64)>) -> Vec<(K, u64)> {
    let mut counts: Vec<(K, u64)> = counts.collect();
    counts.sort_by_key(|&(_, n)| std::cmp::Reverse(n));
    counts
}

fn reasons(page: &mut Page, summary: &Summary) {
    if summary.rejections_by_reason.is_empty() {
        return;
    }
    page.raw("<h2 id=\"reasons\">Why rows were rejected</h2>\n<p>A rejected row was not imported at all.</p>\n");
    let reasons = by_count(summary.rejections_by_reason.iter().map(|(r, n)| (*r, *n)));
    help_table(
        page,
        "Reason",
        reasons
            .iter()
            .map(|&(r, n)| (r.code(), n, rejection_help(r))),
    );
}

fn warnings(page: &mut Page, summary: &Summary) {
    if summary.warnings_by_code.is_empty() {
        return;
    }
    page.raw("<h2 id=\"warnings\">Warnings</h2>\n<p>A warned row was imported without the value the warning names.</p>\n");
    let codes = by_count(summary.warnings_by_code.iter().map(|(c, n)| (*c, *n)));
    help_table(
        page,
        "Warning",
        codes.iter().map(|&(c, n)| (c.code(), n, warning_help(c))),
    );
}

fn help_table<'a>(
    page: &mut Page,
    kind: &'static str,
    codes: impl Iterator<Item = (&'a str, u64, Help)>,
) {
    page.raw("<table>\n<thead><tr><th>")
        .raw(kind)
        .raw("</th><th class=\"num\">Rows</th><th>What it means</th><th>How to fix it</th></tr></thead>\n<tbody>\n");
    for (code, n, help) in codes {
        page.raw("<tr><td><code>")
            .text(code)
            .raw("</code></td><td class=\"num\">")
            .count(n)
            .raw("</td><td>")
            .text(help.means)
            .raw("</td><td>")
            .text(help.fix)
            .raw("</td></tr>\n");
    }
    page.raw("</tbody>\n</table>\n");
}

fn rejected_rows(page: &mut Page, summary: &Summary, sample: &RejectedSample) {
    if summary.rows.rejected == 0 {
        return;
    }
    page.raw("<h2 id=\"rejected-rows\">Rejected rows</h2>\n");
    sample_note(page, summary.rows.rejected, sample);
    if sample.rows.is_empty() {
        return;
    }
    let width = sample
        .rows
        .iter()
        .map(|r| r.cells.len())
        .fold(sample.header.len(), usize::max);
    page.raw("<div class=\"scroll\">\n<table class=\"rows\">\n<thead><tr><th class=\"num\">Line</th><th>Reason</th><th>Column</th><th>Message</th>");
    for i in 0..width {
        page.raw("<th>");
        match sample.header.get(i) {
            Some(title) => page.text(title),
            None => page.raw("column ").count(i as u64 + 1),
        };
        page.raw("</th>");
    }
    page.raw("</tr></thead>\n<tbody>\n");
    for row in &sample.rows {
        rejected_row(page, row, width);
    }
    page.raw("</tbody>\n</table>\n</div>\n");
}

fn sample_note(page: &mut Page, rejected: u64, sample: &RejectedSample) {
    let shown = sample.rows.len() as u64;
    if let Some(line) = sample.starts_after {
        page.raw("<p class=\"note\">Rows up to line ")
            .count(line)
            .raw(" were checked by an earlier run of this import and could not be read back here, so this list starts after line ")
            .count(line)
            .raw(". rows.csv lists all ")
            .count(rejected)
            .raw(" rejected rows.</p>\n");
    } else if rejected > shown {
        page.raw("<p class=\"note\">Showing the first ")
            .count(shown)
            .raw(" of ")
            .count(rejected)
            .raw(" rejected rows; ")
            .count(rejected - shown)
            .raw(" more are listed in rows.csv.</p>\n");
    }
    page.raw("<p>Each row as your file has it; the cell that was refused is marked ⚠. Rows with warnings and repeated numbers are listed in rows.csv.</p>\n");
}

fn rejected_row(page: &mut Page, row: &RejectedRow, width: usize) {
    page.raw("<tr><td class=\"num\">")
        .count(row.row)
        .raw("</td><td><code>")
        .text(&row.codes.join("; "))
        .raw("</code></td><td>")
        .text(&row.column)
        .raw("</td><td class=\"why\">")
        .text(&row.message)
        .raw("</td>");
    for i in 0..width {
        let value = row.cells.get(i).map_or("", String::as_str);
        if row.cell == Some(i) {
            page.raw("<td class=\"bad\">⚠ ");
            if value.is_empty() {
                page.raw("<span class=\"blank\">(blank)</span>");
            }
        } else {
            page.raw("<td>");
        }
        page.text(value).raw("</td>");
    }
    page.raw("</tr>\n");
}

fn report_files(page: &mut Page, summary: &Summary) {
    page.raw("<h2>Report files</h2>\n<dl>\n");
    match &summary.rows_report_key {
        Some(key) => fact(page, "Every problem row (rows.csv)", key),
        None => fact(
            page,
            "Every problem row (rows.csv)",
            "none: no row was read",
        ),
    }
    let summary_json = summary_key(&summary.account_id, &summary.import_id);
    fact(page, "Counts for programs (summary.json)", &summary_json);
    if let Some(key) = &summary.html_report_key {
        fact(page, "This page", key);
    }
    page.raw("</dl>\n");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::outcome::FailureCode;
    use crate::import::report::{FileError, SourceSummary, SAMPLE_ROWS};

    const ALL_REASONS: [PhoneRejection; 8] = [
        PhoneRejection::Missing,
        PhoneRejection::Invalid,
        PhoneRejection::MissingCountryCode,
        PhoneRejection::InvalidCountryCode,
        PhoneRejection::NotMobile,
        PhoneRejection::ExcelScientificNotation,
        PhoneRejection::Suppressed,
        PhoneRejection::InvalidUserId,
    ];

    const ALL_WARNINGS: [WarningCode; 10] = [
        WarningCode::InvalidName,
        WarningCode::InvalidEmail,
        WarningCode::FieldTooLong,
        WarningCode::InvalidDate,
        WarningCode::InvalidBoolean,
        WarningCode::ExtraCells,
        WarningCode::UntitledColumn,
        WarningCode::DuplicateHeader,
        WarningCode::InvalidUserId,
        WarningCode::ConsentKeptOptedOut,
    ];

    /// Fails to compile when a code is added that the two lists above do not hold.
    #[allow(dead_code)]
    fn lists_are_complete(reason: PhoneRejection, warning: WarningCode) {
        use PhoneRejection as R;
        use WarningCode as W;
        match reason {
            R::Missing
            | R::Invalid
            | R::MissingCountryCode
            | R::InvalidCountryCode
            | R::NotMobile
            | R::ExcelScientificNotation
            | R::Suppressed
            | R::InvalidUserId => {}
        }
        match warning {
            W::InvalidName
            | W::InvalidEmail
            | W::FieldTooLong
            | W::InvalidDate
            | W::InvalidBoolean
            | W::ExtraCells
            | W::UntitledColumn
            | W::DuplicateHeader
            | W::InvalidUserId
            | W::ConsentKeptOptedOut => {}
        }
    }

    fn summary(rows: RowCounts) -> Summary {
        Summary {
            import_id: "imp_1".into(),
            account_id: "acme".into(),
            channel: "whatsapp".into(),
            source: SourceSummary {
                bucket: "contact-uploads".into(),
                key: "imports/acme/whatsapp/customers.csv".into(),
                format: Some("csv".into()),
                ..SourceSummary::default()
            },
            status: if rows.rejected > 0 {
                ImportStatus::CompletedWithErrors
            } else {
                ImportStatus::Completed
            },
            dry_run: false,
            started_at: "2026-12-02T10:00:00.000Z".into(),
            finished_at: "2026-12-02T10:00:01.000Z".into(),
            duration_ms: 1000,
            rows,
            rejections_by_reason: Default::default(),
            consumed: Default::default(),
            warnings_by_code: Default::default(),
            column_mapping: Default::default(),
            mapping_source: Default::default(),
            message: "2 new contacts saved to Contact Book.".into(),
            error: None,
            rows_report_key: Some("reports/acme/imp_1/rows.csv".into()),
            html_report_key: Some("reports/acme/imp_1/report.html".into()),
        }
    }

    fn counts(created: u64, duplicate_in_file: u64, rejected: u64) -> RowCounts {
        RowCounts {
            total: created + duplicate_in_file + rejected,
            created,
            duplicate_in_file,
            rejected,
            ..RowCounts::default()
        }
    }

    fn rejected(line: u64, cells: &[&str], cell: Option<usize>) -> RejectedRow {
        RejectedRow {
            row: line,
            outcome: Outcome::Rejected,
            codes: vec!["invalid_phone".into()],
            column: "Phone".into(),
            message: "not a valid phone number".into(),
            cells: cells.iter().map(|c| c.to_string()).collect(),
            cell,
        }
    }

    fn sample(header: &[&str], rows: Vec<RejectedRow>) -> RejectedSample {
        let mut sample = RejectedSample::new(header.iter().map(|h| h.to_string()).collect());
        rows.into_iter().for_each(|r| sample.push(r));
        sample
    }

    /// The `width:` percentages of the bar's segments.
    fn bar_widths(page: &str) -> Vec<f64> {
        page.split("style=\"width:")
            .skip(1)
            .map(|rest| {
                rest.split('%')
                    .next()
                    .expect("a %")
                    .parse()
                    .expect("a number")
            })
            .collect()
    }

    #[test]
    fn escape_covers_the_five_characters() {
        assert_eq!(escape(r#"a&b<c>d"e'f"#), "a&amp;b&lt;c&gt;d&quot;e&#39;f");
        assert!(matches!(escape("plain ✓"), Cow::Borrowed("plain ✓")));
    }

    #[test]
    fn hostile_cells_titles_and_summary_values_are_escaped() {
        // GIVEN a header title and a cell that are markup, and a key and message that are too
        let hostile_title = "\"><img src=x onerror=alert(1)>";
        let mut summary = summary(counts(1, 0, 1));
        summary.source.key = "imports/acme/whatsapp/<script>x</script>.csv".into();
        summary.message = "it's <b>bold</b> & \"quoted\"".into();
        let rows = vec![rejected(2, &["<script>alert(1)</script>", "12"], Some(1))];
        let sample = sample(&["Name", hostile_title], rows);

        // WHEN the page is rendered
        let page = render(&summary, &sample);

        // THEN every one of them is text, and no script or image element exists
        assert!(page.contains("<td>&lt;script&gt;alert(1)&lt;/script&gt;</td>"));
        assert!(page.contains("<th>&quot;&gt;&lt;img src=x onerror=alert(1)&gt;</th>"));
        assert!(page.contains("&lt;script&gt;x&lt;/script&gt;.csv"));
        assert!(page.contains("it&#39;s &lt;b&gt;bold&lt;/b&gt; &amp; &quot;quoted&quot;"));
        assert!(!page.to_lowercase().contains("<script"), "{page}");
        assert!(!page.contains("<img"));
        assert!(!page.contains("<b>"));
    }

    #[test]
    fn the_page_is_self_contained() {
        let page = render(&summary(counts(2, 0, 0)), &RejectedSample::default());
        assert!(page.starts_with("<!DOCTYPE html>"));
        assert!(page.contains("<meta charset=\"utf-8\">"));
        assert!(page.contains("<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\">"));
        for external in [
            "<script", "<link", "src=", "url(", "@import", "http:", "https:",
        ] {
            assert!(!page.contains(external), "{external}");
        }
    }

    #[test]
    fn bar_widths_sum_to_a_hundred_percent() {
        for parts in [
            vec![1, 1, 1],
            vec![1, 0, 0, 0, 0, 2],
            vec![99_999, 1],
            vec![7, 13, 0, 5, 3, 1],
        ] {
            assert_eq!(widths(&parts).iter().sum::<u32>(), 10_000, "{parts:?}");
        }
        assert_eq!(widths(&[0, 0]), vec![0, 0]);
        assert_eq!(widths(&[1, 1, 1]), vec![3334, 3333, 3333]);

        let mut rows = counts(7, 3, 5);
        rows.updated = 13;
        rows.unchanged = 1;
        rows.total += 14;
        let page = render(&summary(rows), &RejectedSample::default());
        let drawn = bar_widths(&page);
        assert_eq!(drawn.len(), 5, "one segment per outcome that happened");
        assert!(
            (drawn.iter().sum::<f64>() - 100.0).abs() < 1e-9,
            "{drawn:?}"
        );
        // labelled as far as each segment's width allows: 13 of 29, 3 of 29, 1 of 29
        assert!(page.contains("title=\"13 updated\">13 updated</div>"));
        assert!(page.contains("title=\"3 repeated in the file\">3</div>"));
        assert!(page.contains("title=\"1 unchanged\"></div>"));
    }

    #[test]
    fn a_tab_delimiter_is_named() {
        let mut summary = summary(counts(1, 0, 0));
        summary.source.delimiter = Some("\t".into());
        let page = render(&summary, &RejectedSample::default());
        assert!(page.contains("<dt>Delimiter</dt><dd>tab</dd>"));
    }

    #[test]
    fn the_legend_names_every_outcome_with_its_count() {
        let page = render(&summary(counts(1_234, 2, 3)), &RejectedSample::default());
        for item in [
            "1,234 created",
            "0 updated",
            "0 unchanged",
            "0 skipped, already in the book",
            "2 repeated in the file",
            "3 rejected",
        ] {
            assert!(page.contains(&format!("</span>{item}</li>")), "{item}");
        }
        assert!(page.contains("1,239 data rows read"));
    }

    #[test]
    fn at_most_a_hundred_rows_are_kept_and_the_rest_announced() {
        // GIVEN 150 rejected rows
        let rows = (0..150)
            .map(|i| rejected(i + 2, &["Eva", "12"], Some(1)))
            .collect();
        let sample = sample(&["Name", "Phone"], rows);
        assert_eq!(sample.rows.len(), SAMPLE_ROWS);
        assert!(sample.is_full());

        // WHEN the page is rendered
        let page = render(&summary(counts(0, 0, 150)), &sample);

        // THEN it shows a hundred, each with its refused cell marked, and says so
        let table = page
            .split("<table class=\"rows\">")
            .nth(1)
            .expect("rejected rows table");
        assert_eq!(table.matches("<tr><td class=\"num\">").count(), 100);
        assert_eq!(table.matches("<td class=\"bad\">⚠ 12</td>").count(), 100);
        assert!(page.contains(
            "Showing the first 100 of 150 rejected rows; 50 more are listed in rows.csv."
        ));
    }

    #[test]
    fn no_note_when_every_rejected_row_is_shown() {
        let sample = sample(&["Phone"], vec![rejected(2, &["12"], Some(0))]);
        let page = render(&summary(counts(1, 0, 1)), &sample);
        assert!(!page.contains("Showing the first"));
        assert!(!page.contains("class=\"note\""));
    }

    #[test]
    fn a_blank_refused_cell_is_marked_as_blank_and_extra_cells_get_a_title() {
        let mut row = rejected(4, &["Eva", "", "stray"], Some(1));
        row.codes = vec!["missing_phone".into()];
        let page = render(
            &summary(counts(0, 0, 1)),
            &sample(&["Name", "Phone"], vec![row]),
        );
        assert!(page.contains("<td class=\"bad\">⚠ <span class=\"blank\">(blank)</span></td>"));
        assert!(page.contains("<th>column 3</th>"));
        assert!(page.contains("<td>stray</td>"));
    }

    #[test]
    fn a_sample_that_starts_after_a_resume_says_so() {
        let mut sample = sample(&["Phone"], vec![rejected(900, &["12"], Some(0))]);
        sample.starts_after = Some(800);
        let page = render(&summary(counts(10, 0, 3)), &sample);
        assert!(page.contains("Rows up to line 800 were checked by an earlier run"));
        assert!(page.contains("rows.csv lists all 3 rejected rows."));
    }

    #[test]
    fn a_failed_import_shows_its_error_and_no_bar() {
        // GIVEN a file that failed before any row was read
        let mut summary = summary(RowCounts::default());
        summary.status = ImportStatus::Failed;
        summary.message = "No phone column.".into();
        summary.rows_report_key = None;
        summary.error = Some(FileError {
            code: FailureCode::MissingPhoneColumn,
            message: "no phone column: none of the column titles (\"Nom\") is a phone title".into(),
        });

        // WHEN the page is rendered
        let page = render(&summary, &RejectedSample::default());

        // THEN it says why, with the code and message, and draws no bar
        assert!(page.contains("<span class=\"status status-failed\">Failed</span>"));
        assert!(page.contains("(<code>missing_phone_column</code>): no phone column: none of the column titles (&quot;Nom&quot;) is a phone title"));
        assert!(!page.contains("class=\"bar\""));
        assert!(page.contains("0 data rows read"));
        assert!(page.contains("none: no row was read"));
        assert!(page.contains("reports/acme/imp_1/summary.json"));
    }

    #[test]
    fn a_dry_run_says_nothing_was_written() {
        let mut summary = summary(counts(3, 0, 0));
        summary.dry_run = true;
        let page = render(&summary, &RejectedSample::default());
        assert!(page.contains("<strong>Dry run:</strong>"));
    }

    #[test]
    fn every_reason_and_warning_is_explained_with_its_count() {
        // GIVEN a summary with every rejection reason and every warning
        let mut summary = summary(counts(10, 0, 8));
        for (n, reason) in (1..).zip(ALL_REASONS) {
            summary.rejections_by_reason.insert(reason, n);
        }
        for (n, code) in (11..).zip(ALL_WARNINGS) {
            summary.warnings_by_code.insert(code, n);
        }

        // WHEN the page is rendered
        let page = render(&summary, &RejectedSample::default());

        // THEN each has its row: code, count, what it means, how to fix it
        let explained = |code: &str, n: u64, help: Help| {
            let row = format!(
                "<tr><td><code>{code}</code></td><td class=\"num\">{n}</td><td>{}</td><td>{}</td></tr>",
                escape(help.means),
                escape(help.fix)
            );
            assert!(page.contains(&row), "{row}");
            assert!(
                help.means.ends_with('.') && help.fix.ends_with('.'),
                "{code}"
            );
        };
        for (n, reason) in (1..).zip(ALL_REASONS) {
            explained(reason.code(), n, rejection_help(reason));
        }
        for (n, code) in (11..).zip(ALL_WARNINGS) {
            explained(code.code(), n, warning_help(code));
        }
        // the largest count first
        let position = |text: &str| page.find(text).expect(text);
        let first = position("<code>invalid_user_id</code></td><td class=\"num\">8<");
        let last = position("<code>missing_phone</code>");
        assert!(first < last, "reasons by count, largest first");
    }
}
