//! End to end: WhatsApp contacts known only by their business-scoped user id (BSUID,
//! DESIGN sections 13 and 14): made by Meta's webhooks and by an import, exported with
//! an empty phone and their BSUID under `WhatsApp User ID`, imported back unchanged, and
//! erased with their aliases (one per business portfolio).

use integration_tests::whatsapp::{another_business_number, business_number, message};
use integration_tests::{invoke, s, ss, Stack};
use serde_json::{json, Value};

/// Eva writes without sharing her number.
const EVA: &str = "US.20931208655302741234";
/// Bo writes with his number and his BSUID.
const BO: &str = "GB.13491208655302741918";
const BO_WA_ID: &str = "447911123456";
const BO_PHONE: &str = "+447911123456";
/// Bo's BSUID in the account's other business portfolio.
const BO_B: &str = "US.13491208655302749999";
/// Ida is imported by her BSUID alone.
const IDA: &str = "GB.555";

fn records(text: &str) -> Vec<Vec<String>> {
    csv::ReaderBuilder::new()
        .has_headers(false)
        .from_reader(text.as_bytes())
        .records()
        .map(|r| r.expect("valid csv").iter().map(str::to_string).collect())
        .collect()
}

fn invoked(event: &Value) -> Value {
    invoke("contact-events", event).unwrap_or_else(|e| panic!("refused: {e}"))
}

