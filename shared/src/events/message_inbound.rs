//! `message.inbound`: someone wrote to the account, once per `message_id`; the rules
//! are [`Inbound`]'s, the write the book's [`save_inbound`]. An unknown
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

use super::answer::{InboundAnswer, InboundContact};
use super::error::{invalid, EventError};
use super::ledger::Once;
use super::numbers::any_number;
use super::payload::{account_id, channel, MessageInbound, Text};
use super::{now, rfc3339, stamp};
use crate::book::{save_inbound, Tombstones};
use crate::config::Config;
use crate::domain::channel::Channel;
use crate::domain::cleaning::truncate_chars;
use crate::domain::consent::sms_keyword;
use crate::domain::contact::Source;
use crate::domain::inbound::Inbound;
use crate::domain::keys::contact_pk;
use crate::domain::validate::is_valid_name;
use crate::ports::{ContactStore, EventLedger, SettingsStore, Suppressions};

/// Saves what the message does to its sender's contact, once per `message_id`.
pub(super) async fn handle<C, S, L>(
    contacts: &C,
    settings: &S,
    ledger: &L,
    config: &Config,
    event: MessageInbound,
) -> Result<InboundAnswer, EventError>
where
    C: ContactStore + Suppressions,
    S: SettingsStore,
    L: EventLedger,
{
    let inbound = check(settings, config, event).await?;
    let key = format!("msg:{}", inbound.message_id);
    let tombstones = Tombstones::new(contacts, config.suppression.as_ref());
    // The ledger keeps what the message did, not whose contact it was (no personal
    // data in event items): the key is the sender's, from the event itself.
    let once = Once::new(ledger, config);
    let contact: InboundContact = once
        .run(&inbound.account_id, &key, || async {
            let stamp = stamp(Source::Inbound, None);
            Ok(save_inbound(contacts, &tombstones, &inbound, &stamp).await?)
        })
        .await?;
    Ok(InboundAnswer {
        contact,
        pk: contact_pk(&inbound.account_id, inbound.channel, &inbound.phone),
    })
}

/// The event's fields, checked: the sender's number, the names, an SMS keyword.
async fn check<S: SettingsStore>(
    settings: &S,
    config: &Config,
    event: MessageInbound,
) -> Result<Inbound, EventError> {
    let account_id = account_id(event.account_id)?;
    let channel = channel(event.channel)?;
    let message_id = event.message_id.required("message_id")?;
    let raw_from = event.from.required("from")?;
    let phone = any_number(
        settings,
        config,
        &raw_from,
        "from",
        event.default_country,
        &account_id,
    )
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
