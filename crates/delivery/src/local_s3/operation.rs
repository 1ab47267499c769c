//! Naming the S3 operation of a raw HTTP request, for fault hooks that run before s3s parses it.

use http::{HeaderMap, Method, Uri};

/// S3's name for the operation a request performs (`UploadPart`, `CompleteMultipartUpload`...),
/// from its method, path and query alone. Covers the operations wharf sends; others are `Other`.
pub fn operation_name(method: &Method, uri: &Uri, headers: &HeaderMap) -> &'static str {
    let query = uri.query().unwrap_or("");
    let has = |param: &str| {
        query
            .split('&')
            .any(|pair| pair == param || pair.starts_with(&format!("{param}=")))
    };
    let path = uri.path().trim_start_matches('/');
    let is_object = path.split_once('/').is_some_and(|(_, key)| !key.is_empty());
    match (method.as_str(), is_object) {
        ("PUT", true) if has("partNumber") && has("uploadId") => {
            if headers.contains_key("x-amz-copy-source") {
                "UploadPartCopy"
            } else {
                "UploadPart"
            }
        }
        ("PUT", true) if headers.contains_key("x-amz-copy-source") => "CopyObject",
        ("PUT", true) => "PutObject",
        ("POST", true) if has("uploads") => "CreateMultipartUpload",
        ("POST", true) if has("uploadId") => "CompleteMultipartUpload",
        ("DELETE", true) if has("uploadId") => "AbortMultipartUpload",
        ("DELETE", true) => "DeleteObject",
        ("GET", true) if has("uploadId") => "ListParts",
        ("GET", true) => "GetObject",
        ("HEAD", true) => "HeadObject",
        ("GET", false) if has("uploads") => "ListMultipartUploads",
        ("GET", false) if has("location") => "GetBucketLocation",
        ("GET", false) if path.is_empty() => "ListBuckets",
        ("GET", false) => "ListObjects",
        ("HEAD", false) => "HeadBucket",
        ("PUT", false) => "CreateBucket",
        ("DELETE", false) => "DeleteBucket",
        _ => "Other",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn op(method: &str, uri: &str) -> &'static str {
        let method = Method::from_bytes(method.as_bytes()).expect("method");
        let uri: Uri = uri.parse().expect("uri");
        operation_name(&method, &uri, &HeaderMap::new())
    }

    #[test]
    fn names() {
        assert_eq!(op("PUT", "/b/k?partNumber=1&uploadId=x"), "UploadPart");
        assert_eq!(op("PUT", "/b/dir/k"), "PutObject");
        assert_eq!(op("POST", "/b/k?uploads"), "CreateMultipartUpload");
        assert_eq!(op("POST", "/b/k?uploadId=x"), "CompleteMultipartUpload");
        assert_eq!(op("DELETE", "/b/k?uploadId=x"), "AbortMultipartUpload");
        assert_eq!(op("GET", "/b/k?uploadId=x"), "ListParts");
        assert_eq!(op("GET", "/b?uploads&prefix=p"), "ListMultipartUploads");
        assert_eq!(op("GET", "/b/?uploads"), "ListMultipartUploads");
        assert_eq!(op("GET", "/b?list-type=2"), "ListObjects");
        assert_eq!(op("GET", "/"), "ListBuckets");
        assert_eq!(op("PUT", "/b"), "CreateBucket");
    }
}
