//! Full-text, typo-tolerant event search (`GET /v1/events?q=…`) and
//! type-ahead (`GET /v1/events/suggest`), from an in-process tantivy index
//! per node. See docs/adr/0015-search-index.md.
//!
//! # Layout
//! - [`query`]: the words of a query and how loosely each may match
//!   (edits by length, prefix for the word being typed), and the tantivy
//!   query built from them. No query parser sees user text.
//! - [`entries`]: what the index keeps beside tantivy per event (filter
//!   keys, live shows, suggestion text) and the filters' semantics.
//! - `index`: the tantivy index in RAM, writing, and the ranking collector
//!   (relevance, then the next show, then age).
//! - [`EventSearch`] (here): the index kept current. Built from the store at
//!   start; this node's creates and updates are indexed before their answer
//!   goes out ([`EventSearch::refresh_event`]); every node also asks the
//!   store every [`POLL_INTERVAL`] for what changed since its last look
//!   ([`EventSearch::poll_changes`], so other nodes' changes show within a
//!   second), and re-reads everything every [`RESYNC_INTERVAL`] as a safety
//!   net.

pub mod entries;
mod index;
pub mod query;

use std::sync::Arc;
use std::time::{Duration, Instant};

use boxoffice_domain::EventId;
use boxoffice_store::{SearchDocument, SearchScope, Store, SEARCH_PAGE_EVENTS_MAX};
use chrono::{DateTime, Utc};
use serde::Serialize;
use tokio::sync::{watch, Mutex, Semaphore};
use utoipa::ToSchema;

pub use entries::SearchFilter;
use index::{FieldSet, IndexQuery, SearchIndex};
pub use query::QUERY_WORDS_MAX;

use crate::clock::Clock;
use crate::error::{ServiceError, ServiceResult};
use crate::views::rfc3339;

/// How often each node asks the store for events changed elsewhere: other
/// nodes' changes are searchable here within this plus one store read.
pub const POLL_INTERVAL: Duration = Duration::from_millis(500);
/// Each look reaches this far behind the previous one, for writes that
/// committed after the look although stamped before it (a show with a big
/// venue takes a while to insert) and for nodes whose clocks are a little
/// behind. Events changed within it are read again but re-indexed only if
/// their content differs.
pub const POLL_OVERLAP: Duration = Duration::from_secs(5);
/// How often everything is read again and compared, in case a change was
/// missed anyway (a clock more than `POLL_OVERLAP` behind, a write that took
/// longer to commit).
pub const RESYNC_INTERVAL: Duration = Duration::from_secs(600);
/// Ranked results can be paged this deep; past it, `next_cursor` is null
/// (narrow the query instead). Bounds the work of every page.
pub const RESULTS_DEPTH_MAX: usize = 1_000;
/// A full read that re-indexed at least this many events (the build)
/// merges the index into one segment afterwards.
const MERGE_AFTER_CHANGES_MIN: usize = 1_000;
/// `GET /v1/events/suggest`: suggestions per answer, by default and at most.
pub const SUGGEST_LIMIT_DEFAULT: usize = 8;
pub const SUGGEST_LIMIT_MAX: usize = 20;
/// Queries running at once per node; the rest wait their turn. A query is
/// CPU work of about a millisecond on a blocking thread: more at once than
/// a few per core only adds threads and switching.
const QUERIES_AT_ONCE_MAX: usize = 8;

/// One ranked page of event IDs.
#[derive(Debug, Clone)]
pub struct SearchPage {
    pub event_ids: Vec<EventId>,
    /// Whether there are more results after this page (within the depth).
    pub more: bool,
}

/// One type-ahead suggestion.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SuggestionView {
    pub event_id: String,
    pub title: String,
    pub performer: String,
    pub genre: String,
    /// The start of the event's next show that is not cancelled, if any.
    pub next_show_at: Option<String>,
}

/// `GET /v1/events/suggest`: the best matches first.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SuggestionsView {
    pub items: Vec<SuggestionView>,
}

/// Where an index update came from (a metrics label).
#[derive(Debug, Clone, Copy)]
enum UpdateSource {
    /// This node's own create or update.
    Local,
    /// The poll for other nodes' changes.
    Poll,
    /// Building, or the periodic full re-read.
    Resync,
}

impl UpdateSource {
    fn as_str(self) -> &'static str {
        match self {
            UpdateSource::Local => "local",
            UpdateSource::Poll => "poll",
            UpdateSource::Resync => "resync",
        }
    }
}

