//! `campaign.completed`: a succeeded campaign's delivered recipients are saved, once per
//! campaign, with the same row rules as an import with option `update`. Recipients come
//! inline or in a file (CSV or a workbook, read through [`crate::parse::read_rows`]
//! like an upload) that must have a name and a phone column.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::ops::ControlFlow;

use tokio::io::AsyncReadExt;

use super::answer::{CampaignAnswer, RecipientsNotSaved, RecipientsSaved};
use super::error::{invalid, EventError, FileProblem, HeaderProblem};
use super::ledger::Once;
use super::numbers::region_for;
use super::payload::{account_id, channel, CampaignCompleted, Recipient, RecipientsFile};
use super::stamp;
use crate::book::{save_draft, Tombstones};
use crate::config::Config;
use crate::domain::channel::Channel;
use crate::domain::contact::Source;
use crate::domain::field::Field;
use crate::domain::mapping::ColumnMap;
use crate::domain::options::{Blanks, OnExisting};
use crate::domain::outcome::{saved_message, Outcome, RowCounts};
use crate::domain::phone::{PhoneRejection, Region};
use crate::domain::validate::{validate_row, RowRules, Verdict};
use crate::parse::{
    read_rows, Body, Format, RawRow, ReadOptions, RowKind, SourceError, WorkbookLimits,
};
use crate::ports::{
    ContactStore, EventLedger, ObjectStore, SettingsStore, StoreError, Suppressions,
};

/// A `campaign.completed` event whose fields are checked.
struct Campaign {
    account_id: String,
    campaign_id: String,
    channel: Channel,
    status: String,
}

/// Where the recipients are.
enum Recipients {
    Inline(RecipientTable),
    File { bucket: String, key: String },
}

/// Recipients as a file would hold them: a header, then the rows.
#[derive(Debug, Default)]
struct RecipientTable {
    header: Vec<String>,
    rows: Vec<RecipientRow>,
}

#[derive(Debug)]
struct RecipientRow {
    cells: Vec<String>,
    delivered: bool,
}

/// Saves a succeeded campaign's delivered recipients, once per campaign.
pub(super) async fn handle<O, C, S, L>(
    objects: &O,
    contacts: &C,
    settings: &S,
    ledger: &L,
    config: &Config,
    event: CampaignCompleted,
) -> Result<CampaignAnswer, EventError>
where
    O: ObjectStore,
    C: ContactStore + Suppressions,
    S: SettingsStore,
    L: EventLedger,
{
    let campaign = Campaign {
        account_id: account_id(event.account_id)?,
        campaign_id: event.campaign_id.required("campaign_id")?,
        channel: channel(event.channel)?,
        status: event.status.required("status")?,
    };
    let recipients = Recipients::of(event.recipients_file, event.recipients)?;
    if let Recipients::File { bucket, key } = &recipients {
        // Only the event's own account's campaign files: nothing in an event reads
        // another account's data, or an upload.
        let own = format!("campaigns/{}/", campaign.account_id);
        if *bucket != config.bucket || !key.starts_with(&own) {
            return Err(invalid(
                "recipients_file.key",
                format!("must be a file under {own} in the upload bucket"),
            ));
        }
    }
    let region = region_for(
        settings,
        config,
        event.default_country,
        &campaign.account_id,
    )
    .await?;
    if campaign.status != "succeeded" {
        return Ok(CampaignAnswer::NotSaved(RecipientsNotSaved {
            reason: format!(
                "campaign status is {:?}; only succeeded campaigns save their recipients",
                campaign.status
            ),
            message: saved_message(0, false),
            ..Default::default()
        }));
    }
    let key = format!("campaign:{}", campaign.campaign_id);
    let saver = Saver {
        objects,
        contacts,
        config,
    };
    Once::new(ledger, config)
        .run(&campaign.account_id, &key, || async {
            let table = match recipients {
                Recipients::Inline(table) => table,
                Recipients::File { bucket, key } => {
                    saver.read_recipients_file(&bucket, &key).await?
                }
            };
            let saved = saver.save_recipients(&campaign, region, table).await?;
            Ok(CampaignAnswer::Saved(saved))
        })
        .await
}

/// What saving one campaign's recipients reads and writes.
struct Saver<'a, O, C> {
    objects: &'a O,
    contacts: &'a C,
    config: &'a Config,
}

