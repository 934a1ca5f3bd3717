//! The tantivy index (in RAM) and the in-memory entries beside it: writing
//! documents, and running a query through the ranking collector. Everything
//! here is synchronous; `EventSearch` calls it on blocking threads.

use std::sync::{Arc, Mutex, RwLock};

use boxoffice_store::SearchDocument;
use tantivy::collector::{Collector, SegmentCollector};
use tantivy::columnar::Column;
use tantivy::query::{BooleanQuery, Occur, Query, TermQuery};
use tantivy::schema::{
    Field, IndexRecordOption, Schema, TextFieldIndexing, TextOptions, FAST, INDEXED, STRING,
};
use tantivy::tokenizer::{
    AsciiFoldingFilter, LowerCaser, RemoveLongFilter, SimpleTokenizer, TextAnalyzer,
};
use tantivy::{
    DocId, Index, IndexReader, IndexWriter, ReloadPolicy, Score, SegmentOrdinal, SegmentReader,
    TantivyDocument, Term,
};

use super::entries::{fingerprint, key_of, Entries, Entry, NormalizedFilter, Slot};
use super::query::{filter_clause, text_query, QueryWord, WeightedField};

/// The analyzer of every text field and of queries: words are runs of
/// letters and digits (any script), lower-cased and folded to ASCII where
/// a folding exists ("Beyoncé" → "beyonce"). No stemming and no stop words:
/// typo tolerance covers plurals, and "The The" is a band.
const ANALYZER: &str = "boxoffice_words";
/// Longer words are dropped (a pasted URL or a hash is not a word anyone
/// types back), which also bounds the automata built from query words.
const WORD_LENGTH_MAX_BYTES: usize = 40;
/// One indexing thread: the machine has two cores and serves requests.
const WRITER_THREADS: usize = 1;
/// tantivy's per-thread minimum is 15 MB; more only speeds the first build.
const WRITER_MEMORY_BYTES: usize = 50_000_000;

/// The slot of a document: indexed (to delete it) and a fast field (to read
/// it per hit).
const SLOT_FIELD: &str = "slot";

/// Text fields, their weights, and whether the word being typed matches
/// them as a prefix. A title match outranks a performer match, and so on
/// down to the description (which is also long, so BM25 weighs its words
/// less anyway). Descriptions take no prefixes: type-ahead is for names,
/// and a three-letter start matches thousands of description words (it
/// was most of the slowest queries' time).
const TEXT_FIELDS: [(&str, Score, bool); 7] = [
    ("title", 3.0, true),
    ("performer", 2.5, true),
    ("tags", 1.5, true),
    ("genre", 1.5, true),
    ("venue", 1.0, true),
    ("city", 1.0, true),
    ("description", 0.6, false),
];
/// Suggestions (type-ahead) look at titles and performers only.
const SUGGEST_FIELDS: [&str; 2] = ["title", "performer"];

struct Fields {
    slot: Field,
    title: Field,
    performer: Field,
    tags: Field,
    genre: Field,
    venue: Field,
    city: Field,
    description: Field,
    /// The exact (lower-cased) genre and cities, for filter clauses.
    genre_key: Field,
    city_key: Field,
}

fn schema() -> (Schema, Fields) {
    let mut builder = Schema::builder();
    let text = TextOptions::default().set_indexing_options(
        TextFieldIndexing::default()
            .set_tokenizer(ANALYZER)
            .set_index_option(IndexRecordOption::WithFreqs),
    );
    let fields = Fields {
        slot: builder.add_u64_field(SLOT_FIELD, INDEXED | FAST),
        title: builder.add_text_field("title", text.clone()),
        performer: builder.add_text_field("performer", text.clone()),
        tags: builder.add_text_field("tags", text.clone()),
        genre: builder.add_text_field("genre", text.clone()),
        venue: builder.add_text_field("venue", text.clone()),
        city: builder.add_text_field("city", text.clone()),
        description: builder.add_text_field("description", text),
        genre_key: builder.add_text_field("genre_key", STRING),
        city_key: builder.add_text_field("city_key", STRING),
    };
    (builder.build(), fields)
}

fn analyzer() -> TextAnalyzer {
    TextAnalyzer::builder(SimpleTokenizer::default())
        .filter(RemoveLongFilter::limit(WORD_LENGTH_MAX_BYTES))
        .filter(LowerCaser)
        .filter(AsciiFoldingFilter)
        .build()
}

/// What a query asks for.
pub(crate) struct IndexQuery<'a> {
    pub(crate) words: &'a [QueryWord],
    pub(crate) fields: FieldSet,
    pub(crate) filter: &'a NormalizedFilter,
    /// "Now", for the next show.
    pub(crate) now_ms: i64,
    /// How many of the best hits to return.
    pub(crate) depth: usize,
}

#[derive(Debug, Clone, Copy)]
pub(crate) enum FieldSet {
    Everything,
    TitlesAndPerformers,
}

