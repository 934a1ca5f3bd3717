//! The index without a store: documents in, ranked slots out.

use boxoffice_domain::{EventId, ShowId, ShowStatus};
use boxoffice_store::{EventRecord, SearchDocument, SearchShow};
use chrono::{DateTime, TimeZone, Utc};

use super::entries::SearchFilter;
use super::index::{FieldSet, IndexQuery, SearchIndex};
use super::query;

fn day(day: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2030, 3, day, 20, 0, 0)
        .single()
        .unwrap()
}

struct Event<'a> {
    id: &'a str,
    title: &'a str,
    performer: &'a str,
    description: &'a str,
    genre: &'a str,
    tags: &'a [&'a str],
    /// (day, venue, city, status)
    shows: &'a [(u32, &'a str, &'a str, ShowStatus)],
}

impl Event<'_> {
    fn document(&self) -> SearchDocument {
        SearchDocument {
            event: EventRecord {
                id: EventId::from_trusted(self.id.into()),
                title: self.title.into(),
                description: self.description.into(),
                performer: self.performer.into(),
                genre: self.genre.into(),
                tags: self.tags.iter().map(|t| t.to_string()).collect(),
                created_at: day(1),
                updated_at: day(1),
            },
            shows: self
                .shows
                .iter()
                .enumerate()
                .map(|(index, (on, venue, city, status))| SearchShow {
                    id: ShowId::from_trusted(format!("shw_{}_{index}", self.id)),
                    starts_at: day(*on),
                    status: *status,
                    venue_name: venue.to_string(),
                    city: city.to_string(),
                    updated_at: day(1),
                })
                .collect(),
        }
    }
}

const ON_SALE: ShowStatus = ShowStatus::OnSale;

fn catalog() -> Vec<SearchDocument> {
    [
        Event {
            id: "evt_coldplay",
            title: "Coldplay: Music of the Spheres",
            performer: "Coldplay",
            description: "Stadium pop with lasers.",
            genre: "Pop",
            tags: &["stadium", "british"],
            shows: &[(10, "Olympiastadion", "Berlin", ON_SALE)],
        },
        Event {
            id: "evt_moonlight",
            title: "Moonlight Quartet",
            performer: "The Moonlighters",
            description: "Strings by candlelight.",
            genre: "Classical",
            tags: &[],
            shows: &[
                (5, "Kammermusiksaal", "Berlin", ON_SALE),
                (20, "Elbphilharmonie", "Hamburg", ON_SALE),
            ],
        },
        Event {
            id: "evt_harbour_title",
            title: "Harbour Lights",
            performer: "Dock Band",
            description: "An evening of sea shanties.",
            genre: "Folk",
            tags: &[],
            shows: &[(25, "Fischmarkt", "Hamburg", ON_SALE)],
        },
        Event {
            id: "evt_harbour_description",
            title: "Sea Shanty Night",
            performer: "The Riggers",
            description: "Songs from the old harbour, sung by the riggers of the port.",
            genre: "Folk",
            tags: &[],
            shows: &[(3, "Hafenklang", "Hamburg", ON_SALE)],
        },
        Event {
            id: "evt_beyonce",
            title: "Renaissance",
            performer: "Beyoncé",
            description: "",
            genre: "Pop",
            tags: &[],
            shows: &[(12, "Arena", "München", ShowStatus::Cancelled)],
        },
    ]
    .iter()
    .map(Event::document)
    .collect()
}

fn index() -> SearchIndex {
    let index = SearchIndex::new().unwrap();
    assert_eq!(index.apply(&catalog()).unwrap(), 5);
    index
}

fn find(index: &SearchIndex, text: &str, filter: &SearchFilter, fields: FieldSet) -> Vec<String> {
    let words = query::plan(text, query::words_of(index.analyzer(), text));
    let hits = index
        .search(&IndexQuery {
            words: &words,
            fields,
            filter: &filter.normalized(),
            now_ms: day(1).timestamp_millis(),
            depth: 10,
        })
        .unwrap();
    let entries = index.entries.read().unwrap();
    hits.iter()
        .map(|hit| entries.get(hit.slot).unwrap().id.to_string())
        .collect()
}

