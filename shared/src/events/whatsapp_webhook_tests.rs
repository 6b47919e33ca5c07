//! Meta's webhook bodies through the service over the in-memory ports.

use serde_json::{json, Value};

use crate::config::Config;
use crate::domain::channel::Channel;
use crate::domain::consent::{Category, ConsentSource, State};
use crate::domain::contact::Contact;
use crate::events::{EventService, Invocation};
use crate::ports::memory::MemoryPorts;
use crate::ports::{Identities, Suppressions};

const PNID: &str = "106540352242922";
const BSUID: &str = "GB.13491208655302741918";
const WA_ID: &str = "447911123456";
const PHONE: &str = "+447911123456";

fn ports() -> MemoryPorts {
    let ports = MemoryPorts::default();
    ports.contacts.add_business_number(PNID, "acme");
    ports
}

async fn send(ports: &MemoryPorts, body: Value) -> Value {
    send_with(&Config::default(), ports, body).await
}

async fn send_with(config: &Config, ports: &MemoryPorts, body: Value) -> Value {
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
        .handle_invocation(Invocation::from_payload(body))
        .await
        .expect("handled");
    serde_json::to_value(reply).expect("serialises")
}

fn body(value: Value) -> Value {
    let mut value = value;
    value["messaging_product"] = json!("whatsapp");
    value["metadata"] = json!({"display_phone_number": "15550001111", "phone_number_id": PNID});
    json!({"object": "whatsapp_business_account",
           "entry": [{"id": "WABA", "changes": [{"field": "messages", "value": value}]}]})
}

fn message(id: &str, wa_id: Option<&str>, user_id: Option<&str>, name: &str) -> Value {
    let mut contact = json!({"profile": {"name": name}});
    let mut message =
        json!({"id": id, "timestamp": "1764324000", "type": "text", "text": {"body": "Hi"}});
    if let Some(wa_id) = wa_id {
        contact["wa_id"] = json!(wa_id);
        message["from"] = json!(wa_id);
    }
    if let Some(user_id) = user_id {
        contact["user_id"] = json!(user_id);
        message["from_user_id"] = json!(user_id);
    }
    body(json!({"contacts": [contact], "messages": [message]}))
}

fn whatsapp(ports: &MemoryPorts, key: &str) -> Option<Contact> {
    ports.contacts.get("acme", Channel::Whatsapp, key)
}

#[tokio::test]
async fn a_message_with_number_and_bsuid_creates_one_contact_and_its_alias() {
    let ports = ports();
    let answer = send(&ports, message("wamid.1", Some(WA_ID), Some(BSUID), "Eva")).await;
    assert_eq!(answer["contacts_created"], 1, "{answer}");
    let eva = whatsapp(&ports, PHONE).expect("created");
    assert!(eva.anonymous);
    assert_eq!(eva.text.get("name").map(String::as_str), Some("Eva"));
    assert_eq!(eva.text.get("user_id").map(String::as_str), Some(BSUID));
    assert_eq!(eva.wa_id.as_deref(), Some(WA_ID));
    assert_eq!(eva.whatsapp_reachable, Some(true));
    let alias = ports.contacts.alias("acme", BSUID).await.expect("read");
    assert_eq!(alias.map(|a| a.contact_key), Some(PHONE.to_string()));
    // The same body again changes nothing.
    let again = send(&ports, message("wamid.1", Some(WA_ID), Some(BSUID), "Eva")).await;
    assert_eq!(again["contacts_created"], 1, "the ledger answers as before");
    assert_eq!(ports.contacts.count(), 1);
}

#[tokio::test]
async fn a_bsuid_only_contact_is_merged_into_the_number_when_both_appear() {
    let ports = ports();
    send(&ports, message("wamid.1", None, Some(BSUID), "Eva")).await;
    let key = format!("bsuid:{BSUID}");
    let anonymous = whatsapp(&ports, &key).expect("BSUID-only contact");
    assert_eq!(anonymous.e164(), None);
    assert_eq!(ports.contacts.count(), 1);

    let answer = send(&ports, message("wamid.2", Some(WA_ID), Some(BSUID), "Eva")).await;
    assert_eq!(
        answer["contacts_updated"], 1,
        "the person was known: {answer}"
    );
    assert_eq!(ports.contacts.count(), 1, "merged, not duplicated");
    assert!(whatsapp(&ports, &key).is_none());
    let eva = whatsapp(&ports, PHONE).expect("the number's contact");
    assert_eq!(eva.text.get("name").map(String::as_str), Some("Eva"));
    let alias = ports.contacts.alias("acme", BSUID).await.expect("read");
    assert_eq!(alias.map(|a| a.contact_key), Some(PHONE.to_string()));
    // A later BSUID-only message finds the number's contact through the alias.
    let answer = send(&ports, message("wamid.3", None, Some(BSUID), "Eva")).await;
    assert_eq!(answer["contacts_created"], 0, "{answer}");
    assert_eq!(ports.contacts.count(), 1);
}

#[tokio::test]
async fn an_existing_number_contact_absorbs_the_bsuid_only_one() {
    let ports = ports();
    send(&ports, message("wamid.1", Some(WA_ID), None, "Eva")).await;
    send(&ports, message("wamid.2", None, Some(BSUID), "Eva B")).await;
    assert_eq!(ports.contacts.count(), 2, "nothing yet links them");
    send(&ports, message("wamid.3", Some(WA_ID), Some(BSUID), "Eva")).await;
    assert_eq!(ports.contacts.count(), 1);
    let eva = whatsapp(&ports, PHONE).expect("kept");
    assert_eq!(eva.text.get("name").map(String::as_str), Some("Eva"));
    assert_eq!(eva.text.get("user_id").map(String::as_str), Some(BSUID));
}

#[tokio::test]
async fn a_legacy_brazilian_wa_id_finds_the_thirteen_digit_contact() {
    let ports = ports();
    send(
        &ports,
        message("wamid.1", Some("5511987654321"), None, "Ana"),
    )
    .await;
    let answer = send(
        &ports,
        message("wamid.2", Some("551187654321"), None, "Ana"),
    )
    .await;
    assert_eq!(answer["contacts_created"], 0, "{answer}");
    assert_eq!(ports.contacts.count(), 1);
    let ana = whatsapp(&ports, "+5511987654321").expect("found");
    assert_eq!(
        ana.wa_id.as_deref(),
        Some("551187654321"),
        "the raw wa_id is kept"
    );
    // A first message from a legacy form creates the contact under the valid form.
    send(
        &ports,
        message("wamid.3", Some("552187654321"), None, "Bia"),
    )
    .await;
    assert!(whatsapp(&ports, "+5521987654321").is_some());
}

