//! [`JobStore`]: the job item of one import. A claim is one conditional put, so a
//! duplicate S3 event never imports twice, and a job whose owner died (its lease ran
//! out) is taken over where it stopped. Each job is indexed under its account
//! (`history.rs`) for `imports.list`.

use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use std::collections::HashMap;

use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue, ReturnValuesOnConditionCheckFailure};

use super::history::index_item;
use super::item::{counts, n, parse_code, s, Item, Reader};
use super::DynamoTable;
use crate::aws::service;
use crate::domain::capacity::Consumed;
use crate::domain::keys::{job_pk, JOB_SK};
use crate::domain::outcome::{ImportStatus, RowCounts};
use crate::domain::phone::PhoneRejection;
use crate::domain::validate::WarningCode;
use crate::ports::{Claim, Job, JobProgress, JobStore, StoreError};

/// Condition of a claim: no job yet, or a running one whose lease expired.
const CLAIMABLE: &str =
    "attribute_not_exists(pk) OR (#status = :running AND lease_expires_at < :now)";

/// Condition of every later write of the job: the writer still holds it.
const HELD: &str = "lease_token = :token";
/// `completion_event` of a finished job whose event is not published yet.
const PENDING: &str = "pending";
/// Condition of taking over a completion event: still pending, its owner's lease over.
const COMPLETION_ORPHANED: &str = "completion_event = :pending AND lease_expires_at < :now";

