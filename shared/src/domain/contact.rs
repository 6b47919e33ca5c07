//! Contacts as stored (DESIGN section 9) and how new details merge into a stored one.

use std::collections::{BTreeMap, BTreeSet};

use crate::domain::channel::Channel;
use crate::domain::consent::{self, Applied, Category, Consent, ConsentSource, Signal, State};

/// Where a contact first came from, or what last completed it.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Source {
    /// A file import.
    Import,
    /// Recipients of a successful campaign.
    Campaign,
    /// An inbound message from an unknown number.
    Inbound,
    /// Details captured by an AI agent.
    Agent,
}

impl Source {
    /// The stored value.
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Import => "import",
            Source::Campaign => "campaign",
            Source::Inbound => "inbound",
            Source::Agent => "agent",
        }
    }

    /// Parses a stored value.
    pub fn parse(value: &str) -> Option<Source> {
        Some(match value {
            "import" => Source::Import,
            "campaign" => Source::Campaign,
            "inbound" => Source::Inbound,
            "agent" => Source::Agent,
            _ => return None,
        })
    }
}

/// A contact's status. Imports never change it.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Status {
    /// Reachable.
    Active,
    /// Archived by the business; a new inbound message re-activates it.
    Archived,
    /// Blocked: stays blocked whatever arrives.
    Blocked,
}

impl Status {
    /// The stored value.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Active => "active",
            Status::Archived => "archived",
            Status::Blocked => "blocked",
        }
    }

    /// Parses a stored value.
    pub fn parse(value: &str) -> Option<Status> {
        Some(match value {
            "active" => Status::Active,
            "archived" => Status::Archived,
            "blocked" => Status::Blocked,
            _ => return None,
        })
    }
}

/// Most custom attributes a contact keeps (each at most 1,024 characters), and most
/// lists or tags: bounds that keep an item far below DynamoDB's 400 KB whatever
/// accumulates over many imports.
pub const MAX_STORED_ATTRS: usize = 100;
/// See [`MAX_STORED_ATTRS`].
pub const MAX_STORED_SET: usize = 200;
/// Most UTF-8 bytes of custom attribute names and values together: characters outside
/// ASCII take up to 4 bytes, so the count limits alone would allow about 450 KB.
pub const MAX_ATTRS_BYTES: usize = 160 * 1024;
/// Most UTF-8 bytes of the values of the lists set, and of the tags set.
pub const MAX_SET_BYTES: usize = 64 * 1024;

/// The bytes custom attributes take, as counted against [`MAX_ATTRS_BYTES`].
pub fn attrs_bytes(attrs: &BTreeMap<String, String>) -> usize {
    attrs
        .iter()
        .map(|(name, value)| name.len() + value.len())
        .sum()
}

/// The plain-text profile fields of a contact, in item attribute order.
pub const TEXT_FIELDS: [&str; 16] = [
    "name",
    "first_name",
    "middle_name",
    "last_name",
    "title",
    "email",
    "company",
    "address_line1",
    "address_line2",
    "city",
    "state",
    "postcode",
    "date_of_birth",
    "alternate_phone",
    "user_id",
    "reference",
];

/// Validated details of one contact from a row or an event: what should be true of
/// the stored contact afterwards. Absent values never erase stored ones; only the
/// fields named in `clear` (an upload with `blanks=clear`) are erased.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ContactDraft {
    /// E.164 number.
    pub phone: String,
    /// Text fields by attribute name (see [`TEXT_FIELDS`]); only non-blank values.
    pub text: BTreeMap<&'static str, String>,
    /// WhatsApp opt-in, when given: written as `marketing` consent (DESIGN section 13).
    pub whatsapp_opted: Option<bool>,
    /// The line of the file the draft came from (header = 1), when it came from an
    /// import: the consent's evidence names it.
    pub row: Option<u64>,
    /// Lists to join.
    pub lists: BTreeSet<String>,
    /// Tags to add.
    pub tags: BTreeSet<String>,
    /// Custom attributes to set.
    pub attrs: BTreeMap<String, String>,
    /// Text fields to erase: blank cells of mapped columns, with `blanks=clear`.
    pub clear: BTreeSet<&'static str>,
    /// Custom attributes to erase, likewise.
    pub clear_attrs: BTreeSet<String>,
}

