//! The service end to end over the in-memory ports: payload in, answer and writes out.

use serde_json::{json, Value};

use super::*;
use crate::domain::channel::Channel;
use crate::domain::contact::{Contact, Status};
use crate::domain::suppression::SuppressionKey;
use crate::ports::memory::MemoryPorts;
use crate::ports::{Precondition, PutOutcome};

async fn send(ports: &MemoryPorts, event: Value) -> Result<Value, EventError> {
    send_with(&Config::default(), ports, event).await
}

async fn send_with(
    config: &Config,
    ports: &MemoryPorts,
    event: Value,
) -> Result<Value, EventError> {
    let service = EventService {
        objects: &ports.objects,
        contacts: &ports.contacts,
        settings: &ports.settings,
        ledger: &ports.ledger,
        webhooks: &ports.webhooks,
        imports: &ports.jobs,
        config,
    };
    let reply = service
        .handle_invocation(Invocation::from_payload(event))
        .await?;
    Ok(serde_json::to_value(reply).expect("answers serialise"))
}

fn inbound(id: &str, status_name: Option<&str>) -> Value {
    json!({"type": "message.inbound", "account_id": "acme", "channel": "whatsapp", "message_id": id,
           "from": "+447911123456", "profile_name": status_name, "received_at": "2026-11-21T10:00:00Z"})
}

const PK: &str = "CONTACT#acme#whatsapp#+447911123456";
const PHONE: &str = "+447911123456";

fn contact(ports: &MemoryPorts, phone: &str) -> Option<Contact> {
    ports.contacts.get("acme", Channel::Whatsapp, phone)
}

/// Changes the stored contact's status as someone else would.
async fn set_status(ports: &MemoryPorts, status: Status) {
    let mut stored = contact(ports, PHONE).expect("exists");
    let version = stored.version;
    stored.status = status;
    let put = ports
        .contacts
        .put_contact(&stored, Precondition::Version(version))
        .await
        .expect("put");
    assert_eq!(put, PutOutcome::Written);
}

#[tokio::test]
async fn campaign_saves_delivered_recipients_once() {
    let store = MemoryPorts::default();
    let event = json!({"type": "campaign.completed", "account_id": "acme", "campaign_id": "cmp-42", "channel": "whatsapp",
        "status": "succeeded", "default_country": "IN", "recipients": [
            {"phone": "+919876543210", "name": "John Doe", "delivery_status": "delivered"},
            {"phone": "98765 43211", "name": "Jane", "delivery_status": "read"},
            {"phone": "+919876543212", "name": "Failed", "delivery_status": "failed"},
            {"phone": "", "name": "Blank"},
            {"phone": "+919876543210", "name": "John again"}]});
    let answer = send(&store, event.clone()).await.expect("saved");
    assert_eq!(answer["created"], 2);
    assert_eq!(answer["rejected"], 1);
    assert_eq!(answer["not_delivered"], 1);
    assert_eq!(answer["duplicates"], 1);
    assert_eq!(answer["message"], "2 new contacts saved to Contact Book.");
    assert_eq!(answer["rejections_by_reason"], json!({"missing_phone": 1}));
    let writes = store.contacts.writes();
    assert_eq!(send(&store, event).await.expect("again"), answer);
    assert_eq!(
        store.contacts.writes(),
        writes,
        "a redelivery writes nothing"
    );
    let john = contact(&store, "+919876543210").expect("saved");
    assert_eq!(john.last_campaign_id.as_deref(), Some("cmp-42"));
    assert_eq!(john.source, Source::Campaign);
}

#[tokio::test]
async fn failed_campaign_saves_nothing() {
    let store = MemoryPorts::default();
    let answer = send(&store, json!({"type": "campaign.completed", "account_id": "acme", "campaign_id": "c", "channel": "sms",
        "status": "failed", "recipients": [{"phone": "+919876543210", "name": "A"}]})).await.expect("answered");
    assert_eq!(answer["status"], "not_saved");
    assert_eq!(
        answer,
        json!({"status": "not_saved", "created": 0, "updated": 0, "unchanged": 0, "rejected": 0,
               "reason": "campaign status is \"failed\"; only succeeded campaigns save their recipients",
               "message": "0 new contacts saved to Contact Book."})
    );
    assert_eq!(store.contacts.count(), 0);
}

fn campaign_file(id: &str, key: &str) -> Value {
    json!({"type": "campaign.completed", "account_id": "acme", "campaign_id": id, "channel": "whatsapp",
           "status": "succeeded", "default_country": "IN", "recipients_file": {"bucket": "contact-uploads", "key": key}})
}

