//! EventBridge: keyrotor's events on the account's default bus.

use aws_sdk_eventbridge::types::PutEventsRequestEntry;
use aws_sdk_eventbridge::Client;
use tracing::{info, instrument};

use crate::error::sdk_error;
use keyrotor_core::error::{Error, Result};
use keyrotor_core::events::{Event, SOURCE};
use keyrotor_core::ports::EventsPort;

/// PutEvents takes at most this many entries per call.
const MAX_ENTRIES: usize = 10;

/// Puts events on the default event bus (no bus named: the role may use that one only).
#[derive(Clone, Debug)]
pub struct EventBus {
    client: Client,
}

impl EventBus {
    pub fn new(client: Client) -> Self {
        EventBus { client }
    }

    /// The client from the SDK configuration.
    pub fn from_sdk(sdk: &aws_config::SdkConfig) -> Self {
        EventBus::new(Client::new(sdk))
    }
}

impl EventsPort for EventBus {
    #[instrument(skip_all, fields(events = events.len()))]
    async fn publish(&self, events: &[Event]) -> Result<()> {
        for chunk in events.chunks(MAX_ENTRIES) {
            let entries: Vec<PutEventsRequestEntry> = chunk
                .iter()
                .map(|e| {
                    PutEventsRequestEntry::builder()
                        .source(SOURCE)
                        .detail_type(e.detail_type.as_str())
                        .detail(e.detail.to_string())
                        .build()
                })
                .collect();
            let out = self
                .client
                .put_events()
                .set_entries(Some(entries))
                .send()
                .await
                .map_err(|e| sdk_error("events:PutEvents", e))?;
            // PutEvents answers 200 when some entries failed: each says why in its own entry.
            if out.failed_entry_count() > 0 {
                let why: Vec<String> = out
                    .entries()
                    .iter()
                    .filter_map(|e| e.error_code().map(str::to_owned))
                    .collect();
                return Err(Error::Transient(format!(
                    "events:PutEvents refused {} of {} events ({})",
                    out.failed_entry_count(),
                    chunk.len(),
                    why.join(", ")
                )));
            }
        }
        info!(
            types = ?events.iter().map(|e| e.detail_type.as_str()).collect::<Vec<_>>(),
            "published events"
        );
        Ok(())
    }
}
