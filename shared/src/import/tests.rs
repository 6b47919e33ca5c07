//! The import service end to end over the in-memory ports.

use super::import_in_memory as import_with;
use super::*;
use crate::domain::channel::Channel;
use crate::domain::mapping::MappingSource;
use crate::domain::outcome::{FailureCode, Outcome};
use crate::domain::phone::PhoneRejection;
use crate::ports::memory::MemoryPorts;

const BUCKET: &str = "contact-uploads";

async fn import(
    store: &MemoryPorts,
    key: &str,
    body: &[u8],
    metadata: &[(&str, &str)],
    sequencer: &str,
) -> Summary {
    import_with(&Config::default(), store, key, body, metadata, sequencer).await
}

const MYOPERATOR: &[u8] = b"Name,Phone number\r\nAsha Rao,+91 98765 43210\r\nNo Number,\r\nRavi,+919876543211\r\nAsha again,+919876543210\r\n";

#[tokio::test]
async fn imports_counts_and_reports_every_row() {
    let store = MemoryPorts::default();
    let summary = import(
        &store,
        "imports/acme/whatsapp/list.csv",
        MYOPERATOR,
        &[],
        "1",
    )
    .await;
    assert_eq!(summary.status, ImportStatus::CompletedWithErrors);
    assert_eq!(
        (
            summary.rows.total,
            summary.rows.created,
            summary.rows.rejected,
            summary.rows.duplicate_in_file
        ),
        (4, 2, 1, 1)
    );
    assert_eq!(summary.message, "2 new contacts saved to Contact Book.");
    assert_eq!(
        summary
            .column_mapping
            .get("Phone number")
            .map(String::as_str),
        Some("phone")
    );
    let rows = store
        .objects
        .text(
            BUCKET,
            summary.rows_report_key.as_deref().expect("rows key"),
        )
        .expect("rows.csv");
    let lines: Vec<&str> = rows.lines().collect();
    assert_eq!(
        lines[0],
        "row,outcome,code,column,message,Name,Phone number"
    );
    assert!(
        lines[1].starts_with("3,rejected,missing_phone,Phone number,"),
        "{}",
        lines[1]
    );
    assert!(
        lines[2].starts_with("5,duplicate_in_file,duplicate_in_file,"),
        "{}",
        lines[2]
    );
    let contact = store
        .contacts
        .by_pk("CONTACT#acme#whatsapp#+919876543210")
        .expect("saved");
    assert_eq!(
        contact.text.get("name").map(String::as_str),
        Some("Asha Rao")
    );
    assert!(store
        .objects
        .text(BUCKET, &summary_key("acme", &summary.import_id))
        .is_some());
    let html_key = format!("reports/acme/{}/report.html", summary.import_id);
    assert_eq!(summary.html_report_key.as_deref(), Some(html_key.as_str()));
    let page = store.objects.text(BUCKET, &html_key).expect("report.html");
    assert!(
        page.contains(
            "<tr><td class=\"num\">3</td><td><code>missing_phone</code></td><td>Phone number</td>"
        ),
        "{page}"
    );
    assert!(page.contains(
        "<td>No Number</td><td class=\"bad\">⚠ <span class=\"blank\">(blank)</span></td>"
    ));
}

#[tokio::test]
async fn second_upload_is_unchanged_and_duplicate_event_is_skipped() {
    let store = MemoryPorts::default();
    let first = import(
        &store,
        "imports/acme/whatsapp/list.csv",
        MYOPERATOR,
        &[],
        "1",
    )
    .await;
    let again = import(
        &store,
        "imports/acme/whatsapp/list.csv",
        MYOPERATOR,
        &[],
        "2",
    )
    .await;
    assert_eq!((again.rows.created, again.rows.unchanged), (0, 2));
    // What each import consumed is in its summary (the in-memory store's model of
    // DynamoDB's units): the first wrote its two contacts, the second read them and
    // wrote nothing.
    assert_eq!(first.consumed.write_units, 2.0);
    assert_eq!(
        (again.consumed.write_units, again.consumed.read_units),
        (0.0, 1.0)
    );
    let config = Config::default();
    let importer = Importer::in_memory(&store, &config);
    let upload = UploadedFile {
        bucket: BUCKET.into(),
        key: "imports/acme/whatsapp/list.csv".into(),
        sequencer: Some("2".into()),
        ..Default::default()
    };
    assert!(matches!(
        importer.run(&upload).await,
        Ok(ImportResult::Skipped(_))
    ));
}

