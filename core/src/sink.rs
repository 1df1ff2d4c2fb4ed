//! The ingest seam: where samples go once a driver has read them (the storage engine's ingest in
//! the server, a counter in a benchmark, a vector in a test).

use crate::model::Sample;
use std::fmt;
use std::future::Future;
use std::pin::Pin;

/// The future of [`SampleSink::ingest`].
pub type IngestFuture<'a> = Pin<Box<dyn Future<Output = Result<(), SinkError>> + Send + 'a>>;

/// Takes samples, answering once they are stored (durable, for the storage engine) or refused.
pub trait SampleSink: Send + Sync + fmt::Debug {
    fn ingest(&self, samples: Vec<Sample>) -> IngestFuture<'_>;
}

/// Why a sink did not take a batch. Either way nothing of the batch was stored.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SinkError {
    /// The sink cannot take samples now (a backlog, a failing disk, shutting down): the same
    /// batch may be taken later.
    #[error("{0}")]
    Unavailable(String),
    /// The samples themselves are refused (a time stamp out of range, a non-finite value):
    /// sending the same batch again fails the same way.
    #[error("{0}")]
    Refused(String),
    /// The sink failed (an I/O or internal error it does not expect to go away by itself):
    /// a retry is not expected to help until someone looks at it.
    #[error("{0}")]
    Failed(String),
}

impl SinkError {
    /// Whether sending the same batch again later may succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(self, SinkError::Unavailable(_))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_an_unavailable_sink_is_worth_a_retry() {
        assert!(SinkError::Unavailable("backlog".into()).is_retryable());
        assert!(!SinkError::Refused("ts out of range".into()).is_retryable());
        assert!(!SinkError::Failed("I/O error".into()).is_retryable());
        assert_eq!(SinkError::Refused("ts out of range".into()).to_string(), "ts out of range");
    }
}
