//! The write side's protocol: load, decide, conditional write on the version, with
//! optimistic concurrency (an expected version), bounded retries, and idempotency keys kept
//! in the same transaction as the write. No HTTP here: `http::command` turns requests into
//! [`CommandMeta`] and [`Reply`] and [`Refusal`] into responses.

use crate::store::{Condition, Item, Key, Table, Write, from_item, to_item};
use crate::{Error, Result};
use serde::{Deserialize, Serialize, de::DeserializeOwned};
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::time::Duration;

/// How many times a command without `If-Match` retries after losing a race.
pub const MAX_ATTEMPTS: u32 = 8;
/// How long an idempotency key is remembered.
pub const IDEMPOTENCY_TTL: Duration = Duration::from_secs(24 * 60 * 60);
/// The key prefix of idempotency records; trigger ACLs map them to no event.
pub const IDEMPOTENCY_PREFIX: &str = "IDEMPOTENCY#";

/// A stored aggregate: its state plus the bookkeeping every write model item carries, side
/// by side in one item.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Versioned<S> {
    pub pk: String,
    pub sk: String,
    pub version: u64,
    pub updated_at: String,
    pub correlation_id: Option<String>,
    pub causation_id: Option<String>,
    #[serde(flatten)]
    pub state: S,
}

/// Read in one pass, without `#[serde(flatten)]`'s buffer (`store::flat`).
impl<'de, S: Deserialize<'de>> Deserialize<'de> for Versioned<S> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Default)]
        struct Bookkeeping {
            pk: Option<String>,
            sk: Option<String>,
            version: Option<u64>,
            updated_at: Option<String>,
            correlation_id: Option<String>,
            causation_id: Option<String>,
        }
        impl<'de> crate::store::flat::Own<'de> for Bookkeeping {
            fn take<A: serde::de::MapAccess<'de>>(
                &mut self,
                key: &str,
                map: &mut A,
            ) -> Result<bool, A::Error> {
                match key {
                    "pk" => self.pk = Some(map.next_value()?),
                    "sk" => self.sk = Some(map.next_value()?),
                    "version" => self.version = Some(map.next_value()?),
                    "updatedAt" => self.updated_at = Some(map.next_value()?),
                    "correlationId" => self.correlation_id = map.next_value()?,
                    "causationId" => self.causation_id = map.next_value()?,
                    _ => return Ok(false),
                }
                Ok(true)
            }
        }
        let (own, state): (Bookkeeping, S) = crate::store::flat::deserialize(deserializer)?;
        let missing = <D::Error as serde::de::Error>::missing_field;
        Ok(Versioned {
            pk: own.pk.ok_or_else(|| missing("pk"))?,
            sk: own.sk.ok_or_else(|| missing("sk"))?,
            version: own.version.ok_or_else(|| missing("version"))?,
            updated_at: own.updated_at.ok_or_else(|| missing("updatedAt"))?,
            correlation_id: own.correlation_id,
            causation_id: own.causation_id,
            state,
        })
    }
}

impl<S: Serialize> Versioned<S> {
    /// The items that writing `states` one after another, by made-up commands, leaves under
    /// `pk`: a history for a producer's samples.
    pub fn history(pk: &str, at: &str, states: Vec<S>) -> Result<Vec<Item>> {
        states
            .into_iter()
            .enumerate()
            .map(|(n, state)| {
                to_item(&Versioned {
                    pk: pk.into(),
                    sk: "#".into(),
                    version: n as u64 + 1,
                    updated_at: at.into(),
                    correlation_id: Some("sample-correlation".into()),
                    causation_id: Some(format!("sample-command-{}", n + 1)),
                    state,
                })
            })
            .collect()
    }
}

/// An idempotency key, scoped to a caller, with the fingerprint of the request it first came with.
#[derive(Clone, Debug)]
pub struct Idempotency {
    pub key: Key,
    pub fingerprint: String,
}

