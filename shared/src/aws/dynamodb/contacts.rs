//! [`ContactStore`]: a contact's item (DESIGN section 9) and the one conditional write
//! per save: a put when the contact must be new, an update under the version read
//! otherwise. A refused write answers the item as it is now (`ALL_OLD`), so the caller
//! merges into it without a read.

use std::collections::HashMap;

use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{
    AttributeValue, BatchStatementErrorCodeEnum, BatchStatementRequest, BatchStatementResponse,
    Put, ReturnValuesOnConditionCheckFailure, TransactWriteItem, Update,
};

use super::item::{build_error, n, s, Item, Reader};
use super::DynamoTable;
use crate::aws::service;
use crate::domain::channel::Channel;
use crate::domain::consent::{Category, Consent, ConsentEntry, ConsentSource, State};
use crate::domain::contact::{Contact, Source, Status, TEXT_FIELDS};
use crate::domain::keys::{contact_pk, gsi1pk, gsi1sk, BSUID_KEY_PREFIX, CONTACT_SK};
use crate::ports::{Applied, ContactStore, Precondition, PutOutcome, StoreError};

/// Condition of a create: no item has this key yet.
const ABSENT: &str = "attribute_not_exists(pk)";
/// Condition of an update: the item is still at the version the merge started from.
const SAME_VERSION: &str = "attribute_exists(pk) AND #version = :expected";

impl From<&Contact> for Item {
    /// The whole item: keys, `by_account` GSI keys and every attribute the contact has.
    /// Absent optional values and empty sets are left out (DynamoDB refuses empty sets).
    fn from(contact: &Contact) -> Item {
        attributes(contact)
            .into_iter()
            .map(|(name, value)| (name.to_string(), value))
            .collect()
    }
}

/// A contact's item as attribute names (borrowed: ours, or its own text fields') and
/// values: [`Item::from`] without a map, for the statements that list them in order.
fn attributes(contact: &Contact) -> Vec<(&str, AttributeValue)> {
    let (account, channel, phone) = (&contact.account_id, contact.channel, &contact.phone);
    let mut item: Vec<(&str, AttributeValue)> = Vec::with_capacity(32);
    item.extend((contact.text.iter()).map(|(field, value)| (field.as_str(), s(value))));
    item.extend([
        ("pk", s(contact_pk(account, channel, phone))),
        ("sk", s(CONTACT_SK)),
        ("gsi1pk", s(gsi1pk(account, phone))),
        ("gsi1sk", s(gsi1sk(channel, phone))),
        ("account_id", s(account)),
        ("channel", s(channel.as_str())),
        ("status", s(contact.status.as_str())),
        ("anonymous", AttributeValue::Bool(contact.anonymous)),
        ("source", s(contact.source.as_str())),
        ("created_at", s(&contact.created_at)),
        ("updated_at", s(&contact.updated_at)),
        ("version", n(contact.version)),
    ]);
    // A contact known only by its BSUID has no number (DESIGN section 13).
    if let Some(e164) = contact.e164() {
        item.push(("phone", s(e164)));
    }
    item.extend(optional_attributes(contact));
    item
}

/// The attributes of ours an update takes out of the stored item because the contact
/// no longer has them: the profile fields and custom attributes a `blanks=clear` upload
/// erased. Removing one the item does not have costs nothing.
fn erased_attributes(has: impl Fn(&str) -> bool) -> Vec<&'static str> {
    TEXT_FIELDS
        .into_iter()
        .chain(["attrs"])
        .filter(|name| !has(name))
        .collect()
}

/// The attributes a contact may not have.
fn optional_attributes<'a>(contact: &Contact) -> impl Iterator<Item = (&'a str, AttributeValue)> {
    let set = |values: &std::collections::BTreeSet<String>| {
        (!values.is_empty()).then(|| AttributeValue::Ss(values.iter().cloned().collect()))
    };
    let attrs = (!contact.attrs.is_empty()).then(|| {
        AttributeValue::M(
            contact
                .attrs
                .iter()
                .map(|(k, v)| (k.clone(), s(v)))
                .collect(),
        )
    });
    [
        (
            "whatsapp_opted",
            contact.whatsapp_opted.map(AttributeValue::Bool),
        ),
        ("lists", set(&contact.lists)),
        ("tags", set(&contact.tags)),
        ("attrs", attrs),
        ("last_import_id", contact.last_import_id.as_ref().map(s)),
        ("last_campaign_id", contact.last_campaign_id.as_ref().map(s)),
        ("last_inbound_at", contact.last_inbound_at.as_ref().map(s)),
        ("wa_id", contact.wa_id.as_ref().map(s)),
        (
            "whatsapp_reachable",
            contact.whatsapp_reachable.map(AttributeValue::Bool),
        ),
        (
            "whatsapp_reachable_at",
            contact.whatsapp_reachable_at.as_ref().map(s),
        ),
        ("user_ids", set(&contact.user_ids)),
        ("consent", consent_attribute(&contact.consent)),
    ]
    .into_iter()
    .filter_map(|(name, value)| Some((name, value?)))
}