impl ContactDraft {
    /// The draft's WhatsApp-opted value as a `marketing` consent signal of `stamp`'s
    /// writer: at the write's time, with evidence naming the import and row
    /// (`imp_…#row 12`) or the campaign (`campaign:cmp-42`; its recipient is the
    /// contact's number).
    fn consent_signal(&self, opted: bool, stamp: &WriteStamp) -> Signal {
        let evidence = match (&stamp.import_id, &stamp.campaign_id, self.row) {
            (Some(import), _, Some(row)) => format!("{import}#row {row}"),
            (Some(import), _, None) => import.clone(),
            (None, Some(campaign), _) => format!("campaign:{campaign}"),
            (None, None, _) => stamp.source.as_str().to_string(),
        };
        Signal {
            category: Category::Marketing,
            state: if opted {
                State::OptedIn
            } else {
                State::OptedOut
            },
            at: stamp.now.clone(),
            // Imports and campaign recipients are the business's word: both `import`.
            source: match stamp.source {
                Source::Import | Source::Campaign => ConsentSource::Import,
                Source::Inbound | Source::Agent => ConsentSource::Api,
            },
            scope: None,
            evidence,
        }
    }

    /// Whether this draft's opt-in was refused on `saved`, the contact as it stands
    /// after the draft was merged in: the draft says opted in and the person's own
    /// opt-out stands (warning `consent_kept_opted_out`).
    pub fn opt_in_refused(&self, saved: &Contact) -> bool {
        self.whatsapp_opted == Some(true) && saved.opted_out_by_user()
    }
}

/// A stored contact.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Contact {
    /// Owning account.
    pub account_id: String,
    /// Channel.
    pub channel: Channel,
    /// E.164 number.
    pub phone: String,
    /// Text fields by attribute name.
    pub text: BTreeMap<String, String>,
    /// WhatsApp opt-in: kept in step with `consent.marketing` for readers of DESIGN
    /// section 9 (see [`Contact::apply_consent`]).
    pub whatsapp_opted: Option<bool>,
    /// Lists the contact is in.
    pub lists: BTreeSet<String>,
    /// Tags.
    pub tags: BTreeSet<String>,
    /// Custom attributes.
    pub attrs: BTreeMap<String, String>,
    /// Status.
    pub status: Status,
    /// Whether only the number is known (first inbound message).
    pub anonymous: bool,
    /// Where it came from.
    pub source: Source,
    /// RFC 3339 UTC.
    pub created_at: String,
    /// RFC 3339 UTC.
    pub updated_at: String,
    /// Last import that wrote it.
    pub last_import_id: Option<String>,
    /// Last campaign that saved it.
    pub last_campaign_id: Option<String>,
    /// Time of the last inbound message.
    pub last_inbound_at: Option<String>,
    /// WhatsApp's own id of the number (`wa_id`), when it differs from the E.164 form
    /// (Brazilian, Mexican and Argentine legacy forms, DESIGN section 13).
    pub wa_id: Option<String>,
    /// `false` after WhatsApp said a message could not be delivered (error 131026);
    /// `true` again after an inbound message or a delivered status.
    pub whatsapp_reachable: Option<bool>,
    /// The time of the signal that set `whatsapp_reachable` (the item's own timestamp):
    /// an older signal arriving late changes nothing.
    pub whatsapp_reachable_at: Option<String>,
    /// Every BSUID whose alias was written for this contact, one per business portfolio
    /// (`user_id` keeps the first): the aliases an erasure deletes and a number change
    /// moves with it. Attribute `user_ids` (SS), absent when empty.
    pub user_ids: BTreeSet<String>,
    /// Consent by category (DESIGN section 13).
    pub consent: Consent,
    /// Optimistic-lock version, incremented by every write.
    pub version: u64,
}

