//! ListBuckets, CreateBucket, HeadBucket, DeleteBucket, GetBucketLocation.

use coffer_gateway::Gateway;
use s3s::dto::*;
use s3s::{S3Request, S3Response, S3Result};

use crate::auth::caller;
use crate::convert::timestamp;
use crate::error::to_s3;

fn created(t: i64) -> Timestamp {
    timestamp(std::time::UNIX_EPOCH + std::time::Duration::from_secs(t.max(0) as u64))
}

pub async fn list_buckets(gw: &Gateway, req: S3Request<ListBucketsInput>) -> S3Result<S3Response<ListBucketsOutput>> {
    let c = caller(&req.extensions)?;
    let buckets = gw.list_buckets(c).await.map_err(to_s3)?;
    let list = buckets
        .into_iter()
        .map(|b| Bucket {
            name: Some(b.name.to_string()),
            creation_date: Some(created(b.created_at)),
            bucket_region: None,
        })
        .collect();
    Ok(S3Response::new(ListBucketsOutput {
        buckets: Some(list),
        owner: Some(Owner { display_name: Some(c.principal.name.clone()), id: Some(c.principal.name.clone()) }),
        ..Default::default()
    }))
}

pub async fn create_bucket(
    gw: &Gateway,
    req: S3Request<CreateBucketInput>,
) -> S3Result<S3Response<CreateBucketOutput>> {
    let c = caller(&req.extensions)?;
    let tier = req.input.create_bucket_configuration.as_ref().and_then(|cfg| cfg.location_constraint.as_ref());
    let b = gw.create_bucket(c, &req.input.bucket, tier.map(|t| t.as_str())).await.map_err(to_s3)?;
    Ok(S3Response::new(CreateBucketOutput { location: Some(format!("/{}", b.name)) }))
}

pub async fn head_bucket(gw: &Gateway, req: S3Request<HeadBucketInput>) -> S3Result<S3Response<HeadBucketOutput>> {
    let c = caller(&req.extensions)?;
    gw.head_bucket(c, &req.input.bucket).await.map_err(to_s3)?;
    Ok(S3Response::new(HeadBucketOutput::default()))
}

pub async fn delete_bucket(
    gw: &Gateway,
    req: S3Request<DeleteBucketInput>,
) -> S3Result<S3Response<DeleteBucketOutput>> {
    let c = caller(&req.extensions)?;
    gw.delete_bucket(c, &req.input.bucket).await.map_err(to_s3)?;
    Ok(S3Response::new(DeleteBucketOutput::default()))
}

pub async fn get_bucket_location(
    gw: &Gateway,
    req: S3Request<GetBucketLocationInput>,
) -> S3Result<S3Response<GetBucketLocationOutput>> {
    let c = caller(&req.extensions)?;
    let tier = gw.get_bucket_location(c, &req.input.bucket).await.map_err(to_s3)?;
    Ok(S3Response::new(GetBucketLocationOutput { location_constraint: Some(BucketLocationConstraint::from(tier)) }))
}
