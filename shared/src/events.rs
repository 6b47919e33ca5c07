//! contact-events: campaign recipients, inbound messages and captured details keep the
//! contact book current (DESIGN section 10).

use std::cell::Cell;
use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::ops::ControlFlow;

use serde_json::{json, Value};
use tokio::io::AsyncReadExt;

use crate::config::Config;
use crate::contact::{Contact, ContactDraft, Source, Status, WriteStamp};
use crate::field::Field;
use crate::mapping::ColumnMap;
use crate::options::OnExisting;
use crate::phone::{self, PhoneContext, Region};
use crate::ports::{ContactStore, EventLedger, ObjectStore, SettingsStore, StoreError};
use crate::report::{saved_message, Outcome, RowCounts};
use crate::save::{save_draft, upsert, SaveError, Upserted};
use crate::source::{
    read_text, read_workbook, Format, RawRow, ReadOptions, RowKind, SourceError, WorkbookLimits,
};
use crate::text::{clean_value, truncate_chars};
use crate::upload::{is_valid_account_id, Channel};
use crate::validate::{is_valid_email, is_valid_name, validate_row, RowRules, Verdict};

/// How long processed event ids are remembered.
const EVENT_TTL_SECONDS: i64 = 30 * 24 * 3600;
/// Marker answer while an event is being processed.
const PENDING: &str = "pending";

/// Why an event was not processed.
#[derive(Debug, thiserror::Error)]
pub enum EventError {
    /// A field is missing or malformed; nothing was written.
    #[error("invalid event: field `{field}` {problem}")]
    InvalidField {
        /// The field's name (dotted path).
        field: String,
        /// What is wrong.
        problem: String,
    },
    /// The recipients file lacks the name or phone column.
    #[error("missing_required_headers: the recipients file must have a Name column and a Phone column; {0}")]
    MissingRequiredHeaders(String),
    /// The recipients file cannot be read.
    #[error("the recipients file s3://{bucket}/{key} cannot be read: {problem}")]
    RecipientsFile {
        /// Bucket.
        bucket: String,
        /// Key.
        key: String,
        /// Why.
        problem: String,
    },
    /// A store failed: retryable.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A contact kept changing under us: retryable.
    #[error(transparent)]
    Save(#[from] SaveError),
}

impl EventError {
    /// A short type for the runtime's error report.
    pub fn error_type(&self) -> &'static str {
        match self {
            EventError::InvalidField { .. } => "InvalidEvent",
            EventError::MissingRequiredHeaders(_) => "MissingRequiredHeaders",
            EventError::RecipientsFile { .. } => "RecipientsFileUnreadable",
            EventError::Store(_) | EventError::Save(_) => "Retryable",
        }
    }
}

fn invalid(field: &str, problem: impl Into<String>) -> EventError {
    EventError::InvalidField {
        field: field.to_string(),
        problem: problem.into(),
    }
}

/// Reads an optional string field: absent or null is `None`, blank is `None`, any
/// other type is an error naming the field.
fn opt_str(event: &Value, field: &str, max: usize) -> Result<Option<String>, EventError> {
    match event.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => {
            let v = clean_value(s);
            if v.chars().count() > max {
                return Err(invalid(field, format!("is longer than {max} characters")));
            }
            Ok((!v.is_empty()).then_some(v))
        }
        Some(other) => Err(invalid(
            field,
            format!("must be a string, not {}", type_name(other)),
        )),
    }
}

