//! [`ObjectStore`] on S3: HEAD and a streamed GET of uploads, PUT of reports, and the
//! multipart uploads exports stream through.

use aws_sdk_s3::primitives::ByteStream as S3Body;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};

use super::service;
use crate::ports::{ByteStream, MultipartUpload, ObjectInfo, ObjectStore, PutBody, StoreError};

/// S3 adapter.
#[derive(Clone, Debug)]
pub struct S3Objects {
    client: aws_sdk_s3::Client,
}

impl S3Objects {
    /// Wraps a client.
    pub fn new(client: aws_sdk_s3::Client) -> S3Objects {
        S3Objects { client }
    }
}

fn not_found(bucket: &str, key: &str) -> StoreError {
    StoreError::NotFound {
        bucket: bucket.into(),
        key: key.into(),
    }
}

impl ObjectStore for S3Objects {
    async fn head(&self, bucket: &str, key: &str) -> Result<ObjectInfo, StoreError> {
        let out = self
            .client
            .head_object()
            .bucket(bucket)
            .key(key)
            .send()
            .await
            .map_err(|e| {
                let e = e.into_service_error();
                if e.is_not_found() {
                    not_found(bucket, key)
                } else {
                    service("S3 HeadObject")(e)
                }
            })?;
        Ok(ObjectInfo {
            size: out.content_length().unwrap_or(0).max(0) as u64,
            etag: out.e_tag().map(|e| e.trim_matches('"').to_string()),
            // An unversioned bucket answers the version id "null".
            version_id: out
                .version_id()
                .filter(|v| *v != "null")
                .map(str::to_string),
            metadata: out.metadata().cloned().unwrap_or_default(),
        })
    }

    async fn open(&self, bucket: &str, key: &str) -> Result<ByteStream, StoreError> {
        let out = self
            .client
            .get_object()
            .bucket(bucket)
            .key(key)
            .send()
            .await
            .map_err(|e| {
                let e = e.into_service_error();
                if e.is_no_such_key() {
                    not_found(bucket, key)
                } else {
                    service("S3 GetObject")(e)
                }
            })?;
        Ok(Box::pin(out.body.into_async_read()))
    }

    async fn put(
        &self,
        bucket: &str,
        key: &str,
        body: PutBody,
        content_type: &str,
    ) -> Result<(), StoreError> {
        let body = match body {
            PutBody::Bytes(bytes) => S3Body::from(bytes),
            PutBody::File(path) => S3Body::from_path(path)
                .await
                .map_err(service("read report file"))?,
        };
        self.client
            .put_object()
            .bucket(bucket)
            .key(key)
            .content_type(content_type)
            .body(body)
            .send()
            .await
            .map_err(|e| service("S3 PutObject")(e.into_service_error()))?;
        Ok(())
    }

    async fn start_multipart(
        &self,
        bucket: &str,
        key: &str,
        content_type: &str,
    ) -> Result<String, StoreError> {
        let out = self
            .client
            .create_multipart_upload()
            .bucket(bucket)
            .key(key)
            .content_type(content_type)
            .send()
            .await
            .map_err(|e| service("S3 CreateMultipartUpload")(e.into_service_error()))?;
        out.upload_id()
            .map(str::to_string)
            .ok_or_else(|| StoreError::Malformed {
                pk: format!("s3://{bucket}/{key}"),
                problem: "CreateMultipartUpload answered no upload id".into(),
            })
    }

    async fn upload_part(
        &self,
        upload: &MultipartUpload,
        part_number: i32,
        bytes: Vec<u8>,
    ) -> Result<String, StoreError> {
        let out = self
            .client
            .upload_part()
            .bucket(&upload.bucket)
            .key(&upload.key)
            .upload_id(&upload.upload_id)
            .part_number(part_number)
            .body(S3Body::from(bytes))
            .send()
            .await
            .map_err(|e| service("S3 UploadPart")(e.into_service_error()))?;
        out.e_tag()
            .map(str::to_string)
            .ok_or_else(|| StoreError::Malformed {
                pk: format!("s3://{}/{}", upload.bucket, upload.key),
                problem: format!("UploadPart {part_number} answered no eTag"),
            })
    }