/// Who writes, and what they stamp on the contact.
#[derive(Clone, Debug)]
pub struct WriteStamp {
    /// RFC 3339 UTC time of the write.
    pub now: String,
    /// Source for a new contact.
    pub source: Source,
    /// Import id to record, for imports.
    pub import_id: Option<String>,
    /// Campaign id to record, for campaign saves.
    pub campaign_id: Option<String>,
}

impl Contact {
    /// A new active contact from a draft.
    pub fn create(
        account_id: &str,
        channel: Channel,
        draft: &ContactDraft,
        stamp: &WriteStamp,
    ) -> Contact {
        let mut contact = Contact {
            account_id: account_id.to_string(),
            channel,
            phone: draft.phone.clone(),
            text: BTreeMap::new(),
            whatsapp_opted: None,
            lists: BTreeSet::new(),
            tags: BTreeSet::new(),
            attrs: BTreeMap::new(),
            status: Status::Active,
            anonymous: false,
            source: stamp.source,
            created_at: stamp.now.clone(),
            updated_at: stamp.now.clone(),
            last_import_id: stamp.import_id.clone(),
            last_campaign_id: stamp.campaign_id.clone(),
            last_inbound_at: None,
            wa_id: None,
            whatsapp_reachable: None,
            whatsapp_reachable_at: None,
            user_ids: BTreeSet::new(),
            consent: Consent::new(),
            version: 1,
        };
        contact.apply(draft, stamp);
        contact
    }

    /// Applies a draft's values: set fields that differ, add lists, tags and attributes,
    /// and the WhatsApp-opted value as `marketing` consent from `stamp`'s writer (an
    /// opt-in the consent rules refuse changes nothing: see
    /// [`ContactDraft::opt_in_refused`]). Returns whether anything changed. Erases only
    /// what the draft's `clear` and `clear_attrs` name; never touches status.
    pub fn apply(&mut self, draft: &ContactDraft, stamp: &WriteStamp) -> bool {
        let mut changed = false;
        for (field, value) in &draft.text {
            if self.text.get(*field) != Some(value) {
                self.text.insert((*field).to_string(), value.clone());
                changed = true;
            }
        }
        for field in &draft.clear {
            changed |= self.text.remove(*field).is_some();
        }
        for name in &draft.clear_attrs {
            changed |= self.attrs.remove(name).is_some();
        }
        // Only rows that say something about consent pay for a signal.
        if let Some(opted) = draft.whatsapp_opted {
            let signal = draft.consent_signal(opted, stamp);
            changed |= self.apply_consent(&signal) == Applied::Changed;
        }
        let mut dropped = 0usize;
        for (set, values) in [
            (&mut self.lists, &draft.lists),
            (&mut self.tags, &draft.tags),
        ] {
            let mut bytes: usize = set.iter().map(String::len).sum();
            for value in values {
                if set.contains(value) {
                    continue;
                }
                if set.len() < MAX_STORED_SET && bytes + value.len() <= MAX_SET_BYTES {
                    bytes += value.len();
                    set.insert(value.clone());
                    changed = true;
                } else {
                    dropped += 1;
                }
            }
        }
        let mut bytes = attrs_bytes(&self.attrs);
        for (name, value) in &draft.attrs {
            let old = self.attrs.get(name);
            if old == Some(value) {
                continue;
            }
            let fits_count = self.attrs.len() < MAX_STORED_ATTRS || old.is_some();
            let next_bytes = bytes + value.len() - old.map_or(0, String::len)
                + if old.is_some() { 0 } else { name.len() };
            if fits_count && next_bytes <= MAX_ATTRS_BYTES {
                bytes = next_bytes;
                self.attrs.insert(name.clone(), value.clone());
                changed = true;
            } else {
                dropped += 1;
            }
        }
        if dropped > 0 {
            tracing::warn!(dropped, phone = %crate::domain::cleaning::mask_phone(&self.phone), "contact is at its list, tag or attribute limit; values not stored");
        }
        changed
    }

    /// The stored contact after a draft is merged in, or `None` when nothing differs
    /// (then no write is made). The version is bumped and the stamp recorded.
    pub fn merged(&self, draft: &ContactDraft, stamp: &WriteStamp) -> Option<Contact> {
        let mut next = self.clone();
        if !next.apply(draft, stamp) {
            return None;
        }
        next.touch(stamp);
        Some(next)
    }

