//! [`EventLedger`]: one item per processed event, holding the answer given, so a
//! redelivered event answers the same without redoing its work. DynamoDB's TTL removes
//! it at `expires_at`.

use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::types::{
    BatchStatementErrorCodeEnum, BatchStatementRequest, PutRequest,
    ReturnValuesOnConditionCheckFailure, WriteRequest,
};

use super::item::{build_error, n, s, Item, Reader};
use super::DynamoTable;
use crate::aws::service;
use crate::domain::keys::{event_pk, EVENT_SK};
use crate::ports::{backoff, EventLedger, LedgerEntry, StoreError};

/// DynamoDB's limit of statements in one `BatchExecuteStatement`, and of writes in one
/// `BatchWriteItem`.
const PER_BATCH: usize = 25;
/// How many times a `BatchWriteItem`'s unprocessed writes are sent again.
const MAX_WRITE_ROUNDS: u32 = 8;

/// Condition of a first record: the event was never recorded.
const UNSEEN: &str = "attribute_not_exists(pk)";

/// The item recording `event_key` with `answer`.
fn event_item(account_id: &str, event_key: &str, answer: &str, expires_at: i64) -> Item {
    [
        ("pk", s(event_pk(account_id, event_key))),
        ("sk", s(EVENT_SK)),
        ("answer", s(answer)),
        ("expires_at", n(expires_at)),
    ]
    .into_iter()
    .map(|(name, value)| (name.to_string(), value))
    .collect()
}