impl TryFrom<&Item> for Contact {
    type Error = StoreError;

    /// Strict: every attribute we always write must be there with its type, and
    /// `channel`, `status` and `source` must hold a value we know.
    fn try_from(item: &Item) -> Result<Contact, StoreError> {
        let read = Reader::new(item);
        let mut text = std::collections::BTreeMap::new();
        for field in TEXT_FIELDS {
            if let Some(value) = read.optional_string(field)? {
                text.insert(field.to_string(), value.to_string());
            }
        }
        let optional =
            |name: &str| Ok::<_, StoreError>(read.optional_string(name)?.map(str::to_string));
        Ok(Contact {
            account_id: read.string("account_id")?.to_string(),
            channel: read.code("channel", Channel::parse)?,
            phone: match read.optional_string("phone")? {
                Some(phone) => phone.to_string(),
                None => bsuid_key_of(&read)?,
            },
            text,
            whatsapp_opted: read.optional_boolean("whatsapp_opted")?,
            lists: read.string_set("lists")?,
            tags: read.string_set("tags")?,
            attrs: read.string_map("attrs")?,
            status: read.code("status", Status::parse)?,
            anonymous: read.boolean("anonymous")?,
            source: read.code("source", Source::parse)?,
            created_at: read.string("created_at")?.to_string(),
            updated_at: read.string("updated_at")?.to_string(),
            last_import_id: optional("last_import_id")?,
            last_campaign_id: optional("last_campaign_id")?,
            last_inbound_at: optional("last_inbound_at")?,
            wa_id: optional("wa_id")?,
            whatsapp_reachable: read.optional_boolean("whatsapp_reachable")?,
            whatsapp_reachable_at: optional("whatsapp_reachable_at")?,
            user_ids: read.string_set("user_ids")?,
            consent: read_consent(&read)?,
            version: read.number("version")?,
        })
    }
}

/// The key part of a contact without a `phone`: only a BSUID contact has none.
fn bsuid_key_of(read: &Reader<'_>) -> Result<String, StoreError> {
    let pk = read.string("pk")?;
    pk.rsplit_once('#')
        .map(|(_, key)| key)
        .filter(|key| key.starts_with(BSUID_KEY_PREFIX))
        .map(str::to_string)
        .ok_or_else(|| read.malformed("missing attribute `phone`"))
}

/// `consent` (M): `{category: {state, at, source, scope?, evidence}}`; none when empty.
fn consent_attribute(consent: &Consent) -> Option<AttributeValue> {
    let entry = |e: &ConsentEntry| {
        let mut fields = HashMap::from([
            ("state".to_string(), s(e.state.as_str())),
            ("at".to_string(), s(&e.at)),
            ("source".to_string(), s(e.source.as_str())),
            ("evidence".to_string(), s(&e.evidence)),
        ]);
        if let Some(scope) = &e.scope {
            fields.insert("scope".to_string(), s(scope));
        }
        AttributeValue::M(fields)
    };
    (!consent.is_empty()).then(|| {
        AttributeValue::M(
            consent
                .iter()
                .map(|(category, e)| (category.as_str().to_string(), entry(e)))
                .collect(),
        )
    })
}

/// Reads `consent`, strictly: every entry has its state, time, source and evidence.
fn read_consent(read: &Reader<'_>) -> Result<Consent, StoreError> {
    let mut consent = Consent::new();
    for (name, value) in read.maps("consent")? {
        let text = |field: &str| match value.get(field) {
            Some(AttributeValue::S(v)) => Ok(Some(v.as_str())),
            None => Ok(None),
            Some(_) => Err(read.malformed(format!("consent.{name}.{field} is not a string (S)"))),
        };
        let known = |field: &str, parsed: Option<bool>| {
            read.malformed(match parsed {
                None => format!("consent.{name}.{field} is missing"),
                Some(_) => format!("consent.{name}.{field} holds a value we do not know"),
            })
        };
        let category = Category::parse(name).ok_or_else(|| known("(category)", Some(true)))?;
        let state = text("state")?;
        let state = state
            .and_then(State::parse)
            .ok_or_else(|| known("state", state.map(|_| true)))?;
        let source = text("source")?;
        let source = source
            .and_then(ConsentSource::parse)
            .ok_or_else(|| known("source", source.map(|_| true)))?;
        let at = text("at")?.ok_or_else(|| known("at", None))?;
        let evidence = text("evidence")?.ok_or_else(|| known("evidence", None))?;
        consent.insert(
            category,
            ConsentEntry {
                state,
                at: at.to_string(),
                source,
                scope: text("scope")?.map(str::to_string),
                evidence: evidence.to_string(),
            },
        );
    }
    Ok(consent)
}

/// How a conditional write ended.
enum Write {
    /// It was made.
    Done,
    /// The condition failed; the item as it is now, when there is one.
    Refused(Option<Item>),
}

