//! File formats: one encoder per format (Parquet, CSV, NDJSON/JSON, XML, Avro) from Arrow
//! batches to bytes, plus compression. Empty until the export pipeline issue.
//!
//! It must not know where bytes go (S3, disk) or where batches come from.
