//! AWS adapters of the ports: S3 objects, the DynamoDB table (DESIGN section 9) and the
//! import's continuation through Lambda.

use std::collections::{BTreeMap, HashMap};

use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue, ReturnValuesOnConditionCheckFailure};
use aws_sdk_s3::primitives::ByteStream as S3Body;

use crate::contact::{contact_pk, gsi_shard, Contact, Source, Status, TEXT_FIELDS};
use crate::ports::{
    ByteStream, Claim, ContactStore, Continuation, EventLedger, Job, JobProgress, JobStore,
    ObjectInfo, ObjectStore, Precondition, PutBody, PutOutcome, SettingsStore, StoreError,
};
use crate::report::{ImportStatus, RowCounts};
use crate::upload::Channel;

type Item = HashMap<String, AttributeValue>;

fn service<E: std::error::Error + Send + Sync + 'static>(
    operation: &'static str,
) -> impl FnOnce(E) -> StoreError {
    move |e| StoreError::Service {
        operation,
        source: Box::new(e),
    }
}

/// Builds the shared SDK configuration once: region, credentials and, locally,
/// `AWS_ENDPOINT_URL` all come from the environment.
/// Throttling (`ThrottlingException`, `ProvisionedThroughputExceededException`), 5xx
/// and dropped connections are retried with exponential backoff and jitter, up to
/// ten attempts, before a row's write fails the invocation (which then resumes).
pub async fn load_sdk_config() -> aws_config::SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .retry_config(
            aws_config::retry::RetryConfig::standard()
                .with_max_attempts(10)
                // DynamoDB answers in milliseconds: back off from 50 ms, not 1 s.
                .with_initial_backoff(std::time::Duration::from_millis(50)),
        )
        .load()
        .await
}

/// [`Continuation`]: an asynchronous (`InvocationType=Event`) invoke of a function,
/// normally the running function itself (`AWS_LAMBDA_FUNCTION_NAME`).
#[derive(Clone, Debug)]
pub struct LambdaContinuation {
    client: aws_sdk_lambda::Client,
    function_name: String,
}

impl LambdaContinuation {
    /// Invokes `function_name` through `client`.
    pub fn new(client: aws_sdk_lambda::Client, function_name: String) -> Self {
        LambdaContinuation {
            client,
            function_name,
        }
    }
}

impl Continuation for LambdaContinuation {
    async fn continue_with(&self, event: &serde_json::Value) -> Result<(), StoreError> {
        let payload = serde_json::to_vec(event).map_err(service("lambda:Invoke"))?;
        self.client
            .invoke()
            .function_name(&self.function_name)
            .invocation_type(aws_sdk_lambda::types::InvocationType::Event)
            .payload(aws_sdk_lambda::primitives::Blob::new(payload))
            .send()
            .await
            .map_err(service("lambda:Invoke"))?;
        Ok(())
    }
}

/// S3 adapter.
#[derive(Clone, Debug)]
pub struct S3Objects {
    client: aws_sdk_s3::Client,
}

impl S3Objects {
    /// Wraps a client.
    pub fn new(client: aws_sdk_s3::Client) -> S3Objects {
        S3Objects { client }
    }
}

impl ObjectStore for S3Objects {
    async fn head(&self, bucket: &str, key: &str) -> Result<ObjectInfo, StoreError> {
        let out = self
            .client
            .head_object()
            .bucket(bucket)
            .key(key)
            .send()
            .await
            .map_err(|e| {
                let e = e.into_service_error();
                if e.is_not_found() {
                    StoreError::NotFound {
                        bucket: bucket.into(),
                        key: key.into(),
                    }
                } else {
                    service("S3 HeadObject")(e)
                }
            })?;
        Ok(ObjectInfo {
            size: out.content_length().unwrap_or(0).max(0) as u64,
            etag: out.e_tag().map(|e| e.trim_matches('"').to_string()),
            version_id: out
                .version_id()
                .filter(|v| *v != "null")
                .map(str::to_string),
            metadata: out.metadata().cloned().unwrap_or_default(),
        })
    }