#[tokio::test]
async fn campaign_recipients_file_is_read_like_an_upload() {
    let store = MemoryPorts::default();
    let key = "campaigns/acme/cmp-43/recipients.csv";
    let body = b"Name;Phone\nJohn D.;+919876543210\nNew Person;98765 43213\nNo Number;\n";
    store.objects.insert("contact-uploads", key, body, &[]);
    let answer = send(&store, campaign_file("cmp-43", key))
        .await
        .expect("saved");
    assert_eq!(
        (&answer["created"], &answer["rejected"], &answer["status"]),
        (&json!(2), &json!(1), &json!("saved"))
    );
    let john = contact(&store, "+919876543210").expect("saved");
    assert_eq!(john.text.get("name").map(String::as_str), Some("John D."));
    assert!(contact(&store, "+919876543213").is_some());
}

#[tokio::test]
async fn a_campaign_reads_only_its_own_accounts_campaign_files() {
    // GIVEN files of another account and an upload of this one's
    let store = MemoryPorts::default();
    let body = b"Name,Phone\nJohn D.,+919876543210\n";
    for key in [
        "campaigns/globex/cmp-1/recipients.csv",
        "campaigns/acme-2/cmp-1/recipients.csv",
        "imports/acme/whatsapp/people.csv",
    ] {
        store.objects.insert("contact-uploads", key, body, &[]);
        store.objects.insert("another-bucket", key, body, &[]);
    }
    let mut elsewhere = campaign_file("x", "campaigns/acme/cmp-1/recipients.csv");
    elsewhere["recipients_file"]["bucket"] = json!("another-bucket");

    // WHEN campaigns of acme name them
    let refused = [
        campaign_file("g", "campaigns/globex/cmp-1/recipients.csv"),
        campaign_file("a", "campaigns/acme-2/cmp-1/recipients.csv"),
        campaign_file("i", "imports/acme/whatsapp/people.csv"),
        elsewhere,
    ];
    for event in refused {
        // THEN each is an invalid event naming the key, and nothing is read or written
        match send(&store, event).await {
            Err(EventError::InvalidField { field, problem }) => {
                assert_eq!(field, "recipients_file.key");
                assert!(
                    !problem.contains("globex") && !problem.contains("imports"),
                    "{problem}"
                );
            }
            other => panic!("expected an invalid key, got {other:?}"),
        }
    }
    assert_eq!(store.contacts.count(), 0);
    assert!(
        store.ledger.answers().is_empty(),
        "refused before the ledger"
    );
}

#[tokio::test]
async fn an_unusable_recipients_file_is_refused_and_nothing_is_written() {
    let store = MemoryPorts::default();
    store.objects.insert(
        "contact-uploads",
        "campaigns/acme/no-name.csv",
        b"Phone\n+919876543214\n",
        &[],
    );
    match send(&store, campaign_file("a", "campaigns/acme/no-name.csv")).await {
        Err(e @ EventError::MissingRequiredHeaders(HeaderProblem::NoNameColumn(_))) => {
            assert!(e.to_string().starts_with("missing_required_headers"), "{e}");
        }
        other => panic!("{other:?}"),
    }
    store.objects.insert(
        "contact-uploads",
        "campaigns/acme/no-phone.csv",
        b"Name\nEva\n",
        &[],
    );
    assert!(matches!(
        send(&store, campaign_file("b", "campaigns/acme/no-phone.csv")).await,
        Err(EventError::MissingRequiredHeaders(HeaderProblem::Mapping(
            _
        )))
    ));
    assert!(matches!(
        send(&store, campaign_file("c", "campaigns/acme/missing.csv")).await,
        Err(EventError::RecipientsFile {
            problem: FileProblem::NotFound,
            ..
        })
    ));
    let err = send(&store, campaign_file("d", "campaigns/acme/recipients.pdf"))
        .await
        .expect_err("refused");
    assert_eq!(err.error_type(), "RecipientsFileUnreadable");
    assert_eq!(err.to_string(), "the recipients file s3://contact-uploads/campaigns/acme/recipients.pdf cannot be read: files ending in .pdf are not supported; use CSV or XLSX");
    assert_eq!(store.contacts.writes(), 0);
}

#[tokio::test]
async fn inbound_creates_anonymous_then_existing_and_is_idempotent() {
    let store = MemoryPorts::default();
    let first = send(&store, inbound("m1", Some("Eva"))).await.expect("ok");
    assert_eq!(first, json!({"contact": "created_anonymous", "pk": PK}));
    let created = contact(&store, PHONE).expect("created");
    assert!(created.anonymous);
    assert_eq!(created.text.get("name").map(String::as_str), Some("Eva"));
    assert_eq!(
        send(&store, inbound("m1", Some("Eva"))).await.expect("ok"),
        first,
        "same message twice"
    );
    assert_eq!(
        send(&store, inbound("m2", Some("Other")))
            .await
            .expect("ok")["contact"],
        "existing"
    );
    assert_eq!(
        contact(&store, PHONE)
            .and_then(|c| c.text.get("name").cloned())
            .as_deref(),
        Some("Eva")
    );
}

