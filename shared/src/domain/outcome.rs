//! The contact book's own vocabulary: what became of a row, counts by outcome, the
//! status of an import and why a whole file failed. Every code is an enum serialised to
//! the string DESIGN sections 8-9 document; rejection reasons are
//! [`PhoneRejection`](crate::domain::phone::PhoneRejection) and warnings
//! [`WarningCode`](crate::domain::validate::WarningCode).

use serde::{Deserialize, Serialize};

/// What became of one data row.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// A new contact.
    Created,
    /// An existing contact with a value that differed.
    Updated,
    /// An existing contact, nothing differed: no write.
    Unchanged,
    /// An existing contact left alone (option `ignore`).
    SkippedExisting,
    /// No contact existed and none was created (option `on-new=skip`).
    SkippedNew,
    /// The same number earlier in the file.
    DuplicateInFile,
    /// The key field is unusable.
    Rejected,
}

impl Outcome {
    /// The documented name.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Created => "created",
            Outcome::Updated => "updated",
            Outcome::Unchanged => "unchanged",
            Outcome::SkippedExisting => "skipped_existing",
            Outcome::SkippedNew => "skipped_new",
            Outcome::DuplicateInFile => "duplicate_in_file",
            Outcome::Rejected => "rejected",
        }
    }
}

/// Row counts by outcome.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RowCounts {
    /// Data rows (not the header, not blank lines).
    pub total: u64,
    /// New contacts.
    pub created: u64,
    /// Updated contacts.
    pub updated: u64,
    /// Existing contacts with nothing new.
    pub unchanged: u64,
    /// Existing contacts left alone.
    pub skipped_existing: u64,
    /// Rows whose contact did not exist and was not created (`on-new=skip`).
    #[serde(default)]
    pub skipped_new: u64,
    /// Repeats of an earlier number.
    pub duplicate_in_file: u64,
    /// Rows refused.
    pub rejected: u64,
}

impl RowCounts {
    /// Counts one outcome.
    pub fn add(&mut self, outcome: Outcome) {
        self.total += 1;
        *match outcome {
            Outcome::Created => &mut self.created,
            Outcome::Updated => &mut self.updated,
            Outcome::Unchanged => &mut self.unchanged,
            Outcome::SkippedExisting => &mut self.skipped_existing,
            Outcome::SkippedNew => &mut self.skipped_new,
            Outcome::DuplicateInFile => &mut self.duplicate_in_file,
            Outcome::Rejected => &mut self.rejected,
        } += 1;
    }
}

/// The import's overall status.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ImportStatus {
    /// Still going (job item only).
    Running,
    /// Every row taken.
    Completed,
    /// At least one row rejected.
    CompletedWithErrors,
    /// The file as a whole failed.
    Failed,
}

impl ImportStatus {
    /// The documented value.
    pub fn as_str(self) -> &'static str {
        match self {
            ImportStatus::Running => "running",
            ImportStatus::Completed => "completed",
            ImportStatus::CompletedWithErrors => "completed_with_errors",
            ImportStatus::Failed => "failed",
        }
    }
}

/// Why a whole file failed: `error.code` of summary.json (DESIGN section 8).
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureCode {
    /// The extension is not one we read.
    UnsupportedFormat,
    /// No data rows.
    EmptyFile,
    /// No column maps to the phone field.
    MissingPhoneColumn,
    /// Over the size limit, or a workbook that inflates too far.
    FileTooLarge,
    /// Over the row limit.
    TooManyRows,
    /// Not readable as its format.
    UnreadableFile,
    /// An upload option has a bad value.
    BadOption,
}

impl FailureCode {
    /// The documented code.
    pub fn as_str(self) -> &'static str {
        match self {
            FailureCode::UnsupportedFormat => "unsupported_format",
            FailureCode::EmptyFile => "empty_file",
            FailureCode::MissingPhoneColumn => "missing_phone_column",
            FailureCode::FileTooLarge => "file_too_large",
            FailureCode::TooManyRows => "too_many_rows",
            FailureCode::UnreadableFile => "unreadable_file",
            FailureCode::BadOption => "bad_option",
        }
    }
}

/// The user-facing sentence: "N new contacts saved to Contact Book."
pub fn saved_message(created: u64, dry_run: bool) -> String {
    let noun = if created == 1 { "contact" } else { "contacts" };
    if dry_run {
        format!(
            "Dry run: {created} new {noun} would be saved to Contact Book; nothing was written."
        )
    } else {
        format!("{created} new {noun} saved to Contact Book.")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_counts_new_contacts() {
        assert_eq!(
            saved_message(10, false),
            "10 new contacts saved to Contact Book."
        );
        assert_eq!(
            saved_message(1, false),
            "1 new contact saved to Contact Book."
        );
    }
}