/// A hit: its entry's slot, in rank order.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Hit {
    pub(crate) slot: Slot,
    pub(crate) score: Score,
    pub(crate) next_show_ms: i64,
}

impl Hit {
    /// Relevance first, then the next show (soonest first), then the older
    /// event (slots grow with creation).
    fn rank_cmp(&self, other: &Hit) -> std::cmp::Ordering {
        other
            .score
            .total_cmp(&self.score)
            .then(self.next_show_ms.cmp(&other.next_show_ms))
            .then(self.slot.cmp(&other.slot))
    }
}

/// Keeps the best `depth` hits of `hits`, ranked.
fn best(mut hits: Vec<Hit>, depth: usize) -> Vec<Hit> {
    if hits.len() > depth && depth > 0 {
        hits.select_nth_unstable_by(depth - 1, Hit::rank_cmp);
        hits.truncate(depth);
    } else if depth == 0 {
        hits.clear();
    }
    hits.sort_unstable_by(Hit::rank_cmp);
    hits
}

pub(crate) struct SearchIndex {
    fields: Fields,
    analyzer: TextAnalyzer,
    writer: Mutex<IndexWriter>,
    reader: IndexReader,
    pub(crate) entries: Arc<RwLock<Entries>>,
}

impl SearchIndex {
    pub(crate) fn new() -> tantivy::Result<SearchIndex> {
        let (schema, fields) = schema();
        let index = Index::create_in_ram(schema);
        index.tokenizers().register(ANALYZER, analyzer());
        let writer = index.writer_with_num_threads(WRITER_THREADS, WRITER_MEMORY_BYTES)?;
        let reader = index
            .reader_builder()
            .reload_policy(ReloadPolicy::Manual)
            .try_into()?;
        Ok(SearchIndex {
            fields,
            analyzer: analyzer(),
            writer: Mutex::new(writer),
            reader,
            entries: Arc::new(RwLock::new(Entries::default())),
        })
    }

    pub(crate) fn analyzer(&self) -> &TextAnalyzer {
        &self.analyzer
    }

    pub(crate) fn events(&self) -> usize {
        self.entries.read().map(|e| e.len()).unwrap_or(0)
    }

    pub(crate) fn bytes(&self) -> u64 {
        self.reader
            .searcher()
            .space_usage()
            .map(|usage| usage.total().get_bytes())
            .unwrap_or(0)
    }

    /// Indexes the documents whose content changed; returns how many did.
    /// Searches see them when this returns.
    pub(crate) fn apply(&self, documents: &[SearchDocument]) -> tantivy::Result<usize> {
        let changed: Vec<(Slot, u64, &SearchDocument)> = {
            let mut entries = self.entries.write().map_err(poisoned)?;
            documents
                .iter()
                .filter_map(|document| {
                    let fingerprint = fingerprint(document);
                    let (slot, changed) = entries.slot_for(&document.event.id, fingerprint);
                    changed.then_some((slot, fingerprint, document))
                })
                .collect()
        };
        if changed.is_empty() {
            return Ok(0);
        }
        if let Err(error) = self.write(&changed) {
            // Whatever was written is replaced by the next try.
            if let Ok(mut entries) = self.entries.write() {
                for (slot, _, _) in &changed {
                    entries.invalidate(*slot);
                }
            }
            return Err(error);
        }
        let mut entries = self.entries.write().map_err(poisoned)?;
        for (slot, fingerprint, document) in &changed {
            entries.set(*slot, *fingerprint, Entry::of(document));
        }
        Ok(changed.len())
    }

    /// Merges every segment into one and waits for it: after a build (many
    /// commits), so that each query walks one term dictionary per field
    /// instead of one per segment.
    pub(crate) fn merge_segments(&self) -> tantivy::Result<()> {
        let mut writer = self.writer.lock().map_err(poisoned)?;
        let segments = writer.index().searchable_segment_ids()?;
        if segments.len() > 1 {
            writer.merge(&segments).wait()?;
            self.reader.reload()?;
        }
        Ok(())
    }

    fn write(&self, changed: &[(Slot, u64, &SearchDocument)]) -> tantivy::Result<()> {
        let mut writer = self.writer.lock().map_err(poisoned)?;
        for (slot, _, document) in changed {
            writer.delete_term(Term::from_field_u64(self.fields.slot, u64::from(*slot)));
            writer.add_document(self.document(*slot, document))?;
        }
        writer.commit()?;
        self.reader.reload()
    }

