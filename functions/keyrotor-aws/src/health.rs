//! AWS Health: whether a reported exposure is AWS's own report (issue 26, M9). The event a
//! rule delivers proves nothing by its shape; AWS Health's record of the event, in the
//! account the key belongs to, does.

use aws_sdk_health::types::EntityFilter;
use aws_sdk_health::Client;
use tracing::{instrument, warn};

use crate::error::sdk_error;
use crate::member::partition_of;
use keyrotor_core::error::{AwsErrorKind, Error, Result};
use keyrotor_core::exposure::{HealthAnswer, HealthEvent, NO_HEALTH_PLAN};
use keyrotor_core::ports::HealthPort;

/// Pages of affected entities read at most (an exposure event names one key).
const MAX_PAGES: usize = 5;

#[derive(Clone, Debug)]
pub struct Health {
    client: Client,
}

impl Health {
    pub fn new(client: Client) -> Self {
        Health { client }
    }

    /// The client from the SDK configuration, in the one region of each partition that
    /// serves the Health API (`health.us-east-1.amazonaws.com` for the `aws` partition),
    /// whatever region keyrotor runs in. An endpoint set in the configuration
    /// (`AWS_ENDPOINT_URL_HEALTH`, `AWS_ENDPOINT_URL`) still applies.
    pub fn from_sdk(sdk: &aws_config::SdkConfig) -> Self {
        let region = sdk.region().map(|r| r.as_ref()).unwrap_or("us-east-1");
        let health_region = match partition_of(region) {
            "aws-cn" => "cn-northwest-1",
            "aws-us-gov" => "us-gov-west-1",
            _ => "us-east-1",
        };
        let config = aws_sdk_health::config::Builder::from(sdk)
            .region(aws_sdk_health::config::Region::new(health_region))
            .build();
        Health::new(Client::from_conf(config))
    }

    /// Why the account cannot ask, when asking failed for that reason: no support plan
    /// with the Health API, or a role (or SCP) that may not call it. Neither is retried.
    fn cannot_ask(err: &Error) -> Option<String> {
        let Error::Aws { code, kind, .. } = err else {
            return None;
        };
        if code == "SubscriptionRequiredException" {
            return Some(NO_HEALTH_PLAN.to_owned());
        }
        (*kind == AwsErrorKind::AccessDenied)
            .then(|| format!("keyrotor may not call the AWS Health API here ({code})"))
    }

    async fn ask(&self, event_arn: &str) -> Result<HealthAnswer> {
        let details = self
            .client
            .describe_event_details()
            .event_arns(event_arn)
            .send()
            .await
            .map_err(|e| sdk_error("health:DescribeEventDetails", e))?;
        let Some(found) = details.successful_set().first() else {
            return Ok(HealthAnswer::Unknown);
        };
        let event = found.event();
        Ok(HealthAnswer::Event(HealthEvent {
            event_type_code: event
                .and_then(|e| e.event_type_code())
                .unwrap_or_default()
                .to_owned(),
            start_time: event.and_then(|e| e.start_time()).and_then(crate::to_utc),
            exposed_url: found
                .event_metadata()
                .and_then(|m| m.get("exposedUrl"))
                .cloned(),
            entities: self.entities(event_arn).await?,
        }))
    }

    /// The values of the event's affected entities (at most [`MAX_PAGES`] pages).
    async fn entities(&self, event_arn: &str) -> Result<Vec<String>> {
        let filter = EntityFilter::builder()
            .event_arns(event_arn)
            .build()
            .map_err(|e| Error::InvalidInput(format!("an AWS Health entity filter: {e}")))?;
        let mut values = Vec::new();
        let mut next = None;
        for _ in 0..MAX_PAGES {
            let page = self
                .client
                .describe_affected_entities()
                .filter(filter.clone())
                .set_next_token(next)
                .send()
                .await
                .map_err(|e| sdk_error("health:DescribeAffectedEntities", e))?;
            values.extend(
                page.entities()
                    .iter()
                    .filter_map(|e| e.entity_value().map(str::to_owned)),
            );
            next = page.next_token().map(str::to_owned);
            if next.is_none() {
                break;
            }
        }
        Ok(values)
    }
}

impl HealthPort for Health {
    /// DescribeEventDetails, then DescribeAffectedEntities, for one event.
    #[instrument(skip(self))]
    async fn event(&self, event_arn: &str) -> Result<HealthAnswer> {
        match self.ask(event_arn).await {
            Err(err) => match Self::cannot_ask(&err) {
                Some(why) => {
                    warn!(error = %err, "AWS Health cannot be asked");
                    Ok(HealthAnswer::NoAccess(why))
                }
                None => Err(err),
            },
            answer => answer,
        }
    }
}
