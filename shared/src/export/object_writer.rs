//! An object written part by part: a multipart upload started with the first full part,
//! or a single PUT when the whole object fits in one part.

use crate::ports::{MultipartUpload, ObjectStore, PutBody, StoreError};

/// Writes one object to an [`ObjectStore`] in parts of at least `part_bytes` (the
/// caller hands over full parts; the last may be smaller), holding one part in memory.
pub struct ObjectWriter<'a, O> {
    objects: &'a O,
    bucket: String,
    key: String,
    content_type: String,
    part_bytes: usize,
    upload: Option<MultipartUpload>,
    etags: Vec<String>,
}

impl<'a, O: ObjectStore> ObjectWriter<'a, O> {
    /// A writer of `bucket`/`key`; nothing is sent before the first part.
    pub fn new(
        objects: &'a O,
        bucket: &str,
        key: &str,
        content_type: &str,
        part_bytes: usize,
    ) -> ObjectWriter<'a, O> {
        ObjectWriter {
            objects,
            bucket: bucket.to_string(),
            key: key.to_string(),
            content_type: content_type.to_string(),
            part_bytes,
            upload: None,
            etags: Vec::new(),
        }
    }

    /// The size of a full part.
    pub fn part_bytes(&self) -> usize {
        self.part_bytes
    }

    /// Uploads a full part (at least [`part_bytes`](Self::part_bytes), which S3 wants
    /// of every part but the last), starting the multipart upload with the first.
    pub async fn write_part(&mut self, bytes: Vec<u8>) -> Result<(), StoreError> {
        let upload = match &self.upload {
            Some(upload) => upload,
            None => {
                let upload_id = self
                    .objects
                    .start_multipart(&self.bucket, &self.key, &self.content_type)
                    .await?;
                self.upload.insert(MultipartUpload {
                    bucket: self.bucket.clone(),
                    key: self.key.clone(),
                    upload_id,
                })
            }
        };
        let number = i32::try_from(self.etags.len() + 1).unwrap_or(i32::MAX);
        let etag = self.objects.upload_part(upload, number, bytes).await?;
        self.etags.push(etag);
        Ok(())
    }

    /// Writes the last bytes and makes the object appear: a single PUT when no part was
    /// sent, else the last part and the completion. A failure aborts the upload.
    pub async fn finish(mut self, last: Vec<u8>) -> Result<(), StoreError> {
        let Some(upload) = self.upload.clone() else {
            return self
                .objects
                .put(
                    &self.bucket,
                    &self.key,
                    PutBody::Bytes(last),
                    &self.content_type,
                )
                .await;
        };
        let result = async {
            if !last.is_empty() {
                self.write_part(last).await?;
            }
            self.objects.complete_multipart(&upload, &self.etags).await
        }
        .await;
        if result.is_err() {
            self.abort().await;
        }
        result
    }

    /// Abandons the object: a multipart upload under way is aborted, so its parts do
    /// not linger (and are not billed). An abort that fails is logged: the bucket's
    /// lifecycle rule for incomplete uploads is the backstop.
    pub async fn abort(self) {
        let Some(upload) = &self.upload else {
            return;
        };
        if let Err(e) = self.objects.abort_multipart(upload).await {
            tracing::warn!(key = %upload.key, error = %e, "aborting the multipart upload failed");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ports::memory::MemoryObjects;
    use crate::ports::MIN_PART_BYTES;

    #[tokio::test]
    async fn a_small_object_is_one_put() {
        // GIVEN a writer and less than a part
        let objects = MemoryObjects::default();
        let writer = ObjectWriter::new(&objects, "b", "k.csv", "text/csv", MIN_PART_BYTES);

        // WHEN it finishes
        writer.finish(b"Phone\n".to_vec()).await.expect("put");

        // THEN the object is there and no multipart upload was started
        assert_eq!(objects.text("b", "k.csv").as_deref(), Some("Phone\n"));
        assert_eq!(objects.multipart_counts(), (0, 0, 0));
    }

    #[tokio::test]
    async fn full_parts_then_the_rest_make_one_object() {
        // GIVEN two full parts and a short last one
        let objects = MemoryObjects::default();
        let mut writer = ObjectWriter::new(&objects, "b", "k.csv", "text/csv", MIN_PART_BYTES);
        let (a, b) = (vec![b'a'; MIN_PART_BYTES], vec![b'b'; MIN_PART_BYTES + 1]);

        // WHEN they are written and the writer finishes
        writer.write_part(a.clone()).await.expect("part 1");
        writer.write_part(b.clone()).await.expect("part 2");
        writer.finish(b"c".to_vec()).await.expect("completes");

        // THEN the object is the parts in order, from one completed upload
        let body = objects.text("b", "k.csv").expect("object");
        assert_eq!(body.len(), a.len() + b.len() + 1);
        assert!(body.starts_with('a') && body.ends_with("bc"));
        assert_eq!(
            objects.part_sizes(),
            [MIN_PART_BYTES, MIN_PART_BYTES + 1, 1]
        );
        assert_eq!(objects.multipart_counts(), (1, 0, 0));
    }

    #[tokio::test]
    async fn a_failed_part_aborts_the_upload_and_leaves_no_object() {
        // GIVEN a store whose second part fails
        let objects = MemoryObjects::default();
        objects.fail_part(2);
        let mut writer = ObjectWriter::new(&objects, "b", "k.csv", "text/csv", MIN_PART_BYTES);
        writer
            .write_part(vec![b'a'; MIN_PART_BYTES])
            .await
            .expect("part 1");

        // WHEN the last part is sent
        let result = writer.finish(b"rest".to_vec()).await;

        // THEN the error comes back, the upload was aborted and no object appeared
        assert!(result.is_err());
        assert_eq!(objects.multipart_counts(), (1, 1, 0));
        assert_eq!(objects.text("b", "k.csv"), None);
    }
}
