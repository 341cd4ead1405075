//! KMS: the sealed handoff of a new key from `create-key` to `deliver-key`
//! ([`keyrotor_core::ports::HandoffPort`]).

use aws_sdk_kms::primitives::Blob;
use base64::Engine;
use tracing::instrument;

use crate::error::sdk_error;
use keyrotor_core::error::{Error, Result};
use keyrotor_core::ports::HandoffPort;
use keyrotor_core::secret::{NewAccessKey, SecretAccessKey};

/// The encryption context's keys: a handoff opens only for the user and key it was sealed
/// for, and the key policy may require both (`kms:EncryptionContextKeys`).
pub const CONTEXT_USER: &str = "keyrotor:user";
pub const CONTEXT_KEY_ID: &str = "keyrotor:accessKeyId";

/// Encrypts and decrypts handoffs under keyrotor's delivery key.
#[derive(Clone, Debug)]
pub struct Handoffs {
    client: aws_sdk_kms::Client,
    key_id: String,
}

impl Handoffs {
    pub fn from_sdk(sdk: &aws_config::SdkConfig, key_id: &str) -> Self {
        Handoffs {
            client: aws_sdk_kms::Client::new(sdk),
            key_id: key_id.to_owned(),
        }
    }
}

impl HandoffPort for Handoffs {
    #[instrument(skip(self, key), fields(key_id = %key.key_id))]
    async fn seal(&self, key: &NewAccessKey) -> Result<String> {
        let out = self
            .client
            .encrypt()
            .key_id(&self.key_id)
            .plaintext(Blob::new(key.secret.expose().as_bytes()))
            .encryption_context(CONTEXT_USER, &key.user)
            .encryption_context(CONTEXT_KEY_ID, &key.key_id)
            .send()
            .await
            .map_err(|e| sdk_error("kms:Encrypt", e))?;
        let blob = out
            .ciphertext_blob()
            .ok_or_else(|| Error::Internal("kms:Encrypt returned no ciphertext".into()))?;
        Ok(base64::engine::general_purpose::STANDARD.encode(blob.as_ref()))
    }

    #[instrument(skip(self, sealed))]
    async fn open(&self, user: &str, key_id: &str, sealed: &str) -> Result<NewAccessKey> {
        let blob = base64::engine::general_purpose::STANDARD
            .decode(sealed)
            .map_err(|_| Error::InvalidInput("the handoff is not base64".into()))?;
        let out = self
            .client
            .decrypt()
            .key_id(&self.key_id)
            .ciphertext_blob(Blob::new(blob))
            .encryption_context(CONTEXT_USER, user)
            .encryption_context(CONTEXT_KEY_ID, key_id)
            .send()
            .await
            .map_err(|e| sdk_error("kms:Decrypt", e))?;
        let plain = out
            .plaintext()
            .ok_or_else(|| Error::Internal("kms:Decrypt returned no plaintext".into()))?;
        let secret = String::from_utf8(plain.as_ref().to_vec())
            .map_err(|_| Error::InvalidInput("the handoff does not hold a key".into()))?;
        Ok(NewAccessKey {
            user: user.to_owned(),
            key_id: key_id.to_owned(),
            secret: SecretAccessKey::new(secret),
        })
    }
}