#[tokio::test]
async fn options_ignore_dry_run_lists_and_country() {
    let store = MemoryPorts::default();
    let webex =
        b"First Name,Last Name,Mobile\nOlivia,Jones,07911 123456\nHarry,Smith,07400 123456\n";
    let dry = import(
        &store,
        "imports/acme/sms/uk.csv",
        webex,
        &[("default-country", "GB"), ("dry-run", "true")],
        "1",
    )
    .await;
    assert_eq!((dry.rows.created, dry.dry_run), (2, true));
    assert_eq!(store.contacts.count(), 0);
    let real = import(
        &store,
        "imports/acme/sms/uk.csv",
        webex,
        &[("default-country", "GB"), ("lists", "Spring, VIP")],
        "2",
    )
    .await;
    assert_eq!(real.rows.created, 2);
    let olivia = store
        .contacts
        .by_pk("CONTACT#acme#sms#+447911123456")
        .expect("saved");
    assert_eq!(
        olivia.text.get("name").map(String::as_str),
        Some("Olivia Jones")
    );
    assert_eq!(olivia.lists.len(), 2);
    let ignored = import(
        &store,
        "imports/acme/sms/uk.csv",
        b"Phone,Name\n+447911123456,Changed\n",
        &[("on-existing", "ignore")],
        "3",
    )
    .await;
    assert_eq!(ignored.rows.skipped_existing, 1);
    assert_eq!(
        store
            .contacts
            .by_pk("CONTACT#acme#sms#+447911123456")
            .and_then(|c| c.text.get("name").cloned())
            .as_deref(),
        Some("Olivia Jones")
    );
}

#[tokio::test]
async fn file_level_failures_write_nothing() {
    let store = MemoryPorts::default();
    type Case<'a> = (&'a str, &'a [u8], &'a [(&'a str, &'a str)], &'a str);
    let cases: [Case<'_>; 5] = [
        (
            "imports/a/whatsapp/x.csv",
            b"Name,Email\nEva,e@x.com\n",
            &[],
            "missing_phone_column",
        ),
        (
            "imports/a/whatsapp/x.csv",
            b"Name,Phone\n",
            &[],
            "empty_file",
        ),
        ("imports/a/whatsapp/x.csv", b"", &[], "empty_file"),
        (
            "imports/a/whatsapp/x.pdf",
            b"%PDF",
            &[],
            "unsupported_format",
        ),
        (
            "imports/a/whatsapp/x.csv",
            b"Phone\n+447911123456\n",
            &[("on-existing", "merge")],
            "bad_option",
        ),
    ];
    for (i, (key, body, meta, code)) in cases.into_iter().enumerate() {
        let summary = import(&store, key, body, meta, &i.to_string()).await;
        assert_eq!(summary.status, ImportStatus::Failed, "{code}");
        assert_eq!(summary.error.as_ref().map(|e| e.code.as_str()), Some(code));
        let html_key = summary.html_report_key.as_deref().expect("report.html key");
        let page = store.objects.text(BUCKET, html_key).expect("report.html");
        assert!(page.contains(&format!("(<code>{code}</code>)")), "{code}");
    }
    assert_eq!(store.contacts.count(), 0);
}

#[tokio::test]
async fn too_large_is_refused_before_download() {
    let store = MemoryPorts::default();
    let config = Config {
        max_upload_bytes: 10,
        ..Config::default()
    };
    let summary = import_with(
        &config,
        &store,
        "imports/acme/whatsapp/big.csv",
        b"Phone\n+447911123456\n",
        &[],
        "1",
    )
    .await;
    assert_eq!(
        summary.error.map(|e| e.code),
        Some(FailureCode::FileTooLarge)
    );
    assert_eq!(store.contacts.count(), 0);
}

#[tokio::test]
async fn max_rows_stops_and_says_what_was_written() {
    let store = MemoryPorts::default();
    let config = Config {
        max_rows: 2,
        ..Config::default()
    };
    let summary = import_with(
        &config,
        &store,
        "imports/acme/whatsapp/many.csv",
        b"Phone\n+447911123456\n+447911123457\n+447911123458\n",
        &[],
        "1",
    )
    .await;
    assert_eq!(
        summary.error.as_ref().map(|e| e.code.as_str()),
        Some("too_many_rows")
    );
    assert!(summary.message.contains("line 4"), "{}", summary.message);
    assert_eq!((summary.rows.total, summary.rows.created), (2, 2));
    assert_eq!(store.contacts.count(), 2);
}

#[tokio::test]
async fn pasted_list_in_txt() {
    let store = MemoryPorts::default();
    let summary = import(
        &store,
        "imports/acme/whatsapp/paste.txt",
        b"+447911123456\n+447400123456\n\nnot a number\n",
        &[],
        "1",
    )
    .await;
    assert_eq!(
        (
            summary.rows.total,
            summary.rows.created,
            summary.rows.rejected
        ),
        (3, 2, 1)
    );
}

