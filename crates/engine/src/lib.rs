//! The warehouse side: a `Warehouse` trait that runs a model's SQL and yields a stream of Arrow
//! `RecordBatch`es, with the local (DataFusion over files) and PostgreSQL implementations, and
//! segment filters compiled to each dialect. Empty until the export pipeline issue.
//!
//! It must not know about file formats, S3 or the metadata store: Arrow batches are the only
//! thing that leaves it.