    /// The E.164 number, or `None` for a contact known only by its WhatsApp
    /// business-scoped user id (its key then holds `bsuid:{user_id}`).
    pub fn e164(&self) -> Option<&str> {
        (!self
            .phone
            .starts_with(crate::domain::whatsapp::BSUID_KEY_PREFIX))
        .then_some(self.phone.as_str())
    }

    /// Applies a consent signal (the rules of [`consent::apply`]) and keeps
    /// `whatsapp_opted`, the flag DESIGN section 9 keeps for its readers, in step with
    /// the marketing state whenever that changes.
    pub fn apply_consent(&mut self, signal: &Signal) -> Applied {
        let applied = consent::apply(&mut self.consent, signal);
        if applied == Applied::Changed && signal.category == Category::Marketing {
            if let Some(marketing) = self.consent.get(&Category::Marketing) {
                self.whatsapp_opted = Some(marketing.state == State::OptedIn);
            }
        }
        applied
    }

    /// Whether the person opted out of marketing themselves (a `user_preferences` stop,
    /// a STOP keyword, a `131050` status): then only they can opt back in.
    pub fn opted_out_by_user(&self) -> bool {
        self.consent
            .get(&Category::Marketing)
            .is_some_and(|e| e.state == State::OptedOut && e.source.is_the_users_own())
    }

    /// Whether WhatsApp reaches the person, as a signal of time `at` (RFC 3339) says:
    /// a signal older than the latest one recorded changes nothing. A newer one that
    /// agrees moves the time on too, so that a late older signal cannot overturn it.
    pub fn set_reachable(&mut self, reachable: bool, at: &str) {
        let older = self
            .whatsapp_reachable_at
            .as_deref()
            .is_some_and(|stored| is_earlier(at, stored));
        if older {
            return;
        }
        self.whatsapp_reachable = Some(reachable);
        self.whatsapp_reachable_at = Some(at.to_string());
    }

    /// Records a write: time, ids, version.
    pub fn touch(&mut self, stamp: &WriteStamp) {
        self.updated_at = stamp.now.clone();
        if stamp.import_id.is_some() {
            self.last_import_id = stamp.import_id.clone();
        }
        if stamp.campaign_id.is_some() {
            self.last_campaign_id = stamp.campaign_id.clone();
        }
        self.version += 1;
    }
}

/// Whether RFC 3339 time `a` is before `b` (as times: their precision may differ).
fn is_earlier(a: &str, b: &str) -> bool {
    match (
        chrono::DateTime::parse_from_rfc3339(a),
        chrono::DateTime::parse_from_rfc3339(b),
    ) {
        (Ok(a), Ok(b)) => a < b,
        _ => a < b,
    }
}

/// What a write does to a contact that is already stored: the one answer every merge
/// rule gives the book.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Merge {
    /// Leave the stored contact alone (`on-existing=ignore`).
    LeaveAlone,
    /// Nothing differs: no write.
    Unchanged,
    /// Write this contact (stamped, one version on).
    Write(Box<Contact>),
}

impl From<Option<Contact>> for Merge {
    fn from(next: Option<Contact>) -> Merge {
        next.map_or(Merge::Unchanged, |next| Merge::Write(Box::new(next)))
    }
}

impl Contact {
    /// `next` as the write that follows `self`: stamped, one version on.
    pub fn touched_after(&self, mut next: Contact, stamp: &WriteStamp) -> Contact {
        next.version = self.version;
        next.touch(stamp);
        next
    }