#[tokio::test]
async fn a_taken_over_job_resumes_after_its_last_committed_row() {
    let store = MemoryPorts::default();
    let key = "imports/acme/whatsapp/big.csv";
    let body = b"Phone\n+447911123456\n+447911123457\nbad\n+447911123458\n";
    store.objects.insert(BUCKET, key, body, &[]);
    let upload = UploadedFile {
        bucket: BUCKET.into(),
        key: key.into(),
        sequencer: Some("1".into()),
        ..Default::default()
    };
    let id = import_id(&UploadIdentity {
        bucket: BUCKET,
        key,
        sequencer: Some("1"),
        ..Default::default()
    });
    // An earlier owner committed rows up to line 3 (two contacts) and died.
    let mut progress = JobProgress {
        last_row: 3,
        ..Default::default()
    };
    progress.rows.add(Outcome::Created);
    progress.rows.add(Outcome::Created);
    let job = Job {
        account_id: "acme".into(),
        import_id: id.clone(),
        status: ImportStatus::Running,
        progress,
        summary_key: summary_key("acme", &id),
        source_key: key.into(),
        started_at: now_rfc3339(),
        finished_at: None,
        lease_expires_at: 0,
        lease_token: "the dead owner's".into(),
        completion_pending: false,
    };
    // It died before writing its index item.
    let started_at = job.started_at.clone();
    store.jobs.insert(job);
    let config = Config::default();
    let importer = Importer::in_memory(&store, &config);
    let ImportResult::Finished(summary) = importer.run(&upload).await.expect("ran") else {
        panic!("skipped")
    };
    assert_eq!(
        (
            summary.rows.total,
            summary.rows.created,
            summary.rows.rejected
        ),
        (4, 3, 1)
    );
    assert_eq!(
        store.contacts.writes(),
        1,
        "rows before the checkpoint are not written again"
    );
    // The resume wrote the missing index item, under the original start time.
    assert_eq!(
        store.jobs.indexed("acme"),
        [crate::domain::keys::import_index_sk(&started_at, &id)]
    );
    assert_eq!(summary.started_at, started_at);
}

#[tokio::test]
async fn an_import_is_indexed_once_in_its_accounts_history_and_its_end_recorded() {
    // GIVEN an import of one file, and the same S3 event again
    let store = MemoryPorts::default();
    let key = "imports/acme/whatsapp/list.csv";
    let summary = import(&store, key, MYOPERATOR, &[], "1").await;
    let config = Config::default();
    let again = Importer::in_memory(&store, &config)
        .run(&UploadedFile {
            bucket: BUCKET.into(),
            key: key.into(),
            sequencer: Some("1".into()),
            ..Default::default()
        })
        .await
        .expect("ran");
    assert!(matches!(again, ImportResult::Skipped(_)), "{again:?}");

    // THEN the account's history holds it once, keyed by its start time; the duplicate
    // wrote no index item; the job item says when it finished
    let sk = crate::domain::keys::import_index_sk(&summary.started_at, &summary.import_id);
    assert_eq!(store.jobs.indexed("acme"), [sk]);
    assert!(store.jobs.indexed("other").is_empty());
    assert_eq!(store.jobs.index_writes(), 1);
    let job = store.jobs.get(&summary.import_id).expect("job");
    assert_eq!(
        job.finished_at.as_deref(),
        Some(summary.finished_at.as_str())
    );
    assert_eq!(job.started_at, summary.started_at);
}

#[tokio::test]
async fn an_erased_number_is_rejected_as_suppressed_and_the_rest_imported() {
    // GIVEN a deployment with a suppression key, and +91 98765 43210 erased
    let store = MemoryPorts::default();
    let config = Config {
        suppression: crate::domain::suppression::SuppressionKey::new(b"test-suppression-secret"),
        ..Config::default()
    };
    let key = config.suppression.as_ref().expect("key");
    let digest = key.digest("+919876543210");
    let first = import_with(
        &config,
        &store,
        "imports/acme/whatsapp/a.csv",
        MYOPERATOR,
        &[],
        "1",
    )
    .await;
    assert_eq!(first.rows.created, 2);
    let asha = store
        .contacts
        .get("acme", Channel::Whatsapp, "+919876543210")
        .expect("imported");
    let erased = store
        .contacts
        .erase_contact(&asha, &[], std::slice::from_ref(&digest))
        .await
        .expect("answered");
    assert!(erased);

    // WHEN the same file comes again
    let second = import_with(
        &config,
        &store,
        "imports/acme/whatsapp/b.csv",
        MYOPERATOR,
        &[],
        "2",
    )
    .await;

    // THEN the erased number is rejected (suppressed), the other row is unchanged,
    // and the report names the row and the phone column
    assert_eq!(
        second.rows.rejected, 2,
        "the blank row and the erased number"
    );
    assert_eq!(second.rows.unchanged, 1);
    assert_eq!(
        second.rejections_by_reason.get(&PhoneRejection::Suppressed),
        Some(&1)
    );
    assert!(store
        .contacts
        .get("acme", Channel::Whatsapp, "+919876543210")
        .is_none());
    let rows = store
        .objects
        .text(BUCKET, second.rows_report_key.as_deref().expect("rows key"))
        .expect("rows report");
    let line = rows
        .lines()
        .find(|l| l.contains("suppressed"))
        .expect("a report line for the erased row");
    assert!(
        line.starts_with("2,rejected,suppressed,Phone number,"),
        "{line}"
    );
    // An update-only upload rejects it the same way, and so does its dry run; a new
    // number is listed in rows.csv as skipped_new
    let with_new = [MYOPERATOR, b"Newcomer,+919876543299\r\n"].concat();
    for (n, dry_run) in [(3, "false"), (4, "true")] {
        let skip = import_with(
            &config,
            &store,
            &format!("imports/acme/whatsapp/{n}.csv"),
            &with_new,
            &[("on-new", "skip"), ("dry-run", dry_run)],
            &n.to_string(),
        )
        .await;
        assert_eq!(
            skip.rejections_by_reason.get(&PhoneRejection::Suppressed),
            Some(&1),
            "dry run {dry_run}"
        );
        assert_eq!((skip.rows.skipped_new, skip.rows.created), (1, 0));
        let rows = store
            .objects
            .text(BUCKET, skip.rows_report_key.as_deref().expect("rows key"))
            .expect("rows report");
        assert!(
            rows.lines()
                .any(|l| l.starts_with("6,skipped_new,skipped_new,Phone number,")),
            "{rows}"
        );
    }
    assert!(store
        .contacts
        .get("acme", Channel::Whatsapp, "+919876543299")
        .is_none());
}

