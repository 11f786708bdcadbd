//! # coffer-k8s
//!
//! coffer on Kubernetes: the profile controller and the admission webhooks.
//!
//! ## Layout
//! - [`settings`] — the `[kubernetes]` configuration: label keys, the driver namespace,
//!   credential rotation, the volumes made per tier.
//! - [`controller`] — `coffer controller`: reconciles profiles into buckets, credentials,
//!   PVs and PVCs, with a finalizer, events, metrics and key rotation.
//! - [`desired`] — pure functions: a profile and a tier's settings → the bucket's name, the
//!   credential Secret, the PersistentVolume and the PersistentVolumeClaim, per CSI driver.
//! - [`webhook`] — `coffer webhook`: the PVC-binding and pod-classification admission rules,
//!   automount injection, and their HTTPS server.
pub mod controller;
pub mod desired;
pub mod settings;
pub mod webhook;
