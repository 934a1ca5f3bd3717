//! What the index keeps in memory beside tantivy, per event: the filters'
//! keys (genre, and each live show's city and start) and what a suggestion
//! shows. Events get a slot, a small number stored in their tantivy
//! document, so that a hit finds its entry without a lookup by ID.

use std::collections::hash_map::DefaultHasher;
use std::collections::HashMap;
use std::hash::{Hash, Hasher};

use boxoffice_domain::{EventId, ShowStatus};
use boxoffice_store::SearchDocument;
use chrono::{DateTime, Utc};

/// The slot of an event: its position in [`Entries::slots`].
pub type Slot = u32;

/// The filters of a search besides its words.
#[derive(Debug, Clone, Default)]
pub struct SearchFilter {
    pub city: Option<String>,
    pub genre: Option<String>,
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
}

impl SearchFilter {
    /// The filter with its city and genre in the form the entries keep.
    pub(crate) fn normalized(&self) -> NormalizedFilter {
        NormalizedFilter {
            city: self.city.as_deref().map(key_of),
            genre: self.genre.as_deref().map(key_of),
            from_ms: self.from.map(|t| t.timestamp_millis()),
            to_ms: self.to.map(|t| t.timestamp_millis()),
        }
    }
}

#[derive(Debug, Clone, Default)]
pub(crate) struct NormalizedFilter {
    pub(crate) city: Option<String>,
    pub(crate) genre: Option<String>,
    from_ms: Option<i64>,
    to_ms: Option<i64>,
}

impl NormalizedFilter {
    fn needs_a_show(&self) -> bool {
        self.city.is_some() || self.from_ms.is_some() || self.to_ms.is_some()
    }

    /// As the store's `list_events`: the genre is the event's, and city,
    /// `from` and `to` must all hold for one show that is not cancelled.
    pub(crate) fn matches(&self, entry: &Entry) -> bool {
        if self
            .genre
            .as_ref()
            .is_some_and(|genre| *genre != entry.genre_key)
        {
            return false;
        }
        if !self.needs_a_show() {
            return true;
        }
        entry.shows.iter().any(|show| {
            self.city.as_ref().is_none_or(|city| *city == show.city_key)
                && self.from_ms.is_none_or(|from| show.starts_at_ms >= from)
                && self.to_ms.is_none_or(|to| show.starts_at_ms <= to)
        })
    }
}

/// How cities and genres compare: trimmed, case-insensitive.
pub(crate) fn key_of(text: &str) -> String {
    text.trim().to_lowercase()
}

#[derive(Debug, Clone)]
pub(crate) struct ShowKey {
    pub(crate) starts_at_ms: i64,
    pub(crate) city_key: String,
}

/// One event as the index knows it.
#[derive(Debug, Clone)]
pub(crate) struct Entry {
    pub(crate) id: EventId,
    pub(crate) title: String,
    pub(crate) performer: String,
    pub(crate) genre: String,
    pub(crate) genre_key: String,
    /// Shows that are not cancelled, by start.
    pub(crate) shows: Vec<ShowKey>,
}

impl Entry {
    pub(crate) fn of(document: &SearchDocument) -> Entry {
        let mut shows: Vec<ShowKey> = document
            .shows
            .iter()
            .filter(|show| show.status != ShowStatus::Cancelled)
            .map(|show| ShowKey {
                starts_at_ms: show.starts_at.timestamp_millis(),
                city_key: key_of(&show.city),
            })
            .collect();
        shows.sort_by_key(|show| show.starts_at_ms);
        Entry {
            id: document.event.id.clone(),
            title: document.event.title.clone(),
            performer: document.event.performer.clone(),
            genre: document.event.genre.clone(),
            genre_key: key_of(&document.event.genre),
            shows,
        }
    }

    /// The start of the next live show at or after `now_ms`; `i64::MAX` when
    /// there is none, so that such events come last among equals.
    pub(crate) fn next_show_ms(&self, now_ms: i64) -> i64 {
        let index = self
            .shows
            .partition_point(|show| show.starts_at_ms < now_ms);
        self.shows
            .get(index)
            .map(|show| show.starts_at_ms)
            .unwrap_or(i64::MAX)
    }
}

/// What of a document the index shows: a change of anything else (prices,
/// sales start, …) needs no re-indexing.
pub(crate) fn fingerprint(document: &SearchDocument) -> u64 {
    let mut hasher = DefaultHasher::new();
    let event = &document.event;
    (
        &event.title,
        &event.description,
        &event.performer,
        &event.genre,
        &event.tags,
    )
        .hash(&mut hasher);
    for show in &document.shows {
        (
            show.id.as_str(),
            show.starts_at.timestamp_millis(),
            show.status.as_str(),
            &show.venue_name,
            &show.city,
        )
            .hash(&mut hasher);
    }
    hasher.finish()
}

/// Every event the index knows, by slot.
#[derive(Default)]
pub(crate) struct Entries {
    by_id: HashMap<EventId, Slot>,
    /// `None` for a slot given out whose document is not indexed yet.
    slots: Vec<Option<(u64, Entry)>>,
}

impl Entries {
    pub(crate) fn get(&self, slot: Slot) -> Option<&Entry> {
        self.slots
            .get(slot as usize)
            .and_then(|entry| entry.as_ref())
            .map(|(_, entry)| entry)
    }

    pub(crate) fn len(&self) -> usize {
        self.by_id.len()
    }

