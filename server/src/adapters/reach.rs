//! Which machines a collective may make Potluck talk to. A collective's backup repository, a
//! webhook or a mail relay is named by a hostile party's choice: never the Potluck machine itself
//! (loopback, the unspecified address), a link-local address (a cloud's instance metadata, with
//! its credentials) or a multicast one, unless the federation's configuration names the host.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

/// Resolves `host:port` and checks every address it gives; answers them, so that the caller
/// connects to exactly what was checked. `allow` lists the host names the federation allows
/// anywhere; `what` names the thing in the error ("a webhook"), `setting` the configuration key.
pub async fn check(
    host: &str,
    port: u16,
    allow: &[String],
    what: &str,
    setting: &str,
) -> Result<Vec<SocketAddr>, String> {
    let resolved: Vec<SocketAddr> =
        tokio::time::timeout(Duration::from_secs(10), tokio::net::lookup_host((host, port)))
            .await
            .map_err(|_| format!("{host}: no answer from the resolver in 10 s"))?
            .map_err(|e| format!("{host}: {e}"))?
            .collect();
    if allowed(host, allow) {
        return Ok(resolved);
    }
    if let Some(addr) = resolved.iter().find(|a| reserved(a.ip())) {
        return Err(format!(
            "{host} is {}, on the Potluck machine or link-local: {what} may not be there (the federation's configuration can allow the host: {setting})",
            addr.ip()
        ));
    }
    if resolved.is_empty() {
        return Err(format!("{host}: the name has no address"));
    }
    Ok(resolved)
}

/// Whether the federation's configuration names the host.
pub fn allowed(host: &str, allow: &[String]) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    allow.iter().any(|h| h.eq_ignore_ascii_case(host))
}

/// Loopback, unspecified, link-local and multicast addresses, IPv4-mapped ones too.
pub fn reserved(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            v4.is_loopback() || v4.is_unspecified() || v4.is_link_local() || v4.is_multicast() || v4.is_broadcast()
        }
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => reserved(IpAddr::V4(v4)),
            None => {
                v6.is_loopback() || v6.is_unspecified() || v6.is_multicast() || (v6.segments()[0] & 0xffc0) == 0xfe80
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_potluck_machine_and_link_local_addresses_are_reserved_in_every_spelling() {
        for ip in [
            "127.0.0.1",
            "127.8.9.10",
            "0.0.0.0",
            "169.254.169.254",
            "224.0.0.1",
            "255.255.255.255",
            "::1",
            "::",
            "fe80::1",
            "ff02::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
        ] {
            assert!(reserved(ip.parse().unwrap()), "{ip} is reserved");
        }
        for ip in ["10.0.0.5", "192.168.1.20", "203.0.113.7", "2001:db8::1", "::ffff:203.0.113.7"] {
            assert!(!reserved(ip.parse().unwrap()), "{ip} is another machine's");
        }
    }

    #[tokio::test]
    async fn a_name_for_the_potluck_machine_is_refused_unless_allowed() {
        let e = check("localhost", 80, &[], "a webhook", "notify_hosts_allow").await.unwrap_err();
        assert!(e.contains("may not be there") && e.contains("notify_hosts_allow"), "{e}");
        let ok = check("localhost", 80, &["LOCALHOST".into()], "a webhook", "notify_hosts_allow").await.unwrap();
        assert!(ok.iter().all(|a| a.port() == 80 && a.ip().is_loopback()), "{ok:?}");
        assert!(allowed("[::1]", &["::1".into()]));
    }
}
