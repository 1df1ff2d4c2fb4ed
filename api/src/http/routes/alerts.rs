//! Outbound alerts: the channels of `[alerts]` with their counters, the delivery log, and a test
//! message (the sending is the notifier's, `service::notify`).

use crate::http::AppState;
use crate::http::error::{ApiError, ApiResult, ErrorBody};
use crate::http::routes::{audit, json_body};
use crate::model::alert::{AlertChannel, AlertDelivery};
use crate::service::auth::Principal;
use axum::Json;
use axum::extract::{Extension, Query, State};
use serde::Deserialize;

/// The statuses of a delivery.
pub const DELIVERY_STATUSES: [&str; 7] = ["queued", "sending", "retrying", "sent", "failed", "dropped", "rate_limited"];

crate::http::rules::param_type! {
    /// One of [`DELIVERY_STATUSES`].
    DeliveryStatusParam => crate::http::rules::one_of(&DELIVERY_STATUSES);
}

/// Filters of the delivery log.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct DeliveryQuery {
    /// Only this channel's deliveries.
    pub channel: Option<String>,
    /// Only deliveries in this status.
    #[param(value_type = Option<DeliveryStatusParam>, inline)]
    pub status: Option<String>,
    /// At most this many, newest first (100 by default, at most 10,000).
    #[param(value_type = Option<crate::http::rules::LimitParam>, inline)]
    pub limit: Option<usize>,
}

/// The alert channels: where each sends (a webhook's scheme and host only, never its path or
/// secret), what it takes, its counters since start and its latest delivery and failure.
#[utoipa::path(get, path = "/api/t3000/alerts/channels", tag = "alerts",
    responses((status = 200, body = [AlertChannel])))]
pub async fn channels(State(state): State<AppState>) -> Json<Vec<AlertChannel>> {
    Json(state.notifier.channels())
}

/// The delivery log, newest first: each message to each channel, its status, attempts and last
/// error. Kept in memory (the newest `alerts.log_entries`), so it starts empty at each start.
#[utoipa::path(get, path = "/api/t3000/alerts/deliveries", tag = "alerts", params(DeliveryQuery),
    responses((status = 200, body = [AlertDelivery]), (status = 400, body = ErrorBody)))]
pub async fn deliveries(
    State(state): State<AppState>,
    Query(q): Query<DeliveryQuery>,
) -> ApiResult<Json<Vec<AlertDelivery>>> {
    let page = crate::http::routes::Page::new(None, q.limit)?;
    if let Some(s) = q.status.as_deref()
        && !DELIVERY_STATUSES.contains(&s)
    {
        return Err(ApiError::bad_request("invalid_status", format!("status: unknown status \"{s}\"")));
    }
    Ok(Json(state.notifier.deliveries(q.channel.as_deref(), q.status.as_deref(), page.limit)))
}

/// Body of `POST /api/t3000/alerts/test`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AlertTestBody {
    /// The channel's name.
    pub channel: String,
}

/// Sends a test message to a channel now (one attempt, past its routing, digest and rate limits)
/// and answers with its delivery: `sent`, or `failed` with the error.
#[utoipa::path(post, path = "/api/t3000/alerts/test", tag = "alerts", request_body = AlertTestBody,
    responses((status = 200, body = AlertDelivery), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn test(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    body: axum::body::Bytes,
) -> ApiResult<Json<AlertDelivery>> {
    let b: AlertTestBody = json_body(&body)?;
    let d = state.notifier.test(&b.channel).await?;
    audit(&state, &who, "alerts.test", format!("alert_channel:{}", b.channel), None, crate::http::routes::json(&d));
    Ok(Json(d))
}
