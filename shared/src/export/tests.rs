//! The export over the in-memory ports: what it reads, what it writes, and that an
//! import of the file changes nothing.

use std::collections::BTreeSet;
use std::ops::ControlFlow;
use std::sync::atomic::{AtomicUsize, Ordering};

use super::*;
use crate::config::Config;
use crate::domain::contact::{ContactDraft, Source, WriteStamp};
use crate::domain::field::Field;
use crate::domain::mapping::ColumnMap;
use crate::domain::validate::{validate_row, RowRules, Verdict};
use crate::parse::{read_rows, Body, Format, ReadOptions, RowKind, WorkbookLimits};
use crate::ports::memory::{MemoryContacts, MemoryPorts, MEMORY_PAGE_SIZE};
use crate::ports::{ContactPage, ContactStore, PageToken, Precondition};

const BUCKET: &str = "contact-uploads";

/// A file with every kind of value an export must give back as it was stored: names in
/// other scripts, lists and tags, custom attributes (a datetime, a number, a value
/// with a comma and quotes), opt-in flags, and text a spreadsheet would take for a
/// formula.
const UPLOAD: &str = "Phone,Name,First Name,Last Name,Email,WhatsApp Opted,Company,City,DOB,Lists,Tags,Plan,Signed Up,Score,Note,=Formula title\n\
+447911123456,Zoë O’Brien,Zoë,O’Brien,zoe@example.com,TRUE,\"'=HYPERLINK(\"\"x\"\")\",Zürich,1990-05-01,VIP;Ünïcode 名前,'@team;-x,Gold,2022-10-31T19:30:00.000+05:30,-5,\"a, \"\"quoted\"\" note\",'+1\n\
+447911123457,山田 太郎,,,,FALSE,Acme & Co.,東京,,VIP,,Silver,,'=1+1,,\n\
+447911123458,,Ana,Lima,,,,,,Leads,vip-tag,,2022-10-31,,'plain,\n\
+919876543210,Ravi,,,ravi@example.com,,,,,,,,,,,\n";

async fn import(store: &MemoryPorts, key: &str, body: &[u8]) -> crate::import::report::Summary {
    let update = [("on-existing", "update")];
    crate::import::import_in_memory(&Config::default(), store, key, body, &update, key).await
}

async fn export(store: &MemoryPorts, request: &ExportRequest) -> (Exported, String) {
    let exported = export_contacts(&store.contacts, &store.objects, BUCKET, request)
        .await
        .expect("exports");
    let body = store
        .objects
        .text(BUCKET, &exported.key)
        .expect("file written");
    (exported, body)
}

fn account(account_id: &str) -> ExportRequest {
    ExportRequest {
        account_id: account_id.into(),
        ..Default::default()
    }
}

/// The file's rows as the import reads them: parse, then map the header.
fn parsed(body: &str) -> (ColumnMap, Vec<Vec<String>>) {
    let options = ReadOptions {
        format: Format::Csv,
        delimiter: None,
        sheet: None,
    };
    let (mut header, mut rows) = (None, Vec::new());
    let limits = WorkbookLimits::default();
    let body: Body<&[u8]> = Body::Bytes(body.as_bytes().to_vec());
    read_rows(body, &options, &limits, |row| {
        match row.kind {
            RowKind::Header => header = Some(row.cells),
            RowKind::Data => rows.push(row.cells),
        }
        ControlFlow::Continue(())
    })
    .expect("the export parses");
    let header = header.expect("a header row");
    (
        ColumnMap::from_header(&header, &[]).expect("header maps"),
        rows,
    )
}

