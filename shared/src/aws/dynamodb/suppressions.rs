//! [`Suppressions`]: erasure tombstones `SUPPRESS#{account}#{channel}#{digest}` /
//! `SUPPRESS`. An erasure deletes the contact and its BSUID aliases and puts its
//! tombstone in one transaction, so there is never a moment with both or neither.
//!
//! The same transaction adds the first [`PREFIX_CHARS`] characters of each digest to
//! the account's tombstone index, `SUPPRESS#{account}#{channel}` / `INDEX`. A lookup
//! reads the index (one strongly consistent read) and looks up only the digests whose
//! prefix is in it: an import of an account nobody was erased from pays a read per
//! batch, not half a read unit per row, and with a thousand erasures about one row in
//! sixteen thousand is looked up for nothing. A prefix is never removed (another
//! tombstone may share it); a lifted tombstone only costs that lookup.

use std::collections::HashSet;

use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem, Update};

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
        let prefixes: HashSet<String> = digests.iter().map(|d| prefix(d).to_string()).collect();
        if !prefixes.is_empty() {
            let index = Update::builder()
                .table_name(&self.table)
                .set_key(Some(key(index_pk(account_id, channel), INDEX_SK)))
                .update_expression("ADD prefixes :prefixes")
                .expression_attribute_values(
                    ":prefixes",
                    AttributeValue::Ss(prefixes.into_iter().collect()),
                )
                .build()
                .map_err(build_error)?;
            items.push(TransactWriteItem::builder().update(index).build());
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
        let indexed = self.indexed_prefixes(account_id, channel).await?;
        let pks: Vec<Option<String>> = digests
            .iter()
            .map(|d| {
                indexed
                    .contains(prefix(d))
                    .then(|| suppress_pk(account_id, channel, d))
            })
            .collect();
        let keys: Vec<_> = pks
            .iter()
            .flatten()
            .map(|pk| key(pk.clone(), SUPPRESS_SK))
            .collect();
        if keys.is_empty() {
            return Ok(vec![false; digests.len()]);
        }
        let found: HashSet<String> = self
            .batch_get(keys, Some("pk"), "DynamoDB BatchGetItem (suppressions)")
            .await?
            .iter()
            .filter_map(|item| item.get("pk").and_then(|v| v.as_s().ok()).cloned())
            .collect();
        Ok(pks
            .iter()
            .map(|pk| pk.as_ref().is_some_and(|pk| found.contains(pk)))
            .collect())
    }

    async fn lift_suppressions(
        &self,
        account_id: &str,
        channel: Channel,
        digests: &[String],
    ) -> Result<(), StoreError> {
        let found = self.suppressed(account_id, channel, digests).await?;
        for (digest, _) in digests.iter().zip(found).filter(|(_, found)| *found) {
            self.client
                .delete_item()
                .table_name(&self.table)
                .set_key(Some(key(
                    suppress_pk(account_id, channel, digest),
                    SUPPRESS_SK,
                )))
                .send()
                .await
                .map_err(|e| {
                    service("DynamoDB DeleteItem (suppression)")(e.into_service_error())
                })?;
        }
        Ok(())
    }
}

/// Characters of a digest (hex) the index keeps: 24 bits, so an account with `n`
/// tombstones looks up one row in 16.7 million / `n` for nothing, and the index holds
/// about 50,000 prefixes before it reaches DynamoDB's 400 KB item limit.
const PREFIX_CHARS: usize = 6;
/// The index item's sort key.
const INDEX_SK: &str = "INDEX";

fn prefix(digest: &str) -> &str {
    digest.get(..PREFIX_CHARS).unwrap_or(digest)
}

/// The key of an account's tombstone index: the tombstones' own key without a digest.
fn index_pk(account_id: &str, channel: Channel) -> String {
    format!("SUPPRESS#{account_id}#{}", channel.as_str())
}

