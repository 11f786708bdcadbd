//! The `S3Service`: s3s configured with coffer's auth, access and limits, and the `S3` trait
//! implementation — one line per operation, forwarding to the family modules. Operations
//! not listed here answer s3s's `NotImplemented`.

use std::sync::Arc;

use coffer_gateway::Gateway;
use s3s::config::{S3Config, StaticConfigProvider};
use s3s::dto::*;
use s3s::service::{S3Service, S3ServiceBuilder};
use s3s::{S3, S3Request, S3Response, S3Result};

use crate::auth::GatewayAuth;
use crate::{buckets, list, multipart, objects};

/// The S3 trait over the gateway.
pub struct CofferS3 {
    gateway: Arc<Gateway>,
}

/// Build the S3 service for `gateway`.
pub fn build(gateway: Arc<Gateway>) -> S3Service {
    let mut b = S3ServiceBuilder::new(CofferS3 { gateway: gateway.clone() });
    b.set_auth(GatewayAuth { gateway: gateway.clone() });
    b.set_access(GatewayAuth { gateway });
    let mut config = S3Config::default();
    // XML bodies (DeleteObjects, CompleteMultipartUpload with 10 000 parts) stay small.
    config.xml_max_body_size = 2 * 1024 * 1024;
    // POST-form uploads are refused before s3s (see `refuse_unsupported`); keep its buffer
    // at nothing in case one slips through.
    config.post_object_max_file_size = 0;
    b.set_config(Arc::new(StaticConfigProvider::new(Arc::new(config))));
    b.build()
}

macro_rules! forward {
    ($($op:ident: $module:ident, $input:ident => $output:ident;)*) => {
        #[async_trait::async_trait]
        impl S3 for CofferS3 {
            $(
                async fn $op(&self, req: S3Request<$input>) -> S3Result<S3Response<$output>> {
                    $module::$op(&self.gateway, req).await
                }
            )*
        }
    };
}

forward! {
    list_buckets: buckets, ListBucketsInput => ListBucketsOutput;
    create_bucket: buckets, CreateBucketInput => CreateBucketOutput;
    head_bucket: buckets, HeadBucketInput => HeadBucketOutput;
    delete_bucket: buckets, DeleteBucketInput => DeleteBucketOutput;
    get_bucket_location: buckets, GetBucketLocationInput => GetBucketLocationOutput;
    list_objects: list, ListObjectsInput => ListObjectsOutput;
    list_objects_v2: list, ListObjectsV2Input => ListObjectsV2Output;
    list_object_versions: list, ListObjectVersionsInput => ListObjectVersionsOutput;
    put_object: objects, PutObjectInput => PutObjectOutput;
    get_object: objects, GetObjectInput => GetObjectOutput;
    head_object: objects, HeadObjectInput => HeadObjectOutput;
    delete_object: objects, DeleteObjectInput => DeleteObjectOutput;
    delete_objects: objects, DeleteObjectsInput => DeleteObjectsOutput;
    copy_object: objects, CopyObjectInput => CopyObjectOutput;
    create_multipart_upload: multipart, CreateMultipartUploadInput => CreateMultipartUploadOutput;
    upload_part: multipart, UploadPartInput => UploadPartOutput;
    upload_part_copy: multipart, UploadPartCopyInput => UploadPartCopyOutput;
    complete_multipart_upload: multipart, CompleteMultipartUploadInput => CompleteMultipartUploadOutput;
    abort_multipart_upload: multipart, AbortMultipartUploadInput => AbortMultipartUploadOutput;
    list_parts: multipart, ListPartsInput => ListPartsOutput;
    list_multipart_uploads: multipart, ListMultipartUploadsInput => ListMultipartUploadsOutput;
}
