//! What each event answers (DESIGN section 10). Answers are also what the ledger keeps
//! for a redelivered event, so they read back as well as they write.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

pub use crate::domain::inbound::InboundContact;

use crate::domain::outcome::{ImportStatus, RowCounts};
use crate::domain::phone::PhoneRejection;

/// The answer to one event.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum Answer {
    /// To `campaign.completed`.
    Campaign(CampaignAnswer),
    /// To `message.inbound`.
    Inbound(InboundAnswer),
    /// To `contact.captured`.
    Captured(CapturedAnswer),
    /// To `contact.erase`.
    Erase(EraseAnswer),
    /// To `contacts.export`.
    Export(ExportAnswer),
    /// To `import.undo`.
    Undo(UndoAnswer),
    /// To `imports.list`.
    Imports(ImportsAnswer),
    /// To a Meta WhatsApp webhook body.
    Webhook(WebhookAnswer),
}

/// What a webhook body did, item by item (DESIGN section 13).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookAnswer {
    /// Messages whose sender's contact was created.
    pub contacts_created: u64,
    /// Messages that changed a contact (or its aliases).
    pub contacts_updated: u64,
    /// Messages that changed nothing (already known; redeliveries).
    pub messages_unchanged: u64,
    /// Statuses that changed a contact (reachability, consent, an alias).
    pub statuses_applied: u64,
    /// Statuses that changed nothing, or named nobody in the book.
    pub statuses_without_effect: u64,
    /// `user_preferences` entries that changed consent.
    pub preferences_applied: u64,
    /// `user_preferences` entries that changed nothing (older, or already so).
    pub preferences_without_effect: u64,
    /// BSUID changes applied.
    pub identity_changes: u64,
    /// Items for a business number no account has (`WABA#…` item missing).
    pub unknown_phone_number_id: u64,
    /// Items skipped: group messages and statuses, preferences of another category,
    /// system messages that name no number or BSUID to change to.
    pub ignored: u64,
    /// Items that cannot be read (`invalid_item`: a missing id, a wrong type, nobody
    /// named); the body's other items are applied all the same.
    pub invalid_items: u64,
    /// Changes of webhook fields the contact book does not use
    /// (`message_template_status_update`, `account_update`, ...): acknowledged.
    pub other_fields: u64,
}

/// The answer to `import.undo`, by `status`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum UndoAnswer {
    /// The import's untouched contacts are gone.
    Undone {
        /// Contacts deleted.
        deleted: u64,
        /// Contacts the import last wrote that were kept: it did not create them, or
        /// they changed since.
        kept_changed: u64,
    },
}

/// The answer to `imports.list`: a page of the account's imports, newest first.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImportsAnswer {
    /// The imports, newest first.
    pub imports: Vec<ImportEntry>,
    /// The page token to send as `next` for the following page; absent on the last page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
}

/// One import in an account's history, as its job item has it now.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImportEntry {
    /// The import.
    pub import_id: String,
    /// `running`, `completed`, `completed_with_errors` or `failed`.
    pub status: ImportStatus,
    /// Counts so far (summary.json's `rows` once finished).
    pub rows: RowCounts,
    /// The uploaded file's key.
    pub source_key: String,
    /// When the import started (RFC 3339 UTC).
    pub started_at: String,
    /// When it finished; `null` while it runs.
    pub finished_at: Option<String>,
    /// Where its summary.json is; `null` while it runs.
    pub summary_key: Option<String>,
    /// Where its rows.csv is; `null` while it runs, and for a failed import that read no
    /// row.
    pub rows_report_key: Option<String>,
    /// Where its report.html is; `null` while it runs.
    pub html_report_key: Option<String>,
}

/// The answer to `contacts.export`, by `status`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum ExportAnswer {
    /// The file is written.
    Exported {
        /// Its key in the bucket.
        key: String,
        /// Contacts in it.
        contacts: u64,
    },
}

/// The answer to `campaign.completed`, by `status`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum CampaignAnswer {
    /// The delivered recipients were saved.
    Saved(RecipientsSaved),
    /// The campaign did not succeed: nothing was saved.
    NotSaved(RecipientsNotSaved),
}

/// What saving a campaign's recipients did.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecipientsSaved {
    /// New contacts.
    pub created: u64,
    /// Existing contacts that changed.
    pub updated: u64,
    /// Existing contacts with nothing new.
    pub unchanged: u64,
    /// Recipients whose number is unusable.
    pub rejected: u64,
    /// Repeats of an earlier recipient's number.
    pub duplicates: u64,
    /// Recipients the message did not reach (not saved).
    pub not_delivered: u64,
    /// Rejections by reason code.
    pub rejections_by_reason: BTreeMap<PhoneRejection, u64>,
    /// "N new contacts saved to Contact Book."
    pub message: String,
}

/// Why a campaign's recipients were not saved.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecipientsNotSaved {
    /// For a person.
    pub reason: String,
    /// Always 0.
    pub created: u64,
    /// Always 0.
    pub updated: u64,
    /// Always 0.
    pub unchanged: u64,
    /// Always 0.
    pub rejected: u64,
    /// "0 new contacts saved to Contact Book."
    pub message: String,
}

/// The answer to `message.inbound`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InboundAnswer {
    /// What the sender's contact is now.
    pub contact: InboundContact,
    /// The contact's partition key.
    pub pk: String,
}