/// Stores an SMS contact for `phone` that texted STOP itself.
async fn stopped(store: &MemoryPorts, phone: &str) {
    use crate::domain::consent::{Category, ConsentSource, Signal, State};
    use crate::domain::contact::{Contact, ContactDraft, Source, WriteStamp};
    use crate::ports::{ContactStore, Precondition};
    let draft = ContactDraft {
        phone: phone.into(),
        ..Default::default()
    };
    let stamp = WriteStamp {
        now: "2026-11-21T10:00:00.000Z".into(),
        source: Source::Inbound,
        import_id: None,
        campaign_id: None,
    };
    let mut contact = Contact::create("acme", Channel::Sms, &draft, &stamp);
    contact.anonymous = true;
    contact.apply_consent(&Signal {
        category: Category::Marketing,
        state: State::OptedOut,
        at: stamp.now.clone(),
        source: ConsentSource::Keyword,
        scope: None,
        evidence: "STOP".into(),
    });
    store
        .contacts
        .put_contact(&contact, Precondition::Absent)
        .await
        .expect("stored");
}

#[tokio::test]
async fn an_import_keeps_a_persons_own_opt_out_and_says_so_on_the_row() {
    use crate::domain::consent::{Category, State};
    use crate::domain::validate::WarningCode;
    // GIVEN two numbers that texted STOP
    let store = MemoryPorts::default();
    stopped(&store, "+447911123456").await;
    stopped(&store, "+447911123457").await;
    // WHEN a file says both (and a new number) opted in, the first with a new name
    let body = b"Phone,Name,WhatsApp Opted\n+447911123456,Eva,TRUE\n+447911123457,,yes\n+447911123458,Bo,TRUE\n";
    let key = "imports/acme/sms/opted.csv";
    let dry = import(&store, key, body, &[("dry-run", "true")], "1").await;
    let summary = import(&store, key, body, &[], "2").await;

    // THEN the stopped contacts stay opted out; the first still gains its name
    for s in [&dry, &summary] {
        assert_eq!(
            (s.rows.created, s.rows.updated, s.rows.unchanged),
            (1, 1, 1),
            "dry run {}",
            s.dry_run
        );
        assert_eq!(
            s.warnings_by_code,
            [(WarningCode::ConsentKeptOptedOut, 2)]
                .into_iter()
                .collect()
        );
    }
    let eva = store
        .contacts
        .get("acme", Channel::Sms, "+447911123456")
        .expect("stored");
    assert_eq!(eva.text.get("name").map(String::as_str), Some("Eva"));
    assert_eq!(eva.consent[&Category::Marketing].state, State::OptedOut);
    assert_eq!(eva.consent[&Category::Marketing].evidence, "STOP");
    assert_eq!(eva.whatsapp_opted, Some(false));
    let bo = store
        .contacts
        .get("acme", Channel::Sms, "+447911123458")
        .expect("created");
    let entry = &bo.consent[&Category::Marketing];
    assert_eq!(entry.state, State::OptedIn);
    assert_eq!(entry.evidence, format!("{}#row 4", summary.import_id));
    assert_eq!(entry.at, summary.started_at);

    // AND rows.csv names the rows, the opted column and why
    let rows = store
        .objects
        .text(
            BUCKET,
            summary.rows_report_key.as_deref().expect("rows key"),
        )
        .expect("rows.csv");
    let lines: Vec<&str> = rows.lines().collect();
    assert_eq!(lines.len(), 3, "{rows}");
    assert!(
        lines[1].starts_with("2,updated,consent_kept_opted_out,WhatsApp Opted,the person opted out of marketing messages themselves (an SMS STOP"),
        "{}",
        lines[1]
    );
    assert!(
        lines[1].ends_with(",+447911123456,Eva,TRUE"),
        "{}",
        lines[1]
    );
    assert!(
        lines[2].starts_with("3,unchanged,consent_kept_opted_out,WhatsApp Opted,"),
        "{}",
        lines[2]
    );
}

