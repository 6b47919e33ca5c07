//! [`Identities`]: the account of a WhatsApp business number (`WABA#…` / `ACCOUNT`),
//! contacts by candidate keys (one `BatchGetItem`), and BSUID aliases (`ALIAS#…` /
//! `CONTACT`), changed together with the contacts they name in one transaction.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::types::{Delete, Put, TransactWriteItem};

use super::item::{build_error, key, n, s, Item, Reader};
use super::DynamoTable;
use crate::aws::service;
use crate::domain::channel::Channel;
use crate::domain::contact::Contact;
use crate::domain::keys::{alias_pk, contact_pk, waba_pk, ALIAS_SK, CONTACT_SK, WABA_SK};
use crate::ports::{Alias, Identities, IdentityWrite, StoreError};

impl From<&Alias> for Item {
    fn from(alias: &Alias) -> Item {
        let mut item = key(alias_pk(&alias.account_id, &alias.user_id), ALIAS_SK);
        item.extend([
            ("account_id".to_string(), s(&alias.account_id)),
            ("channel".to_string(), s(Channel::Whatsapp.as_str())),
            ("user_id".to_string(), s(&alias.user_id)),
            (
                "contact_pk".to_string(),
                s(contact_pk(
                    &alias.account_id,
                    Channel::Whatsapp,
                    &alias.contact_key,
                )),
            ),
            ("phone_number_id".to_string(), s(&alias.phone_number_id)),
        ]);
        item
    }
}

impl TryFrom<&Item> for Alias {
    type Error = StoreError;

    fn try_from(item: &Item) -> Result<Alias, StoreError> {
        let read = Reader::new(item);
        let account_id = read.string("account_id")?.to_string();
        let stored_pk = read.string("contact_pk")?;
        let prefix = contact_pk(&account_id, Channel::Whatsapp, "");
        let contact_key = stored_pk
            .strip_prefix(&prefix)
            .filter(|k| !k.is_empty())
            .ok_or_else(|| read.malformed("contact_pk is not a WhatsApp contact of its account"))?;
        Ok(Alias {
            user_id: read.string("user_id")?.to_string(),
            contact_key: contact_key.to_string(),
            phone_number_id: read.string("phone_number_id")?.to_string(),
            account_id,
        })
    }
}

impl Identities for DynamoTable {
    async fn account_of_number(&self, phone_number_id: &str) -> Result<Option<String>, StoreError> {
        if let Some(account_id) = self.numbers.get(phone_number_id) {
            return Ok(Some(account_id));
        }
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key(waba_pk(phone_number_id), WABA_SK)))
            .send()
            .await
            .map_err(|e| service("DynamoDB GetItem (business number)")(e.into_service_error()))?;
        let account_id = out
            .item()
            .map(|item| Reader::new(item).string("account_id").map(str::to_string))
            .transpose()?;
        if let Some(account_id) = &account_id {
            self.numbers.insert(phone_number_id, account_id);
        }
        Ok(account_id)
    }

    async fn contacts_by_keys(
        &self,
        account_id: &str,
        channel: Channel,
        keys: &[String],
    ) -> Result<Vec<Contact>, StoreError> {
        let keys = keys
            .iter()
            .map(|k| key(contact_pk(account_id, channel, k), CONTACT_SK))
            .collect();
        let items = self
            .batch_get(keys, None, "DynamoDB BatchGetItem (contacts)")
            .await?;
        let found = items
            .iter()
            .map(Contact::try_from)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(found)
    }

    async fn alias(&self, account_id: &str, user_id: &str) -> Result<Option<Alias>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key(alias_pk(account_id, user_id), ALIAS_SK)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| service("DynamoDB GetItem (alias)")(e.into_service_error()))?;
        out.item().map(Alias::try_from).transpose()
    }

    async fn write_identity(&self, writes: &[IdentityWrite]) -> Result<bool, StoreError> {
        let items = writes
            .iter()
            .map(|write| self.identity_item(write))
            .collect::<Result<Vec<_>, _>>()?;
        self.transact_conditionally(items, "DynamoDB TransactWriteItems (identity)")
            .await
    }
}

