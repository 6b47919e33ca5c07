//! End to end: account operations of contact-events (DESIGN section 14) invoked through
//! the Lambda runtime API (`cargo lambda watch`) against the emulator.

use std::collections::{BTreeMap, HashSet};

use integration_tests::{unique_account, Stack};
use serde_json::{json, Value};

/// Names in other scripts, lists and tags, custom attributes (a datetime, a number, a
/// value with a comma and quotes), opt-in flags, and text a spreadsheet would take for
/// a formula (escaped with `'` as the export escapes it).
const UPLOAD: &str = "Phone,Name,First Name,Last Name,Email,WhatsApp Opted,Company,City,DOB,Lists,Tags,Plan,Signed Up,Score,Note\n\
+447911123456,Zoë O’Brien,Zoë,O’Brien,zoe@example.com,TRUE,\"'=HYPERLINK(\"\"x\"\")\",Zürich,1990-05-01,VIP;Ünïcode 名前,'@team;-x,Gold,2022-10-31T19:30:00.000+05:30,-5,\"a, \"\"quoted\"\" note\"\n\
+447911123457,山田 太郎,,,,FALSE,Acme & Co.,東京,,VIP,,Silver,,'=1+1,\n\
+447911123458,,Ana,Lima,,,,,,Leads,vip-tag,,2022-10-31,,'plain\n\
+919876543210,Ravi,,,ravi@example.com,,,,,,,,,,\n";

const HEADER: [&str; 25] = [
    "Phone",
    "WhatsApp User ID",
    "Name",
    "First Name",
    "Middle Name",
    "Last Name",
    "Title",
    "Email",
    "WhatsApp Opted",
    "User ID",
    "Reference",
    "Company",
    "Address Line 1",
    "Address Line 2",
    "City",
    "State",
    "Postcode",
    "Date of Birth",
    "Alternate Phone",
    "Lists",
    "Tags",
    "Note",
    "Plan",
    "Score",
    "Signed Up",
];

/// The CSV's records: header first.
fn records(text: &str) -> Vec<Vec<String>> {
    csv::ReaderBuilder::new()
        .has_headers(false)
        .from_reader(text.as_bytes())
        .records()
        .map(|r| r.expect("valid csv").iter().map(str::to_string).collect())
        .collect()
}

/// Exports `event` and returns the answer and the file.
async fn export(stack: &Stack, event: Value) -> (Value, String) {
    let answer = stack
        .invoke_while_moving("contact-events", &event)
        .await
        .unwrap_or_else(|e| panic!("export refused: {e}"));
    assert_eq!(answer["status"], "exported", "{answer}");
    let key = answer["key"].as_str().expect("a key").to_string();
    let account = event["account_id"].as_str().expect("account");
    assert!(
        key.starts_with(&format!("exports/{account}/exp_")) && key.ends_with(".csv"),
        "{key}"
    );
    let text = stack.text(&key).await;
    (answer, text)
}