const BSUID: &str = "GB.13491208655302741918";

#[tokio::test]
async fn whatsapp_rows_without_a_phone_are_keyed_by_their_bsuid_and_repeats_are_duplicates() {
    // GIVEN a WhatsApp file where some people are known only by their BSUID: one twice,
    // one with a value that is no BSUID, one with neither phone nor BSUID
    let store = MemoryPorts::default();
    let file = format!(
        "Phone,Name,WhatsApp User ID\n\
         ,Eva,{BSUID}\n\
         ,Bo,US.20931208655302741234\n\
         ,Eva again,{BSUID}\n\
         ,Cy,447911123456\n\
         ,Di,\n\
         +447911123456,Ed,{BSUID}\n\
         +447911123457,Fi,not-a-bsuid\n"
    );

    // WHEN it is imported
    let summary = import(
        &store,
        "imports/acme/whatsapp/people.csv",
        file.as_bytes(),
        &[],
        "1",
    )
    .await;

    // THEN both BSUID-only people are saved under their BSUID's key, the repeat is a
    // duplicate of row 2, and the rows with numbers are keyed by them
    assert_eq!(
        (
            summary.rows.total,
            summary.rows.created,
            summary.rows.duplicate_in_file,
            summary.rows.rejected
        ),
        (7, 4, 1, 2),
        "{summary:?}"
    );
    assert_eq!(
        summary
            .column_mapping
            .get("WhatsApp User ID")
            .map(String::as_str),
        Some("whatsapp_user_id")
    );
    assert_eq!(
        summary
            .rejections_by_reason
            .get(&PhoneRejection::InvalidUserId),
        Some(&1)
    );
    assert_eq!(
        summary.rejections_by_reason.get(&PhoneRejection::Missing),
        Some(&1)
    );
    let eva = store
        .contacts
        .get("acme", Channel::Whatsapp, &format!("bsuid:{BSUID}"))
        .expect("saved by its BSUID");
    assert_eq!(eva.e164(), None);
    assert_eq!(eva.text.get("user_id").map(String::as_str), Some(BSUID));
    assert_eq!(eva.text.get("name").map(String::as_str), Some("Eva"));
    let ed = store
        .contacts
        .get("acme", Channel::Whatsapp, "+447911123456")
        .expect("saved by its number");
    assert_eq!(ed.text.get("user_id").map(String::as_str), Some(BSUID));
    let rows = store
        .objects
        .text(
            BUCKET,
            summary.rows_report_key.as_deref().expect("rows key"),
        )
        .expect("rows.csv");
    let lines: Vec<&str> = rows.lines().collect();
    assert!(
        lines.iter().any(|l| l
            .starts_with("4,duplicate_in_file,duplicate_in_file,WhatsApp User ID,")
            && l.contains("also on row 2")),
        "{rows}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("5,rejected,invalid_user_id,WhatsApp User ID,")),
        "{rows}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("6,rejected,missing_phone,Phone,")),
        "{rows}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("8,created,invalid_user_id,WhatsApp User ID,")),
        "{rows}"
    );

    // AND the same file again is unchanged row by row
    let again = import(
        &store,
        "imports/acme/whatsapp/people.csv",
        file.as_bytes(),
        &[],
        "2",
    )
    .await;
    assert_eq!(
        (again.rows.unchanged, again.rows.created),
        (4, 0),
        "{again:?}"
    );
}

#[tokio::test]
async fn on_sms_the_whatsapp_user_id_column_is_ignored() {
    let store = MemoryPorts::default();
    let file = format!("Phone,Name,WhatsApp User ID\n,Eva,{BSUID}\n+447911123456,Ed,{BSUID}\n");
    let summary = import(
        &store,
        "imports/acme/sms/people.csv",
        file.as_bytes(),
        &[],
        "1",
    )
    .await;
    assert_eq!(
        (summary.rows.created, summary.rows.rejected),
        (1, 1),
        "{summary:?}"
    );
    assert_eq!(
        summary
            .column_mapping
            .get("WhatsApp User ID")
            .map(String::as_str),
        Some("ignore")
    );
    let ed = store
        .contacts
        .get("acme", Channel::Sms, "+447911123456")
        .expect("saved");
    assert_eq!(ed.text.get("user_id"), None);
    assert!(ed.attrs.is_empty());
}