impl Idempotency {
    pub fn new(scope: &str, key: &str, method: &str, path: &str, body: &[u8]) -> Self {
        let mut hash = Sha256::new();
        for part in [method.as_bytes(), path.as_bytes(), body] {
            hash.update((part.len() as u64).to_be_bytes());
            hash.update(part);
        }
        let fingerprint = hash.finalize().iter().map(|b| format!("{b:02x}")).collect();
        Idempotency {
            key: Key::new(idempotency_pk(scope, key), "#"),
            fingerprint,
        }
    }
}

/// `IDEMPOTENCY#<length of scope>:<scope>#<key>`. The caller controls both the scope (its
/// `sub`) and the key, and either may contain `#`: the length prefix makes the split
/// unambiguous, so `vic` with key `k#x` and `vic#k` with key `x` never share a record.
fn idempotency_pk(scope: &str, key: &str) -> String {
    format!("{IDEMPOTENCY_PREFIX}{}:{scope}#{key}", scope.len())
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct IdempotencyRecord {
    pk: String,
    sk: String,
    fingerprint: String,
    status: u16,
    body: String,
    /// Epoch seconds; the table's TTL attribute.
    expires_at: i64,
}

/// What a command needs besides its decision.
#[derive(Clone, Debug, Default)]
pub struct CommandMeta {
    pub if_match: Option<u64>,
    pub idempotency: Option<Idempotency>,
    pub correlation_id: String,
    pub causation_id: String,
}

/// A command's answer, as first given and as replayed for a repeated idempotency key.
#[derive(Clone, Debug, PartialEq)]
pub struct Reply {
    pub status: u16,
    pub body: Value,
    pub replayed: bool,
}

/// Why a command was not carried out.
#[derive(Debug)]
pub enum Refusal<R> {
    /// The decision refused it: a broken rule, or an aggregate the caller may not see.
    Decided(R),
    /// The expected version is not the current one.
    VersionMismatch {
        current: u64,
    },
    /// Every attempt lost a race with another writer.
    Conflict {
        current: u64,
    },
    /// The idempotency key came with a different request before.
    KeyReused,
    Store(Error),
}

impl<R> From<Error> for Refusal<R> {
    fn from(e: Error) -> Self {
        Refusal::Store(e)
    }
}

/// The outcome of a decision, given to the function that shapes the answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Accepted {
    pub version: u64,
    pub created: bool,
}