#[tokio::test]
async fn archived_comes_back_blocked_stays_blocked() {
    let store = MemoryPorts::default();
    send(&store, inbound("m1", Some("Eva"))).await.expect("ok");
    set_status(&store, Status::Archived).await;
    assert_eq!(
        send(&store, inbound("m2", None)).await.expect("ok")["contact"],
        "reactivated"
    );
    assert_eq!(
        contact(&store, PHONE).map(|c| c.status),
        Some(Status::Active)
    );
    set_status(&store, Status::Blocked).await;
    assert_eq!(
        send(&store, inbound("m3", None)).await.expect("ok")["contact"],
        "blocked"
    );
    assert_eq!(
        contact(&store, PHONE).map(|c| c.status),
        Some(Status::Blocked)
    );
}

#[tokio::test]
async fn inbound_reads_national_numbers_in_the_accounts_country() {
    let store = MemoryPorts::default();
    store.settings.set_default_country("acme", "IN");
    let mut event = inbound("m1", Some("Priya"));
    event["from"] = json!("98765 43210");
    let answer = send(&store, event).await.expect("ok");
    assert_eq!(answer["pk"], "CONTACT#acme#whatsapp#+919876543210");
}

#[tokio::test]
async fn captured_completes_an_anonymous_contact() {
    let store = MemoryPorts::default();
    send(&store, inbound("m1", Some("Eva"))).await.expect("ok");
    let answer = send(&store, json!({"type": "contact.captured", "account_id": "acme", "channel": "whatsapp", "phone": "+447911123456",
        "email": "eva@example.com", "name": "Eva Smith", "captured_by": "ai_agent", "conversation_id": "conv-9"})).await.expect("ok");
    assert_eq!(answer["contact"], "updated");
    assert_eq!(
        answer,
        json!({"contact": "updated", "pk": PK, "anonymous": false})
    );
    let completed = contact(&store, PHONE).expect("exists");
    assert!(!completed.anonymous);
    assert_eq!(
        completed.text.get("name").map(String::as_str),
        Some("Eva Smith")
    );
    assert_eq!(
        completed.text.get("email").map(String::as_str),
        Some("eva@example.com")
    );
}

#[tokio::test]
async fn malformed_events_name_the_field_and_write_nothing() {
    let store = MemoryPorts::default();
    for (event, field) in [
        (
            json!({"type": "message.inbound", "channel": "whatsapp", "message_id": "m", "from": "+447911123456"}),
            "account_id",
        ),
        (
            json!({"type": "message.inbound", "account_id": "acme", "channel": "fax", "message_id": "m", "from": "+447911123456"}),
            "channel",
        ),
        (
            json!({"type": "message.inbound", "account_id": "acme", "channel": "sms", "message_id": "m", "from": "12"}),
            "from",
        ),
        (
            json!({"type": "contact.captured", "account_id": "acme", "channel": "sms", "phone": "+447911123456", "email": "nope"}),
            "email",
        ),
        (
            json!({"type": "campaign.completed", "account_id": "acme", "campaign_id": 5, "channel": "sms", "status": "succeeded"}),
            "campaign_id",
        ),
        (json!({"type": "unknown"}), "type"),
        (
            json!({"type": "campaign.completed", "account_id": "acme", "campaign_id": "c", "channel": "sms", "status": "succeeded",
                   "recipients": [{"phone": "+1"}, {"phone": "+2"}, {"phone": {"n": 3}}]}),
            "recipients[2].phone",
        ),
        (
            json!({"type": "campaign.completed", "account_id": "acme", "campaign_id": "c", "channel": "sms", "status": "succeeded"}),
            "recipients_file",
        ),
        (
            json!({"type": "message.inbound", "account_id": "acme", "channel": "sms", "message_id": "m", "from": "+447911123456",
                   "received_at": "yesterday"}),
            "received_at",
        ),
        (
            json!({"type": "contact.captured", "account_id": "acme", "channel": "sms", "phone": "+447911123456", "default_country": "XX"}),
            "default_country",
        ),
        (
            json!({"type": "contact.captured", "account_id": "acme", "channel": "sms", "phone": "+447911123456", "first_name": "<script>"}),
            "first_name",
        ),
        (json!("message.inbound"), "(event)"),
    ] {
        match send(&store, event).await {
            Err(EventError::InvalidField { field: f, .. }) => assert_eq!(f, field),
            other => panic!("{field}: {other:?}"),
        }
    }
    assert_eq!(store.contacts.count(), 0);
    assert_eq!(store.contacts.writes(), 0);
}

