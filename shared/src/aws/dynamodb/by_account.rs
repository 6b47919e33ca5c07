//! GSI `by_account` (DESIGN sections 9 and 14) on the table.
//!
//! [`AccountContacts`]: an account's contacts, one page of one `by_account` partition per
//! Query (DESIGN section 9). Never a Scan: the GSI partitions `{account_id}#{shard}` hold
//! exactly the account's contacts, and the sort key prefix `{channel}#` narrows them to
//! a channel.
//!
//! The index projects keys only (README, "Capacity"): an update of a contact then
//! writes the table alone, where a projection of every attribute would write the
//! index's copy too, at the price of a listing reading each page's contacts from the
//! table (`BatchGetItem`, eventually consistent). Items the index does carry whole (an
//! index projecting `ALL`, as tables made before this choice have) are used as they are.
//!
//! [`ContactRemoval`]: one DeleteItem per contact, conditioned on the contact still
//! being as its import created it.

use aws_sdk_dynamodb::operation::delete_item::DeleteItemError;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValuesOnConditionCheckFailure};

use super::item::{n, s, Item};
use super::DynamoTable;
use crate::aws::service;
use crate::domain::channel::Channel;
use crate::domain::contact::Contact;
use crate::domain::keys::{
    contact_pk, gsi1pk_of_shard, gsi1sk_prefix, BY_ACCOUNT_INDEX, CONTACT_SK,
};
use crate::ports::{
    AccountContacts, ContactPage, ContactRemoval, DeleteOutcome, PageToken, StoreError,
};

/// Condition of an undo's delete: nobody wrote the contact since its import created it.
const UNTOUCHED: &str = "#version = :first AND last_import_id = :import";

impl AccountContacts for DynamoTable {
    async fn contacts_page(
        &self,
        account_id: &str,
        channel: Option<Channel>,
        shard: u8,
        after: Option<PageToken>,
    ) -> Result<ContactPage, StoreError> {
        let partition = gsi1pk_of_shard(account_id, shard);
        let mut query = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(BY_ACCOUNT_INDEX)
            .expression_attribute_values(":partition", s(&partition));
        query = match channel {
            Some(channel) => query
                .key_condition_expression("gsi1pk = :partition AND begins_with(gsi1sk, :channel)")
                .expression_attribute_values(":channel", s(gsi1sk_prefix(channel))),
            None => query.key_condition_expression("gsi1pk = :partition"),
        };
        let start = after.map(|token| token.0.into_iter().map(|(k, v)| (k, s(v))).collect());
        let out = query
            .set_exclusive_start_key(start)
            .limit(PAGE_CONTACTS)
            .send()
            .await
            .map_err(|e| service("DynamoDB Query by_account")(e.into_service_error()))?;
        let contacts = self.whole(out.items()).await?;
        let next = out
            .last_evaluated_key()
            .map(|key| page_token(key, &partition))
            .transpose()?;
        Ok(ContactPage { contacts, next })
    }
}

impl ContactRemoval for DynamoTable {
    async fn delete_if_untouched(
        &self,
        contact: &Contact,
        import_id: &str,
    ) -> Result<DeleteOutcome, StoreError> {
        let pk = contact_pk(&contact.account_id, contact.channel, &contact.phone);
        let result = self
            .client
            .delete_item()
            .table_name(&self.table)
            .key("pk", s(&pk))
            .key("sk", s(CONTACT_SK))
            .condition_expression(UNTOUCHED)
            .expression_attribute_names("#version", "version")
            .expression_attribute_values(":first", n(1))
            .expression_attribute_values(":import", s(import_id))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        match result.map_err(|e| e.into_service_error()) {
            Ok(_) => Ok(DeleteOutcome::Deleted),
            Err(DeleteItemError::ConditionalCheckFailedException(refused)) => {
                match refused.item() {
                    Some(item) => Ok(DeleteOutcome::Kept(Box::new(Contact::try_from(item)?))),
                    None => Ok(DeleteOutcome::Absent),
                }
            }
            Err(other) => Err(service("DynamoDB DeleteItem")(other)),
        }
    }
}

/// Contacts per page: one `BatchGetItem` of their items.
const PAGE_CONTACTS: i32 = 100;

impl DynamoTable {
    /// The contacts of a page of index items, in the page's order: read from the table
    /// when the index holds only their keys.
    async fn whole(&self, items: &[Item]) -> Result<Vec<Contact>, StoreError> {
        let keys_only: Vec<Item> = items
            .iter()
            .filter(|item| !item.contains_key("version"))
            .map(|item| {
                ["pk", "sk"]
                    .into_iter()
                    .filter_map(|name| Some((name.to_string(), item.get(name)?.clone())))
                    .collect()
            })
            .collect();
        let mut read: std::collections::HashMap<String, Item> = match keys_only.is_empty() {
            true => Default::default(),
            false => self
                .batch_get_as(
                    keys_only,
                    None,
                    false,
                    "DynamoDB BatchGetItem (by_account page)",
                )
                .await?
                .into_iter()
                .filter_map(|item| Some((item.get("pk")?.as_s().ok()?.clone(), item)))
                .collect(),
        };
        let mut contacts = Vec::with_capacity(items.len());
        for item in items {
            if item.contains_key("version") {
                contacts.push(Contact::try_from(item)?);
                continue;
            }
            // Deleted between the Query and the read: no longer the account's.
            let pk = item.get("pk").and_then(|v| v.as_s().ok());
            if let Some(whole) = pk.and_then(|pk| read.remove(pk)) {
                contacts.push(Contact::try_from(&whole)?);
            }
        }
        Ok(contacts)
    }
}

