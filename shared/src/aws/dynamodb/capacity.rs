//! The capacity meter: every DynamoDB request the adapter sends asks for
//! `ReturnConsumedCapacity = TOTAL`, and what each answer reports is added up, with
//! what DynamoDB charged but did not report (a failed condition, a cancelled
//! transaction, a batch whose every statement failed) computed as AWS documents it:
//! the larger of the item as sent and as stored, in KB rounded up, doubled in a
//! transaction (DESIGN section 9).
//!
//! An SDK interceptor rather than a line at each call: a request added later is metered
//! without anyone remembering to, and every attempt of a retried call is counted, as
//! DynamoDB counts it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use aws_sdk_dynamodb::config::interceptors::{
    AfterDeserializationInterceptorContextRef, BeforeSerializationInterceptorContextMut,
};
use aws_sdk_dynamodb::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_dynamodb::error::BoxError;
use aws_sdk_dynamodb::operation::batch_execute_statement::{
    BatchExecuteStatementInput, BatchExecuteStatementOutput,
};
use aws_sdk_dynamodb::operation::batch_get_item::{BatchGetItemInput, BatchGetItemOutput};
use aws_sdk_dynamodb::operation::batch_write_item::{BatchWriteItemInput, BatchWriteItemOutput};
use aws_sdk_dynamodb::operation::delete_item::{
    DeleteItemError, DeleteItemInput, DeleteItemOutput,
};
use aws_sdk_dynamodb::operation::get_item::{GetItemInput, GetItemOutput};
use aws_sdk_dynamodb::operation::put_item::{PutItemError, PutItemInput, PutItemOutput};
use aws_sdk_dynamodb::operation::query::{QueryInput, QueryOutput};
use aws_sdk_dynamodb::operation::scan::{ScanInput, ScanOutput};
use aws_sdk_dynamodb::operation::transact_get_items::{
    TransactGetItemsInput, TransactGetItemsOutput,
};
use aws_sdk_dynamodb::operation::transact_write_items::{
    TransactWriteItemsError, TransactWriteItemsInput, TransactWriteItemsOutput,
};
use aws_sdk_dynamodb::operation::update_item::{
    UpdateItemError, UpdateItemInput, UpdateItemOutput,
};
use aws_sdk_dynamodb::types::{AttributeValue, ConsumedCapacity, ReturnConsumedCapacity};
use aws_smithy_runtime_api::client::interceptors::context::{
    Error as ErasedError, Input as ErasedInput, Output as ErasedOutput,
};
use aws_smithy_types::config_bag::{Storable, StoreReplace};

use crate::domain::capacity::Consumed;

/// What the adapter's requests consumed so far, shared by every clone of the client.
#[derive(Clone, Debug, Default)]
pub struct Meter(Arc<Mutex<Consumed>>);

impl Meter {
    /// The total so far.
    pub fn reading(&self) -> Consumed {
        *self
            .0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn add(&self, write_units: f64, read_units: f64) {
        let mut total = self
            .0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        total.write_units += write_units;
        total.read_units += read_units;
        total.requests += 1;
    }

    /// A client whose every request is metered here.
    pub fn metered(&self, client: aws_sdk_dynamodb::Client) -> aws_sdk_dynamodb::Client {
        let config = client
            .config()
            .to_builder()
            .interceptor(Metering(self.clone()))
            .build();
        aws_sdk_dynamodb::Client::from_conf(config)
    }
}

/// The interceptor.
#[derive(Debug)]
struct Metering(Meter);

/// The write units each write of a request would cost if it failed: what DynamoDB
/// charges for it, and does not report.
#[derive(Clone, Debug)]
struct Attempted(Vec<f64>);

impl Storable for Attempted {
    type Storer = StoreReplace<Self>;
}

/// Sets `ReturnConsumedCapacity = TOTAL` on each listed input type and notes the units
/// its writes would be charged; an input of another type is left as it is.
macro_rules! ask_total {
    ($input:expr, $($type:ty => $attempt:expr),+ $(,)?) => {
        $(if let Some(input) = $input.downcast_mut::<$type>() {
            input.return_consumed_capacity = Some(ReturnConsumedCapacity::Total);
            let attempt: fn(&$type) -> Vec<f64> = $attempt;
            return Some(Attempted(attempt(input)));
        })+
    };
}

impl Intercept for Metering {
    fn name(&self) -> &'static str {
        "CapacityMeter"
    }

