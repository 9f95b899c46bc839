package engine

import (
	"context"
	"time"
)

// Action is what happened to one record.
type Action string

// The outcomes a record can have.
const (
	ActionCreated   Action = "created"
	ActionUpdated   Action = "updated"
	ActionUnchanged Action = "unchanged"
	ActionSkipped   Action = "skipped"
	ActionFailed    Action = "failed"
)

// Outcome is what one record (or one fanned-out item) came to in a run. It
// holds ids, hashes and reason codes only: never names, dates of birth or
// free text from a case.
type Outcome struct {
	RecordKey   string
	Action      Action
	Reason      string // stable code: no_consent, lookup_miss_province_owner, http_422, …
	Error       string // sanitized message: no record content, no secrets
	Class       Class  // for failures
	TargetID    string
	Transaction string
	PayloadHash string
	// CursorValue is the record's cursor field value, kept with a failure
	// so a retry can re-list from there.
	CursorValue string
	// Link, when set, is written in the same transaction as the outcome.
	Link *Link
	// SourceKey is the source record this outcome came from (the record
	// key without a fan-out suffix). With SourceVersion set, the state
	// remembers that version of the record as handled (see
	// SourceVersions); a failed outcome with SourceKey set forgets it, so
	// the record is processed again however it is re-read.
	SourceKey     string
	SourceVersion string
	// Unconfirmed marks a failed create that may have reached the target
	// (a timeout or a reset after sending): the state keeps the create's
	// intent (see WriteIntents), so the next attempt looks for the target
	// before creating it again. Every other outcome clears the intent.
	Unconfirmed bool
	At          time.Time
}

// WriteIntents is an optional State method set: a State that records a
// create before it is sent lets the runner tell, after a crash between a
// write and its page's commit, that the same payload may already be at the
// target, and find it there instead of creating it twice. internal/state
// implements it.
type WriteIntents interface {
	// BeginCreate durably records that a create of the payload with this
	// hash is about to be sent for a record; it must be committed before
	// the request leaves.
	BeginCreate(ctx context.Context, pipeline, recordKey, payloadHash string, runID int64, at time.Time) error
	// CreateIntent returns the payload hash of a create recorded by
	// BeginCreate whose outcome was never committed (or was Unconfirmed).
	CreateIntent(ctx context.Context, pipeline, recordKey string) (payloadHash string, ok bool, err error)
	// AbandonCreate forgets a recorded create that certainly did not reach
	// the target (the connector says nothing was applied), so a run that
	// stops before its page commits leaves no false alarm behind.
	AbandonCreate(ctx context.Context, pipeline, recordKey string) error
}

// SourceVersions is an optional State method: a State that remembers the
// version of each source record it has fully handled lets the runner skip a
// record re-read in the cursor's overlap window whose version is unchanged,
// before any enrich request or write. Without it the payload hash alone
// keeps the target quiet. internal/state implements it.
type SourceVersions interface {
	// SourceVersion returns the version last recorded for a source record
	// of a pipeline; ok is false when none is (never handled, or failed
	// since).
	SourceVersion(ctx context.Context, pipeline, recordKey string) (version string, ok bool, err error)
}

// Link is one row of the cross-system identity ledger.
type Link struct {
	SystemA, IDA string
	SystemB, IDB string
	Pipeline     string
}

// RetryPolicy tells the state how to schedule a failed record.
type RetryPolicy struct {
	MaxAttempts int
	Base, Max   time.Duration
}

// PageCommit is everything one page changes, committed atomically: the
// outcomes, their links, the retry queue, and (on the listing's last page)
// the cursor. A crash before commit loses nothing: the page is read again.
type PageCommit struct {
	RunID    int64
	Pipeline string
	Outcomes []Outcome
	// Cursor, when non-nil, is the pipeline's new cursor value.
	Cursor *string
	Retry  RetryPolicy
	Now    time.Time
}

// RetryItem is one failed record in the retry queue.
type RetryItem struct {
	Pipeline    string
	RecordKey   string
	Attempts    int
	NextAt      time.Time
	LastError   string
	Reason      string
	Class       Class
	CursorValue string
	Parked      bool
	UpdatedAt   time.Time
}

