//! `message.inbound`: someone wrote to the account, once per `message_id`. An unknown
//! number becomes an anonymous contact (named from `first_name` + `last_name`, else the
//! profile name); an archived contact is re-activated with its stored name; a blocked
//! one stays blocked and untouched (but for an SMS keyword, below).
//!
//! On `sms`, a message whose whole text is a keyword ([`sms_keyword`]: STOP, START, ...)
//! opts the sender out of, or back into, every category (DESIGN section 13), at
//! `received_at`, with the keyword as written for evidence:
//! - an unknown number still becomes an anonymous contact, opted out;
//! - a blocked contact stays blocked, but its consent is recorded: it is the person's
//!   own word, and it must stand should the business unblock them;
//! - an archived contact is re-activated as by any message (its status is about the
//!   conversation, consent about what may be sent); any other message leaves consent
//!   as it is: writing again is not opting in.

use std::cell::Cell;

use super::answer::{InboundAnswer, InboundContact};
use super::error::{invalid, EventError};
use super::payload::{account_id, channel, MessageInbound, Text};
use super::{now, rfc3339, stamp, EventService};
use crate::aws::keys::contact_pk;
use crate::book::{upsert, Upserted};
use crate::domain::consent::{sms_keyword, Applied, Category, ConsentSource, Signal, State};
use crate::domain::contact::{Contact, ContactDraft, Source, Status, WriteStamp};
use crate::domain::text::{mask_phone, truncate_chars};
use crate::domain::upload::Channel;
use crate::domain::validate::is_valid_name;
use crate::ports::{ContactStore, EventLedger, ObjectStore, SettingsStore, Suppressions};

/// A `message.inbound` event whose fields are checked (also what a WhatsApp webhook's
/// message is made into).
pub(super) struct Inbound {
    pub(super) account_id: String,
    pub(super) channel: Channel,
    pub(super) message_id: String,
    /// The sender, E.164 (or a BSUID-only contact's key).
    pub(super) phone: String,
    /// RFC 3339 UTC with the sender's precision: comparable as text.
    pub(super) received_at: String,
    /// The name a new contact gets, and an unnamed one gains.
    pub(super) name: Option<String>,
    pub(super) first_name: Option<String>,
    pub(super) last_name: Option<String>,
    /// What an SMS keyword said, and the keyword as written.
    pub(super) keyword: Option<(State, String)>,
}

impl<O, C, S, L> EventService<'_, O, C, S, L>
where
    O: ObjectStore,
    C: ContactStore + Suppressions,
    S: SettingsStore,
    L: EventLedger,
{
    pub(super) async fn message_inbound(
        &self,
        event: MessageInbound,
    ) -> Result<InboundAnswer, EventError> {
        let inbound = self.check_inbound(event).await?;
        let key = format!("msg:{}", inbound.message_id);
        // The ledger keeps what the message did, not whose contact it was (no personal
        // data in event items): the key is the sender's, from the event itself.
        let contact = self
            .once(&inbound.account_id, &key, || self.save_inbound(&inbound))
            .await?;
        Ok(InboundAnswer {
            contact,
            pk: contact_pk(&inbound.account_id, inbound.channel, &inbound.phone),
        })
    }

    async fn check_inbound(&self, event: MessageInbound) -> Result<Inbound, EventError> {
        let account_id = account_id(event.account_id)?;
        let channel = channel(event.channel)?;
        let message_id = event.message_id.required("message_id")?;
        let raw_from = event.from.required("from")?;
        let phone = self
            .any_number(&raw_from, "from", event.default_country, &account_id)
            .await?;
        let received_at = received_at(event.received_at)?;
        let valid = |name: Text<50>| name.into_option().filter(|n| is_valid_name(n));
        let (first_name, last_name) = (valid(event.first_name), valid(event.last_name));
        let profile = event
            .profile_name
            .into_option()
            .map(|n| truncate_chars(&n, 101).to_string())
            .filter(|n| is_valid_name(n));
        let given: Vec<&str> = [first_name.as_deref(), last_name.as_deref()]
            .into_iter()
            .flatten()
            .collect();
        let name = if given.is_empty() {
            profile
        } else {
            Some(given.join(" "))
        };
        // Keywords are an SMS convention; WhatsApp says stop through `user_preferences`.
        let keyword = match (channel, event.text.get()) {
            // Evidence is the keyword as written, bounded: trailing `!!!…` can be long.
            (Channel::Sms, Some(text)) => {
                sms_keyword(text).map(|s| (s, truncate_chars(text.trim(), 64).to_string()))
            }
            _ => None,
        };
        Ok(Inbound {
            account_id,
            channel,
            message_id,
            phone,
            received_at,
            name,
            first_name,
            last_name,
            keyword,
        })
    }

    async fn save_inbound(&self, inbound: &Inbound) -> Result<InboundContact, EventError> {
        let found = Cell::new(InboundContact::Existing);
        let stamp = stamp(Source::Inbound, None);
        let result = upsert(
            self.contacts,
            || inbound.new_contact(&stamp),
            |current| {
                let (what, next) = inbound.merge(current, &stamp);
                found.set(what);
                Ok(next)
            },
        )
        .await?;
        let contact = match &result {
            Upserted::Created(c) => {
                found.set(InboundContact::CreatedAnonymous);
                c
            }
            Upserted::Updated(c) | Upserted::Unchanged(c) | Upserted::LeftAlone(c) => c,
        };
        tracing::info!(account_id = inbound.account_id, contact = found.get().as_str(), phone = %mask_phone(&contact.phone), "inbound message");
        if found.get() == InboundContact::CreatedAnonymous {
            // Only the person's own message brings an erased person back.
            self.lift_erasure(&inbound.account_id, inbound.channel, &inbound.phone)
                .await?;
        }
        Ok(found.get())
    }
}