    async fn open(&self, bucket: &str, key: &str) -> Result<ByteStream, StoreError> {
        let out = self
            .client
            .get_object()
            .bucket(bucket)
            .key(key)
            .send()
            .await
            .map_err(|e| {
                let e = e.into_service_error();
                if e.is_no_such_key() {
                    StoreError::NotFound {
                        bucket: bucket.into(),
                        key: key.into(),
                    }
                } else {
                    service("S3 GetObject")(e)
                }
            })?;
        Ok(Box::pin(out.body.into_async_read()))
    }

    async fn put(
        &self,
        bucket: &str,
        key: &str,
        body: PutBody,
        content_type: &str,
    ) -> Result<(), StoreError> {
        let body = match body {
            PutBody::Bytes(bytes) => S3Body::from(bytes),
            PutBody::File(path) => S3Body::from_path(path)
                .await
                .map_err(service("read report file"))?,
        };
        self.client
            .put_object()
            .bucket(bucket)
            .key(key)
            .content_type(content_type)
            .body(body)
            .send()
            .await
            .map_err(|e| service("S3 PutObject")(e.into_service_error()))?;
        Ok(())
    }
}

/// DynamoDB adapter: contacts, jobs, settings and processed events in one table.
#[derive(Clone, Debug)]
pub struct DynamoTable {
    client: aws_sdk_dynamodb::Client,
    table: String,
}

impl DynamoTable {
    /// Wraps a client for `table`.
    pub fn new(client: aws_sdk_dynamodb::Client, table: impl Into<String>) -> DynamoTable {
        DynamoTable {
            client,
            table: table.into(),
        }
    }
}

fn s(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

fn n(value: impl ToString) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

fn get_s<'a>(item: &'a Item, name: &str) -> Option<&'a str> {
    item.get(name)
        .and_then(|v| v.as_s().ok())
        .map(String::as_str)
}

fn get_n(item: &Item, name: &str) -> Option<i64> {
    item.get(name)
        .and_then(|v| v.as_n().ok())
        .and_then(|v| v.parse().ok())
}

/// The DynamoDB item of a contact.
pub fn contact_to_item(contact: &Contact) -> Item {
    let mut item = Item::new();
    item.insert("pk".into(), s(contact.pk()));
    item.insert("sk".into(), s("PROFILE"));
    item.insert("account_id".into(), s(&contact.account_id));
    item.insert("channel".into(), s(contact.channel.as_str()));
    item.insert("phone".into(), s(&contact.phone));
    item.insert(
        "gsi1pk".into(),
        s(format!(
            "{}#{}",
            contact.account_id,
            gsi_shard(&contact.phone)
        )),
    );
    item.insert(
        "gsi1sk".into(),
        s(format!("{}#{}", contact.channel.as_str(), contact.phone)),
    );
    for (field, value) in &contact.text {
        item.insert(field.clone(), s(value));
    }
    if let Some(opted) = contact.whatsapp_opted {
        item.insert("whatsapp_opted".into(), AttributeValue::Bool(opted));
    }
    // DynamoDB refuses empty sets: an empty list set is simply absent.
    if !contact.lists.is_empty() {
        item.insert(
            "lists".into(),
            AttributeValue::Ss(contact.lists.iter().cloned().collect()),
        );
    }
    if !contact.tags.is_empty() {
        item.insert(
            "tags".into(),
            AttributeValue::Ss(contact.tags.iter().cloned().collect()),
        );
    }
    if !contact.attrs.is_empty() {
        item.insert(
            "attrs".into(),
            AttributeValue::M(
                contact
                    .attrs
                    .iter()
                    .map(|(k, v)| (k.clone(), s(v)))
                    .collect(),
            ),
        );
    }
    item.insert("status".into(), s(contact.status.as_str()));
    item.insert("anonymous".into(), AttributeValue::Bool(contact.anonymous));
    item.insert("source".into(), s(contact.source.as_str()));
    item.insert("created_at".into(), s(&contact.created_at));
    item.insert("updated_at".into(), s(&contact.updated_at));
    for (name, value) in [
        ("last_import_id", &contact.last_import_id),
        ("last_campaign_id", &contact.last_campaign_id),
        ("last_inbound_at", &contact.last_inbound_at),
    ] {
        if let Some(value) = value {
            item.insert(name.into(), s(value));
        }
    }
    item.insert("version".into(), n(contact.version));
    item
}