/// A 330-row SMS file with a problem on many rows: bad e-mails (warned), bad numbers
/// (rejected), repeats (duplicates), two people who texted STOP marked opted in
/// (consent kept opted out) and two erased numbers (suppressed), spread over every batch.
fn messy_file(stopped: &[&str], erased: &[&str]) -> Vec<u8> {
    let mut body = String::from("Name,Phone,Email,WhatsApp Opted\n");
    let mut last_phone = String::new();
    for i in 0..330usize {
        let mut phone = format!("+447911{:06}", 200_000 + i);
        let mut email = format!("p{i}@example.com");
        let mut opted = "";
        match i {
            5 | 250 => {
                phone = stopped[usize::from(i == 250)].to_string();
                opted = "TRUE";
            }
            7 | 260 => phone = erased[usize::from(i == 260)].to_string(),
            _ if i % 13 == 0 => phone = "12".into(),
            _ if i % 17 == 0 => phone = last_phone.clone(),
            _ => {}
        }
        if i % 10 == 3 {
            email = "not-an-address".into();
        }
        body.push_str(&format!("Person {i},{phone},{email},{opted}\n"));
        last_phone = phone;
    }
    body.into_bytes()
}

/// A store where two numbers texted STOP and two were erased, and its configuration.
async fn book_with_history(config: &Config) -> MemoryPorts {
    let store = MemoryPorts::default();
    for phone in ["+447911100001", "+447911100002"] {
        stopped(&store, phone).await;
    }
    let key = config.suppression.as_ref().expect("suppression key");
    for phone in ["+447911100003", "+447911100004"] {
        stopped(&store, phone).await;
        let contact = store
            .contacts
            .get("acme", Channel::Sms, phone)
            .expect("stored");
        let digest = key.digest(phone);
        let erased = store
            .contacts
            .erase_contact(&contact, &[], std::slice::from_ref(&digest))
            .await
            .expect("erased");
        assert!(erased);
    }
    store
}

#[tokio::test]
async fn rows_csv_after_hand_overs_equals_an_uninterrupted_runs() {
    let config = Config {
        suppression: crate::domain::suppression::SuppressionKey::new(b"test-suppression-secret"),
        write_concurrency: 1,
        ..Config::default()
    };
    let body = messy_file(
        &["+447911100001", "+447911100002"],
        &["+447911100003", "+447911100004"],
    );
    let key = "imports/acme/sms/messy.csv";
    let report = |store: &MemoryPorts, summary: &Summary| {
        store
            .objects
            .text(BUCKET, summary.rows_report_key.as_deref().expect("key"))
            .expect("rows.csv")
    };
    let rejected_rows = |store: &MemoryPorts, summary: &Summary| {
        let key = summary.html_report_key.as_deref().expect("key");
        let page = store.objects.text(BUCKET, key).expect("report.html");
        let start = page
            .find("<h2 id=\"rejected-rows\">")
            .expect("rejected rows");
        let end = start + page[start..].find("</table>").expect("their table");
        page[start..end].to_string()
    };

    // GIVEN the report of an uninterrupted import
    let whole = book_with_history(&config).await;
    let expected = import_with(&config, &whole, key, &body, &[], "1").await;
    let expected_rows = report(&whole, &expected);
    for code in [
        "suppressed",
        "consent_kept_opted_out",
        "invalid_email",
        ",rejected,",
        ",duplicate_in_file,",
    ] {
        assert!(expected_rows.contains(code), "the file has a {code} row");
    }

    // WHEN the same import fails twice mid-way (writing rows 120 and 240), and each
    // retry resumes where the last one stopped
    let store = book_with_history(&config).await;
    store.contacts.fail_batch_with("+447911200120");
    store.contacts.fail_batch_with("+447911200240");
    store.objects.insert(BUCKET, key, &body, &[]);
    let upload = UploadedFile {
        bucket: BUCKET.into(),
        key: key.into(),
        sequencer: Some("1".into()),
        ..Default::default()
    };
    let importer = Importer::in_memory(&store, &config);
    let mut failures = 0;
    let mut parts_seen = 0;
    let summary = loop {
        match importer.run(&upload).await {
            Ok(ImportResult::Finished(summary)) => break summary,
            Ok(ImportResult::Skipped(why)) => panic!("skipped: {why}"),
            Err(_) => {
                failures += 1;
                assert!(failures <= 2, "only two transactions fail");
                let job = store.jobs.get(&expected.import_id).expect("job");
                parts_seen = job.progress.report_parts;
            }
        }
    };

    // THEN the report is the uninterrupted one, line for line, as are the counts,
    // and the parts it was resumed from are gone
    assert_eq!(failures, 2);
    assert!(
        parts_seen >= 2,
        "each hand-over stored a part ({parts_seen})"
    );
    assert_eq!(report(&store, &summary), expected_rows);
    let expected_sample = rejected_rows(&whole, &expected);
    assert!(
        expected_sample.contains("<td class=\"num\">2</td><td><code>missing_country_code</code>"),
        "{expected_sample}"
    );
    assert_eq!(
        rejected_rows(&store, &summary),
        expected_sample,
        "report.html lists the rejected rows of every invocation"
    );
    assert_eq!(summary.rows, expected.rows);
    assert_eq!(summary.rejections_by_reason, expected.rejections_by_reason);
    assert_eq!(summary.warnings_by_code, expected.warnings_by_code);
    let parts = format!("reports/acme/{}/rows.csv.parts/", summary.import_id);
    assert_eq!(store.objects.keys(BUCKET, &parts), Vec::<String>::new());
}