#[tokio::test]
#[ignore = "end to end: needs the local stack (make up), then cargo test -p integration-tests -- --ignored"]
async fn an_export_holds_every_stored_value_and_re_imports_unchanged() {
    // GIVEN an account whose contacts an import stored
    let stack = Stack::connect().await;
    let account = unique_account("export");
    let first = stack
        .import(&account, "whatsapp", "contacts.csv", UPLOAD.as_bytes(), &[])
        .await;
    assert_eq!(first["rows"]["created"], 4, "{first}");
    assert_eq!(first["warnings_by_code"], json!({}), "{first}");

    // WHEN it is exported
    let (answer, text) = export(
        &stack,
        json!({"type": "contacts.export", "account_id": account, "channel": "whatsapp"}),
    )
    .await;
    let rows = records(&text);

    // THEN the file has the import's titles and, row by row, the stored values,
    // escaped where a spreadsheet would run them
    assert_eq!(answer["contacts"], 4);
    assert_eq!(rows[0], HEADER);
    let by_phone: BTreeMap<&str, &Vec<String>> =
        rows[1..].iter().map(|r| (r[0].as_str(), r)).collect();
    assert_eq!(by_phone.len(), 4);
    let row = |cells: &[(&str, &str)]| {
        let mut full = vec![String::new(); HEADER.len()];
        for (title, value) in cells {
            let at = HEADER.iter().position(|h| h == title).expect("a column");
            full[at] = value.to_string();
        }
        full
    };
    let expected = [
        row(&[
            ("Phone", "+447911123456"),
            ("Name", "Zoë O’Brien"),
            ("First Name", "Zoë"),
            ("Last Name", "O’Brien"),
            ("Email", "zoe@example.com"),
            ("WhatsApp Opted", "TRUE"),
            ("Company", "'=HYPERLINK(\"x\")"),
            ("City", "Zürich"),
            ("Date of Birth", "1990-05-01"),
            ("Lists", "VIP;Ünïcode 名前"),
            ("Tags", "'-x;@team"),
            ("Note", "a, \"quoted\" note"),
            ("Plan", "Gold"),
            ("Score", "-5"),
            ("Signed Up", "2022-10-31T14:00:00Z"),
        ]),
        row(&[
            ("Phone", "+447911123457"),
            ("Name", "山田 太郎"),
            ("WhatsApp Opted", "FALSE"),
            ("Company", "Acme & Co."),
            ("City", "東京"),
            ("Lists", "VIP"),
            ("Plan", "Silver"),
            ("Score", "'=1+1"),
        ]),
        row(&[
            ("Phone", "+447911123458"),
            ("Name", "Ana Lima"),
            ("First Name", "Ana"),
            ("Last Name", "Lima"),
            ("Lists", "Leads"),
            ("Tags", "vip-tag"),
            ("Note", "'plain"),
            ("Signed Up", "2022-10-31"),
        ]),
        row(&[
            ("Phone", "+919876543210"),
            ("Name", "Ravi"),
            ("Email", "ravi@example.com"),
        ]),
    ];
    for want in &expected {
        assert_eq!(
            by_phone.get(want[0].as_str()).copied(),
            Some(want),
            "row of {}",
            want[0]
        );
    }

    // AND a filtered export holds only the matching contacts
    let (vip, vip_text) = export(
        &stack,
        json!({"type": "contacts.export", "account_id": account, "lists": ["VIP"],
               "consent": "marketing_opted_in", "status": ["active"]}),
    )
    .await;
    assert_eq!(vip["contacts"], 1);
    assert_eq!(records(&vip_text)[1][0], "+447911123456");

    // AND re-importing the exported file as it is, with on-existing=update, changes nothing
    let again = stack
        .import(
            &account,
            "whatsapp",
            "export.csv",
            text.as_bytes(),
            &[("on-existing", "update")],
        )
        .await;
    assert_eq!(
        again["rows"],
        json!({"total": 4, "created": 0, "updated": 0, "unchanged": 4, "skipped_existing": 0, "skipped_new": 0,
               "duplicate_in_file": 0, "rejected": 0}),
        "{again}"
    );
    assert_eq!(again["warnings_by_code"], json!({}), "{again}");
}

#[tokio::test]
#[ignore = "end to end: needs the local stack (make up), then cargo test -p integration-tests -- --ignored"]
async fn an_account_of_20000_contacts_exports_every_row_in_parts() {
    // GIVEN 20,000 contacts with a 500-character note each (about 11 MB exported: more
    // than one 8 MiB part)
    const COUNT: usize = 20_000;
    let stack = Stack::connect().await;
    let account = unique_account("export20k");
    let note = |i: usize| format!("{i}:{}", "n".repeat(500));
    let mut body = String::from("Name,Phone,Note\n");
    for i in 0..COUNT {
        body.push_str(&format!("Person {i},+4474{i:08},{}\n", note(i)));
    }
    let imported = stack
        .import(&account, "whatsapp", "big.csv", body.as_bytes(), &[])
        .await;
    assert_eq!(imported["rows"]["created"], COUNT, "{imported}");

    // WHEN the account is exported
    let (answer, text) = export(
        &stack,
        json!({"type": "contacts.export", "account_id": account}),
    )
    .await;
    let rows = records(&text);

    // THEN every contact is in the file once, each row with its own name and note
    assert_eq!(answer["contacts"], COUNT);
    assert_eq!(rows.len(), COUNT + 1);
    let header = &rows[0];
    let (name_at, note_at) = (
        header.iter().position(|h| h == "Name").expect("Name"),
        header.iter().position(|h| h == "Note").expect("Note"),
    );
    assert_eq!(
        header.len(),
        22,
        "fixed columns and the one attribute: {header:?}"
    );
    let mut seen = HashSet::new();
    for row in &rows[1..] {
        let i: usize = row[0]
            .strip_prefix("+4474")
            .and_then(|d| d.parse().ok())
            .unwrap_or_else(|| panic!("not one of ours: {row:?}"));
        assert!(seen.insert(i), "row {i} twice");
        assert_eq!(row[name_at], format!("Person {i}"));
        assert_eq!(row[note_at], note(i));
    }
    assert_eq!(seen.len(), COUNT);

    // AND it went up as a multipart upload of two parts (S3's eTag of such an object
    // ends in `-{parts}`)
    assert!(text.len() > 8 * 1024 * 1024, "{} bytes", text.len());
    let key = answer["key"].as_str().expect("key");
    let head = stack
        .s3
        .head_object()
        .bucket(integration_tests::BUCKET)
        .key(key)
        .send()
        .await
        .expect("the export exists");
    assert!(
        head.e_tag()
            .is_some_and(|e| e.trim_matches('"').ends_with("-2")),
        "{:?}",
        head.e_tag()
    );
}

