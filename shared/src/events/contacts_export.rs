//! `contacts.export`: the event's filters checked and turned into an
//! [`ExportRequest`]; the export itself is [`crate::export`].

use std::collections::BTreeSet;

use super::error::{invalid, EventError};
use super::payload::{self, ContactsExport, Text};
use super::ExportAnswer;
use crate::domain::contact::Status;
use crate::export::{export_contacts, Consent, ExportRequest};
use crate::ports::{AccountContacts, ObjectStore};

/// The request an event asks for, or the first field that is wrong, in the order
/// DESIGN lists them. Nothing is read or written before this passes.
pub(super) fn request(event: ContactsExport) -> Result<ExportRequest, EventError> {
    let account_id = payload::account_id(event.account_id)?;
    let channel = match event.channel.get() {
        Some(_) => Some(payload::channel(event.channel)?),
        None => None,
    };
    let statuses = event
        .status
        .unwrap_or_default()
        .into_iter()
        .enumerate()
        .filter_map(|(i, value)| Some((i, value.into_option()?)))
        .map(|(i, value)| {
            Status::parse(&value.to_ascii_lowercase()).ok_or_else(|| {
                invalid(
                    &format!("status[{i}]"),
                    format!("{value:?} is not one of active, archived, blocked"),
                )
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let consent = event
        .consent
        .into_option()
        .map(|value| {
            Consent::parse(&value.to_ascii_lowercase()).ok_or_else(|| {
                invalid(
                    "consent",
                    format!("{value:?} is not one of marketing_opted_in, marketing_opted_out"),
                )
            })
        })
        .transpose()?;
    Ok(ExportRequest {
        account_id,
        channel,
        lists: names(event.lists),
        tags: names(event.tags),
        statuses,
        consent,
    })
}

/// The non-blank names of a lists or tags filter.
fn names(values: Option<Vec<Text<100>>>) -> BTreeSet<String> {
    values
        .unwrap_or_default()
        .into_iter()
        .filter_map(Text::into_option)
        .collect()
}

/// Exports the contacts the event asks for to the configured bucket. Not run through
/// the ledger: every export is a new file, and a redelivered one only makes another.
pub(super) async fn handle<O, C>(
    objects: &O,
    contacts: &C,
    bucket: &str,
    event: ContactsExport,
) -> Result<ExportAnswer, EventError>
where
    O: ObjectStore,
    C: AccountContacts,
{
    let request = request(event)?;
    let exported = export_contacts(contacts, objects, bucket, &request).await?;
    Ok(ExportAnswer::Exported {
        key: exported.key,
        contacts: exported.contacts,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::channel::Channel;
    use serde_json::json;

    fn decoded(event: serde_json::Value) -> Result<ExportRequest, EventError> {
        match payload::decode(&event, None)? {
            super::super::Event::ContactsExport(e) => request(e),
            other => panic!("not an export: {other:?}"),
        }
    }

    fn field_of(result: Result<ExportRequest, EventError>) -> (String, String) {
        match result {
            Err(EventError::InvalidField { field, problem }) => (field, problem),
            other => panic!("not an invalid field: {other:?}"),
        }
    }

    #[test]
    fn the_documented_event_is_every_filter() {
        // GIVEN DESIGN section 14's example
        let event = json!({"type": "contacts.export", "account_id": "acme", "channel": "whatsapp",
            "lists": ["VIP"], "tags": [], "status": ["active"], "consent": "marketing_opted_in"});

        // WHEN it is decoded and checked
        let request = decoded(event).expect("valid");

        // THEN every filter is there; the empty tags are no filter
        assert_eq!(
            request,
            ExportRequest {
                account_id: "acme".into(),
                channel: Some(Channel::Whatsapp),
                lists: BTreeSet::from(["VIP".to_string()]),
                tags: BTreeSet::new(),
                statuses: vec![Status::Active],
                consent: Some(Consent::MarketingOptedIn),
            }
        );
        // AND an account alone exports everything
        assert_eq!(
            decoded(json!({"type": "contacts.export", "account_id": "acme"})).expect("valid"),
            ExportRequest {
                account_id: "acme".into(),
                ..Default::default()
            }
        );
    }

    #[test]
    fn a_malformed_filter_is_named() {
        let export = |extra: serde_json::Value| {
            let mut event = json!({"type": "contacts.export", "account_id": "acme"});
            if let (Some(event), Some(extra)) = (event.as_object_mut(), extra.as_object()) {
                event.extend(extra.clone());
            }
            event
        };
        for (event, field, problem) in [
            (
                json!({"type": "contacts.export"}),
                "account_id",
                "is required",
            ),
            (
                export(json!({"channel": "fax"})),
                "channel",
                "\"fax\" is not one of whatsapp, sms, voice",
            ),
            (
                export(json!({"status": ["active", "deleted"]})),
                "status[1]",
                "\"deleted\" is not one of active, archived, blocked",
            ),
            (
                export(json!({"consent": "opted_in"})),
                "consent",
                "\"opted_in\" is not one of marketing_opted_in, marketing_opted_out",
            ),
            (
                export(json!({"lists": [{"name": "VIP"}]})),
                "lists[0]",
                "must be a string, not an object",
            ),
        ] {
            assert_eq!(
                field_of(decoded(event)),
                (field.to_string(), problem.to_string())
            );
        }
    }
}
