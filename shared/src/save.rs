//! save (in progress).