fn status(
    id: &str,
    state: &str,
    code: Option<i64>,
    to: Option<&str>,
    to_user: Option<&str>,
) -> Value {
    let mut status =
        json!({"id": id, "status": state, "timestamp": 1764324100, "recipient_type": "individual"});
    if let Some(to) = to {
        status["recipient_id"] = json!(to);
    }
    if let Some(to_user) = to_user {
        status["recipient_user_id"] = json!(to_user);
    }
    if let Some(code) = code {
        status["errors"] = json!([{"code": code, "title": "x"}]);
    }
    body(json!({"statuses": [status]}))
}

#[tokio::test]
async fn statuses_never_create_and_change_reachability_and_consent() {
    let ports = ports();
    let answer = send(
        &ports,
        status("wamid.s1", "delivered", None, Some(WA_ID), Some(BSUID)),
    )
    .await;
    assert_eq!(answer["statuses_without_effect"], 1, "{answer}");
    assert_eq!(ports.contacts.count(), 0);
    assert!(ports.contacts.aliases().is_empty());

    send(&ports, message("wamid.1", Some(WA_ID), None, "Eva")).await;
    send(
        &ports,
        status("wamid.s2", "failed", Some(131_026), Some(WA_ID), None),
    )
    .await;
    assert_eq!(
        whatsapp(&ports, PHONE).expect("eva").whatsapp_reachable,
        Some(false)
    );
    send(
        &ports,
        status("wamid.s3", "failed", Some(131_049), Some(WA_ID), None),
    )
    .await;
    assert_eq!(
        whatsapp(&ports, PHONE).expect("eva").whatsapp_reachable,
        Some(false)
    );
    send(
        &ports,
        status("wamid.s4", "delivered", None, Some(WA_ID), Some(BSUID)),
    )
    .await;
    let eva = whatsapp(&ports, PHONE).expect("eva");
    assert_eq!(eva.whatsapp_reachable, Some(true));
    let alias = ports.contacts.alias("acme", BSUID).await.expect("read");
    assert_eq!(
        alias.map(|a| a.contact_key),
        Some(PHONE.to_string()),
        "a status adds the alias"
    );

    send(
        &ports,
        status("wamid.s5", "failed", Some(131_050), None, Some(BSUID)),
    )
    .await;
    let marketing = whatsapp(&ports, PHONE).expect("eva").consent[&Category::Marketing].clone();
    assert_eq!(marketing.state, State::OptedOut);
    assert_eq!(marketing.source, ConsentSource::Status131050);
    assert_eq!(marketing.scope.as_deref(), Some(PNID));
}

#[tokio::test]
async fn group_statuses_and_unknown_business_numbers_write_nothing() {
    let ports = ports();
    send(&ports, message("wamid.1", Some(WA_ID), None, "Eva")).await;
    let mut group = status("wamid.g", "failed", Some(131_026), Some(WA_ID), None);
    group["entry"][0]["changes"][0]["value"]["statuses"][0]["recipient_type"] = json!("group");
    send(&ports, group).await;
    assert_eq!(
        whatsapp(&ports, PHONE).expect("eva").whatsapp_reachable,
        Some(true)
    );

    let mut stranger = message("wamid.2", Some("447400123456"), None, "Bo");
    stranger["entry"][0]["changes"][0]["value"]["metadata"]["phone_number_id"] = json!("999");
    let answer = send(&ports, stranger).await;
    assert_eq!(answer["unknown_phone_number_id"], 1, "{answer}");
    assert_eq!(ports.contacts.count(), 1);
}

fn preference(value: &str, timestamp: i64) -> Value {
    body(
        json!({"user_preferences": [{"wa_id": WA_ID, "user_id": BSUID, "category": "marketing_messages",
        "value": value, "timestamp": timestamp}]}),
    )
}

#[tokio::test]
async fn user_preferences_out_of_order_the_later_one_wins() {
    let ports = ports();
    send(&ports, message("wamid.1", Some(WA_ID), Some(BSUID), "Eva")).await;
    send(&ports, preference("resume", 1764324200)).await;
    send(&ports, preference("stop", 1764324100)).await;
    let marketing = whatsapp(&ports, PHONE).expect("eva").consent[&Category::Marketing].clone();
    assert_eq!(
        marketing.state,
        State::OptedIn,
        "the older stop came late: it changes nothing"
    );
    send(&ports, preference("stop", 1764324300)).await;
    let eva = whatsapp(&ports, PHONE).expect("eva");
    assert_eq!(eva.consent[&Category::Marketing].state, State::OptedOut);
    assert_eq!(eva.whatsapp_opted, Some(false));
    let version = eva.version;
    // The same stop again is no change.
    let answer = send(&ports, preference("stop", 1764324300)).await;
    assert_eq!(answer["preferences_without_effect"], 1, "{answer}");
    assert_eq!(whatsapp(&ports, PHONE).expect("eva").version, version);
}

#[tokio::test]
async fn a_stop_from_someone_unknown_is_remembered() {
    let ports = ports();
    send(&ports, preference("stop", 1764324100)).await;
    let eva = whatsapp(&ports, PHONE).expect("kept, so no import opts them in");
    assert_eq!(eva.consent[&Category::Marketing].state, State::OptedOut);
    let resume_unknown = body(
        json!({"user_preferences": [{"user_id": "US.1", "category": "marketing_messages", "value": "resume", "timestamp": "1764324100"}]}),
    );
    send(&ports, resume_unknown).await;
    assert_eq!(ports.contacts.count(), 1);
}

#[tokio::test]
async fn a_bsuid_change_moves_the_alias() {
    let ports = ports();
    send(&ports, message("wamid.1", Some(WA_ID), Some(BSUID), "Eva")).await;
    let system = body(
        json!({"messages": [{"from": WA_ID, "from_user_id": BSUID, "id": "wamid.sys", "timestamp": "1764324500",
        "type": "system", "system": {"body": "changed", "type": "user_changed_user_id", "user_id": "GB.999"}}]}),
    );
    send(&ports, system).await;
    assert!(ports
        .contacts
        .alias("acme", BSUID)
        .await
        .expect("read")
        .is_none());
    let moved = ports.contacts.alias("acme", "GB.999").await.expect("read");
    assert_eq!(moved.map(|a| a.contact_key), Some(PHONE.to_string()));
    assert_eq!(
        whatsapp(&ports, PHONE)
            .expect("eva")
            .text
            .get("user_id")
            .map(String::as_str),
        Some("GB.999")
    );

    let update = body(json!({"user_id_update": [{"previous": "GB.999", "current": "GB.1000"}]}));
    send(&ports, update).await;
    let moved = ports.contacts.alias("acme", "GB.1000").await.expect("read");
    assert_eq!(moved.map(|a| a.contact_key), Some(PHONE.to_string()));
    let eva = whatsapp(&ports, PHONE).expect("eva");
    assert_eq!(eva.user_ids, ["GB.1000".to_string()].into());
}

