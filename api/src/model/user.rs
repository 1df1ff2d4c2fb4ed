//! Users, their roles, and the tokens that stand for them.

use serde::{Deserialize, Serialize};

/// What a user may do. Ordered: each role may do everything the ones before it may.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Reads everything except users, tokens and the audit log.
    Viewer,
    /// Also writes values, acknowledges alarms, edits and runs schedules.
    Operator,
    /// Everything: configuration, users, tokens, the audit log.
    Admin,
}

impl Role {
    pub fn name(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Operator => "operator",
            Role::Admin => "admin",
        }
    }
}

/// A user account (stored; the API never shows the hash).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct User {
    #[serde(default)]
    pub id: i64,
    pub username: String,
    pub role: Role,
    pub password_hash: String,
    #[serde(default)]
    pub disabled: bool,
    pub created_us: i64,
}

record!(User, "user");

/// A login session or an API token (stored by the SHA-256 of its secret).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Token {
    #[serde(default)]
    pub id: i64,
    /// `session`, or the name an admin gave an API token.
    pub name: String,
    pub kind: TokenKind,
    pub user_id: i64,
    /// SHA-256 of the secret, hex.
    pub hash: String,
    pub created_us: i64,
    pub expires_us: Option<i64>,
}

record!(Token, "token");

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum TokenKind {
    Session,
    Api,
}
