//! The DynamoDB adapter: one table (DESIGN section 9) holding four kinds of item, each
//! behind its own port and in its own file.
//!
//! | file | port | item |
//! |---|---|---|
//! | `by_account.rs` | [`AccountContacts`](crate::ports::AccountContacts), [`ContactRemoval`](crate::ports::ContactRemoval) | contacts through GSI `by_account`, a page of a shard per Query; an undo's conditional deletes |
//! | `contacts.rs` | [`ContactStore`](crate::ports::ContactStore) | `CONTACT#…` / `PROFILE`: the conditional writes |
//! | `jobs.rs` | [`JobStore`](crate::ports::JobStore) | `IMPORT#…` / `JOB`: the claim and progress |
//! | `history.rs` | [`ImportHistory`](crate::ports::ImportHistory) | `ACCOUNT#…` / `IMPORT#{started_at}#{import_id}`: an account's imports, newest first |
//! | `settings.rs` | [`SettingsStore`](crate::ports::SettingsStore) | `ACCOUNT#…` / `SETTINGS` |
//! | `ledger.rs` | [`EventLedger`](crate::ports::EventLedger) | `EVENT#…` / `SEEN` |
//! | `identities.rs` | [`Identities`](crate::ports::Identities) | `WABA#…` / `ACCOUNT` (a business number's account), `ALIAS#…` / `CONTACT` (BSUIDs); contacts by candidate keys |
//! | `suppressions.rs` | [`Suppressions`](crate::ports::Suppressions) | `SUPPRESS#…` / `SUPPRESS`: erasure tombstones |
//!
//! Each file maps its domain type to an item (`From<&Contact> for Item`) and back
//! (`TryFrom<&Item>`). Reading is strict (`item.rs`): an attribute we always write that
//! is missing, of the wrong type, or holding a code we do not know is
//! [`StoreError::Malformed`](crate::ports::StoreError::Malformed) naming the item, never
//! a silent default. Keys come from [`crate::domain::keys`].

mod by_account;
mod capacity;
mod contacts;
mod history;
mod identities;
mod item;
mod jobs;
mod ledger;
mod settings;
mod suppressions;
#[cfg(test)]
mod testing;

/// DynamoDB adapter: contacts, jobs, settings and processed events in one table.
#[derive(Clone, Debug)]
pub struct DynamoTable {
    client: aws_sdk_dynamodb::Client,
    table: String,
    meter: capacity::Meter,
    /// Business numbers' accounts already read (`identities.rs`).
    numbers: identities::NumberCache,
}

impl DynamoTable {
    /// Wraps a client for `table`; every request it sends from here on is metered
    /// ([`CapacityMeter`](crate::ports::CapacityMeter)).
    pub fn new(client: aws_sdk_dynamodb::Client, table: impl Into<String>) -> DynamoTable {
        let meter = capacity::Meter::default();
        DynamoTable {
            client: meter.metered(client),
            table: table.into(),
            meter,
            numbers: identities::NumberCache::default(),
        }
    }
}

impl crate::ports::CapacityMeter for DynamoTable {
    fn consumed(&self) -> crate::domain::capacity::Consumed {
        self.meter.reading()
    }
}

/// Rounds of `BatchGetItem` for keys DynamoDB left unprocessed (throttling).
const MAX_BATCH_GET_ROUNDS: u32 = 8;

impl DynamoTable {
    /// The items of `keys` (at most 100) that exist, read consistently in one
    /// `BatchGetItem` ([`DynamoTable::batch_get_as`]).
    async fn batch_get(
        &self,
        keys: Vec<item::Item>,
        projection: Option<&str>,
        operation: &'static str,
    ) -> Result<Vec<item::Item>, crate::ports::StoreError> {
        self.batch_get_as(keys, projection, true, operation).await
    }