impl ContactStore for DynamoTable {
    async fn get_contact(
        &self,
        account_id: &str,
        channel: Channel,
        phone: &str,
    ) -> Result<Option<Contact>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", s(contact_pk(account_id, channel, phone)))
            .key("sk", s(CONTACT_SK))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| service("DynamoDB GetItem")(e.into_service_error()))?;
        out.item().map(Contact::try_from).transpose()
    }

    async fn put_contact(
        &self,
        contact: &Contact,
        precondition: Precondition,
    ) -> Result<PutOutcome, StoreError> {
        let item = Item::from(contact);
        let write = match precondition {
            Precondition::Absent => self.create_contact(item).await?,
            Precondition::Version(expected) => self.update_contact(item, expected).await?,
        };
        match write {
            Write::Done => Ok(PutOutcome::Written),
            Write::Refused(current) => {
                let current = current.as_ref().map(Contact::try_from).transpose()?;
                Ok(PutOutcome::Conflict(current.map(Box::new)))
            }
        }
    }

    async fn read_contacts(
        &self,
        account_id: &str,
        channel: Channel,
        phones: &[String],
        consistent: bool,
    ) -> Result<Vec<Option<Contact>>, StoreError> {
        let pks: Vec<String> = phones
            .iter()
            .map(|phone| contact_pk(account_id, channel, phone))
            .collect();
        let keys = pks
            .iter()
            .map(|pk| Item::from([("pk".into(), s(pk)), ("sk".into(), s(CONTACT_SK))]))
            .collect();
        let items = self
            .batch_get_as(keys, None, consistent, "DynamoDB BatchGetItem (contacts)")
            .await?;
        let mut found: HashMap<String, Contact> = HashMap::with_capacity(items.len());
        for item in &items {
            let pk = Reader::new(item).string("pk")?.to_string();
            found.insert(pk, Contact::try_from(item)?);
        }
        Ok(pks.iter().map(|pk| found.remove(pk)).collect())
    }

    async fn write_contacts(
        &self,
        writes: &[(Contact, Precondition)],
    ) -> Result<Vec<Applied>, StoreError> {
        let requests = writes
            .chunks(STATEMENTS_PER_BATCH)
            .map(|chunk| self.execute_writes(chunk));
        let answers = futures::future::try_join_all(requests).await?;
        Ok(answers.into_iter().flatten().collect())
    }
}

/// DynamoDB's limit of statements in one `BatchExecuteStatement`.
const STATEMENTS_PER_BATCH: usize = 25;

impl DynamoTable {
    /// One `BatchExecuteStatement`: each write a PartiQL statement applied on its own,
    /// at a single write's price (a transaction would cost twice).
    async fn execute_writes(
        &self,
        writes: &[(Contact, Precondition)],
    ) -> Result<Vec<Applied>, StoreError> {
        let statements = writes
            .iter()
            .map(|(contact, precondition)| self.statement(contact, *precondition))
            .collect::<Result<Vec<_>, _>>()?;
        let responses = self
            .execute_statements(statements, "DynamoDB BatchExecuteStatement")
            .await?;
        responses.iter().map(applied).collect()
    }

    /// A create as `INSERT` (refused with `DuplicateItem` when the key exists), an
    /// update as `UPDATE … SET` every attribute `WHERE` the version is still the one
    /// read (refused with the stored item, `ALL_OLD`).
    fn statement(
        &self,
        contact: &Contact,
        precondition: Precondition,
    ) -> Result<BatchStatementRequest, StoreError> {
        let mut item = attributes(contact);
        item.sort_by(|a, b| a.0.cmp(b.0));
        // One value per name, the later one, as in the item's map (`Item::from`): a
        // statement naming an attribute twice is refused.
        item.dedup_by(|later, earlier| {
            let same = later.0 == earlier.0;
            if same {
                std::mem::swap(later, earlier);
            }
            same
        });
        let mut statement = String::with_capacity(64 + 24 * item.len());
        let request = match precondition {
            Precondition::Absent => {
                statement.push_str("INSERT INTO ");
                push_quoted(&mut statement, &self.table, '"');
                statement.push_str(" VALUE {");
                for (i, (name, _)) in item.iter().enumerate() {
                    if i > 0 {
                        statement.push_str(", ");
                    }
                    push_quoted(&mut statement, name, '\'');
                    statement.push_str(": ?");
                }
                statement.push('}');
                BatchStatementRequest::builder()
                    .statement(statement)
                    .set_parameters(Some(item.into_iter().map(|(_, v)| v).collect()))
            }
            Precondition::Version(expected) => {
                let removes = erased_attributes(|name| item.iter().any(|(n, _)| *n == name));
                statement.push_str("UPDATE ");
                push_quoted(&mut statement, &self.table, '"');
                let mut parameters = Vec::with_capacity(item.len() + 1);
                let mut key = Vec::with_capacity(2);
                for (name, value) in item {
                    if name == "pk" || name == "sk" {
                        key.push(value);
                        continue;
                    }
                    statement.push_str(" SET ");
                    push_quoted(&mut statement, name, '"');
                    statement.push_str(" = ?");
                    parameters.push(value);
                }
                for name in removes {
                    statement.push_str(" REMOVE ");
                    push_quoted(&mut statement, name, '"');
                }
                statement.push_str(" WHERE \"pk\" = ? AND \"sk\" = ? AND \"version\" = ?");
                parameters.extend(key);
                parameters.push(n(expected));
                BatchStatementRequest::builder()
                    .statement(statement)
                    .set_parameters(Some(parameters))
                    .return_values_on_condition_check_failure(
                        ReturnValuesOnConditionCheckFailure::AllOld,
                    )
            }
        };
        request.build().map_err(build_error)
    }
}

