package engine

import (
	"context"
	"errors"
	"fmt"
	"time"

	"casesync/engine/mapping"
)

// The ports are what the runner needs from the outside, shaped by the
// runner's work and not by any protocol: a source lists and re-reads
// records, a target finds, creates and updates them, a caller answers the
// enrich, after-step, poll and live-lookup requests, and the state keeps
// what a run must remember. connectors/rest implements the first three from
// the requests a spec declares; internal/state implements the last.
// internal/app wires them together.

// Connectors builds the ports of one plan's connectors. Every pipeline of a
// plan shares one connection per connector, so rate limits are shared.
type Connectors interface {
	// Source reads pipeline p's records from p.Source.
	Source(p *Pipeline) (Source, error)
	// Target writes pipeline p's payloads as p.Upsert declares.
	Target(p *Pipeline) (Target, error)
	// Caller sends the declared requests of the named connector.
	Caller(connector string) (Caller, error)
}

// Source reads a pipeline's records.
type Source interface {
	// List streams the records changed since v.Cursor page by page: fn
	// sees each page as soon as it arrives, and the listing never sits in
	// memory. A page's Records are the records themselves (selected from
	// the answer as the source declares).
	List(ctx context.Context, v *mapping.Vars, fn func(*Page) error) error
	// Get re-reads the one record whose key is v.Key. A record the source
	// no longer has is an error wrapping ErrNotFound.
	Get(ctx context.Context, v *mapping.Vars) (any, error)
}

// ErrNotFound is a record the remote side does not have.
var ErrNotFound = errors.New("not found")

// Page is one page of a listing.
type Page struct {
	Number  int // 1-based
	Records []any
	// Total is the server's announced total, or -1 when it gives none.
	Total int
}

// Target writes payloads. Every write answer carries the target's id
// when it gave one; a failed write whose request may have been applied
// anyway returns an error for which MaybeApplied is true.
type Target interface {
	// Find looks the target up by the business key in v.Key.
	Find(ctx context.Context, payload map[string]any, v *mapping.Vars) (Match, error)
	// Create sends a new record.
	Create(ctx context.Context, payload map[string]any, v *mapping.Vars) (Written, error)
	// Update rewrites the record whose id is v.TargetID.
	Update(ctx context.Context, payload map[string]any, v *mapping.Vars) (Written, error)
	// Preview shows the create (update false) or update that would be
	// sent, without sending it: dry-run prints it.
	Preview(ctx context.Context, update bool, payload map[string]any, v *mapping.Vars) (*CallPreview, error)
}

// Match is what a find came to: how many target records carry the key and,
// when exactly one does, its id and the record itself.
type Match struct {
	Count  int
	ID     string
	Record any
}

// Written is a write the target accepted.
type Written struct {
	// ID is the target's id for the record, "" when the answer has none.
	ID string
	// Transaction is an asynchronous job id the target answered with.
	Transaction any
	// Answer is the target's answer ($response in after-steps).
	Answer any
}

// Caller sends the declared requests of enrich steps, after-steps, polls and
// live lookups.
type Caller interface {
	// Call sends req rendered for input and returns the answer.
	Call(ctx context.Context, req *Request, input any, v *mapping.Vars, o CallOptions) (Answer, error)
	// CallPages follows req's pagination and streams every page.
	CallPages(ctx context.Context, req *Request, input any, v *mapping.Vars, label string, fn func(*Page) error) error
	// Preview renders req without sending it.
	Preview(ctx context.Context, req *Request, input any, v *mapping.Vars) (*CallPreview, error)
}

// CallOptions say what a call is for.
type CallOptions struct {
	// Label names the call in logs, e.g. "cases_to_oscar/after/submit".
	Label string
	// Write marks a request that may change the remote side (an
	// after-step): the connector repeats it after an unknown outcome only
	// when its kind of request is safe to repeat.
	Write bool
	// Check, when set, judges a successful answer (see AnswerCheck).
	Check *AnswerCheck
}

// Answer is a decoded answer.
type Answer struct {
	Body any
	// Records are the records the request's records program selects from
	// Body; nil when the request declares none.
	Records []any
}

// CallPreview is a request as it would be sent, minus credentials.
type CallPreview struct {
	Method string            `json:"method"`
	Path   string            `json:"path"`
	Query  map[string]string `json:"query,omitempty"`
	Body   any               `json:"body,omitempty"`
}

// MaybeApplied reports whether a failed write may have reached the remote
// side anyway (a timeout or a reset after sending).
func MaybeApplied(err error) bool {
	var re *RemoteError
	return errors.As(err, &re) && re.MaybeApplied
}

