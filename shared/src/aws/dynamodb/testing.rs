//! Shared by the adapter tests: a contact and its item written out by hand (so a change
//! of the item format fails a test), and a recorder of the requests a client mocked
//! with `aws-smithy-mocks` receives.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};

use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::types::error::ConditionalCheckFailedException;
use aws_sdk_dynamodb::types::AttributeValue;

use super::item::{n, s, Item};
use crate::domain::channel::Channel;
use crate::domain::contact::{Contact, Source, Status};
use crate::ports::StoreError;

/// The table the adapters under test are given.
pub(super) const TABLE: &str = "contacts";
/// Eva's contact key.
pub(super) const EVA_PK: &str = "CONTACT#acme#whatsapp#+447911123456";

/// Eva, a contact from an import, with a list and a custom attribute.
pub(super) fn eva() -> Contact {
    Contact {
        account_id: "acme".into(),
        channel: Channel::Whatsapp,
        phone: "+447911123456".into(),
        text: BTreeMap::from([("name".into(), "Eva".into())]),
        whatsapp_opted: Some(true),
        lists: BTreeSet::from(["VIP".into()]),
        tags: BTreeSet::new(),
        attrs: BTreeMap::from([("Plan".into(), "Gold".into())]),
        status: Status::Active,
        anonymous: false,
        source: Source::Import,
        created_at: "2026-11-21T10:00:00Z".into(),
        updated_at: "2026-11-21T10:00:00Z".into(),
        last_import_id: Some("imp_1".into()),
        last_campaign_id: None,
        last_inbound_at: None,
        wa_id: None,
        whatsapp_reachable: None,
        whatsapp_reachable_at: None,
        user_ids: Default::default(),
        consent: Default::default(),
        version: 1,
    }
}

/// Eva's item as DESIGN section 9 has it: no `tags` (an empty set is left out).
pub(super) fn eva_item() -> Item {
    let attributes = [
        ("pk", s(EVA_PK)),
        ("sk", s("PROFILE")),
        // FNV-1a of "+447911123456" is 7 mod 16.
        ("gsi1pk", s("acme#07")),
        ("gsi1sk", s("whatsapp#+447911123456")),
        ("account_id", s("acme")),
        ("channel", s("whatsapp")),
        ("phone", s("+447911123456")),
        ("name", s("Eva")),
        ("whatsapp_opted", AttributeValue::Bool(true)),
        ("lists", AttributeValue::Ss(vec!["VIP".into()])),
        (
            "attrs",
            AttributeValue::M(HashMap::from([("Plan".into(), s("Gold"))])),
        ),
        ("status", s("active")),
        ("anonymous", AttributeValue::Bool(false)),
        ("source", s("import")),
        ("created_at", s("2026-11-21T10:00:00Z")),
        ("updated_at", s("2026-11-21T10:00:00Z")),
        ("last_import_id", s("imp_1")),
        ("version", n(1)),
    ];
    attributes
        .into_iter()
        .map(|(name, value)| (name.to_string(), value))
        .collect()
}

/// A put refused by its condition, answering `item` as stored (`ALL_OLD`).
pub(super) fn refused(item: Option<Item>) -> PutItemError {
    PutItemError::ConditionalCheckFailedException(
        ConditionalCheckFailedException::builder()
            .message("The conditional request failed")
            .set_item(item)
            .build(),
    )
}

/// The item key and problem of a [`StoreError::Malformed`]; panics on anything else.
pub(super) fn malformed<T: std::fmt::Debug>(result: Result<T, StoreError>) -> (String, String) {
    match result {
        Err(StoreError::Malformed { pk, problem }) => (pk, problem),
        other => panic!("expected a malformed item, got {other:?}"),
    }
}

/// Every request of one operation a mocked client received.
pub(super) struct Requests<T>(Arc<Mutex<Vec<T>>>);

impl<T: Clone + Send + 'static> Requests<T> {
    pub(super) fn new() -> Requests<T> {
        Requests(Arc::default())
    }

    /// A `match_requests` matcher that records each request and matches it.
    pub(super) fn recorder(&self) -> impl Fn(&T) -> bool + Send + Sync + 'static {
        let seen = Arc::clone(&self.0);
        move |request| {
            seen.lock().expect("recorder lock").push(request.clone());
            true
        }
    }

    /// Every request sent, in order.
    pub(super) fn all(&self) -> Vec<T> {
        self.0.lock().expect("recorder lock").clone()
    }

    /// The one request sent.
    pub(super) fn only(&self) -> T {
        let seen = self.0.lock().expect("recorder lock");
        assert_eq!(seen.len(), 1, "exactly one request");
        seen[0].clone()
    }
}
