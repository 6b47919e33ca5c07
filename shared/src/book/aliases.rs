//! A WhatsApp contact's BSUIDs and the alias items naming it (DESIGN section 13): what
//! an erasure deletes and tombstones, and what a number change or a merge moves.

use std::collections::BTreeSet;

use crate::domain::channel::Channel;
use crate::domain::contact::Contact;
use crate::domain::whatsapp::is_bsuid;
use crate::ports::{Alias, Identities, IdentityWrite, StoreError};

/// The aliases naming `contact` (what an erasure deletes and a number change moves
/// with it): those of the BSUIDs it stores that still name it.
pub async fn aliases_of<S: Identities>(
    store: &S,
    contact: &Contact,
) -> Result<Vec<Alias>, StoreError> {
    let mut aliases = Vec::new();
    for user_id in bsuids_of(contact) {
        if let Some(alias) = store.alias(&contact.account_id, &user_id).await? {
            if alias.contact_key == contact.phone {
                aliases.push(alias);
            }
        }
    }
    Ok(aliases)
}

/// The BSUIDs a WhatsApp contact stores (`user_id`, and `user_ids`: one per business
/// portfolio); none for another channel's.
pub fn bsuids_of(contact: &Contact) -> BTreeSet<String> {
    if contact.channel != Channel::Whatsapp {
        return BTreeSet::new();
    }
    contact
        .text
        .get("user_id")
        .into_iter()
        .chain(&contact.user_ids)
        .filter(|id| is_bsuid(id))
        .cloned()
        .collect()
}

/// The write that points `alias` at the contact keyed `to`, if it still names the one
/// it named when read.
pub fn repointed(alias: Alias, to: &str) -> IdentityWrite {
    let named = alias.contact_key.clone();
    IdentityWrite::Alias(
        Alias {
            contact_key: to.to_string(),
            ..alias
        },
        Some(named),
    )
}