/// Runs a command on the aggregate at `key`.
///
/// `decide` gets the current state (or `None`) and answers the new state, `None` for no
/// change, or its refusal (such as an aggregate the caller may not see, or a broken rule).
/// `answer` shapes the reply's status and body from the accepted version. With an expected
/// version (`if_match`), a different current version is refused at once. Without it, a lost
/// race is retried with the fresh state, up to [`MAX_ATTEMPTS`] times, then refused as a
/// conflict with the current version.
pub async fn execute<S, R, D, A>(
    table: &dyn Table,
    key: &Key,
    meta: &CommandMeta,
    mut decide: D,
    answer: A,
) -> Result<Reply, Refusal<R>>
where
    S: Serialize + DeserializeOwned,
    D: FnMut(Option<&S>) -> Result<Option<S>, R>,
    A: Fn(Accepted) -> (u16, Value),
{
    if let Some(idempotency) = &meta.idempotency
        && let Some(answer) = replay(table, idempotency).await?
    {
        return Ok(answer);
    }
    let mut current_version = 0;
    for attempt in 0..MAX_ATTEMPTS {
        let current: Option<Versioned<S>> = table.get(key).await?.map(from_item).transpose()?;
        current_version = current.as_ref().map_or(0, |r| r.version);
        let decision = decide(current.as_ref().map(|r| &r.state)).map_err(Refusal::Decided)?;
        if let Some(expected) = meta.if_match
            && expected != current_version
        {
            return Err(Refusal::VersionMismatch {
                current: current_version,
            });
        }
        let (accepted, mut writes) = match decision {
            None => (
                Accepted {
                    version: current_version,
                    created: false,
                },
                vec![],
            ),
            Some(state) => {
                let version = current_version + 1;
                let record = Versioned {
                    pk: key.pk.clone(),
                    sk: key.sk.clone(),
                    version,
                    updated_at: timestamp(),
                    correlation_id: Some(meta.correlation_id.clone()),
                    causation_id: Some(meta.causation_id.clone()),
                    state,
                };
                let condition = match current {
                    None => Condition::NotExists,
                    Some(_) => Condition::VersionIs(current_version),
                };
                (
                    Accepted {
                        version,
                        created: current.is_none(),
                    },
                    vec![Write::put(to_item(&record)?, condition)],
                )
            }
        };
        let (status, body) = answer(accepted);
        let state_writes = writes.len();
        if let Some(idempotency) = &meta.idempotency {
            writes.push(Write::put(
                idempotency_item(idempotency, status, &body)?,
                Condition::NotExists,
            ));
        }
        let reply = Reply {
            status,
            body,
            replayed: false,
        };
        if writes.is_empty() {
            return Ok(reply);
        }
        match table.write(writes).await {
            Ok(()) => return Ok(reply),
            Err(Error::ConditionFailed { index }) if index >= state_writes => {
                // A concurrent request with the same key won: answer as it did.
                let idempotency = meta
                    .idempotency
                    .as_ref()
                    .expect("an idempotency write failed");
                if let Some(reply) = replay(table, idempotency).await? {
                    return Ok(reply);
                }
            }
            Err(Error::ConditionFailed { .. }) if meta.if_match.is_some() => {
                let now = table
                    .get(key)
                    .await?
                    .as_ref()
                    .and_then(crate::store::version_of)
                    .unwrap_or(0);
                return Err(Refusal::VersionMismatch { current: now });
            }
            Err(Error::ConditionFailed { .. }) => {
                tracing::debug!(attempt, pk = %key.pk, "write lost a race; retrying");
                tokio::time::sleep(Duration::from_micros(
                    rand::random_range(100..2_000) << attempt.min(4),
                ))
                .await;
            }
            Err(e) => return Err(e.into()),
        }
    }
    let current = table
        .get(key)
        .await?
        .as_ref()
        .and_then(crate::store::version_of)
        .unwrap_or(current_version);
    Err(Refusal::Conflict { current })
}

async fn replay<R>(
    table: &dyn Table,
    idempotency: &Idempotency,
) -> Result<Option<Reply>, Refusal<R>> {
    let Some(item) = table.get(&idempotency.key).await? else {
        return Ok(None);
    };
    let record: IdempotencyRecord = from_item(item)?;
    if record.expires_at < crate::now_millis() / 1000 {
        return Ok(None);
    }
    if record.fingerprint != idempotency.fingerprint {
        return Err(Refusal::KeyReused);
    }
    Ok(Some(Reply {
        status: record.status,
        body: serde_json::from_str(&record.body).map_err(Error::from)?,
        replayed: true,
    }))
}

fn idempotency_item(idempotency: &Idempotency, status: u16, body: &Value) -> Result<Item> {
    to_item(&IdempotencyRecord {
        pk: idempotency.key.pk.clone(),
        sk: idempotency.key.sk.clone(),
        fingerprint: idempotency.fingerprint.clone(),
        status,
        body: body.to_string(),
        expires_at: crate::now_millis() / 1000 + IDEMPOTENCY_TTL.as_secs() as i64,
    })
}

/// Now, in RFC 3339 with milliseconds.
pub fn timestamp() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

#[cfg(all(test, feature = "embedded"))]
mod tests {
    use super::*;
    use crate::embedded::{Database, TableSpec};
    use crate::store::embedded::EmbeddedTable;

    #[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
    struct Counter {
        n: u64,
    }

    fn answer(accepted: Accepted) -> (u16, Value) {
        (200, serde_json::json!({ "version": accepted.version }))
    }

    type Refused = Refusal<()>;

