//! The domain: pure, synchronous, and tested without any I/O. Nothing here knows about
//! AWS, files or async.
//!
//! A CSV cell becomes a contact field in [`validate::validate_row`], using the column
//! [`mapping`] of the file's header, the [`phone`] rules for the key field and the
//! [`field`] limits for the rest; the result is a [`contact::ContactDraft`] that
//! [`contact::Contact::merged`] folds into a stored contact.

pub mod capacity;
pub mod channel;
pub mod cleaning;
pub mod consent;
pub mod contact;
pub mod field;
pub mod inbound;
pub mod keys;
pub mod mapping;
pub mod options;
pub mod outcome;
pub mod phone;
pub mod secret;
pub mod stored_webhook;
pub mod suppression;
pub mod upload;
pub mod validate;
pub mod values;
pub mod webhook_signature;
pub mod whatsapp;
