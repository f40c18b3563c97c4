//! The AWS mailer: Amazon SES (v2 API) from a verified sender (`MAIL_FROM`).

use async_trait::async_trait;
use aws_sdk_sesv2::types::{Body, Content, Destination, EmailContent, Message};
use aws_sdk_sesv2::Client;

use crate::ports::mail::{Mail, MailError, Mailer};

#[derive(Clone)]
pub struct SesMailer {
    client: Client,
    from: String,
}

impl SesMailer {
    pub fn new(client: Client, from: impl Into<String>) -> Self {
        Self { client, from: from.into() }
    }
}

#[async_trait]
impl Mailer for SesMailer {
    async fn send(&self, mail: &Mail) -> Result<(), MailError> {
        let text =
            |data: &str| Content::builder().data(data).charset("UTF-8").build().map_err(|e| MailError(e.to_string()));
        let message = Message::builder()
            .subject(text(&mail.subject)?)
            .body(Body::builder().text(text(&mail.text)?).build())
            .build();
        self.client
            .send_email()
            .from_email_address(&self.from)
            .destination(Destination::builder().to_addresses(&mail.to).build())
            .content(EmailContent::builder().simple(message).build())
            .send()
            .await
            .map(|_| ())
            .map_err(|e| MailError(format!("{}", aws_sdk_sesv2::error::DisplayErrorContext(e))))
    }
}