    /// `other` (a BSUID-only contact, or the old number's) merged into `self` by
    /// DESIGN section 9's rules: `self`'s values stand, `other`'s fill the gaps; lists
    /// and tags are joined; consent keeps the newer word, and a user's own opt-out
    /// stands until the user undoes it; a block anywhere is a block.
    pub fn absorb(&self, other: &Contact) -> Contact {
        let mut merged = self.clone();
        for (field, value) in &other.text {
            merged
                .text
                .entry(field.clone())
                .or_insert_with(|| value.clone());
        }
        merged.lists.extend(other.lists.iter().cloned());
        merged.tags.extend(other.tags.iter().cloned());
        merged.user_ids.extend(other.user_ids.iter().cloned());
        for (name, value) in &other.attrs {
            merged
                .attrs
                .entry(name.clone())
                .or_insert_with(|| value.clone());
        }
        merged.whatsapp_opted = merged.whatsapp_opted.or(other.whatsapp_opted);
        merged.anonymous = self.anonymous && other.anonymous;
        if other.status == Status::Blocked {
            merged.status = Status::Blocked;
        }
        merged.created_at = self.created_at.clone().min(other.created_at.clone());
        merged.last_inbound_at = self
            .last_inbound_at
            .clone()
            .max(other.last_inbound_at.clone());
        if let (Some(reachable), Some(at)) =
            (other.whatsapp_reachable, &other.whatsapp_reachable_at)
        {
            merged.set_reachable(reachable, at);
        } else {
            merged.whatsapp_reachable = merged.whatsapp_reachable.or(other.whatsapp_reachable);
        }
        for (category, entry) in &other.consent {
            merged.apply_consent(&Signal {
                category: *category,
                state: entry.state,
                at: entry.at.clone(),
                source: entry.source,
                scope: entry.scope.clone(),
                evidence: entry.evidence.clone(),
            });
        }
        merged
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stamp() -> WriteStamp {
        WriteStamp {
            now: "2026-11-21T10:00:00Z".into(),
            source: Source::Import,
            import_id: Some("imp_1".into()),
            campaign_id: None,
        }
    }

    fn draft() -> ContactDraft {
        let mut d = ContactDraft {
            phone: "+447911123456".into(),
            ..Default::default()
        };
        d.text.insert("name", "Eva".into());
        d.lists.insert("VIP".into());
        d
    }

    #[test]
    fn same_details_merge_to_nothing() {
        let contact = Contact::create("acme", Channel::Whatsapp, &draft(), &stamp());
        assert_eq!(contact.merged(&draft(), &stamp()), None);
    }

    #[test]
    fn blank_values_never_erase_and_lists_only_grow() {
        let mut contact = Contact::create("acme", Channel::Whatsapp, &draft(), &stamp());
        contact
            .text
            .insert("email".into(), "eva@example.com".into());
        contact.status = Status::Blocked;
        let mut next = ContactDraft {
            phone: contact.phone.clone(),
            ..Default::default()
        };
        next.lists.insert("Leads".into());
        let merged = contact.merged(&next, &stamp()).expect("list added");
        assert_eq!(
            merged.text.get("email").map(String::as_str),
            Some("eva@example.com")
        );
        assert_eq!(merged.lists.len(), 2);
        assert_eq!(merged.status, Status::Blocked);
        assert_eq!(merged.version, contact.version + 1);
    }

    #[test]
    fn many_imports_never_grow_an_item_past_its_byte_budgets() {
        let mut contact = Contact::create("acme", Channel::Whatsapp, &draft(), &stamp());
        // Four-byte characters: 90 attributes of 1,024 of them would be 370 KB.
        for batch in 0..3 {
            let mut next = ContactDraft {
                phone: contact.phone.clone(),
                ..Default::default()
            };
            for i in 0..30 {
                next.attrs
                    .insert(format!("A{batch}_{i}"), "😀".repeat(1024));
                next.tags.insert(format!("{batch}_{i}_{}", "😀".repeat(99)));
            }
            contact.apply(&next, &stamp());
        }
        assert!(attrs_bytes(&contact.attrs) <= MAX_ATTRS_BYTES);
        assert_eq!(contact.attrs.len(), MAX_ATTRS_BYTES / (4 * 1024 + 4));
        assert!(contact.tags.iter().map(String::len).sum::<usize>() <= MAX_SET_BYTES);
        // Replacing a value with a shorter one always fits.
        let mut shorter = ContactDraft {
            phone: contact.phone.clone(),
            ..Default::default()
        };
        shorter.attrs.insert("A0_0".into(), "x".into());
        assert!(contact.apply(&shorter, &stamp()));
        assert_eq!(contact.attrs.get("A0_0").map(String::as_str), Some("x"));
    }

    fn opted(value: bool, row: u64) -> ContactDraft {
        ContactDraft {
            whatsapp_opted: Some(value),
            row: Some(row),
            ..draft()
        }
    }

    fn users_stop() -> Signal {
        Signal {
            category: Category::Marketing,
            state: State::OptedOut,
            at: "2026-11-21T09:00:00Z".into(),
            source: ConsentSource::Keyword,
            scope: None,
            evidence: "STOP".into(),
        }
    }

    #[test]
    fn the_opted_column_writes_marketing_consent_from_the_import_and_row() {
        // GIVEN a new contact from row 12 of an import that says opted in
        let contact = Contact::create("acme", Channel::Whatsapp, &opted(true, 12), &stamp());

        // THEN marketing consent names the import and the row, at the write's time
        assert_eq!(contact.whatsapp_opted, Some(true));
        let entry = &contact.consent[&Category::Marketing];
        assert_eq!(
            (
                entry.state,
                entry.source,
                entry.at.as_str(),
                entry.evidence.as_str()
            ),
            (
                State::OptedIn,
                ConsentSource::Import,
                "2026-11-21T10:00:00.000Z",
                "imp_1#row 12"
            )
        );
        // AND the same row again changes nothing, though another row number would say it
        assert_eq!(contact.merged(&opted(true, 13), &stamp()), None);
        // AND opted out is written too, with `whatsapp_opted` in step
        let later = WriteStamp {
            now: "2026-11-21T11:00:00.000Z".into(),
            ..stamp()
        };
        let out = contact.merged(&opted(false, 2), &later).expect("a change");
        assert_eq!(out.whatsapp_opted, Some(false));
        assert_eq!(out.consent[&Category::Marketing].state, State::OptedOut);
    }

    #[test]
    fn an_import_never_opts_the_users_own_opt_out_back_in() {
        // GIVEN a contact that sent STOP
        let mut contact = Contact::create("acme", Channel::Sms, &draft(), &stamp());
        assert_eq!(contact.apply_consent(&users_stop()), Applied::Changed);
        assert_eq!(contact.whatsapp_opted, Some(false));

        // WHEN a row says opted in and nothing else new THEN nothing is written
        let row = opted(true, 3);
        assert_eq!(contact.merged(&row, &stamp()), None);
        assert!(row.opt_in_refused(&contact));

        // WHEN the row also brings a new name THEN the name is saved, consent is not
        let mut renamed = opted(true, 3);
        renamed.text.insert("name", "Eva Smith".into());
        let merged = contact.merged(&renamed, &stamp()).expect("the name");
        assert_eq!(merged.text["name"], "Eva Smith");
        assert_eq!(merged.whatsapp_opted, Some(false));
        assert_eq!(merged.consent, contact.consent);
        assert!(renamed.opt_in_refused(&merged));
        // AND a row that says opted out, or nothing, is no refusal
        assert!(!opted(false, 3).opt_in_refused(&merged));
        assert!(!draft().opt_in_refused(&merged));
    }

    #[test]
    fn campaign_recipients_write_consent_as_imports_naming_the_campaign() {
        let stamp = WriteStamp {
            source: Source::Campaign,
            import_id: None,
            campaign_id: Some("cmp-42".into()),
            ..stamp()
        };
        let draft = ContactDraft {
            whatsapp_opted: Some(true),
            ..draft()
        };
        let contact = Contact::create("acme", Channel::Whatsapp, &draft, &stamp);
        let entry = &contact.consent[&Category::Marketing];
        assert_eq!(
            (entry.source, entry.evidence.as_str()),
            (ConsentSource::Import, "campaign:cmp-42")
        );
    }

    #[test]
    fn whatsapp_opted_follows_marketing_only() {
        let mut contact = Contact::create("acme", Channel::Sms, &draft(), &stamp());
        let utility = Signal {
            category: Category::Utility,
            ..users_stop()
        };
        contact.apply_consent(&utility);
        assert_eq!(contact.whatsapp_opted, None);
        assert!(!contact.opted_out_by_user());
    }
}