#[tokio::test]
async fn eventbridge_envelopes_are_unwrapped() {
    let store = MemoryPorts::default();
    let mut detail = inbound("m1", None);
    detail.as_object_mut().expect("object").remove("type");
    let answer = send(
        &store,
        json!({"detail-type": "message.inbound", "source": "inbox", "detail": detail}),
    )
    .await
    .expect("ok");
    assert_eq!(answer["contact"], "created_anonymous");
}

#[tokio::test]
async fn a_batch_answers_exactly_its_failed_records() {
    let store = MemoryPorts::default();
    let mut missing_id = inbound("m2", None);
    missing_id
        .as_object_mut()
        .expect("object")
        .remove("message_id");
    let batch = json!({"Records": [
        {"messageId": "a", "eventSource": "aws:sqs", "body": inbound("m1", None).to_string()},
        {"messageId": "b", "eventSource": "aws:sqs", "body": missing_id.to_string()},
        {"messageId": "c", "eventSource": "aws:sqs", "body": "not json"},
    ]});
    let answer = send(&store, batch).await.expect("a batch always answers");
    assert_eq!(
        answer,
        json!({"batchItemFailures": [{"itemIdentifier": "b"}, {"itemIdentifier": "c"}]})
    );
    assert_eq!(store.contacts.count(), 1);
}

fn with_suppression() -> Config {
    Config {
        suppression: SuppressionKey::new(b"test-suppression-secret"),
        ..Config::default()
    }
}

fn erase(phone: &str) -> Value {
    json!({"type": "contact.erase", "account_id": "acme", "channel": "whatsapp", "phone": phone})
}

#[tokio::test]
async fn an_erased_person_is_gone_kept_out_of_campaigns_and_back_only_by_writing() {
    // GIVEN Eva, known from an inbound message
    let (ports, config) = (MemoryPorts::default(), with_suppression());
    send_with(&config, &ports, inbound("m1", Some("Eva")))
        .await
        .expect("saved");

    // WHEN she is erased (her number written nationally, as an agent might)
    let mut national = erase("07911 123456");
    national["default_country"] = json!("GB");
    let answer = send_with(&config, &ports, national).await;

    // THEN her contact is gone, a tombstone keyed by the digest stands in its place,
    // and erasing again finds nothing
    let digest = config.suppression.as_ref().expect("key").digest(PHONE);
    assert_eq!(
        answer.expect("erased"),
        json!({"status": "erased", "items": 1})
    );
    assert!(contact(&ports, PHONE).is_none());
    assert!(ports
        .contacts
        .is_suppressed("acme", Channel::Whatsapp, &digest));
    let again = send_with(&config, &ports, erase(PHONE)).await;
    assert_eq!(again.expect("answered"), json!({"status": "not_found"}));

    // AND a campaign that reached her number does not bring her back
    let campaign = json!({"type": "campaign.completed", "account_id": "acme", "campaign_id": "cmp-9",
        "channel": "whatsapp", "status": "succeeded",
        "recipients": [{"phone": PHONE, "name": "Eva"}, {"phone": "+447400123456", "name": "Bo"}]});
    let saved = send_with(&config, &ports, campaign).await.expect("saved");
    assert_eq!(saved["created"], 1);
    assert_eq!(saved["rejections_by_reason"], json!({"suppressed": 1}));
    assert!(contact(&ports, PHONE).is_none());

    // AND her own message does, and lifts the tombstone
    let back = send_with(&config, &ports, inbound("m2", None)).await;
    assert_eq!(back.expect("saved")["contact"], "created_anonymous");
    assert!(contact(&ports, PHONE).is_some());
    assert!(!ports
        .contacts
        .is_suppressed("acme", Channel::Whatsapp, &digest));
}

#[tokio::test]
async fn captured_details_never_bring_back_an_erased_person() {
    // GIVEN Eva, erased
    let (ports, config) = (MemoryPorts::default(), with_suppression());
    send_with(&config, &ports, inbound("m1", Some("Eva")))
        .await
        .expect("saved");
    send_with(&config, &ports, erase(PHONE))
        .await
        .expect("erased");

    // WHEN an agent captures details of her number
    let captured = json!({"type": "contact.captured", "account_id": "acme", "channel": "whatsapp",
        "phone": PHONE, "name": "Eva Smith", "email": "eva@example.com"});
    let answer = send_with(&config, &ports, captured)
        .await
        .expect("answered");

    // THEN nothing is written: only her own message brings her back
    assert_eq!(answer["contact"], "suppressed", "{answer}");
    assert!(contact(&ports, PHONE).is_none());
    assert_eq!(ports.contacts.count(), 0);
}