#[tokio::test]
async fn a_worker_paused_past_its_lease_stops_and_the_taker_finishes_alone() {
    // GIVEN a one-second lease, and a first worker that stalls in its second write
    let config = Config {
        lease_seconds: 1,
        write_concurrency: 1,
        ..Config::default()
    };
    let store = MemoryPorts::default();
    let body: String = std::iter::once("Phone,Email\n".to_string())
        .chain((0..300).map(|i| format!("+447911{:06},p{i}@example.com\n", 200_000 + i)))
        .collect();
    let key = "imports/acme/whatsapp/paused.csv";
    store.objects.insert(BUCKET, key, body.as_bytes(), &[]);
    let upload = UploadedFile {
        bucket: BUCKET.into(),
        key: key.into(),
        sequencer: Some("1".into()),
        ..Default::default()
    };
    let stall = store.contacts.stall_batch(2);
    let first = Importer::in_memory(&store, &config);
    let second = Importer::in_memory(&store, &config);

    // WHEN a second worker takes the job over while the first is paused, finishes it,
    // and only then does the first wake up
    let (first, second) = tokio::join!(first.run(&upload), async {
        let reached = tokio::time::timeout(Duration::from_secs(60), stall.reached.notified());
        reached
            .await
            .expect("the first worker reaches its second write");
        let finished = second.run(&upload).await;
        stall.release.notify_one();
        finished
    });

    // THEN the taker's result is the import's: every contact once, its counts, its
    // summary.json; the first worker stopped without writing its own
    let Ok(ImportResult::Finished(summary)) = second else {
        panic!("the taker finishes: {second:?}")
    };
    let Ok(ImportResult::Skipped(why)) = first else {
        panic!("the paused worker stops: {first:?}")
    };
    assert!(why.contains("taken over by another worker"), "{why}");
    assert_eq!((summary.rows.total, summary.rows.created), (300, 300));
    assert_eq!(store.contacts.count(), 300);
    let stored = store
        .objects
        .text(BUCKET, &summary_key("acme", &summary.import_id))
        .expect("summary.json");
    let stored: Summary = serde_json::from_str(&stored).expect("json");
    assert_eq!(
        stored.finished_at, summary.finished_at,
        "the taker's summary"
    );
    let job = store.jobs.get(&summary.import_id).expect("job");
    assert_eq!(job.status, ImportStatus::Completed);
    assert_eq!(job.progress.rows, summary.rows);
}

#[tokio::test]
async fn every_finished_import_publishes_one_completion_event_and_a_duplicate_none() {
    let store = MemoryPorts::default();
    let done = import(&store, "imports/acme/sms/a.csv", MYOPERATOR, &[], "1").await;
    let dry = import(
        &store,
        "imports/acme/sms/b.csv",
        MYOPERATOR,
        &[("dry-run", "true")],
        "2",
    )
    .await;
    let failed = import(&store, "imports/acme/sms/c.csv", b"Name\nEva\n", &[], "3").await;
    let config = Config::default();
    let duplicate = UploadedFile {
        bucket: BUCKET.into(),
        key: "imports/acme/sms/a.csv".into(),
        sequencer: Some("1".into()),
        ..Default::default()
    };
    let again = Importer::in_memory(&store, &config).run(&duplicate).await;
    assert!(matches!(again, Ok(ImportResult::Skipped(_))));

    let published = store.events.published();
    let ids: Vec<&str> = published
        .iter()
        .filter_map(|e| e["import_id"].as_str())
        .collect();
    assert_eq!(ids, [&done.import_id, &dry.import_id, &failed.import_id]);
    let first = &published[0];
    assert_eq!(first["status"], "completed_with_errors");
    assert_eq!(first["rows"]["created"], 2);
    assert!(first.get("column_mapping").is_none());
    let keys = ["summary_key", "rows_report_key", "html_report_key"];
    let prefix = format!("reports/acme/{}/", done.import_id);
    for key in keys {
        assert!(
            first[key].as_str().is_some_and(|k| k.starts_with(&prefix)),
            "{key}: {first}"
        );
    }
    assert_eq!(published[1]["dry_run"], true);
    assert_eq!(published[2]["error"]["code"], "missing_phone_column");
    let job = store.jobs.get(&done.import_id).expect("job");
    assert!(!job.completion_pending);
}