fn search(index: &SearchIndex, text: &str) -> Vec<String> {
    find(index, text, &SearchFilter::default(), FieldSet::Everything)
}

#[test]
fn exact_words_and_typos_find_the_event() {
    let index = index();
    for text in [
        "coldplay",
        "Coldplay",
        "coldpay",
        "colplay",
        "cloudplay",
        "COLDPLAY spheres",
    ] {
        assert_eq!(search(&index, text), ["evt_coldplay"], "{text:?}");
    }
    assert_eq!(search(&index, "moonlihgt"), ["evt_moonlight"]);
    assert_eq!(search(&index, "moonlihgt quartet"), ["evt_moonlight"]);
}

#[test]
fn the_word_being_typed_is_a_prefix() {
    let index = index();
    assert_eq!(search(&index, "cold"), ["evt_coldplay"]);
    assert_eq!(search(&index, "MOONLI"), ["evt_moonlight"]);
    assert_eq!(
        search(&index, "cold "),
        Vec::<String>::new(),
        "a finished word is no prefix"
    );
}

#[test]
fn descriptions_match_whole_words_and_typos_but_no_prefixes() {
    let index = index();
    assert_eq!(search(&index, "lasers"), ["evt_coldplay"]);
    assert_eq!(search(&index, "lazers"), ["evt_coldplay"]);
    assert!(search(&index, "lase").is_empty(), "type-ahead is for names");
    assert_eq!(
        search(&index, "stadi"),
        ["evt_coldplay"],
        "a tag takes prefixes"
    );
}

#[test]
fn every_word_must_match() {
    let index = index();
    assert_eq!(search(&index, "moonlight quartet"), ["evt_moonlight"]);
    assert!(search(&index, "moonlight coldplay").is_empty());
    assert!(search(&index, "zzzyyyxxxqqq").is_empty());
}

#[test]
fn folded_accents_and_venues_and_cities_are_searchable() {
    let index = index();
    assert_eq!(search(&index, "beyonce"), ["evt_beyonce"]);
    assert_eq!(search(&index, "Beyoncé"), ["evt_beyonce"]);
    assert_eq!(search(&index, "elbphilharmonie"), ["evt_moonlight"]);
    assert_eq!(
        search(&index, "munchen"),
        Vec::<String>::new(),
        "the only München show is cancelled"
    );
    let mut hamburg = search(&index, "hamburg");
    hamburg.sort();
    assert_eq!(
        hamburg,
        [
            "evt_harbour_description",
            "evt_harbour_title",
            "evt_moonlight"
        ]
    );
}

#[test]
fn a_title_match_ranks_before_a_description_match() {
    let index = index();
    assert_eq!(
        search(&index, "harbour"),
        ["evt_harbour_title", "evt_harbour_description"]
    );
}

#[test]
fn equal_relevance_ranks_the_next_show_first() {
    let index = index();
    // Both are matched through their city only, equally: the Hamburg show
    // of the description one is on the 3rd, the title one's on the 25th.
    let folk = SearchFilter {
        genre: Some("folk".into()),
        ..SearchFilter::default()
    };
    assert_eq!(
        find(&index, "hamburg ", &folk, FieldSet::Everything),
        ["evt_harbour_description", "evt_harbour_title"]
    );
}

