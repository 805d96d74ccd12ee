//! Public-area templates: the owner-hierarchy storage key every key is
//! wrapped under, the signing keys notary uses, and the attestation key.

use crate::Algorithm;
use tss_esapi::attributes::ObjectAttributesBuilder;
use tss_esapi::interface_types::algorithm::{
    HashingAlgorithm, PublicAlgorithm, RsaSchemeAlgorithm,
};
use tss_esapi::interface_types::ecc::EccCurve;
use tss_esapi::interface_types::key_bits::RsaKeyBits;
use tss_esapi::structures::{
    EccPoint, EccScheme, HashScheme, KeyDerivationFunctionScheme, Public, PublicBuilder,
    PublicEccParametersBuilder, PublicKeyRsa, PublicRsaParametersBuilder, RsaExponent, RsaScheme,
    SymmetricDefinitionObject,
};
use tss_esapi::Result;

/// Attributes both primaries share: bound to this TPM, generated inside it,
/// restricted, empty auth and so exempt from dictionary-attack counting.
fn restricted_primary() -> ObjectAttributesBuilder {
    ObjectAttributesBuilder::new()
        .with_fixed_tpm(true)
        .with_fixed_parent(true)
        .with_sensitive_data_origin(true)
        .with_user_with_auth(true)
        .with_restricted(true)
        .with_no_da(true)
}

/// The storage root key: ECC P-256, restricted decrypt, no DA (it has no
/// auth). Deterministic for a given owner seed, so it is recreated at each
/// connection instead of occupying an NV slot; a TPM clear changes it.
pub(super) fn storage_primary() -> Result<Public> {
    let attributes = restricted_primary().with_decrypt(true).build()?;
    PublicBuilder::new()
        .with_public_algorithm(PublicAlgorithm::Ecc)
        .with_name_hashing_algorithm(HashingAlgorithm::Sha256)
        .with_object_attributes(attributes)
        .with_ecc_parameters(
            PublicEccParametersBuilder::new_restricted_decryption_key(
                SymmetricDefinitionObject::AES_128_CFB,
                EccCurve::NistP256,
            )
            .build()?,
        )
        .with_ecc_unique_identifier(EccPoint::default())
        .build()
}

/// The attestation key: a restricted ECDSA P-256 signing primary in the
/// owner hierarchy (deterministic, like the storage key). A restricted key
/// only signs TPM-generated structures, so it cannot be made to vouch for
/// arbitrary data.
pub(super) fn attestation_primary() -> Result<Public> {
    let attributes = restricted_primary().with_sign_encrypt(true).build()?;
    PublicBuilder::new()
        .with_public_algorithm(PublicAlgorithm::Ecc)
        .with_name_hashing_algorithm(HashingAlgorithm::Sha256)
        .with_object_attributes(attributes)
        .with_ecc_parameters(
            PublicEccParametersBuilder::new()
                .with_ecc_scheme(EccScheme::EcDsa(HashScheme::new(HashingAlgorithm::Sha256)))
                .with_curve(EccCurve::NistP256)
                .with_is_signing_key(true)
                .with_restricted(true)
                .with_key_derivation_function_scheme(KeyDerivationFunctionScheme::Null)
                .with_symmetric(SymmetricDefinitionObject::Null)
                .build()?,
        )
        .with_ecc_unique_identifier(EccPoint::default())
        .build()
}

/// A notary signing key: unrestricted, sign only, bound to this TPM and to
/// the storage key, subject to dictionary-attack protection (its auth value
/// is the only thing guarding it). `None` for algorithms a TPM cannot do.
pub(super) fn signing_key(algorithm: Algorithm) -> Option<Result<Public>> {
    let attributes = match ObjectAttributesBuilder::new()
        .with_fixed_tpm(true)
        .with_fixed_parent(true)
        .with_sensitive_data_origin(true)
        .with_user_with_auth(true)
        .with_sign_encrypt(true)
        .build()
    {
        Ok(a) => a,
        Err(e) => return Some(Err(e)),
    };
    let sha256 = HashScheme::new(HashingAlgorithm::Sha256);
    let builder = PublicBuilder::new()
        .with_name_hashing_algorithm(HashingAlgorithm::Sha256)
        .with_object_attributes(attributes);
    let ecc = |curve| {
        builder
            .clone()
            .with_public_algorithm(PublicAlgorithm::Ecc)
            .with_ecc_parameters(
                PublicEccParametersBuilder::new_unrestricted_signing_key(
                    EccScheme::EcDsa(sha256),
                    curve,
                )
                .build()?,
            )
            .with_ecc_unique_identifier(EccPoint::default())
            .build()
    };
    let rsa = |bits| {
        builder
            .clone()
            .with_public_algorithm(PublicAlgorithm::Rsa)
            .with_rsa_parameters(
                PublicRsaParametersBuilder::new_unrestricted_signing_key(
                    RsaScheme::create(RsaSchemeAlgorithm::RsaPss, Some(HashingAlgorithm::Sha256))?,
                    bits,
                    RsaExponent::default(),
                )
                .build()?,
            )
            .with_rsa_unique_identifier(PublicKeyRsa::default())
            .build()
    };
    match algorithm {
        Algorithm::EcdsaP256 => Some(ecc(EccCurve::NistP256)),
        Algorithm::EcdsaP384 => Some(ecc(EccCurve::NistP384)),
        Algorithm::Rsa2048 => Some(rsa(RsaKeyBits::Rsa2048)),
        Algorithm::Rsa3072 => Some(rsa(RsaKeyBits::Rsa3072)),
        Algorithm::Rsa4096 | Algorithm::Ed25519 => None,
    }
}

/// What `generate` accepts: the TPM 2.0 profile notary can use.
pub(super) const ALGORITHMS: [Algorithm; 4] = [
    Algorithm::EcdsaP256,
    Algorithm::EcdsaP384,
    Algorithm::Rsa2048,
    Algorithm::Rsa3072,
];