/// Appends `name` in `quote`s, a quote in it doubled (PartiQL's escape).
fn push_quoted(out: &mut String, name: &str, quote: char) {
    out.push(quote);
    for c in name.chars() {
        if c == quote {
            out.push(quote);
        }
        out.push(c);
    }
    out.push(quote);
}

/// What became of one statement: refusals are answers, throttling and conflicts with
/// a transaction are worth sending again, anything else is an error (named by its
/// code: a message may quote the values).
fn applied(response: &BatchStatementResponse) -> Result<Applied, StoreError> {
    let Some(error) = response.error() else {
        return Ok(Applied::Written);
    };
    match error.code() {
        Some(BatchStatementErrorCodeEnum::DuplicateItem) => Ok(Applied::Refused(None)),
        Some(BatchStatementErrorCodeEnum::ConditionalCheckFailed) => {
            let current = error.item().map(Contact::try_from).transpose()?;
            Ok(Applied::Refused(current.map(Box::new)))
        }
        Some(
            BatchStatementErrorCodeEnum::TransactionConflict
            | BatchStatementErrorCodeEnum::ThrottlingError
            | BatchStatementErrorCodeEnum::ProvisionedThroughputExceeded
            | BatchStatementErrorCodeEnum::RequestLimitExceeded
            | BatchStatementErrorCodeEnum::InternalServerError,
        ) => Ok(Applied::Retry),
        other => Err(StoreError::Service {
            operation: "DynamoDB BatchExecuteStatement",
            source: format!(
                "a contact's statement failed: {}",
                other.map_or("no code", |code| code.as_str())
            )
            .into(),
        }),
    }
}

impl DynamoTable {
    /// A transaction's write: the same put or update as a single save makes.
    pub(super) fn transact_item(
        &self,
        contact: &Contact,
        precondition: Precondition,
    ) -> Result<TransactWriteItem, StoreError> {
        let item = Item::from(contact);
        let write = TransactWriteItem::builder();
        Ok(match precondition {
            Precondition::Absent => write.put(
                Put::builder()
                    .table_name(&self.table)
                    .set_item(Some(item))
                    .condition_expression(ABSENT)
                    .return_values_on_condition_check_failure(
                        ReturnValuesOnConditionCheckFailure::AllOld,
                    )
                    .build()
                    .map_err(build_error)?,
            ),
            Precondition::Version(expected) => {
                let (key, update) = SetEvery::update_of(item, expected);
                write.update(
                    Update::builder()
                        .table_name(&self.table)
                        .set_key(Some(key))
                        .update_expression(update.expression)
                        .condition_expression(SAME_VERSION)
                        .set_expression_attribute_names(Some(update.names))
                        .set_expression_attribute_values(Some(update.values))
                        .return_values_on_condition_check_failure(
                            ReturnValuesOnConditionCheckFailure::AllOld,
                        )
                        .build()
                        .map_err(build_error)?,
                )
            }
        }
        .build())
    }

    /// Puts the whole item when no item has its key.
    async fn create_contact(&self, item: Item) -> Result<Write, StoreError> {
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression(ABSENT)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        match result.map_err(|e| e.into_service_error()) {
            Ok(_) => Ok(Write::Done),
            Err(PutItemError::ConditionalCheckFailedException(refused)) => {
                Ok(Write::Refused(refused.item))
            }
            Err(other) => Err(service("DynamoDB PutItem")(other)),
        }
    }

    /// SETs every attribute we own (attributes other writers added survive) when the
    /// stored version is still `expected`.
    async fn update_contact(&self, item: Item, expected: u64) -> Result<Write, StoreError> {
        let (key, update) = SetEvery::update_of(item, expected);
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key))
            .update_expression(update.expression)
            .condition_expression(SAME_VERSION)
            .set_expression_attribute_names(Some(update.names))
            .set_expression_attribute_values(Some(update.values))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        match result.map_err(|e| e.into_service_error()) {
            Ok(_) => Ok(Write::Done),
            Err(UpdateItemError::ConditionalCheckFailedException(refused)) => {
                Ok(Write::Refused(refused.item))
            }
            Err(other) => Err(service("DynamoDB UpdateItem")(other)),
        }
    }
}

/// An update expression setting every attribute, with the placeholders it and
/// [`SAME_VERSION`] use. Attributes go in name order: one contact, one request.
struct SetEvery {
    expression: String,
    names: HashMap<String, String>,
    values: Item,
}