fn req_str(event: &Value, field: &str, max: usize) -> Result<String, EventError> {
    opt_str(event, field, max)?.ok_or_else(|| invalid(field, "is required"))
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn account_of(event: &Value) -> Result<String, EventError> {
    let account = req_str(event, "account_id", 64)?;
    if !is_valid_account_id(&account) {
        return Err(invalid(
            "account_id",
            "must be 1-64 characters of A-Z a-z 0-9 _ -",
        ));
    }
    Ok(account)
}

fn channel_of(event: &Value) -> Result<Channel, EventError> {
    let channel = req_str(event, "channel", 16)?;
    Channel::parse(&channel.to_ascii_lowercase()).ok_or_else(|| {
        invalid(
            "channel",
            format!("{channel:?} is not one of whatsapp, sms, voice"),
        )
    })
}

fn now() -> chrono::DateTime<chrono::Utc> {
    chrono::Utc::now()
}

fn rfc3339(t: chrono::DateTime<chrono::Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// The event inside an invocation payload: bare, or in an EventBridge envelope.
pub fn unwrap_envelope(payload: Value) -> Value {
    match payload {
        Value::Object(mut map) if map.contains_key("detail") && map.contains_key("detail-type") => {
            let detail_type = map.get("detail-type").cloned();
            let mut detail = map.remove("detail").unwrap_or(Value::Null);
            if let (Value::Object(d), Some(t)) = (&mut detail, detail_type) {
                d.entry("type").or_insert(t);
            }
            detail
        }
        other => other,
    }
}

/// The service: handles one event.
pub struct EventService<'a, O, D> {
    /// Where recipients files live.
    pub objects: &'a O,
    /// The table.
    pub table: &'a D,
    /// Configuration.
    pub config: &'a Config,
}

impl<O, D> EventService<'_, O, D>
where
    O: ObjectStore,
    D: ContactStore + SettingsStore + EventLedger,
{
    /// Handles one (unwrapped) event and returns the answer.
    pub async fn handle(&self, event: &Value) -> Result<Value, EventError> {
        if !event.is_object() {
            return Err(invalid(
                "(event)",
                format!("must be a JSON object, not {}", type_name(event)),
            ));
        }
        let kind = req_str(event, "type", 64)?;
        match kind.as_str() {
            "campaign.completed" => self.campaign_completed(event).await,
            "message.inbound" => self.message_inbound(event).await,
            "contact.captured" => self.contact_captured(event).await,
            other => Err(invalid(
                "type",
                format!(
                    "{other:?} is not one of campaign.completed, message.inbound, contact.captured"
                ),
            )),
        }
    }

    async fn region_for(
        &self,
        event: &Value,
        account_id: &str,
    ) -> Result<Option<Region>, EventError> {
        if let Some(code) = opt_str(event, "default_country", 8)? {
            return Region::parse(&code).map(Some).ok_or_else(|| {
                invalid(
                    "default_country",
                    format!("{code:?} is not an ISO 3166-1 alpha-2 country code"),
                )
            });
        }
        let setting = self.table.default_country(account_id).await?;
        Ok(setting
            .and_then(|c| Region::parse(&c))
            .or(self.config.default_country))
    }

    /// Runs `work` once per `event_key`: a redelivery answers what the first run answered.
    async fn once<F, Fut>(
        &self,
        account_id: &str,
        event_key: &str,
        work: F,
    ) -> Result<Value, EventError>
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = Result<Value, EventError>>,
    {
        let expires = now().timestamp() + EVENT_TTL_SECONDS;
        if let Some(previous) = self
            .table
            .record_event(account_id, event_key, PENDING, expires)
            .await?
        {
            if previous != PENDING {
                if let Ok(answer) = serde_json::from_str::<Value>(&previous) {
                    tracing::info!(event_key, "event already processed; answering as before");
                    return Ok(answer);
                }
            }
        }
        let answer = work().await?;
        self.table
            .store_answer(account_id, event_key, &answer.to_string(), expires)
            .await?;
        Ok(answer)
    }

    async fn campaign_completed(&self, event: &Value) -> Result<Value, EventError> {
        let account_id = account_of(event)?;
        let campaign_id = req_str(event, "campaign_id", 128)?;
        let channel = channel_of(event)?;
        let status = req_str(event, "status", 32)?;
        let source = CampaignRecipients::from_event(event)?;
        let region = self.region_for(event, &account_id).await?;
        if status != "succeeded" {
            return Ok(json!({
                "status": "not_saved",
                "reason": format!("campaign status is {status:?}; only succeeded campaigns save their recipients"),
                "created": 0, "updated": 0, "unchanged": 0, "rejected": 0,
                "message": "0 new contacts saved to Contact Book.",
            }));
        }
        let key = format!("campaign:{campaign_id}");
        self.once(&account_id, &key, || async {
            let rows = match &source {
                CampaignRecipients::Inline(rows) => rows.clone(),
                CampaignRecipients::File { bucket, key } => {
                    self.read_recipients_file(bucket, key).await?
                }
            };
            self.save_recipients(&account_id, channel, &campaign_id, region, rows)
                .await
        })
        .await
    }

    async fn read_recipients_file(
        &self,
        bucket: &str,
        key: &str,
    ) -> Result<RecipientTable, EventError> {
        let file_error = |problem: String| EventError::RecipientsFile {
            bucket: bucket.into(),
            key: key.into(),
            problem,
        };
        let ext = key
            .rsplit_once('.')
            .map(|(_, e)| e.to_ascii_lowercase())
            .unwrap_or_default();
        let format = Format::from_extension(&ext).ok_or_else(|| {
            file_error(format!(
                "files ending in .{ext} are not supported; use CSV or XLSX"
            ))
        })?;
        let mut body = Vec::new();
        let stream = self.objects.open(bucket, key).await.map_err(|e| match e {
            StoreError::NotFound { .. } => file_error("it does not exist".into()),
            other => EventError::Store(other),
        })?;
        stream
            .take(self.config.max_upload_bytes + 1)
            .read_to_end(&mut body)
            .await
            .map_err(|e| file_error(e.to_string()))?;
        if body.len() as u64 > self.config.max_upload_bytes {
            return Err(file_error(format!(
                "it is larger than {} bytes",
                self.config.max_upload_bytes
            )));
        }
        tokio::task::spawn_blocking(move || {
            let mut rows: Vec<RawRow> = Vec::new();
            let visit = |row: RawRow| {
                rows.push(row);
                ControlFlow::Continue(())
            };
            let options = ReadOptions {
                format: if format == Format::Txt {
                    Format::Csv
                } else {
                    format
                },
                delimiter: None,
                sheet: None,
            };
            let read = if format.is_workbook() {
                read_workbook(body, &options, &WorkbookLimits::default(), visit)
            } else {
                read_text(&body[..], &options, visit)
            };
            read.map(|_| rows)
        })
        .await
        .map_err(|e| file_error(e.to_string()))?
        .map_err(|e: SourceError| file_error(e.to_string()))
        .map(|rows| {
            let mut iter = rows.into_iter();
            let header = iter
                .find(|r| r.kind == RowKind::Header)
                .map(|r| r.cells)
                .unwrap_or_default();
            RecipientTable {
                header,
                rows: iter.map(|r| (r.line, r.cells, true)).collect(),
            }
        })
    }

    async fn save_recipients(
        &self,
        account_id: &str,
        channel: Channel,
        campaign_id: &str,
        region: Option<Region>,
        table: RecipientTable,
    ) -> Result<Value, EventError> {
        let columns = ColumnMap::from_header(&table.header, &[])
            .map_err(|e| EventError::MissingRequiredHeaders(e.to_string()))?;
        if columns.index_of(Field::Name).is_none() && columns.index_of(Field::FirstName).is_none() {
            return Err(EventError::MissingRequiredHeaders(format!(
                "no name column among {:?}",
                table.header
            )));
        }
        let (lists, tags) = (BTreeSet::new(), BTreeSet::new());
        let rules = RowRules {
            columns: &columns,
            channel,
            default_region: region,
            lists: &lists,
            tags: &tags,
        };
        let stamp = WriteStamp {
            now: rfc3339(now()),
            source: Source::Campaign,
            import_id: None,
            campaign_id: Some(campaign_id.to_string()),
        };
        let mut counts = RowCounts::default();
        let mut reasons: BTreeMap<String, u64> = BTreeMap::new();
        let mut not_delivered = 0u64;
        let mut seen = HashSet::new();
        for (_line, cells, delivered) in &table.rows {
            if !delivered {
                not_delivered += 1;
                continue;
            }
            match validate_row(cells, &rules) {
                Verdict::Rejected { problem, .. } => {
                    counts.add(Outcome::Rejected);
                    *reasons.entry(problem.code.to_string()).or_default() += 1;
                }
                Verdict::Accepted { draft, .. } => {
                    if !seen.insert(draft.phone.clone()) {
                        counts.add(Outcome::DuplicateInFile);
                        continue;
                    }
                    counts.add(
                        save_draft(
                            self.table,
                            account_id,
                            channel,
                            &draft,
                            &stamp,
                            OnExisting::Update,
                        )
                        .await?,
                    );
                }
            }
        }
        tracing::info!(
            account_id,
            campaign_id,
            created = counts.created,
            updated = counts.updated,
            rejected = counts.rejected,
            "campaign recipients saved"
        );
        Ok(json!({
            "status": "saved",
            "created": counts.created,
            "updated": counts.updated,
            "unchanged": counts.unchanged,
            "rejected": counts.rejected,
            "duplicates": counts.duplicate_in_file,
            "not_delivered": not_delivered,
            "rejections_by_reason": reasons,
            "message": saved_message(counts.created, false),
        }))
    }

    async fn message_inbound(&self, event: &Value) -> Result<Value, EventError> {
        let account_id = account_of(event)?;
        let channel = channel_of(event)?;
        let message_id = req_str(event, "message_id", 256)?;
        let raw_from = req_str(event, "from", 64)?;
        let region = self.region_for(event, &account_id).await?;
        let phone = phone::normalize(
            &raw_from,
            None,
            PhoneContext {
                default_region: region,
                channel: Channel::Voice,
            },
        )
        .map_err(|e| invalid("from", format!("{e} ({})", e.code())))?;
        let received_at = match opt_str(event, "received_at", 64)? {
            // Stored in UTC with the sender's precision: comparable as text.
            Some(t) => chrono::DateTime::parse_from_rfc3339(&t)
                .map_err(|_| invalid("received_at", "must be an RFC 3339 time"))?
                .with_timezone(&chrono::Utc)
                .to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true),
            None => rfc3339(now()),
        };
        let first = opt_str(event, "first_name", 50)?.filter(|n| is_valid_name(n));
        let last = opt_str(event, "last_name", 50)?.filter(|n| is_valid_name(n));
        let profile = opt_str(event, "profile_name", 200)?
            .map(|n| truncate_chars(&n, 101).to_string())
            .filter(|n| is_valid_name(n));
        let given: Vec<&str> = [first.as_deref(), last.as_deref()]
            .into_iter()
            .flatten()
            .collect();
        let name = if given.is_empty() {
            profile
        } else {
            Some(given.join(" "))
        };

        let key = format!("msg:{message_id}");
        self.once(&account_id, &key, || async {
            let label = Cell::new("existing");
            let stamp = WriteStamp { now: rfc3339(now()), source: Source::Inbound, import_id: None, campaign_id: None };
            let result = upsert(
                self.table,
                || {
                    let mut draft = ContactDraft { phone: phone.clone(), ..Default::default() };
                    if let Some(n) = &name {
                        draft.text.insert("name", n.clone());
                    }
                    for (field, value) in [("first_name", &first), ("last_name", &last)] {
                        if let Some(v) = value {
                            draft.text.insert(field, v.clone());
                        }
                    }
                    let mut c = Contact::create(&account_id, channel, &draft, &stamp);
                    c.anonymous = true;
                    c.last_inbound_at = Some(received_at.clone());
                    c
                },
                |current| {
                    let mut next = current.clone();
                    match current.status {
                        Status::Blocked => {
                            label.set("blocked");
                            return Ok(None);
                        }
                        Status::Archived => {
                            label.set("reactivated");
                            next.status = Status::Active;
                        }
                        Status::Active => label.set("existing"),
                    }
                    // A profile name fills a gap; it never replaces a name.
                    if let (None, Some(n)) = (next.text.get("name"), &name) {
                        next.text.insert("name".into(), n.clone());
                    }
                    if next.last_inbound_at.as_deref().is_none_or(|t| t < received_at.as_str()) {
                        next.last_inbound_at = Some(received_at.clone());
                    }
                    if next == *current {
                        return Ok(None);
                    }
                    next.touch(&stamp);
                    Ok(Some(next))
                },
            )
            .await?;
            let contact = match &result {
                Upserted::Created(c) => {
                    label.set("created_anonymous");
                    c
                }
                Upserted::Updated(c) | Upserted::Unchanged(c) | Upserted::LeftAlone(c) => c,
            };
            tracing::info!(account_id, contact = label.get(), phone = %crate::text::mask_phone(&contact.phone), "inbound message");
            Ok(json!({"contact": label.get(), "pk": contact.pk()}))
        })
        .await
    }

    async fn contact_captured(&self, event: &Value) -> Result<Value, EventError> {
        let account_id = account_of(event)?;
        let channel = channel_of(event)?;
        let raw_phone = req_str(event, "phone", 64)?;
        let region = self.region_for(event, &account_id).await?;
        let phone = phone::normalize(
            &raw_phone,
            None,
            PhoneContext {
                default_region: region,
                channel,
            },
        )
        .map_err(|e| invalid("phone", format!("{e} ({})", e.code())))?;
        let mut draft = ContactDraft {
            phone,
            ..Default::default()
        };
        for (field, max) in [("name", 101), ("first_name", 50), ("last_name", 50)] {
            if let Some(v) = opt_str(event, field, max)? {
                if !is_valid_name(&v) {
                    return Err(invalid(field, "holds characters a name cannot have"));
                }
                draft.text.insert(field_name(field), v);
            }
        }
        if let Some(email) = opt_str(event, "email", 255)? {
            if !is_valid_email(&email) {
                return Err(invalid(
                    "email",
                    format!("{email:?} is not an e-mail address"),
                ));
            }
            draft.text.insert("email", email);
        }
        opt_str(event, "captured_by", 64)?;
        opt_str(event, "conversation_id", 256)?;
        if !draft.text.contains_key("name") {
            let full: Vec<&str> = ["first_name", "last_name"]
                .iter()
                .filter_map(|f| draft.text.get(f).map(String::as_str))
                .collect();
            if !full.is_empty() {
                draft.text.insert("name", full.join(" "));
            }
        }
        let stamp = WriteStamp {
            now: rfc3339(now()),
            source: Source::Agent,
            import_id: None,
            campaign_id: None,
        };
        let result = upsert(
            self.table,
            || Contact::create(&account_id, channel, &draft, &stamp),
            |current| {
                let mut next = current.clone();
                for (field, value) in &draft.text {
                    // An anonymous contact takes the captured identity; a known one is
                    // only completed.
                    if current.anonymous || !next.text.contains_key(*field) {
                        next.text.insert((*field).to_string(), value.clone());
                    }
                }
                if current.anonymous && draft.text.contains_key("name") {
                    next.anonymous = false;
                    next.source = Source::Agent;
                }
                if next == *current {
                    return Ok(None);
                }
                next.touch(&stamp);
                Ok(Some(next))
            },
        )
        .await?;
        let (label, contact) = match &result {
            Upserted::Created(c) => ("created", c),
            Upserted::Updated(c) => ("updated", c),
            Upserted::Unchanged(c) | Upserted::LeftAlone(c) => ("unchanged", c),
        };
        Ok(json!({"contact": label, "pk": contact.pk(), "anonymous": contact.anonymous}))
    }
}

