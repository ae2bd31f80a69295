//! `--from`: more exposers of the same exposure, for `rgtp pull` and `rgtp get`.
//!
//! Each is written `HOST:PORT` (the exposure and key are the ticket's) or as a ticket
//! of its own, which must name the same exposure with the same key. The pull then
//! runs from all of them at once ([`rgtp_proto::MultiPuller`]).

use std::net::SocketAddr;

use rgtp::Ticket;
use rgtp_proto::multi::{SourceReport, SourceState};
use rgtp_proto::Peer;

/// The exposers to pull from: the ticket's own address first, then each `--from`
/// (duplicates removed).
pub fn sources(
    ticket_addr: SocketAddr,
    ticket: &Ticket,
    from: &[String],
) -> Result<Vec<Peer>, (u8, String)> {
    rgtp::files::sources(ticket_addr, ticket, from).map_err(crate::transfer::status)
}

/// One line per source: what it delivered, or why it was dropped.
pub fn describe(reports: &[SourceReport]) -> Vec<String> {
    reports
        .iter()
        .map(|r| match r.state {
            SourceState::Dropped(why) => format!(
                "{}: dropped ({why}) after delivering {} chunks",
                r.peer, r.delivered
            ),
            SourceState::Connecting => format!("{}: never answered", r.peer),
            SourceState::Active => format!("{}: delivered {} chunks", r.peer, r.delivered),
        })
        .collect()
}

/// The sources as JSON objects.
pub fn json(reports: &[SourceReport]) -> serde_json::Value {
    serde_json::Value::Array(
        reports
            .iter()
            .map(|r| {
                let (state, reason) = match r.state {
                    SourceState::Active => ("active", None),
                    SourceState::Connecting => ("silent", None),
                    SourceState::Dropped(why) => ("dropped", Some(why.to_string())),
                };
                serde_json::json!({
                    "address": r.peer.to_string(),
                    "state": state,
                    "reason": reason,
                    "delivered_chunks": r.delivered,
                    "auth_failures": r.stats.auth_failures,
                    "merkle_failures": r.stats.merkle_failures,
                })
            })
            .collect(),
    )
}
