//! A lock in the one DynamoDB table: an item written with a condition, so that one
//! holder at a time has it, with an expiry, so that a holder that died does not hold
//! it forever (DynamoDB's TTL deletes expired items lazily, hours later: the condition
//! reads the expiry itself). Holders of long work refresh it; a holder releases only
//! its own lock.
//!
//! A holder may keep a lock past its work with a state (a group that failed over stays
//! locked as FAILED_OVER), and a lock may be marked preempted by someone with more right
//! to go on (a failover preempts a drill): the holder's next refresh says so, and it
//! stops.

use aws_sdk_dynamodb::types::AttributeValue;
use ferry_core::keys::{kinds, ItemKey};

use crate::CallError;

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// Someone else holds it, until `expires` (Unix seconds).
    #[error("held by {holder} until {expires} (Unix time)")]
    Held { holder: String, expires: i64 },
    /// This holder's lock was marked preempted by `by`.
    #[error("preempted by {by}")]
    Preempted { by: String },
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

/// A lock item as it stands.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
pub struct LockState {
    pub holder: String,
    /// Unix seconds.
    pub taken: i64,
    pub expires: i64,
    /// What the holder says the locked thing is in (`failing-over`, `failed-over`).
    #[serde(default)]
    pub state: Option<String>,
    #[serde(default)]
    pub preempted_by: Option<String>,
}

impl LockState {
    /// Held by someone at `now` (Unix seconds).
    pub fn held(&self, now: i64) -> bool {
        self.expires >= now
    }
}

/// A lock kept with a state never expires by itself (Unix seconds of year 9999).
pub const FOREVER: i64 = 253_402_300_799;

pub fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

fn value<'a>(
    item: &'a std::collections::HashMap<String, AttributeValue>,
    k: &str,
) -> Option<&'a str> {
    match item.get(k) {
        Some(AttributeValue::S(s)) | Some(AttributeValue::N(s)) => Some(s),
        _ => None,
    }
}

/// The lock item at `key` if someone holds it now (whoever that is).
pub async fn held(
    client: &aws_sdk_dynamodb::Client,
    table: &str,
    key: &ItemKey,
) -> Result<Option<LockState>, LockError> {
    let reader = Lock {
        client,
        table,
        key: key.clone(),
        holder: "",
        ttl_s: 0,
    };
    Ok(reader.read().await?.filter(|l| l.held(now())))
}