#[tokio::test]
async fn re_importing_an_export_through_the_import_pipeline_changes_no_contact() {
    // GIVEN contacts an import stored, with every kind of value
    let store = MemoryPorts::default();
    let first = import(
        &store,
        "imports/acme/whatsapp/contacts.csv",
        UPLOAD.as_bytes(),
    )
    .await;
    assert_eq!(first.rows.created, 4, "{first:?}");
    assert!(first.warnings_by_code.is_empty(), "{first:?}");

    // WHEN the account is exported
    let (exported, body) = export(&store, &account("acme")).await;

    // THEN every row, parsed, mapped and validated as an import does, is accepted with
    // no warning and merges into its stored contact as a no-op
    assert_eq!(exported.contacts, 4);
    let (columns, rows) = parsed(&body);
    assert_eq!(rows.len(), 4);
    let none = BTreeSet::new();
    let rules = RowRules {
        columns: &columns,
        channel: Channel::Whatsapp,
        default_region: None,
        lists: &none,
        tags: &none,
        blanks: crate::domain::options::Blanks::Keep,
    };
    let stamp = WriteStamp {
        now: "2026-11-29T10:00:00Z".into(),
        source: Source::Import,
        import_id: Some("imp_again".into()),
        campaign_id: None,
    };
    for cells in &rows {
        let Verdict::Accepted { draft, warnings } = validate_row(cells, &rules) else {
            panic!("rejected: {cells:?}");
        };
        assert!(warnings.is_empty(), "{cells:?}: {warnings:?}");
        let stored = store
            .contacts
            .get("acme", Channel::Whatsapp, &draft.phone)
            .expect("an exported contact is stored");
        assert_eq!(
            stored.merged(&draft, &stamp),
            None,
            "{cells:?} would change {stored:?}"
        );
    }
    // AND no cell would run as a formula in a spreadsheet
    for cells in body.lines().skip(1).flat_map(|l| l.split(',')) {
        assert!(!cells.starts_with(['=', '@']), "{cells}");
    }

    // AND the whole import of the export says so: every row unchanged
    let again = import(&store, "imports/acme/whatsapp/export.csv", body.as_bytes()).await;
    assert_eq!(again.rows.total, 4, "{again:?}");
    assert_eq!(again.rows.unchanged, 4, "{again:?}");
    assert!(again.warnings_by_code.is_empty(), "{again:?}");
}

#[tokio::test]
async fn the_file_holds_the_stored_values_under_the_import_titles() {
    // GIVEN the same contacts
    let store = MemoryPorts::default();
    import(
        &store,
        "imports/acme/whatsapp/contacts.csv",
        UPLOAD.as_bytes(),
    )
    .await;

    // WHEN they are exported
    let (exported, body) = export(&store, &account("acme")).await;

    // THEN the key is the account's, and the header is the fixed titles then the custom
    // attributes by name, a formula-like one escaped
    assert!(
        exported.key.starts_with("exports/acme/exp_"),
        "{}",
        exported.key
    );
    assert!(exported.key.ends_with(".csv"));
    let header = body.lines().next().expect("header");
    assert_eq!(
        header,
        "Phone,WhatsApp User ID,Name,First Name,Middle Name,Last Name,Title,Email,WhatsApp Opted,User ID,\
Reference,Company,Address Line 1,Address Line 2,City,State,Postcode,Date of Birth,\
Alternate Phone,Lists,Tags,'=Formula title,Note,Plan,Score,Signed Up"
    );
    // AND Zoë's row has her stored values, escaped where a spreadsheet would compute them
    let zoe = body
        .lines()
        .find(|l| l.starts_with("+447911123456,"))
        .expect("Zoë's row");
    assert_eq!(
        zoe,
        "+447911123456,,Zoë O’Brien,Zoë,,O’Brien,,zoe@example.com,TRUE,,,\
\"'=HYPERLINK(\"\"x\"\")\",,,Zürich,,,1990-05-01,,VIP;Ünïcode 名前,'-x;@team,\
+1,\"a, \"\"quoted\"\" note\",Gold,-5,2022-10-31T14:00:00Z"
    );
    let yamada = body
        .lines()
        .find(|l| l.starts_with("+447911123457,"))
        .expect("Yamada's row");
    assert!(yamada.contains(",FALSE,"), "{yamada}");
    assert!(yamada.ends_with(",,,Silver,'=1+1,"), "{yamada}");
}