impl DynamoTable {
    /// One write of an identity change as a transaction item (erasures use it too).
    pub(super) fn identity_item(
        &self,
        write: &IdentityWrite,
    ) -> Result<TransactWriteItem, StoreError> {
        Ok(match write {
            IdentityWrite::Contact(contact, precondition) => {
                self.transact_item(contact, *precondition)?
            }
            IdentityWrite::RemoveContact(contact) => TransactWriteItem::builder()
                .delete(
                    Delete::builder()
                        .table_name(&self.table)
                        .set_key(Some(key(
                            contact_pk(&contact.account_id, contact.channel, &contact.phone),
                            CONTACT_SK,
                        )))
                        .condition_expression("attribute_exists(pk) AND #version = :expected")
                        .expression_attribute_names("#version", "version")
                        .expression_attribute_values(":expected", n(contact.version))
                        .build()
                        .map_err(build_error)?,
                )
                .build(),
            IdentityWrite::RemoveAlias(alias) => TransactWriteItem::builder()
                .delete(
                    Delete::builder()
                        .table_name(&self.table)
                        .set_key(Some(key(
                            alias_pk(&alias.account_id, &alias.user_id),
                            ALIAS_SK,
                        )))
                        .condition_expression("contact_pk = :expected")
                        .expression_attribute_values(
                            ":expected",
                            s(contact_pk(
                                &alias.account_id,
                                Channel::Whatsapp,
                                &alias.contact_key,
                            )),
                        )
                        .build()
                        .map_err(build_error)?,
                )
                .build(),
            IdentityWrite::Alias(alias, expected) => {
                let put = Put::builder()
                    .table_name(&self.table)
                    .set_item(Some(Item::from(alias)));
                let put = match expected {
                    None => put.condition_expression("attribute_not_exists(pk)"),
                    Some(key) => put
                        .condition_expression("contact_pk = :expected")
                        .expression_attribute_values(
                            ":expected",
                            s(contact_pk(&alias.account_id, Channel::Whatsapp, key)),
                        ),
                };
                TransactWriteItem::builder()
                    .put(put.build().map_err(build_error)?)
                    .build()
            }
        })
    }
}

/// How long a business number's account is taken from memory: every webhook change
/// names its number, and one busy number would otherwise read the same `WABA#` item
/// thousands of times a second (a hot key, and half a read unit per change). A number
/// moved to another account is followed within this time; an unknown number is never
/// remembered, so a number added is found at once.
const NUMBER_CACHE_TTL: Duration = Duration::from_secs(60);

/// Business numbers' accounts read lately, shared by the clones of a table.
#[derive(Clone, Debug, Default)]
pub(super) struct NumberCache(Arc<Mutex<HashMap<String, (String, Instant)>>>);

impl NumberCache {
    fn get(&self, phone_number_id: &str) -> Option<String> {
        let numbers = self.0.lock().ok()?;
        let (account_id, read_at) = numbers.get(phone_number_id)?;
        (read_at.elapsed() < NUMBER_CACHE_TTL).then(|| account_id.clone())
    }

    fn insert(&self, phone_number_id: &str, account_id: &str) {
        if let Ok(mut numbers) = self.0.lock() {
            // A handful of numbers per deployment; bounded all the same.
            if numbers.len() >= 10_000 {
                numbers.clear();
            }
            let entry = (account_id.to_string(), Instant::now());
            numbers.insert(phone_number_id.to_string(), entry);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_dynamodb::operation::get_item::GetItemOutput;
    use aws_smithy_mocks::{mock, mock_client, RuleMode};

    #[tokio::test]
    async fn a_business_numbers_account_is_read_once_and_an_unknown_number_every_time() {
        let known = mock!(aws_sdk_dynamodb::Client::get_item)
            .match_requests(|r| r.key().and_then(|k| k.get("pk")) == Some(&s("WABA#111")))
            .then_output(|| {
                let item = [
                    ("pk", s("WABA#111")),
                    ("sk", s(WABA_SK)),
                    ("account_id", s("acme")),
                ];
                GetItemOutput::builder()
                    .set_item(Some(
                        item.into_iter().map(|(k, v)| (k.to_string(), v)).collect(),
                    ))
                    .build()
            });
        let unknown = mock!(aws_sdk_dynamodb::Client::get_item)
            .match_requests(|r| r.key().and_then(|k| k.get("pk")) == Some(&s("WABA#222")))
            .then_output(|| GetItemOutput::builder().build());
        let table = DynamoTable::new(
            mock_client!(aws_sdk_dynamodb, RuleMode::MatchAny, [&known, &unknown]),
            "contacts",
        );
        for _ in 0..3 {
            let account = table.account_of_number("111").await.expect("read");
            assert_eq!(account.as_deref(), Some("acme"));
            assert_eq!(
                table.clone().account_of_number("222").await.expect("read"),
                None
            );
        }
        assert_eq!(known.num_calls(), 1, "remembered");
        assert_eq!(
            unknown.num_calls(),
            3,
            "never remembered: a number added is found at once"
        );
    }

    #[test]
    fn an_alias_round_trips_and_names_its_contact_by_pk() {
        let alias = Alias {
            account_id: "acme".into(),
            user_id: "GB.13491208655302741918".into(),
            contact_key: "bsuid:GB.13491208655302741918".into(),
            phone_number_id: "106540352242922".into(),
        };
        let item = Item::from(&alias);
        assert_eq!(
            item.get("pk"),
            Some(&s("ALIAS#acme#whatsapp#GB.13491208655302741918"))
        );
        assert_eq!(item.get("sk"), Some(&s("CONTACT")));
        assert_eq!(
            item.get("contact_pk"),
            Some(&s("CONTACT#acme#whatsapp#bsuid:GB.13491208655302741918"))
        );
        assert_eq!(Alias::try_from(&item).expect("decodes"), alias);
    }
}
