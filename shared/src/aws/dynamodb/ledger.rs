//! [`EventLedger`]: one item per processed event, holding the answer given, so a
//! redelivered event answers the same without redoing its work. DynamoDB's TTL removes
//! it at `expires_at`.

use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::types::ReturnValuesOnConditionCheckFailure;

use super::item::{n, s, Item, Reader};
use super::DynamoTable;
use crate::aws::service;
use crate::domain::keys::{event_pk, EVENT_SK};
use crate::ports::{EventLedger, StoreError};

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
