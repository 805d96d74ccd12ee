//! Signing requests counted by operation, result and algorithm, for one
//! backend: a fixed array of atomics, so counting takes no lock.

use keyd_backends::Algorithm;
use std::sync::atomic::{AtomicU64, Ordering};
use tonic::Code;

/// The operations the signing core serves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SignOperation {
    Sign,
    SignRaw,
}

impl SignOperation {
    const ALL: [SignOperation; 2] = [SignOperation::Sign, SignOperation::SignRaw];

    pub(crate) fn label(self) -> &'static str {
        match self {
            SignOperation::Sign => "sign",
            SignOperation::SignRaw => "sign_raw",
        }
    }
}

/// gRPC status codes, in their numbering, as label values.
const RESULTS: [&str; 17] = [
    "ok",
    "cancelled",
    "unknown",
    "invalid_argument",
    "deadline_exceeded",
    "not_found",
    "already_exists",
    "permission_denied",
    "resource_exhausted",
    "failed_precondition",
    "aborted",
    "out_of_range",
    "unimplemented",
    "internal",
    "unavailable",
    "data_loss",
    "unauthenticated",
];

/// Algorithms in `Algorithm::ALL`'s order, then "unknown" (a request that
/// failed before its key was found).
const ALGORITHMS: usize = Algorithm::ALL.len() + 1;

pub(crate) struct RequestCounts {
    counts: [[[AtomicU64; ALGORITHMS]; RESULTS.len()]; SignOperation::ALL.len()],
}

/// One non-zero count, with its labels.
pub(crate) struct Count {
    pub(crate) operation: &'static str,
    pub(crate) result: &'static str,
    pub(crate) algorithm: &'static str,
    pub(crate) value: u64,
}

impl RequestCounts {
    pub(crate) const fn new() -> RequestCounts {
        RequestCounts {
            counts: [const { [const { [const { AtomicU64::new(0) }; ALGORITHMS] }; RESULTS.len()] };
                SignOperation::ALL.len()],
        }
    }

    pub(crate) fn count(
        &self,
        operation: SignOperation,
        result: Code,
        algorithm: Option<Algorithm>,
    ) {
        let op = operation as usize;
        let result = usize::try_from(result as i32)
            .ok()
            .filter(|&r| r < RESULTS.len())
            .unwrap_or(Code::Unknown as usize);
        let alg = algorithm
            .and_then(|a| Algorithm::ALL.iter().position(|&x| x == a))
            .unwrap_or(Algorithm::ALL.len());
        self.counts[op][result][alg].fetch_add(1, Ordering::Relaxed);
    }

    /// The counts that are not zero.
    pub(crate) fn non_zero(&self) -> Vec<Count> {
        let mut out = Vec::new();
        for (operation, by_result) in SignOperation::ALL.iter().zip(&self.counts) {
            for (result, by_alg) in RESULTS.iter().zip(by_result) {
                for (alg, counter) in by_alg.iter().enumerate() {
                    let value = counter.load(Ordering::Relaxed);
                    if value > 0 {
                        out.push(Count {
                            operation: operation.label(),
                            result,
                            algorithm: Algorithm::ALL
                                .get(alg)
                                .map_or("unknown", |a| algorithm_label(*a)),
                            value,
                        });
                    }
                }
            }
        }
        out
    }
}

fn algorithm_label(algorithm: Algorithm) -> &'static str {
    match algorithm {
        Algorithm::EcdsaP256 => "ecdsa_p256",
        Algorithm::EcdsaP384 => "ecdsa_p384",
        Algorithm::Ed25519 => "ed25519",
        Algorithm::Rsa2048 => "rsa2048",
        Algorithm::Rsa3072 => "rsa3072",
        Algorithm::Rsa4096 => "rsa4096",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_are_kept_apart_by_their_labels() {
        let c = RequestCounts::new();
        c.count(SignOperation::Sign, Code::Ok, Some(Algorithm::EcdsaP256));
        c.count(SignOperation::Sign, Code::Ok, Some(Algorithm::EcdsaP256));
        c.count(SignOperation::SignRaw, Code::PermissionDenied, None);
        let got: Vec<_> = c
            .non_zero()
            .into_iter()
            .map(|c| (c.operation, c.result, c.algorithm, c.value))
            .collect();
        assert_eq!(
            got,
            [
                ("sign", "ok", "ecdsa_p256", 2),
                ("sign_raw", "permission_denied", "unknown", 1)
            ]
        );
    }
}