#[tokio::test]
async fn refusals_name_the_field_never_a_phone_email_or_name() {
    // GIVEN events whose personal fields are wrong in every way a caller may get them wrong
    let ports = MemoryPorts::default();
    let captured = |field: &str, value: Value| {
        let mut event = json!({"type": "contact.captured", "account_id": "acme",
            "channel": "whatsapp", "phone": PHONE});
        event[field] = value;
        event
    };
    let refused = [
        captured("email", json!("eva.smith@@example")),
        captured("email", json!(["eva.smith@example.com"])),
        captured("name", json!("Eva Smith <script>")),
        captured("name", json!({"first": "Eva Smith"})),
        captured("phone", json!(447_911_123_456_u64)),
        captured("phone", json!("not 7911 a number")),
        json!({"type": "message.inbound", "account_id": "acme", "channel": "whatsapp",
            "message_id": "m1", "from": "+44 7911 12345 678 999"}),
    ];
    for event in refused {
        // WHEN each is sent
        let error = send(&ports, event.clone())
            .await
            .expect_err("refused")
            .to_string();

        // THEN the error names the field and holds none of the values
        for value in ["eva.smith", "Eva Smith", "7911"] {
            assert!(!error.contains(value), "{error} (for {event})");
        }
        assert!(error.contains('`'), "names the field: {error}");
    }
    assert_eq!(ports.contacts.count(), 0);
}

#[tokio::test]
async fn erasure_needs_a_secret_and_a_valid_number() {
    let ports = MemoryPorts::default();
    let unconfigured = send(&ports, erase(PHONE)).await;
    assert!(
        matches!(
            unconfigured,
            Err(EventError::NotConfigured {
                variable: "SUPPRESSION_SECRET",
                ..
            })
        ),
        "{unconfigured:?}"
    );
    let config = with_suppression();
    match send_with(&config, &ports, erase("12")).await {
        Err(EventError::InvalidField { field, .. }) => assert_eq!(field, "phone"),
        other => panic!("expected an invalid phone, got {other:?}"),
    }
}

#[tokio::test]
async fn the_event_ledger_keeps_no_number() {
    let ports = MemoryPorts::default();
    let first = send(&ports, inbound("m1", Some("Eva")))
        .await
        .expect("saved");
    assert_eq!(first["pk"], PK);
    assert!(!ports.ledger.answers().iter().any(|a| a.contains("7911")));
    // A redelivery still answers with the contact's key, derived from the event.
    assert_eq!(
        send(&ports, inbound("m1", Some("Eva")))
            .await
            .expect("again"),
        first
    );
}

#[tokio::test]
async fn an_export_is_accepted_bare_in_eventbridge_and_in_sqs() {
    // GIVEN an account with one contact
    let store = MemoryPorts::default();
    send(&store, inbound("m1", Some("Eva")))
        .await
        .expect("saved");
    let export = json!({"type": "contacts.export", "account_id": "acme", "channel": "whatsapp",
        "lists": [], "tags": [], "status": ["active"]});
    let mut detail = export.clone();
    detail.as_object_mut().expect("object").remove("type");

    // WHEN it is exported bare, through EventBridge and in an SQS batch with a bad record
    let bare = send(&store, export.clone()).await.expect("bare");
    let bridged = send(
        &store,
        json!({"detail-type": "contacts.export", "source": "console", "detail": detail}),
    )
    .await
    .expect("eventbridge");
    let batch = json!({"Records": [
        {"messageId": "a", "eventSource": "aws:sqs", "body": export.to_string()},
        {"messageId": "b", "eventSource": "aws:sqs",
         "body": json!({"type": "contacts.export", "account_id": "acme", "consent": "maybe"}).to_string()},
    ]});
    let queued = send(&store, batch).await.expect("a batch always answers");

    // THEN each direct export answers its own file with the one contact, and the batch
    // fails only the malformed record
    for answer in [&bare, &bridged] {
        assert_eq!(answer["status"], "exported");
        assert_eq!(answer["contacts"], 1);
        let key = answer["key"].as_str().expect("a key");
        assert!(key.starts_with("exports/acme/exp_"), "{key}");
        let body = store.objects.text("contact-uploads", key).expect("file");
        assert_eq!(
            body.lines().nth(1).map(|l| l.starts_with(PHONE)),
            Some(true)
        );
    }
    assert_ne!(bare["key"], bridged["key"]);
    assert_eq!(
        queued,
        json!({"batchItemFailures": [{"itemIdentifier": "b"}]})
    );
    assert_eq!(store.objects.keys("contact-uploads", "exports/").len(), 3);
}