// RunInfo is one row of the runs table.
type RunInfo struct {
	ID       int64
	Pipeline string
	SpecHash string
	Trigger  string
	Started  time.Time
	Finished time.Time // zero while running (or after a crash)
	Status   string    // running, succeeded, failed, interrupted
	Counts   Counts
	Error    string
}

// Counts are a run's per-action totals.
type Counts struct {
	Read      int `json:"read"`
	Created   int `json:"created"`
	Updated   int `json:"updated"`
	Unchanged int `json:"unchanged"`
	Skipped   int `json:"skipped"`
	Failed    int `json:"failed"`
}

// Add counts one outcome.
func (c *Counts) Add(a Action) {
	switch a {
	case ActionCreated:
		c.Created++
	case ActionUpdated:
		c.Updated++
	case ActionUnchanged:
		c.Unchanged++
	case ActionSkipped:
		c.Skipped++
	case ActionFailed:
		c.Failed++
	}
}

// RecordState is the last write the engine made for one record key.
type RecordState struct {
	PayloadHash string
	TargetID    string
	Action      Action
	UpdatedAt   time.Time
}

// AuditEntry is one audit row: who did what to which record, by id.
type AuditEntry struct {
	At        time.Time
	Actor     string // "engine", "cli:<user>", "inbox"
	Action    string // cursor_set, retry_requested, run_started, …
	Pipeline  string
	RecordKey string
	Detail    string // ids and codes only
}

// InboxItem is one webhook delivery waiting to be processed.
type InboxItem struct {
	ID         int64
	Inbox      string // pipeline name
	DeliveryID string // hash of the delivery, for de-duplication
	RecordKey  string
	Body       []byte // kept only when the record cannot be re-fetched
	Received   time.Time
	Attempts   int
}

// State is the engine's memory, one SQLite file in production
// (internal/state). Lifecycle:
//  1. open with state.Open(path) (migrates the schema);
//  2. use from any goroutine: writes are serialised by a single writer;
//  3. the opener calls Close.
type State interface {
	StartRun(ctx context.Context, pipeline, specHash, trigger string, at time.Time) (int64, error)
	FinishRun(ctx context.Context, runID int64, status string, counts Counts, errMsg string, at time.Time) error

	// Cursor returns the pipeline's cursor; ok is false before the first run.
	Cursor(ctx context.Context, pipeline string) (value string, ok bool, err error)
	// SetCursor sets or rewinds a cursor by hand and audits it.
	SetCursor(ctx context.Context, pipeline, value, actor string, at time.Time) error

	// CommitPage applies a page's outcomes, links, queue changes and cursor
	// in one transaction. A successful outcome clears the key's queue entry;
	// a failed one enqueues it (attempts+1, next_at by policy, parked after
	// MaxAttempts).
	CommitPage(ctx context.Context, c PageCommit) error

	// Record returns the last write for a record key of a pipeline.
	Record(ctx context.Context, pipeline, recordKey string) (RecordState, bool, error)
	// FindLink returns the id on systemB linked to (systemA, idA), searching
	// both orientations of the ledger.
	FindLink(ctx context.Context, systemA, idA, systemB string) (string, bool, error)

	// DueRetries lists queued, unparked records whose next_at has come.
	DueRetries(ctx context.Context, pipeline string, now time.Time, limit int) ([]RetryItem, error)
	// Failures lists the queue (parked included); pipeline "" means all.
	Failures(ctx context.Context, pipeline string) ([]RetryItem, error)
	// RequeueNow makes queued records due now (and unparks them); key ""
	// means every record of the pipeline. It returns how many it touched.
	RequeueNow(ctx context.Context, pipeline, recordKey, actor string, at time.Time) (int, error)

	Runs(ctx context.Context, pipeline string, limit int) ([]RunInfo, error)
	// LastRun returns the latest run of a pipeline.
	LastRun(ctx context.Context, pipeline string) (RunInfo, bool, error)

	Audit(ctx context.Context, e AuditEntry) error

	// InboxPut persists a delivery; dup is true when DeliveryID was seen.
	InboxPut(ctx context.Context, item InboxItem) (dup bool, err error)
	// InboxPending lists deliveries not yet processed, oldest first.
	InboxPending(ctx context.Context, inbox string, limit int) ([]InboxItem, error)
	// InboxDone marks a delivery processed (its body, if any, is deleted).
	InboxDone(ctx context.Context, id int64, at time.Time) error

	Close() error
}