/// The `rows` map's counts by name.
fn row_counts(rows: &RowCounts) -> [(&'static str, u64); 8] {
    [
        ("total", rows.total),
        ("created", rows.created),
        ("updated", rows.updated),
        ("unchanged", rows.unchanged),
        ("skipped_existing", rows.skipped_existing),
        ("skipped_new", rows.skipped_new),
        ("duplicate_in_file", rows.duplicate_in_file),
        ("rejected", rows.rejected),
    ]
}

/// The job's item, stamped `updated_at`.
pub(super) fn job_item(job: &Job, updated_at: String) -> Item {
    let progress = &job.progress;
    let rejections = progress.rejections_by_reason.iter();
    let warnings = progress.warnings_by_code.iter();
    let attributes = [
        ("pk", s(job_pk(&job.account_id, &job.import_id))),
        ("sk", s(JOB_SK)),
        ("account_id", s(&job.account_id)),
        ("import_id", s(&job.import_id)),
        ("status", s(job.status.as_str())),
        ("rows", counts(row_counts(&progress.rows))),
        (
            "rejections_by_reason",
            counts(rejections.map(|(reason, count)| (reason.code(), *count))),
        ),
        (
            "warnings_by_code",
            counts(warnings.map(|(code, count)| (code.code(), *count))),
        ),
        ("last_row", n(progress.last_row)),
        ("report_parts", n(progress.report_parts)),
        (
            "consumed",
            AttributeValue::M(HashMap::from([
                ("write_units".to_string(), n(progress.consumed.write_units)),
                ("read_units".to_string(), n(progress.consumed.read_units)),
                ("requests".to_string(), n(progress.consumed.requests)),
            ])),
        ),
        ("summary_key", s(&job.summary_key)),
        ("source_key", s(&job.source_key)),
        ("started_at", s(&job.started_at)),
        ("updated_at", s(updated_at)),
        ("lease_expires_at", n(job.lease_expires_at)),
        ("lease_token", s(&job.lease_token)),
    ];
    let pending = job
        .completion_pending
        .then(|| ("completion_event", s(PENDING)));
    let finished_at = job.finished_at.as_ref().map(|at| ("finished_at", s(at)));
    attributes
        .into_iter()
        .chain(pending)
        .chain(finished_at)
        .map(|(name, value)| (name.to_string(), value))
        .collect()
}

/// The capacity recorded so far; nothing for jobs written before it was recorded.
fn consumed(item: &Item) -> Result<Consumed, StoreError> {
    let Some(value) = item.get("consumed") else {
        return Ok(Consumed::default());
    };
    let malformed = |problem: &str| StoreError::Malformed {
        pk: item
            .get("pk")
            .and_then(|v| v.as_s().ok())
            .cloned()
            .unwrap_or_default(),
        problem: format!("consumed: {problem}"),
    };
    let map = value.as_m().map_err(|_| malformed("not a map (M)"))?;
    let number = |name: &str| -> Result<&str, StoreError> {
        map.get(name)
            .and_then(|v| v.as_n().ok())
            .map(String::as_str)
            .ok_or_else(|| malformed(&format!("{name} is missing or not a number")))
    };
    let units = |name: &str| {
        number(name)?
            .parse::<f64>()
            .map_err(|_| malformed(&format!("{name} is not a number")))
    };
    Ok(Consumed {
        write_units: units("write_units")?,
        read_units: units("read_units")?,
        requests: number("requests")?
            .parse()
            .map_err(|_| malformed("requests is not a whole number"))?,
    })
}

fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

impl TryFrom<&Item> for Job {
    type Error = StoreError;

    /// Strict: every attribute must be there, the status and every count's code known.
    fn try_from(item: &Item) -> Result<Job, StoreError> {
        let read = Reader::new(item);
        Ok(Job {
            account_id: read.string("account_id")?.to_string(),
            import_id: read.string("import_id")?.to_string(),
            status: read.code("status", parse_code::<ImportStatus>)?,
            progress: JobProgress {
                rows: rows(&read)?,
                rejections_by_reason: read
                    .counts("rejections_by_reason", parse_code::<PhoneRejection>)?,
                warnings_by_code: read.counts("warnings_by_code", parse_code::<WarningCode>)?,
                last_row: read.number("last_row")?,
                // Jobs written before parts and tokens existed have neither.
                report_parts: match item.contains_key("report_parts") {
                    true => read.number("report_parts")?,
                    false => 0,
                },
                consumed: consumed(item)?,
            },
            summary_key: read.string("summary_key")?.to_string(),
            source_key: read.string("source_key")?.to_string(),
            started_at: read.string("started_at")?.to_string(),
            finished_at: read.optional_string("finished_at")?.map(str::to_string),
            lease_expires_at: read.number("lease_expires_at")?,
            lease_token: read
                .optional_string("lease_token")?
                .unwrap_or_default()
                .to_string(),
            completion_pending: read.optional_string("completion_event")? == Some(PENDING),
        })
    }
}

/// The `rows` map: each count of [`row_counts`], and nothing else.
fn rows(read: &Reader<'_>) -> Result<RowCounts, StoreError> {
    let names = row_counts(&RowCounts::default()).map(|(name, _)| name);
    let known = |name: &str| names.contains(&name).then(|| name.to_string());
    let mut counts = read.counts("rows", known)?;
    let mut take = |name: &str| {
        counts
            .remove(name)
            .ok_or_else(|| read.malformed(format!("missing count `rows.{name}`")))
    };
    Ok(RowCounts {
        total: take("total")?,
        created: take("created")?,
        updated: take("updated")?,
        unchanged: take("unchanged")?,
        skipped_existing: take("skipped_existing")?,
        // Absent from the items of jobs started before `on-new` existed.
        skipped_new: take("skipped_new").unwrap_or(0),
        duplicate_in_file: take("duplicate_in_file")?,
        rejected: take("rejected")?,
    })
}

impl JobStore for DynamoTable {
    async fn claim_job(&self, job: &Job, now: i64) -> Result<Claim, StoreError> {
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(job_item(job, now_rfc3339())))
            .condition_expression(CLAIMABLE)
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":running", s(ImportStatus::Running.as_str()))
            .expression_attribute_values(":now", n(now))
            .return_values(ReturnValue::AllOld)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        match result.map_err(|e| e.into_service_error()) {
            Ok(out) => match out.attributes() {
                Some(old) if !old.is_empty() => Ok(Claim::TakenOver(Box::new(Job::try_from(old)?))),
                _ => Ok(Claim::Started),
            },
            Err(PutItemError::ConditionalCheckFailedException(refused)) => {
                refused_claim(job, refused.item.as_ref())
            }
            Err(other) => Err(service("DynamoDB PutItem (job)")(other)),
        }
    }

    async fn save_job(&self, job: &Job) -> Result<(), StoreError> {
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(job_item(job, now_rfc3339())))
            .condition_expression(HELD)
            .expression_attribute_values(":token", s(&job.lease_token))
            .send()
            .await;
        match result.map_err(|e| e.into_service_error()) {
            Ok(_) => Ok(()),
            Err(PutItemError::ConditionalCheckFailedException(_)) => Err(lease_lost(job)),
            Err(other) => Err(service("DynamoDB PutItem (job)")(other)),
        }
    }

    async fn renew_lease(&self, job: &Job, until: i64) -> Result<(), StoreError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(job_pk(&job.account_id, &job.import_id)))
            .key("sk", s(JOB_SK))
            .update_expression("SET lease_expires_at = :until, updated_at = :now")
            .condition_expression(HELD)
            .expression_attribute_values(":until", n(until))
            .expression_attribute_values(":now", s(now_rfc3339()))
            .expression_attribute_values(":token", s(&job.lease_token))
            .send()
            .await;
        match result.map_err(|e| e.into_service_error()) {
            Ok(_) => Ok(()),
            Err(UpdateItemError::ConditionalCheckFailedException(_)) => Err(lease_lost(job)),
            Err(other) => Err(service("DynamoDB UpdateItem (job lease)")(other)),
        }
    }

    /// One unconditional PutItem of the index item (about 100 bytes: one write unit).
    /// Not in the claim's request: a transaction would double the price of both writes
    /// and could not answer the taken-over job (`ALL_OLD`) the claim needs.
    async fn index_job(&self, job: &Job) -> Result<(), StoreError> {
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(index_item(job)))
            .send()
            .await
            .map_err(|e| service("DynamoDB PutItem (import index)")(e.into_service_error()))?;
        Ok(())
    }

    async fn claim_completion(&self, job: &Job, now: i64) -> Result<bool, StoreError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(job_pk(&job.account_id, &job.import_id)))
            .key("sk", s(JOB_SK))
            .update_expression(
                "SET lease_token = :token, lease_expires_at = :until, updated_at = :at",
            )
            .condition_expression(COMPLETION_ORPHANED)
            .expression_attribute_values(":pending", s(PENDING))
            .expression_attribute_values(":now", n(now))
            .expression_attribute_values(":token", s(&job.lease_token))
            .expression_attribute_values(":until", n(job.lease_expires_at))
            .expression_attribute_values(":at", s(now_rfc3339()))
            .send()
            .await;
        match result.map_err(|e| e.into_service_error()) {
            Ok(_) => Ok(true),
            Err(UpdateItemError::ConditionalCheckFailedException(_)) => Ok(false),
            Err(other) => Err(service("DynamoDB UpdateItem (job completion)")(other)),
        }
    }
}

