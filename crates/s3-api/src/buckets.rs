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

/// ListBuckets, with AWS's optional paging (`max-buckets`, `continuation-token`) and `prefix`.
pub async fn list_buckets(gw: &Gateway, req: S3Request<ListBucketsInput>) -> S3Result<S3Response<ListBucketsOutput>> {
    let c = caller(&req.extensions)?;
    let i = &req.input;
    let max = match i.max_buckets {
        None => usize::MAX,
        Some(n) if (1..=10_000).contains(&n) => n as usize,
        Some(_) => {
            return Err(s3s::S3Error::with_message(
                s3s::S3ErrorCode::InvalidArgument,
                "max-buckets must be between 1 and 10000",
            ));
        }
    };
    let prefix = i.prefix.as_deref().unwrap_or("");
    let after = i.continuation_token.as_deref().unwrap_or("");
    let mut buckets: Vec<_> = gw
        .list_buckets(c)
        .await
        .map_err(to_s3)?
        .into_iter()
        .filter(|b| b.name.as_str().starts_with(prefix) && b.name.as_str() > after)
        .collect();
    let more = buckets.len() > max;
    buckets.truncate(max);
    let token = more.then(|| buckets.last().map(|b| b.name.to_string())).flatten();
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
        continuation_token: token,
        prefix: i.prefix.clone(),
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
    // The default tier answers as AWS's default region does: no constraint. SDKs and tools
    // (s3cmd, rclone) read this value as a region.
    let location_constraint = (tier != gw.default_tier()).then(|| BucketLocationConstraint::from(tier));
    Ok(S3Response::new(GetBucketLocationOutput { location_constraint }))
}