impl EventLedger for DynamoTable {
    async fn record_event(
        &self,
        account_id: &str,
        event_key: &str,
        answer: &str,
        expires_at: i64,
    ) -> Result<Option<String>, StoreError> {
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(event_item(account_id, event_key, answer, expires_at)))
            .condition_expression(UNSEEN)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        match result.map_err(|e| e.into_service_error()) {
            Ok(_) => Ok(None),
            Err(PutItemError::ConditionalCheckFailedException(seen)) => match seen.item {
                Some(item) => Ok(Some(Reader::new(&item).string("answer")?.to_string())),
                // Recorded, but DynamoDB sent no item back: an answer no event parses,
                // so the work is done again (it is idempotent).
                None => Ok(Some("{}".to_string())),
            },
            Err(other) => Err(service("DynamoDB PutItem (event)")(other)),
        }
    }

    async fn store_answer(
        &self,
        account_id: &str,
        event_key: &str,
        answer: &str,
        expires_at: i64,
    ) -> Result<(), StoreError> {
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(event_item(account_id, event_key, answer, expires_at)))
            .send()
            .await
            .map_err(|e| service("DynamoDB PutItem (event)")(e.into_service_error()))?;
        Ok(())
    }

    /// `INSERT`s, 25 to a `BatchExecuteStatement` (each on its own, at a single write's
    /// price). An event already recorded (`DuplicateItem`) has its answer read in one
    /// strongly consistent batch read; a statement throttled is recorded on its own.
    async fn record_events(
        &self,
        entries: &[LedgerEntry],
    ) -> Result<Vec<Option<String>>, StoreError> {
        let mut previous = vec![None; entries.len()];
        let mut seen = Vec::new();
        let table = self.table.replace('"', "\"\"");
        let insert = format!(
            "INSERT INTO \"{table}\" VALUE {{'pk': ?, 'sk': ?, 'answer': ?, 'expires_at': ?}}"
        );
        for (c, chunk) in entries.chunks(PER_BATCH).enumerate() {
            let statements = chunk
                .iter()
                .map(|e| {
                    let item = event_item(&e.account_id, &e.event_key, &e.answer, e.expires_at);
                    let parameters = ["pk", "sk", "answer", "expires_at"]
                        .iter()
                        .filter_map(|name| item.get(*name).cloned())
                        .collect();
                    BatchStatementRequest::builder()
                        .statement(&insert)
                        .set_parameters(Some(parameters))
                        .build()
                        .map_err(build_error)
                })
                .collect::<Result<Vec<_>, _>>()?;
            let responses = self
                .execute_statements(statements, "DynamoDB BatchExecuteStatement (events)")
                .await?;
            for (i, (e, response)) in chunk.iter().zip(&responses).enumerate() {
                let at = c * PER_BATCH + i;
                match response.error().map(|error| error.code()) {
                    None => {}
                    Some(Some(BatchStatementErrorCodeEnum::DuplicateItem)) => seen.push(at),
                    // Throttled, or another code: recorded on its own (its own error then).
                    Some(_) => {
                        previous[at] = self
                            .record_event(&e.account_id, &e.event_key, &e.answer, e.expires_at)
                            .await?;
                    }
                }
            }
        }
        if !seen.is_empty() {
            let keys = seen
                .iter()
                .map(|&at| {
                    let e = &entries[at];
                    Item::from([
                        ("pk".to_string(), s(event_pk(&e.account_id, &e.event_key))),
                        ("sk".to_string(), s(EVENT_SK)),
                    ])
                })
                .collect();
            let items = self
                .batch_get_as(keys, None, true, "DynamoDB BatchGetItem (events)")
                .await?;
            for at in seen {
                let e = &entries[at];
                let pk = event_pk(&e.account_id, &e.event_key);
                let item = items
                    .iter()
                    .find(|item| item.get("pk").and_then(|v| v.as_s().ok()) == Some(&pk));
                // Recorded, then gone (expired) before the read: an answer no event
                // parses, so the work is done again (it is idempotent).
                previous[at] = Some(match item {
                    Some(item) => Reader::new(item).string("answer")?.to_string(),
                    None => "{}".to_string(),
                });
            }
        }
        Ok(previous)
    }

    /// Puts, 25 to a `BatchWriteItem`; what DynamoDB leaves unprocessed is sent again.
    async fn store_answers(&self, entries: &[LedgerEntry]) -> Result<(), StoreError> {
        for chunk in entries.chunks(PER_BATCH) {
            let mut pending: Vec<WriteRequest> = chunk
                .iter()
                .map(|e| {
                    let item = event_item(&e.account_id, &e.event_key, &e.answer, e.expires_at);
                    let put = PutRequest::builder()
                        .set_item(Some(item))
                        .build()
                        .map_err(build_error)?;
                    Ok(WriteRequest::builder().put_request(put).build())
                })
                .collect::<Result<_, StoreError>>()?;
            for round in 0..MAX_WRITE_ROUNDS {
                let out = self
                    .client
                    .batch_write_item()
                    .request_items(&self.table, std::mem::take(&mut pending))
                    .send()
                    .await
                    .map_err(|e| {
                        service("DynamoDB BatchWriteItem (events)")(e.into_service_error())
                    })?;
                pending = out
                    .unprocessed_items()
                    .and_then(|u| u.get(&self.table))
                    .cloned()
                    .unwrap_or_default();
                if pending.is_empty() {
                    break;
                }
                tokio::time::sleep(backoff(round)).await;
            }
            if !pending.is_empty() {
                return Err(StoreError::Service {
                    operation: "DynamoDB BatchWriteItem (events)",
                    source: format!(
                        "{} answers still unprocessed after {MAX_WRITE_ROUNDS} rounds",
                        pending.len()
                    )
                    .into(),
                });
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use aws_sdk_dynamodb::operation::put_item::PutItemInput;
    use aws_sdk_dynamodb::Client;
    use aws_smithy_mocks::{mock, mock_client};

    use super::*;
    use crate::aws::dynamodb::testing::{malformed, refused, Requests, TABLE};

    const ANSWER: &str = r#"{"contact":"existing","pk":"CONTACT#acme#whatsapp#+447911123456"}"#;

    #[tokio::test]
    async fn an_event_already_recorded_answers_as_recorded() {
        // GIVEN the event was recorded with an answer: the put's condition fails and
        // DynamoDB returns the stored item
        let requests = Requests::<PutItemInput>::new();
        let rule = mock!(Client::put_item)
            .match_requests(requests.recorder())
            .then_error(|| refused(Some(event_item("acme", "wamid.1", ANSWER, 1_800_000_000))));
        let table = DynamoTable::new(mock_client!(aws_sdk_dynamodb, [&rule]), TABLE);

        // WHEN it is recorded again
        let previous = table
            .record_event("acme", "wamid.1", "pending", 1_800_086_400)
            .await;

        // THEN the first answer comes back
        assert_eq!(previous.expect("answered").as_deref(), Some(ANSWER));
        // AND the put was the conditional one, asking for the stored item
        let put = requests.only();
        assert_eq!(put.table_name(), Some(TABLE));
        assert_eq!(
            put.item(),
            Some(&event_item("acme", "wamid.1", "pending", 1_800_086_400))
        );
        let pk = put.item().and_then(|item| item.get("pk")).cloned();
        assert_eq!(pk, Some(s("EVENT#acme#wamid.1")));
        assert_eq!(put.condition_expression(), Some("attribute_not_exists(pk)"));
        assert_eq!(
            put.return_values_on_condition_check_failure(),
            Some(&ReturnValuesOnConditionCheckFailure::AllOld)
        );
    }

    fn entry(key: &str) -> LedgerEntry {
        LedgerEntry {
            account_id: "acme".into(),
            event_key: key.into(),
            answer: "pending".into(),
            expires_at: 1_800_086_400,
        }
    }

    #[tokio::test]
    async fn events_are_recorded_in_one_request_and_a_seen_ones_answer_read_at_once() {
        // GIVEN a table where the second of three events was recorded before
        use aws_sdk_dynamodb::operation::batch_execute_statement::{
            BatchExecuteStatementInput, BatchExecuteStatementOutput,
        };
        use aws_sdk_dynamodb::operation::batch_get_item::{BatchGetItemInput, BatchGetItemOutput};
        use aws_sdk_dynamodb::types::{BatchStatementError, BatchStatementResponse};
        let inserts = Requests::<BatchExecuteStatementInput>::new();
        let insert_rule = mock!(Client::batch_execute_statement)
            .match_requests(inserts.recorder())
            .then_output(|| {
                let ok = BatchStatementResponse::builder().build();
                let seen = BatchStatementResponse::builder()
                    .error(
                        BatchStatementError::builder()
                            .code(BatchStatementErrorCodeEnum::DuplicateItem)
                            .build(),
                    )
                    .build();
                BatchExecuteStatementOutput::builder()
                    .responses(ok.clone())
                    .responses(seen)
                    .responses(ok)
                    .build()
            });
        let reads = Requests::<BatchGetItemInput>::new();
        let read_rule = mock!(Client::batch_get_item)
            .match_requests(reads.recorder())
            .then_output(|| {
                BatchGetItemOutput::builder()
                    .responses(TABLE, vec![event_item("acme", "msg:b", ANSWER, 1)])
                    .build()
            });
        let client = mock_client!(aws_sdk_dynamodb, [&insert_rule, &read_rule]);
        let table = DynamoTable::new(client, TABLE);

        // WHEN the three are recorded
        let entries = [entry("msg:a"), entry("msg:b"), entry("msg:c")];
        let previous = table.record_events(&entries).await.expect("recorded");

        // THEN one request inserted all three, each as its own statement, and the seen
        // one's answer was read, strongly consistent
        assert_eq!(previous, vec![None, Some(ANSWER.to_string()), None]);
        let sent = inserts.only();
        assert_eq!(sent.statements().len(), 3);
        for (statement, e) in sent.statements().iter().zip(&entries) {
            assert_eq!(
                statement.statement(),
                "INSERT INTO \"contacts\" VALUE {'pk': ?, 'sk': ?, 'answer': ?, 'expires_at': ?}"
            );
            let item = event_item("acme", &e.event_key, "pending", 1_800_086_400);
            assert_eq!(
                statement.parameters(),
                &[
                    item["pk"].clone(),
                    item["sk"].clone(),
                    item["answer"].clone(),
                    item["expires_at"].clone()
                ]
            );
        }
        let read = reads.only();
        let keys = read
            .request_items()
            .and_then(|r| r.get(TABLE))
            .expect("keys");
        assert_eq!(keys.consistent_read(), Some(true));
        assert_eq!(keys.keys().len(), 1);
        assert_eq!(keys.keys()[0]["pk"], s("EVENT#acme#msg:b"));
    }

    #[tokio::test]
    async fn answers_are_stored_in_one_request_and_what_is_left_unprocessed_again() {
        // GIVEN a table that leaves one of two puts unprocessed the first time
        use aws_sdk_dynamodb::operation::batch_write_item::{
            BatchWriteItemInput, BatchWriteItemOutput,
        };
        let requests = Requests::<BatchWriteItemInput>::new();
        let leftover = event_item("acme", "msg:b", "{}", 1);
        let first = mock!(Client::batch_write_item)
            .match_requests(requests.recorder())
            .then_output(move || {
                let put = PutRequest::builder()
                    .set_item(Some(leftover.clone()))
                    .build()
                    .expect("a put");
                BatchWriteItemOutput::builder()
                    .unprocessed_items(
                        TABLE,
                        vec![WriteRequest::builder().put_request(put).build()],
                    )
                    .build()
            });
        let second = mock!(Client::batch_write_item)
            .match_requests(requests.recorder())
            .then_output(|| BatchWriteItemOutput::builder().build());
        let client = mock_client!(
            aws_sdk_dynamodb,
            aws_smithy_mocks::RuleMode::Sequential,
            [&first, &second]
        );
        let table = DynamoTable::new(client, TABLE);

        // WHEN two answers are stored
        let mut entries = [entry("msg:a"), entry("msg:b")];
        for e in &mut entries {
            e.answer = "{}".into();
        }
        table.store_answers(&entries).await.expect("stored");

        // THEN the first request put both, the second the one left over
        let sent = requests.all();
        assert_eq!(sent.len(), 2);
        let puts = |i: usize| {
            sent[i]
                .request_items()
                .and_then(|r| r.get(TABLE))
                .map_or(0, Vec::len)
        };
        assert_eq!((puts(0), puts(1)), (2, 1));
    }

    #[tokio::test]
    async fn a_recorded_event_without_an_answer_is_malformed() {
        // GIVEN a stored event item that lost its answer
        let mut item = event_item("acme", "wamid.1", ANSWER, 1_800_000_000);
        item.remove("answer");
        let rule = mock!(Client::put_item).then_error(move || refused(Some(item.clone())));
        let table = DynamoTable::new(mock_client!(aws_sdk_dynamodb, [&rule]), TABLE);

        // WHEN the event is recorded again THEN the error names the item
        let previous = table.record_event("acme", "wamid.1", "pending", 1).await;
        assert_eq!(
            malformed(previous),
            (
                "EVENT#acme#wamid.1".into(),
                "missing attribute `answer`".into()
            )
        );
    }
}