#[tokio::test]
async fn a_changed_number_moves_only_the_whatsapp_contact() {
    let ports = ports();
    send(&ports, message("wamid.1", Some(WA_ID), Some(BSUID), "Eva")).await;
    let system = body(
        json!({"messages": [{"from": WA_ID, "id": "wamid.num", "timestamp": "1764324500",
        "type": "system", "system": {"body": "changed", "type": "user_changed_number", "new_wa_id": "447400123456"}}]}),
    );
    send(&ports, system).await;
    assert!(whatsapp(&ports, PHONE).is_none());
    let eva = whatsapp(&ports, "+447400123456").expect("moved");
    assert_eq!(eva.text.get("name").map(String::as_str), Some("Eva"));
    assert_eq!(ports.contacts.count(), 1);
    // The system message names no BSUID: the alias moves because the contact stores it.
    let alias = ports.contacts.alias("acme", BSUID).await.expect("read");
    assert_eq!(
        alias.map(|a| a.contact_key).as_deref(),
        Some("+447400123456")
    );
}

/// `body` as it arrives through another business number (another portfolio's) of acme.
fn through(phone_number_id: &str, mut body: Value) -> Value {
    body["entry"][0]["changes"][0]["value"]["metadata"]["phone_number_id"] = json!(phone_number_id);
    body
}

/// Eva's messages to acme's two business numbers (two portfolios): BSUID, then US.77.
async fn eva_through_two_portfolios() -> MemoryPorts {
    let ports = ports();
    ports.contacts.add_business_number("PNID-B", "acme");
    send(&ports, message("wamid.1", Some(WA_ID), Some(BSUID), "Eva")).await;
    send(
        &ports,
        through(
            "PNID-B",
            message("wamid.2", Some(WA_ID), Some("US.77"), "Eva"),
        ),
    )
    .await;
    ports
}

#[tokio::test]
async fn each_portfolios_bsuid_gets_an_alias_and_every_alias_moves_with_the_number() {
    // GIVEN Eva writing to acme's two business numbers, one BSUID per portfolio
    let ports = eva_through_two_portfolios().await;

    // THEN one contact keeps the first BSUID and lists both, and both aliases name it
    let eva = whatsapp(&ports, PHONE).expect("eva");
    assert_eq!(eva.text.get("user_id").map(String::as_str), Some(BSUID));
    assert_eq!(
        eva.user_ids,
        [BSUID.to_string(), "US.77".to_string()].into()
    );
    for user_id in [BSUID, "US.77"] {
        let alias = ports.contacts.alias("acme", user_id).await.expect("read");
        assert_eq!(alias.map(|a| a.contact_key).as_deref(), Some(PHONE));
    }

    // WHEN her number changes THEN both aliases follow the contact
    let system = body(
        json!({"messages": [{"from": WA_ID, "from_user_id": BSUID, "id": "wamid.num", "timestamp": "1764324500",
        "type": "system", "system": {"body": "changed", "type": "user_changed_number", "new_wa_id": "447400123456"}}]}),
    );
    send(&ports, system).await;
    for user_id in [BSUID, "US.77"] {
        let alias = ports.contacts.alias("acme", user_id).await.expect("read");
        assert_eq!(
            alias.map(|a| a.contact_key).as_deref(),
            Some("+447400123456")
        );
    }
    assert_eq!(ports.contacts.count(), 1);
}

#[tokio::test]
async fn a_shared_phone_on_request_reveals_and_merges() {
    let ports = ports();
    send(&ports, message("wamid.1", None, Some(BSUID), "Eva")).await;
    let shared = body(
        json!({"messages": [{"from_user_id": BSUID, "id": "wamid.c", "timestamp": "1764324500",
        "type": "contacts", "origin": "contact_request",
        "contacts": [{"name": {"formatted_name": "Eva"}, "phones": [{"phone": "+44 7911 123456", "wa_id": WA_ID, "type": "MOBILE"}]}]}]}),
    );
    send(&ports, shared).await;
    assert_eq!(ports.contacts.count(), 1);
    assert!(whatsapp(&ports, PHONE).is_some());
}

#[tokio::test]
async fn concurrent_deliveries_of_one_body_end_as_one_contact() {
    let ports = ports();
    let body = message("wamid.1", None, Some(BSUID), "Eva");
    let config = Config::default();
    let service = EventService {
        objects: &ports.objects,
        contacts: &ports.contacts,
        settings: &ports.settings,
        ledger: &ports.ledger,
        webhooks: &ports.webhooks,
        imports: &ports.jobs,
        config: &config,
    };
    let deliveries =
        (0..3).map(|_| service.handle_invocation(Invocation::from_payload(body.clone())));
    for result in futures::future::join_all(deliveries).await {
        result.expect("handled");
    }
    assert_eq!(ports.contacts.count(), 1);
    assert_eq!(ports.contacts.aliases().len(), 1);
}

/// Imports, on WhatsApp, a file whose rows are `(phone, name, BSUID)`.
async fn import(ports: &MemoryPorts, rows: &[(&str, &str, &str)]) {
    let mut file = String::from("Phone,Name,WhatsApp User ID\n");
    for (phone, name, user_id) in rows {
        file.push_str(&format!("{phone},{name},{user_id}\n"));
    }
    let summary = crate::import::import_in_memory(
        &Config::default(),
        ports,
        "imports/acme/whatsapp/people.csv",
        file.as_bytes(),
        &[],
        "1",
    )
    .await;
    assert_eq!(summary.rows.created as usize, rows.len(), "{summary:?}");
}

#[tokio::test]
async fn an_imported_bsuid_only_contact_is_found_by_a_message_without_an_alias() {
    // GIVEN a contact an import saved by its BSUID alone: no alias names it
    let ports = ports();
    import(&ports, &[("", "Eva Imported", BSUID)]).await;
    let key = format!("bsuid:{BSUID}");
    assert!(whatsapp(&ports, &key).is_some());
    assert!(ports.contacts.aliases().is_empty());

    // WHEN the person writes, known by the BSUID only
    let answer = send(&ports, message("wamid.1", None, Some(BSUID), "Eva")).await;

    // THEN the imported contact is the one found (its name kept) and now has its alias
    assert_eq!(answer["contacts_created"], 0, "{answer}");
    assert_eq!(answer["contacts_updated"], 1, "{answer}");
    assert_eq!(ports.contacts.count(), 1);
    let eva = whatsapp(&ports, &key).expect("the imported contact");
    assert_eq!(
        eva.text.get("name").map(String::as_str),
        Some("Eva Imported")
    );
    assert!(eva.last_inbound_at.is_some());
    let alias = ports.contacts.alias("acme", BSUID).await.expect("read");
    assert_eq!(alias.map(|a| a.contact_key), Some(key.clone()));

    // AND a later message with the number merges it into the number's contact
    send(&ports, message("wamid.2", Some(WA_ID), Some(BSUID), "Eva")).await;
    assert_eq!(ports.contacts.count(), 1, "merged, not duplicated");
    let eva = whatsapp(&ports, PHONE).expect("the number's contact");
    assert_eq!(
        eva.text.get("name").map(String::as_str),
        Some("Eva Imported")
    );
    assert_eq!(eva.text.get("user_id").map(String::as_str), Some(BSUID));
    let alias = ports.contacts.alias("acme", BSUID).await.expect("read");
    assert_eq!(alias.map(|a| a.contact_key), Some(PHONE.to_string()));
}

