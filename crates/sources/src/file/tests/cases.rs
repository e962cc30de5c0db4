//! One test per case of the file source.