    fn document(&self, slot: Slot, source: &SearchDocument) -> TantivyDocument {
        let fields = &self.fields;
        let event = &source.event;
        let mut document = TantivyDocument::default();
        document.add_u64(fields.slot, u64::from(slot));
        document.add_text(fields.title, &event.title);
        document.add_text(fields.performer, &event.performer);
        document.add_text(fields.description, &event.description);
        document.add_text(fields.genre, &event.genre);
        document.add_text(fields.genre_key, key_of(&event.genre));
        for tag in &event.tags {
            document.add_text(fields.tags, tag);
        }
        let mut places: Vec<(&str, &str)> = source
            .shows
            .iter()
            .filter(|show| show.status != boxoffice_domain::ShowStatus::Cancelled)
            .map(|show| (show.venue_name.as_str(), show.city.as_str()))
            .collect();
        places.sort_unstable();
        places.dedup();
        for (venue, city) in places {
            document.add_text(fields.venue, venue);
            document.add_text(fields.city, city);
            document.add_text(fields.city_key, key_of(city));
        }
        document
    }

    fn weighted(&self, set: FieldSet) -> Vec<WeightedField> {
        let fields = &self.fields;
        let all = [
            fields.title,
            fields.performer,
            fields.tags,
            fields.genre,
            fields.venue,
            fields.city,
            fields.description,
        ];
        TEXT_FIELDS
            .iter()
            .zip(all)
            .filter(|((name, _, _), _)| match set {
                FieldSet::Everything => true,
                FieldSet::TitlesAndPerformers => SUGGEST_FIELDS.contains(name),
            })
            .map(|((_, weight, prefix), field)| WeightedField {
                field,
                weight: *weight,
                prefix: *prefix,
            })
            .collect()
    }

    /// The best `depth` hits of the query that pass its filter, ranked.
    pub(crate) fn search(&self, request: &IndexQuery<'_>) -> tantivy::Result<Vec<Hit>> {
        if request.words.is_empty() || request.depth == 0 {
            return Ok(Vec::new());
        }
        let fields = self.weighted(request.fields);
        let mut clauses: Vec<(Occur, Box<dyn Query>)> =
            vec![(Occur::Must, text_query(&fields, request.words)?)];
        // The exact checks happen in the collector; these clauses only
        // spare it the hits that cannot pass.
        if let Some(genre) = &request.filter.genre {
            clauses.push(filter_clause(Box::new(TermQuery::new(
                Term::from_field_text(self.fields.genre_key, genre),
                IndexRecordOption::Basic,
            ))));
        }
        if let Some(city) = &request.filter.city {
            clauses.push(filter_clause(Box::new(TermQuery::new(
                Term::from_field_text(self.fields.city_key, city),
                IndexRecordOption::Basic,
            ))));
        }
        let query = BooleanQuery::new(clauses);
        let collector = RankingCollector {
            entries: self.entries.clone(),
            filter: Arc::new(request.filter.clone()),
            now_ms: request.now_ms,
            depth: request.depth,
        };
        self.reader.searcher().search(&query, &collector)
    }
}

fn poisoned<T>(_: std::sync::PoisonError<T>) -> tantivy::TantivyError {
    tantivy::TantivyError::InternalError("a search index lock was poisoned".into())
}

/// Collects every hit's slot and score per segment, then (once per segment,
/// under one read lock) drops those the filter refuses and keeps the best.
struct RankingCollector {
    entries: Arc<RwLock<Entries>>,
    filter: Arc<NormalizedFilter>,
    now_ms: i64,
    depth: usize,
}

struct RankingSegment {
    slots: Column<u64>,
    hits: Vec<(Slot, Score)>,
    entries: Arc<RwLock<Entries>>,
    filter: Arc<NormalizedFilter>,
    now_ms: i64,
    depth: usize,
}

impl Collector for RankingCollector {
    type Fruit = Vec<Hit>;
    type Child = RankingSegment;

    fn for_segment(
        &self,
        _segment: SegmentOrdinal,
        reader: &SegmentReader,
    ) -> tantivy::Result<RankingSegment> {
        Ok(RankingSegment {
            slots: reader.fast_fields().u64(SLOT_FIELD)?,
            hits: Vec::new(),
            entries: self.entries.clone(),
            filter: self.filter.clone(),
            now_ms: self.now_ms,
            depth: self.depth,
        })
    }

    fn requires_scoring(&self) -> bool {
        true
    }

    fn merge_fruits(&self, fruits: Vec<Vec<Hit>>) -> tantivy::Result<Vec<Hit>> {
        Ok(best(fruits.into_iter().flatten().collect(), self.depth))
    }
}

impl SegmentCollector for RankingSegment {
    type Fruit = Vec<Hit>;

    fn collect(&mut self, doc: DocId, score: Score) {
        if let Some(slot) = self.slots.first(doc) {
            self.hits
                .push((Slot::try_from(slot).unwrap_or(Slot::MAX), score));
        }
    }

    fn harvest(self) -> Vec<Hit> {
        let Ok(entries) = self.entries.read() else {
            return Vec::new();
        };
        let hits = self
            .hits
            .iter()
            .filter_map(|&(slot, score)| {
                let entry = entries.get(slot)?;
                self.filter.matches(entry).then(|| Hit {
                    slot,
                    score,
                    next_show_ms: entry.next_show_ms(self.now_ms),
                })
            })
            .collect();
        best(hits, self.depth)
    }
}