fn field_name(field: &str) -> &'static str {
    match field {
        "first_name" => "first_name",
        "last_name" => "last_name",
        _ => "name",
    }
}

/// Recipients as a table: header, then (line, cells, delivered) rows.
#[derive(Clone, Debug)]
struct RecipientTable {
    header: Vec<String>,
    rows: Vec<(u64, Vec<String>, bool)>,
}

enum CampaignRecipients {
    Inline(RecipientTable),
    File { bucket: String, key: String },
}

impl CampaignRecipients {
    fn from_event(event: &Value) -> Result<CampaignRecipients, EventError> {
        match (
            event.get("recipients_file").filter(|v| !v.is_null()),
            event.get("recipients").filter(|v| !v.is_null()),
        ) {
            (Some(file), _) => {
                let bucket = req_str(file, "bucket", 63)
                    .map_err(|_| invalid("recipients_file.bucket", "is required"))?;
                let key = req_str(file, "key", 1024)
                    .map_err(|_| invalid("recipients_file.key", "is required"))?;
                Ok(CampaignRecipients::File { bucket, key })
            }
            (None, Some(Value::Array(list))) => {
                let mut header: Vec<String> = vec!["phone".into(), "name".into()];
                let mut rows = Vec::with_capacity(list.len());
                for (i, recipient) in list.iter().enumerate() {
                    let path = |f: &str| format!("recipients[{i}].{f}");
                    let Value::Object(map) = recipient else {
                        return Err(invalid(&format!("recipients[{i}]"), "must be an object"));
                    };
                    for key in map.keys() {
                        if key != "delivery_status" && !header.contains(key) {
                            header.push(key.clone());
                        }
                    }
                    let status = opt_str(recipient, "delivery_status", 32)
                        .map_err(|_| invalid(&path("delivery_status"), "must be a string"))?;
                    let delivered = !matches!(
                        status.as_deref().map(str::to_ascii_lowercase).as_deref(),
                        Some("failed" | "undelivered")
                    );
                    let mut cells = Vec::with_capacity(header.len());
                    for title in &header {
                        cells.push(match map.get(title) {
                            None | Some(Value::Null) => String::new(),
                            Some(Value::String(s)) => s.clone(),
                            Some(Value::Number(n)) => n.to_string(),
                            Some(Value::Bool(b)) => b.to_string(),
                            Some(_) => return Err(invalid(&path(title), "must be a string")),
                        });
                    }
                    rows.push((i as u64 + 1, cells, delivered));
                }
                Ok(CampaignRecipients::Inline(RecipientTable { header, rows }))
            }
            (None, Some(other)) => Err(invalid(
                "recipients",
                format!("must be an array, not {}", type_name(other)),
            )),
            (None, None) => Err(invalid("recipients_file", "or `recipients` is required")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ports::memory::MemoryStore;

    async fn send(store: &MemoryStore, event: Value) -> Result<Value, EventError> {
        let config = Config::default();
        let service = EventService {
            objects: store,
            table: store,
            config: &config,
        };
        service.handle(&unwrap_envelope(event)).await
    }

    fn inbound(id: &str, status_name: Option<&str>) -> Value {
        json!({"type": "message.inbound", "account_id": "acme", "channel": "whatsapp", "message_id": id,
               "from": "+447911123456", "profile_name": status_name, "received_at": "2026-11-21T10:00:00Z"})
    }

    const PK: &str = "CONTACT#acme#whatsapp#+447911123456";

    #[tokio::test]
    async fn campaign_saves_delivered_recipients_once() {
        let store = MemoryStore::default();
        let event = json!({"type": "campaign.completed", "account_id": "acme", "campaign_id": "cmp-42", "channel": "whatsapp",
            "status": "succeeded", "default_country": "IN", "recipients": [
                {"phone": "+919876543210", "name": "John Doe", "delivery_status": "delivered"},
                {"phone": "98765 43211", "name": "Jane", "delivery_status": "read"},
                {"phone": "+919876543212", "name": "Failed", "delivery_status": "failed"},
                {"phone": "", "name": "Blank"},
                {"phone": "+919876543210", "name": "John again"}]});
        let answer = send(&store, event.clone()).await.expect("saved");
        assert_eq!(answer["created"], 2);
        assert_eq!(answer["rejected"], 1);
        assert_eq!(answer["not_delivered"], 1);
        assert_eq!(answer["duplicates"], 1);
        assert_eq!(answer["message"], "2 new contacts saved to Contact Book.");
        assert_eq!(send(&store, event).await.expect("again"), answer);
        let john = store
            .contact("CONTACT#acme#whatsapp#+919876543210")
            .expect("saved");
        assert_eq!(john.last_campaign_id.as_deref(), Some("cmp-42"));
        assert_eq!(john.source, Source::Campaign);
    }

    #[tokio::test]
    async fn failed_campaign_saves_nothing() {
        let store = MemoryStore::default();
        let answer = send(&store, json!({"type": "campaign.completed", "account_id": "acme", "campaign_id": "c", "channel": "sms",
            "status": "failed", "recipients": [{"phone": "+919876543210", "name": "A"}]})).await.expect("answered");
        assert_eq!(answer["status"], "not_saved");
        assert_eq!(store.contact_count(), 0);
    }

    #[tokio::test]
    async fn inbound_creates_anonymous_then_existing_and_is_idempotent() {
        let store = MemoryStore::default();
        let first = send(&store, inbound("m1", Some("Eva"))).await.expect("ok");
        assert_eq!(first, json!({"contact": "created_anonymous", "pk": PK}));
        let contact = store.contact(PK).expect("created");
        assert!(contact.anonymous);
        assert_eq!(contact.text.get("name").map(String::as_str), Some("Eva"));
        assert_eq!(
            send(&store, inbound("m1", Some("Eva"))).await.expect("ok"),
            first,
            "same message twice"
        );
        assert_eq!(
            send(&store, inbound("m2", Some("Other")))
                .await
                .expect("ok")["contact"],
            "existing"
        );
        assert_eq!(
            store
                .contact(PK)
                .and_then(|c| c.text.get("name").cloned())
                .as_deref(),
            Some("Eva")
        );
    }

    #[tokio::test]
    async fn archived_comes_back_blocked_stays_blocked() {
        let store = MemoryStore::default();
        send(&store, inbound("m1", Some("Eva"))).await.expect("ok");
        let mut contact = store.contact(PK).expect("created");
        contact.status = Status::Archived;
        store
            .contacts
            .lock()
            .expect("lock")
            .insert(PK.into(), contact.clone());
        assert_eq!(
            send(&store, inbound("m2", None)).await.expect("ok")["contact"],
            "reactivated"
        );
        assert_eq!(store.contact(PK).map(|c| c.status), Some(Status::Active));
        contact.status = Status::Blocked;
        store
            .contacts
            .lock()
            .expect("lock")
            .insert(PK.into(), contact);
        assert_eq!(
            send(&store, inbound("m3", None)).await.expect("ok")["contact"],
            "blocked"
        );
        assert_eq!(store.contact(PK).map(|c| c.status), Some(Status::Blocked));
    }

    #[tokio::test]
    async fn captured_completes_an_anonymous_contact() {
        let store = MemoryStore::default();
        send(&store, inbound("m1", Some("Eva"))).await.expect("ok");
        let answer = send(&store, json!({"type": "contact.captured", "account_id": "acme", "channel": "whatsapp", "phone": "+447911123456",
            "email": "eva@example.com", "name": "Eva Smith", "captured_by": "ai_agent", "conversation_id": "conv-9"})).await.expect("ok");
        assert_eq!(answer["contact"], "updated");
        let contact = store.contact(PK).expect("exists");
        assert!(!contact.anonymous);
        assert_eq!(
            contact.text.get("name").map(String::as_str),
            Some("Eva Smith")
        );
        assert_eq!(
            contact.text.get("email").map(String::as_str),
            Some("eva@example.com")
        );
    }

    #[tokio::test]
    async fn malformed_events_name_the_field_and_write_nothing() {
        let store = MemoryStore::default();
        for (event, field) in [
            (
                json!({"type": "message.inbound", "channel": "whatsapp", "message_id": "m", "from": "+447911123456"}),
                "account_id",
            ),
            (
                json!({"type": "message.inbound", "account_id": "acme", "channel": "fax", "message_id": "m", "from": "+447911123456"}),
                "channel",
            ),
            (
                json!({"type": "message.inbound", "account_id": "acme", "channel": "sms", "message_id": "m", "from": "12"}),
                "from",
            ),
            (
                json!({"type": "contact.captured", "account_id": "acme", "channel": "sms", "phone": "+447911123456", "email": "nope"}),
                "email",
            ),
            (
                json!({"type": "campaign.completed", "account_id": "acme", "campaign_id": 5, "channel": "sms", "status": "succeeded"}),
                "campaign_id",
            ),
            (json!({"type": "unknown"}), "type"),
        ] {
            match send(&store, event).await {
                Err(EventError::InvalidField { field: f, .. }) => assert_eq!(f, field),
                other => panic!("{field}: {other:?}"),
            }
        }
        assert_eq!(store.contact_count(), 0);
    }

    #[tokio::test]
    async fn eventbridge_envelopes_are_unwrapped() {
        let store = MemoryStore::default();
        let mut detail = inbound("m1", None);
        detail.as_object_mut().expect("object").remove("type");
        let answer = send(
            &store,
            json!({"detail-type": "message.inbound", "source": "inbox", "detail": detail}),
        )
        .await
        .expect("ok");
        assert_eq!(answer["contact"], "created_anonymous");
    }
}
