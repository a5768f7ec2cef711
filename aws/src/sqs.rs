//! A work queue as the appliance reads it: messages taken by long polling, deleted once
//! taken (the work's task token is what matters: a task whose worker dies is sent again
//! by its state machine), or handed back at once for another reader.

use crate::CallError;

#[derive(Clone)]
pub struct Queue {
    client: aws_sdk_sqs::Client,
    pub url: String,
}

/// A message taken from the queue.
#[derive(Debug, Clone)]
pub struct Message {
    pub body: String,
    pub receipt: String,
}

impl Queue {
    /// The queue by name (resolved to its URL) or by URL.
    pub async fn open(client: aws_sdk_sqs::Client, name_or_url: &str) -> Result<Self, CallError> {
        if name_or_url.starts_with("https://") || name_or_url.starts_with("http://") {
            return Ok(Queue {
                client,
                url: name_or_url.to_string(),
            });
        }
        let out = client
            .get_queue_url()
            .queue_name(name_or_url)
            .send()
            .await
            .map_err(|e| CallError::new("GetQueueUrl", name_or_url, &e))?;
        let url = out.queue_url().unwrap_or_default().to_string();
        Ok(Queue { client, url })
    }

    /// Up to `max` messages, waiting at most `wait_s` (0-20) for the first.
    pub async fn receive(&self, wait_s: i32, max: i32) -> Result<Vec<Message>, CallError> {
        let out = self
            .client
            .receive_message()
            .queue_url(&self.url)
            .wait_time_seconds(wait_s)
            .max_number_of_messages(max)
            .send()
            .await
            .map_err(|e| CallError::new("ReceiveMessage", &self.url, &e))?;
        Ok(out
            .messages()
            .iter()
            .filter_map(|m| {
                Some(Message {
                    body: m.body()?.to_string(),
                    receipt: m.receipt_handle()?.to_string(),
                })
            })
            .collect())
    }

    pub async fn delete(&self, m: &Message) -> Result<(), CallError> {
        self.client
            .delete_message()
            .queue_url(&self.url)
            .receipt_handle(&m.receipt)
            .send()
            .await
            .map_err(|e| CallError::new("DeleteMessage", &self.url, &e))?;
        Ok(())
    }

    /// Makes a message visible again at once (it is another reader's work).
    pub async fn hand_back(&self, m: &Message) -> Result<(), CallError> {
        self.client
            .change_message_visibility()
            .queue_url(&self.url)
            .receipt_handle(&m.receipt)
            .visibility_timeout(0)
            .send()
            .await
            .map_err(|e| CallError::new("ChangeMessageVisibility", &self.url, &e))?;
        Ok(())
    }
}
