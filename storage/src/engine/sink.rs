//! The collector's way into storage: [`BatchingSink`], a [`SampleSink`] that gathers the polls of
//! every device arriving close together into one ingest.

use super::Storage;
use std::time::Duration;
use t3_core::Sample;
use t3_core::sink::{IngestFuture, SampleSink, SinkError};
use tokio::sync::{mpsc, oneshot};

/// How long collected samples wait for others before they go to storage together.
const BATCH_WINDOW: Duration = Duration::from_millis(50);
/// A batch goes to storage at once when it reaches this many samples.
const BATCH_SAMPLES: usize = 65_536;

type Pending = (Vec<Sample>, oneshot::Sender<Result<(), SinkError>>);

/// Collected samples go through the same ingest path (WAL, buffer, Parquet) as pushed ones, in
/// batches: the polls of every device that arrive within 50 ms (`BATCH_WINDOW`) of the first one share
/// one WAL write and fsync (200 devices polled every second: 20 fsyncs a second, not 200). Each
/// poll is still acknowledged only once its samples are durable, and a batch refused by storage
/// refuses every poll in it with storage's reason.
#[derive(Debug, Clone)]
pub struct BatchingSink {
    tx: mpsc::UnboundedSender<Pending>,
}

impl BatchingSink {
    /// Starts the batching task on the current runtime; it ends when every clone of the sink is gone.
    pub fn start(storage: Storage) -> BatchingSink {
        let (tx, mut rx) = mpsc::unbounded_channel::<Pending>();
        tokio::spawn(async move {
            while let Some(first) = rx.recv().await {
                let deadline = tokio::time::Instant::now() + BATCH_WINDOW;
                let mut count = first.0.len();
                let mut batch = vec![first];
                while count < BATCH_SAMPLES {
                    match tokio::time::timeout_at(deadline, rx.recv()).await {
                        Ok(Some(next)) => {
                            count += next.0.len();
                            batch.push(next);
                        }
                        Ok(None) | Err(_) => break,
                    }
                }
                let mut samples = Vec::with_capacity(count);
                let mut acks = Vec::with_capacity(batch.len());
                for (s, ack) in batch {
                    samples.extend(s);
                    acks.push(ack);
                }
                let result = storage.ingest(samples).await.map_err(SinkError::from);
                for ack in acks {
                    let _ = ack.send(result.clone());
                }
            }
        });
        BatchingSink { tx }
    }
}

impl SampleSink for BatchingSink {
    fn ingest(&self, samples: Vec<Sample>) -> IngestFuture<'_> {
        Box::pin(async move {
            let stopped = || SinkError::Unavailable("the storage writer has stopped".to_owned());
            let (ack, done) = oneshot::channel();
            self.tx.send((samples, ack)).map_err(|_| stopped())?;
            done.await.map_err(|_| stopped())?
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vfs::RealFs;
    use std::sync::Arc;
    use t3_core::clock::ManualClock;
    use t3_core::config::Config;

    const NOW: i64 = 1_795_651_200_000_000;

    fn open(dir: &std::path::Path) -> Storage {
        let mut cfg = Config::default();
        cfg.storage.data_dir = dir.to_path_buf();
        Storage::open(&cfg, Arc::new(RealFs), ManualClock::new(NOW)).unwrap()
    }

    /// Polls sent together are stored together and each is acknowledged; a poll storage refuses
    /// gets storage's reason, typed as not worth a retry, and takes none of its batch with it.
    #[tokio::test(flavor = "multi_thread")]
    async fn polls_are_stored_together_and_refusals_are_typed() {
        let dir = tempfile::tempdir().unwrap();
        let storage = open(dir.path());
        let sink = BatchingSink::start(storage.clone());
        let (a, b) = tokio::join!(
            sink.ingest(vec![Sample::good(1, NOW - 1_000_000, 20.5)]),
            sink.ingest(vec![Sample::good(2, NOW - 1_000_000, 7.0)]),
        );
        assert_eq!((a, b), (Ok(()), Ok(())));
        let latest = storage.latest(&[1, 2]);
        assert_eq!(latest.len(), 2, "{latest:?}");

        let err = sink.ingest(vec![Sample::good(3, NOW - 1_000_000, f64::INFINITY)]).await.unwrap_err();
        assert!(matches!(&err, SinkError::Refused(m) if m.contains("infinite")), "{err:?}");
        assert!(!err.is_retryable());
        assert!(storage.latest(&[3]).is_empty());
        storage.shutdown().await.unwrap();
    }
}
