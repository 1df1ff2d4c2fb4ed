//! Outbound alarm notifications as the API shows them: the channels (`[alerts]` in the
//! configuration) with their counters, and the delivery log (kept in memory, the newest
//! `alerts.log_entries`; it starts empty at each start).

use serde::Serialize;

/// One message to one channel and what became of it.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct AlertDelivery {
    /// Increasing from 1 at each start; also sent as `X-T3000-Delivery` to webhooks, the same for
    /// every attempt, so a receiver can tell a retry from a new message.
    pub id: u64,
    pub channel: String,
    /// `webhook` or `email`.
    pub channel_kind: String,
    /// `alarm` (one alarm), `digest` (several in one message) or `test`.
    pub kind: String,
    /// The rule ids of the alarms in the message (as in `AlarmEvent.rule_id`: 0 is the storage alarm,
    /// 4294967290 ..= 4294967295 the system alarms, from 2147483648 up programs' alarms).
    pub rule_ids: Vec<i64>,
    /// The message's subject line (with `alerts.site` when set: `[T3000 Main St] ...`).
    pub subject: String,
    /// `queued`, `sending`, `retrying` (an attempt failed, or an e-mail's recipients were refused
    /// for now while others got it: another attempt follows, for them alone), `sent`, `failed`
    /// (every attempt failed), `dropped` (the channel's queue was full) or `rate_limited` (the
    /// channel's `max_per_minute` / `max_per_hour` was reached: held back, not sent as it is; its
    /// alarms go out in the channel's next message, one digest, as soon as the limits allow).
    pub status: String,
    /// Attempts made so far.
    pub attempts: u32,
    /// Why the latest attempt failed (never a secret: no URL path, no password); for a `sent`
    /// e-mail, the recipients the mail server refused with its replies (the others got it), also
    /// those it refused for now at the last attempt.
    pub last_error: Option<String>,
    /// When the message was made (epoch microseconds).
    pub created_us: i64,
    /// When it was sent, or given up (epoch microseconds).
    pub finished_us: Option<i64>,
}

/// A channel, its settings without secrets, and its counters since start.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct AlertChannel {
    pub name: String,
    /// `webhook` or `email`.
    pub kind: String,
    /// Where it sends: a webhook's scheme, host and port (the path can hold a key, so it is not
    /// shown), or an e-mail channel's recipients.
    pub target: String,
    /// Whether webhook messages are signed (`X-T3000-Signature`).
    pub signed: bool,
    /// The rules it takes (ids or names); empty: every rule.
    pub rules: Vec<String>,
    /// The entries of `rules` that name no alarm this server has now: no rule (enabled or not),
    /// system alarm or storage alarm has that id or name, and no program's alarm (`PROGRAM line
    /// N`) of that name was raised since the start. A typo, or a rule not made yet: the channel
    /// takes no alarm for them. Logged at warn at start and at each reload.
    pub unmatched_rules: Vec<String>,
    pub min_severity: u8,
    /// Which transitions: `raised`, `level_changed`, `cleared`, `acknowledged`.
    pub events: Vec<String>,
    pub max_per_minute: u32,
    pub max_per_hour: u32,
    /// Messages delivered since start.
    pub sent: u64,
    /// Messages given up after every attempt failed.
    pub failed: u64,
    /// Messages dropped because the channel's queue was full.
    pub dropped: u64,
    /// Messages held back by the channel's rate limits (their alarms go out in a later message,
    /// one digest, as soon as the limits allow).
    pub rate_limited: u64,
    /// Messages waiting in the channel's queue now.
    pub queued: usize,
    /// Alarms held: for the digest that goes out when the present digest window ends, and back by
    /// the rate limits until they allow a message.
    pub held: usize,
    /// The latest delivery (any status).
    pub last_delivery: Option<AlertDelivery>,
    /// The latest failed attempt, or recipients refused by the mail server: when (epoch
    /// microseconds) and why.
    pub last_failure_us: Option<i64>,
    pub last_error: Option<String>,
}