impl Inbound {
    /// An unknown sender: an anonymous contact.
    pub(super) fn new_contact(&self, stamp: &WriteStamp) -> Contact {
        let mut draft = ContactDraft {
            phone: self.phone.clone(),
            ..Default::default()
        };
        for (field, value) in [
            ("name", &self.name),
            ("first_name", &self.first_name),
            ("last_name", &self.last_name),
        ] {
            if let Some(v) = value {
                draft.text.insert(field, v.clone());
            }
        }
        let mut contact = Contact::create(&self.account_id, self.channel, &draft, stamp);
        contact.anonymous = true;
        contact.last_inbound_at = Some(self.received_at.clone());
        self.apply_keyword(&mut contact);
        contact
    }

    /// Applies the message's keyword, if any, to every category: whether anything
    /// changed.
    fn apply_keyword(&self, contact: &mut Contact) -> bool {
        let Some((state, written)) = &self.keyword else {
            return false;
        };
        let mut changed = false;
        for category in Category::ALL {
            let signal = Signal {
                category,
                state: *state,
                at: self.received_at.clone(),
                source: ConsentSource::Keyword,
                scope: None,
                evidence: written.clone(),
            };
            changed |= contact.apply_consent(&signal) == Applied::Changed;
        }
        changed
    }

    /// A known sender: what they are, and the contact to write (`None`: no write).
    pub(super) fn merge(
        &self,
        current: &Contact,
        stamp: &WriteStamp,
    ) -> (InboundContact, Option<Contact>) {
        let mut next = current.clone();
        let found = match current.status {
            // The person's own STOP or START is recorded all the same: nothing else.
            Status::Blocked => {
                if !self.apply_keyword(&mut next) {
                    return (InboundContact::Blocked, None);
                }
                next.touch(stamp);
                return (InboundContact::Blocked, Some(next));
            }
            Status::Archived => {
                next.status = Status::Active;
                InboundContact::Reactivated
            }
            Status::Active => InboundContact::Existing,
        };
        // A profile name fills a gap; it never replaces a name.
        if let (None, Some(n)) = (next.text.get("name"), &self.name) {
            next.text.insert("name".into(), n.clone());
        }
        let received_at = self.received_at.as_str();
        if next
            .last_inbound_at
            .as_deref()
            .is_none_or(|t| t < received_at)
        {
            next.last_inbound_at = Some(self.received_at.clone());
        }
        self.apply_keyword(&mut next);
        if next == *current {
            return (found, None);
        }
        next.touch(stamp);
        (found, Some(next))
    }
}

/// `received_at` in UTC, or now when it is not given.
fn received_at(value: Text<64>) -> Result<String, EventError> {
    let Some(text) = value.into_option() else {
        return Ok(rfc3339(now()));
    };
    let time = chrono::DateTime::parse_from_rfc3339(&text)
        .map_err(|_| invalid("received_at", "must be an RFC 3339 time"))?;
    Ok(time
        .with_timezone(&chrono::Utc)
        .to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true))
}
