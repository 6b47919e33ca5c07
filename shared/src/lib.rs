//! # contacts: the contact book's domain, parsing, ports and AWS adapters
//!
//! The two Lambda functions (`import-contacts`, `contact-events`) are thin: they read
//! [`config::Config`], build AWS clients once and hand events to this crate.
//!
//! Layers, from the inside out:
//! - **domain** (pure, synchronous, unit-tested): [`text`] cleaning, [`field`] names and
//!   limits, [`mapping`] of column titles, [`phone`] normalisation to E.164,
//!   [`validate`] of one row, [`contact`] items and how a row merges into a stored one,
//!   [`options`] of an upload, [`upload`] key layout and import ids, [`report`] files;
//! - **parsing** ([`source`]): CSV / TXT streams with encoding and delimiter sniffing,
//!   workbooks through calamine, all yielding [`source::RawRow`]s;
//! - **ports** ([`ports`]): small async traits the handlers are generic over, with
//!   an in-memory implementation for unit tests;
//! - **adapters** ([`aws`]): S3 and DynamoDB implementations of those ports;
//! - **services**: [`save`] (one conditional write per contact, retried on races),
//!   [`import`] (the whole pipeline of one upload) and [`events`] (contact-events).
#![deny(missing_docs)]

pub mod aws;
pub mod config;
pub mod contact;
pub mod events;
pub mod field;
pub mod import;
pub mod mapping;
pub mod options;
pub mod phone;
pub mod ports;
pub mod report;
pub mod save;
pub mod source;
pub mod text;
pub mod upload;
pub mod validate;
