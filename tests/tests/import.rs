//! End to end: files uploaded to the emulator are imported by import-contacts running
//! under `cargo lambda watch`, triggered by the emulator's own S3 notification.

use integration_tests::{b, invoke, repo_file, s, ss, unique_account, Stack};
use serde_json::json;

#[tokio::test]
#[ignore = "end to end: needs the local stack (make up), then cargo test -p integration-tests -- --ignored"]
async fn myoperator_style_file_saves_contacts_and_reports_problem_rows() {
    let stack = Stack::connect().await;
    let account = unique_account("myop");
    let summary = stack
        .import(
            &account,
            "whatsapp",
            "Campaign List (1).csv",
            &repo_file("samples/myoperator.csv"),
            &[],
        )
        .await;
    assert_eq!(summary["status"], "completed_with_errors");
    assert_eq!(
        summary["rows"],
        json!({"total": 5, "created": 3, "updated": 0, "unchanged": 0, "skipped_existing": 0, "skipped_new": 0, "duplicate_in_file": 1, "rejected": 1})
    );
    assert_eq!(summary["rejections_by_reason"], json!({"missing_phone": 1}));
    assert_eq!(summary["message"], "3 new contacts saved to Contact Book.");
    assert_eq!(
        summary["source"]["key"],
        format!("imports/{account}/whatsapp/Campaign List (1).csv")
    );
    assert_eq!(summary["source"]["format"], "csv");
    assert!(summary["import_id"]
        .as_str()
        .is_some_and(|id| id.starts_with("imp_")));
    let rows = stack.rows_report(&summary).await;
    assert_eq!(
        rows[0],
        [
            "row",
            "outcome",
            "code",
            "column",
            "message",
            "Name",
            "Phone number"
        ]
    );
    assert_eq!(
        rows[1][..4],
        ["5", "rejected", "missing_phone", "Phone number"]
    );
    assert_eq!(
        rows[2][..3],
        ["6", "duplicate_in_file", "duplicate_in_file"]
    );
    assert_eq!(rows[2][5..], ["Ravi Again", "+91 98765 43211"]);

    let asha = stack
        .contact(&account, "whatsapp", "+919876543210")
        .await
        .expect("Asha saved");
    assert_eq!(s(&asha, "name").as_deref(), Some("Asha Rao"));
    assert_eq!(s(&asha, "status").as_deref(), Some("active"));
    assert_eq!(s(&asha, "source").as_deref(), Some("import"));
    assert_eq!(
        s(&asha, "gsi1sk").as_deref(),
        Some("whatsapp#+919876543210")
    );
    assert!(s(&asha, "gsi1pk").is_some_and(|v| v.starts_with(&format!("{account}#"))));
    assert_eq!(
        s(&asha, "last_import_id"),
        summary["import_id"].as_str().map(String::from)
    );
    let ravi = stack
        .contact(&account, "whatsapp", "+919876543211")
        .await
        .expect("Ravi saved");
    assert_eq!(
        s(&ravi, "name").as_deref(),
        Some("Ravi Kumar"),
        "first row wins"
    );
}