/// A contact from its DynamoDB item.
pub fn contact_from_item(item: &Item) -> Result<Contact, StoreError> {
    let pk = get_s(item, "pk").unwrap_or("?").to_string();
    let malformed = |problem: &str| StoreError::Malformed {
        pk: pk.clone(),
        problem: problem.to_string(),
    };
    let channel = get_s(item, "channel")
        .and_then(Channel::parse)
        .ok_or_else(|| malformed("channel"))?;
    let set = |name: &str| -> std::collections::BTreeSet<String> {
        item.get(name)
            .and_then(|v| v.as_ss().ok())
            .map(|v| v.iter().cloned().collect())
            .unwrap_or_default()
    };
    Ok(Contact {
        account_id: get_s(item, "account_id")
            .ok_or_else(|| malformed("account_id"))?
            .to_string(),
        channel,
        phone: get_s(item, "phone")
            .ok_or_else(|| malformed("phone"))?
            .to_string(),
        text: TEXT_FIELDS
            .iter()
            .filter_map(|f| get_s(item, f).map(|v| (f.to_string(), v.to_string())))
            .collect(),
        whatsapp_opted: item
            .get("whatsapp_opted")
            .and_then(|v| v.as_bool().ok())
            .copied(),
        lists: set("lists"),
        tags: set("tags"),
        attrs: item
            .get("attrs")
            .and_then(|v| v.as_m().ok())
            .map(|m| {
                m.iter()
                    .filter_map(|(k, v)| v.as_s().ok().map(|v| (k.clone(), v.clone())))
                    .collect()
            })
            .unwrap_or_default(),
        status: get_s(item, "status")
            .and_then(Status::parse)
            .unwrap_or(Status::Active),
        anonymous: item
            .get("anonymous")
            .and_then(|v| v.as_bool().ok())
            .copied()
            .unwrap_or(false),
        source: get_s(item, "source")
            .and_then(Source::parse)
            .unwrap_or(Source::Import),
        created_at: get_s(item, "created_at").unwrap_or_default().to_string(),
        updated_at: get_s(item, "updated_at").unwrap_or_default().to_string(),
        last_import_id: get_s(item, "last_import_id").map(str::to_string),
        last_campaign_id: get_s(item, "last_campaign_id").map(str::to_string),
        last_inbound_at: get_s(item, "last_inbound_at").map(str::to_string),
        version: get_n(item, "version").unwrap_or(0).max(0) as u64,
    })
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
            .key("sk", s("PROFILE"))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| service("DynamoDB GetItem")(e.into_service_error()))?;
        out.item().map(contact_from_item).transpose()
    }

    async fn put_contact(
        &self,
        contact: &Contact,
        precondition: Precondition,
    ) -> Result<PutOutcome, StoreError> {
        let item = contact_to_item(contact);
        let result = match precondition {
            Precondition::Absent => self
                .client
                .put_item()
                .table_name(&self.table)
                .set_item(Some(item))
                .condition_expression("attribute_not_exists(pk)")
                .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
                .send()
                .await
                .map(|_| ())
                .map_err(|e| e.into_service_error())
                .map_err(|e| match e {
                    aws_sdk_dynamodb::operation::put_item::PutItemError::ConditionalCheckFailedException(c) => Ok(c.item),
                    other => Err(service("DynamoDB PutItem")(other)),
                }),
            Precondition::Version(expected) => {
                // SET every attribute we own: attributes other writers added survive.
                let mut names = HashMap::new();
                let mut values = HashMap::new();
                let mut sets = Vec::new();
                for (i, (name, value)) in item.into_iter().filter(|(k, _)| k != "pk" && k != "sk").enumerate() {
                    names.insert(format!("#a{i}"), name);
                    values.insert(format!(":v{i}"), value);
                    sets.push(format!("#a{i} = :v{i}"));
                }
                names.insert("#version".into(), "version".into());
                values.insert(":expected".into(), n(expected));
                self.client
                    .update_item()
                    .table_name(&self.table)
                    .key("pk", s(contact.pk()))
                    .key("sk", s("PROFILE"))
                    .update_expression(format!("SET {}", sets.join(", ")))
                    .condition_expression("attribute_exists(pk) AND #version = :expected")
                    .set_expression_attribute_names(Some(names))
                    .set_expression_attribute_values(Some(values))
                    .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
                    .send()
                    .await
                    .map(|_| ())
                    .map_err(|e| e.into_service_error())
                    .map_err(|e| match e {
                        aws_sdk_dynamodb::operation::update_item::UpdateItemError::ConditionalCheckFailedException(c) => Ok(c.item),
                        other => Err(service("DynamoDB UpdateItem")(other)),
                    })
            }
        };
        match result {
            Ok(()) => Ok(PutOutcome::Written),
            Err(Ok(old)) => Ok(PutOutcome::Conflict(
                old.as_ref()
                    .map(contact_from_item)
                    .transpose()?
                    .map(Box::new),
            )),
            Err(Err(e)) => Err(e),
        }
    }
}

