//! The table port on DynamoDB.

use super::{Condition, Item, Key, Page, Query, Table, VERSION, Write, encode_cursor};
use crate::{Error, Result};
use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{
    AttributeValue, Delete, KeysAndAttributes, Put, TransactWriteItem, Update,
};
use std::collections::HashMap;

type SdkItem = HashMap<String, AttributeValue>;

/// A DynamoDB table.
#[derive(Clone)]
pub struct DynamoTable {
    client: Client,
    name: String,
}

impl DynamoTable {
    pub fn new(client: Client, name: impl Into<String>) -> Self {
        DynamoTable {
            client,
            name: name.into(),
        }
    }
}

fn sdk_item(item: Item) -> SdkItem {
    item.into()
}

fn sdk_err(e: impl std::fmt::Display) -> Error {
    Error::Store(e.to_string())
}

/// A condition as a DynamoDB condition expression with its names and values.
struct Expression {
    text: Option<String>,
    names: Option<HashMap<String, String>>,
    values: Option<SdkItem>,
}

fn expression(condition: Condition) -> Expression {
    let version = |v: u64| {
        (
            Some(HashMap::from([("#v".to_string(), VERSION.to_string())])),
            Some(HashMap::from([(
                ":v".to_string(),
                AttributeValue::N(v.to_string()),
            )])),
        )
    };
    match condition {
        Condition::Always => Expression {
            text: None,
            names: None,
            values: None,
        },
        Condition::NotExists => Expression {
            text: Some("attribute_not_exists(pk)".into()),
            names: None,
            values: None,
        },
        Condition::VersionIs(v) => {
            let (names, values) = version(v);
            Expression {
                text: Some("#v = :v".into()),
                names,
                values,
            }
        }
        Condition::OlderThan(v) => {
            let (names, values) = version(v);
            Expression {
                text: Some("attribute_not_exists(pk) OR #v < :v".into()),
                names,
                values,
            }
        }
    }
}

/// `SET a = if_not_exists(a, :v) ADD n :d` for an [`Write::Add`].
fn add_expression(set_if_absent: Item, add: Vec<(String, i64)>) -> Expression {
    let mut names = HashMap::new();
    let mut values = HashMap::new();
    let mut sets = vec![];
    for (i, (name, value)) in sdk_item(set_if_absent).into_iter().enumerate() {
        names.insert(format!("#s{i}"), name);
        values.insert(format!(":s{i}"), value);
        sets.push(format!("#s{i} = if_not_exists(#s{i}, :s{i})"));
    }
    let mut adds = vec![];
    for (i, (name, delta)) in add.into_iter().enumerate() {
        names.insert(format!("#a{i}"), name);
        values.insert(format!(":a{i}"), AttributeValue::N(delta.to_string()));
        adds.push(format!("#a{i} :a{i}"));
    }
    let mut text = String::new();
    if !sets.is_empty() {
        text.push_str(&format!("SET {}", sets.join(", ")));
    }
    if !adds.is_empty() {
        text.push_str(&format!(" ADD {}", adds.join(", ")));
    }
    Expression {
        text: Some(text.trim().to_string()),
        names: Some(names),
        values: Some(values),
    }
}

fn key_of(key: &Key) -> SdkItem {
    HashMap::from([
        ("pk".to_string(), AttributeValue::S(key.pk.clone())),
        ("sk".to_string(), AttributeValue::S(key.sk.clone())),
    ])
}