#[tokio::test]
#[ignore = "end to end: needs the local stack (make up), then cargo test -p integration-tests -- --ignored"]
async fn interakt_style_file_combines_names_country_codes_and_custom_attributes() {
    let stack = Stack::connect().await;
    let account = unique_account("interakt");
    let summary = stack
        .import(
            &account,
            "whatsapp",
            "interakt.csv",
            &repo_file("samples/interakt.csv"),
            &[],
        )
        .await;
    assert_eq!(summary["rows"]["created"], 2, "{summary}");
    assert_eq!(
        summary["rows"]["rejected"], 1,
        "+1 987… is not a valid number: {summary}"
    );
    assert_eq!(summary["warnings_by_code"]["invalid_email"], 1);
    assert_eq!(summary["column_mapping"]["Country Code"], "country_code");
    assert_eq!(summary["column_mapping"]["Plan"], "attr:Plan");
    let zoe = stack
        .contact(&account, "whatsapp", "+919876543220")
        .await
        .expect("Zoë saved");
    assert_eq!(s(&zoe, "name").as_deref(), Some("Zoë Fernandes"));
    assert_eq!(s(&zoe, "email").as_deref(), Some("zoe@example.com"));
    assert_eq!(b(&zoe, "whatsapp_opted"), Some(true));
    let attrs = zoe
        .get("attrs")
        .and_then(|a| a.as_m().ok())
        .expect("attrs map");
    assert_eq!(
        attrs
            .get("Signed Up")
            .and_then(|v| v.as_s().ok())
            .map(String::as_str),
        Some("2022-10-31T14:00:00Z")
    );
    assert_eq!(
        attrs
            .get("Plan")
            .and_then(|v| v.as_s().ok())
            .map(String::as_str),
        Some("Gold")
    );
    let arjun = stack
        .contact(&account, "whatsapp", "+919876543221")
        .await
        .expect("Arjun saved despite bad email");
    assert_eq!(s(&arjun, "email"), None);
    assert_eq!(b(&arjun, "whatsapp_opted"), Some(false));
    let rows = stack.rows_report(&summary).await;
    assert!(
        rows.iter()
            .any(|r| r[1] == "created" && r[2] == "invalid_email" && r[3] == "Email"),
        "{rows:?}"
    );
}

#[tokio::test]
#[ignore = "end to end: needs the local stack (make up), then cargo test -p integration-tests -- --ignored"]
async fn webex_style_uk_numbers_with_default_country_and_lists() {
    let stack = Stack::connect().await;
    let account = unique_account("webex");
    let summary = stack
        .import(
            &account,
            "sms",
            "uk.csv",
            &repo_file("samples/webex-uk.csv"),
            &[("default-country", "GB"), ("lists", "Spring Sale")],
        )
        .await;
    assert_eq!(summary["rows"]["created"], 2, "{summary}");
    assert_eq!(summary["rejections_by_reason"], json!({"not_mobile": 1}));
    let olivia = stack
        .contact(&account, "sms", "+447911123456")
        .await
        .expect("07… read as GB");
    assert_eq!(ss(&olivia, "lists"), ["Newsletter", "Spring Sale"]);
    assert_eq!(s(&olivia, "title").as_deref(), Some("Ms"));
    let harry = stack
        .contact(&account, "sms", "+447400123456")
        .await
        .expect("saved");
    assert_eq!(ss(&harry, "lists"), ["Newsletter", "Spring Sale", "VIP"]);
}

#[tokio::test]
#[ignore = "end to end: needs the local stack (make up), then cargo test -p integration-tests -- --ignored"]
async fn spotler_style_semicolons_and_numbers_without_plus() {
    let stack = Stack::connect().await;
    let account = unique_account("spotler");
    let summary = stack
        .import(
            &account,
            "whatsapp",
            "export.csv",
            &repo_file("samples/spotler.csv"),
            &[],
        )
        .await;
    assert_eq!(summary["source"]["delimiter"], ";");
    assert_eq!(summary["rows"]["created"], 2, "{summary}");
    assert_eq!(summary["rows"]["duplicate_in_file"], 1);
    let eva = stack
        .contact(&account, "whatsapp", "+31612345678")
        .await
        .expect("Eva saved");
    assert_eq!(s(&eva, "reference").as_deref(), Some("reference 1"));
    let chris = stack
        .contact(&account, "whatsapp", "+31687654321")
        .await
        .expect("Chris saved");
    let attrs = chris
        .get("attrs")
        .and_then(|a| a.as_m().ok())
        .expect("custom fields");
    assert_eq!(
        attrs
            .get("Product Purchased")
            .and_then(|v| v.as_s().ok())
            .map(String::as_str),
        Some("Starter; monthly")
    );
}