impl Lock<'_> {
    /// Takes the lock, or refreshes it when this holder has it already (a retried step),
    /// unless it was preempted.
    pub async fn take(&self) -> Result<(), LockError> {
        self.take_in(None).await
    }

    /// [`Lock::take`], recording the state the holder puts the locked thing in.
    pub async fn take_in(&self, state: Option<&str>) -> Result<(), LockError> {
        let t = now();
        let r = self
            .client
            .put_item()
            .table_name(self.table)
            .set_item(Some({
                let mut m = std::collections::HashMap::from([
                    ("pk".to_string(), AttributeValue::S(self.key.pk.clone())),
                    ("sk".to_string(), AttributeValue::S(self.key.sk.clone())),
                    ("kind".to_string(), AttributeValue::S(kinds::LOCK.into())),
                    ("holder".to_string(), AttributeValue::S(self.holder.into())),
                    ("taken".to_string(), AttributeValue::N(t.to_string())),
                    (
                        "expires".to_string(),
                        AttributeValue::N((t + self.ttl_s).to_string()),
                    ),
                    (
                        "ttl".to_string(),
                        AttributeValue::N((t + self.ttl_s + 86_400).to_string()),
                    ),
                ]);
                if let Some(s) = state {
                    m.insert("state".into(), AttributeValue::S(s.into()));
                }
                m
            }))
            .condition_expression(
                "attribute_not_exists(pk) OR expires < :now OR (holder = :me AND attribute_not_exists(preempted_by))",
            )
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
                let holder = value(&old, "holder").unwrap_or("another holder");
                if let (true, Some(by)) = (holder == self.holder, value(&old, "preempted_by")) {
                    return Err(LockError::Preempted { by: by.to_string() });
                }
                Err(LockError::Held {
                    holder: holder.to_string(),
                    expires: value(&old, "expires")
                        .and_then(|n| n.parse().ok())
                        .unwrap_or(0),
                })
            }
        }
    }

    /// Keeps the lock past the holder's work: `state` recorded, never expiring, until
    /// someone releases it as this holder.
    pub async fn keep(&self, state: &str) -> Result<(), LockError> {
        self.client
            .update_item()
            .table_name(self.table)
            .key("pk", AttributeValue::S(self.key.pk.clone()))
            .key("sk", AttributeValue::S(self.key.sk.clone()))
            .update_expression("SET #state = :s, expires = :forever REMOVE #ttl")
            .condition_expression("holder = :me")
            .expression_attribute_names("#state", "state")
            .expression_attribute_names("#ttl", "ttl")
            .expression_attribute_values(":s", AttributeValue::S(state.into()))
            .expression_attribute_values(":forever", AttributeValue::N(FOREVER.to_string()))
            .expression_attribute_values(":me", AttributeValue::S(self.holder.into()))
            .send()
            .await
            .map_err(|e| CallError::new("UpdateItem", format!("lock {}", self.key.sk), &e))?;
        Ok(())
    }

    /// Hands a kept lock from this holder to `to`, in `state`, never expiring; only
    /// while it is in one of `from_states`. Handing it to the holder it already has
    /// (a retried step) is no change.
    pub async fn hand_over(
        &self,
        to: &str,
        state: &str,
        from_states: &[&str],
    ) -> Result<(), LockError> {
        let mut req = self
            .client
            .update_item()
            .table_name(self.table)
            .key("pk", AttributeValue::S(self.key.pk.clone()))
            .key("sk", AttributeValue::S(self.key.sk.clone()))
            .update_expression(
                "SET holder = :to, #state = :s, expires = :forever, taken = :now REMOVE #ttl, preempted_by",
            )
            .expression_attribute_names("#state", "state")
            .expression_attribute_names("#ttl", "ttl")
            .expression_attribute_values(":to", AttributeValue::S(to.into()))
            .expression_attribute_values(":s", AttributeValue::S(state.into()))
            .expression_attribute_values(":forever", AttributeValue::N(FOREVER.to_string()))
            .expression_attribute_values(":now", AttributeValue::N(now().to_string()))
            .expression_attribute_values(":me", AttributeValue::S(self.holder.into()));
        let mut names = Vec::new();
        for (i, st) in from_states.iter().enumerate() {
            names.push(format!(":f{i}"));
            req =
                req.expression_attribute_values(format!(":f{i}"), AttributeValue::S((*st).into()));
        }
        let r = req
            .condition_expression(format!("holder = :me AND #state IN ({})", names.join(", ")))
            .send()
            .await;
        match r {
            Ok(_) => Ok(()),
            Err(e) => {
                let call = CallError::new("UpdateItem", format!("lock {}", self.key.sk), &e);
                if !call.failure.is("ConditionalCheckFailedException") {
                    return Err(call.into());
                }
                match self.read().await? {
                    Some(l) if l.holder == to && l.state.as_deref() == Some(state) => Ok(()),
                    Some(l) => Err(LockError::Held {
                        holder: l.holder,
                        expires: l.expires,
                    }),
                    None => Err(LockError::Held {
                        holder: "nobody (the lock is free)".into(),
                        expires: 0,
                    }),
                }
            }
        }
    }

    /// Marks a lock held by someone else preempted by this holder; `true` when there
    /// was a live lock to mark.
    pub async fn preempt(&self) -> Result<bool, LockError> {
        let r = self
            .client
            .update_item()
            .table_name(self.table)
            .key("pk", AttributeValue::S(self.key.pk.clone()))
            .key("sk", AttributeValue::S(self.key.sk.clone()))
            .update_expression("SET preempted_by = :me")
            .condition_expression("attribute_exists(pk) AND expires >= :now")
            .expression_attribute_values(":me", AttributeValue::S(self.holder.into()))
            .expression_attribute_values(":now", AttributeValue::N(now().to_string()))
            .send()
            .await;
        match r {
            Ok(_) => Ok(true),
            Err(e) => {
                let call = CallError::new("UpdateItem", format!("lock {}", self.key.sk), &e);
                match call.failure.is("ConditionalCheckFailedException") {
                    true => Ok(false),
                    false => Err(call.into()),
                }
            }
        }
    }

    /// The lock item as it stands, if there is one.
    pub async fn read(&self) -> Result<Option<LockState>, LockError> {
        let out = self
            .client
            .get_item()
            .table_name(self.table)
            .key("pk", AttributeValue::S(self.key.pk.clone()))
            .key("sk", AttributeValue::S(self.key.sk.clone()))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| CallError::new("GetItem", format!("lock {}", self.key.sk), &e))?;
        Ok(out.item().and_then(|i| {
            Some(LockState {
                holder: value(i, "holder")?.to_string(),
                taken: value(i, "taken").and_then(|n| n.parse().ok()).unwrap_or(0),
                expires: value(i, "expires")
                    .and_then(|n| n.parse().ok())
                    .unwrap_or(0),
                state: value(i, "state").map(str::to_string),
                preempted_by: value(i, "preempted_by").map(str::to_string),
            })
        }))
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
