//! Secret values as a type. A new access key's secret lives in a [`SecretAccessKey`]: it
//! never prints (Debug shows a placeholder, there is no Display), it is zeroed when dropped,
//! and it is turned into text in exactly one place, [`StoredCredential::to_secret_string`],
//! which produces the value written to Secrets Manager.

use std::fmt;

use chrono::{DateTime, SecondsFormat, Utc};
use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;
use zeroize::Zeroizing;

/// The secret half of an access key.
pub struct SecretAccessKey(SecretString);

impl SecretAccessKey {
    pub fn new(value: String) -> Self {
        SecretAccessKey(SecretString::from(value))
    }

    /// The raw value, for the two consumers that need it: the STS check that the key works,
    /// and [`StoredCredential::to_secret_string`].
    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }
}

impl fmt::Debug for SecretAccessKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretAccessKey([REDACTED])")
    }
}

/// A freshly created access key, as CreateAccessKey returned it.
#[derive(Debug)]
pub struct NewAccessKey {
    pub user: String,
    pub key_id: String,
    pub secret: SecretAccessKey,
}

/// The JSON document stored in the user's secret.
pub struct StoredCredential<'a> {
    pub key: &'a NewAccessKey,
    pub rotated_at: DateTime<Utc>,
}

/// The value a retirement writes into a secret that holds none yet: no secret, only which
/// key was retired. Written by create-key under keyrotor's KMS key, which nobody else may
/// encrypt with, it is what makes the secret's records keyrotor's (a squatter's secret has
/// no version under that key). The same every time, so a retry is a no-op.
pub fn retirement_record(key_id: &str, user: &str) -> String {
    serde_json::json!({"AccessKeyId": key_id, "UserName": user, "Retired": true}).to_string()
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct Document<'a> {
    access_key_id: &'a str,
    secret_access_key: &'a str,
    user_name: &'a str,
    rotated_at: String,
}

impl StoredCredential<'_> {
    /// The secret's JSON (`AccessKeyId`, `SecretAccessKey`, `UserName`, `RotatedAt`). This is
    /// the only place a secret access key is serialized.
    pub fn to_secret_string(&self) -> Zeroizing<String> {
        let doc = Document {
            access_key_id: &self.key.key_id,
            secret_access_key: self.key.secret.expose(),
            user_name: &self.key.user,
            rotated_at: self.rotated_at.to_rfc3339_opts(SecondsFormat::Secs, true),
        };
        // Serializing a struct of strings cannot fail; an empty document would be refused by
        // the caller's check rather than stored.
        Zeroizing::new(serde_json::to_string(&doc).unwrap_or_default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> NewAccessKey {
        NewAccessKey {
            user: "alice".into(),
            key_id: "AKIAEXAMPLE000000001".into(),
            secret: SecretAccessKey::new("wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY".into()),
        }
    }

    #[test]
    fn debug_output_never_shows_the_secret() {
        let k = key();
        let shown = format!("{k:?} {:?}", k.secret);
        assert!(!shown.contains("wJalrXUtnFEMI"), "{shown}");
        assert!(shown.contains("AKIAEXAMPLE000000001"));
    }

    #[test]
    fn stored_document_has_the_four_fields() {
        let k = key();
        let at = DateTime::parse_from_rfc3339("2026-11-25T10:00:00Z")
            .expect("valid")
            .with_timezone(&Utc);
        let json = StoredCredential {
            key: &k,
            rotated_at: at,
        }
        .to_secret_string();
        let v: serde_json::Value = serde_json::from_str(&json).expect("json");
        assert_eq!(v["AccessKeyId"], "AKIAEXAMPLE000000001");
        assert_eq!(
            v["SecretAccessKey"],
            "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
        );
        assert_eq!(v["UserName"], "alice");
        assert_eq!(v["RotatedAt"], "2026-11-25T10:00:00Z");
    }
}