    /// The slot of the event, and whether `fingerprint` differs from what
    /// is indexed (always true for a new event, which gets a new slot).
    pub(crate) fn slot_for(&mut self, id: &EventId, fingerprint: u64) -> (Slot, bool) {
        if let Some(&slot) = self.by_id.get(id) {
            let indexed = self
                .slots
                .get(slot as usize)
                .and_then(|entry| entry.as_ref())
                .map(|(indexed, _)| *indexed);
            return (slot, indexed != Some(fingerprint));
        }
        let slot = Slot::try_from(self.slots.len()).unwrap_or(Slot::MAX);
        self.slots.push(None);
        self.by_id.insert(id.clone(), slot);
        (slot, true)
    }

    pub(crate) fn set(&mut self, slot: Slot, fingerprint: u64, entry: Entry) {
        if let Some(place) = self.slots.get_mut(slot as usize) {
            *place = Some((fingerprint, entry));
        }
    }

    /// Forgets what was indexed in `slot`, so that the next look re-indexes
    /// it (after a failed index write).
    pub(crate) fn invalidate(&mut self, slot: Slot) {
        if let Some(Some((fingerprint, _))) = self.slots.get_mut(slot as usize) {
            *fingerprint = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use boxoffice_domain::ShowId;
    use boxoffice_store::{EventRecord, SearchShow};
    use chrono::TimeZone;

    fn at(day: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2030, 1, day, 20, 0, 0)
            .single()
            .unwrap()
    }

    fn document(shows: &[(u32, &str, ShowStatus)]) -> SearchDocument {
        SearchDocument {
            event: EventRecord {
                id: EventId::from_trusted("evt_1".into()),
                title: "Title".into(),
                description: String::new(),
                performer: String::new(),
                genre: "Jazz".into(),
                tags: Vec::new(),
                created_at: at(1),
                updated_at: at(1),
            },
            shows: shows
                .iter()
                .enumerate()
                .map(|(index, (day, city, status))| SearchShow {
                    id: ShowId::from_trusted(format!("shw_{index}")),
                    starts_at: at(*day),
                    status: *status,
                    venue_name: "Hall".into(),
                    city: city.to_string(),
                    updated_at: at(1),
                })
                .collect(),
        }
    }

    fn filter(city: Option<&str>, from: Option<u32>, to: Option<u32>) -> NormalizedFilter {
        SearchFilter {
            city: city.map(str::to_string),
            genre: None,
            from: from.map(at),
            to: to.map(at),
        }
        .normalized()
    }

    #[test]
    fn city_and_dates_must_hold_for_the_same_show() {
        let entry = Entry::of(&document(&[
            (5, "Berlin", ShowStatus::OnSale),
            (20, "Munich", ShowStatus::OnSale),
        ]));
        assert!(filter(Some("berlin"), None, Some(10)).matches(&entry));
        assert!(filter(Some("MUNICH"), Some(10), None).matches(&entry));
        assert!(
            !filter(Some("Berlin"), Some(10), None).matches(&entry),
            "the Berlin show is before the 10th; the show after it is in Munich"
        );
        assert!(filter(None, Some(6), Some(25)).matches(&entry));
        assert!(!filter(None, Some(21), None).matches(&entry));
    }

    #[test]
    fn cancelled_shows_match_no_filter_and_are_never_next() {
        let entry = Entry::of(&document(&[
            (5, "Berlin", ShowStatus::Cancelled),
            (9, "Munich", ShowStatus::Paused),
        ]));
        assert!(!filter(Some("Berlin"), None, None).matches(&entry));
        assert!(filter(Some("Munich"), None, None).matches(&entry));
        assert_eq!(entry.next_show_ms(0), at(9).timestamp_millis());
        assert_eq!(entry.next_show_ms(at(10).timestamp_millis()), i64::MAX);
    }

    #[test]
    fn genre_compares_without_case() {
        let entry = Entry::of(&document(&[]));
        let jazz = SearchFilter {
            genre: Some(" jAZZ ".into()),
            ..SearchFilter::default()
        };
        assert!(jazz.normalized().matches(&entry));
        let rock = SearchFilter {
            genre: Some("rock".into()),
            ..SearchFilter::default()
        };
        assert!(!rock.normalized().matches(&entry));
        assert!(
            !filter(Some("Berlin"), None, None).matches(&entry),
            "no show"
        );
    }

    #[test]
    fn the_fingerprint_ignores_what_the_index_does_not_show() {
        let mut document = document(&[(5, "Berlin", ShowStatus::OnSale)]);
        let before = fingerprint(&document);
        document.event.updated_at = at(2);
        document.shows[0].updated_at = at(2);
        assert_eq!(fingerprint(&document), before);
        document.shows[0].status = ShowStatus::Cancelled;
        assert_ne!(fingerprint(&document), before);
    }

    #[test]
    fn slots_are_stable_and_new_events_get_new_ones() {
        let mut entries = Entries::default();
        let first = EventId::from_trusted("evt_a".into());
        let second = EventId::from_trusted("evt_b".into());
        assert_eq!(entries.slot_for(&first, 7), (0, true));
        assert_eq!(entries.slot_for(&second, 7), (1, true));
        let entry = Entry::of(&document(&[]));
        entries.set(0, 7, entry.clone());
        assert_eq!(entries.slot_for(&first, 7), (0, false), "unchanged");
        assert_eq!(entries.slot_for(&first, 8), (0, true), "changed");
        entries.invalidate(0);
        assert_eq!(entries.slot_for(&first, 7), (0, true), "forgotten");
        assert!(entries.get(1).is_none(), "not indexed yet");
        assert_eq!(entries.len(), 2);
    }
}
