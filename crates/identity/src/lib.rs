//! # coffer-identity
//!
//! Who is calling: long-term SigV4 access keys — generating their ids and secrets,
//! and sealing secrets with the server key so that the metadata store never holds one in
//! plain text; OpenID Connect bearer tokens (people and service accounts); identity
//! headers of a trusted auth sidecar; and STS session credentials.
//!
//! ## Layout
//! - [`keys`] — [`generate_access_key`]: an id like AWS's (`CK` + 18 characters) and a
//!   40-character secret.
//! - [`seal`] — [`ServerKey`]: XChaCha20-Poly1305 with the access key id as associated data,
//!   so a sealed secret cannot be moved to another key's row.
//! - [`oidc`] — [`OidcVerifier`]: OpenID Connect bearer tokens from configured issuers
//!   (pinned algorithms, audiences, JWKS by discovery, URL or file, cached and refetched on
//!   rotation), mapped to a user name and groups, Keycloak roles included.
//! - [`headers`] — [`TrustedHeaders`]: identity headers of an auth sidecar, believed only
//!   from configured proxy addresses.
//! - [`session`] — temporary (STS) credentials: a `CS…` key id whose secret any replica
//!   derives from the server key, and a signed, self-describing session token.

pub mod headers;
pub mod keys;
pub mod oidc;
pub mod seal;
pub mod session;

pub use headers::{HeaderIdentity, HeaderOutcome, TrustedHeaders, TrustedHeadersConfig};
pub use keys::{GeneratedKey, generate_access_key};
pub use oidc::{IssuerConfig, OidcVerifier, TokenError, TokenIdentity};
pub use seal::{SealError, ServerKey};