#[tokio::test]
#[ignore = "end to end: needs the local stack (make up), then cargo test -p integration-tests -- --ignored"]
async fn xlsx_workbook_first_sheet_with_data_numeric_and_date_cells() {
    let stack = Stack::connect().await;
    let account = unique_account("xlsx");
    let summary = stack
        .import(
            &account,
            "whatsapp",
            "contacts.xlsx",
            &repo_file("tests/fixtures/contacts.xlsx"),
            &[],
        )
        .await;
    assert_eq!(summary["source"]["format"], "xlsx");
    assert_eq!(summary["rows"]["created"], 3, "{summary}");
    assert_eq!(
        summary["rejections_by_reason"],
        json!({"missing_country_code": 1})
    );
    let grace = stack
        .contact(&account, "whatsapp", "+447911123460")
        .await
        .expect("numeric cell read as digits");
    assert_eq!(s(&grace, "date_of_birth").as_deref(), Some("1906-12-09"));
    assert!(stack
        .contact(&account, "whatsapp", "+447400123462")
        .await
        .is_some());
    let rows = stack.rows_report(&summary).await;
    assert_eq!(rows[1][0], "6", "sheet row numbers: {rows:?}");
}

#[tokio::test]
#[ignore = "end to end: needs the local stack (make up), then cargo test -p integration-tests -- --ignored"]
async fn same_file_twice_second_report_is_all_unchanged() {
    let stack = Stack::connect().await;
    let account = unique_account("twice");
    let body = repo_file("samples/myoperator.csv");
    let first = stack
        .import(&account, "whatsapp", "list.csv", &body, &[])
        .await;
    let second = stack
        .import(&account, "whatsapp", "list.csv", &body, &[])
        .await;
    assert_ne!(
        first["import_id"], second["import_id"],
        "a new upload is a new import"
    );
    assert_eq!(second["rows"]["created"], 0);
    assert_eq!(second["rows"]["unchanged"], 3);
    assert_eq!(second["message"], "0 new contacts saved to Contact Book.");
}

#[tokio::test]
#[ignore = "end to end: needs the local stack (make up), then cargo test -p integration-tests -- --ignored"]
async fn option_ignore_leaves_existing_contacts_and_update_changes_them() {
    let stack = Stack::connect().await;
    let account = unique_account("ignore");
    stack
        .import(
            &account,
            "whatsapp",
            "a.csv",
            b"Name,Phone\nEva,+447911123456\n",
            &[("tags", "first")],
        )
        .await;
    let ignored = stack
        .import(
            &account,
            "whatsapp",
            "b.csv",
            b"Name,Phone\nEva Changed,+447911123456\nNew,+447400123456\n",
            &[("on-existing", "ignore")],
        )
        .await;
    assert_eq!(
        (
            ignored["rows"]["skipped_existing"].as_u64(),
            ignored["rows"]["created"].as_u64()
        ),
        (Some(1), Some(1))
    );
    let eva = stack
        .contact(&account, "whatsapp", "+447911123456")
        .await
        .expect("exists");
    assert_eq!(s(&eva, "name").as_deref(), Some("Eva"));
    let updated = stack
        .import(
            &account,
            "whatsapp",
            "c.csv",
            b"Name,Phone,Email\nEva Smith,+447911123456,\n",
            &[("tags", "second")],
        )
        .await;
    assert_eq!(updated["rows"]["updated"], 1);
    let eva = stack
        .contact(&account, "whatsapp", "+447911123456")
        .await
        .expect("exists");
    assert_eq!(s(&eva, "name").as_deref(), Some("Eva Smith"));
    assert_eq!(
        ss(&eva, "tags"),
        ["first", "second"],
        "tags are added, never removed"
    );
}