#[tokio::test]
async fn a_bsuid_only_contact_exports_without_a_phone_and_re_imports_unchanged() {
    // GIVEN WhatsApp contacts as messages leave them: one known only by its BSUID, one
    // with a number and a BSUID, one with a number and the business's own user id
    const BSUID: &str = "GB.13491208655302741918";
    let store = MemoryPorts::default();
    let stamp = WriteStamp {
        now: "2026-11-29T10:00:00Z".into(),
        source: Source::Inbound,
        import_id: None,
        campaign_id: None,
    };
    for (key, user_id, name) in [
        (format!("bsuid:{BSUID}"), BSUID, "Eva"),
        ("+447911123456".to_string(), "US.20931208655302741234", "Bo"),
        ("+447911123457".to_string(), "C-42", "Cy"),
    ] {
        let mut draft = ContactDraft {
            phone: key,
            ..Default::default()
        };
        draft.text.insert("user_id", user_id.into());
        draft.text.insert("name", name.into());
        let mut contact = Contact::create("acme", Channel::Whatsapp, &draft, &stamp);
        contact.anonymous = true;
        store
            .contacts
            .put_contact(&contact, Precondition::Absent)
            .await
            .expect("stored");
    }

    // WHEN the account is exported
    let (exported, body) = export(&store, &account("acme")).await;

    // THEN the BSUID-only contact has no phone and its BSUID under WhatsApp User ID; a
    // BSUID of a numbered contact is there too; the business's own id is in User ID
    assert_eq!(exported.contacts, 3);
    let (columns, rows) = parsed(&body);
    let cell = |row: &Vec<String>, field| row[columns.index_of(field).expect("a column")].clone();
    let by_name = |name: &str| {
        rows.iter()
            .find(|r| cell(r, Field::Name) == name)
            .cloned()
            .unwrap_or_else(|| panic!("{name}'s row in {body}"))
    };
    let ids = |name: &str| {
        let row = by_name(name);
        [
            cell(&row, Field::Phone),
            cell(&row, Field::WhatsappUserId),
            cell(&row, Field::UserId),
        ]
    };
    assert_eq!(ids("Eva"), ["", BSUID, ""]);
    assert_eq!(ids("Bo"), ["+447911123456", "US.20931208655302741234", ""]);
    assert_eq!(ids("Cy"), ["+447911123457", "", "C-42"]);
    assert!(!body.contains("bsuid:"), "{body}");

    // AND the file imported again on whatsapp changes nothing
    let again = import(&store, "imports/acme/whatsapp/export.csv", body.as_bytes()).await;
    assert_eq!(again.rows.total, 3, "{again:?}");
    assert_eq!(again.rows.unchanged, 3, "{again:?}");
    assert!(again.warnings_by_code.is_empty(), "{again:?}");
    assert_eq!(store.contacts.count(), 3);
}

/// Stores a contact of `account` on `channel` with the given lists, tags, status and opt-in.
async fn stored(
    contacts: &MemoryContacts,
    (account, channel, phone): (&str, Channel, &str),
    lists: &[&str],
    tags: &[&str],
    status: Status,
    opted: Option<bool>,
) {
    let draft = ContactDraft {
        phone: phone.into(),
        lists: lists.iter().map(|s| s.to_string()).collect(),
        tags: tags.iter().map(|s| s.to_string()).collect(),
        whatsapp_opted: opted,
        ..Default::default()
    };
    let stamp = WriteStamp {
        now: "2026-11-29T10:00:00Z".into(),
        source: Source::Import,
        import_id: Some("imp_1".into()),
        campaign_id: None,
    };
    let mut contact = Contact::create(account, channel, &draft, &stamp);
    contact.status = status;
    contacts
        .put_contact(&contact, Precondition::Absent)
        .await
        .expect("stored");
}

fn phones(body: &str) -> BTreeSet<String> {
    body.lines()
        .skip(1)
        .filter_map(|l| l.split(',').next())
        .map(str::to_string)
        .collect()
}

#[tokio::test]
async fn every_given_filter_must_hold_and_lists_and_tags_match_any() {
    // GIVEN contacts of two accounts, channels, lists, tags, statuses and opt-ins
    let store = MemoryPorts::default();
    let wa = Channel::Whatsapp;
    let table = [
        (
            ("acme", wa, "+447700900001"),
            &["VIP"][..],
            &[][..],
            Status::Active,
            Some(true),
        ),
        (
            ("acme", wa, "+447700900002"),
            &["Leads"],
            &["hot"],
            Status::Active,
            Some(true),
        ),
        (
            ("acme", wa, "+447700900003"),
            &["VIP"],
            &["hot"],
            Status::Blocked,
            Some(true),
        ),
        (
            ("acme", wa, "+447700900004"),
            &["VIP"],
            &[],
            Status::Active,
            Some(false),
        ),
        (
            ("acme", wa, "+447700900005"),
            &["VIP"],
            &[],
            Status::Archived,
            None,
        ),
        (
            ("acme", Channel::Sms, "+447700900001"),
            &["VIP"],
            &[],
            Status::Active,
            Some(true),
        ),
        (
            ("other", wa, "+447700900009"),
            &["VIP"],
            &[],
            Status::Active,
            Some(true),
        ),
    ];
    for (key, lists, tags, status, opted) in table {
        stored(&store.contacts, key, lists, tags, status, opted).await;
    }

    let set = |items: &[&str]| items.iter().map(|s| s.to_string()).collect::<BTreeSet<_>>();
    let acme = account("acme");
    for (request, expected) in [
        // Everything of the account, on every channel (the sms contact has the same number).
        (
            acme.clone(),
            set(&[
                "+447700900001",
                "+447700900002",
                "+447700900003",
                "+447700900004",
                "+447700900005",
            ]),
        ),
        (
            ExportRequest {
                channel: Some(Channel::Sms),
                ..acme.clone()
            },
            set(&["+447700900001"]),
        ),
        // DESIGN section 14's example: whatsapp, VIP, active, opted in.
        (
            ExportRequest {
                channel: Some(Channel::Whatsapp),
                lists: set(&["VIP"]),
                statuses: vec![Status::Active],
                consent: Some(Consent::MarketingOptedIn),
                ..acme.clone()
            },
            set(&["+447700900001"]),
        ),
        (
            ExportRequest {
                lists: set(&["Leads", "Nope"]),
                ..acme.clone()
            },
            set(&["+447700900002"]),
        ),
        (
            ExportRequest {
                channel: Some(Channel::Whatsapp),
                tags: set(&["hot"]),
                statuses: vec![Status::Blocked, Status::Archived],
                ..acme.clone()
            },
            set(&["+447700900003"]),
        ),
        (
            ExportRequest {
                consent: Some(Consent::MarketingOptedOut),
                ..acme.clone()
            },
            set(&["+447700900004"]),
        ),
        (
            ExportRequest {
                lists: set(&["Nope"]),
                ..acme.clone()
            },
            set(&[]),
        ),
    ] {
        // WHEN the account is exported with the filters
        let (exported, body) = export(&store, &request).await;

        // THEN exactly the contacts that pass all of them are in the file
        assert_eq!(phones(&body), expected, "{request:?}");
        assert_eq!(
            exported.contacts as usize,
            body.lines().count() - 1,
            "{request:?}"
        );
    }
}