#[tokio::test]
async fn a_first_message_with_number_and_bsuid_merges_the_imported_bsuid_only_contact() {
    // GIVEN an imported BSUID-only contact, and the person's number imported apart
    let ports = ports();
    import(
        &ports,
        &[
            ("", "Eva B", BSUID),
            (PHONE, "Eva", ""),
            ("+447400123456", "Bo", ""),
        ],
    )
    .await;
    assert_eq!(ports.contacts.count(), 3);

    // WHEN the person's first message names both, and no alias exists yet
    let answer = send(&ports, message("wamid.1", Some(WA_ID), Some(BSUID), "Eva")).await;

    // THEN the BSUID-only contact is merged into the number's, which keeps its own
    // values, and the alias names the number's contact
    assert_eq!(answer["contacts_updated"], 1, "{answer}");
    assert_eq!(ports.contacts.count(), 2, "merged, not duplicated");
    assert!(whatsapp(&ports, &format!("bsuid:{BSUID}")).is_none());
    let eva = whatsapp(&ports, PHONE).expect("kept");
    assert_eq!(eva.text.get("name").map(String::as_str), Some("Eva"));
    assert_eq!(eva.text.get("user_id").map(String::as_str), Some(BSUID));
    let alias = ports.contacts.alias("acme", BSUID).await.expect("read");
    assert_eq!(alias.map(|a| a.contact_key), Some(PHONE.to_string()));
}

#[tokio::test]
async fn a_status_finds_an_imported_bsuid_only_contact_and_never_creates_one() {
    let ports = ports();
    import(&ports, &[("", "Eva", BSUID)]).await;
    send(
        &ports,
        status("wamid.s1", "failed", Some(131_050), None, Some(BSUID)),
    )
    .await;
    let eva = whatsapp(&ports, &format!("bsuid:{BSUID}")).expect("found");
    assert_eq!(eva.consent[&Category::Marketing].state, State::OptedOut);
    // A status for another BSUID nobody has: nothing created.
    send(
        &ports,
        status("wamid.s2", "delivered", None, None, Some("US.404")),
    )
    .await;
    assert_eq!(ports.contacts.count(), 1);
}

#[tokio::test]
async fn a_bsuid_change_of_an_imported_contact_gives_it_the_new_id_s_alias() {
    // GIVEN an imported BSUID-only contact without an alias
    let ports = ports();
    import(&ports, &[("", "Eva", BSUID)]).await;
    let key = format!("bsuid:{BSUID}");

    // WHEN Meta says the BSUID changed
    let update = body(json!({"user_id_update": [{"previous": BSUID, "current": "GB.1000"}]}));
    let answer = send(&ports, update).await;

    // THEN the new id's alias names the contact, which stores the new id under its key
    assert_eq!(answer["identity_changes"], 1, "{answer}");
    let alias = ports.contacts.alias("acme", "GB.1000").await.expect("read");
    assert_eq!(alias.map(|a| a.contact_key), Some(key.clone()));
    let eva = whatsapp(&ports, &key).expect("kept its key");
    assert_eq!(eva.text.get("user_id").map(String::as_str), Some("GB.1000"));
    // AND a message under the new id finds it
    send(&ports, message("wamid.1", None, Some("GB.1000"), "Eva")).await;
    assert_eq!(ports.contacts.count(), 1);
}

/// Sends `body` to a service that can erase (it has a suppression key).
async fn send_erasing(ports: &MemoryPorts, body: Value) -> Value {
    let config = Config {
        suppression: crate::domain::suppression::SuppressionKey::new(b"test-suppression-secret"),
        ..Config::default()
    };
    let service = EventService {
        objects: &ports.objects,
        contacts: &ports.contacts,
        settings: &ports.settings,
        ledger: &ports.ledger,
        webhooks: &ports.webhooks,
        imports: &ports.jobs,
        config: &config,
    };
    let reply = service
        .handle_invocation(Invocation::from_payload(body))
        .await
        .expect("handled");
    serde_json::to_value(reply).expect("serialises")
}

/// Whether acme's WhatsApp `phone` has an erasure tombstone (`send_erasing`'s key).
async fn tombstoned(ports: &MemoryPorts, phone: &str) -> bool {
    let key =
        crate::domain::suppression::SuppressionKey::new(b"test-suppression-secret").expect("a key");
    let found = ports
        .contacts
        .suppressed("acme", Channel::Whatsapp, &[key.digest(phone)])
        .await
        .expect("read");
    found == [true]
}

fn erase(phone: &str) -> Value {
    json!({"type": "contact.erase", "account_id": "acme", "channel": "whatsapp", "phone": phone})
}

#[tokio::test]
async fn an_erasure_deletes_the_contact_and_the_alias_of_its_bsuid() {
    // GIVEN Eva, known by number and BSUID, and Bo with a BSUID of his own
    let ports = ports();
    send(&ports, message("wamid.1", Some(WA_ID), Some(BSUID), "Eva")).await;
    send(
        &ports,
        message("wamid.2", Some("447400123456"), Some("GB.2"), "Bo"),
    )
    .await;
    assert_eq!(ports.contacts.aliases().len(), 2);

    // WHEN Eva is erased
    let answer = send_erasing(&ports, erase(PHONE)).await;

    // THEN her contact and her alias are gone (two items), Bo's are not
    assert_eq!(answer, json!({"status": "erased", "items": 2}));
    assert!(whatsapp(&ports, PHONE).is_none());
    assert!(ports
        .contacts
        .alias("acme", BSUID)
        .await
        .expect("read")
        .is_none());
    assert_eq!(ports.contacts.count(), 1);
    assert_eq!(ports.contacts.aliases().len(), 1);
    // AND a later message from her BSUID alone starts a new, BSUID-only contact
    send(&ports, message("wamid.3", None, Some(BSUID), "Eva")).await;
    assert!(whatsapp(&ports, &format!("bsuid:{BSUID}")).is_some());
}