#[tokio::test]
#[ignore = "end to end: needs the local stack (make up), then cargo test -p integration-tests -- --ignored"]
async fn blocked_contact_stays_blocked_through_an_import() {
    let stack = Stack::connect().await;
    let account = unique_account("blocked");
    stack
        .import(
            &account,
            "sms",
            "a.csv",
            b"Name,Phone\nEva,+447911123456\n",
            &[],
        )
        .await;
    let mut item = stack
        .contact(&account, "sms", "+447911123456")
        .await
        .expect("exists");
    item.insert(
        "status".into(),
        aws_sdk_dynamodb::types::AttributeValue::S("blocked".into()),
    );
    stack.put_item(item).await;
    let summary = stack
        .import(
            &account,
            "sms",
            "b.csv",
            b"Name,Phone\nEva B,+447911123456\n",
            &[],
        )
        .await;
    assert_eq!(summary["rows"]["updated"], 1);
    let eva = stack
        .contact(&account, "sms", "+447911123456")
        .await
        .expect("exists");
    assert_eq!(s(&eva, "status").as_deref(), Some("blocked"));
}

#[tokio::test]
#[ignore = "end to end: needs the local stack (make up), then cargo test -p integration-tests -- --ignored"]
async fn dry_run_reports_without_writing() {
    let stack = Stack::connect().await;
    let account = unique_account("dry");
    let summary = stack
        .import(
            &account,
            "whatsapp",
            "list.csv",
            &repo_file("samples/myoperator.csv"),
            &[("dry-run", "true")],
        )
        .await;
    assert_eq!(summary["dry_run"], true);
    assert_eq!(summary["rows"]["created"], 3);
    assert!(
        stack.contacts_of(&account).await.is_empty(),
        "a dry run writes no contact"
    );
}

#[tokio::test]
#[ignore = "end to end: needs the local stack (make up), then cargo test -p integration-tests -- --ignored"]
async fn account_setting_supplies_the_default_country() {
    let stack = Stack::connect().await;
    let account = unique_account("settings");
    let setting = [
        (
            "pk".to_string(),
            aws_sdk_dynamodb::types::AttributeValue::S(format!("ACCOUNT#{account}")),
        ),
        (
            "sk".to_string(),
            aws_sdk_dynamodb::types::AttributeValue::S("SETTINGS".into()),
        ),
        (
            "default_country".to_string(),
            aws_sdk_dynamodb::types::AttributeValue::S("IN".into()),
        ),
    ];
    stack.put_item(setting.into_iter().collect()).await;
    let summary = stack
        .import(
            &account,
            "whatsapp",
            "in.csv",
            b"Name,Mobile\nAsha,98765 43210\n",
            &[],
        )
        .await;
    assert_eq!(summary["rows"]["created"], 1, "{summary}");
    assert!(stack
        .contact(&account, "whatsapp", "+919876543210")
        .await
        .is_some());
}

#[tokio::test]
#[ignore = "end to end: needs the local stack (make up), then cargo test -p integration-tests -- --ignored"]
async fn pasted_number_list_in_txt() {
    let stack = Stack::connect().await;
    let account = unique_account("txt");
    let summary = stack
        .import(
            &account,
            "whatsapp",
            "paste.txt",
            b"+447911123456\r\n+44 7400 123456\r\n\r\n+447911123456\r\n12\r\n",
            &[],
        )
        .await;
    assert_eq!(
        summary["rows"],
        json!({"total": 4, "created": 2, "updated": 0, "unchanged": 0, "skipped_existing": 0, "skipped_new": 0, "duplicate_in_file": 1, "rejected": 1})
    );
}