    #[test]
    fn idempotency_scopes_that_contain_the_separator_never_collide() {
        let key =
            |scope: &str, key: &str| Idempotency::new(scope, key, "POST", "/orders", b"{}").key;
        assert_ne!(key("vic", "k#x"), key("vic#k", "x"));
        assert_ne!(key("a#", "b"), key("a", "#b"));
        assert_ne!(key("3:a", "b"), key("3", "a#b"));
        assert_eq!(key("vic", "k#x"), key("vic", "k#x"));
        assert!(key("vic", "k").pk.starts_with(IDEMPOTENCY_PREFIX));
        // The encoding is injective: the scope is read back from its length alone.
        for (scope, k) in [("vic", "k#x"), ("vic#k", "x"), ("", "#"), ("#", "")] {
            let pk = key(scope, k).pk;
            let rest = pk.strip_prefix(IDEMPOTENCY_PREFIX).unwrap();
            let (len, rest) = rest.split_once(':').unwrap();
            let len: usize = len.parse().unwrap();
            assert_eq!((&rest[..len], &rest[len + 1..]), (scope, k));
        }
    }

    #[tokio::test]
    async fn a_command_that_keeps_losing_races_gives_up_with_409_and_the_current_version() {
        let db = Database::open_in_memory().unwrap();
        let spec = TableSpec {
            name: "T".into(),
            ..TableSpec::default()
        };
        let table = EmbeddedTable::new(db.clone(), spec.clone());
        let key = Key::new("C#1", "#");
        let meta = CommandMeta::default();
        execute(
            &table,
            &key,
            &meta,
            |_: Option<&Counter>| Ok::<_, ()>(Some(Counter { n: 0 })),
            answer,
        )
        .await
        .unwrap();
        // Another writer commits between every read and write of this command.
        let rival = |version: u64| {
            let record = Versioned {
                pk: key.pk.clone(),
                sk: key.sk.clone(),
                version,
                updated_at: String::new(),
                correlation_id: None,
                causation_id: None,
                state: Counter { n: version },
            };
            db.write(
                &spec,
                vec![Write::put(to_item(&record).unwrap(), Condition::Always)],
            )
            .unwrap();
        };
        let mut calls = 0;
        let decide = |current: Option<&Counter>| {
            calls += 1;
            let n = current.unwrap().n;
            rival(n + 2);
            Ok(Some(Counter { n: n + 1 }))
        };
        let refusal: Refused = execute(&table, &key, &meta, decide, answer)
            .await
            .unwrap_err();
        assert_eq!(calls, MAX_ATTEMPTS);
        let stored = crate::store::version_of(&table.get(&key).await.unwrap().unwrap()).unwrap();
        assert!(matches!(refusal, Refusal::Conflict { current } if current == stored));
    }

    #[tokio::test]
    async fn with_if_match_a_lost_race_is_412_at_once() {
        let db = Database::open_in_memory().unwrap();
        let spec = TableSpec {
            name: "T".into(),
            ..TableSpec::default()
        };
        let table = EmbeddedTable::new(db.clone(), spec.clone());
        let key = Key::new("C#1", "#");
        execute(
            &table,
            &key,
            &CommandMeta::default(),
            |_: Option<&Counter>| Ok::<_, ()>(Some(Counter { n: 0 })),
            answer,
        )
        .await
        .unwrap();
        let meta = CommandMeta {
            if_match: Some(1),
            ..CommandMeta::default()
        };
        let mut calls = 0;
        let decide = |_: Option<&Counter>| {
            calls += 1;
            let record = Versioned {
                pk: key.pk.clone(),
                sk: key.sk.clone(),
                version: 2,
                updated_at: String::new(),
                correlation_id: None,
                causation_id: None,
                state: Counter { n: 9 },
            };
            db.write(
                &spec,
                vec![Write::put(to_item(&record).unwrap(), Condition::Always)],
            )
            .unwrap();
            Ok(Some(Counter { n: 1 }))
        };
        let refusal: Refused = execute(&table, &key, &meta, decide, answer)
            .await
            .unwrap_err();
        assert_eq!(calls, 1);
        assert!(matches!(refusal, Refusal::VersionMismatch { current: 2 }));
    }
}
