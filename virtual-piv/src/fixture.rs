//! One call for a test: shared pcscd, a leased reader port, a card in it.

use crate::card::VirtualYubiKey;
use crate::pcscd::{PortLease, TestPcscd};
use crate::profile::Profile;
use std::ops::Deref;
use std::time::Duration;

/// How long pcscd may take to notice a newly inserted card (it polls).
const DETECTION_TIMEOUT: Duration = Duration::from_secs(20);

/// A virtual YubiKey in a reader port of the shared test pcscd, already
/// seen by pcscd. Dropping it unplugs the card and frees the port.
pub struct TestCard {
    // Field order is drop order: unplug the card, then free its port.
    card: VirtualYubiKey,
    _lease: PortLease,
}

impl TestCard {
    pub fn start(profile: Profile) -> Result<TestCard, String> {
        let pcscd = TestPcscd::shared()?;
        let lease = pcscd.lease_port().map_err(|e| e.to_string())?;
        let card = VirtualYubiKey::insert_new(lease.port(), profile);
        if !card.wait_until_powered(DETECTION_TIMEOUT) {
            return Err(format!(
                "pcscd did not detect the virtual card on port {} within {DETECTION_TIMEOUT:?}",
                lease.port()
            ));
        }
        Ok(TestCard {
            card,
            _lease: lease,
        })
    }

    /// Re-inserts a removed card and waits until pcscd has seen it.
    pub fn reinsert(&self) -> Result<(), String> {
        self.card.insert();
        if self.card.wait_until_powered(DETECTION_TIMEOUT) {
            Ok(())
        } else {
            Err("pcscd did not detect the re-inserted card".into())
        }
    }
}

impl Deref for TestCard {
    type Target = VirtualYubiKey;

    fn deref(&self) -> &VirtualYubiKey {
        &self.card
    }
}
