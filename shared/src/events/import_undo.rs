//! `import.undo`: the event checked, then the book's [`undo_import`].
//!
//! Not run through the ledger: a repeated undo must still delete what the import
//! created after the first one ran (an undo sent while the import was still going), and
//! the conditional deletes already make a repeat harmless: it deletes nothing twice and
//! answers what it finds (`deleted: 0` once all is undone).

use super::error::{invalid, EventError};
use super::payload::{self, ImportUndo};
use super::UndoAnswer;
use crate::book::undo_import;
use crate::domain::keys::is_import_id;
use crate::ports::{AccountContacts, ContactRemoval};

/// The import id an undo names: `imp_` and 16 lower-case hex digits, as imports make them.
fn import_id(event: &mut ImportUndo) -> Result<String, EventError> {
    let id = std::mem::take(&mut event.import_id).required("import_id")?;
    if !is_import_id(&id) {
        return Err(invalid(
            "import_id",
            format!("{id:?} is not an import id (imp_ and 16 hex digits)"),
        ));
    }
    Ok(id)
}

/// Deletes the contacts the import created that nobody changed since, and counts the
/// ones kept.
pub(super) async fn handle<C>(contacts: &C, mut event: ImportUndo) -> Result<UndoAnswer, EventError>
where
    C: AccountContacts + ContactRemoval,
{
    let account_id = payload::account_id(std::mem::take(&mut event.account_id))?;
    let import_id = import_id(&mut event)?;
    let undone = undo_import(contacts, &account_id, &import_id).await?;
    tracing::info!(
        account_id,
        import_id,
        deleted = undone.deleted,
        kept_changed = undone.kept_changed,
        "import undone"
    );
    Ok(UndoAnswer::Undone {
        deleted: undone.deleted,
        kept_changed: undone.kept_changed,
    })
}
