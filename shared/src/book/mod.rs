//! The contact book: the one place a contact is written.
//!
//! Every write path goes through here, so a rule written once holds for all of them:
//! imports and campaign recipients ([`save_drafts`], [`save_draft`], dry runs with
//! [`plan_draft`]), inbound messages ([`save_inbound`]) and captured details
//! ([`upsert`]), WhatsApp webhook items, merges, number and BSUID changes
//! ([`identity`], with the alias items of [`aliases`]), erasure and the tombstones that keep an erased person out
//! ([`erasure`]), a queue batch's reads and writes made together ([`deferred`]), listing an account ([`listing`]) and undoing an import ([`undo`]).
//!
//! Writes are conditional (create when absent, otherwise merge into the stored item
//! under its version) and decided again when someone else wrote first: never a lost
//! update. Transactions are used only where several items must change together (a
//! merge, an alias move, an erasure): they cost twice a single write.

pub mod aliases;
mod batch;
pub mod deferred;
pub mod erasure;
pub mod identity;
pub mod listing;
mod save;
pub mod undo;

pub use batch::{save_drafts, Lookup};
pub use deferred::Deferred;
pub use erasure::{erase, Erased, Tombstones};
pub use listing::contact_pages;
pub use save::{
    plan_draft, save_draft, save_inbound, upsert, upsert_unless_erased, RowSaved, Upserted,
};
pub use undo::{undo_import, Undone};

use crate::ports::StoreError;

/// How many times a write is decided again after losing a race.
const MAX_ATTEMPTS: u32 = 8;

/// Why the book could not save: the store failed, or the item kept changing.
#[derive(Debug, thiserror::Error)]
pub enum SaveError {
    /// A store call failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Every attempt lost a race.
    #[error("contact {0} kept changing during {MAX_ATTEMPTS} attempts to save it")]
    Contention(String),
}
