//! The single-node broker: publishing is a direct call into this node's hub.

use std::sync::{Arc, OnceLock};

use async_trait::async_trait;

use super::{Broker, BrokerEvent, BrokerSink};
use crate::core::error::Result;

#[derive(Default)]
pub struct LocalBroker {
    sink: OnceLock<Arc<dyn BrokerSink>>,
}

impl LocalBroker {
    pub fn new() -> Self {
        Self::default()
    }
}

#[async_trait]
impl Broker for LocalBroker {
    fn attach(&self, sink: Arc<dyn BrokerSink>) {
        let _ = self.sink.set(sink);
    }

    async fn publish(&self, event: BrokerEvent) -> Result<()> {
        if let Some(sink) = self.sink.get() {
            sink.deliver(event);
        }
        Ok(())
    }

    async fn ping(&self) -> Result<()> {
        Ok(())
    }
}
