//! The immutable snapshot the hot path reads, published through `arc-swap` (product brief
//! section 6).