#[tokio::test]
async fn a_merged_bsuid_only_contact_brings_every_alias_naming_it() {
    // GIVEN a BSUID-only contact whose BSUID changed: the new BSUID's alias names it
    let ports = ports();
    send(&ports, message("wamid.1", None, Some(BSUID), "Eva")).await;
    let update = body(json!({"user_id_update": [{"previous": BSUID, "current": "GB.2000"}]}));
    send(&ports, update).await;

    // WHEN a late message carries her number and the old BSUID
    send(&ports, message("wamid.2", Some(WA_ID), Some(BSUID), "Eva")).await;

    // THEN one contact under the number, and both BSUIDs' aliases name it
    assert_eq!(ports.contacts.count(), 1);
    let eva = whatsapp(&ports, PHONE).expect("merged into the number");
    assert!(eva.user_ids.contains("GB.2000"), "{:?}", eva.user_ids);
    for user_id in [BSUID, "GB.2000"] {
        let alias = ports.contacts.alias("acme", user_id).await.expect("read");
        assert_eq!(
            alias.map(|a| a.contact_key).as_deref(),
            Some(PHONE),
            "{user_id}"
        );
    }
}

#[tokio::test]
async fn an_erased_number_comes_back_only_with_the_persons_own_message() {
    // GIVEN Eva erased, then writing with her BSUID alone (a BSUID-only contact)
    let ports = ports();
    send(&ports, message("wamid.1", Some(WA_ID), Some(BSUID), "Eva")).await;
    send_erasing(&ports, erase(PHONE)).await;
    send_erasing(&ports, message("wamid.2", None, Some(BSUID), "Eva")).await;
    let bsuid_key = format!("bsuid:{BSUID}");
    assert!(whatsapp(&ports, &bsuid_key).is_some());

    // WHEN a stop names her number and BSUID
    send_erasing(&ports, preference("stop", 1764324100)).await;

    // THEN it lands on the BSUID-only contact; the number stays erased and empty
    assert!(whatsapp(&ports, PHONE).is_none());
    let eva = whatsapp(&ports, &bsuid_key).expect("still BSUID-only");
    assert_eq!(eva.consent[&Category::Marketing].state, State::OptedOut);
    assert!(tombstoned(&ports, PHONE).await);

    // WHEN she writes with her number and BSUID
    send_erasing(&ports, message("wamid.3", Some(WA_ID), Some(BSUID), "Eva")).await;

    // THEN her contact is back under the number, merged, and the tombstone is lifted
    assert!(whatsapp(&ports, PHONE).is_some());
    assert!(whatsapp(&ports, &bsuid_key).is_none());
    assert!(!tombstoned(&ports, PHONE).await);
}

#[tokio::test]
async fn an_erasure_deletes_the_aliases_of_every_portfolio() {
    // GIVEN Eva known through two business numbers of acme, with a BSUID for each
    let ports = eva_through_two_portfolios().await;
    assert_eq!(ports.contacts.aliases().len(), 2);

    // WHEN she is erased
    let answer = send_erasing(&ports, erase(PHONE)).await;

    // THEN the contact and both aliases are gone
    assert_eq!(answer, json!({"status": "erased", "items": 3}));
    assert_eq!(ports.contacts.count(), 0);
    assert!(ports.contacts.aliases().is_empty());
}

#[tokio::test]
async fn an_erased_persons_stop_keeps_the_tombstone_and_brings_back_no_contact() {
    // GIVEN Eva, erased
    let ports = ports();
    send(&ports, message("wamid.1", Some(WA_ID), Some(BSUID), "Eva")).await;
    send_erasing(&ports, erase(PHONE)).await;

    // WHEN she stops marketing messages, then resumes them
    send_erasing(&ports, preference("stop", 1764324100)).await;
    send_erasing(&ports, preference("resume", 1764324200)).await;

    // THEN no contact or alias of hers is written, and her number stays suppressed
    assert_eq!(ports.contacts.count(), 0);
    assert!(ports.contacts.aliases().is_empty());
    assert!(tombstoned(&ports, PHONE).await);

    // AND her own message still brings her back and lifts the tombstone
    send_erasing(&ports, message("wamid.2", Some(WA_ID), Some(BSUID), "Eva")).await;
    assert!(whatsapp(&ports, PHONE).is_some());
    assert!(!tombstoned(&ports, PHONE).await);
}

#[tokio::test]
async fn an_alias_that_names_another_contact_is_not_erased() {
    // GIVEN Eva's stored BSUID, whose alias now names another contact
    let ports = ports();
    send(&ports, message("wamid.1", Some(WA_ID), Some(BSUID), "Eva")).await;
    let moved = crate::ports::Alias {
        account_id: "acme".into(),
        user_id: BSUID.into(),
        contact_key: "+447400123456".into(),
        phone_number_id: PNID.into(),
    };
    let written = ports
        .contacts
        .write_identity(&[crate::ports::IdentityWrite::Alias(
            moved.clone(),
            Some(PHONE.into()),
        )])
        .await
        .expect("written");
    assert!(written);

    // WHEN Eva is erased
    let answer = send_erasing(&ports, erase(PHONE)).await;

    // THEN only her contact goes; the alias is another contact's
    assert_eq!(answer, json!({"status": "erased", "items": 1}));
    assert_eq!(
        ports.contacts.alias("acme", BSUID).await.expect("read"),
        Some(moved)
    );
}

/// Imports `file` on WhatsApp as a new upload: its import id.
async fn import_file(ports: &MemoryPorts, name: &str, file: &str) -> String {
    let summary = crate::import::import_in_memory(
        &Config::default(),
        ports,
        &format!("imports/acme/whatsapp/{name}"),
        file.as_bytes(),
        &[],
        name,
    )
    .await;
    summary.import_id
}

fn undo(import_id: &str) -> Value {
    json!({"type": "import.undo", "account_id": "acme", "import_id": import_id})
}

#[tokio::test]
async fn undoing_an_import_keeps_a_contact_whose_number_changed_since() {
    // GIVEN Eva imported, then her WhatsApp number changed
    let ports = ports();
    let import_id = import_file(&ports, "eva.csv", &format!("Phone,Name\n{PHONE},Eva\n")).await;
    let system = body(
        json!({"messages": [{"from": WA_ID, "id": "wamid.num", "timestamp": "1764324500",
        "type": "system", "system": {"body": "changed", "type": "user_changed_number", "new_wa_id": "447400123456"}}]}),
    );
    send(&ports, system).await;
    assert!(whatsapp(&ports, "+447400123456").is_some());

    // WHEN the import is undone
    let answer = send(&ports, undo(&import_id)).await;

    // THEN the moved contact is kept: something wrote it after the import
    assert_eq!(answer["deleted"], 0, "{answer}");
    assert_eq!(answer["kept_changed"], 1, "{answer}");
    assert!(whatsapp(&ports, "+447400123456").is_some());
}

