//! This machine's fully qualified domain name, for the SMTP EHLO greeting (RFC 5321
//! §4.1.1.1 asks for the FQDN; a bare `vm` is a spam signal to some receivers).

/// The host name (`/proc/sys/kernel/hostname`, else `/etc/hostname`, else `$HOSTNAME`).
pub fn host_name() -> Option<String> {
    ["/proc/sys/kernel/hostname", "/etc/hostname"]
        .iter()
        .find_map(|p| std::fs::read_to_string(p).ok())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
}

/// This machine's fully qualified name: the host name when it holds a dot, else the first
/// dotted name `/etc/hosts` gives for it; `None` when only a bare name (`vm`) is found.
pub fn system_fqdn() -> Option<String> {
    let host = host_name()?;
    let hosts = std::fs::read_to_string("/etc/hosts").unwrap_or_default();
    fqdn_of(&host, &hosts)
}

/// The FQDN for `host` given the text of `/etc/hosts` (see [`system_fqdn`]).
fn fqdn_of(host: &str, hosts: &str) -> Option<String> {
    let dotted = |n: &str| n.contains('.') && !n.to_ascii_lowercase().ends_with(".localdomain");
    if dotted(host) {
        return Some(host.to_ascii_lowercase());
    }
    hosts
        .lines()
        .map(|l| l.split('#').next().unwrap_or(""))
        .find_map(|l| {
            let names: Vec<&str> = l.split_whitespace().skip(1).collect();
            if names.iter().any(|n| n.eq_ignore_ascii_case(host)) {
                names.into_iter().find(|n| dotted(n))
            } else {
                None
            }
        })
        .map(str::to_ascii_lowercase)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fqdn_comes_from_the_host_name_or_etc_hosts() {
        let hosts = "127.0.0.1 localhost\n127.0.1.1 vm.analyst.example.org vm # this machine\n";
        assert_eq!(
            fqdn_of("mx1.example.org", ""),
            Some("mx1.example.org".into())
        );
        assert_eq!(fqdn_of("vm", hosts), Some("vm.analyst.example.org".into()));
        assert_eq!(fqdn_of("vm", "127.0.0.1 localhost vm\n"), None);
        assert_eq!(fqdn_of("box.localdomain", ""), None);
    }
}
