//! # contacts: the contact book's domain, parsing, services, ports and AWS adapters
//!
//! The two Lambda functions (`import-contacts`, `contact-events`) are thin: they read
//! [`config::Config`], build AWS clients once and hand events to one service each
//! ([`import::Importer`], [`events::EventService`]).
//!
//! Layers, from the inside out (no module imports one further out):
//! - [`domain`]: pure and synchronous. Text cleaning, fields and column mapping, phone
//!   rules, row validation, contacts and how a row merges into a stored one, upload
//!   options and key layout, outcome and status codes.
//! - [`parse`]: bytes to rows. CSV / TXT with encoding and delimiter sniffing, workbooks
//!   through calamine; everything yields [`parse::RawRow`]s.
//! - [`ports`]: the small async traits services are generic over (object store,
//!   contacts, an account's contacts by page, jobs, settings, event ledger, continuation).
//! - services: [`book`] (the one place a contact is written: imports, campaigns, events,
//!   webhook identities, erasure, listing and undo), [`import`] (the pipeline of one
//!   upload and its reports), [`export`] (an account's contacts as a CSV file the import
//!   reads back) and [`events`] (contact-events' front door and one handler per event).
//! - [`aws`]: the S3, DynamoDB and Lambda adapters behind the ports. Every key format of
//!   the table and the bucket is in [`domain::keys`], the contract every layer shares.
#![deny(missing_docs)]

pub mod aws;
pub mod book;
pub mod config;
pub mod domain;
pub mod events;
pub mod export;
pub mod import;
pub mod metrics;
pub mod parse;
pub mod ports;
#[cfg(any(test, feature = "test-util"))]
pub mod test_util;