    /// The items of `keys` (at most 100) that exist, in one `BatchGetItem`, sending
    /// again what DynamoDB left unprocessed after a backoff; only the `projection`'s
    /// attributes when given; strongly consistent or not (half the read units).
    /// Repeated keys are read once.
    async fn batch_get_as(
        &self,
        keys: Vec<item::Item>,
        projection: Option<&str>,
        consistent: bool,
        operation: &'static str,
    ) -> Result<Vec<item::Item>, crate::ports::StoreError> {
        // DynamoDB refuses a request that names one key twice.
        let mut seen = std::collections::HashSet::new();
        let text = |k: &item::Item, name: &str| {
            k.get(name)
                .and_then(|v| v.as_s().ok())
                .cloned()
                .unwrap_or_default()
        };
        let mut pending: Vec<item::Item> = keys
            .into_iter()
            .filter(|k| seen.insert((text(k, "pk"), text(k, "sk"))))
            .collect();
        let mut found = Vec::new();
        for round in 0..MAX_BATCH_GET_ROUNDS {
            if pending.is_empty() {
                break;
            }
            let request = aws_sdk_dynamodb::types::KeysAndAttributes::builder()
                .set_keys(Some(std::mem::take(&mut pending)))
                .consistent_read(consistent)
                .set_projection_expression(projection.map(str::to_string))
                .build()
                .map_err(item::build_error)?;
            let out = self
                .client
                .batch_get_item()
                .request_items(&self.table, request)
                .send()
                .await
                .map_err(|e| crate::aws::service(operation)(e.into_service_error()))?;
            if let Some(items) = out.responses().and_then(|r| r.get(&self.table)) {
                found.extend(items.iter().cloned());
            }
            pending = item::unprocessed(out.unprocessed_keys(), &self.table);
            if !pending.is_empty() {
                tokio::time::sleep(crate::ports::backoff(round)).await;
            }
        }
        if !pending.is_empty() {
            return Err(crate::ports::StoreError::Service {
                operation,
                source: format!(
                    "{} keys still unprocessed after {MAX_BATCH_GET_ROUNDS} rounds",
                    pending.len()
                )
                .into(),
            });
        }
        Ok(found)
    }

    /// Sends `statements` (at most 25) in one `BatchExecuteStatement`, each applied on
    /// its own at a single statement's price; their answers, one per statement and in
    /// order (anything else is an error of `operation`).
    async fn execute_statements(
        &self,
        statements: Vec<aws_sdk_dynamodb::types::BatchStatementRequest>,
        operation: &'static str,
    ) -> Result<Vec<aws_sdk_dynamodb::types::BatchStatementResponse>, crate::ports::StoreError>
    {
        let sent = statements.len();
        let out = self
            .client
            .batch_execute_statement()
            .set_statements(Some(statements))
            .send()
            .await
            .map_err(|e| crate::aws::service(operation)(e.into_service_error()))?;
        let responses = out.responses.unwrap_or_default();
        if responses.len() != sent {
            return Err(crate::ports::StoreError::Service {
                operation,
                source: format!("{} answers to {sent} statements", responses.len()).into(),
            });
        }
        Ok(responses)
    }

    /// Makes `items` in one transaction: `false` when a condition failed or another
    /// transaction held one of the items (nothing was written; the caller reads again
    /// and decides again), an error for anything else.
    async fn transact_conditionally(
        &self,
        items: Vec<aws_sdk_dynamodb::types::TransactWriteItem>,
        operation: &'static str,
    ) -> Result<bool, crate::ports::StoreError> {
        use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
        let result = self
            .client
            .transact_write_items()
            .set_transact_items(Some(items))
            .send()
            .await;
        match result.map_err(|e| e.into_service_error()) {
            Ok(_) => Ok(true),
            Err(TransactWriteItemsError::TransactionCanceledException(cancelled))
                if cancelled.cancellation_reasons().iter().any(|r| {
                    matches!(
                        r.code(),
                        Some("ConditionalCheckFailed" | "TransactionConflict")
                    )
                }) =>
            {
                Ok(false)
            }
            Err(other) => Err(crate::aws::service(operation)(other)),
        }
    }
}