#[tokio::test]
async fn undoing_an_import_keeps_a_bsuid_only_contact_merged_into_a_number_since() {
    // GIVEN Eva imported by her BSUID alone, then her first message names her number too
    let ports = ports();
    let import_id = import_file(
        &ports,
        "eva.csv",
        &format!("Phone,Name,WhatsApp User ID\n,Eva,{BSUID}\n"),
    )
    .await;
    send(&ports, message("wamid.1", Some(WA_ID), Some(BSUID), "Eva")).await;
    assert!(whatsapp(&ports, PHONE).is_some());

    // WHEN the import is undone
    let answer = send(&ports, undo(&import_id)).await;

    // THEN the merged contact is kept, with its alias
    assert_eq!(answer["deleted"], 0, "{answer}");
    assert!(whatsapp(&ports, PHONE).is_some());
    let alias = ports.contacts.alias("acme", BSUID).await.expect("read");
    assert_eq!(alias.map(|a| a.contact_key), Some(PHONE.to_string()));
}

#[tokio::test]
async fn a_bsuid_only_contact_is_erased_by_user_id_and_only_their_message_brings_them_back() {
    // GIVEN a person known by their BSUID alone (a contact and its alias)
    let ports = ports();
    let config = Config {
        suppression: crate::domain::suppression::SuppressionKey::new(b"test-suppression-secret"),
        ..Config::default()
    };
    let send = |body: Value| send_with(&config, &ports, body);
    send(message("wamid.1", None, Some(BSUID), "Eva")).await;
    let key = format!("bsuid:{BSUID}");
    assert!(whatsapp(&ports, &key).is_some());

    // WHEN they are erased by their user id
    let erase = json!({"type": "contact.erase", "account_id": "acme", "channel": "whatsapp",
        "user_id": BSUID});
    let answer = send(erase).await;

    // THEN the contact and its alias are gone
    assert_eq!(answer, json!({"status": "erased", "items": 2}));
    assert!(whatsapp(&ports, &key).is_none());
    assert!(ports.contacts.aliases().is_empty());

    // AND neither a stop nor a status of theirs brings them back
    let stop = body(json!({"user_preferences": [{"user_id": BSUID,
        "category": "marketing_messages", "value": "stop", "timestamp": 1764324600}]}));
    send(stop).await;
    assert_eq!(
        ports.contacts.count(),
        0,
        "a preference does not re-create them"
    );
    let stop_with_number = body(
        json!({"user_preferences": [{"wa_id": WA_ID, "user_id": BSUID,
        "category": "marketing_messages", "value": "stop", "timestamp": 1764324700}]}),
    );
    send(stop_with_number).await;
    assert_eq!(
        ports.contacts.count(),
        0,
        "nor under the number it now comes with: the person is erased"
    );

    // AND their own message does
    send(message("wamid.2", None, Some(BSUID), "Eva")).await;
    assert!(whatsapp(&ports, &key).is_some());
}

#[tokio::test]
async fn reachability_follows_each_items_own_time_not_its_arrival() {
    // GIVEN Eva, reachable since her message (1764324000)
    let ports = ports();
    send(&ports, message("wamid.1", Some(WA_ID), None, "Eva")).await;
    let at = |id: &str, state: &str, code: Option<i64>, time: i64| {
        let mut body = status(id, state, code, Some(WA_ID), None);
        body["entry"][0]["changes"][0]["value"]["statuses"][0]["timestamp"] = json!(time);
        body
    };

    // WHEN a message to her fails as undeliverable at 1764325000, and a delivered
    // status of an earlier message (1764324500) arrives after it
    send(
        &ports,
        at("wamid.f", "failed", Some(131_026), 1_764_325_000),
    )
    .await;
    send(&ports, at("wamid.d", "delivered", None, 1_764_324_500)).await;

    // THEN she stays unreachable, as of the failure
    let eva = whatsapp(&ports, PHONE).expect("eva");
    assert_eq!(eva.whatsapp_reachable, Some(false));
    assert_eq!(
        eva.whatsapp_reachable_at.as_deref(),
        Some("2025-11-28T10:16:40Z")
    );

    // AND a later delivery makes her reachable again, a late replay of an old message
    // of hers changes nothing
    send(&ports, at("wamid.d2", "read", None, 1_764_326_000)).await;
    assert_eq!(
        whatsapp(&ports, PHONE).expect("eva").whatsapp_reachable,
        Some(true)
    );
    send(
        &ports,
        at("wamid.f0", "failed", Some(131_026), 1_764_324_200),
    )
    .await;
    assert_eq!(
        whatsapp(&ports, PHONE).expect("eva").whatsapp_reachable,
        Some(true)
    );

    // AND a delivery that agrees moves the time on: a failure older than it, though
    // newer than the last change, arriving late changes nothing
    send(&ports, at("wamid.d3", "delivered", None, 1_764_327_000)).await;
    send(
        &ports,
        at("wamid.f1", "failed", Some(131_026), 1_764_326_500),
    )
    .await;
    assert_eq!(
        whatsapp(&ports, PHONE).expect("eva").whatsapp_reachable,
        Some(true)
    );
}

#[tokio::test]
async fn the_event_ledger_keeps_no_wamid() {
    // GIVEN a message and a status (a wamid is base64 of the counterpart's number)
    let ports = ports();
    let wamid = "wamid.HBgMNDQ3OTExMTIzNDU2FQIAEhgUM0VCMDRBMzY4QjNFNUM3NzJCQUEA";
    send(&ports, message(wamid, Some(WA_ID), None, "Eva")).await;
    send(&ports, status(wamid, "delivered", None, Some(WA_ID), None)).await;

    // THEN the ledger holds the message's key only (a status is idempotent by its
    // time, and keeps no ledger item), with neither the wamid nor the number: its kind
    // and a digest
    let keys = ports.ledger.keys();
    assert_eq!(keys.len(), 1, "{keys:?}");
    for key in &keys {
        assert!(!key.contains("HBgM") && !key.contains("7911"), "{key}");
        assert!(key.contains("#msg:"), "{key}");
    }

    // AND a redelivery is still known by its digest: nothing new is remembered or written
    send(&ports, message(wamid, Some(WA_ID), None, "Eva")).await;
    assert_eq!(ports.ledger.keys().len(), 1);
    assert_eq!(ports.contacts.count(), 1);
}

#[tokio::test]
async fn a_status_that_changes_nothing_writes_nothing() {
    // GIVEN Eva, reachable since a delivery
    let ports = ports();
    let wamid = "wamid.HBgMNDQ3OTExMTIzNDU2FQIAEhgUM0VCMDRBMzY4QjNFNUM3NzJCQUEA";
    send(&ports, message(wamid, Some(WA_ID), None, "Eva")).await;
    send(&ports, status(wamid, "delivered", None, Some(WA_ID), None)).await;
    let (writes, events) = (ports.contacts.writes(), ports.ledger.keys().len());

    // WHEN the same status comes again, and a `sent` (which says nothing of reach)
    send(&ports, status(wamid, "delivered", None, Some(WA_ID), None)).await;
    send(&ports, status(wamid, "sent", None, Some(WA_ID), None)).await;

    // THEN nothing is written: no contact write, no ledger item
    assert_eq!(ports.contacts.writes(), writes);
    assert_eq!(ports.ledger.keys().len(), events);
}