#[tokio::test]
async fn a_malformed_export_names_the_field_and_writes_nothing() {
    // GIVEN an export asking for an unknown status
    let store = MemoryPorts::default();
    let event = json!({"type": "contacts.export", "account_id": "acme", "status": ["gone"]});

    // WHEN it is sent
    let result = send(&store, event).await;

    // THEN the field is named and no file is written
    assert!(
        matches!(&result, Err(EventError::InvalidField { field, .. }) if field == "status[0]"),
        "{result:?}"
    );
    assert!(store.objects.keys("contact-uploads", "exports/").is_empty());
}

/// Imports `body` as `imports/acme/whatsapp/{name}` over the same ports; its import id.
async fn imported(ports: &MemoryPorts, name: &str, body: &str) -> String {
    let key = format!("imports/acme/whatsapp/{name}");
    let config = Config::default();
    crate::import::import_in_memory(&config, ports, &key, body.as_bytes(), &[], name)
        .await
        .import_id
}

#[tokio::test]
async fn an_undo_deletes_what_the_import_created_keeps_what_changed_and_deletes_nothing_twice() {
    // GIVEN an import of three contacts, one of which has written since
    let store = MemoryPorts::default();
    let import_id = imported(
        &store,
        "three.csv",
        "Name,Phone\nEva,+447911123456\nAsha,+447911123457\nRavi,+447911123458\n",
    )
    .await;
    send(&store, inbound("m1", Some("Eva")))
        .await
        .expect("a message from Eva");
    let undo = json!({"type": "import.undo", "account_id": "acme", "import_id": import_id});

    // WHEN the import is undone, and undone again
    let first = send(&store, undo.clone()).await.expect("undone");
    let again = send(&store, undo).await.expect("undone again");

    // THEN the two untouched contacts are gone, Eva is kept and counted, and the
    // second undo finds nothing more to delete
    assert_eq!(
        first,
        json!({"status": "undone", "deleted": 2, "kept_changed": 1})
    );
    assert_eq!(
        again,
        json!({"status": "undone", "deleted": 0, "kept_changed": 1})
    );
    assert!(contact(&store, PHONE).is_some());
    assert_eq!(store.contacts.count(), 1);
}

#[tokio::test]
async fn a_malformed_undo_names_the_field_and_deletes_nothing() {
    // GIVEN an imported contact
    let store = MemoryPorts::default();
    imported(&store, "one.csv", "Name,Phone\nEva,+447911123456\n").await;

    for (event, field) in [
        (
            json!({"type": "import.undo", "account_id": "acme"}),
            "import_id",
        ),
        (
            json!({"type": "import.undo", "account_id": "acme", "import_id": "imp_XYZ"}),
            "import_id",
        ),
        (
            json!({"type": "import.undo", "import_id": "imp_0123456789abcdef"}),
            "account_id",
        ),
        (
            json!({"type": "import.undo", "account_id": "acme", "import_id": 7}),
            "import_id",
        ),
    ] {
        // WHEN an undo with a bad field is sent
        let result = send(&store, event.clone()).await;

        // THEN that field is named and the contact stays
        assert!(
            matches!(&result, Err(EventError::InvalidField { field: f, .. }) if f == field),
            "{event}: {result:?}"
        );
        assert_eq!(store.contacts.count(), 1);
    }
}

fn sms(id: &str, text: &str, at: &str) -> Value {
    json!({"type": "message.inbound", "account_id": "acme", "channel": "sms", "message_id": id,
           "from": PHONE, "text": text, "received_at": at})
}

fn sms_contact(ports: &MemoryPorts) -> Contact {
    ports
        .contacts
        .get("acme", Channel::Sms, PHONE)
        .expect("the sender's contact")
}

/// Each category's state, marketing first.
fn states(contact: &Contact) -> Vec<(&'static str, &'static str)> {
    contact
        .consent
        .iter()
        .map(|(c, e)| (c.as_str(), e.state.as_str()))
        .collect()
}

