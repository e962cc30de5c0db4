//! The store's error type.

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A file operation failed.
    #[error(transparent)]
    Io(#[from] std::io::Error),
    /// A file's content is not what the store wrote.
    #[error("corrupt data: {0}")]
    Corrupt(String),
    /// Parquet encoding or decoding failed.
    #[error(transparent)]
    Parquet(#[from] parquet::errors::ParquetError),
    /// Arrow failed to assemble columns.
    #[error(transparent)]
    Arrow(#[from] arrow_schema::ArrowError),
    /// The catalog file cannot be read.
    #[error("catalog {path}: {message}")]
    Catalog {
        /// The catalog file.
        path: String,
        /// What is wrong with it.
        message: String,
    },
    /// The store of a query node, which serves the nodes it follows and stores nothing.
    #[error("this node serves queries only (serve --role query): send entries to an ingest node")]
    ReadOnly,
    /// The store has been shut down or its writer has stopped.
    #[error("the store is closed")]
    Closed,
    /// The store refused the write because the disk is failing; the message says why.
    #[error("write failed: {0}")]
    WriteFailed(String),
    /// A backup or restore target that cannot be used (not empty, a file, inside the data
    /// directory); the message says which and why.
    #[error("{0}")]
    BackupTarget(String),
    /// A backup could not be written or restored; the message says what failed.
    #[error("{0}")]
    Backup(String),
    /// A backup is damaged or incomplete; the message names the file.
    #[error("damaged backup {0}")]
    BadBackup(String),
}
