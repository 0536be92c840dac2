/// Everything that can go wrong in the core library.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A conditional write found the item in another state: a newer version, or already there.
    #[error("condition failed on write {index}")]
    ConditionFailed { index: usize },
    /// A pagination cursor that this store did not issue, or issued for another query.
    #[error("invalid cursor")]
    InvalidCursor,
    /// An item or record could not be converted to or from its typed form.
    #[error("malformed item: {0}")]
    Malformed(String),
    /// The backing store failed.
    #[error("store: {0}")]
    Store(String),
    /// The bus refused the whole request.
    #[error("bus: {0}")]
    Bus(String),
    /// The bus's service refused the whole request, with its error code.
    #[error("bus: refused: {code}: {reason}")]
    BusRefused { code: String, reason: String },
    /// A name that is not one of [`crate::http::Role::ALL`].
    #[error("{0:?} is not a role")]
    UnknownRole(String),
    /// The mail adapter could not send a message.
    #[error("mail: {0}")]
    Mail(String),
    /// A required setting is missing or invalid.
    #[error("configuration: {0}")]
    Config(String),
}

impl Error {
    pub fn malformed(e: impl std::fmt::Display) -> Self {
        Error::Malformed(e.to_string())
    }
}

impl From<serde_dynamo::Error> for Error {
    fn from(e: serde_dynamo::Error) -> Self {
        Error::malformed(e)
    }
}

impl From<serde_json::Error> for Error {
    fn from(e: serde_json::Error) -> Self {
        Error::malformed(e)
    }
}
