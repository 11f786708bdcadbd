//! The conformance suite (`conformance/`) on every backend: the filesystem, S3 (moto),
//! Azure Blob (Azurite) and GCS (an in-process fake of its XML API). Each scenario is a
//! test per backend: `fs::ranges`, `s3::ranges`, `azure::ranges`, `gcs::ranges`, …; the
//! filesystem twice, its short calls inline (`fs`) and on the blocking pool (`fs_pool`).
//! A cloud test passes with a notice when its emulator is not installed, and fails under
//! `CI=true` (see `support`).

mod conformance;
mod support;

macro_rules! suite {
    ($backend:ident, $setup:expr) => {
        mod $backend {
            use crate::conformance;

            suite!(@tests $setup;
                put_get_head_round_trip,
                etags_agree_everywhere,
                ranges,
                missing_things,
                bad_digest_leaves_nothing,
                size_checks,
                too_large_is_detected_while_streaming,
                body_error_leaves_nothing,
                dropped_put_leaves_nothing,
                nasty_keys_round_trip,
                object_and_prefix_coexist,
                deletes,
                delete_bucket_rules,
                copy_object_metadata,
                listing_matches_the_reference,
                randomized_listing_matches_a_naive_model,
                multipart_happy_path,
                multipart_subsets_and_gaps,
                multipart_errors,
                multipart_ownership_and_abort,
                list_multipart_uploads,
                large_streamed_object,
                readers_see_old_or_new_never_a_part,
                check_fails_when_the_backend_is_down
            );
        }
    };
    (@tests $setup:expr; $($scenario:ident),*) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $scenario() {
                let Some(env) = $setup.await else { return };
                conformance::$scenario(&env).await;
            }
        )*
    };
}

suite!(fs, async { Some(crate::support::fs(coffer_backend::FsIo::Inline).await) });
suite!(fs_pool, async { Some(crate::support::fs(coffer_backend::FsIo::Pool).await) });
suite!(s3, crate::support::s3());
suite!(azure, crate::support::azure());
suite!(gcs, crate::support::gcs());
