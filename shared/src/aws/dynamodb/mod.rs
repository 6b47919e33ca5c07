//! The DynamoDB adapter: one table (DESIGN section 9) holding four kinds of item, each
//! behind its own port and in its own file.
//!
//! | file | port | item |
//! |---|---|---|
//! | `account.rs` | [`AccountContacts`](crate::ports::AccountContacts), [`ContactRemoval`](crate::ports::ContactRemoval) | contacts through GSI `by_account`, a page of a shard per Query; an undo's conditional deletes |
//! | `contacts.rs` | [`ContactStore`](crate::ports::ContactStore) | `CONTACT#…` / `PROFILE`: the conditional writes |
//! | `jobs.rs` | [`JobStore`](crate::ports::JobStore) | `IMPORT#…` / `JOB`: the claim and progress |
//! | `settings.rs` | [`SettingsStore`](crate::ports::SettingsStore) | `ACCOUNT#…` / `SETTINGS` |
//! | `ledger.rs` | [`EventLedger`](crate::ports::EventLedger) | `EVENT#…` / `SEEN` |
//! | `identities.rs` | [`Identities`](crate::ports::Identities) | `WABA#…` / `ACCOUNT` (a business number's account), `ALIAS#…` / `CONTACT` (BSUIDs); contacts by candidate keys |
//! | `suppressions.rs` | [`Suppressions`](crate::ports::Suppressions) | `SUPPRESS#…` / `SUPPRESS`: erasure tombstones |
//!
//! Each file maps its domain type to an item (`From<&Contact> for Item`) and back
//! (`TryFrom<&Item>`). Reading is strict (`item.rs`): an attribute we always write that
//! is missing, of the wrong type, or holding a code we do not know is
//! [`StoreError::Malformed`](crate::ports::StoreError::Malformed) naming the item, never
//! a silent default. Keys come from [`crate::aws::keys`].

mod account;
mod contacts;
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