/// The last key a Query read, as a token: the table's and the index's keys, all strings.
fn page_token(key: &Item, partition: &str) -> Result<PageToken, StoreError> {
    key.iter()
        .map(|(name, value)| match value {
            AttributeValue::S(text) => Ok((name.clone(), text.clone())),
            other => Err(StoreError::Malformed {
                pk: partition.to_string(),
                problem: format!("LastEvaluatedKey attribute {name} is not a string: {other:?}"),
            }),
        })
        .collect::<Result<_, _>>()
        .map(PageToken)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use aws_sdk_dynamodb::operation::batch_get_item::{BatchGetItemInput, BatchGetItemOutput};
    use aws_sdk_dynamodb::operation::delete_item::{DeleteItemInput, DeleteItemOutput};
    use aws_sdk_dynamodb::operation::query::{QueryInput, QueryOutput};
    use aws_sdk_dynamodb::types::error::ConditionalCheckFailedException;
    use aws_sdk_dynamodb::Client;
    use aws_smithy_mocks::{mock, mock_client, RuleMode};

    use super::super::testing::{eva, eva_item, malformed, Requests, TABLE};
    use super::*;

    fn last_key() -> Item {
        [
            ("pk", "CONTACT#acme#whatsapp#+447911123456"),
            ("sk", "PROFILE"),
            ("gsi1pk", "acme#07"),
            ("gsi1sk", "whatsapp#+447911123456"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), s(v)))
        .collect()
    }

    #[tokio::test]
    async fn a_keys_only_page_reads_its_contacts_from_the_table_in_the_pages_order() {
        // GIVEN an index page of keys: Eva, then Bo, who was deleted since
        let bo_key = {
            let mut key = last_key();
            key.insert("pk".into(), s("CONTACT#acme#whatsapp#+447400123456"));
            key
        };
        let keys = [last_key(), bo_key];
        let query = mock!(Client::query).then_output(move || {
            QueryOutput::builder()
                .set_items(Some(keys.to_vec()))
                .build()
        });
        let requests = Requests::<BatchGetItemInput>::new();
        let read = mock!(Client::batch_get_item)
            .match_requests(requests.recorder())
            .then_output(|| {
                BatchGetItemOutput::builder()
                    .responses(TABLE, vec![eva_item()])
                    .build()
            });
        let client = mock_client!(aws_sdk_dynamodb, RuleMode::MatchAny, [&query, &read]);
        let table = DynamoTable::new(client, TABLE);

        // WHEN the page is read
        let page = table
            .contacts_page("acme", Some(Channel::Whatsapp), 7, None)
            .await
            .expect("a page");

        // THEN both keys are read from the table in one eventually consistent batch,
        // and the page holds the contact that still exists
        assert_eq!(page.contacts, vec![eva()]);
        let sent = requests.only();
        let keys = sent
            .request_items()
            .and_then(|r| r.get(TABLE))
            .expect("keys");
        assert_eq!(keys.keys().len(), 2);
        assert_eq!(keys.consistent_read(), Some(false));
        assert!(
            keys.keys().iter().all(|key| key.len() == 2),
            "pk and sk only"
        );
    }

    #[tokio::test]
    async fn a_shard_is_queried_on_the_index_page_after_page() {
        // GIVEN an index whose shard 7 holds two pages: Eva, then nobody
        let requests = Requests::<QueryInput>::new();
        let first = mock!(Client::query)
            .match_requests(requests.recorder())
            .then_output(|| {
                QueryOutput::builder()
                    .items(eva_item())
                    .set_last_evaluated_key(Some(last_key()))
                    .build()
            });
        let second = mock!(Client::query)
            .match_requests(requests.recorder())
            .then_output(|| QueryOutput::builder().build());
        let client = mock_client!(aws_sdk_dynamodb, RuleMode::Sequential, [&first, &second]);
        let table = DynamoTable::new(client, TABLE);

        // WHEN the whatsapp contacts of acme's shard 7 are read page by page
        let page = table
            .contacts_page("acme", Some(Channel::Whatsapp), 7, None)
            .await
            .expect("first page");
        let token = page.next.clone().expect("a second page");
        let last = table
            .contacts_page("acme", Some(Channel::Whatsapp), 7, Some(token.clone()))
            .await
            .expect("second page");

        // THEN each page is a Query of partition acme#07 on by_account, narrowed to the
        // channel, the second starting where the first stopped
        assert_eq!(page.contacts, vec![eva()]);
        assert_eq!(last, ContactPage::default());
        let expected_token: BTreeMap<String, String> = last_key()
            .into_iter()
            .map(|(k, v)| (k, v.as_s().expect("string").clone()))
            .collect();
        assert_eq!(token, PageToken(expected_token));
        let sent = requests.all();
        assert_eq!(sent.len(), 2);
        for query in &sent {
            assert_eq!(query.table_name(), Some(TABLE));
            assert_eq!(query.index_name(), Some("by_account"));
            assert_eq!(
                query.key_condition_expression(),
                Some("gsi1pk = :partition AND begins_with(gsi1sk, :channel)")
            );
            let values = query.expression_attribute_values().expect("values");
            assert_eq!(values.get(":partition"), Some(&s("acme#07")));
            assert_eq!(values.get(":channel"), Some(&s("whatsapp#")));
        }
        assert_eq!(sent[0].exclusive_start_key(), None);
        assert_eq!(sent[1].exclusive_start_key(), Some(&last_key()));
    }

    #[tokio::test]
    async fn an_undo_deletes_under_the_untouched_condition_and_reads_a_refusal() {
        // GIVEN a table that deletes the first contact, refuses the second (changed
        // since: version 2) and the third (gone)
        let requests = Requests::<DeleteItemInput>::new();
        let deleted = mock!(Client::delete_item)
            .match_requests(requests.recorder())
            .then_output(|| DeleteItemOutput::builder().build());
        let changed = mock!(Client::delete_item).then_error(|| {
            let mut item = eva_item();
            item.insert("version".into(), n(2));
            DeleteItemError::ConditionalCheckFailedException(
                ConditionalCheckFailedException::builder()
                    .set_item(Some(item))
                    .build(),
            )
        });
        let gone = mock!(Client::delete_item).then_error(|| {
            DeleteItemError::ConditionalCheckFailedException(
                ConditionalCheckFailedException::builder().build(),
            )
        });
        let client = mock_client!(
            aws_sdk_dynamodb,
            RuleMode::Sequential,
            [&deleted, &changed, &gone]
        );
        let table = DynamoTable::new(client, TABLE);

        // WHEN Eva is deleted three times as imp_1's
        let first = table.delete_if_untouched(&eva(), "imp_1").await;
        let second = table.delete_if_untouched(&eva(), "imp_1").await;
        let third = table.delete_if_untouched(&eva(), "imp_1").await;

        // THEN the delete is keyed on her item, conditioned on version 1 and the import,
        // and the refusals say kept (with the contact as stored) and absent
        assert_eq!(first.expect("deleted"), DeleteOutcome::Deleted);
        let mut changed_eva = eva();
        changed_eva.version = 2;
        assert_eq!(
            second.expect("kept"),
            DeleteOutcome::Kept(Box::new(changed_eva))
        );
        assert_eq!(third.expect("absent"), DeleteOutcome::Absent);
        let delete = requests.only();
        assert_eq!(delete.table_name(), Some(TABLE));
        assert_eq!(
            delete.key().and_then(|k| k.get("pk")),
            Some(&s("CONTACT#acme#whatsapp#+447911123456"))
        );
        assert_eq!(delete.key().and_then(|k| k.get("sk")), Some(&s("PROFILE")));
        assert_eq!(
            delete.condition_expression(),
            Some("#version = :first AND last_import_id = :import")
        );
        let values = delete.expression_attribute_values().expect("values");
        assert_eq!(values.get(":first"), Some(&n(1)));
        assert_eq!(values.get(":import"), Some(&s("imp_1")));
        assert_eq!(
            delete
                .expression_attribute_names()
                .and_then(|names| names.get("#version")),
            Some(&"version".to_string())
        );
        assert_eq!(
            delete.return_values_on_condition_check_failure(),
            Some(&ReturnValuesOnConditionCheckFailure::AllOld)
        );
    }

    #[tokio::test]
    async fn without_a_channel_the_whole_partition_is_read_and_bad_items_are_named() {
        // GIVEN an index answering an item without its status
        let requests = Requests::<QueryInput>::new();
        let rule = mock!(Client::query)
            .match_requests(requests.recorder())
            .then_output(|| {
                let mut item = eva_item();
                item.remove("status");
                QueryOutput::builder().items(item).build()
            });
        let table = DynamoTable::new(mock_client!(aws_sdk_dynamodb, [&rule]), TABLE);

        // WHEN shard 0 of every channel is read
        let result = table.contacts_page("acme", None, 0, None).await;

        // THEN the query has no channel condition, and the item is refused by name
        let query = requests.only();
        assert_eq!(
            query.key_condition_expression(),
            Some("gsi1pk = :partition")
        );
        assert_eq!(
            query
                .expression_attribute_values()
                .and_then(|v| v.get(":partition")),
            Some(&s("acme#00"))
        );
        let (pk, problem) = malformed(result);
        assert_eq!(pk, "CONTACT#acme#whatsapp#+447911123456");
        assert!(problem.contains("status"), "{problem}");
    }
}
