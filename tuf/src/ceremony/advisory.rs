//! Published YubiKey security advisories that weaken a PIV key made on the
//! device, by the firmware its attestation states. A ceremony refuses such
//! a device unless its plan accepts the advisory by ID. Only advisories
//! that touch keys made and used in the PIV applet are listed.

use crate::KeyType;

/// Which keys an advisory weakens.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Weakens {
    /// Every key the device makes.
    EveryKey,
    /// Keys of this type only.
    Only(KeyType),
}

/// One advisory: the firmware versions it covers, from `first` up to but
/// not including `fixed`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Advisory {
    pub id: &'static str,
    pub summary: &'static str,
    first: [u8; 3],
    fixed: [u8; 3],
    pub weakens: Weakens,
}

/// Yubico's advisories that bear on PIV root keys.
pub const YUBIKEY_ADVISORIES: &[Advisory] = &[
    Advisory {
        id: "YSA-2017-01",
        summary: "ROCA: RSA keys generated on YubiKey 4 firmware 4.2.6 to 4.3.4 can be factored \
                  from their public key",
        first: [4, 2, 6],
        fixed: [4, 3, 5],
        weakens: Weakens::Only(KeyType::Rsa),
    },
    Advisory {
        id: "YSA-2019-02",
        summary: "YubiKey FIPS firmware 4.4.2 and 4.4.4 use reduced randomness after power-up",
        first: [4, 4, 2],
        fixed: [4, 4, 5],
        weakens: Weakens::EveryKey,
    },
    Advisory {
        id: "YSA-2024-03",
        summary: "EUCLEAK: a side channel in the ECDSA of YubiKey 5 firmware below 5.7.0 lets \
                  someone who holds the device for a while recover the key",
        first: [5, 0, 0],
        fixed: [5, 7, 0],
        weakens: Weakens::Only(KeyType::Ecdsa),
    },
];

/// The advisory with this ID, if the list has it.
pub fn yubikey_advisory(id: &str) -> Option<&'static Advisory> {
    YUBIKEY_ADVISORIES.iter().find(|a| a.id == id)
}

/// The advisories that weaken a `key` type key made on a YubiKey with
/// `firmware` (`major.minor.patch`, as its attestation states it).
pub fn yubikey_advisories_for(
    firmware: &str,
    key: KeyType,
) -> Result<Vec<&'static Advisory>, String> {
    let version = parse_firmware(firmware)?;
    Ok(YUBIKEY_ADVISORIES
        .iter()
        .filter(|a| a.first <= version && version < a.fixed)
        .filter(|a| match a.weakens {
            Weakens::EveryKey => true,
            Weakens::Only(kind) => kind == key,
        })
        .collect())
}

fn parse_firmware(text: &str) -> Result<[u8; 3], String> {
    let parts: Vec<u8> = text
        .split('.')
        .map(str::parse)
        .collect::<Result<_, _>>()
        .map_err(|_| format!("firmware {text:?} is not major.minor.patch"))?;
    <[u8; 3]>::try_from(parts).map_err(|_| format!("firmware {text:?} is not major.minor.patch"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(firmware: &str, key: KeyType) -> Vec<&'static str> {
        yubikey_advisories_for(firmware, key)
            .unwrap()
            .iter()
            .map(|a| a.id)
            .collect()
    }

    #[test]
    fn eucleak_covers_ecdsa_below_5_7_0_only() {
        assert_eq!(ids("5.4.3", KeyType::Ecdsa), ["YSA-2024-03"]);
        assert_eq!(ids("5.0.0", KeyType::Ecdsa), ["YSA-2024-03"]);
        assert_eq!(ids("5.6.255", KeyType::Ecdsa), ["YSA-2024-03"]);
        assert!(ids("5.7.0", KeyType::Ecdsa).is_empty());
        assert!(ids("5.7.1", KeyType::Ecdsa).is_empty());
        assert!(ids("5.4.3", KeyType::Rsa).is_empty());
    }

    #[test]
    fn older_advisories_by_key_type() {
        assert_eq!(ids("4.3.4", KeyType::Rsa), ["YSA-2017-01"]);
        assert!(ids("4.3.5", KeyType::Rsa).is_empty());
        assert!(ids("4.2.5", KeyType::Rsa).is_empty());
        assert!(ids("4.3.4", KeyType::Ecdsa).is_empty());
        assert_eq!(ids("4.4.4", KeyType::Ecdsa), ["YSA-2019-02"]);
        assert_eq!(ids("4.4.2", KeyType::Rsa), ["YSA-2019-02"]);
        assert!(ids("4.4.5", KeyType::Ecdsa).is_empty());
    }

    #[test]
    fn names_ids_and_refuses_odd_firmware() {
        assert_eq!(yubikey_advisory("YSA-2024-03").unwrap().fixed, [5, 7, 0]);
        assert!(yubikey_advisory("YSA-2099-01").is_none());
        for bad in ["5.7", "5.7.1.2", "five", "5.7.256", ""] {
            assert!(
                yubikey_advisories_for(bad, KeyType::Ecdsa).is_err(),
                "{bad}"
            );
        }
    }
}