impl<O, C> Saver<'_, O, C>
where
    O: ObjectStore,
    C: ContactStore + Suppressions,
{
    /// Saves the delivered rows and answers what became of them.
    async fn save_recipients(
        &self,
        campaign: &Campaign,
        region: Option<Region>,
        table: RecipientTable,
    ) -> Result<RecipientsSaved, EventError> {
        let columns = recipient_columns(&table.header)?.for_channel(campaign.channel);
        let (lists, tags) = (BTreeSet::new(), BTreeSet::new());
        let rules = RowRules {
            columns: &columns,
            channel: campaign.channel,
            default_region: region,
            lists: &lists,
            tags: &tags,
            // DESIGN 10: a campaign's rows follow an import's default rules.
            blanks: Blanks::Keep,
        };
        let delivered = table.rows.iter().filter(|row| row.delivered);
        let (counts, reasons) = self.save_rows(campaign, &rules, delivered).await?;
        tracing::info!(
            account_id = campaign.account_id,
            campaign_id = campaign.campaign_id,
            created = counts.created,
            updated = counts.updated,
            rejected = counts.rejected,
            "campaign recipients saved"
        );
        Ok(RecipientsSaved {
            created: counts.created,
            updated: counts.updated,
            unchanged: counts.unchanged,
            rejected: counts.rejected,
            duplicates: counts.duplicate_in_file,
            not_delivered: table.rows.iter().filter(|row| !row.delivered).count() as u64,
            rejections_by_reason: reasons,
            message: saved_message(counts.created, false),
        })
    }

    /// Validates and saves rows like an import with option `update`: a rejected number
    /// or one already seen is counted, not saved.
    async fn save_rows(
        &self,
        campaign: &Campaign,
        rules: &RowRules<'_>,
        rows: impl Iterator<Item = &RecipientRow>,
    ) -> Result<(RowCounts, BTreeMap<PhoneRejection, u64>), EventError> {
        let stamp = stamp(Source::Campaign, Some(&campaign.campaign_id));
        let tombstones = Tombstones::new(self.contacts, self.config.suppression.as_ref());
        let mut counts = RowCounts::default();
        let mut reasons = BTreeMap::new();
        let mut seen = HashSet::new();
        let mut kept_opted_out = 0u64;
        for row in rows {
            let draft = match validate_row(&row.cells, rules) {
                Verdict::Accepted { draft, .. } => draft,
                Verdict::Rejected { reason, .. } => {
                    *reasons.entry(reason).or_default() += 1;
                    counts.add(Outcome::Rejected);
                    continue;
                }
            };
            if !seen.insert(draft.phone.clone()) {
                counts.add(Outcome::DuplicateInFile);
                continue;
            }
            let (account_id, channel) = (&campaign.account_id, campaign.channel);
            if tombstones.erased(account_id, channel, &draft.phone).await? {
                *reasons.entry(PhoneRejection::Suppressed).or_default() += 1;
                counts.add(Outcome::Rejected);
                continue;
            }
            let saved = save_draft(
                self.contacts,
                account_id,
                channel,
                &draft,
                &stamp,
                OnExisting::Update,
            )
            .await?;
            counts.add(saved.outcome);
            kept_opted_out += u64::from(saved.kept_opted_out);
        }
        if kept_opted_out > 0 {
            // The answer keeps its documented shape: the refusals are logged, as ids
            // and a count only.
            tracing::info!(
                account_id = campaign.account_id,
                campaign_id = campaign.campaign_id,
                kept_opted_out,
                "recipients said opted in but had opted out themselves; they stay opted out"
            );
        }
        Ok((counts, reasons))
    }

    /// Reads a recipients file whole (at most `MAX_UPLOAD_BYTES`) and parses it off the
    /// async threads.
    async fn read_recipients_file(
        &self,
        bucket: &str,
        key: &str,
    ) -> Result<RecipientTable, EventError> {
        let file_error = |problem: FileProblem| EventError::RecipientsFile {
            bucket: bucket.into(),
            key: key.into(),
            problem,
        };
        let ext = key
            .rsplit_once('.')
            .map(|(_, e)| e.to_ascii_lowercase())
            .unwrap_or_default();
        let Some(format) = Format::from_extension(&ext) else {
            return Err(file_error(FileProblem::UnsupportedFormat(ext)));
        };
        let body = match self.download(bucket, key).await {
            Ok(body) => body,
            Err(Download::Store(e)) => return Err(EventError::Store(e)),
            Err(Download::File(problem)) => return Err(file_error(problem)),
        };
        let rows = tokio::task::spawn_blocking(move || parse_rows(body, format))
            .await
            .map_err(|e| file_error(e.into()))?
            .map_err(|e| file_error(e.into()))?;
        Ok(RecipientTable::from_rows(rows))
    }

    async fn download(&self, bucket: &str, key: &str) -> Result<Vec<u8>, Download> {
        let limit = self.config.max_upload_bytes;
        let stream = self.objects.open(bucket, key).await.map_err(|e| match e {
            StoreError::NotFound { .. } => Download::File(FileProblem::NotFound),
            other => Download::Store(other),
        })?;
        let mut body = Vec::new();
        stream
            .take(limit + 1)
            .read_to_end(&mut body)
            .await
            .map_err(|e| Download::File(FileProblem::Download(e)))?;
        if body.len() as u64 > limit {
            return Err(Download::File(FileProblem::TooLarge(limit)));
        }
        Ok(body)
    }
}