impl SetEvery {
    /// The item's key, and the update setting the rest of it.
    fn update_of(mut item: Item, expected: u64) -> (Item, SetEvery) {
        let key: Item = ["pk", "sk"]
            .into_iter()
            .filter_map(|name| item.remove_entry(name))
            .collect();
        (key, SetEvery::attribute_of(item, expected))
    }

    fn attribute_of(attributes: Item, expected: u64) -> SetEvery {
        let erased = erased_attributes(|name| attributes.contains_key(name));
        let mut attributes: Vec<_> = attributes.into_iter().collect();
        attributes.sort_by(|a, b| a.0.cmp(&b.0));
        let mut names = HashMap::from([("#version".to_string(), "version".to_string())]);
        let mut values = Item::from([(":expected".to_string(), n(expected))]);
        let mut sets = Vec::with_capacity(attributes.len());
        for (i, (name, value)) in attributes.into_iter().enumerate() {
            names.insert(format!("#a{i}"), name);
            values.insert(format!(":v{i}"), value);
            sets.push(format!("#a{i} = :v{i}"));
        }
        let mut removes = Vec::with_capacity(erased.len());
        for (i, name) in erased.into_iter().enumerate() {
            names.insert(format!("#r{i}"), name.to_string());
            removes.push(format!("#r{i}"));
        }
        let mut expression = format!("SET {}", sets.join(", "));
        if !removes.is_empty() {
            expression.push_str(&format!(" REMOVE {}", removes.join(", ")));
        }
        SetEvery {
            expression,
            names,
            values,
        }
    }
}

#[cfg(test)]
mod tests {
    use aws_sdk_dynamodb::operation::batch_execute_statement::{
        BatchExecuteStatementInput, BatchExecuteStatementOutput,
    };
    use aws_sdk_dynamodb::operation::get_item::{GetItemInput, GetItemOutput};
    use aws_sdk_dynamodb::operation::put_item::{PutItemInput, PutItemOutput};
    use aws_sdk_dynamodb::operation::update_item::{UpdateItemInput, UpdateItemOutput};
    use aws_sdk_dynamodb::types::BatchStatementError;
    use aws_sdk_dynamodb::Client;
    use aws_smithy_mocks::{mock, mock_client};

    use super::*;
    use crate::aws::dynamodb::testing::{
        eva, eva_item, malformed, refused, Requests, EVA_PK, TABLE,
    };

    #[tokio::test]
    async fn a_new_contact_is_put_whole_only_when_absent() {
        // GIVEN a table that accepts the put
        let requests = Requests::<PutItemInput>::new();
        let rule = mock!(Client::put_item)
            .match_requests(requests.recorder())
            .then_output(|| PutItemOutput::builder().build());
        let table = DynamoTable::new(mock_client!(aws_sdk_dynamodb, [&rule]), TABLE);

        // WHEN a new contact is saved
        let outcome = table.put_contact(&eva(), Precondition::Absent).await;

        // THEN one put carries the whole item under attribute_not_exists, asking for
        // the stored item should the condition fail
        assert_eq!(outcome.expect("written"), PutOutcome::Written);
        let put = requests.only();
        assert_eq!(put.table_name(), Some(TABLE));
        assert_eq!(put.item(), Some(&eva_item()));
        assert_eq!(put.condition_expression(), Some("attribute_not_exists(pk)"));
        assert_eq!(
            put.return_values_on_condition_check_failure(),
            Some(&ReturnValuesOnConditionCheckFailure::AllOld)
        );
    }

    #[tokio::test]
    async fn an_update_sets_every_attribute_under_the_version_read() {
        // GIVEN a table that accepts the update, and Eva renamed from version 1
        let requests = Requests::<UpdateItemInput>::new();
        let rule = mock!(Client::update_item)
            .match_requests(requests.recorder())
            .then_output(|| UpdateItemOutput::builder().build());
        let table = DynamoTable::new(mock_client!(aws_sdk_dynamodb, [&rule]), TABLE);
        let mut renamed = eva();
        renamed.text.insert("name".into(), "Eva Smith".into());
        renamed.attrs.clear();
        renamed.version = 2;

        // WHEN it is saved under the version read
        let outcome = table.put_contact(&renamed, Precondition::Version(1)).await;

        // THEN the update is keyed on the contact, conditioned on version 1, and sets
        // every other attribute of its item
        assert_eq!(outcome.expect("written"), PutOutcome::Written);
        let update = requests.only();
        assert_eq!(update.table_name(), Some(TABLE));
        let key = Item::from([("pk".into(), s(EVA_PK)), ("sk".into(), s("PROFILE"))]);
        assert_eq!(update.key(), Some(&key));
        assert_eq!(
            update.condition_expression(),
            Some("attribute_exists(pk) AND #version = :expected")
        );
        let names = update.expression_attribute_names().expect("names");
        let values = update.expression_attribute_values().expect("values");
        assert_eq!(names.get("#version").map(String::as_str), Some("version"));
        assert_eq!(values.get(":expected"), Some(&n(1)));
        let mut expected = Item::from(&renamed);
        expected.retain(|name, _| name != "pk" && name != "sk");
        assert_eq!(set_attributes(&update), expected);
        assert_eq!(expected.get("name"), Some(&s("Eva Smith")));
        // ... and takes out the profile fields and attributes she has not (what a
        // `blanks=clear` upload erased)
        let removed = removed_attributes(&update);
        assert!(removed.contains(&"email".to_string()) && removed.contains(&"attrs".to_string()));
        assert!(removed.iter().all(|name| !expected.contains_key(name)));
        assert_eq!(expected.get("version"), Some(&n(2)));
        assert_eq!(
            update.return_values_on_condition_check_failure(),
            Some(&ReturnValuesOnConditionCheckFailure::AllOld)
        );
    }