#[tokio::test]
async fn an_sms_stop_from_an_unknown_number_creates_it_opted_out_of_everything() {
    // GIVEN nobody WHEN an unknown number texts "Stop."
    let store = MemoryPorts::default();
    let answer = send(&store, sms("sm-1", "Stop.", "2026-11-21T10:00:00+01:00"))
        .await
        .expect("handled");

    // THEN the anonymous contact exists, opted out of every category, the answer as ever
    assert_eq!(
        answer,
        json!({"contact": "created_anonymous", "pk": "CONTACT#acme#sms#+447911123456"})
    );
    let contact = sms_contact(&store);
    assert!(contact.anonymous);
    assert_eq!(
        states(&contact),
        [("marketing", "opted_out"), ("utility", "opted_out")]
    );
    let marketing = &contact.consent[&crate::domain::consent::Category::Marketing];
    assert_eq!(
        (
            marketing.source.as_str(),
            marketing.evidence.as_str(),
            marketing.at.as_str()
        ),
        ("keyword", "Stop.", "2026-11-21T09:00:00.000Z")
    );
    assert_eq!(contact.whatsapp_opted, Some(false));

    // WHEN they text START later THEN they are opted back in
    send(&store, sms("sm-2", "start", "2026-11-21T11:00:00Z"))
        .await
        .expect("handled");
    let contact = sms_contact(&store);
    assert_eq!(
        states(&contact),
        [("marketing", "opted_in"), ("utility", "opted_in")]
    );
    assert_eq!(contact.whatsapp_opted, Some(true));

    // AND a late STOP (sent before the START) changes nothing; nor does a sentence
    let version = contact.version;
    send(&store, sms("sm-3", "STOP", "2026-11-21T10:30:00Z"))
        .await
        .expect("handled");
    send(
        &store,
        sms("sm-4", "stop sending me stuff", "2026-11-21T12:00:00Z"),
    )
    .await
    .expect("handled");
    let contact = sms_contact(&store);
    assert_eq!(states(&contact)[0], ("marketing", "opted_in"));
    assert_eq!(
        contact.last_inbound_at.as_deref(),
        Some("2026-11-21T12:00:00Z")
    );
    assert_eq!(
        contact.version,
        version + 1,
        "the sentence moves last_inbound_at only"
    );
}

#[tokio::test]
async fn keywords_count_on_sms_only_and_a_long_text_is_no_keyword_and_no_error() {
    let store = MemoryPorts::default();
    let mut event = inbound("wamid.1", Some("Eva"));
    event["text"] = json!("STOP");
    send(&store, event).await.expect("handled");
    assert!(contact(&store, PHONE).expect("created").consent.is_empty());

    let mut long = sms("sm-1", "", "2026-11-21T10:00:00Z");
    long["text"] = json!(format!("STOP {}", "x".repeat(5000)));
    send(&store, long).await.expect("the message is kept");
    let saved = sms_contact(&store);
    assert!(saved.consent.is_empty(), "a long message is no keyword");

    let mut number = sms("sm-2", "", "2026-11-21T10:00:01Z");
    number["text"] = json!(5);
    assert!(matches!(
        send(&store, number).await,
        Err(EventError::InvalidField { .. })
    ));
}

#[tokio::test]
async fn a_blocked_contact_records_its_stop_and_stays_blocked() {
    // GIVEN a blocked SMS contact
    let store = MemoryPorts::default();
    send(&store, sms("sm-1", "Hello", "2026-11-21T10:00:00Z"))
        .await
        .expect("handled");
    let mut stored = sms_contact(&store);
    let version = stored.version;
    stored.status = Status::Blocked;
    let put = store
        .contacts
        .put_contact(&stored, Precondition::Version(version))
        .await;
    assert_eq!(put.expect("put"), PutOutcome::Written);

    // WHEN it texts STOP THEN the answer is blocked, the stop recorded, nothing else
    let answer = send(&store, sms("sm-2", "STOP", "2026-11-21T11:00:00Z"))
        .await
        .expect("handled");
    assert_eq!(answer["contact"], "blocked");
    let contact = sms_contact(&store);
    assert_eq!(contact.status, Status::Blocked);
    assert_eq!(states(&contact)[0], ("marketing", "opted_out"));
    assert_eq!(
        contact.last_inbound_at.as_deref(),
        Some("2026-11-21T10:00:00Z")
    );
    // AND an ordinary message from it writes nothing, as before
    send(&store, sms("sm-3", "Hello?", "2026-11-21T12:00:00Z"))
        .await
        .expect("handled");
    assert_eq!(sms_contact(&store), contact);
}

#[tokio::test]
async fn a_reactivated_contact_keeps_its_consent() {
    // GIVEN a contact that sent STOP, then was archived
    let store = MemoryPorts::default();
    send(&store, sms("sm-1", "STOP", "2026-11-21T10:00:00Z"))
        .await
        .expect("handled");
    let mut stored = sms_contact(&store);
    let version = stored.version;
    stored.status = Status::Archived;
    let put = store
        .contacts
        .put_contact(&stored, Precondition::Version(version))
        .await;
    assert_eq!(put.expect("put"), PutOutcome::Written);

    // WHEN it writes again THEN it is active again, and still opted out
    let answer = send(
        &store,
        sms("sm-2", "Hi, is the shop open?", "2026-11-21T11:00:00Z"),
    )
    .await
    .expect("handled");
    assert_eq!(answer["contact"], "reactivated");
    let contact = sms_contact(&store);
    assert_eq!(contact.status, Status::Active);
    assert_eq!(
        states(&contact),
        [("marketing", "opted_out"), ("utility", "opted_out")]
    );
}

