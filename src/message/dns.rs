//! The DNS records a sender publishes for this config: one DKIM TXT record per `[[dkim]]`
//! key, plus SPF and DMARC examples (`fortnight check --dns-records`).
//!
//! The DKIM records are exact (the public half of each configured key); SPF and DMARC are
//! starting points the operator adapts, since only they know which relays send for the
//! domain and where aggregate reports should go. See docs/standards.md "DKIM".

use anyhow::Result;

use super::address::SenderAddress;
use super::dkim::DkimSigner;
use crate::config::Config;

/// One TXT record to publish.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DnsRecord {
    /// The owner name, without the final dot.
    pub name: String,
    /// The TXT value, as one string (DNS splits it into 255-octet strings: [`Self::zone_line`]).
    pub value: String,
    /// What the record is for, and whether it is an example to adapt.
    pub note: String,
}

impl DnsRecord {
    /// The record as a zone-file line, its value split into strings of at most 255 octets
    /// (RFC 1035 §3.3.14; an RSA 2048 key's record is about 400).
    pub fn zone_line(&self) -> String {
        let chunks: Vec<String> = self
            .value
            .as_bytes()
            .chunks(255)
            .map(|c| format!("\"{}\"", String::from_utf8_lossy(c)))
            .collect();
        format!("{}. IN TXT ( {} )", self.name, chunks.join(" "))
    }
}

/// The records for `config`: each DKIM key (loading it), then SPF for the envelope domain
/// and DMARC for the From domain.
pub fn dns_records(config: &Config) -> Result<Vec<DnsRecord>> {
    let mut out = Vec::new();
    for d in &config.dkim {
        let signer = DkimSigner::load(&d.domain, &d.selector, &config.resolve(&d.private_key))?;
        out.push(DnsRecord {
            name: signer.dns_name(),
            value: signer.dns_record(),
            note: format!(
                "DKIM public key of `{}` ({})",
                d.private_key.display(),
                signer.algorithm()
            ),
        });
    }
    let from = SenderAddress::from_of(config)?;
    let from_domain = from.domain().to_ascii_lowercase();
    let envelope_domain = match SenderAddress::bounce_of(config)? {
        Some(b) => b.domain().to_ascii_lowercase(),
        None => from_domain.clone(),
    };
    let relay = config
        .smtp
        .as_ref()
        .map_or("YOUR-RELAY".to_string(), |s| s.host.clone());
    out.push(DnsRecord {
        name: envelope_domain,
        value: format!("v=spf1 a:{relay} -all"),
        note: "SPF example for the envelope (bounce) domain: list every host that sends for it \
               (a relay provider documents its own `include:`)"
            .to_string(),
    });
    out.push(DnsRecord {
        name: format!("_dmarc.{from_domain}"),
        value: format!("v=DMARC1; p=none; rua=mailto:dmarc-reports@{from_domain}; adkim=r; aspf=r"),
        note: "DMARC example for the From domain: start with p=none, read the reports, then \
               move to p=quarantine"
            .to_string(),
    });
    Ok(out)
}
