//! ports (in progress).
