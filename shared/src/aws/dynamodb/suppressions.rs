//! [`Suppressions`]: erasure tombstones `SUPPRESS#{account}#{channel}#{digest}` /
//! `SUPPRESS`. An erasure deletes the contact and its BSUID aliases and puts its
//! tombstone in one transaction, so there is never a moment with both or neither;
//! imports look tombstones up 100 at a time with `BatchGetItem`.

use std::collections::HashSet;

use aws_sdk_dynamodb::types::{Put, TransactWriteItem};

use super::item::{build_error, key, s};
use super::DynamoTable;
use crate::aws::service;
use crate::domain::channel::Channel;
use crate::domain::contact::Contact;
use crate::domain::keys::{suppress_pk, SUPPRESS_SK};
use crate::ports::{Alias, IdentityWrite, StoreError, Suppressions};

impl Suppressions for DynamoTable {
    async fn erase_contact(
        &self,
        contact: &Contact,
        aliases: &[Alias],
        digests: &[String],
    ) -> Result<bool, StoreError> {
        let (account_id, channel) = (contact.account_id.as_str(), contact.channel);
        // The contact while still at its version; each alias while it names this contact.
        let mut items = vec![self.identity_item(&IdentityWrite::RemoveContact(contact.clone()))?];
        for alias in aliases {
            let naming_this = Alias {
                contact_key: contact.phone.clone(),
                ..alias.clone()
            };
            items.push(self.identity_item(&IdentityWrite::RemoveAlias(naming_this))?);
        }
        let erased_at = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        for digest in digests {
            let mut tombstone = key(suppress_pk(account_id, channel, digest), SUPPRESS_SK);
            tombstone.insert("account_id".into(), s(account_id));
            tombstone.insert("channel".into(), s(channel.as_str()));
            tombstone.insert("erased_at".into(), s(&erased_at));
            let put = Put::builder()
                .table_name(&self.table)
                .set_item(Some(tombstone))
                .build()
                .map_err(build_error)?;
            items.push(TransactWriteItem::builder().put(put).build());
        }
        self.transact_conditionally(items, "DynamoDB TransactWriteItems (erase)")
            .await
    }

    async fn suppressed(
        &self,
        account_id: &str,
        channel: Channel,
        digests: &[String],
    ) -> Result<Vec<bool>, StoreError> {
        let pks: Vec<String> = digests
            .iter()
            .map(|d| suppress_pk(account_id, channel, d))
            .collect();
        let keys = pks.iter().map(|pk| key(pk.clone(), SUPPRESS_SK)).collect();
        let found: HashSet<String> = self
            .batch_get(keys, Some("pk"), "DynamoDB BatchGetItem (suppressions)")
            .await?
            .iter()
            .filter_map(|item| item.get("pk").and_then(|v| v.as_s().ok()).cloned())
            .collect();
        Ok(pks.iter().map(|pk| found.contains(pk)).collect())
    }

    async fn lift_suppression(
        &self,
        account_id: &str,
        channel: Channel,
        digest: &str,
    ) -> Result<(), StoreError> {
        self.client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(key(
                suppress_pk(account_id, channel, digest),
                SUPPRESS_SK,
            )))
            .send()
            .await
            .map_err(|e| service("DynamoDB DeleteItem (suppression)")(e.into_service_error()))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use aws_sdk_dynamodb::operation::batch_get_item::{BatchGetItemInput, BatchGetItemOutput};
    use aws_sdk_dynamodb::operation::transact_write_items::{
        TransactWriteItemsInput, TransactWriteItemsOutput,
    };
    use aws_sdk_dynamodb::types::error::TransactionCanceledException;
    use aws_sdk_dynamodb::types::CancellationReason;
    use aws_sdk_dynamodb::Client;
    use aws_smithy_mocks::{mock, mock_client};

    use super::*;
    use crate::aws::dynamodb::item::{n, Item};
    use crate::aws::dynamodb::testing::{Requests, TABLE};
    use crate::domain::contact::{ContactDraft, Source, WriteStamp};
    use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;

    const BSUID: &str = "GB.13491208655302741918";

    fn eva(channel: Channel) -> Contact {
        let draft = ContactDraft {
            phone: "+447911123456".into(),
            ..Default::default()
        };
        let stamp = WriteStamp {
            now: "2026-11-29T10:00:00Z".into(),
            source: Source::Inbound,
            import_id: None,
            campaign_id: None,
        };
        let mut contact = Contact::create("acme", channel, &draft, &stamp);
        contact.version = 3;
        contact
    }