/// Counts the pages being read at once.
struct Concurrency<'a> {
    inner: &'a MemoryContacts,
    now: AtomicUsize,
    most: AtomicUsize,
    pages: AtomicUsize,
}

impl AccountContacts for Concurrency<'_> {
    async fn contacts_page(
        &self,
        account_id: &str,
        channel: Option<Channel>,
        shard: u8,
        after: Option<PageToken>,
    ) -> Result<ContactPage, StoreError> {
        let now = self.now.fetch_add(1, Ordering::SeqCst) + 1;
        self.most.fetch_max(now, Ordering::SeqCst);
        self.pages.fetch_add(1, Ordering::SeqCst);
        // A query takes a while: let the other shards' requests start meanwhile.
        tokio::task::yield_now().await;
        let page = self
            .inner
            .contacts_page(account_id, channel, shard, after)
            .await;
        self.now.fetch_sub(1, Ordering::SeqCst);
        page
    }
}

#[tokio::test]
async fn the_sixteen_shards_are_read_at_once_and_every_page_of_each() {
    // GIVEN 200 contacts, more than a page in every shard
    let store = MemoryPorts::default();
    for i in 0..200 {
        let phone = format!("+4477009{i:05}");
        stored(
            &store.contacts,
            ("acme", Channel::Whatsapp, &phone),
            &[],
            &[],
            Status::Active,
            None,
        )
        .await;
    }
    let counting = Concurrency {
        inner: &store.contacts,
        now: AtomicUsize::new(0),
        most: AtomicUsize::new(0),
        pages: AtomicUsize::new(0),
    };

    // WHEN the account is exported
    let exported = export_contacts(&counting, &store.objects, BUCKET, &account("acme"))
        .await
        .expect("exports");

    // THEN all 16 shards were being read together, page after page, and every contact
    // is in the file once
    assert_eq!(counting.most.load(Ordering::SeqCst), 16);
    assert!(counting.pages.load(Ordering::SeqCst) >= 200 / MEMORY_PAGE_SIZE);
    assert_eq!(exported.contacts, 200);
    let body = store.objects.text(BUCKET, &exported.key).expect("file");
    assert_eq!(phones(&body).len(), 200);
    assert_eq!(body.lines().count(), 201);
}

/// Contacts with about 5 KB of custom attributes each.
async fn heavy_contacts(store: &MemoryPorts, count: usize) {
    for i in 0..count {
        let phone = format!("+4477009{i:05}");
        let draft = ContactDraft {
            phone: phone.clone(),
            attrs: (0..5)
                .map(|a| (format!("A{a}"), format!("{i}-{}", "x".repeat(1000))))
                .collect(),
            ..Default::default()
        };
        let stamp = WriteStamp {
            now: "2026-11-29T10:00:00Z".into(),
            source: Source::Import,
            import_id: None,
            campaign_id: None,
        };
        let contact = Contact::create("acme", Channel::Whatsapp, &draft, &stamp);
        store
            .contacts
            .put_contact(&contact, Precondition::Absent)
            .await
            .expect("stored");
    }
}