/// The answer to `contact.captured`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CapturedAnswer {
    /// What the save did.
    pub contact: CapturedContact,
    /// The contact's partition key.
    pub pk: String,
    /// Whether the contact is still anonymous (no name captured yet).
    pub anonymous: bool,
}

/// What saving captured details did.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CapturedContact {
    /// A new contact.
    Created,
    /// An existing contact gained details.
    Updated,
    /// An existing contact already had them.
    Unchanged,
    /// Not saved: the number was erased (only the person's own message brings them
    /// back).
    Suppressed,
}

/// The answer to `contact.erase`, by `status`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum EraseAnswer {
    /// The contact is gone; `items` counts the items deleted.
    Erased {
        /// Items deleted.
        items: u64,
    },
    /// No contact has that number on that channel: nothing changed.
    NotFound,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn answers_serialise_to_the_documented_shapes_and_read_back() {
        let saved = CampaignAnswer::Saved(RecipientsSaved {
            created: 2,
            rejected: 1,
            rejections_by_reason: BTreeMap::from([(PhoneRejection::Missing, 1)]),
            message: "2 new contacts saved to Contact Book.".into(),
            ..Default::default()
        });
        let value = serde_json::to_value(Answer::Campaign(saved.clone())).expect("serialises");
        assert_eq!(
            value,
            json!({"status": "saved", "created": 2, "updated": 0, "unchanged": 0, "rejected": 1,
                   "duplicates": 0, "not_delivered": 0, "rejections_by_reason": {"missing_phone": 1},
                   "message": "2 new contacts saved to Contact Book."})
        );
        assert_eq!(
            serde_json::from_value::<CampaignAnswer>(value).expect("reads back"),
            saved
        );

        let inbound = InboundAnswer {
            contact: InboundContact::CreatedAnonymous,
            pk: "CONTACT#acme#sms#+447911123456".into(),
        };
        let value = serde_json::to_value(Answer::Inbound(inbound.clone())).expect("serialises");
        assert_eq!(
            value,
            json!({"contact": "created_anonymous", "pk": "CONTACT#acme#sms#+447911123456"})
        );
        assert_eq!(value["contact"], InboundContact::CreatedAnonymous.as_str());
        assert_eq!(
            serde_json::from_value::<InboundAnswer>(value).expect("reads back"),
            inbound
        );

        let erased = serde_json::to_value(Answer::Erase(EraseAnswer::Erased { items: 1 }));
        assert_eq!(
            erased.expect("serialises"),
            json!({"status": "erased", "items": 1})
        );
        let unknown = serde_json::to_value(Answer::Erase(EraseAnswer::NotFound));
        assert_eq!(unknown.expect("serialises"), json!({"status": "not_found"}));
        let exported = ExportAnswer::Exported {
            key: "exports/acme/exp_1.csv".into(),
            contacts: 3,
        };
        assert_eq!(
            serde_json::to_value(Answer::Export(exported)).expect("serialises"),
            json!({"status": "exported", "key": "exports/acme/exp_1.csv", "contacts": 3})
        );

        let undone = UndoAnswer::Undone {
            deleted: 9,
            kept_changed: 1,
        };
        let value = serde_json::to_value(Answer::Undo(undone.clone())).expect("serialises");
        assert_eq!(
            value,
            json!({"status": "undone", "deleted": 9, "kept_changed": 1})
        );
        assert_eq!(
            serde_json::from_value::<UndoAnswer>(value).expect("reads back"),
            undone
        );

        let entry = ImportEntry {
            import_id: "imp_0123456789abcdef".into(),
            status: ImportStatus::Completed,
            rows: RowCounts {
                total: 3,
                created: 2,
                rejected: 1,
                ..RowCounts::default()
            },
            source_key: "imports/acme/whatsapp/list.csv".into(),
            started_at: "2026-11-21T10:00:00.000Z".into(),
            finished_at: Some("2026-11-21T10:00:01.000Z".into()),
            summary_key: Some("reports/acme/imp_0123456789abcdef/summary.json".into()),
            rows_report_key: Some("reports/acme/imp_0123456789abcdef/rows.csv".into()),
            html_report_key: Some("reports/acme/imp_0123456789abcdef/report.html".into()),
        };
        let listed = ImportsAnswer {
            imports: vec![entry.clone()],
            next: Some("SU1QT1JU".into()),
        };
        let value = serde_json::to_value(Answer::Imports(listed.clone())).expect("serialises");
        assert_eq!(
            value,
            json!({"imports": [{"import_id": "imp_0123456789abcdef", "status": "completed",
                "rows": {"total": 3, "created": 2, "updated": 0, "unchanged": 0,
                         "skipped_existing": 0, "skipped_new": 0, "duplicate_in_file": 0, "rejected": 1},
                "source_key": "imports/acme/whatsapp/list.csv",
                "started_at": "2026-11-21T10:00:00.000Z",
                "finished_at": "2026-11-21T10:00:01.000Z",
                "summary_key": "reports/acme/imp_0123456789abcdef/summary.json",
                "rows_report_key": "reports/acme/imp_0123456789abcdef/rows.csv",
                "html_report_key": "reports/acme/imp_0123456789abcdef/report.html"}],
                "next": "SU1QT1JU"})
        );
        assert_eq!(
            serde_json::from_value::<ImportsAnswer>(value).expect("reads back"),
            listed
        );
        // The last page has no `next` at all.
        let last = ImportsAnswer {
            imports: vec![],
            next: None,
        };
        assert_eq!(
            serde_json::to_value(Answer::Imports(last)).expect("serialises"),
            json!({"imports": []})
        );
    }
}