    fn modify_before_serialization(
        &self,
        context: &mut BeforeSerializationInterceptorContextMut<'_>,
        _: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if let Some(attempted) = ask_for_capacity(context.input_mut()) {
            cfg.interceptor_state().store_put(attempted);
        }
        Ok(())
    }

    fn read_after_deserialization(
        &self,
        context: &AfterDeserializationInterceptorContextRef<'_>,
        _: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let attempted = cfg
            .load::<Attempted>()
            .map(|a| a.0.as_slice())
            .unwrap_or(&[]);
        let (write, read) = match context.output_or_error() {
            Ok(output) => reported(output, attempted),
            Err(error) => match error.as_operation_error() {
                Some(error) => (charged_failure(error, attempted), 0.0),
                // Throttled, a server error, an unreadable answer: not charged.
                None => (0.0, 0.0),
            },
        };
        self.0.add(write, read);
        Ok(())
    }
}

/// Asks `input` for its consumed capacity; the write units of each of its writes if
/// they failed.
fn ask_for_capacity(input: &mut ErasedInput) -> Option<Attempted> {
    ask_total!(input,
        GetItemInput => |_| Vec::new(),
        QueryInput => |_| Vec::new(),
        ScanInput => |_| Vec::new(),
        BatchGetItemInput => |_| Vec::new(),
        TransactGetItemsInput => |_| Vec::new(),
        // No conditions: nothing in it can fail and be charged.
        BatchWriteItemInput => |_| Vec::new(),
        PutItemInput => |i| vec![write_units(i.item.as_ref().map_or(0, item_bytes))],
        UpdateItemInput => |i| {
            vec![write_units(i.key.as_ref().map_or(0, item_bytes)
                + i.expression_attribute_values.as_ref().map_or(0, item_bytes))]
        },
        DeleteItemInput => |i| vec![write_units(i.key.as_ref().map_or(0, item_bytes))],
        TransactWriteItemsInput => |i| {
            i.transact_items.iter().flatten().map(|action| {
                let bytes = if let Some(put) = action.put() {
                    item_bytes(put.item())
                } else if let Some(update) = action.update() {
                    item_bytes(update.key())
                        + update.expression_attribute_values().map_or(0, item_bytes)
                } else if let Some(delete) = action.delete() {
                    item_bytes(delete.key())
                } else {
                    action.condition_check().map_or(0, |check| item_bytes(check.key()))
                };
                write_units(bytes)
            }).collect()
        },
        BatchExecuteStatementInput => |i| {
            i.statements.iter().flatten().map(|statement| {
                write_units(statement.parameters().iter().map(value_bytes).sum())
            }).collect()
        },
    );
    None
}

/// Write and read units an answer reports; for a batch whose every statement failed
/// (no capacity reported, as on AWS), what its failures were charged.
fn reported(output: &ErasedOutput, attempted: &[f64]) -> (f64, f64) {
    macro_rules! units_of {
        ($($type:ty => $writes:expr),+ $(,)?) => {
            $(if let Some(output) = output.downcast_ref::<$type>() {
                return split(output.consumed_capacity(), $writes);
            })+
        };
    }
    if let Some(batch) = output.downcast_ref::<BatchExecuteStatementOutput>() {
        if batch.consumed_capacity().is_empty() {
            let failed = batch
                .responses()
                .iter()
                .enumerate()
                .filter_map(|(i, response)| {
                    let error = response.error()?;
                    Some(charged(attempted.get(i), error.item()))
                });
            return (failed.sum(), 0.0);
        }
        return split(batch.consumed_capacity(), true);
    }
    units_of!(
        GetItemOutput => false,
        QueryOutput => false,
        ScanOutput => false,
        BatchGetItemOutput => false,
        TransactGetItemsOutput => false,
        PutItemOutput => true,
        UpdateItemOutput => true,
        DeleteItemOutput => true,
        BatchWriteItemOutput => true,
        TransactWriteItemsOutput => true,
    );
    (0.0, 0.0)
}