// RunState is the state port: what a run reads and records. internal/state
// implements it in SQLite. Methods may be called from several goroutines.
type RunState interface {
	StartRun(ctx context.Context, pipeline, specHash, trigger string, at time.Time) (int64, error)
	FinishRun(ctx context.Context, runID int64, status string, counts Counts, errMsg string, at time.Time) error
	// Cursor returns the pipeline's cursor; ok is false before the first run.
	Cursor(ctx context.Context, pipeline string) (value string, ok bool, err error)
	// DueRetries lists queued, unparked records whose next_at has come.
	DueRetries(ctx context.Context, pipeline string, now time.Time, limit int) ([]RetryItem, error)
	// Known returns, in one read, what the state remembers of a page's
	// records: the last write of each record key, the target id linked to
	// each source id, each source record's handled version and each
	// create recorded but never confirmed.
	Known(ctx context.Context, q KnownQuery) (Known, error)
	// BeginCreates durably records, all at once, that creates of these
	// payloads are about to be sent; it returns once the record would
	// survive the process being killed, before any of the requests
	// leaves.
	BeginCreates(ctx context.Context, runID int64, at time.Time, intents []Intent) error
	// AbandonCreate forgets a recorded create that certainly did not
	// reach the target, so a run that stops before its page commits leaves
	// no false alarm behind.
	AbandonCreate(ctx context.Context, pipeline, recordKey string) error
	// CommitPage applies a page's outcomes, links, queue changes and
	// cursor in one transaction. A successful outcome clears the key's
	// queue entry and create intent; a failed one enqueues it (attempts+1,
	// next_at by policy, parked after MaxAttempts).
	CommitPage(ctx context.Context, c PageCommit) error
}

// KnownQuery names the records of a page.
type KnownQuery struct {
	Pipeline string
	// SourceKeys are the page's source record keys; what is known of
	// their fanned-out items (key#item) comes with them.
	SourceKeys []string
	// LinkFrom and LinkTo are the systems of the link ledger: the ids
	// linked from (LinkFrom, source key) to LinkTo are returned.
	LinkFrom, LinkTo string
}

// Known is what the state remembers of a page's records. Absent keys are
// unknown.
type Known struct {
	Records  map[string]RecordState // by record key (key or key#item)
	Links    map[string]string      // record key → linked target id
	Versions map[string]string      // source key → handled version
	Intents  map[string]string      // record key → payload hash of an unconfirmed create
}

// Intent is a create about to be sent.
type Intent struct {
	Pipeline, RecordKey, PayloadHash string
}

// BatchTarget is an optional extension of Target for targets that apply a
// page's writes together, in one transaction (connectors/sql). When the
// pipeline's target implements it, the write stage does not send each
// write on its own: it queues the page's upserts (and removals, see
// Batch.Remove) in a Batch, and the runner flushes the batch once, after
// the page's records are decided and before their outcomes commit to the
// state. A flush applies every queued write or none; when it fails, every
// write it held is recorded failed, with the flush's error and class.
//
// Crash safety: a BatchTarget's writes are upserts by key (INSERT … ON
// CONFLICT DO UPDATE), so repeating one leaves the target as it was. No
// create intent is recorded for them: a crash after the flush and before
// the page's commit makes the next run write the page again, which changes
// nothing; a crash before the flush leaves nothing of the page behind.
type BatchTarget interface {
	Target
	// Batch starts an empty batch.
	Batch() Batch
}

// Batch is one page's queued writes. The records of a page are decided
// concurrently: Upsert and Remove may be called from several goroutines
// at once, Flush once they are done.
type Batch interface {
	// Upsert queues a write of payload for the record key (key, or
	// key#item). An error is the record's (a payload the target cannot
	// take, such as an empty key), and nothing is queued for it.
	Upsert(key string, payload map[string]any, v *mapping.Vars) error
	// Remove queues what the target does with the row of record key
	// whose source record left the source set (deleted, or flagged), by
	// the id the row was written under.
	Remove(key, targetID string) error
	// Flush applies the queued writes in one transaction and empties the
	// batch. A *RowErrors answer applied every write but the ones it
	// names; any other error applied none.
	Flush(ctx context.Context) error
}

// RowErrors is a flush that applied every queued write except the ones
// the target refused (a value a column cannot take): Failed maps each
// refused write's record key to its reason. One bad row costs only its
// record.
type RowErrors struct {
	Failed map[string]error
}

func (e *RowErrors) Error() string {
	for _, err := range e.Failed {
		return fmt.Sprintf("%d rows refused, e.g. %v", len(e.Failed), err)
	}
	return "rows refused"
}

// TableLoader is an optional extension of Connectors for lookups loaded
// whole, once per run (a SQL select): the runner asks for the table the
// first time the run needs it and answers every key from it.
type TableLoader interface {
	// LoadTable loads lookup l's table: key → value (a row object, or the
	// declared value column).
	LoadTable(ctx context.Context, l *APILookup) (map[string]any, error)
}