fn lease_lost(job: &Job) -> StoreError {
    StoreError::LeaseLost {
        import_id: job.import_id.clone(),
    }
}

/// A claim its condition refused: the job is someone else's (running, or finished),
/// unless the stored item is the one this very claim wrote. That happens when the
/// put's answer was lost (a timeout, a dropped connection): the SDK sends it again and
/// the retry finds our own claim. Without the stored item (no `ALL_OLD`), the claim is
/// taken as ours.
fn refused_claim(job: &Job, stored: Option<&Item>) -> Result<Claim, StoreError> {
    let current = match stored {
        Some(item) => Job::try_from(item)?,
        None => job.clone(),
    };
    let ours = current.lease_token == job.lease_token && current.status == job.status;
    if ours {
        return Ok(Claim::Started);
    }
    Ok(Claim::Declined(Box::new(current)))
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, HashMap};

    use aws_sdk_dynamodb::operation::put_item::{PutItemInput, PutItemOutput};
    use aws_sdk_dynamodb::operation::update_item::{UpdateItemInput, UpdateItemOutput};
    use aws_sdk_dynamodb::types::error::ConditionalCheckFailedException;
    use aws_sdk_dynamodb::types::AttributeValue;
    use aws_sdk_dynamodb::Client;
    use aws_smithy_mocks::{mock, mock_client};

    use super::*;
    use crate::aws::dynamodb::testing::{malformed, refused, Requests, TABLE};

    const JOB_PK: &str = "IMPORT#acme#imp_0123456789abcdef";

    /// A job just claimed, started at 10:00 with a lease until `lease`.
    fn job(started_at: &str, lease: i64) -> Job {
        Job {
            account_id: "acme".into(),
            import_id: "imp_0123456789abcdef".into(),
            status: ImportStatus::Running,
            progress: JobProgress {
                rows: RowCounts {
                    total: 3,
                    created: 1,
                    updated: 1,
                    rejected: 1,
                    ..RowCounts::default()
                },
                rejections_by_reason: BTreeMap::from([(PhoneRejection::Invalid, 1)]),
                warnings_by_code: BTreeMap::from([(WarningCode::InvalidEmail, 2)]),
                last_row: 4,
                report_parts: 1,
                consumed: Consumed {
                    write_units: 3.0,
                    read_units: 1.5,
                    requests: 4,
                },
            },
            summary_key: "reports/acme/imp_0123456789abcdef/summary.json".into(),
            source_key: "imports/acme/whatsapp/list.csv".into(),
            started_at: started_at.into(),
            finished_at: None,
            lease_expires_at: lease,
            lease_token: format!("token-{started_at}"),
            completion_pending: false,
        }
    }

    fn mine() -> Job {
        job("2026-11-21T10:00:00Z", 1_800_000_900)
    }

    fn stored(job: &Job) -> Item {
        job_item(job, "2026-11-21T10:00:05Z".into())
    }

    fn table_answering(rule: &aws_smithy_mocks::Rule) -> DynamoTable {
        DynamoTable::new(mock_client!(aws_sdk_dynamodb, [rule]), TABLE)
    }

    #[tokio::test]
    async fn a_claim_is_one_put_conditioned_on_absent_or_expired() {
        // GIVEN a table where the job does not exist yet
        let requests = Requests::<PutItemInput>::new();
        let rule = mock!(Client::put_item)
            .match_requests(requests.recorder())
            .then_output(|| PutItemOutput::builder().build());

        // WHEN the job is claimed at `now`
        let claim = table_answering(&rule)
            .claim_job(&mine(), 1_800_000_000)
            .await;

        // THEN it is started, by a put of the job item under the claim's condition
        assert_eq!(claim.expect("claimed"), Claim::Started);
        let put = requests.only();
        assert_eq!(put.table_name(), Some(TABLE));
        assert_eq!(
            put.condition_expression(),
            Some("attribute_not_exists(pk) OR (#status = :running AND lease_expires_at < :now)")
        );
        let names = put.expression_attribute_names().expect("names");
        assert_eq!(names.len(), 1);
        assert_eq!(names.get("#status").map(String::as_str), Some("status"));
        let values = put.expression_attribute_values().expect("values");
        assert_eq!(values.len(), 2);
        assert_eq!(values.get(":running"), Some(&s("running")));
        assert_eq!(values.get(":now"), Some(&n(1_800_000_000)));
        assert_eq!(put.return_values(), Some(&ReturnValue::AllOld));
        assert_eq!(
            put.return_values_on_condition_check_failure(),
            Some(&ReturnValuesOnConditionCheckFailure::AllOld)
        );
        let mut item = put.item().expect("item").clone();
        let updated_at = item.insert("updated_at".into(), s("2026-11-21T10:00:05Z"));
        assert!(updated_at.is_some_and(|t| t.as_s().is_ok_and(|t| t.ends_with('Z'))));
        assert_eq!(item, expected_job_item());
    }

    /// `mine()`'s item, written out by hand.
    fn expected_job_item() -> Item {
        let m = |pairs: &[(&str, u64)]| {
            AttributeValue::M(pairs.iter().map(|(k, v)| (k.to_string(), n(v))).collect())
        };
        let rows = [
            ("total", 3),
            ("created", 1),
            ("updated", 1),
            ("unchanged", 0),
            ("skipped_existing", 0),
            ("skipped_new", 0),
            ("duplicate_in_file", 0),
            ("rejected", 1),
        ];
        [
            ("pk", s(JOB_PK)),
            ("sk", s("JOB")),
            ("account_id", s("acme")),
            ("import_id", s("imp_0123456789abcdef")),
            ("status", s("running")),
            ("rows", m(&rows)),
            ("rejections_by_reason", m(&[("invalid_phone", 1)])),
            ("warnings_by_code", m(&[("invalid_email", 2)])),
            ("last_row", n(4)),
            ("report_parts", n(1)),
            (
                "consumed",
                AttributeValue::M(HashMap::from([
                    ("write_units".to_string(), n(3)),
                    ("read_units".to_string(), n(1.5)),
                    ("requests".to_string(), n(4)),
                ])),
            ),
            (
                "summary_key",
                s("reports/acme/imp_0123456789abcdef/summary.json"),
            ),
            ("source_key", s("imports/acme/whatsapp/list.csv")),
            ("started_at", s("2026-11-21T10:00:00Z")),
            ("updated_at", s("2026-11-21T10:00:05Z")),
            ("lease_expires_at", n(1_800_000_900)),
            ("lease_token", s("token-2026-11-21T10:00:00Z")),
        ]
        .into_iter()
        .map(|(name, value)| (name.to_string(), value))
        .collect()
    }

    #[tokio::test]
    async fn an_expired_job_is_taken_over_from_its_old_progress() {
        // GIVEN a running job whose owner's lease ran out: the put replaces it and
        // answers the old item (ALL_OLD)
        let old = job("2026-11-21T09:00:00Z", 1_799_999_000);
        let old_item = stored(&old);
        let rule = mock!(Client::put_item).then_output(move || {
            PutItemOutput::builder()
                .set_attributes(Some(old_item.clone()))
                .build()
        });

        // WHEN the job is claimed
        let claim = table_answering(&rule)
            .claim_job(&mine(), 1_800_000_000)
            .await;

        // THEN it is taken over with the old job's progress
        assert_eq!(claim.expect("claimed"), Claim::TakenOver(Box::new(old)));
    }

    #[tokio::test]
    async fn a_retried_claim_that_finds_its_own_item_is_started() {
        // GIVEN our first put was written but its answer lost: the SDK's retry fails
        // the condition on the item it wrote, and DynamoDB returns that item
        let ours = stored(&mine());
        let rule = mock!(Client::put_item).then_error(move || refused(Some(ours.clone())));

        // WHEN the job is claimed
        let claim = table_answering(&rule)
            .claim_job(&mine(), 1_800_000_000)
            .await;

        // THEN the claim is ours: start, do not decline our own import
        assert_eq!(claim.expect("claimed"), Claim::Started);
    }

    #[tokio::test]
    async fn a_job_someone_else_runs_is_declined() {
        // GIVEN another invocation's live claim, started earlier
        let theirs = job("2026-11-21T09:59:00Z", 1_800_000_840);
        let item = stored(&theirs);
        let rule = mock!(Client::put_item).then_error(move || refused(Some(item.clone())));

        // WHEN we claim it
        let claim = table_answering(&rule)
            .claim_job(&mine(), 1_800_000_000)
            .await;

        // THEN we decline, with their job as stored
        assert_eq!(claim.expect("answered"), Claim::Declined(Box::new(theirs)));
    }

    #[tokio::test]
    async fn every_later_job_write_is_conditional_on_the_holders_token() {
        // GIVEN a table that takes the writes
        let puts = Requests::<PutItemInput>::new();
        let updates = Requests::<UpdateItemInput>::new();
        let put = mock!(Client::put_item)
            .match_requests(puts.recorder())
            .then_output(|| PutItemOutput::builder().build());
        let update = mock!(Client::update_item)
            .match_requests(updates.recorder())
            .then_output(|| UpdateItemOutput::builder().build());
        let table = DynamoTable::new(mock_client!(aws_sdk_dynamodb, [&put, &update]), TABLE);

        // WHEN progress is saved and the lease renewed
        table.save_job(&mine()).await.expect("saved");
        table
            .renew_lease(&mine(), 1_800_000_990)
            .await
            .expect("renewed");

        // THEN both are conditioned on the token this worker's claim wrote
        let token = s("token-2026-11-21T10:00:00Z");
        let put = puts.only();
        assert_eq!(put.condition_expression(), Some("lease_token = :token"));
        let values = put.expression_attribute_values().expect("values");
        assert_eq!(values.get(":token"), Some(&token));
        let update = updates.only();
        assert_eq!(update.condition_expression(), Some("lease_token = :token"));
        let values = update.expression_attribute_values().expect("values");
        assert_eq!(values.get(":token"), Some(&token));
        assert_eq!(values.get(":until"), Some(&n(1_800_000_990)));
        assert_eq!(update.key().and_then(|key| key.get("pk")), Some(&s(JOB_PK)));
    }

    #[tokio::test]
    async fn a_refused_job_write_is_a_lost_lease() {
        // GIVEN another worker took the job over: its token is the stored one
        let put = mock!(Client::put_item).then_error(|| refused(None));
        let update = mock!(Client::update_item).then_error(|| {
            UpdateItemError::ConditionalCheckFailedException(
                ConditionalCheckFailedException::builder().build(),
            )
        });
        let table = DynamoTable::new(mock_client!(aws_sdk_dynamodb, [&put, &update]), TABLE);

        // WHEN this worker saves or renews THEN it is told it lost the job
        let lost = |result: Result<(), StoreError>| matches!(result, Err(StoreError::LeaseLost { import_id }) if import_id == "imp_0123456789abcdef");
        assert!(lost(table.save_job(&mine()).await));
        assert!(lost(table.renew_lease(&mine(), 1_800_000_990).await));
    }

    #[test]
    fn a_job_round_trips_through_its_item() {
        assert_eq!(Job::try_from(&stored(&mine())).expect("decodes"), mine());
    }

    #[test]
    fn a_job_written_before_tokens_and_parts_reads_as_holding_neither() {
        let mut item = stored(&mine());
        item.remove("lease_token");
        item.remove("report_parts");
        let job = Job::try_from(&item).expect("decodes");
        assert_eq!(
            (job.lease_token.as_str(), job.progress.report_parts),
            ("", 0)
        );
    }

    #[test]
    fn unknown_codes_in_a_job_are_malformed_naming_it() {
        let unknown_count = |name: &str, code: &str| {
            let counts = HashMap::from([(code.to_string(), n(1))]);
            (name.to_string(), AttributeValue::M(counts))
        };
        let cases = [
            (
                ("status".to_string(), s("paused")),
                "unknown status `paused`",
            ),
            (
                unknown_count("rejections_by_reason", "too_short"),
                "unknown code `too_short` in `rejections_by_reason`",
            ),
            (
                unknown_count("warnings_by_code", "invalid_mood"),
                "unknown code `invalid_mood` in `warnings_by_code`",
            ),
            (
                unknown_count("rows", "created"),
                "missing count `rows.total`",
            ),
        ];
        for ((name, value), problem) in cases {
            // GIVEN our job's item with one attribute replaced
            let mut item = stored(&mine());
            item.insert(name.clone(), value);
            // WHEN it is read THEN the error names the item and the code
            let read = Job::try_from(&item);
            assert_eq!(malformed(read), (JOB_PK.into(), problem.into()), "{name}");
        }
    }

    #[tokio::test]
    async fn a_malformed_stored_job_fails_the_claim() {
        // GIVEN a stored job whose status is unknown
        let mut item = stored(&mine());
        item.insert("status".into(), s("paused"));
        let rule = mock!(Client::put_item).then_error(move || refused(Some(item.clone())));

        // WHEN it is claimed THEN the claim fails naming the item, not "running"
        let claim = table_answering(&rule)
            .claim_job(&mine(), 1_800_000_000)
            .await;
        assert_eq!(
            malformed(claim),
            (JOB_PK.into(), "unknown status `paused`".into())
        );
    }
}
