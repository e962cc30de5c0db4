//! Tests of the Docker source.