#[tokio::test]
async fn a_person_erased_by_number_is_not_brought_back_by_their_bsuid_alone() {
    // GIVEN Eva, known by number and BSUID, erased by her number
    let ports = ports();
    let config = Config {
        suppression: crate::domain::suppression::SuppressionKey::new(b"test-suppression-secret"),
        ..Config::default()
    };
    send_with(
        &config,
        &ports,
        message("wamid.1", Some(WA_ID), Some(BSUID), "Eva"),
    )
    .await;
    let erase = json!({"type": "contact.erase", "account_id": "acme", "channel": "whatsapp",
        "phone": PHONE});
    assert_eq!(
        send_with(&config, &ports, erase).await,
        json!({"status": "erased", "items": 2})
    );

    // WHEN a stop names her by her BSUID alone
    let stop = body(json!({"user_preferences": [{"user_id": BSUID,
        "category": "marketing_messages", "value": "stop", "timestamp": 1764324600}]}));
    send_with(&config, &ports, stop).await;

    // THEN no contact comes back under the BSUID
    assert_eq!(ports.contacts.count(), 0);

    // AND her own message, by the BSUID alone, does
    send_with(
        &config,
        &ports,
        message("wamid.2", None, Some(BSUID), "Eva"),
    )
    .await;
    assert!(whatsapp(&ports, &format!("bsuid:{BSUID}")).is_some());
}

#[tokio::test]
async fn unreadable_items_are_counted_and_never_keep_the_others_from_being_applied() {
    let ports = ports();
    let mut webhook = body(json!({
        "contacts": [{"profile": {"name": "Eva"}, "wa_id": WA_ID}, {"profile": 7}],
        "messages": [
            {"timestamp": "1764324000", "type": "text", "from": WA_ID},
            {"from": WA_ID, "id": "wamid.bad", "timestamp": {"not": "a time"}},
            {"from": WA_ID, "id": "wamid.good", "timestamp": "1764324000", "type": "text", "text": {"body": "Hi"}},
            "not an object"],
        "statuses": [{"id": "wamid.s", "status": "delivered", "timestamp": "1764324100"}],
        "user_preferences": [{"wa_id": WA_ID, "category": "marketing_messages", "value": "maybe", "timestamp": 1}]}));
    let changes = webhook["entry"][0]["changes"]
        .as_array_mut()
        .expect("changes");
    changes.push(json!({"field": "messages", "value": "not an object"}));
    changes.push(json!({"field": "message_template_status_update",
                        "value": {"event": "APPROVED", "message_template_id": 1}}));
    changes.push(json!({"field": "account_update", "value": {"phone_number": "15550001111"}}));
    let answer = send(&ports, webhook).await;
    assert_eq!(answer["contacts_created"], 1, "{answer}");
    // A contact entry whose profile is no object, a message with no id, one with a
    // wrong type, one that is not an object, a status naming nobody, a preference that
    // is neither stop nor resume, a change whose value is not an object.
    assert_eq!(answer["invalid_items"], 7, "{answer}");
    assert_eq!(answer["other_fields"], 2, "{answer}");
    assert!(ports
        .contacts
        .get("acme", Channel::Whatsapp, PHONE)
        .is_some());
}

#[test]
fn an_unreadable_item_names_the_field_and_never_its_value() {
    let webhook: crate::events::meta::Webhook = serde_json::from_value(body(json!({
        "messages": [{"id": "wamid.1", "from": "447911123456", "timestamp": {"secret": "447911123456"}}]})))
    .expect("a body always reads");
    let change = match &webhook.entry.0[0] {
        crate::events::meta::Item::Read(entry) => match &entry.changes.0[0] {
            crate::events::meta::Item::Read(change) => change.clone(),
            other => panic!("{other:?}"),
        },
        other => panic!("{other:?}"),
    };
    let value = change.read_value().expect("the value is an object");
    let crate::events::meta::Item::Unreadable(why) = &value.messages.0[0] else {
        panic!("unreadable expected");
    };
    assert_eq!(why.field, "timestamp");
    assert_eq!(why.to_string(), "`timestamp` has the wrong type");
    assert!(!format!("{why:?}").contains("447911123456"));
}

#[tokio::test]
async fn a_change_of_another_field_is_acknowledged_whatever_its_value_holds() {
    let ports = ports();
    let mut webhook = body(json!({"messages": [
        {"from": WA_ID, "id": "wamid.f1", "timestamp": "1764324000", "type": "text", "text": {"body": "Hi"}}]}));
    // Shaped nothing like a messages value: `metadata` a string, `user_id_update` a number.
    webhook["entry"][0]["changes"]
        .as_array_mut()
        .expect("changes")
        .push(json!({"field": "account_update", "value": {"metadata": "x", "user_id_update": 7}}));
    let answer = send(&ports, webhook).await;
    assert_eq!(answer["other_fields"], 1, "{answer}");
    assert_eq!(answer["invalid_items"], 0, "{answer}");
    assert_eq!(answer["contacts_created"], 1, "{answer}");
}

#[tokio::test]
async fn a_single_user_id_update_object_and_an_unreadable_one_are_items_of_their_own() {
    let ports = ports();
    send(&ports, message("wamid.u1", Some(WA_ID), Some(BSUID), "Eva")).await;
    let one = send(
        &ports,
        body(json!({"user_id_update": {"previous": BSUID, "current": "GB.1000"}})),
    )
    .await;
    assert_eq!(one["identity_changes"], 1, "{one}");
    let bad = send(
        &ports,
        body(json!({"user_id_update": [{"previous": 5, "current": "GB.2000"}],
                    "statuses": [{"id": "wamid.s9", "status": "delivered", "timestamp": "1764324500",
                                  "recipient_id": WA_ID}]})),
    )
    .await;
    assert_eq!(bad["invalid_items"], 1, "{bad}");
    let statuses = bad["statuses_applied"].as_u64().unwrap_or(0)
        + bad["statuses_without_effect"].as_u64().unwrap_or(0);
    assert_eq!(statuses, 1, "the status beside it is applied: {bad}");
}

/// `bodies` as one batch of the webhook queue, a record each, as the queue's event
/// source mapping delivers them: the batch's reply.
async fn send_queued(ports: &MemoryPorts, bodies: &[Value]) -> Value {
    let records: Vec<Value> = bodies
        .iter()
        .enumerate()
        .map(|(i, body)| json!({"messageId": format!("r{i}"), "eventSource": "aws:sqs", "body": body.to_string()}))
        .collect();
    send(ports, json!({"Records": records})).await
}