    /// What an update's `SET a = b, …` writes, its placeholders resolved.
    fn set_attributes(update: &UpdateItemInput) -> Item {
        let names = update.expression_attribute_names().expect("names");
        let values = update.expression_attribute_values().expect("values");
        let expression = update.update_expression().expect("expression");
        let sets = expression.strip_prefix("SET ").expect("a SET expression");
        let sets = sets.split(" REMOVE ").next().unwrap_or_default();
        sets.split(", ")
            .map(|set| {
                let (name, value) = set.split_once(" = ").expect("name = value");
                (names[name].clone(), values[value].clone())
            })
            .collect()
    }

    /// The attributes an update's `REMOVE a, …` takes out, by name.
    fn removed_attributes(update: &UpdateItemInput) -> Vec<String> {
        let names = update.expression_attribute_names().expect("names");
        let expression = update.update_expression().expect("expression");
        expression
            .split_once(" REMOVE ")
            .map(|(_, removes)| removes.split(", ").map(|r| names[r].clone()).collect())
            .unwrap_or_default()
    }

    #[tokio::test]
    async fn a_refused_write_answers_the_stored_contact() {
        // GIVEN a contact already stored, with another name, which the put's condition
        // finds and returns (ALL_OLD)
        let mut stored = eva_item();
        stored.insert("name".into(), s("Eva Stored"));
        let rule = mock!(Client::put_item).then_error(move || refused(Some(stored.clone())));
        let table = DynamoTable::new(mock_client!(aws_sdk_dynamodb, [&rule]), TABLE);

        // WHEN Eva is created
        let outcome = table.put_contact(&eva(), Precondition::Absent).await;

        // THEN the conflict carries the stored contact, decoded
        let mut expected = eva();
        expected.text.insert("name".into(), "Eva Stored".into());
        assert_eq!(
            outcome.expect("a conflict is an answer"),
            PutOutcome::Conflict(Some(Box::new(expected)))
        );
    }

    #[tokio::test]
    async fn a_refused_update_of_a_deleted_contact_has_nothing_to_merge() {
        // GIVEN the contact was deleted since it was read: no ALL_OLD item
        let rule = mock!(Client::update_item).then_error(|| {
            UpdateItemError::ConditionalCheckFailedException(
                aws_sdk_dynamodb::types::error::ConditionalCheckFailedException::builder().build(),
            )
        });
        let table = DynamoTable::new(mock_client!(aws_sdk_dynamodb, [&rule]), TABLE);

        // WHEN it is updated
        let outcome = table.put_contact(&eva(), Precondition::Version(1)).await;

        // THEN it is a conflict with nothing stored
        assert_eq!(outcome.expect("answer"), PutOutcome::Conflict(None));
    }

    #[tokio::test]
    async fn an_unknown_status_is_malformed_naming_the_item() {
        // GIVEN a stored contact whose status is no status we know
        let requests = Requests::<GetItemInput>::new();
        let mut stored = eva_item();
        stored.insert("status".into(), s("paused"));
        let rule = mock!(Client::get_item)
            .match_requests(requests.recorder())
            .then_output(move || {
                GetItemOutput::builder()
                    .set_item(Some(stored.clone()))
                    .build()
            });
        let table = DynamoTable::new(mock_client!(aws_sdk_dynamodb, [&rule]), TABLE);

        // WHEN it is read
        let read = table
            .get_contact("acme", Channel::Whatsapp, "+447911123456")
            .await;

        // THEN the read fails naming the item and the value, not defaulting to active
        assert_eq!(
            malformed(read),
            (EVA_PK.into(), "unknown status `paused`".into())
        );
        let get = requests.only();
        let key = Item::from([("pk".into(), s(EVA_PK)), ("sk".into(), s("PROFILE"))]);
        assert_eq!(get.key(), Some(&key));
        assert_eq!(get.consistent_read(), Some(true));
    }

    #[test]
    fn a_contact_round_trips_through_its_item() {
        assert_eq!(Contact::try_from(&eva_item()).expect("decodes"), eva());
        assert_eq!(Item::from(&eva()), eva_item());
    }