fn counts_to_map(counts: &BTreeMap<String, u64>) -> AttributeValue {
    AttributeValue::M(counts.iter().map(|(k, v)| (k.clone(), n(v))).collect())
}

fn map_to_counts(item: &Item, name: &str) -> BTreeMap<String, u64> {
    item.get(name)
        .and_then(|v| v.as_m().ok())
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| Some((k.clone(), v.as_n().ok()?.parse().ok()?)))
                .collect()
        })
        .unwrap_or_default()
}

fn job_pk(account_id: &str, import_id: &str) -> String {
    format!("IMPORT#{account_id}#{import_id}")
}

fn job_to_item(job: &Job) -> Item {
    let rows = &job.progress.rows;
    let counts: BTreeMap<String, u64> = [
        ("total", rows.total),
        ("created", rows.created),
        ("updated", rows.updated),
        ("unchanged", rows.unchanged),
        ("skipped_existing", rows.skipped_existing),
        ("duplicate_in_file", rows.duplicate_in_file),
        ("rejected", rows.rejected),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    Item::from([
        ("pk".to_string(), s(job_pk(&job.account_id, &job.import_id))),
        ("sk".to_string(), s("JOB")),
        ("account_id".to_string(), s(&job.account_id)),
        ("import_id".to_string(), s(&job.import_id)),
        ("status".to_string(), s(job.status.as_str())),
        ("rows".to_string(), counts_to_map(&counts)),
        (
            "rejections_by_reason".to_string(),
            counts_to_map(&job.progress.rejections_by_reason),
        ),
        (
            "warnings_by_code".to_string(),
            counts_to_map(&job.progress.warnings_by_code),
        ),
        ("last_row".to_string(), n(job.progress.last_row)),
        ("summary_key".to_string(), s(&job.summary_key)),
        ("source_key".to_string(), s(&job.source_key)),
        ("started_at".to_string(), s(&job.started_at)),
        (
            "updated_at".to_string(),
            s(chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)),
        ),
        ("lease_expires_at".to_string(), n(job.lease_expires_at)),
    ])
}

fn job_from_item(item: &Item) -> Job {
    let rows = map_to_counts(item, "rows");
    let count = |k: &str| rows.get(k).copied().unwrap_or(0);
    let status = match get_s(item, "status") {
        Some("completed") => ImportStatus::Completed,
        Some("completed_with_errors") => ImportStatus::CompletedWithErrors,
        Some("failed") => ImportStatus::Failed,
        _ => ImportStatus::Running,
    };
    Job {
        account_id: get_s(item, "account_id").unwrap_or_default().to_string(),
        import_id: get_s(item, "import_id").unwrap_or_default().to_string(),
        status,
        progress: JobProgress {
            rows: RowCounts {
                total: count("total"),
                created: count("created"),
                updated: count("updated"),
                unchanged: count("unchanged"),
                skipped_existing: count("skipped_existing"),
                duplicate_in_file: count("duplicate_in_file"),
                rejected: count("rejected"),
            },
            rejections_by_reason: map_to_counts(item, "rejections_by_reason"),
            warnings_by_code: map_to_counts(item, "warnings_by_code"),
            last_row: get_n(item, "last_row").unwrap_or(0).max(0) as u64,
        },
        summary_key: get_s(item, "summary_key").unwrap_or_default().to_string(),
        source_key: get_s(item, "source_key").unwrap_or_default().to_string(),
        started_at: get_s(item, "started_at").unwrap_or_default().to_string(),
        lease_expires_at: get_n(item, "lease_expires_at").unwrap_or(0),
    }
}