fn inbound(account: &str, message_id: &str, from: &str) -> Value {
    json!({"type": "message.inbound", "account_id": account, "channel": "whatsapp",
           "message_id": message_id, "from": from, "profile_name": "Someone",
           "received_at": "2026-11-29T10:00:00Z"})
}

#[tokio::test]
#[ignore = "end to end: needs the local stack (make up), then cargo test -p integration-tests -- --ignored"]
async fn an_undo_deletes_the_untouched_contacts_and_keeps_one_a_message_changes_meanwhile() {
    // GIVEN an import of 300 contacts; contact 0 wrote before the undo
    const COUNT: usize = 300;
    let stack = Stack::connect().await;
    let account = unique_account("undo");
    let phone = |i: usize| format!("+4474{i:08}");
    let mut body = String::from("Name,Phone\n");
    for i in 0..COUNT {
        body.push_str(&format!("Person {i},{}\n", phone(i)));
    }
    let summary = stack
        .import(&account, "whatsapp", "undo-me.csv", body.as_bytes(), &[])
        .await;
    assert_eq!(summary["rows"]["created"], COUNT, "{summary}");
    let import_id = summary["import_id"]
        .as_str()
        .expect("import id")
        .to_string();
    let before = integration_tests::invoke(
        "contact-events",
        &inbound(&account, "wamid.before", &phone(0)),
    )
    .expect("inbound answered");
    assert_eq!(before["contact"], "existing");

    // WHEN the import is undone while a message from contact 1 arrives
    let undo = json!({"type": "import.undo", "account_id": account, "import_id": import_id});
    let racing = {
        let event = inbound(&account, "wamid.during", &phone(1));
        std::thread::spawn(move || integration_tests::invoke("contact-events", &event))
    };
    let answer = stack
        .invoke_while_moving("contact-events", &undo)
        .await
        .unwrap_or_else(|e| panic!("undo refused: {e}"));
    let during = racing
        .join()
        .expect("the message was sent")
        .expect("inbound answered");

    // THEN every contact is either deleted or kept and counted; contact 0 is kept with
    // its imported name; contact 1 is kept with its imported name when the message
    // landed before its conditional delete, or else was deleted and the message made it
    // anew (anonymous); nothing else is left
    assert_eq!(answer["status"], "undone", "{answer}");
    let (deleted, kept) = (
        answer["deleted"].as_u64().expect("deleted"),
        answer["kept_changed"].as_u64().expect("kept_changed"),
    );
    assert_eq!(deleted + kept, COUNT as u64, "{answer}");
    let left = integration_tests::assert_contacts_exactly(
        &stack,
        &account,
        &HashSet::from([phone(0), phone(1)]),
    )
    .await;
    let by_phone = |p: &str| {
        left.iter()
            .find(|c| integration_tests::s(c, "phone").as_deref() == Some(p))
            .expect("left")
    };
    assert_eq!(
        integration_tests::s(by_phone(&phone(0)), "name").as_deref(),
        Some("Person 0")
    );
    let one = by_phone(&phone(1));
    if kept == 2 {
        assert_eq!(during["contact"], "existing", "{during}");
        assert_eq!(
            integration_tests::s(one, "name").as_deref(),
            Some("Person 1")
        );
        assert_eq!(integration_tests::b(one, "anonymous"), Some(false));
    } else {
        assert_eq!(kept, 1, "{answer}");
        assert_eq!(during["contact"], "created_anonymous", "{during}");
        assert_eq!(integration_tests::b(one, "anonymous"), Some(true));
    }

    // AND undoing again deletes nothing more
    let again = stack
        .invoke_while_moving("contact-events", &undo)
        .await
        .unwrap_or_else(|e| panic!("undo refused: {e}"));
    assert_eq!(
        again,
        json!({"status": "undone", "deleted": 0, "kept_changed": kept}),
    );
}