pub struct EventSearch {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    index: Arc<SearchIndex>,
    /// Serializes read-from-store-then-index, so that an older read never
    /// overwrites a newer one; holds when the last poll started.
    sync: Mutex<Option<DateTime<Utc>>>,
    /// Bounds the queries on blocking threads (`QUERIES_AT_ONCE_MAX`).
    queries: Semaphore,
}

fn internal(error: impl std::fmt::Display) -> ServiceError {
    ServiceError::Internal(format!("search index: {error}"))
}

impl EventSearch {
    /// An index of every event in the store.
    pub async fn build(store: Arc<dyn Store>, clock: Arc<dyn Clock>) -> ServiceResult<EventSearch> {
        let index = tokio::task::spawn_blocking(SearchIndex::new)
            .await
            .map_err(internal)?
            .map_err(internal)?;
        let search = EventSearch {
            store,
            clock,
            index: Arc::new(index),
            sync: Mutex::new(None),
            queries: Semaphore::new(QUERIES_AT_ONCE_MAX),
        };
        let started = Instant::now();
        search.resync_all().await?;
        tracing::info!(
            events = search.index.events(),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "search index built"
        );
        Ok(search)
    }

    /// Events indexed.
    pub fn events(&self) -> usize {
        self.index.events()
    }

    /// Re-indexes one event now (this node created or changed it, or one of
    /// its shows).
    #[tracing::instrument(skip_all, fields(event_id = %event_id), err)]
    pub async fn refresh_event(&self, event_id: &EventId) -> ServiceResult<()> {
        let _sync = self.sync.lock().await;
        let documents = self
            .store
            .search_documents(SearchScope::Event(event_id))
            .await?;
        self.apply(documents, UpdateSource::Local).await?;
        Ok(())
    }

    /// Indexes what changed in the store since the last look (other nodes'
    /// creates and updates).
    pub async fn poll_changes(&self) -> ServiceResult<()> {
        let mut last_poll = self.sync.lock().await;
        let started = self.clock.now();
        let since = last_poll.unwrap_or(started) - POLL_OVERLAP;
        let documents = self
            .store
            .search_documents(SearchScope::ChangedSince(since))
            .await?;
        self.apply(documents, UpdateSource::Poll).await?;
        *last_poll = Some(started);
        Ok(())
    }

    /// Reads every event again, a page at a time, and indexes those that
    /// differ.
    pub async fn resync_all(&self) -> ServiceResult<()> {
        let mut last_poll = self.sync.lock().await;
        let started = self.clock.now();
        let mut after: Option<EventId> = None;
        let mut changed = 0;
        loop {
            let documents = self
                .store
                .search_documents(SearchScope::All {
                    after: after.as_ref(),
                    limit: SEARCH_PAGE_EVENTS_MAX,
                })
                .await?;
            let full_page = documents.len() >= SEARCH_PAGE_EVENTS_MAX as usize;
            after = documents.last().map(|document| document.event.id.clone());
            changed += self.apply(documents, UpdateSource::Resync).await?;
            if !full_page {
                break;
            }
        }
        if changed >= MERGE_AFTER_CHANGES_MIN {
            let index = self.index.clone();
            let merged = tokio::task::spawn_blocking(move || index.merge_segments())
                .await
                .map_err(internal)?;
            if let Err(error) = merged {
                // Only slower queries until tantivy's own merges catch up.
                tracing::warn!(%error, "could not merge the search index's segments");
            }
        }
        if last_poll.is_none() {
            *last_poll = Some(started);
        }
        Ok(())
    }

    /// Bytes of the tantivy index (its segments in RAM).
    pub fn index_bytes(&self) -> u64 {
        self.index.bytes()
    }

    /// Indexes the documents that changed; returns how many did.
    async fn apply(
        &self,
        documents: Vec<SearchDocument>,
        source: UpdateSource,
    ) -> ServiceResult<usize> {
        if documents.is_empty() {
            return Ok(0);
        }
        let index = self.index.clone();
        let changed = tokio::task::spawn_blocking(move || index.apply(&documents))
            .await
            .map_err(internal)?
            .map_err(internal)?;
        if changed > 0 {
            metrics::counter!("boxoffice_search_index_updates_total", "source" => source.as_str())
                .increment(changed as u64);
            metrics::gauge!("boxoffice_search_index_events").set(self.index.events() as f64);
            metrics::gauge!("boxoffice_search_index_bytes").set(self.index.bytes() as f64);
            tracing::debug!(changed, source = source.as_str(), "search index updated");
        }
        Ok(changed)
    }

