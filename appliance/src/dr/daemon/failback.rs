//! While a group is failing back, the daemon works its failback tasks, as `ferry
//! failback` does: an appliance that restarts (systemd starts the daemon again) resumes
//! a failback without anyone running a command. Both may run at once; each task goes to
//! one of them.

use std::time::Duration;

use ferry_aws::dynamodb::Table;
use ferry_core::keys::{self, locks};

use crate::ctx::Ctx;
use crate::dr::failback::worker::{Mode, Worker};

/// How often the daemon looks whether a group is failing back.
const LOOK_EVERY: Duration = Duration::from_secs(3);

async fn failing_back(table: &Table, group: &str) -> bool {
    let key = keys::group_lock(group, locks::FAILOVER);
    match ferry_aws::lock::held(table.client(), table.name(), &key).await {
        Ok(l) => l.is_some_and(|l| l.state.as_deref() == Some(locks::FAILING_BACK)),
        Err(e) => {
            tracing::warn!(group, "reading the failover lock: {e}");
            false
        }
    }
}

/// Until shutdown: each of `groups`' failbacks worked while it runs.
pub(super) async fn serve(ctx: &Ctx, table: &Table, groups: &[String]) {
    futures::future::join_all(groups.iter().map(|g| serve_group(ctx, table, g))).await;
}

async fn serve_group(ctx: &Ctx, table: &Table, group: &str) {
    loop {
        tokio::select! {
            _ = ctx.shutdown.requested() => return,
            _ = tokio::time::sleep(LOOK_EVERY) => {}
        }
        if !failing_back(table, group).await {
            continue;
        }
        let queue = match ferry_aws::sqs::Queue::open(
            ferry_aws::clients::sqs(ctx.sdk().await),
            ctx.settings.aws.failback_queue(),
        )
        .await
        {
            Ok(q) => q,
            Err(e) => {
                tracing::warn!(group, "opening the failback work queue: {e}");
                continue;
            }
        };
        tracing::info!(
            group,
            "the group is failing back: working its failback tasks"
        );
        let worker = Worker {
            ctx,
            sfn: ctx.aws().await.sfn.clone(),
            queue,
            table: table.clone(),
            group: group.to_string(),
            mode: Mode::Work,
        };
        let stop = async {
            loop {
                tokio::select! {
                    _ = ctx.shutdown.requested() => return,
                    _ = tokio::time::sleep(LOOK_EVERY) => {}
                }
                if !failing_back(table, group).await {
                    return;
                }
            }
        };
        worker.serve(stop).await;
        tracing::info!(group, "the group's failback is over (or the daemon stops)");
    }
}
