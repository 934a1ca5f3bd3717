//! The waiting room's HTTP calls (API.md, "Waiting room") and their answers
//! reduced to what the scenario needs. Nothing the server says is trusted:
//! an answer without the contract's shape is counted, never a panic.

use serde_json::{json, Value};

use crate::client::{Answer, Call, Http, TransportError};
use crate::scenarios::waiting_room::pow;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Waiting,
    Admitted,
    Expired,
}

/// A queue ticket as the server shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueTicket {
    pub id: String,
    pub status: Status,
    pub position: u64,
    pub estimated_wait_seconds: u64,
    pub admission_token: Option<String>,
}

impl QueueTicket {
    pub fn from_answer(body: &Value) -> Option<QueueTicket> {
        let status = match body.get("status")?.as_str()? {
            "WAITING" => Status::Waiting,
            "ADMITTED" => Status::Admitted,
            "EXPIRED" => Status::Expired,
            _ => return None,
        };
        let admission_token = body
            .get("admission_token")
            .and_then(Value::as_str)
            .map(str::to_string);
        if status == Status::Admitted && admission_token.is_none() {
            return None;
        }
        Some(QueueTicket {
            id: body.get("id")?.as_str()?.to_string(),
            status,
            position: body.get("position")?.as_u64()?,
            estimated_wait_seconds: body.get("estimated_wait_seconds")?.as_u64()?,
            admission_token,
        })
    }
}

/// What one queue request came to.
#[derive(Debug)]
pub enum Reply {
    /// 200 or 201 with a well-formed ticket.
    Ticket { ticket: QueueTicket, created: bool },
    /// 429 (or 503) with `Retry-After`: try again then.
    RetryAfter { seconds: u64, code: String },
    /// Anything else: the problem code, `http_<status>`, `transport:…` or
    /// `malformed_ticket`.
    Failed { code: String },
}

impl Reply {
    pub fn of(answer: &Result<Answer, TransportError>) -> Reply {
        let answer = match answer {
            Ok(answer) => answer,
            Err(error) => {
                return Reply::Failed {
                    code: error.code.to_string(),
                }
            }
        };
        match answer.status.as_u16() {
            200 | 201 => match answer.json().as_ref().and_then(QueueTicket::from_answer) {
                Some(ticket) => Reply::Ticket {
                    ticket,
                    created: answer.status.as_u16() == 201,
                },
                None => Reply::Failed {
                    code: "malformed_ticket".into(),
                },
            },
            429 | 503 if answer.retry_after_seconds.is_some() => Reply::RetryAfter {
                seconds: answer.retry_after_seconds.unwrap_or(1),
                code: answer.code(),
            },
            _ => Reply::Failed {
                code: answer.code(),
            },
        }
    }
}

pub fn queue_path(show_id: &str) -> String {
    format!("/v1/shows/{show_id}/queue")
}

pub fn ticket_path(show_id: &str, ticket_id: &str) -> String {
    format!("/v1/shows/{show_id}/queue/{ticket_id}")
}

/// `POST /v1/shows/{id}/queue` with `body` (`{}` or a proof of work).
pub async fn join(
    http: &Http,
    node: usize,
    path: &str,
    token: &str,
    body: &Value,
) -> Result<Answer, TransportError> {
    http.send(node, Call::post(path, body).token(token)).await
}

/// `GET /v1/shows/{id}/queue/{ticket_id}`.
pub async fn poll(
    http: &Http,
    node: usize,
    path: &str,
    token: &str,
) -> Result<Answer, TransportError> {
    http.send(node, Call::get(path).token(token)).await
}

/// A solved proof of work, ready to send with a join.
#[derive(Debug)]
pub struct Solved {
    pub body: Value,
    /// Time spent hashing, in microseconds.
    pub solve_microseconds: u64,
}

/// Fetches a challenge and solves it off the async threads. `Err` carries
/// the code to count.
pub async fn solve_challenge(
    http: &Http,
    node: usize,
    show_id: &str,
    token: &str,
) -> Result<Solved, String> {
    let path = format!("/v1/shows/{show_id}/queue/challenge");
    let answer = http.send(node, Call::get(&path).token(token)).await;
    let answer = match answer {
        Ok(answer) if answer.status.as_u16() == 200 => answer,
        Ok(answer) => return Err(format!("challenge:{}", answer.code())),
        Err(error) => return Err(format!("challenge:{}", error.code)),
    };
    let body = answer.json().unwrap_or(Value::Null);
    let challenge = body.get("challenge").and_then(Value::as_str);
    let difficulty = body.get("difficulty").and_then(Value::as_u64);
    let algorithm = body.get("algorithm").and_then(Value::as_str);
    let (Some(challenge), Some(difficulty), Some("sha256")) = (challenge, difficulty, algorithm)
    else {
        return Err("challenge:malformed".into());
    };
    let difficulty = u32::try_from(difficulty).unwrap_or(u32::MAX);
    if difficulty > pow::DIFFICULTY_MAX {
        return Err("challenge:difficulty_out_of_range".into());
    }
    let challenge = challenge.to_string();
    // Hashing is CPU work: on the blocking pool it cannot stall the
    // runtime's threads that drive every other client.
    let solving = tokio::task::spawn_blocking(move || {
        let started = std::time::Instant::now();
        let nonce = pow::solve(&challenge, difficulty, pow::tries_for(difficulty));
        (challenge, nonce, started.elapsed())
    })
    .await;
    match solving {
        Ok((challenge, Some(nonce), elapsed)) => Ok(Solved {
            body: json!({"pow": {"challenge": challenge, "nonce": nonce.to_string()}}),
            solve_microseconds: u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX),
        }),
        Ok((_, None, _)) => Err("pow:unsolved".into()),
        Err(_) => Err("pow:solver_failed".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_contracts_ticket() {
        let waiting = json!({"id": "qtk_1", "show_id": "shw_1", "status": "WAITING",
            "position": 1532, "estimated_wait_seconds": 46,
            "admission_token": null, "admission_expires_at": null});
        let ticket = QueueTicket::from_answer(&waiting).expect("a ticket");
        assert_eq!(ticket.status, Status::Waiting);
        assert_eq!((ticket.position, ticket.estimated_wait_seconds), (1532, 46));
        let admitted = json!({"id": "qtk_1", "status": "ADMITTED", "position": 0,
            "estimated_wait_seconds": 0, "admission_token": "adm.x",
            "admission_expires_at": "2026-01-01T00:00:00Z"});
        let ticket = QueueTicket::from_answer(&admitted).expect("a ticket");
        assert_eq!(ticket.admission_token.as_deref(), Some("adm.x"));
    }

    #[test]
    fn refuses_what_breaks_the_contract() {
        for body in [
            json!({"id": "qtk_1", "status": "LOST", "position": 1, "estimated_wait_seconds": 1}),
            json!({"id": "qtk_1", "status": "WAITING", "position": -1, "estimated_wait_seconds": 1}),
            json!({"status": "WAITING", "position": 1, "estimated_wait_seconds": 1}),
            // Admitted without a token is of no use to a buyer.
            json!({"id": "qtk_1", "status": "ADMITTED", "position": 0,
                   "estimated_wait_seconds": 0, "admission_token": null}),
            json!([]),
        ] {
            assert_eq!(QueueTicket::from_answer(&body), None, "{body}");
        }
    }
}
