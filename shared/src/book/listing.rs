//! Listing an account's contacts through GSI `by_account` (DESIGN section 14): the
//! export and the undo build on [`contact_pages`].

use futures::stream::{self, Stream, StreamExt};

use crate::domain::channel::Channel;
use crate::domain::keys::GSI_SHARDS;
use crate::ports::{AccountContacts, ContactPage, PageToken, StoreError};

/// Every page of an account's contacts (of `channel` only, when given): the 16 shards
/// are read concurrently, each page after page, so at most one page per shard is held.
pub fn contact_pages<'a, A: AccountContacts>(
    contacts: &'a A,
    account_id: &'a str,
    channel: Option<Channel>,
) -> impl Stream<Item = Result<ContactPage, StoreError>> + Send + 'a {
    let shards =
        (0..GSI_SHARDS).map(move |shard| shard_pages(contacts, account_id, channel, shard).boxed());
    stream::select_all(shards)
}

/// Every page of one shard, in order.
fn shard_pages<'a, A: AccountContacts>(
    contacts: &'a A,
    account_id: &'a str,
    channel: Option<Channel>,
    shard: u8,
) -> impl Stream<Item = Result<ContactPage, StoreError>> + Send + 'a {
    // The state is the token to read after; `None` once the last page was read.
    let start: Option<Option<PageToken>> = Some(None);
    stream::try_unfold(start, move |state| async move {
        let Some(after) = state else {
            return Ok(None);
        };
        let page = contacts
            .contacts_page(account_id, channel, shard, after)
            .await?;
        let next = page.next.clone().map(Some);
        Ok(Some((page, next)))
    })
}