    async fn complete_multipart(
        &self,
        upload: &MultipartUpload,
        etags: &[String],
    ) -> Result<(), StoreError> {
        let parts = etags
            .iter()
            .zip(1..)
            .map(|(etag, number)| {
                CompletedPart::builder()
                    .e_tag(etag)
                    .part_number(number)
                    .build()
            })
            .collect();
        self.client
            .complete_multipart_upload()
            .bucket(&upload.bucket)
            .key(&upload.key)
            .upload_id(&upload.upload_id)
            .multipart_upload(
                CompletedMultipartUpload::builder()
                    .set_parts(Some(parts))
                    .build(),
            )
            .send()
            .await
            .map_err(|e| service("S3 CompleteMultipartUpload")(e.into_service_error()))?;
        Ok(())
    }

    async fn abort_multipart(&self, upload: &MultipartUpload) -> Result<(), StoreError> {
        self.client
            .abort_multipart_upload()
            .bucket(&upload.bucket)
            .key(&upload.key)
            .upload_id(&upload.upload_id)
            .send()
            .await
            .map_err(|e| service("S3 AbortMultipartUpload")(e.into_service_error()))?;
        Ok(())
    }

    async fn delete(&self, bucket: &str, key: &str) -> Result<(), StoreError> {
        self.client
            .delete_object()
            .bucket(bucket)
            .key(key)
            .send()
            .await
            .map_err(|e| service("S3 DeleteObject")(e.into_service_error()))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use aws_sdk_s3::operation::abort_multipart_upload::AbortMultipartUploadOutput;
    use aws_sdk_s3::operation::complete_multipart_upload::CompleteMultipartUploadOutput;
    use aws_sdk_s3::operation::create_multipart_upload::CreateMultipartUploadOutput;
    use aws_sdk_s3::operation::get_object::{GetObjectError, GetObjectOutput};
    use aws_sdk_s3::operation::head_object::{HeadObjectError, HeadObjectOutput};
    use aws_sdk_s3::operation::upload_part::UploadPartOutput;
    use aws_sdk_s3::types::error::{NoSuchKey, NotFound};
    use aws_sdk_s3::Client;
    use aws_smithy_mocks::{mock, mock_client};
    use tokio::io::AsyncReadExt;

    use super::*;

    #[tokio::test]
    async fn head_unquotes_the_etag_and_drops_the_null_version() {
        // GIVEN an object S3 describes with a quoted eTag and the version id "null"
        let rule = mock!(Client::head_object)
            .match_requests(|req| {
                req.bucket() == Some("contact-uploads") && req.key() == Some("imports/a/sms/x.csv")
            })
            .then_output(|| {
                HeadObjectOutput::builder()
                    .content_length(42)
                    .e_tag("\"abc123\"")
                    .version_id("null")
                    .metadata("on-existing", "ignore")
                    .build()
            });
        let objects = S3Objects::new(mock_client!(aws_sdk_s3, [&rule]));

        // WHEN it is read
        let info = objects
            .head("contact-uploads", "imports/a/sms/x.csv")
            .await
            .expect("head answers");

        // THEN the size, bare eTag and metadata come back, and no version id
        assert_eq!(info.size, 42);
        assert_eq!(info.etag.as_deref(), Some("abc123"));
        assert_eq!(info.version_id, None);
        assert_eq!(
            info.metadata.get("on-existing").map(String::as_str),
            Some("ignore")
        );
        assert_eq!(rule.num_calls(), 1);
    }

    #[tokio::test]
    async fn a_missing_object_is_not_found_naming_bucket_and_key() {
        // GIVEN no such object, for HEAD and for GET
        let head = mock!(Client::head_object)
            .then_error(|| HeadObjectError::NotFound(NotFound::builder().build()));
        let get = mock!(Client::get_object)
            .then_error(|| GetObjectError::NoSuchKey(NoSuchKey::builder().build()));
        let objects = S3Objects::new(mock_client!(aws_sdk_s3, [&head, &get]));

        // WHEN each is tried
        let headed = objects.head("b", "k").await;
        let opened = objects.open("b", "k").await;

        // THEN both say which object is missing
        for result in [headed.map(|_| ()), opened.map(|_| ())] {
            assert!(
                matches!(result, Err(StoreError::NotFound { ref bucket, ref key }) if bucket == "b" && key == "k"),
                "{result:?}"
            );
        }
    }

    #[tokio::test]
    async fn open_streams_the_body() {
        // GIVEN an object holding a small CSV
        let rule = mock!(Client::get_object).then_output(|| {
            GetObjectOutput::builder()
                .body(S3Body::from_static(b"Phone\n+447911123456\n"))
                .build()
        });
        let objects = S3Objects::new(mock_client!(aws_sdk_s3, [&rule]));

        // WHEN it is opened and read to the end
        let mut body = String::new();
        objects
            .open("b", "k")
            .await
            .expect("opens")
            .read_to_string(&mut body)
            .await
            .expect("reads");

        // THEN the bytes are the object's
        assert_eq!(body, "Phone\n+447911123456\n");
    }
    #[tokio::test]
    async fn a_multipart_upload_sends_its_parts_and_completes_them_in_order() {
        // GIVEN S3 that starts an upload, takes parts and completes them
        let upload_id = "up-1";
        let create = mock!(Client::create_multipart_upload)
            .match_requests(|req| {
                req.bucket() == Some("b")
                    && req.key() == Some("exports/acme/exp_1.csv")
                    && req.content_type() == Some("text/csv; charset=utf-8")
            })
            .then_output(move || {
                CreateMultipartUploadOutput::builder()
                    .upload_id(upload_id)
                    .build()
            });
        let part = mock!(Client::upload_part)
            .match_requests(move |req| {
                req.upload_id() == Some(upload_id) && req.key() == Some("exports/acme/exp_1.csv")
            })
            .then_output(|| UploadPartOutput::builder().e_tag("\"p\"").build());
        let complete = mock!(Client::complete_multipart_upload)
            .match_requests(move |req| {
                let numbers: Vec<Option<i32>> = req
                    .multipart_upload()
                    .map(|u| u.parts().iter().map(|p| p.part_number()).collect())
                    .unwrap_or_default();
                let etags: Vec<Option<&str>> = req
                    .multipart_upload()
                    .map(|u| u.parts().iter().map(|p| p.e_tag()).collect())
                    .unwrap_or_default();
                req.upload_id() == Some(upload_id)
                    && numbers == [Some(1), Some(2)]
                    && etags == [Some("\"a\""), Some("\"b\"")]
            })
            .then_output(|| CompleteMultipartUploadOutput::builder().build());
        let objects = S3Objects::new(mock_client!(aws_sdk_s3, [&create, &part, &complete]));

        // WHEN an upload is started, given two parts and completed
        let id = objects
            .start_multipart("b", "exports/acme/exp_1.csv", "text/csv; charset=utf-8")
            .await
            .expect("starts");
        let upload = MultipartUpload {
            bucket: "b".into(),
            key: "exports/acme/exp_1.csv".into(),
            upload_id: id,
        };
        let etag = objects
            .upload_part(&upload, 1, b"Phone\n".to_vec())
            .await
            .expect("part uploads");
        objects
            .complete_multipart(&upload, &["\"a\"".into(), "\"b\"".into()])
            .await
            .expect("completes");

        // THEN each request named the upload, and the parts went in order with their eTags
        assert_eq!(upload.upload_id, "up-1");
        assert_eq!(etag, "\"p\"");
        assert_eq!(
            (create.num_calls(), part.num_calls(), complete.num_calls()),
            (1, 1, 1)
        );
    }

    #[tokio::test]
    async fn an_abort_names_the_upload() {
        // GIVEN S3 that aborts the upload it is asked to
        let abort = mock!(Client::abort_multipart_upload)
            .match_requests(|req| {
                req.bucket() == Some("b")
                    && req.key() == Some("k")
                    && req.upload_id() == Some("up-9")
            })
            .then_output(|| AbortMultipartUploadOutput::builder().build());
        let objects = S3Objects::new(mock_client!(aws_sdk_s3, [&abort]));
        let upload = MultipartUpload {
            bucket: "b".into(),
            key: "k".into(),
            upload_id: "up-9".into(),
        };

        // WHEN it is aborted
        let result = objects.abort_multipart(&upload).await;

        // THEN the one request went out for that upload
        assert!(result.is_ok(), "{result:?}");
        assert_eq!(abort.num_calls(), 1);
    }
}