    #[test]
    fn consent_wa_id_and_reachability_round_trip_as_documented() {
        // GIVEN Eva with WhatsApp's own id, unreachable, opted out of marketing on one
        // business number
        let mut contact = eva();
        contact.wa_id = Some("447911123456".into());
        contact.whatsapp_reachable = Some(false);
        contact.whatsapp_reachable_at = Some("2026-11-21T10:00:00Z".into());
        contact.user_ids = ["GB.1".to_string(), "US.2".to_string()].into();
        contact.consent.insert(
            Category::Marketing,
            ConsentEntry {
                state: State::OptedOut,
                at: "2026-11-21T10:00:00Z".into(),
                source: ConsentSource::UserPreferences,
                scope: Some("106540352242922".into()),
                evidence: "wamid.1".into(),
            },
        );

        // WHEN it is written THEN consent is a map of maps of strings (DESIGN section 13)
        let item = Item::from(&contact);
        let entry = HashMap::from([
            ("state".to_string(), s("opted_out")),
            ("at".to_string(), s("2026-11-21T10:00:00Z")),
            ("source".to_string(), s("user_preferences")),
            ("scope".to_string(), s("106540352242922")),
            ("evidence".to_string(), s("wamid.1")),
        ]);
        let consent = AttributeValue::M(HashMap::from([(
            "marketing".to_string(),
            AttributeValue::M(entry),
        )]));
        assert_eq!(item.get("consent"), Some(&consent));
        assert_eq!(item.get("wa_id"), Some(&s("447911123456")));
        assert_eq!(
            item.get("whatsapp_reachable"),
            Some(&AttributeValue::Bool(false))
        );
        assert_eq!(
            item.get("user_ids"),
            Some(&AttributeValue::Ss(vec!["GB.1".into(), "US.2".into()]))
        );
        // AND read back it is the same contact
        assert_eq!(Contact::try_from(&item).expect("decodes"), contact);

        // AND an entry of a state we do not know names itself
        let mut bad = item.clone();
        let unknown = HashMap::from([
            ("state".to_string(), s("maybe")),
            ("at".to_string(), s("2026-11-21T10:00:00Z")),
            ("source".to_string(), s("api")),
            ("evidence".to_string(), s("x")),
        ]);
        bad.insert(
            "consent".into(),
            AttributeValue::M(HashMap::from([(
                "utility".to_string(),
                AttributeValue::M(unknown),
            )])),
        );
        assert_eq!(
            malformed(Contact::try_from(&bad)),
            (
                EVA_PK.into(),
                "consent.utility.state holds a value we do not know".into()
            )
        );
    }

    #[test]
    fn optional_attributes_stay_optional() {
        // GIVEN an item with none of the optional attributes
        let mut item = eva_item();
        for name in ["name", "whatsapp_opted", "lists", "attrs", "last_import_id"] {
            item.remove(name);
        }

        // WHEN it is read THEN they are absent or empty
        let contact = Contact::try_from(&item).expect("decodes");
        assert!(contact.text.is_empty() && contact.lists.is_empty() && contact.attrs.is_empty());
        assert_eq!(
            (contact.whatsapp_opted, contact.last_import_id),
            (None, None)
        );
    }

    #[test]
    fn unknown_codes_and_missing_attributes_name_the_item() {
        let cases: [(&str, Option<AttributeValue>, &str); 6] = [
            ("source", Some(s("fax")), "unknown source `fax`"),
            ("channel", Some(s("telegram")), "unknown channel `telegram`"),
            ("status", None, "missing attribute `status`"),
            ("version", None, "missing attribute `version`"),
            (
                "anonymous",
                Some(s("no")),
                "attribute `anonymous` is not a boolean (BOOL)",
            ),
            (
                "attrs",
                Some(AttributeValue::M(HashMap::from([("Plan".into(), n(3))]))),
                "attribute `attrs.Plan` is not a string (S)",
            ),
        ];
        for (name, value, problem) in cases {
            // GIVEN Eva's item with one attribute changed or removed
            let mut item = eva_item();
            match value {
                Some(value) => item.insert(name.into(), value),
                None => item.remove(name),
            };
            // WHEN it is read THEN the error names the item and the problem
            let read = Contact::try_from(&item);
            assert_eq!(malformed(read), (EVA_PK.into(), problem.into()), "{name}");
        }
    }

