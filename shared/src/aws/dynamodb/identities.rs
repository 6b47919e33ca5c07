//! [`Identities`]: the account of a WhatsApp business number (`WABA#…` / `ACCOUNT`),
//! contacts by candidate keys (one `BatchGetItem`), and BSUID aliases (`ALIAS#…` /
//! `CONTACT`), changed together with the contacts they name in one transaction.

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
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key(waba_pk(phone_number_id), WABA_SK)))
            .send()
            .await
            .map_err(|e| service("DynamoDB GetItem (business number)")(e.into_service_error()))?;
        out.item()
            .map(|item| Reader::new(item).string("account_id").map(str::to_string))
            .transpose()
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

#[cfg(test)]
mod tests {
    use super::*;

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