#[async_trait]
impl Table for DynamoTable {
    async fn get(&self, key: &Key) -> Result<Option<Item>> {
        let out = self
            .client
            .get_item()
            .table_name(&self.name)
            .set_key(Some(key_of(key)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| sdk_err(e.into_service_error()))?;
        Ok(out.item.map(Item::from))
    }

    async fn get_many(&self, keys: &[Key]) -> Result<Vec<Option<Item>>> {
        // BatchGetItem refuses a repeated key, and takes at most 100 keys.
        let mut unique: Vec<&Key> = keys.iter().collect();
        unique.sort();
        unique.dedup();
        let mut found: HashMap<Key, Item> = HashMap::new();
        for chunk in unique.chunks(100) {
            let mut request = Some(
                KeysAndAttributes::builder()
                    .set_keys(Some(chunk.iter().map(|k| key_of(k)).collect()))
                    .consistent_read(true)
                    .build()
                    .map_err(sdk_err)?,
            );
            let mut delay = std::time::Duration::from_millis(25);
            for attempt in 0.. {
                let Some(keys) = request.take() else { break };
                if attempt == 8 {
                    return Err(Error::Store("BatchGetItem left keys unprocessed".into()));
                }
                if attempt > 0 {
                    tokio::time::sleep(delay).await;
                    delay *= 2;
                }
                let out = self
                    .client
                    .batch_get_item()
                    .request_items(&self.name, keys)
                    .send()
                    .await
                    .map_err(|e| sdk_err(e.into_service_error()))?;
                for item in out
                    .responses
                    .and_then(|mut r| r.remove(&self.name))
                    .into_iter()
                    .flatten()
                {
                    let item = Item::from(item);
                    found.insert(Key::of(&item)?, item);
                }
                request = out
                    .unprocessed_keys
                    .and_then(|mut u| u.remove(&self.name))
                    .filter(|k| !k.keys.is_empty());
            }
        }
        Ok(keys.iter().map(|k| found.get(k).cloned()).collect())
    }

    async fn query(&self, query: &Query) -> Result<Page> {
        let start = query.start_key()?;
        let (partition, sort) = query.key_attributes();
        let mut condition = "#p = :p".to_string();
        let mut names = HashMap::from([("#p".to_string(), partition)]);
        let mut values =
            HashMap::from([(":p".to_string(), AttributeValue::S(query.partition.clone()))]);
        if let Some(prefix) = &query.sort_prefix {
            condition.push_str(" AND begins_with(#s, :s)");
            names.insert("#s".into(), sort);
            values.insert(":s".into(), AttributeValue::S(prefix.clone()));
        }
        let out = self
            .client
            .query()
            .table_name(&self.name)
            .set_index_name(query.index.clone())
            .key_condition_expression(condition)
            .set_expression_attribute_names(Some(names))
            .set_expression_attribute_values(Some(values))
            .scan_index_forward(!query.descending)
            .limit(query.limit.clamp(1, 1000) as i32)
            .set_exclusive_start_key(start.map(sdk_item))
            .send()
            .await
            .map_err(|e| sdk_err(e.into_service_error()))?;
        let cursor = out
            .last_evaluated_key
            .filter(|k| !k.is_empty())
            .map(|k| encode_cursor(&Item::from(k)));
        Ok(Page {
            items: out
                .items
                .unwrap_or_default()
                .into_iter()
                .map(Item::from)
                .collect(),
            cursor,
        })
    }

    async fn write(&self, writes: Vec<Write>) -> Result<()> {
        if writes.len() == 1 {
            let write = writes.into_iter().next().expect("one write");
            return self.write_one(write).await;
        }
        let items = writes
            .into_iter()
            .map(|write| {
                let built = match write {
                    Write::Put { item, condition } => {
                        let e = expression(condition);
                        let put = Put::builder()
                            .table_name(&self.name)
                            .set_item(Some(sdk_item(item)))
                            .set_condition_expression(e.text)
                            .set_expression_attribute_names(e.names)
                            .set_expression_attribute_values(e.values)
                            .build()
                            .map_err(sdk_err)?;
                        TransactWriteItem::builder().put(put).build()
                    }
                    Write::Delete { key, condition } => {
                        let e = expression(condition);
                        let delete = Delete::builder()
                            .table_name(&self.name)
                            .set_key(Some(key_of(&key)))
                            .set_condition_expression(e.text)
                            .set_expression_attribute_names(e.names)
                            .set_expression_attribute_values(e.values)
                            .build()
                            .map_err(sdk_err)?;
                        TransactWriteItem::builder().delete(delete).build()
                    }
                    Write::Add {
                        key,
                        set_if_absent,
                        add,
                    } => {
                        let e = add_expression(set_if_absent, add);
                        let update = Update::builder()
                            .table_name(&self.name)
                            .set_key(Some(key_of(&key)))
                            .set_update_expression(e.text)
                            .set_expression_attribute_names(e.names)
                            .set_expression_attribute_values(e.values)
                            .build()
                            .map_err(sdk_err)?;
                        TransactWriteItem::builder().update(update).build()
                    }
                };
                Ok(built)
            })
            .collect::<Result<Vec<_>>>()?;
        match self.client.transact_write_items().set_transact_items(Some(items)).send().await {
            Ok(_) => Ok(()),
            Err(e) => match e.into_service_error() {
                aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError::TransactionCanceledException(
                    cancelled,
                ) => {
                    // A conditional check failure names its write; a conflict with another
                    // transaction is a lost race too, and is retried the same way.
                    let reasons = cancelled.cancellation_reasons.unwrap_or_default();
                    let index = reasons
                        .iter()
                        .position(|r| r.code.as_deref() == Some("ConditionalCheckFailed"))
                        .or_else(|| reasons.iter().position(|r| r.code.as_deref() == Some("TransactionConflict")));
                    match index {
                        Some(index) => Err(Error::ConditionFailed { index }),
                        None => Err(Error::Store(format!("transaction cancelled: {:?}", cancelled.message))),
                    }
                }
                other => Err(sdk_err(other)),
            },
        }
    }
}

impl DynamoTable {
    async fn write_one(&self, write: Write) -> Result<()> {
        use aws_sdk_dynamodb::operation::{delete_item::DeleteItemError, put_item::PutItemError};
        let failed = Err(Error::ConditionFailed { index: 0 });
        match write {
            Write::Put { item, condition } => {
                let e = expression(condition);
                let sent = self
                    .client
                    .put_item()
                    .table_name(&self.name)
                    .set_item(Some(sdk_item(item)))
                    .set_condition_expression(e.text)
                    .set_expression_attribute_names(e.names)
                    .set_expression_attribute_values(e.values)
                    .send()
                    .await;
                match sent.map_err(|e| e.into_service_error()) {
                    Ok(_) => Ok(()),
                    Err(PutItemError::ConditionalCheckFailedException(_)) => failed,
                    Err(e) => Err(sdk_err(e)),
                }
            }
            Write::Delete { key, condition } => {
                let e = expression(condition);
                let sent = self
                    .client
                    .delete_item()
                    .table_name(&self.name)
                    .set_key(Some(key_of(&key)))
                    .set_condition_expression(e.text)
                    .set_expression_attribute_names(e.names)
                    .set_expression_attribute_values(e.values)
                    .send()
                    .await;
                match sent.map_err(|e| e.into_service_error()) {
                    Ok(_) => Ok(()),
                    Err(DeleteItemError::ConditionalCheckFailedException(_)) => failed,
                    Err(e) => Err(sdk_err(e)),
                }
            }
            Write::Add {
                key,
                set_if_absent,
                add,
            } => {
                let e = add_expression(set_if_absent, add);
                self.client
                    .update_item()
                    .table_name(&self.name)
                    .set_key(Some(key_of(&key)))
                    .set_update_expression(e.text)
                    .set_expression_attribute_names(e.names)
                    .set_expression_attribute_values(e.values)
                    .send()
                    .await
                    .map_err(|e| sdk_err(e.into_service_error()))?;
                Ok(())
            }
        }
    }
}
