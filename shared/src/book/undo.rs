//! `import.undo` (DESIGN section 14): [`undo_import`] removes what one import created
//! and nobody changed since, reading the account through [`super::listing`].

use futures::stream::{self, TryStreamExt};

use super::listing::contact_pages;
use crate::domain::contact::Contact;
use crate::ports::{AccountContacts, ContactRemoval, DeleteOutcome, StoreError};

/// How many conditional deletes of an undo are in flight at once.
const DELETES_IN_FLIGHT: usize = 16;

/// What an undo did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Undone {
    /// Contacts the import created that nobody changed since: deleted.
    pub deleted: u64,
    /// Contacts the import last wrote but did not create, or that changed since (also
    /// while the undo ran): kept.
    pub kept_changed: u64,
}

/// Deletes the contacts import `import_id` created and nobody changed since (version 1,
/// `last_import_id` = the import), each with a delete conditioned on exactly that, and
/// counts the ones it last wrote that are kept. Running it again deletes nothing more.
///
/// What an import wrote is read from the contacts themselves: a contact it created that
/// a later import updated carries that later import's id and is not this import's to
/// undo (nor counted).
pub async fn undo_import<S>(
    store: &S,
    account_id: &str,
    import_id: &str,
) -> Result<Undone, StoreError>
where
    S: AccountContacts + ContactRemoval,
{
    let ours = |contact: &Contact| contact.last_import_id.as_deref() == Some(import_id);
    contact_pages(store, account_id, None)
        .map_ok(|page| stream::iter(page.contacts.into_iter().map(Ok)))
        .try_flatten()
        .try_filter(move |contact| std::future::ready(ours(contact)))
        .map_ok(|contact| async move {
            if contact.version == 1 {
                store.delete_if_untouched(&contact, import_id).await
            } else {
                Ok(DeleteOutcome::Kept(Box::new(contact)))
            }
        })
        .try_buffer_unordered(DELETES_IN_FLIGHT)
        .try_fold(Undone::default(), |mut undone, outcome| async move {
            match outcome {
                DeleteOutcome::Deleted => undone.deleted += 1,
                DeleteOutcome::Kept(_) => undone.kept_changed += 1,
                DeleteOutcome::Absent => {}
            }
            Ok(undone)
        })
        .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::channel::Channel;
    use crate::domain::contact::{ContactDraft, Source, WriteStamp};
    use crate::ports::memory::MemoryContacts;
    use crate::ports::{ContactPage, ContactStore, PageToken, Precondition};

    fn stamp(import_id: Option<&str>) -> WriteStamp {
        WriteStamp {
            now: "2026-11-29T10:00:00Z".into(),
            source: Source::Import,
            import_id: import_id.map(str::to_string),
            campaign_id: None,
        }
    }

    fn draft(phone: &str) -> ContactDraft {
        let mut draft = ContactDraft {
            phone: phone.into(),
            ..Default::default()
        };
        draft.text.insert("name", format!("Person {phone}"));
        draft
    }

    /// Stores a contact `import_id` created.
    async fn created_by(
        store: &MemoryContacts,
        account: &str,
        phone: &str,
        import_id: &str,
    ) -> Contact {
        let contact = Contact::create(
            account,
            Channel::Whatsapp,
            &draft(phone),
            &stamp(Some(import_id)),
        );
        store
            .put_contact(&contact, Precondition::Absent)
            .await
            .expect("stored");
        contact
    }

    /// Rewrites a stored contact as a later writer would (a new version).
    async fn changed(store: &MemoryContacts, contact: &Contact, import_id: Option<&str>) {
        let mut next = draft(&contact.phone);
        next.tags.insert("changed".into());
        let merged = contact.merged(&next, &stamp(import_id)).expect("a change");
        store
            .put_contact(&merged, Precondition::Version(contact.version))
            .await
            .expect("rewritten");
    }

    #[tokio::test]
    async fn an_undo_deletes_only_untouched_contacts_of_its_import_and_again_nothing() {
        // GIVEN imp_a created 20 contacts, two of which changed since (an event and
        // imp_a itself updating), one a later import updated; imp_b and another
        // account have contacts too
        let store = MemoryContacts::default();
        let mut created = Vec::new();
        for i in 0..20 {
            created.push(created_by(&store, "acme", &format!("+4477009000{i:02}"), "imp_a").await);
        }
        changed(&store, &created[0], None).await;
        changed(&store, &created[1], Some("imp_a")).await;
        changed(&store, &created[2], Some("imp_b")).await;
        created_by(&store, "acme", "+447700900100", "imp_b").await;
        created_by(&store, "other", "+447700900001", "imp_a").await;

        // WHEN imp_a is undone, twice
        let first = undo_import(&store, "acme", "imp_a").await.expect("undone");
        let second = undo_import(&store, "acme", "imp_a")
            .await
            .expect("undone again");

        // THEN its 17 untouched contacts are gone, the two it last wrote but that
        // changed are kept and counted; the later import's contact is not its own;
        // the second run deletes nothing more
        assert_eq!(
            first,
            Undone {
                deleted: 17,
                kept_changed: 2
            }
        );
        assert_eq!(
            second,
            Undone {
                deleted: 0,
                kept_changed: 2
            }
        );
        let left: Vec<&str> = [
            "+447700900000",
            "+447700900001",
            "+447700900002",
            "+447700900100",
        ]
        .into_iter()
        .filter(|p| store.get("acme", Channel::Whatsapp, p).is_some())
        .collect();
        assert_eq!(left.len(), 4);
        assert_eq!(store.count(), 5, "acme's four and the other account's one");
    }

    /// A store where someone writes a contact after the undo read it and before its
    /// delete: the first listing of a page changes the contact.
    struct Racing<'a> {
        inner: &'a MemoryContacts,
        victim: Contact,
        raced: std::sync::atomic::AtomicBool,
    }

    impl AccountContacts for Racing<'_> {
        async fn contacts_page(
            &self,
            account_id: &str,
            channel: Option<Channel>,
            shard: u8,
            after: Option<PageToken>,
        ) -> Result<ContactPage, StoreError> {
            let page = self
                .inner
                .contacts_page(account_id, channel, shard, after)
                .await?;
            let ours = page.contacts.iter().any(|c| c.phone == self.victim.phone);
            if ours && !self.raced.swap(true, std::sync::atomic::Ordering::SeqCst) {
                changed(self.inner, &self.victim, None).await;
            }
            Ok(page)
        }
    }

    impl ContactRemoval for Racing<'_> {
        async fn delete_if_untouched(
            &self,
            contact: &Contact,
            import_id: &str,
        ) -> Result<DeleteOutcome, StoreError> {
            self.inner.delete_if_untouched(contact, import_id).await
        }
    }

    #[tokio::test]
    async fn a_contact_changed_during_the_undo_is_kept() {
        // GIVEN imp_a's contacts, one of which an inbound message changes right after
        // the undo read it at version 1
        let store = MemoryContacts::default();
        let mut victim = None;
        for i in 0..10 {
            let contact = created_by(&store, "acme", &format!("+4477009000{i:02}"), "imp_a").await;
            victim.get_or_insert(contact);
        }
        let victim = victim.expect("a contact");
        let racing = Racing {
            inner: &store,
            victim: victim.clone(),
            raced: false.into(),
        };

        // WHEN imp_a is undone
        let undone = undo_import(&racing, "acme", "imp_a").await.expect("undone");

        // THEN the conditional delete refused the changed contact: it is kept, counted,
        // and holds the change
        assert_eq!(
            undone,
            Undone {
                deleted: 9,
                kept_changed: 1
            }
        );
        let kept = store
            .get("acme", Channel::Whatsapp, &victim.phone)
            .expect("kept");
        assert!(kept.tags.contains("changed"));
        assert_eq!(store.count(), 1);
    }
}