/// The book as the items left it, without what only says when or how often it was
/// written (a batch writes a contact once for several items).
fn book(ports: &MemoryPorts) -> (Vec<Contact>, Vec<String>) {
    let mut contacts: Vec<Contact> = ports
        .contacts
        .all()
        .into_iter()
        .map(|mut c| {
            c.created_at.clear();
            c.updated_at.clear();
            c.version = 0;
            c
        })
        .collect();
    contacts.sort_by(|a, b| a.phone.cmp(&b.phone));
    let mut aliases: Vec<String> = ports
        .contacts
        .aliases()
        .into_iter()
        .map(|a| format!("{} {} {}", a.user_id, a.contact_key, a.phone_number_id))
        .collect();
    aliases.sort();
    (contacts, aliases)
}

fn at(mut body: Value, list: &str, time: i64) -> Value {
    body["entry"][0]["changes"][0]["value"][list][0]["timestamp"] = json!(time.to_string());
    body
}

#[tokio::test]
async fn a_queued_batch_leaves_the_book_as_its_items_one_by_one_would() {
    // GIVEN items of every kind: people new and known, a BSUID-only person who later
    // shares their number (a merge), statuses, stops, duplicates and strangers
    let bo = "447400123456";
    let bodies = vec![
        message("wamid.1", Some(WA_ID), Some(BSUID), "Eva"),
        at(
            status("wamid.s1", "delivered", None, Some(WA_ID), None),
            "statuses",
            1_764_324_100,
        ),
        at(
            preference("stop", 1_764_324_200),
            "user_preferences",
            1_764_324_200,
        ),
        message("wamid.2", Some(bo), None, "Bo"),
        status("wamid.s2", "failed", Some(131_026), Some(bo), None),
        status("wamid.s3", "delivered", None, Some("447400999999"), None),
        message("wamid.3", None, Some("GB.777"), "Cy"),
        message("wamid.4", Some("447400123457"), Some("GB.777"), "Cy"),
        at(
            status("wamid.s4", "read", None, Some("447400123457"), None),
            "statuses",
            1_764_324_300,
        ),
        at(
            status("wamid.s1", "delivered", None, Some(WA_ID), None),
            "statuses",
            1_764_324_100,
        ),
        message("wamid.1", Some(WA_ID), Some(BSUID), "Eva"),
        at(
            status("wamid.s5", "failed", Some(131_026), Some(WA_ID), None),
            "statuses",
            1_764_324_050,
        ),
    ];

    // WHEN one book takes them one by one, and another as one queued batch
    let one_by_one = ports();
    for body in &bodies {
        send(&one_by_one, body.clone()).await;
    }
    let batched = ports();
    let reply = send_queued(&batched, &bodies).await;

    // THEN the batch fails nothing and leaves the same contacts and aliases, with fewer
    // reads
    assert_eq!(reply, json!({"batchItemFailures": []}));
    assert_eq!(book(&batched), book(&one_by_one));
    assert_eq!(batched.contacts.count(), 3, "{:?}", book(&batched));
    assert!(
        batched.contacts.key_reads() < one_by_one.contacts.key_reads(),
        "{} batch reads against {}",
        batched.contacts.key_reads(),
        one_by_one.contacts.key_reads()
    );
}

#[tokio::test]
async fn a_batch_reads_its_people_at_once_and_writes_their_changes_together() {
    // GIVEN five people in the book
    let ports = ports();
    let people: Vec<String> = (0..5).map(|i| format!("44740012345{i}")).collect();
    for (i, wa_id) in people.iter().enumerate() {
        send(
            &ports,
            message(&format!("wamid.{i}"), Some(wa_id), None, "Someone"),
        )
        .await;
    }
    let first = whatsapp(&ports, &format!("+{}", people[0])).expect("seeded");
    let (reads, batches, writes) = (
        ports.contacts.key_reads(),
        ports.contacts.batches(),
        ports.contacts.writes(),
    );

    // WHEN a batch brings a failure for each (undeliverable), and a later read status
    // for the first
    let mut bodies: Vec<Value> = people
        .iter()
        .map(|p| status("wamid.f", "failed", Some(131_026), Some(p), None))
        .collect();
    bodies.push(at(
        status("wamid.r", "read", None, Some(&people[0]), None),
        "statuses",
        1_764_324_200,
    ));
    let reply = send_queued(&ports, &bodies).await;

    // THEN the five were read in one request and written in one, each once
    assert_eq!(reply, json!({"batchItemFailures": []}));
    assert_eq!(ports.contacts.key_reads() - reads, 1);
    assert_eq!(ports.contacts.batches() - batches, 1);
    assert_eq!(ports.contacts.writes() - writes, 5);
    let after = whatsapp(&ports, &format!("+{}", people[0])).expect("kept");
    assert_eq!(after.version, first.version + 1);
    assert_eq!(after.whatsapp_reachable, Some(true), "the later read wins");
    for p in &people[1..] {
        let contact = whatsapp(&ports, &format!("+{p}")).expect("kept");
        assert_eq!(contact.whatsapp_reachable, Some(false));
    }
}

#[tokio::test]
async fn a_batch_write_someone_else_made_first_is_applied_again_from_fresh_reads() {
    // GIVEN Eva in the book, and a batch with a first message from Bo and an
    // undeliverable status for Eva, whose writes another writer beats: Bo's first
    // message through another delivery, and Eva's stop
    let ports = ports();
    send(&ports, message("wamid.1", Some(WA_ID), None, "Eva")).await;
    let bo = "447400123456";
    let bodies = [
        message("wamid.b1", Some(bo), None, "Bo"),
        status("wamid.s1", "failed", Some(131_026), Some(WA_ID), None),
    ];
    let stall = ports.contacts.stall_batch(1);

    // WHEN the batch's writes go out after the other writer's
    let batch = send_queued(&ports, &bodies);
    let other = async {
        stall.reached.notified().await;
        send(&ports, message("wamid.b0", Some(bo), None, "Bo")).await;
        send(
            &ports,
            at(preference("stop", 0), "user_preferences", 1_764_324_200),
        )
        .await;
        stall.release.notify_one();
    };
    let (reply, ()) = tokio::join!(batch, other);

    // THEN nothing fails and nothing is lost: Bo once, Eva unreachable and stopped,
    // and every message's answer recorded (none left pending)
    assert_eq!(reply, json!({"batchItemFailures": []}));
    assert_eq!(ports.contacts.count(), 2);
    assert!(whatsapp(&ports, &format!("+{bo}")).is_some());
    let eva = whatsapp(&ports, PHONE).expect("eva");
    assert_eq!(eva.whatsapp_reachable, Some(false));
    assert_eq!(eva.consent[&Category::Marketing].state, State::OptedOut);
    let answers = ports.ledger.answers();
    assert_eq!(answers.len(), 3, "{answers:?}");
    assert!(answers.iter().all(|a| a != "pending"), "{answers:?}");
}
