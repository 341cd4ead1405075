//! E-mail addresses as keyrotor accepts them: from configuration and from user tags, which
//! anyone allowed to tag users can write, so they are checked before any mail is sent.

use std::fmt;

/// A single mailbox address (`local@domain`) that SES accepts, with the domain lower-cased:
/// ASCII only (SES takes no internationalised addresses), the local part a dot-atom of
/// RFC 5322 characters, no display names, no lists, no quoting. An owner whose tag SES
/// would refuse gets the admin told instead of a failed send.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct EmailAddress {
    address: String,
    at: usize,
}

/// Why a string is not an acceptable address.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a single e-mail address")]
pub struct InvalidEmail(pub String);

impl EmailAddress {
    pub fn parse(raw: &str) -> Result<Self, InvalidEmail> {
        let value = raw.trim();
        let invalid = || InvalidEmail(value.chars().take(100).collect());
        if value.len() > 254 || value.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(invalid());
        }
        if value.chars().any(|c| "<>,;:\"()[]\\".contains(c)) {
            return Err(invalid());
        }
        let (local, domain) = value.split_once('@').ok_or_else(invalid)?;
        let domain_ok = !domain.is_empty()
            && domain.contains('.')
            && !domain.starts_with(['.', '-'])
            && !domain.ends_with(['.', '-'])
            && !domain.contains("..")
            && domain
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-');
        let local_ok = !local.is_empty()
            && local.len() <= 64
            && !local.starts_with('.')
            && !local.ends_with('.')
            && !local.contains("..")
            && local
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || ".!#$%&'*+/=?^_`{|}~-".contains(c));
        let labels_ok = domain
            .split('.')
            .all(|l| !l.is_empty() && l.len() <= 63 && !l.starts_with('-') && !l.ends_with('-'));
        if !local_ok || !domain_ok || !labels_ok {
            return Err(invalid());
        }
        Ok(EmailAddress {
            address: format!("{local}@{}", domain.to_ascii_lowercase()),
            at: local.len(),
        })
    }

    pub fn as_str(&self) -> &str {
        &self.address
    }

    /// The lower-cased domain part.
    pub fn domain(&self) -> &str {
        &self.address[self.at + 1..]
    }
}

impl fmt::Display for EmailAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.address)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_addresses_parse_and_domains_are_lower_cased() {
        let a = EmailAddress::parse(" Alice.Smith+keys@Example.COM ").expect("valid");
        assert_eq!(a.as_str(), "Alice.Smith+keys@example.com");
        assert_eq!(a.domain(), "example.com");
    }

    #[test]
    fn lists_display_names_and_header_injection_are_rejected() {
        for bad in [
            "",
            "alice",
            "alice@",
            "@example.com",
            "a@b@example.com",
            "alice@example",
            "alice@example..com",
            "alice@example.com,eve@evil.com",
            "Alice <alice@example.com>",
            "alice@example.com\r\nBcc: eve@evil.com",
            "alice@exa mple.com",
            "jürgen@example.com",
            "alice@exämple.com",
            ".alice@example.com",
            "alice.@example.com",
            "al..ice@example.com",
            "alice@-example.com",
            "alice@example.-com",
        ] {
            assert!(
                EmailAddress::parse(bad).is_err(),
                "{bad:?} must be rejected"
            );
        }
    }
}
