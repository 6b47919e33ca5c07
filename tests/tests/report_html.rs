//! report.html as its reader sees it (DESIGN section 15): rendered by the library,
//! opened from a file by headless Chromium, and checked on what is drawn (the page
//! printed to PDF, read back as text) and on the document the browser built. Needs no
//! stack, but does need Chromium and pdftotext (`scripts/bootstrap.sh`): without them
//! it fails, it does not skip.

use contacts::domain::outcome::Outcome;
use contacts::import::report::{RejectedRow, RejectedSample, Summary};
use contacts::import::report_html::render;
use integration_tests::browser::{dom, shows, visible_text};

const HOSTILE_CELL: &str = "<script>alert(1)</script>";
const HOSTILE_TITLE: &str = "\"><img src=x onerror=alert(1)>";

/// A whatsapp import of 240 rows: some rejected, some warned, some repeated.
fn summary() -> Summary {
    serde_json::from_value(serde_json::json!({
        "import_id": "imp_7f3a",
        "account_id": "acme",
        "channel": "whatsapp",
        "source": {"bucket": "contact-uploads", "key": "imports/acme/whatsapp/spring-customers.csv",
                   "etag": "\"9b2cf535f27731c974343645a3985328\"", "version_id": null,
                   "size_bytes": 18422, "format": "csv", "encoding": "utf-8", "delimiter": ","},
        "status": "completed_with_errors",
        "dry_run": false,
        "started_at": "2026-12-02T10:00:00.000Z", "finished_at": "2026-12-02T10:00:03.500Z",
        "duration_ms": 3500,
        "rows": {"total": 240, "created": 180, "updated": 30, "unchanged": 20,
                 "skipped_existing": 0, "duplicate_in_file": 6, "rejected": 4},
        "rejections_by_reason": {"missing_country_code": 1, "invalid_phone": 1,
                                 "missing_phone": 1, "not_mobile": 1},
        "consumed": {"write_units": 210.0, "read_units": 12.5, "requests": 9},
        "warnings_by_code": {"invalid_email": 9, "consent_kept_opted_out": 1},
        "column_mapping": {"Name": "name", "Phone": "phone", "Email": "email"},
        "message": "180 new contacts saved to Contact Book.",
        "error": null,
        "rows_report_key": "reports/acme/imp_7f3a/rows.csv",
        "html_report_key": "reports/acme/imp_7f3a/report.html"
    }))
    .expect("a summary.json")
}

fn rejected(row: u64, code: &str, message: &str, cells: [&str; 4]) -> RejectedRow {
    RejectedRow {
        row,
        outcome: Outcome::Rejected,
        codes: vec![code.into()],
        column: "Phone".into(),
        message: message.into(),
        cells: cells.map(String::from).to_vec(),
        cell: Some(1),
    }
}

fn sample() -> RejectedSample {
    let header = ["Name", "Phone", "Email", HOSTILE_TITLE];
    let mut sample = RejectedSample::new(header.map(String::from).to_vec());
    for row in [
        rejected(
            3,
            "missing_country_code",
            "national number without a country code",
            ["Asha Rao", "07911 123456", "asha@example.com", ""],
        ),
        rejected(
            5,
            "invalid_phone",
            "not a valid phone number",
            [HOSTILE_CELL, "12345", "", "x"],
        ),
        rejected(
            8,
            "missing_phone",
            "the phone number is blank",
            ["Ravi", "", "ravi@example.com", ""],
        ),
        rejected(
            9,
            "not_mobile",
            "not a mobile number",
            ["Office", "+44 20 7946 0000", "", ""],
        ),
    ] {
        sample.push(row);
    }
    sample
}

#[test]
fn a_reader_sees_counts_reasons_and_the_refused_cells_as_text() {
    // GIVEN the page of an import with rejections, warnings and a hostile cell and title
    let page = render(&summary(), &sample());

    // WHEN a browser opens it and prints it
    let seen = visible_text(&page).expect("the page printed and read back");

    // THEN the reader sees the file, the message and the counts of every outcome
    for text in [
        "spring-customers.csv",
        "180 new contacts saved to Contact Book.",
        "240 data rows read",
        "180 created",
        "30 updated",
        "20 unchanged",
        "0 skipped, already in the book",
        "6 repeated in the file",
        "4 rejected",
    ] {
        assert!(shows(&seen, text), "{text:?} is not visible in:\n{seen}");
    }
    // each reason and warning with what it means and how to fix it
    for text in [
        "missing_country_code",
        "The number is written the national way (such as 07911 123456) and nothing says which country it belongs to.",
        "Write it with its country code (+44 7911 123456), add a country code column, or set the default-country upload option",
        "not_mobile",
        "is a landline or another line that cannot receive WhatsApp or SMS messages.",
        "invalid_email",
        "The e-mail cell is not an e-mail address, so it was not saved; the rest of the row was.",
        "consent_kept_opted_out",
    ] {
        assert!(shows(&seen, text), "{text:?} is not visible in:\n{seen}");
    }
    // the refused cells, marked before their value, a blank one said to be blank
    for text in [
        "⚠ 07911 123456",
        "⚠ 12345",
        "⚠ (blank)",
        "⚠ +44 20 7946 0000",
    ] {
        assert!(shows(&seen, text), "{text:?} is not visible in:\n{seen}");
    }
    // the hostile cell and title shown literally, as text
    assert!(shows(&seen, HOSTILE_CELL), "{seen}");
    assert!(shows(&seen, HOSTILE_TITLE), "{seen}");
    // and where every problem row is
    assert!(shows(&seen, "reports/acme/imp_7f3a/rows.csv"), "{seen}");
    // none of the page's own markup or style is drawn
    for source in ["<td", "&lt;", "box-sizing", "Content-Security-Policy"] {
        assert!(!shows(&seen, source), "{source:?} is visible");
    }
}

#[test]
fn the_browser_builds_no_script_or_image_and_marks_the_refused_cells() {
    // GIVEN the same page
    let page = render(&summary(), &sample());

    // WHEN a browser builds its document
    let document = dom(&page).expect("the document");

    // THEN no script or image element exists: the hostile values are text nodes
    let lower = document.to_lowercase();
    assert!(lower.contains("<body"), "{document}");
    assert!(!lower.contains("<script"), "a script element:\n{document}");
    assert!(!lower.contains("<img"), "an image element:\n{document}");
    assert!(
        document.contains("<td>&lt;script&gt;alert(1)&lt;/script&gt;</td>"),
        "{document}"
    );
    // and each refused cell is marked: the class that colours it, the marker in its text
    for cell in [
        "<td class=\"bad\">⚠ 07911 123456</td>",
        "<td class=\"bad\">⚠ 12345</td>",
        "<td class=\"bad\">⚠ +44 20 7946 0000</td>",
    ] {
        assert!(document.contains(cell), "{cell} in:\n{document}");
    }
    assert_eq!(document.matches("class=\"bad\"").count(), 4);
}