/// Why a download failed: the store (retryable) or the file.
enum Download {
    Store(StoreError),
    File(FileProblem),
}

/// Every row of a file, through the parse module's one entry point. A `.txt` file is
/// read as a table: recipients have a name column as well as a phone column.
fn parse_rows(body: Vec<u8>, format: Format) -> Result<Vec<RawRow>, SourceError> {
    let options = ReadOptions {
        format: if format == Format::Txt {
            Format::Csv
        } else {
            format
        },
        delimiter: None,
        sheet: None,
    };
    let mut rows = Vec::new();
    let body = Body::<std::io::Empty>::Bytes(body);
    read_rows(body, &options, &WorkbookLimits::default(), |row| {
        rows.push(row);
        ControlFlow::Continue(())
    })?;
    Ok(rows)
}

/// The column mapping of a recipients table: a phone column and a name (or first name)
/// column are required.
fn recipient_columns(header: &[String]) -> Result<ColumnMap, EventError> {
    let columns = ColumnMap::from_header(header, &[])
        .map_err(|e| EventError::MissingRequiredHeaders(e.into()))?;
    if columns.index_of(Field::Name).is_none() && columns.index_of(Field::FirstName).is_none() {
        return Err(EventError::MissingRequiredHeaders(
            HeaderProblem::NoNameColumn(header.to_vec()),
        ));
    }
    Ok(columns)
}

impl Recipients {
    /// The file when one is given, else the inline recipients.
    fn of(
        file: Option<RecipientsFile>,
        inline: Option<Vec<Recipient>>,
    ) -> Result<Recipients, EventError> {
        match (file, inline) {
            (Some(file), _) => Ok(Recipients::File {
                bucket: file.bucket.required("recipients_file.bucket")?,
                key: file.key.required("recipients_file.key")?,
            }),
            (None, Some(inline)) => Ok(Recipients::Inline(RecipientTable::inline(inline))),
            (None, None) => Err(invalid("recipients_file", "or `recipients` is required")),
        }
    }
}

impl RecipientTable {
    /// Inline recipients as a table: `phone` and `name` first, then every other field
    /// in the order recipients first have it. A row has a cell for each column known
    /// when it is read.
    fn inline(recipients: Vec<Recipient>) -> RecipientTable {
        let mut header: Vec<String> = vec!["phone".into(), "name".into()];
        let mut rows = Vec::with_capacity(recipients.len());
        for recipient in recipients {
            for name in recipient.cells.keys() {
                if !header.contains(name) {
                    header.push(name.clone());
                }
            }
            let cells = header
                .iter()
                .map(|title| recipient.cells.get(title).cloned().unwrap_or_default())
                .collect();
            rows.push(RecipientRow {
                cells,
                delivered: recipient.delivered(),
            });
        }
        RecipientTable { header, rows }
    }

    /// A file's rows as a table: its header, then the rows after it (all delivered).
    fn from_rows(rows: Vec<RawRow>) -> RecipientTable {
        let mut rows = rows.into_iter();
        let header = rows
            .find(|r| r.kind == RowKind::Header)
            .map(|r| r.cells)
            .unwrap_or_default();
        let rows = rows
            .map(|r| RecipientRow {
                cells: r.cells,
                delivered: true,
            })
            .collect();
        RecipientTable { header, rows }
    }
}