    /// One page of the events matching `text` and `filter`, best first,
    /// starting at rank `offset`. `text` has been validated
    /// ([`validate_query`]).
    pub async fn search(
        &self,
        text: &str,
        filter: &SearchFilter,
        offset: usize,
        limit: usize,
    ) -> ServiceResult<SearchPage> {
        let depth = (offset + limit + 1).min(RESULTS_DEPTH_MAX);
        let hits = self
            .run(text, filter, FieldSet::Everything, depth, "search")
            .await?;
        let more = hits.len() > offset + limit;
        let entries = self.index.entries.read().map_err(internal)?;
        let event_ids = hits
            .iter()
            .skip(offset)
            .take(limit)
            .filter_map(|hit| entries.get(hit.slot).map(|entry| entry.id.clone()))
            .collect();
        Ok(SearchPage { event_ids, more })
    }

    /// Type-ahead: events whose title or performer match `text`, the word
    /// being typed as a prefix.
    pub async fn suggest(&self, text: &str, limit: usize) -> ServiceResult<SuggestionsView> {
        let now_ms = self.clock.now().timestamp_millis();
        let hits = self
            .run(
                text,
                &SearchFilter::default(),
                FieldSet::TitlesAndPerformers,
                limit,
                "suggest",
            )
            .await?;
        let entries = self.index.entries.read().map_err(internal)?;
        let items = hits
            .iter()
            .filter_map(|hit| entries.get(hit.slot))
            .map(|entry| SuggestionView {
                event_id: entry.id.to_string(),
                title: entry.title.clone(),
                performer: entry.performer.clone(),
                genre: entry.genre.clone(),
                next_show_at: match entry.next_show_ms(now_ms) {
                    i64::MAX => None,
                    ms => DateTime::from_timestamp_millis(ms).map(rfc3339),
                },
            })
            .collect();
        Ok(SuggestionsView { items })
    }

    async fn run(
        &self,
        text: &str,
        filter: &SearchFilter,
        fields: FieldSet,
        depth: usize,
        kind: &'static str,
    ) -> ServiceResult<Vec<index::Hit>> {
        let started = Instant::now();
        let words = query::plan(text, query::words_of(self.index.analyzer(), text));
        let index = self.index.clone();
        let filter = filter.normalized();
        let now_ms = self.clock.now().timestamp_millis();
        let _turn = self.queries.acquire().await.map_err(internal)?;
        let hits = tokio::task::spawn_blocking(move || {
            index.search(&IndexQuery {
                words: &words,
                fields,
                filter: &filter,
                now_ms,
                depth,
            })
        })
        .await
        .map_err(internal)?
        .map_err(internal)?;
        metrics::counter!("boxoffice_search_queries_total", "kind" => kind).increment(1);
        metrics::histogram!("boxoffice_search_query_duration_seconds", "kind" => kind)
            .record(started.elapsed().as_secs_f64());
        Ok(hits)
    }
}

/// Checks a query's text: at most `length_max` characters, no control
/// characters, at most [`QUERY_WORDS_MAX`] words. Returns whether it has
/// any words at all (a query of only punctuation or emoji matches nothing).
pub fn validate_query(search: &EventSearch, text: &str, length_max: usize) -> ServiceResult<bool> {
    if text.chars().count() > length_max {
        return Err(ServiceError::invalid(
            "q",
            format!("at most {length_max} characters"),
        ));
    }
    if text.chars().any(char::is_control) {
        return Err(ServiceError::invalid(
            "q",
            "must not contain control characters",
        ));
    }
    let words = query::words_of(search.index.analyzer(), text).len();
    if words > QUERY_WORDS_MAX {
        return Err(ServiceError::invalid(
            "q",
            format!("at most {QUERY_WORDS_MAX} words"),
        ));
    }
    Ok(words > 0)
}

/// Keeps every node's index current until `shutdown` flips: polls the
/// store every [`POLL_INTERVAL`] and re-reads everything every
/// [`RESYNC_INTERVAL`].
pub async fn run(search: Arc<EventSearch>, mut shutdown: watch::Receiver<bool>) {
    let mut poll = tokio::time::interval(POLL_INTERVAL);
    let mut resync = tokio::time::interval(RESYNC_INTERVAL);
    poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    resync.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // The first ticks fire at once; the index was just built.
    resync.tick().await;
    loop {
        tokio::select! {
            _ = shutdown.changed() => break,
            _ = poll.tick() => {
                if let Err(error) = search.poll_changes().await {
                    tracing::warn!(%error, "search index poll failed; retrying next tick");
                }
            }
            _ = resync.tick() => {
                if let Err(error) = search.resync_all().await {
                    tracing::warn!(%error, "search index re-read failed; retrying next time");
                }
            }
        }
    }
}

#[cfg(test)]
mod tests;