    #[tokio::test]
    async fn writes_go_as_partiql_statements_an_insert_for_new_an_update_under_the_version() {
        // GIVEN a table that accepts every statement
        let requests = Requests::<BatchExecuteStatementInput>::new();
        let rule = mock!(Client::batch_execute_statement)
            .match_requests(requests.recorder())
            .then_output(|| {
                let ok = BatchStatementResponse::builder().build();
                BatchExecuteStatementOutput::builder()
                    .responses(ok.clone())
                    .responses(ok)
                    .build()
            });
        let table = DynamoTable::new(mock_client!(aws_sdk_dynamodb, [&rule]), TABLE);
        let mut bo = eva();
        bo.phone = "+447400123456".into();
        bo.version = 4;

        // WHEN Eva (new) and Bo (read at version 3) are written
        let writes = [
            (eva(), Precondition::Absent),
            (bo.clone(), Precondition::Version(3)),
        ];
        let outcome = table.write_contacts(&writes).await;

        // THEN one request carries an INSERT of the whole item and an UPDATE setting
        // every other attribute where pk, sk and version are the ones read
        assert_eq!(outcome.expect("written"), vec![Applied::Written; 2]);
        let sent = requests.only();
        let statements = sent.statements();
        assert_eq!(statements.len(), 2);
        let insert = &statements[0];
        assert!(insert
            .statement()
            .starts_with("INSERT INTO \"contacts\" VALUE {'"));
        let names: Vec<&str> = insert.statement().split('\'').skip(1).step_by(2).collect();
        let inserted: Item = names
            .iter()
            .map(|name| name.to_string())
            .zip(insert.parameters().iter().cloned())
            .collect();
        assert_eq!(inserted, eva_item());
        let update = &statements[1];
        assert!(update
            .statement()
            .ends_with("WHERE \"pk\" = ? AND \"sk\" = ? AND \"version\" = ?"));
        let parameters = update.parameters();
        assert_eq!(parameters.last(), Some(&n(3)));
        let key = &parameters[parameters.len() - 3..parameters.len() - 1];
        assert_eq!(key[0], s("CONTACT#acme#whatsapp#+447400123456"));
        assert_eq!(key[1], s("PROFILE"));
        let set_names: Vec<&str> = update.statement().split('"').skip(3).step_by(2).collect();
        let set: Item = set_names
            .iter()
            .map(|name| name.to_string())
            .zip(parameters.iter().cloned())
            .take(parameters.len() - 3)
            .collect();
        let mut expected = Item::from(&bo);
        expected.retain(|name, _| name != "pk" && name != "sk");
        assert_eq!(set, expected);
        assert_eq!(
            update.return_values_on_condition_check_failure(),
            Some(&ReturnValuesOnConditionCheckFailure::AllOld)
        );
    }

    #[test]
    fn a_statement_names_each_attribute_once_and_quotes_what_it_names() {
        let rule = mock!(Client::batch_execute_statement)
            .then_output(|| BatchExecuteStatementOutput::builder().build());
        let table = DynamoTable::new(mock_client!(aws_sdk_dynamodb, [&rule]), "my\"table");
        let mut odd = eva();
        // No text field is named like one of ours; if one were, ours would win, as
        // in the item's map.
        odd.text.insert("status".into(), "text".into());
        let insert = table
            .statement(&odd, Precondition::Absent)
            .expect("statement");
        assert!(insert
            .statement()
            .starts_with("INSERT INTO \"my\"\"table\" VALUE {'"));
        assert_eq!(insert.statement().matches("'status'").count(), 1);
        let status = insert
            .statement()
            .split('\'')
            .skip(1)
            .step_by(2)
            .position(|name| name == "status")
            .expect("status named");
        assert_eq!(insert.parameters()[status], s(odd.status.as_str()));
        let update = table
            .statement(&odd, Precondition::Version(3))
            .expect("statement");
        assert!(update
            .statement()
            .starts_with("UPDATE \"my\"\"table\" SET "));
        assert_eq!(update.statement().matches("SET \"status\" = ?").count(), 1);
    }

    #[tokio::test]
    async fn each_statement_answers_on_its_own() {
        // GIVEN a table where the first create finds its key taken, the first update
        // finds another version (answering it), and the third met a transaction
        let rule = mock!(Client::batch_execute_statement).then_output(|| {
            let error = |code: BatchStatementErrorCodeEnum, item: Option<Item>| {
                BatchStatementResponse::builder()
                    .error(
                        BatchStatementError::builder()
                            .code(code)
                            .set_item(item)
                            .build(),
                    )
                    .build()
            };
            BatchExecuteStatementOutput::builder()
                .responses(error(BatchStatementErrorCodeEnum::DuplicateItem, None))
                .responses(error(
                    BatchStatementErrorCodeEnum::ConditionalCheckFailed,
                    Some(eva_item()),
                ))
                .responses(error(
                    BatchStatementErrorCodeEnum::TransactionConflict,
                    None,
                ))
                .responses(BatchStatementResponse::builder().build())
                .build()
        });
        let table = DynamoTable::new(mock_client!(aws_sdk_dynamodb, [&rule]), TABLE);
        let writes: Vec<_> = (0..4)
            .map(|i| {
                let mut c = eva();
                c.phone = format!("+44740012345{i}");
                (c, Precondition::Absent)
            })
            .collect();

        // WHEN they are written
        let outcome = table.write_contacts(&writes).await;

        // THEN each write has its own answer
        assert_eq!(
            outcome.expect("answered"),
            vec![
                Applied::Refused(None),
                Applied::Refused(Some(Box::new(eva()))),
                Applied::Retry,
                Applied::Written,
            ]
        );
    }
}
