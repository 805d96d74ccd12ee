//! The air gap, checked rather than assumed: no network interface but
//! loopback may be up, and no default route may exist, in this process's
//! network namespace. Interfaces come from getifaddrs (netlink), routes
//! from /proc/self/net; /sys/class/net is not used because it shows the
//! namespace sysfs was mounted in, not ours. Anything unreadable counts as
//! a failed check.

use anyhow::{bail, Context, Result};
use nix::net::if_::InterfaceFlags;
use std::collections::BTreeSet;

/// Route flags (linux/route.h): the route is usable / a reject route.
const RTF_UP: u32 = 0x0001;
const RTF_REJECT: u32 = 0x0200;

/// What the check saw.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Network {
    pub interfaces_up: Vec<String>,
    pub default_routes: Vec<String>,
}

impl Network {
    pub(super) fn is_offline(&self) -> bool {
        self.interfaces_up.is_empty() && self.default_routes.is_empty()
    }

    /// One line for the screen and the transcript.
    pub(super) fn describe(&self) -> String {
        if self.is_offline() {
            return "no network interface up except loopback, no default route".into();
        }
        let mut parts = Vec::new();
        if !self.interfaces_up.is_empty() {
            parts.push(format!("interfaces up: {}", self.interfaces_up.join(", ")));
        }
        if !self.default_routes.is_empty() {
            parts.push(format!(
                "default route via {}",
                self.default_routes.join(", ")
            ));
        }
        parts.join("; ")
    }
}

/// Refuses to go on while this machine is online unless `allow`; returns
/// what the transcript records about it. `step` names the refused step.
pub(super) fn check(allow: bool, step: &str) -> Result<String> {
    let seen = match inspect() {
        Ok(network) if network.is_offline() => return Ok(network.describe()),
        Ok(network) => network.describe(),
        Err(e) => format!("the network could not be inspected ({e:#})"),
    };
    if !allow {
        bail!(
            "refusing to {step}: this machine is not offline ({seen}). Disconnect every network              (unplug cables, switch off Wi-Fi and Bluetooth) and try again, or pass              --allow-network, which the transcript records"
        );
    }
    eprintln!("warning: --allow-network: going on although {seen}");
    Ok(format!("NETWORK ALLOWED with --allow-network: {seen}"))
}

/// The network as this process sees it.
pub(super) fn inspect() -> Result<Network> {
    let mut up = BTreeSet::new();
    for ifaddr in nix::ifaddrs::getifaddrs().context("listing network interfaces")? {
        if ifaddr.flags.contains(InterfaceFlags::IFF_UP)
            && !ifaddr.flags.contains(InterfaceFlags::IFF_LOOPBACK)
        {
            up.insert(ifaddr.interface_name);
        }
    }
    let v4 =
        std::fs::read_to_string("/proc/self/net/route").context("reading /proc/self/net/route")?;
    let mut routes: BTreeSet<String> = ipv4_defaults(&v4).into_iter().collect();
    // A kernel without IPv6 has no such file, and no IPv6 routes.
    match std::fs::read_to_string("/proc/self/net/ipv6_route") {
        Ok(v6) => routes.extend(ipv6_defaults(&v6)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e).context("reading /proc/self/net/ipv6_route"),
    }
    Ok(Network {
        interfaces_up: up.into_iter().collect(),
        default_routes: routes.into_iter().collect(),
    })
}

fn usable(flags_hex: &str) -> bool {
    u32::from_str_radix(flags_hex, 16).is_ok_and(|f| f & RTF_UP != 0 && f & RTF_REJECT == 0)
}

/// Interfaces of IPv4 routes to 0.0.0.0/0 (`Iface Destination Gateway
/// Flags RefCnt Use Metric Mask …`, hex fields).
fn ipv4_defaults(table: &str) -> Vec<String> {
    table
        .lines()
        .skip(1)
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            (f.len() >= 8 && f[1] == "00000000" && f[7] == "00000000" && usable(f[3]))
                .then(|| f[0].to_string())
        })
        .collect()
}

/// Interfaces of IPv6 routes to ::/0 (`dest plen src plen next-hop metric
/// refcnt use flags iface`); the kernel's unreachable default on `lo` is a
/// reject route.
fn ipv6_defaults(table: &str) -> Vec<String> {
    table
        .lines()
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            (f.len() >= 10
                && f[0].bytes().all(|b| b == b'0')
                && f[1] == "00"
                && usable(f[8])
                && f[9] != "lo")
                .then(|| f[9].to_string())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_default_routes_from_proc() {
        let v4 =
            "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n\
                  eth0\t00000000\t010200C0\t0003\t0\t0\t0\t00000000\t0\t0\t0\n\
                  eth0\t000200C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n\
                  wg0\t00000000\t00000000\t0200\t0\t0\t0\t00000000\t0\t0\t0\n";
        assert_eq!(ipv4_defaults(v4), ["eth0"]);
        let v6 = "00000000000000000000000000000000 00 00000000000000000000000000000000 00 \
                  fd000000000000000000000000000001 00000400 00000002 00000000 00000003     eth0\n\
                  fe800000000000000000000000000000 40 00000000000000000000000000000000 00 \
                  00000000000000000000000000000000 00000100 00000002 00000000 00000001     eth0\n\
                  00000000000000000000000000000000 00 00000000000000000000000000000000 00 \
                  00000000000000000000000000000000 ffffffff 00000001 00000000 00200200       lo\n";
        assert_eq!(ipv6_defaults(v6), ["eth0"]);
        assert!(ipv6_defaults(v6.lines().nth(2).unwrap()).is_empty());
    }

    #[test]
    fn describes_what_it_saw() {
        let offline = Network {
            interfaces_up: vec![],
            default_routes: vec![],
        };
        assert!(offline.is_offline());
        let online = Network {
            interfaces_up: vec!["eth0".into(), "wlan0".into()],
            default_routes: vec!["eth0".into()],
        };
        assert!(!online.is_offline());
        assert_eq!(
            online.describe(),
            "interfaces up: eth0, wlan0; default route via eth0"
        );
    }
}
