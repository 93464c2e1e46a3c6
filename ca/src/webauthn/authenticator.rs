//! What the CA reads from an authenticator's own bytes, outside webauthn-rs's
//! checks: the AAGUID of an attestation, an assertion's signature counter,
//! and which refusal code a failed ceremony earns; and what a key may be
//! named.

use rampart_api::ErrorCode;
use webauthn_rs_core::error::WebauthnError;

use super::MAX_KEY_NAME;

/// A UUID in any common spelling (with or without dashes, any case) as the
/// canonical lower-case 8-4-4-4-12 form.
pub fn canonical_aaguid(s: &str) -> Option<String> {
    let hexits: String = s.chars().filter(|c| *c != '-').collect();
    let bytes = hex::decode(hexits.trim()).ok()?;
    let arr: [u8; 16] = bytes.try_into().ok()?;
    Some(format_aaguid(&arr))
}

/// 16 bytes as a lower-case UUID.
pub fn format_aaguid(b: &[u8; 16]) -> String {
    let h = hex::encode(b);
    // hex of 16 bytes is 32 ASCII characters, so these ranges exist.
    format!(
        "{}-{}-{}-{}-{}",
        h.get(0..8).unwrap_or_default(),
        h.get(8..12).unwrap_or_default(),
        h.get(12..16).unwrap_or_default(),
        h.get(16..20).unwrap_or_default(),
        h.get(20..32).unwrap_or_default()
    )
}

/// The AAGUID of a registration: bytes 37..53 of the authenticator data inside
/// the attestation object (WebAuthn §6.5.1: rpIdHash 32, flags 1, signCount 4,
/// then the attested credential data starting with the AAGUID). Read here because
/// webauthn-rs only reports it for some attestation formats.
pub fn aaguid_of_attestation(attestation_object: &[u8]) -> Option<String> {
    use serde_cbor_2::Value;
    let v: Value = serde_cbor_2::from_slice(attestation_object).ok()?;
    let Value::Map(map) = v else { return None };
    let auth_data = map.iter().find_map(|(k, v)| match (k, v) {
        (Value::Text(k), Value::Bytes(b)) if k == "authData" => Some(b),
        _ => None,
    })?;
    let aaguid: [u8; 16] = auth_data.get(37..53)?.try_into().ok()?;
    Some(format_aaguid(&aaguid))
}

/// The signature counter and UV flag in an assertion's authenticator data
/// (WebAuthn §6.1: flags at byte 32, bit 2 = UV; signCount big-endian at 33..37).
pub fn assertion_counter(authenticator_data: &[u8]) -> Option<(u32, bool)> {
    let flags = *authenticator_data.get(32)?;
    let count: [u8; 4] = authenticator_data.get(33..37)?.try_into().ok()?;
    Some((u32::from_be_bytes(count), flags & 0x04 != 0))
}

/// A WebAuthn library verdict as a stable reason code and a sentence for the user.
pub fn failure_of(e: &WebauthnError) -> (ErrorCode, &'static str) {
    use WebauthnError as E;
    match e {
        E::InvalidRPOrigin | E::CredentialCrossOrigin => (
            ErrorCode::WebauthnWrongOrigin,
            "the browser answered for another web site (origin); open the link exactly as printed",
        ),
        E::InvalidRPIDHash => (
            ErrorCode::WebauthnWrongRpId,
            "the key answered for another relying party (RP ID)",
        ),
        E::MismatchedChallenge | E::ChallengeNotFound => (
            ErrorCode::WebauthnChallengeMismatch,
            "the answer is for another challenge (replayed or stale)",
        ),
        E::InvalidClientDataType => (
            ErrorCode::WebauthnWrongCeremony,
            "the answer is for another kind of WebAuthn ceremony",
        ),
        E::UserNotVerified => (
            ErrorCode::WebauthnUvMissing,
            "this CA requires user verification (PIN or biometric) on the key",
        ),
        E::UserNotPresent => (
            ErrorCode::WebauthnUpMissing,
            "the key did not report user presence (touch)",
        ),
        E::CredentialNotFound => (
            ErrorCode::WebauthnForeignCredential,
            "that key is not one of this user's keys",
        ),
        E::CredentialPossibleCompromise => (
            ErrorCode::WebauthnSignCount,
            "the key's signature counter went backwards; it may be cloned and is now disabled",
        ),
        E::AuthenticationFailure | E::SignatureInvalid => (
            ErrorCode::WebauthnSignatureInvalid,
            "the key's signature does not verify",
        ),
        E::CredentialExcludedFromRequest | E::CredentialAlteredAlgFromRequest => (
            ErrorCode::WebauthnKeyRefused,
            "this key is already enrolled or answered with an algorithm that was not offered",
        ),
        E::AttestationNotVerifiable
        | E::AttestationChainNotTrusted(_)
        | E::AttestationUntrustedAaguid
        | E::AttestationTrustFailure
        | E::AttestationFormatMissingAaguid
        | E::AttestationCertificateAAGUIDMismatch => (
            ErrorCode::WebauthnAttestationUntrusted,
            "the key's attestation is not trusted by this CA",
        ),
        E::ParseCBORFailure(_)
        | E::ParseJSONFailure(_)
        | E::ParseNOMFailure
        | E::ParseInsufficientBytesAvailable
        | E::COSEKeyInvalidCBORValue
        | E::COSEKeyInvalidType
        | E::MissingAttestationCredentialData => (
            ErrorCode::WebauthnMalformed,
            "the key's answer is not well-formed",
        ),
        _ => (ErrorCode::WebauthnInvalid, "the key's answer was refused"),
    }
}

/// `name` is a usable key name: 1–64 of letters, digits, `-_. `.
pub fn valid_key_name(name: &str) -> bool {
    !name.trim().is_empty()
        && name.len() <= MAX_KEY_NAME
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ' '))
}
