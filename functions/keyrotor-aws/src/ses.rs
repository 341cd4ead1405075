//! SES: sending the owner and admin notifications.

use aws_sdk_ses::types::{Body, Content, Destination, Message};
use aws_sdk_ses::Client;
use tracing::{info, instrument};

use crate::error::sdk_error;
use keyrotor_core::email::EmailAddress;
use keyrotor_core::error::{Error, Result};
pub use keyrotor_core::ports::Email;
use keyrotor_core::ports::MailerPort;

/// Sends mail through SES from one verified identity.
#[derive(Clone, Debug)]
pub struct Mailer {
    client: Client,
}

fn content(data: &str) -> Result<Content> {
    Content::builder()
        .data(data)
        .charset("UTF-8")
        .build()
        .map_err(|e| Error::Internal(format!("cannot build e-mail content: {e}")))
}

impl Mailer {
    pub fn new(client: Client) -> Self {
        Mailer { client }
    }

    /// The client from the SDK configuration.
    pub fn from_sdk(sdk: &aws_config::SdkConfig) -> Self {
        Mailer::new(Client::new(sdk))
    }
}

impl MailerPort for Mailer {
    /// Sends `email` from `from`; returns the SES message ID.
    #[instrument(skip(self, from, email), fields(subject = %email.subject))]
    async fn send(&self, from: &EmailAddress, email: &Email) -> Result<String> {
        let destination = Destination::builder()
            .set_to_addresses(Some(
                email.to.iter().map(|a| a.as_str().to_owned()).collect(),
            ))
            .build();
        let message = Message::builder()
            .subject(content(&email.subject)?)
            .body(
                Body::builder()
                    .text(content(&email.text)?)
                    .html(content(&email.html)?)
                    .build(),
            )
            .build();
        let out = self
            .client
            .send_email()
            .source(from.as_str())
            .destination(destination)
            .message(message)
            .send()
            .await
            .map_err(|e| sdk_error("ses:SendEmail", e))?;
        info!(
            message_id = out.message_id(),
            recipients = email.to.len(),
            "sent e-mail"
        );
        Ok(out.message_id().to_owned())
    }
}