impl DynamoTable {
    /// The digest prefixes of the account's tombstones (empty when nobody was erased).
    async fn indexed_prefixes(
        &self,
        account_id: &str,
        channel: Channel,
    ) -> Result<HashSet<String>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key(index_pk(account_id, channel), INDEX_SK)))
            .projection_expression("prefixes")
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| service("DynamoDB GetItem (tombstone index)")(e.into_service_error()))?;
        Ok(out
            .item()
            .and_then(|item| item.get("prefixes"))
            .and_then(|v| v.as_ss().ok())
            .map(|set| set.iter().cloned().collect())
            .unwrap_or_default())
    }
}

#[cfg(test)]
mod tests {
    use aws_sdk_dynamodb::operation::batch_get_item::{BatchGetItemInput, BatchGetItemOutput};
    use aws_sdk_dynamodb::operation::get_item::GetItemOutput;
    use aws_sdk_dynamodb::operation::transact_write_items::{
        TransactWriteItemsInput, TransactWriteItemsOutput,
    };
    use aws_sdk_dynamodb::types::error::TransactionCanceledException;
    use aws_sdk_dynamodb::types::CancellationReason;
    use aws_sdk_dynamodb::Client;
    use aws_smithy_mocks::{mock, mock_client, RuleMode};

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
        let [delete, put, index] = sent.transact_items() else {
            panic!("three writes: {sent:?}")
        };
        let index = index.update().expect("the index's update");
        assert_eq!(index.key().get("pk"), Some(&s("SUPPRESS#acme#whatsapp")));
        assert_eq!(index.key().get("sk"), Some(&s("INDEX")));
        assert_eq!(index.update_expression(), "ADD prefixes :prefixes");
        assert_eq!(
            index
                .expression_attribute_values()
                .and_then(|v| v.get(":prefixes")),
            Some(&AttributeValue::Ss(vec!["d1g35t".into()]))
        );
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
        let [_, alias, put, _index] = sent.transact_items() else {
            panic!("four writes: {sent:?}")
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
    async fn an_account_nobody_was_erased_from_costs_one_read_per_lookup() {
        // GIVEN an account without a tombstone index
        let rule = mock!(Client::get_item).then_output(|| GetItemOutput::builder().build());
        let table = DynamoTable::new(mock_client!(aws_sdk_dynamodb, [&rule]), TABLE);

        // WHEN three digests are checked THEN none is erased, with one read
        let digests = ["aaaaaa01", "bbbbbb02", "cccccc03"].map(String::from);
        let found = table.suppressed("acme", Channel::Sms, &digests).await;
        assert_eq!(found.expect("answered"), [false; 3]);
        assert_eq!(rule.num_calls(), 1);
    }

    #[tokio::test]
    async fn tombstones_are_looked_up_in_one_batch_and_answered_in_order() {
        // GIVEN a table holding the tombstone of digest b only, indexed with a
        // prefix c shares
        let index = mock!(Client::get_item).then_output(|| {
            let prefixes = AttributeValue::Ss(vec!["bbbbbb".into(), "cccccc".into()]);
            GetItemOutput::builder().item("prefixes", prefixes).build()
        });
        let requests = Requests::<BatchGetItemInput>::new();
        let rule = mock!(Client::batch_get_item)
            .match_requests(requests.recorder())
            .then_output(|| {
                BatchGetItemOutput::builder()
                    .responses(
                        TABLE,
                        vec![Item::from([(
                            "pk".to_string(),
                            s("SUPPRESS#acme#sms#bbbbbb02"),
                        )])],
                    )
                    .build()
            });
        let table = DynamoTable::new(
            mock_client!(aws_sdk_dynamodb, RuleMode::MatchAny, [&index, &rule]),
            TABLE,
        );

        // WHEN four digests are checked (one twice)
        let digests = ["aaaaaa01", "bbbbbb02", "cccccc03", "bbbbbb02"].map(String::from);
        let found = table.suppressed("acme", Channel::Sms, &digests).await;

        // THEN only the indexed ones are looked up, each key once, in one request, and
        // the answer follows the order asked
        assert_eq!(found.expect("answered"), [false, true, false, true]);
        let sent = requests.only();
        let keys = sent
            .request_items()
            .and_then(|r| r.get(TABLE))
            .expect("keys");
        assert_eq!(keys.keys().len(), 2);
    }
}