#[test]
fn filters_combine_with_words() {
    let index = index();
    let filter = |city: Option<&str>, genre: Option<&str>, from: Option<u32>, to: Option<u32>| {
        SearchFilter {
            city: city.map(str::to_string),
            genre: genre.map(str::to_string),
            from: from.map(day),
            to: to.map(day),
        }
    };
    let moon = |f: SearchFilter| find(&index, "moonlight", &f, FieldSet::Everything);
    assert_eq!(
        moon(filter(Some("hamburg"), None, None, None)),
        ["evt_moonlight"]
    );
    assert!(moon(filter(Some("Munich"), None, None, None)).is_empty());
    assert_eq!(
        moon(filter(None, Some("CLASSICAL"), None, None)),
        ["evt_moonlight"]
    );
    assert!(moon(filter(None, Some("pop"), None, None)).is_empty());
    assert_eq!(moon(filter(None, None, Some(15), None)), ["evt_moonlight"]);
    assert!(moon(filter(None, None, Some(21), None)).is_empty());
    assert!(
        moon(filter(Some("Berlin"), None, Some(15), None)).is_empty(),
        "city and date must hold for one show"
    );
    assert_eq!(
        moon(filter(Some("Berlin"), None, None, Some(6))),
        ["evt_moonlight"]
    );
}

#[test]
fn suggestions_look_at_titles_and_performers_only() {
    let index = index();
    let suggest = |text: &str| {
        find(
            &index,
            text,
            &SearchFilter::default(),
            FieldSet::TitlesAndPerformers,
        )
    };
    assert_eq!(suggest("col"), ["evt_coldplay"]);
    assert_eq!(suggest("the moon"), ["evt_moonlight"]);
    assert!(suggest("hamburg").is_empty(), "a city is not a title");
    assert!(suggest("lasers").is_empty(), "nor is a description");
}

#[test]
fn an_update_replaces_the_document_and_unchanged_ones_are_skipped() {
    let index = index();
    let mut documents = catalog();
    assert_eq!(index.apply(&documents).unwrap(), 0, "nothing changed");
    documents[0].event.title = "Lightning Horns".into();
    documents[0].event.performer = "Brass".into();
    assert_eq!(index.apply(&documents).unwrap(), 1);
    assert_eq!(search(&index, "lightning"), ["evt_coldplay"]);
    assert!(
        search(&index, "spheres").is_empty(),
        "the old title is gone"
    );
    documents[0].shows[0].status = ShowStatus::Cancelled;
    assert_eq!(index.apply(&documents).unwrap(), 1);
    let berlin = SearchFilter {
        city: Some("Berlin".into()),
        ..SearchFilter::default()
    };
    assert!(find(&index, "lightning", &berlin, FieldSet::Everything).is_empty());
    assert_eq!(index.events(), 5);
    index.merge_segments().unwrap();
    assert_eq!(search(&index, "lightning"), ["evt_coldplay"], "merged");
    assert!(
        search(&index, "spheres").is_empty(),
        "deletes survive the merge"
    );
    assert_eq!(search(&index, "moonlihgt"), ["evt_moonlight"]);
}

#[test]
fn hostile_text_is_just_words_or_nothing() {
    let index = index();
    // Query-parser syntax means nothing: these are words (or nothing).
    assert!(search(&index, "title:coldplay OR *").is_empty());
    assert!(search(&index, "+coldplay -moonlight").is_empty());
    assert!(search(&index, "coldplay^100").is_empty(), "100 is a word");
    for text in ["\"coldplay", "coldplay)", "(coldplay", "coldplay~"] {
        assert_eq!(search(&index, text), ["evt_coldplay"], "{text:?}");
    }
    for text in ["🎸🎸", "!!!", "", "   ", "שלום", "مرحبا", "中文演唱会"] {
        assert!(search(&index, text).is_empty(), "{text:?}");
    }
    let long = "x".repeat(200);
    assert!(search(&index, &long).is_empty());
}

#[test]
fn right_to_left_and_other_scripts_are_indexed() {
    let index = index();
    let document = Event {
        id: "evt_rtl",
        title: "ליל מוזיקה",
        performer: "فرقة القمر",
        description: "",
        genre: "",
        tags: &[],
        shows: &[],
    }
    .document();
    assert_eq!(index.apply(&[document]).unwrap(), 1);
    assert_eq!(search(&index, "מוזיקה"), ["evt_rtl"]);
    assert_eq!(search(&index, "القمر"), ["evt_rtl"]);
}
