//! Someone wrote to the account (`message.inbound`, a WhatsApp message): the rules of
//! what their message does to their contact. An unknown
//! number becomes an anonymous contact (named from `first_name` + `last_name`, else the
//! profile name); an archived contact is re-activated with its stored name; a blocked
//! one stays blocked and untouched (but for an SMS keyword, below).
//!
//! On `sms`, a message whose whole text is a keyword ([`sms_keyword`](crate::domain::consent::sms_keyword): STOP, START, ...)
//! opts the sender out of, or back into, every category (DESIGN section 13), at
//! `received_at`, with the keyword as written for evidence:
//! - an unknown number still becomes an anonymous contact, opted out;
//! - a blocked contact stays blocked, but its consent is recorded: it is the person's
//!   own word, and it must stand should the business unblock them;
//! - an archived contact is re-activated as by any message (its status is about the
//!   conversation, consent about what may be sent); any other message leaves consent
//!   as it is: writing again is not opting in.

use serde::{Deserialize, Serialize};

use crate::domain::channel::Channel;
use crate::domain::consent::{Applied, Category, ConsentSource, Signal, State};
use crate::domain::contact::{Contact, ContactDraft, Status, WriteStamp};

/// A `message.inbound` event whose fields are checked (also what a WhatsApp webhook's
/// message is made into).
#[derive(Clone, Debug)]
pub struct Inbound {
    /// The account written to.
    pub account_id: String,
    /// The channel the message came on.
    pub channel: Channel,
    /// The message's id (what makes a redelivery the same message).
    pub message_id: String,
    /// The sender, E.164 (or a BSUID-only contact's key).
    pub phone: String,
    /// RFC 3339 UTC with the sender's precision: comparable as text.
    pub received_at: String,
    /// The name a new contact gets, and an unnamed one gains.
    pub name: Option<String>,
    /// A first name the event gave.
    pub first_name: Option<String>,
    /// A last name the event gave.
    pub last_name: Option<String>,
    /// What an SMS keyword said, and the keyword as written.
    pub keyword: Option<(State, String)>,
}

/// What an inbound message found or made.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InboundContact {
    /// An unknown number: a new anonymous contact.
    CreatedAnonymous,
    /// An archived contact, active again.
    Reactivated,
    /// An active contact.
    Existing,
    /// A blocked contact: left blocked and unchanged.
    Blocked,
}

impl InboundContact {
    /// The documented name.
    pub fn as_str(self) -> &'static str {
        match self {
            InboundContact::CreatedAnonymous => "created_anonymous",
            InboundContact::Reactivated => "reactivated",
            InboundContact::Existing => "existing",
            InboundContact::Blocked => "blocked",
        }
    }
}

impl Inbound {
    /// An unknown sender: an anonymous contact.
    pub fn new_contact(&self, stamp: &WriteStamp) -> Contact {
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
    pub fn merge(
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