/// Write and read units of reported capacities; `CapacityUnits` counts as writes for
/// a write and as reads for a read when the split is not given.
fn split<'a>(
    capacities: impl IntoIterator<Item = &'a ConsumedCapacity>,
    write: bool,
) -> (f64, f64) {
    capacities.into_iter().fold((0.0, 0.0), |(w, r), c| {
        let total = c.capacity_units().unwrap_or(0.0);
        let (default_w, default_r) = if write { (total, 0.0) } else { (0.0, total) };
        (
            w + c.write_capacity_units().unwrap_or(default_w),
            r + c.read_capacity_units().unwrap_or(default_r),
        )
    })
}

/// The write units a refused write was charged: failed conditions and cancelled
/// transactions are charged, and not reported.
fn charged_failure(error: &ErasedError, attempted: &[f64]) -> f64 {
    if let Some(PutItemError::ConditionalCheckFailedException(e)) = error.downcast_ref() {
        return charged(attempted.first(), e.item());
    }
    if let Some(UpdateItemError::ConditionalCheckFailedException(e)) = error.downcast_ref() {
        return charged(attempted.first(), e.item());
    }
    if let Some(DeleteItemError::ConditionalCheckFailedException(e)) = error.downcast_ref() {
        return charged(attempted.first(), e.item());
    }
    if let Some(TransactWriteItemsError::TransactionCanceledException(e)) = error.downcast_ref() {
        let reasons = e.cancellation_reasons();
        let each = attempted
            .iter()
            .enumerate()
            .map(|(i, sent)| charged(Some(sent), reasons.get(i).and_then(|r| r.item())));
        return 2.0 * each.sum::<f64>();
    }
    0.0
}

/// The larger of the write as sent and the item as stored, at least one unit.
fn charged(sent: Option<&f64>, stored: Option<&HashMap<String, AttributeValue>>) -> f64 {
    let stored = stored.map_or(0.0, |item| write_units(item_bytes(item)));
    sent.copied().unwrap_or(1.0).max(stored).max(1.0)
}

/// Write units of a write of `bytes`: one per KB, rounded up, at least one.
fn write_units(bytes: usize) -> f64 {
    bytes.div_ceil(1024).max(1) as f64
}

/// An item's size as DynamoDB counts it: names and values.
pub(super) fn item_bytes(item: &HashMap<String, AttributeValue>) -> usize {
    item.iter()
        .map(|(name, value)| name.len() + value_bytes(value))
        .sum()
}

fn value_bytes(value: &AttributeValue) -> usize {
    // A number takes about a byte per two significant digits, plus one.
    let number = |n: &String| n.len() / 2 + 1;
    match value {
        AttributeValue::S(s) => s.len(),
        AttributeValue::N(n) => number(n),
        AttributeValue::B(b) => b.as_ref().len(),
        AttributeValue::Ss(set) => set.iter().map(String::len).sum(),
        AttributeValue::Ns(set) => set.iter().map(number).sum(),
        AttributeValue::Bs(set) => set.iter().map(|b| b.as_ref().len()).sum(),
        AttributeValue::L(list) => 3 + list.iter().map(|v| 1 + value_bytes(v)).sum::<usize>(),
        AttributeValue::M(map) => {
            3 + map
                .iter()
                .map(|(k, v)| 1 + k.len() + value_bytes(v))
                .sum::<usize>()
        }
        _ => 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(text: &str) -> AttributeValue {
        AttributeValue::S(text.into())
    }

    #[test]
    fn sizes_round_up_per_kilobyte_and_a_write_costs_at_least_one_unit() {
        let small = HashMap::from([("pk".to_string(), s("CONTACT#a#sms#+1"))]);
        assert_eq!(write_units(item_bytes(&small)), 1.0);
        let big = HashMap::from([("notes".to_string(), s(&"x".repeat(2100)))]);
        assert_eq!(write_units(item_bytes(&big)), 3.0);
        assert_eq!(
            charged(Some(&1.0), Some(&big)),
            3.0,
            "the stored item is larger"
        );
        assert_eq!(charged(Some(&2.0), None), 2.0);
        assert_eq!(charged(None, None), 1.0);
    }

    #[test]
    fn reported_capacity_splits_into_writes_and_reads() {
        let write = ConsumedCapacity::builder().capacity_units(2.0).build();
        let read = ConsumedCapacity::builder()
            .capacity_units(1.5)
            .read_capacity_units(1.5)
            .build();
        assert_eq!(split([&write], true), (2.0, 0.0));
        assert_eq!(split([&read], false), (0.0, 1.5));
        assert_eq!(split(None, false), (0.0, 0.0));
    }
}
