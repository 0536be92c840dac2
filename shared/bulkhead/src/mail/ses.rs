//! The Lambda mail adapter: Amazon SES (API v2) `SendEmail`, from a verified sender identity
//! to the address a template makes of the recipient.

use super::{Mail, Mailer};
use crate::{Error, Result};
use async_trait::async_trait;
use aws_sdk_sesv2::types::{Body, Content, Destination, EmailContent, Message};

/// Sends through SES from `from`; the recipient's address is `to_template` with
/// `{customer}` replaced by [`Mail::to`].
pub struct SesMailer {
    client: aws_sdk_sesv2::Client,
    from: String,
    to_template: String,
}

impl SesMailer {
    pub fn new(client: aws_sdk_sesv2::Client, from: &str, to_template: &str) -> Result<Self> {
        if !from.contains('@') {
            return Err(Error::Config(format!("sender {from:?} is not an address")));
        }
        if !to_template.contains("{customer}") || !to_template.contains('@') {
            return Err(Error::Config(format!(
                "recipient template {to_template:?} must be an address with {{customer}}"
            )));
        }
        Ok(SesMailer {
            client,
            from: from.into(),
            to_template: to_template.into(),
        })
    }

    /// The Lambda adapter: the sender from `MAIL_FROM`, the recipient template from
    /// `MAIL_TO` (for example `{customer}@customers.example.com`).
    pub fn from_env() -> Result<Self> {
        let var = |name: &str| {
            std::env::var(name)
                .ok()
                .filter(|v| !v.is_empty())
                .ok_or_else(|| Error::Config(format!("{name} is not set")))
        };
        let config = crate::sdk::from_lambda_env()?;
        SesMailer::new(
            aws_sdk_sesv2::Client::new(&config),
            &var("MAIL_FROM")?,
            &var("MAIL_TO")?,
        )
    }

    /// The address a message goes to.
    pub fn address(&self, customer: &str) -> String {
        self.to_template.replace("{customer}", customer)
    }
}

fn content(text: &str) -> Result<Content> {
    Content::builder()
        .data(text)
        .charset("UTF-8")
        .build()
        .map_err(|e| Error::Mail(e.to_string()))
}

#[async_trait]
impl Mailer for SesMailer {
    async fn send(&self, mail: &Mail) -> Result<()> {
        let message = Message::builder()
            .subject(content(&mail.subject)?)
            .body(Body::builder().text(content(&mail.text)?).build())
            .build();
        self.client
            .send_email()
            .from_email_address(&self.from)
            .destination(
                Destination::builder()
                    .to_addresses(self.address(&mail.to))
                    .build(),
            )
            .content(EmailContent::builder().simple(message).build())
            .send()
            .await
            .map_err(|e| Error::Mail(format!("{} ({})", e.into_service_error(), mail.id)))?;
        Ok(())
    }
}
