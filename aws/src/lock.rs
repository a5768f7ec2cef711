//! A lock in the one DynamoDB table: an item written with a condition, so that one
//! holder at a time has it, with an expiry, so that a holder that died does not hold
//! it forever (DynamoDB's TTL deletes expired items lazily, hours later: the condition
//! reads the expiry itself). Holders of long work refresh it; a holder releases only
//! its own lock.

use aws_sdk_dynamodb::types::AttributeValue;
use ferry_core::keys::{kinds, ItemKey};

use crate::CallError;

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// Someone else holds it, until `expires` (Unix seconds).
    #[error("held by {holder} until {expires} (Unix time)")]
    Held { holder: String, expires: i64 },
    #[error(transparent)]
    Call(#[from] CallError),
}

/// One lock item and who is asking for it.
pub struct Lock<'a> {
    pub client: &'a aws_sdk_dynamodb::Client,
    pub table: &'a str,
    pub key: ItemKey,
    pub holder: &'a str,
    /// Seconds a take or refresh lasts.
    pub ttl_s: i64,
}

fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

impl Lock<'_> {
    /// Takes the lock, or refreshes it when this holder has it already (a retried step).
    pub async fn take(&self) -> Result<(), LockError> {
        let t = now();
        let r = self
            .client
            .put_item()
            .table_name(self.table)
            .item("pk", AttributeValue::S(self.key.pk.clone()))
            .item("sk", AttributeValue::S(self.key.sk.clone()))
            .item("kind", AttributeValue::S(kinds::LOCK.into()))
            .item("holder", AttributeValue::S(self.holder.into()))
            .item("taken", AttributeValue::N(t.to_string()))
            .item("expires", AttributeValue::N((t + self.ttl_s).to_string()))
            // For the table's TTL, which cleans up long after `expires` says so.
            .item(
                "ttl",
                AttributeValue::N((t + self.ttl_s + 86_400).to_string()),
            )
            .condition_expression("attribute_not_exists(pk) OR holder = :me OR expires < :now")
            .expression_attribute_values(":me", AttributeValue::S(self.holder.into()))
            .expression_attribute_values(":now", AttributeValue::N(t.to_string()))
            .return_values_on_condition_check_failure(
                aws_sdk_dynamodb::types::ReturnValuesOnConditionCheckFailure::AllOld,
            )
            .send()
            .await;
        match r {
            Ok(_) => Ok(()),
            Err(e) => {
                let call = CallError::new("PutItem", format!("lock {}", self.key.sk), &e);
                if !call.failure.is("ConditionalCheckFailedException") {
                    return Err(call.into());
                }
                use aws_sdk_dynamodb::operation::put_item::PutItemError;
                let old = match e.as_service_error() {
                    Some(PutItemError::ConditionalCheckFailedException(c)) => {
                        c.item().cloned().unwrap_or_default()
                    }
                    _ => Default::default(),
                };
                let holder = match old.get("holder") {
                    Some(AttributeValue::S(h)) => h.clone(),
                    _ => "another holder".into(),
                };
                let expires = match old.get("expires") {
                    Some(AttributeValue::N(n)) => n.parse().unwrap_or(0),
                    _ => 0,
                };
                Err(LockError::Held { holder, expires })
            }
        }
    }

    /// Releases the lock if this holder has it; anyone else's is left alone.
    pub async fn release(&self) -> Result<(), LockError> {
        let r = self
            .client
            .delete_item()
            .table_name(self.table)
            .key("pk", AttributeValue::S(self.key.pk.clone()))
            .key("sk", AttributeValue::S(self.key.sk.clone()))
            .condition_expression("holder = :me")
            .expression_attribute_values(":me", AttributeValue::S(self.holder.into()))
            .send()
            .await;
        match r {
            Ok(_) => Ok(()),
            Err(e) => {
                let call = CallError::new("DeleteItem", format!("lock {}", self.key.sk), &e);
                if call.failure.is("ConditionalCheckFailedException") {
                    return Ok(());
                }
                Err(call.into())
            }
        }
    }
}
