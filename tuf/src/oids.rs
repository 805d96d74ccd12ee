//! Object identifiers this crate recognises.

use der::asn1::ObjectIdentifier as Oid;

pub(crate) const EC_PUBLIC_KEY: Oid = Oid::new_unwrap("1.2.840.10045.2.1");
pub(crate) const SECP256R1: Oid = Oid::new_unwrap("1.2.840.10045.3.1.7");
pub(crate) const SECP384R1: Oid = Oid::new_unwrap("1.3.132.0.34");
pub(crate) const RSA_ENCRYPTION: Oid = Oid::new_unwrap("1.2.840.113549.1.1.1");
pub(crate) const ED25519: Oid = Oid::new_unwrap("1.3.101.112");

pub(crate) const ECDSA_WITH_SHA1: Oid = Oid::new_unwrap("1.2.840.10045.4.1");
pub(crate) const ECDSA_WITH_SHA256: Oid = Oid::new_unwrap("1.2.840.10045.4.3.2");
pub(crate) const ECDSA_WITH_SHA384: Oid = Oid::new_unwrap("1.2.840.10045.4.3.3");
pub(crate) const SHA1_WITH_RSA: Oid = Oid::new_unwrap("1.2.840.113549.1.1.5");
pub(crate) const SHA256_WITH_RSA: Oid = Oid::new_unwrap("1.2.840.113549.1.1.11");
pub(crate) const DSA_WITH_SHA1: Oid = Oid::new_unwrap("1.2.840.10040.4.3");

pub(crate) const COMMON_NAME: Oid = Oid::new_unwrap("2.5.4.3");
pub(crate) const KP_CODE_SIGNING: Oid = Oid::new_unwrap("1.3.6.1.5.5.7.3.3");
pub(crate) const KEY_USAGE: Oid = Oid::new_unwrap("2.5.29.15");
pub(crate) const EXT_KEY_USAGE: Oid = Oid::new_unwrap("2.5.29.37");
pub(crate) const BASIC_CONSTRAINTS: Oid = Oid::new_unwrap("2.5.29.19");
