//! Arguments several commands share.

/// `--accept-new-host-key`, shared by the commands that open SSH sessions.
#[derive(Debug, clap::Args)]
pub struct HostKeyArgs {
    /// Pin the host key of a host seen for the first time (a changed key is always refused).
    #[arg(long)]
    pub accept_new_host_key: bool,
}
