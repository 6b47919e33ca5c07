//! aws (in progress).