impl JobStore for DynamoTable {
    async fn claim_job(&self, job: &Job, now: i64) -> Result<Claim, StoreError> {
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(job_to_item(job)))
            .condition_expression(
                "attribute_not_exists(pk) OR (#status = :running AND lease_expires_at < :now)",
            )
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":running", s("running"))
            .expression_attribute_values(":now", n(now))
            .return_values(ReturnValue::AllOld)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        match result {
            Ok(out) => Ok(match out.attributes() {
                Some(old) if !old.is_empty() => Claim::TakenOver(Box::new(job_from_item(old))),
                _ => Claim::Started,
            }),
            Err(e) => match e.into_service_error() {
                aws_sdk_dynamodb::operation::put_item::PutItemError::ConditionalCheckFailedException(c) => {
                    let existing = c.item.as_ref().map(job_from_item).unwrap_or_else(|| job.clone());
                    // A retried put whose first answer was lost finds our own claim.
                    if existing.started_at == job.started_at && existing.lease_expires_at == job.lease_expires_at && existing.status == job.status {
                        return Ok(Claim::Started);
                    }
                    Ok(Claim::Declined(Box::new(existing)))
                }
                other => Err(service("DynamoDB PutItem (job)")(other)),
            },
        }
    }

    async fn save_job(&self, job: &Job) -> Result<(), StoreError> {
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(job_to_item(job)))
            .send()
            .await
            .map_err(|e| service("DynamoDB PutItem (job)")(e.into_service_error()))?;
        Ok(())
    }
}

impl SettingsStore for DynamoTable {
    async fn default_country(&self, account_id: &str) -> Result<Option<String>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", s(format!("ACCOUNT#{account_id}")))
            .key("sk", s("SETTINGS"))
            .send()
            .await
            .map_err(|e| service("DynamoDB GetItem (settings)")(e.into_service_error()))?;
        Ok(out
            .item()
            .and_then(|i| get_s(i, "default_country"))
            .map(str::to_string))
    }
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
            .item("pk", s(format!("EVENT#{account_id}#{event_key}")))
            .item("sk", s("SEEN"))
            .item("answer", s(answer))
            .item("expires_at", n(expires_at))
            .condition_expression("attribute_not_exists(pk)")
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        match result {
            Ok(_) => Ok(None),
            Err(e) => match e.into_service_error() {
                aws_sdk_dynamodb::operation::put_item::PutItemError::ConditionalCheckFailedException(c) => {
                    Ok(Some(c.item.as_ref().and_then(|i| get_s(i, "answer")).unwrap_or("{}").to_string()))
                }
                other => Err(service("DynamoDB PutItem (event)")(other)),
            },
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
            .item("pk", s(format!("EVENT#{account_id}#{event_key}")))
            .item("sk", s("SEEN"))
            .item("answer", s(answer))
            .item("expires_at", n(expires_at))
            .send()
            .await
            .map_err(|e| service("DynamoDB PutItem (event)")(e.into_service_error()))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contact::{ContactDraft, WriteStamp};

    #[test]
    fn contact_items_round_trip_with_keys_and_gsi() {
        let mut draft = ContactDraft {
            phone: "+447911123456".into(),
            whatsapp_opted: Some(true),
            ..Default::default()
        };
        draft.text.insert("name", "Eva".into());
        draft.lists.insert("VIP".into());
        draft.attrs.insert("Plan".into(), "Gold".into());
        let stamp = WriteStamp {
            now: "2026-11-21T10:00:00Z".into(),
            source: Source::Import,
            import_id: Some("imp_1".into()),
            campaign_id: None,
        };
        let contact = Contact::create("acme", Channel::Whatsapp, &draft, &stamp);
        let item = contact_to_item(&contact);
        assert_eq!(
            get_s(&item, "pk"),
            Some("CONTACT#acme#whatsapp#+447911123456")
        );
        assert_eq!(get_s(&item, "gsi1sk"), Some("whatsapp#+447911123456"));
        assert!(get_s(&item, "gsi1pk").is_some_and(|v| v.starts_with("acme#")));
        assert!(!item.contains_key("tags"), "no empty sets");
        assert_eq!(contact_from_item(&item).expect("parses"), contact);
    }
}