    #[tokio::test]
    async fn an_erasure_deletes_the_contact_and_puts_a_tombstone_without_the_number() {
        // GIVEN a table that accepts the transaction
        let requests = Requests::<TransactWriteItemsInput>::new();
        let rule = mock!(Client::transact_write_items)
            .match_requests(requests.recorder())
            .then_output(|| TransactWriteItemsOutput::builder().build());
        let table = DynamoTable::new(mock_client!(aws_sdk_dynamodb, [&rule]), TABLE);

        // WHEN Eva is erased
        let erased = table
            .erase_contact(&eva(Channel::Whatsapp), &[], &["d1g35t".to_string()])
            .await;

        // THEN one transaction deletes her contact (only as it was read) and puts the
        // tombstone, whose attributes hold no digit of her number
        assert!(erased.expect("answered"));
        let sent = requests.only();
        let [delete, put] = sent.transact_items() else {
            panic!("two writes: {sent:?}")
        };
        let delete = delete.delete().expect("a delete");
        assert_eq!(
            delete.key().get("pk"),
            Some(&s("CONTACT#acme#whatsapp#+447911123456"))
        );
        assert_eq!(
            delete.condition_expression(),
            Some("attribute_exists(pk) AND #version = :expected")
        );
        assert_eq!(
            delete
                .expression_attribute_values()
                .and_then(|v| v.get(":expected")),
            Some(&n(3))
        );
        let tombstone = put.put().expect("a put").item();
        assert_eq!(
            tombstone.get("pk"),
            Some(&s("SUPPRESS#acme#whatsapp#d1g35t"))
        );
        assert_eq!(tombstone.get("sk"), Some(&s("SUPPRESS")));
        assert!(!format!("{tombstone:?}").contains("7911123456"));
    }

    #[tokio::test]
    async fn an_erasure_deletes_the_alias_only_while_it_names_the_contact() {
        // GIVEN a table that accepts the transaction, and Eva's alias
        let requests = Requests::<TransactWriteItemsInput>::new();
        let rule = mock!(Client::transact_write_items)
            .match_requests(requests.recorder())
            .then_output(|| TransactWriteItemsOutput::builder().build());
        let table = DynamoTable::new(mock_client!(aws_sdk_dynamodb, [&rule]), TABLE);
        let alias = Alias {
            account_id: "acme".into(),
            user_id: BSUID.into(),
            contact_key: "+447911123456".into(),
            phone_number_id: "106540352242922".into(),
        };

        // WHEN Eva is erased with it
        let erased = table
            .erase_contact(&eva(Channel::Whatsapp), &[alias], &["d1g35t".to_string()])
            .await;

        // THEN the same transaction deletes the alias, conditioned on naming her contact
        assert!(erased.expect("answered"));
        let sent = requests.only();
        let [_, alias, put] = sent.transact_items() else {
            panic!("three writes: {sent:?}")
        };
        let alias = alias.delete().expect("a delete");
        assert_eq!(
            alias.key().get("pk"),
            Some(&s(format!("ALIAS#acme#whatsapp#{BSUID}")))
        );
        assert_eq!(alias.key().get("sk"), Some(&s("CONTACT")));
        assert_eq!(alias.condition_expression(), Some("contact_pk = :expected"));
        assert_eq!(
            alias
                .expression_attribute_values()
                .and_then(|v| v.get(":expected")),
            Some(&s("CONTACT#acme#whatsapp#+447911123456"))
        );
        assert!(put.put().is_some(), "the tombstone last");
    }

    #[tokio::test]
    async fn an_erasure_whose_condition_fails_writes_nothing() {
        let rule = mock!(Client::transact_write_items).then_error(|| {
            TransactWriteItemsError::TransactionCanceledException(
                TransactionCanceledException::builder()
                    .cancellation_reasons(
                        CancellationReason::builder()
                            .code("ConditionalCheckFailed")
                            .build(),
                    )
                    .cancellation_reasons(CancellationReason::builder().code("None").build())
                    .build(),
            )
        });
        let table = DynamoTable::new(mock_client!(aws_sdk_dynamodb, [&rule]), TABLE);
        let erased = table
            .erase_contact(&eva(Channel::Sms), &[], &["d1g35t".to_string()])
            .await;
        assert!(!erased.expect("answered"));
    }

    #[tokio::test]
    async fn tombstones_are_looked_up_in_one_batch_and_answered_in_order() {
        // GIVEN a table holding the tombstone of digest b only
        let requests = Requests::<BatchGetItemInput>::new();
        let rule = mock!(Client::batch_get_item)
            .match_requests(requests.recorder())
            .then_output(|| {
                BatchGetItemOutput::builder()
                    .responses(
                        TABLE,
                        vec![Item::from([("pk".to_string(), s("SUPPRESS#acme#sms#b"))])],
                    )
                    .build()
            });
        let table = DynamoTable::new(mock_client!(aws_sdk_dynamodb, [&rule]), TABLE);

        // WHEN three digests are checked (one twice)
        let digests = ["a", "b", "c", "b"].map(String::from);
        let found = table.suppressed("acme", Channel::Sms, &digests).await;

        // THEN one request, each key once, and the answer follows the order asked
        assert_eq!(found.expect("answered"), [false, true, false, true]);
        let sent = requests.only();
        let keys = sent
            .request_items()
            .and_then(|r| r.get(TABLE))
            .expect("keys");
        assert_eq!(keys.keys().len(), 3);
    }
}