#[tokio::test]
#[ignore = "end to end: needs the local stack (make up), then cargo test -p integration-tests -- --ignored"]
async fn file_level_failures_say_why_and_write_nothing() {
    let stack = Stack::connect().await;
    let garbage: Vec<u8> = (0..5000u32).map(|i| (i * 7919 % 256) as u8).collect();
    type Case<'a> = (&'a str, &'a [u8], &'a [(&'a str, &'a str)], &'a str);
    let cases: [Case<'_>; 6] = [
        (
            "no-phone.csv",
            b"Name,Email\nEva,eva@example.com\n",
            &[],
            "missing_phone_column",
        ),
        ("header-only.csv", b"Name,Phone\r\n", &[], "empty_file"),
        ("contacts.pdf", b"%PDF-1.4", &[], "unsupported_format"),
        (
            "bad-option.csv",
            b"Name,Phone\nEva,+447911123456\n",
            &[("on-existing", "merge")],
            "bad_option",
        ),
        (
            "bad-country.csv",
            b"Name,Phone\nEva,+447911123456\n",
            &[("default-country", "England")],
            "bad_option",
        ),
        ("garbage.csv", &garbage, &[], "unreadable_file"),
    ];
    for (name, body, metadata, code) in cases {
        let account = unique_account("fail");
        let summary = stack
            .import(&account, "whatsapp", name, body, metadata)
            .await;
        assert_eq!(summary["status"], "failed", "{name}: {summary}");
        assert_eq!(summary["error"]["code"], code, "{name}: {summary}");
        assert!(
            summary["error"]["message"]
                .as_str()
                .is_some_and(|m| m.len() > 10),
            "{name}: a message a person can act on"
        );
        assert!(
            stack.contacts_of(&account).await.is_empty(),
            "{name}: nothing written"
        );
    }
}

#[tokio::test]
#[ignore = "end to end: needs the local stack (make up), then cargo test -p integration-tests -- --ignored"]
async fn real_aws_event_shape_invoked_directly_with_encoded_key() {
    let stack = Stack::connect().await;
    let account = unique_account("direct");
    let key = format!("imports/{account}/whatsapp/My File (1).csv");
    stack
        .upload(&format!("imports/{account}/other.txt"), b"x", &[])
        .await; // not an import key: logged only
    stack
        .s3
        .put_object()
        .bucket(integration_tests::BUCKET)
        .key(&key)
        .body(b"Phone\n+447911123456\n".to_vec().into())
        .send()
        .await
        .expect("put");
    let summary = stack.wait_for_summary(&account, &key, 1).await;
    // The same upload delivered again, in AWS's own shape (URL-encoded key): same
    // import id, so nothing is imported twice.
    let record = json!({
        "eventVersion": "2.1", "eventSource": "aws:s3", "awsRegion": "us-east-1", "eventTime": "2026-11-21T10:00:00.000Z",
        "eventName": "ObjectCreated:Put", "userIdentity": {"principalId": "AWS:EXAMPLE"},
        "requestParameters": {"sourceIPAddress": "127.0.0.1"}, "responseElements": {"x-amz-request-id": "R", "x-amz-id-2": "I"},
        "s3": {"s3SchemaVersion": "1.0", "configurationId": "imports", "bucket": {"name": "contact-uploads", "ownerIdentity": {"principalId": "A"}, "arn": "arn:aws:s3:::contact-uploads"},
               "object": {"key": format!("imports/{account}/whatsapp/My+File+%281%29.csv"), "size": 21, "eTag": "0123456789abcdef", "sequencer": "0A1B2C3D4E5F678901"}}
    });
    let answer = invoke(
        "import-contacts",
        &json!({"Records": [record.clone(), record]}),
    )
    .expect("imported");
    let imports = answer["imports"].as_array().expect("one result per record");
    assert_eq!(imports.len(), 2);
    assert_eq!(imports[0]["key"], key);
    assert!(imports[0]["status"] == "completed", "{answer}");
    assert_eq!(
        imports[1]["status"], "skipped",
        "the duplicate record is not imported twice: {answer}"
    );
    assert_eq!(summary["rows"]["created"], 1);
    let again = stack.summaries(&account).await;
    let direct = again
        .iter()
        .find(|s| s["import_id"] == imports[0]["import_id"])
        .expect("summary of the direct invoke");
    assert_eq!(direct["rows"]["unchanged"], 1);
    let job = stack
        .item(
            &format!(
                "IMPORT#{account}#{}",
                imports[0]["import_id"].as_str().unwrap_or_default()
            ),
            "JOB",
        )
        .await
        .expect("job item");
    assert_eq!(s(&job, "status").as_deref(), Some("completed"));
}