#[tokio::test]
#[ignore = "end to end: needs the local stack (make up), then cargo test -p integration-tests -- --ignored"]
async fn bsuid_only_contacts_export_re_import_unchanged_and_erasure_takes_the_alias() {
    // GIVEN an account whose business number received a message from Eva (BSUID only)
    // and one from Bo (number and BSUID), and an import of Ida (BSUID only) and Jo
    let stack = Stack::connect().await;
    let (account, pnid) = business_number(&stack, "bsuid").await;
    let eva = invoked(&message(&pnid, "wamid.bsuid-1", None, Some(EVA)));
    assert_eq!(eva["contacts_created"], 1, "{eva}");
    let bo = invoked(&message(&pnid, "wamid.bsuid-2", Some(BO_WA_ID), Some(BO)));
    assert_eq!(bo["contacts_created"], 1, "{bo}");
    let file = format!("Phone,Name,WhatsApp User ID\n,Ida,{IDA}\n+447911123457,Jo,\n");
    let imported = stack
        .import(&account, "whatsapp", "people.csv", file.as_bytes(), &[])
        .await;
    assert_eq!(imported["rows"]["created"], 2, "{imported}");
    assert_eq!(
        imported["column_mapping"]["WhatsApp User ID"], "whatsapp_user_id",
        "{imported}"
    );
    let ida = stack
        .item(
            &format!("CONTACT#{account}#whatsapp#bsuid:{IDA}"),
            "PROFILE",
        )
        .await
        .expect("Ida under her BSUID's key");
    assert_eq!(s(&ida, "phone"), None, "a BSUID is never a number");
    assert_eq!(s(&ida, "user_id").as_deref(), Some(IDA));

    // WHEN the account's WhatsApp contacts are exported
    let event = json!({"type": "contacts.export", "account_id": account, "channel": "whatsapp"});
    let answer = stack
        .invoke_while_moving("contact-events", &event)
        .await
        .unwrap_or_else(|e| panic!("export refused: {e}"));
    assert_eq!(answer["status"], "exported", "{answer}");
    assert_eq!(answer["contacts"], 4, "{answer}");
    let text = stack
        .text(answer["key"].as_str().expect("the export's key"))
        .await;

    // THEN the BSUID-only contacts have an empty phone and their BSUID under
    // `WhatsApp User ID`, Bo's BSUID is beside his number, and no key leaks
    let rows = records(&text);
    let column = |title: &str| {
        rows[0]
            .iter()
            .position(|h| h == title)
            .unwrap_or_else(|| panic!("no {title} column: {:?}", rows[0]))
    };
    let (phone, user_id, name) = (column("Phone"), column("WhatsApp User ID"), column("Name"));
    let ids = |who: &dyn Fn(&Vec<String>) -> bool| {
        let row = rows[1..]
            .iter()
            .find(|r| who(r))
            .unwrap_or_else(|| panic!("no such row in {text}"));
        (row[phone].clone(), row[user_id].clone(), row[name].clone())
    };
    assert_eq!(
        ids(&|r| r[user_id] == EVA),
        (String::new(), EVA.to_string(), "Eva Green".to_string())
    );
    assert_eq!(
        ids(&|r| r[name] == "Ida"),
        (String::new(), IDA.to_string(), "Ida".to_string())
    );
    assert_eq!(
        ids(&|r| r[phone] == BO_PHONE),
        (
            BO_PHONE.to_string(),
            BO.to_string(),
            "Eva Green".to_string()
        )
    );
    assert_eq!(
        ids(&|r| r[name] == "Jo"),
        ("+447911123457".to_string(), String::new(), "Jo".to_string())
    );
    assert!(!text.contains("bsuid:"), "{text}");

    // AND the export imported again on whatsapp with on-existing=update changes nothing
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
    assert_eq!(stack.contacts_of(&account).await.len(), 4);

    // AND Ida's first message finds her imported contact (no alias yet) and gives it one
    let ida_writes = invoked(&message(&pnid, "wamid.bsuid-3", None, Some(IDA)));
    assert_eq!(ida_writes["contacts_created"], 0, "{ida_writes}");
    assert_eq!(stack.contacts_of(&account).await.len(), 4);
    let alias = stack
        .item(&format!("ALIAS#{account}#whatsapp#{IDA}"), "CONTACT")
        .await
        .expect("Ida's alias");
    assert_eq!(
        s(&alias, "contact_pk"),
        Some(format!("CONTACT#{account}#whatsapp#bsuid:{IDA}"))
    );

    // AND Bo, writing to the account's number of another business portfolio, gets that
    // portfolio's BSUID as a second alias of his one contact
    let other_pnid = another_business_number(&stack, &account).await;
    let bo_b = invoked(&message(
        &other_pnid,
        "wamid.bsuid-4",
        Some(BO_WA_ID),
        Some(BO_B),
    ));
    assert_eq!(bo_b["contacts_created"], 0, "{bo_b}");
    let bo_item = stack
        .contact(&account, "whatsapp", BO_PHONE)
        .await
        .expect("Bo");
    assert_eq!(
        s(&bo_item, "user_id").as_deref(),
        Some(BO),
        "the first stays"
    );
    assert_eq!(
        ss(&bo_item, "user_ids"),
        vec![BO.to_string(), BO_B.to_string()]
    );
    let alias_b = stack
        .item(&format!("ALIAS#{account}#whatsapp#{BO_B}"), "CONTACT")
        .await
        .expect("Bo's second alias");
    assert_eq!(s(&alias_b, "phone_number_id"), Some(other_pnid));

    // WHEN Bo is erased
    let erase = json!({"type": "contact.erase", "account_id": account, "channel": "whatsapp", "phone": BO_PHONE});
    let erased = invoked(&erase);

    // THEN his contact and both his aliases are gone, in one answer of three items
    assert_eq!(erased, json!({"status": "erased", "items": 3}));
    assert!(stack
        .item(&format!("ALIAS#{account}#whatsapp#{BO_B}"), "CONTACT")
        .await
        .is_none());
    assert!(stack
        .contact(&account, "whatsapp", BO_PHONE)
        .await
        .is_none());
    assert!(stack
        .item(&format!("ALIAS#{account}#whatsapp#{BO}"), "CONTACT")
        .await
        .is_none());
    assert!(stack
        .item(&format!("ALIAS#{account}#whatsapp#{EVA}"), "CONTACT")
        .await
        .is_some());
    assert_eq!(stack.contacts_of(&account).await.len(), 3);
}