#[tokio::test]
async fn a_large_export_leaves_in_parts_of_the_part_size_but_the_last() {
    // GIVEN about 11 MB of contacts
    let store = MemoryPorts::default();
    heavy_contacts(&store, 2200).await;

    // WHEN they are exported
    let (exported, body) = export(&store, &account("acme")).await;

    // THEN the file came as one multipart upload of full parts and a shorter last one,
    // and it holds every contact's row in full
    let sizes = store.objects.part_sizes();
    assert_eq!(sizes.len(), 2, "{sizes:?}");
    assert!(
        sizes[0] >= PART_BYTES && sizes[0] < PART_BYTES + 16 * 1024,
        "{sizes:?}"
    );
    assert!(sizes[1] < PART_BYTES);
    assert_eq!(store.objects.multipart_counts(), (1, 0, 0));
    assert_eq!(exported.contacts, 2200);
    assert_eq!(body.len(), sizes.iter().sum::<usize>());
    let (_, rows) = parsed(&body);
    assert_eq!(rows.len(), 2200);
    assert!(rows
        .iter()
        .all(|r| r.len() == EXPORT_COLUMNS.len() + 5 && r[EXPORT_COLUMNS.len()].ends_with("xxx")));
}

#[tokio::test]
async fn a_failed_part_aborts_the_export_and_leaves_no_file() {
    // GIVEN a store whose second part fails, and more than a part of contacts
    let store = MemoryPorts::default();
    heavy_contacts(&store, 2200).await;
    store.objects.fail_part(2);

    // WHEN the account is exported
    let result = export_contacts(&store.contacts, &store.objects, BUCKET, &account("acme")).await;

    // THEN the export fails, its upload is aborted and no file is left
    assert!(matches!(result, Err(ExportError::Store(_))), "{result:?}");
    assert_eq!(store.objects.multipart_counts(), (1, 1, 0));
    assert!(store.objects.keys(BUCKET, "exports/").is_empty());
}

#[tokio::test]
async fn an_empty_account_is_a_header_in_one_put() {
    // GIVEN no contacts
    let store = MemoryPorts::default();

    // WHEN the account is exported
    let (exported, body) = export(&store, &account("acme")).await;

    // THEN the file is the header alone, written without a multipart upload
    assert_eq!(exported.contacts, 0);
    assert_eq!(body.lines().count(), 1);
    assert!(body.starts_with("Phone,WhatsApp User ID,Name,"));
    assert_eq!(store.objects.multipart_counts(), (0, 0, 0));
}

#[test]
fn export_ids_differ() {
    let ids: BTreeSet<String> = (0..1000).map(|_| new_export_id()).collect();
    assert_eq!(ids.len(), 1000);
    assert!(ids
        .iter()
        .all(|id| id.starts_with("exp_") && id.len() == 36));
}

#[test]
fn the_consent_filter_reads_marketing_consent_and_falls_back_to_whatsapp_opted() {
    use crate::domain::consent::{ConsentSource, Signal};
    let stamp = WriteStamp {
        now: "2026-11-29T10:00:00.000Z".into(),
        source: Source::Import,
        import_id: Some("imp_1".into()),
        campaign_id: None,
    };
    let contact = |opted: Option<bool>| {
        let draft = ContactDraft {
            phone: "+447911123456".into(),
            whatsapp_opted: opted,
            ..Default::default()
        };
        Contact::create("acme", Channel::Sms, &draft, &stamp)
    };
    // GIVEN a contact the import opted in that then sent STOP
    let mut stopped = contact(Some(true));
    stopped.apply_consent(&Signal {
        category: Category::Marketing,
        state: State::OptedOut,
        at: "2026-11-29T11:00:00Z".into(),
        source: ConsentSource::Keyword,
        scope: None,
        evidence: "STOP".into(),
    });
    // AND one written before consent was stored (only the flag), and one never asked
    let mut legacy = contact(None);
    legacy.whatsapp_opted = Some(true);
    let never = contact(None);
    // AND, to show which one is read, a contact whose flag disagrees with its consent
    let mut disagreeing = contact(Some(false));
    disagreeing.whatsapp_opted = Some(true);

    let filter = |consent| ExportRequest {
        account_id: "acme".into(),
        consent: Some(consent),
        ..Default::default()
    };
    let (opted_in, opted_out) = (
        filter(Consent::MarketingOptedIn),
        filter(Consent::MarketingOptedOut),
    );
    assert!(opted_out.admits(&stopped) && !opted_in.admits(&stopped));
    assert!(opted_in.admits(&legacy) && !opted_out.admits(&legacy));
    assert!(!opted_in.admits(&never) && !opted_out.admits(&never));
    assert!(opted_out.admits(&disagreeing) && !opted_in.admits(&disagreeing));
}
