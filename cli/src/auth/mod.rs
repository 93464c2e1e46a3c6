//! Proving who you are to the CA: `rampart enroll` and `rampart login`, and the
//! factors and keys they use.
//!
//! - [`enroll`]: redeem an invite and register the first factor;
//! - [`login`]: prove a factor, get a certificate, wire it into OpenSSH;
//! - [`code`]: a one-time code (TOTP or recovery) typed or piped in;
//! - [`webauthn`]: a security-key ceremony, through a browser page or CTAP2
//!   ([`fido2`]) from the terminal;
//! - [`oidc`]: a login at an identity provider, by browser or device code;
//! - [`piv`]: the SSH key held in a YubiKey's PIV slot (`--key piv`).
//!
//! `rampart keys` (managing security keys once logged in) lives outside, in
//! [`crate::keys`], and borrows [`webauthn`] for its ceremonies.

pub mod code;
pub mod enroll;
pub mod fido2;
pub mod login;
pub mod oidc;
pub mod piv;
pub mod webauthn;
