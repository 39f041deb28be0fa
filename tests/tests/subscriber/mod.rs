//! A subscriber of the gateway's events, as a vendor would be (README, "Events"): a rule
//! on the bus into an SQS queue of its own; the tests read what it received. Shared by the
//! test files that check events (`mod subscriber;`).

use serde_json::Value;

/// A bus of the test's own, a rule on it and an SQS queue the rule delivers to (as a
/// vendor would subscribe): the queue's URL.
pub async fn subscribed_queue(sdk: &shared::aws::SdkConfig, bus: &str) -> String {
    let events = aws_sdk_eventbridge::Client::new(sdk);
    let sqs = aws_sdk_sqs::Client::new(sdk);
    events.create_event_bus().name(bus).send().await.unwrap();
    let queue = sqs
        .create_queue()
        .queue_name(format!("{bus}-q"))
        .send()
        .await
        .unwrap();
    let url = queue.queue_url().unwrap().to_owned();
    let arn = sqs
        .get_queue_attributes()
        .queue_url(&url)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
        .send()
        .await
        .unwrap()
        .attributes()
        .and_then(|a| {
            a.get(&aws_sdk_sqs::types::QueueAttributeName::QueueArn)
                .cloned()
        })
        .unwrap();
    events
        .put_rule()
        .name(format!("{bus}-all"))
        .event_bus_name(bus)
        .event_pattern(r#"{"source":["choruspro-gateway"]}"#)
        .send()
        .await
        .unwrap();
    let target = aws_sdk_eventbridge::types::Target::builder()
        .id("queue")
        .arn(arn)
        .build()
        .unwrap();
    events
        .put_targets()
        .rule(format!("{bus}-all"))
        .event_bus_name(bus)
        .targets(target)
        .send()
        .await
        .unwrap();
    url
}

/// Every message waiting in the queue, as the envelopes EventBridge delivered.
pub async fn drain(sdk: &shared::aws::SdkConfig, url: &str) -> Vec<Value> {
    let sqs = aws_sdk_sqs::Client::new(sdk);
    let mut all = Vec::new();
    loop {
        let out = sqs
            .receive_message()
            .queue_url(url)
            .max_number_of_messages(10)
            .send()
            .await
            .unwrap();
        let messages = out.messages();
        if messages.is_empty() {
            return all;
        }
        for m in messages {
            all.push(serde_json::from_str(m.body().unwrap()).unwrap());
            sqs.delete_message()
                .queue_url(url)
                .receipt_handle(m.receipt_handle().unwrap())
                .send()
                .await
                .unwrap();
        }
    }
}

/// `(detail-type, state, chorus_status)` of the events about `invoice`, in order.
pub fn story(events: &[Value], invoice: &str) -> Vec<(String, String, String)> {
    events
        .iter()
        .filter(|e| e["detail"]["invoice_number"] == invoice)
        .map(|e| {
            let text = |v: &Value| v.as_str().unwrap_or("-").to_owned();
            (
                text(&e["detail-type"]),
                text(&e["detail"]["state"]),
                text(&e["detail"]["chorus_status"]),
            )
        })
        .collect()
}