#[tokio::test]
async fn an_event_not_published_is_published_once_by_the_retry() {
    // GIVEN an import that finishes while the event bus is unreachable
    let store = MemoryPorts::default();
    let config = Config {
        lease_seconds: 1,
        ..Config::default()
    };
    store.events.set_unreachable(true);
    store
        .objects
        .insert(BUCKET, "imports/acme/sms/a.csv", MYOPERATOR, &[]);
    let upload = UploadedFile {
        bucket: BUCKET.into(),
        key: "imports/acme/sms/a.csv".into(),
        sequencer: Some("1".into()),
        ..Default::default()
    };
    let first = Importer::in_memory(&store, &config).run(&upload).await;
    assert!(
        first.is_err(),
        "the invocation fails, so that it is retried"
    );
    assert!(store.events.published().is_empty());

    // WHEN the retry comes while the first owner's lease still runs, and again after
    store.events.set_unreachable(false);
    let early = Importer::in_memory(&store, &config).run(&upload).await;
    assert!(matches!(early, Ok(ImportResult::Skipped(_))));
    assert!(
        store.events.published().is_empty(),
        "its owner may still publish"
    );
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    for _ in 0..2 {
        let retry = Importer::in_memory(&store, &config).run(&upload).await;
        assert!(matches!(retry, Ok(ImportResult::Skipped(_))));
    }

    // THEN the event is published once, from the summary the import wrote
    let published = store.events.published();
    assert_eq!(published.len(), 1, "{published:?}");
    assert_eq!(published[0]["rows"]["created"], 2);
    assert_eq!(published[0]["status"], "completed_with_errors");
}

#[tokio::test]
async fn a_mapping_option_is_saved_for_its_header_and_used_by_the_next_upload_of_it() {
    let store = MemoryPorts::default();
    let header = "Handy,Kunde,Stufe\n";
    let mapping = r#"{"Handy": "phone", "Kunde": "name", "Stufe": "attr:Tier"}"#;
    let body = format!("{header}+447911123456,Eva,Gold\n");

    // GIVEN an upload that says how its columns map
    let first = import(
        &store,
        "imports/acme/sms/first.csv",
        body.as_bytes(),
        &[("mapping", mapping)],
        "1",
    )
    .await;
    assert_eq!(first.mapping_source, MappingSource::Option);
    assert_eq!(first.rows.created, 1, "{first:?}");

    // WHEN the same titles come again, spelt otherwise and without the option, and
    // other titles come too
    let same = "handy , KUNDE,stufe\n+447400123456,Sam,Silver\n".to_string();
    let again = import(
        &store,
        "imports/acme/sms/again.csv",
        same.as_bytes(),
        &[],
        "2",
    )
    .await;
    let other = import(
        &store,
        "imports/acme/sms/other.csv",
        b"Handy,Kunde\n+447400123457,Zoe\n",
        &[],
        "3",
    )
    .await;
    let elsewhere = import(
        &store,
        "imports/beta/sms/again.csv",
        same.as_bytes(),
        &[],
        "4",
    )
    .await;

    // THEN the second is read with the saved mapping, the others by title alone
    assert_eq!(again.mapping_source, MappingSource::Saved);
    assert_eq!(again.rows.created, 1, "{again:?}");
    assert_eq!(
        again.column_mapping.get("KUNDE").map(String::as_str),
        Some("name")
    );
    assert_eq!(
        again.column_mapping.get("stufe").map(String::as_str),
        Some("attr:Tier")
    );
    assert_eq!(other.mapping_source, MappingSource::Automatic);
    assert_eq!(
        other.error.as_ref().map(|e| e.code.as_str()),
        Some("missing_phone_column"),
        "Handy is no phone title by itself"
    );
    assert_eq!(
        elsewhere.mapping_source,
        MappingSource::Automatic,
        "per account"
    );
    let saved = store
        .settings
        .mapping(
            "acme",
            &crate::domain::mapping::header_signature(&[
                "Handy".into(),
                "Kunde".into(),
                "Stufe".into(),
            ]),
        )
        .expect("saved");
    assert_eq!(saved.import_id, first.import_id);
}

#[tokio::test]
async fn a_dry_run_does_not_save_its_mapping() {
    let store = MemoryPorts::default();
    let mapping = r#"{"Handy": "phone"}"#;
    let dry = import(
        &store,
        "imports/acme/sms/dry.csv",
        b"Handy\n+447911123456\n",
        &[("mapping", mapping), ("dry-run", "true")],
        "1",
    )
    .await;
    assert_eq!(dry.mapping_source, MappingSource::Option);
    let later = import(
        &store,
        "imports/acme/sms/later.csv",
        b"Handy\n+447911123456\n",
        &[],
        "2",
    )
    .await;
    assert_eq!(later.mapping_source, MappingSource::Automatic);
}
