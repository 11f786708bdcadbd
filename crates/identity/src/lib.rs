//! # coffer-identity
//!
//! Who is calling: long-term SigV4 access keys — generating their ids and secrets,
//! and sealing secrets with the server key so that the metadata store never holds one in
//! plain text; SigV4 signatures outside S3 (the REST API); OpenID Connect bearer tokens
//! (people and service accounts); identity headers of a trusted auth sidecar; STS session
//! credentials; and share-link tokens.
//!
//! ## Layout
//! - [`keys`] — [`generate_access_key`]: an id like AWS's (`CK` + 18 characters) and a
//!   40-character secret.
//! - [`seal`] — [`ServerKey`]: XChaCha20-Poly1305 with the access key id as associated data,
//!   so a sealed secret cannot be moved to another key's row.
//! - [`oidc`] — [`OidcVerifier`]: OpenID Connect bearer tokens from configured issuers
//!   (pinned algorithms, audiences, JWKS by discovery, URL or file, cached and refetched on
//!   rotation), mapped to a user name and groups, Keycloak roles included; a cluster's
//!   service-account tokens may instead be checked by the Kubernetes TokenReview API
//!   ([`oidc::token_review`]).
//! - [`headers`] — [`TrustedHeaders`]: identity headers of an auth sidecar, believed only
//!   from configured proxy addresses.
//! - [`share`] — share-link tokens: a public link id and its MAC under the server key.
//! - [`session`] — temporary (STS) credentials: a `CS…` key id whose secret any replica
//!   derives from the server key, and a signed, self-describing session token.
//! - [`sigv4`] — [`sigv4::verify`]: AWS Signature Version 4 in the `Authorization` header
//!   (S3 flavour) for the JSON REST API, and [`sigv4::PayloadCheck`] for the body's hash.
//! - [`console`] — the web console's browser sessions: the signed session cookie with its
//!   CSRF token, the signed state of a sign-in (PKCE, `state`, `nonce`); the sign-in itself
//!   is the authorization code flow of [`oidc::code_flow`].

pub mod console;
pub mod headers;
pub mod keys;
pub mod oidc;
pub mod seal;
pub mod session;
pub mod share;
pub mod sigv4;

pub use headers::{HeaderIdentity, HeaderOutcome, TrustedHeaders, TrustedHeadersConfig};
pub use keys::{GeneratedKey, generate_access_key};
pub use oidc::{IssuerConfig, OidcVerifier, TokenError, TokenIdentity, TokenReviewConfig};
pub use seal::{SealError, ServerKey};