#[tokio::test]
async fn a_campaign_never_opts_a_stopped_recipient_back_in() {
    // GIVEN a number that texted STOP
    let store = MemoryPorts::default();
    send(&store, sms("sm-1", "STOP", "2026-11-21T10:00:00Z"))
        .await
        .expect("handled");
    // WHEN a campaign's recipients say it and a new number are opted in
    let event = json!({"type": "campaign.completed", "account_id": "acme", "campaign_id": "cmp-7", "channel": "sms",
        "status": "succeeded", "recipients": [
            {"phone": PHONE, "name": "Eva", "whatsapp_opted": "TRUE"},
            {"phone": "+447911123457", "name": "Bo", "whatsapp_opted": "TRUE"}]});
    let answer = send(&store, event).await.expect("saved");
    // THEN the answer keeps its shape; the stopped number gains its name, not consent
    assert_eq!(
        (&answer["created"], &answer["updated"]),
        (&json!(1), &json!(1))
    );
    assert!(answer.get("kept_opted_out").is_none());
    let eva = sms_contact(&store);
    assert_eq!(eva.text.get("name").map(String::as_str), Some("Eva"));
    assert_eq!(states(&eva)[0], ("marketing", "opted_out"));
    assert_eq!(eva.whatsapp_opted, Some(false));
    let bo = store
        .contacts
        .get("acme", Channel::Sms, "+447911123457")
        .expect("created");
    let entry = &bo.consent[&crate::domain::consent::Category::Marketing];
    assert_eq!(
        (
            entry.state.as_str(),
            entry.source.as_str(),
            entry.evidence.as_str()
        ),
        ("opted_in", "import", "campaign:cmp-7")
    );
}

#[tokio::test]
async fn imports_list_answers_the_accounts_imports_as_they_finished_newest_first() {
    // GIVEN two imports of acme through the import pipeline
    let store = MemoryPorts::default();
    let first = imported(&store, "first.csv", "Name,Phone\nEva,+447911123456\n").await;
    let second = imported(
        &store,
        "second.csv",
        "Name,Phone\nBo,+447911123457\nX,bad\n",
    )
    .await;

    // WHEN contact-events is asked for acme's imports, and for another account's
    let answer = send(
        &store,
        json!({"type": "imports.list", "account_id": "acme", "limit": 20, "next": null}),
    )
    .await
    .expect("listed");
    let other = send(
        &store,
        json!({"type": "imports.list", "account_id": "other"}),
    )
    .await;

    // THEN both are there, newest first, finished, with their counts and report keys;
    // one page, so no `next`; the other account has none
    let imports = answer["imports"].as_array().expect("imports");
    let ids: Vec<&str> = imports
        .iter()
        .filter_map(|i| i["import_id"].as_str())
        .collect();
    let started = |id: &str| {
        imports
            .iter()
            .find(|i| i["import_id"] == id)
            .and_then(|i| i["started_at"].as_str())
            .map(|at| (at.to_string(), id.to_string()))
            .expect("listed")
    };
    let (first_at, second_at) = (started(&first), started(&second));
    assert!(second_at.0 >= first_at.0, "{answer}");
    // Two imports in one millisecond sort by import id, as their index keys do.
    let mut newest_first = [first_at, second_at];
    newest_first.sort_by(|a, b| b.cmp(a));
    assert_eq!(ids, newest_first.map(|(_, id)| id));
    assert!(answer.get("next").is_none(), "{answer}");
    let newest = imports
        .iter()
        .find(|i| i["import_id"] == second.as_str())
        .expect("listed");
    assert_eq!(newest["status"], "completed_with_errors");
    assert_eq!(newest["rows"]["created"], 1);
    assert_eq!(newest["rows"]["rejected"], 1);
    assert_eq!(newest["source_key"], "imports/acme/whatsapp/second.csv");
    assert!(newest["finished_at"].as_str() >= newest["started_at"].as_str());
    assert_eq!(
        newest["summary_key"],
        format!("reports/acme/{second}/summary.json")
    );
    let summary = store
        .objects
        .text(
            "contact-uploads",
            &format!("reports/acme/{second}/summary.json"),
        )
        .expect("summary.json");
    let summary: Value = serde_json::from_str(&summary).expect("JSON");
    assert_eq!(newest["rows"], summary["rows"]);
    assert_eq!(newest["started_at"], summary["started_at"]);
    assert_eq!(newest["finished_at"], summary["finished_at"]);
    assert_eq!(other.expect("listed"), json!({"imports": []}));
}
