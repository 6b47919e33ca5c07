//! `contact.captured`: an agent learned who a contact is. The contact is saved or
//! completed (`source = agent`); an anonymous contact takes the captured identity and
//! stops being anonymous once it has a name.

use super::answer::{CapturedAnswer, CapturedContact};
use super::error::{invalid, EventError};
use super::numbers::region_for;
use super::payload::{account_id, channel, ContactCaptured};
use super::stamp;
use crate::book::{upsert_unless_erased, Tombstones, Upserted};
use crate::config::Config;
use crate::domain::channel::Channel;
use crate::domain::contact::{Contact, ContactDraft, Source, WriteStamp};
use crate::domain::keys::contact_pk;
use crate::domain::phone::{self, PhoneContext};
use crate::domain::validate::{is_valid_email, is_valid_name};
use crate::ports::{ContactStore, SettingsStore, Suppressions};

/// Saves or completes the captured contact.
pub(super) async fn handle<C, S>(
    contacts: &C,
    settings: &S,
    config: &Config,
    event: ContactCaptured,
) -> Result<CapturedAnswer, EventError>
where
    C: ContactStore + Suppressions,
    S: SettingsStore,
{
    let (account_id, channel, draft) = check(settings, config, event).await?;
    let stamp = stamp(Source::Agent, None);
    let tombstones = Tombstones::new(contacts, config.suppression.as_ref());
    let result = upsert_unless_erased(
        contacts,
        &tombstones,
        || Contact::create(&account_id, channel, &draft, &stamp),
        |current| completed(current, &draft, &stamp).into(),
    )
    .await?;
    let pk = contact_pk(&account_id, channel, &draft.phone);
    let (what, anonymous) = match &result {
        None => (CapturedContact::Suppressed, false),
        Some(Upserted::Created(c)) => (CapturedContact::Created, c.anonymous),
        Some(Upserted::Updated(c)) => (CapturedContact::Updated, c.anonymous),
        Some(Upserted::Unchanged(c) | Upserted::LeftAlone(c)) => {
            (CapturedContact::Unchanged, c.anonymous)
        }
    };
    Ok(CapturedAnswer {
        contact: what,
        pk,
        anonymous,
    })
}

/// The account, the channel and what was captured, checked.
async fn check<S: SettingsStore>(
    settings: &S,
    config: &Config,
    event: ContactCaptured,
) -> Result<(String, Channel, ContactDraft), EventError> {
    let account_id = account_id(event.account_id)?;
    let channel = channel(event.channel)?;
    let raw_phone = event.phone.required("phone")?;
    let region = region_for(settings, config, event.default_country, &account_id).await?;
    let context = PhoneContext {
        default_region: region,
        channel,
    };
    let phone = phone::normalize(&raw_phone, None, context)
        .map_err(|e| invalid("phone", format!("{e} ({})", e.code())))?;
    let mut draft = ContactDraft {
        phone,
        ..Default::default()
    };
    for (field, value) in [
        ("name", event.name.into_option()),
        ("first_name", event.first_name.into_option()),
        ("last_name", event.last_name.into_option()),
    ] {
        if let Some(v) = value {
            if !is_valid_name(&v) {
                return Err(invalid(field, "holds characters a name cannot have"));
            }
            draft.text.insert(field, v);
        }
    }
    if let Some(email) = event.email.into_option() {
        if !is_valid_email(&email) {
            return Err(invalid("email", "is not an e-mail address"));
        }
        draft.text.insert("email", email);
    }
    // `captured_by` and `conversation_id` are only checked (as text, when decoded).
    if !draft.text.contains_key("name") {
        let given: Vec<&str> = ["first_name", "last_name"]
            .iter()
            .filter_map(|f| draft.text.get(f).map(String::as_str))
            .collect();
        if !given.is_empty() {
            draft.text.insert("name", given.join(" "));
        }
    }
    Ok((account_id, channel, draft))
}

/// The stored contact with the captured details: an anonymous contact takes them all, a
/// known one only fills its gaps. `None` when nothing changes.
fn completed(current: &Contact, draft: &ContactDraft, stamp: &WriteStamp) -> Option<Contact> {
    let mut next = current.clone();
    for (field, value) in &draft.text {
        if current.anonymous || !next.text.contains_key(*field) {
            next.text.insert((*field).to_string(), value.clone());
        }
    }
    if current.anonymous && draft.text.contains_key("name") {
        next.anonymous = false;
        next.source = Source::Agent;
    }
    if next == *current {
        return None;
    }
    next.touch(stamp);
    Some(next)
}
