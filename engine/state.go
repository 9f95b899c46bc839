package engine

import (
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
	// remembers that version of the record as handled (Known.Versions); a
	// failed outcome with SourceKey set forgets it, so the record is
	// processed again however it is re-read.
	SourceKey     string
	SourceVersion string
	// Unconfirmed marks a failed create that may have reached the target
	// (a timeout or a reset after sending): the state keeps the create's
	// intent (RunState.BeginCreates), so the next attempt looks for the target
	// before creating it again. Every other outcome clears the intent.
	Unconfirmed bool
	// Body is the record itself (JSON) for a failure of a record a webhook
	// pushed (an inbox without fetch): there is no source to re-read it
	// from, so the retry queue keeps it until the record succeeds or is
	// parked. Nil for every other outcome.
	Body []byte
	At   time.Time
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
	// Body is the pushed record kept with the failure (see Outcome.Body);
	// a retry processes it instead of re-reading the source.
	Body []byte
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
	// NotProcessed counts the records a stopped run (RunStoppedError) left
	// unprocessed: those whose failure was the run's (a refused login), and
	// those of its pages it never reached. None is a failure of its own or
	// charged a retry attempt; the cursor stays before them, so the next
	// run takes them again (retries stay queued, deliveries pending).
	NotProcessed int `json:"not_processed,omitempty"`
	// Notes counts the field-level notes of the items (jq note($code)),
	// by code: values left out or changed on purpose, such as a date of
	// birth that is no date.
	Notes map[string]int `json:"notes,omitempty"`
	// LookupMisses counts the run's lookup misses by "lookup:policy"
	// (e.g. "nationality:null"), whatever the policy: a miss that sent
	// null or a default is counted too. Filled when the run ends.
	LookupMisses map[string]int `json:"lookup_misses,omitempty"`
	// Baselined counts the writes a cutover run recorded as delivered by
	// the previous integration instead of sending (SyncOptions.Baseline);
	// they are among Unchanged.
	Baselined int `json:"baselined,omitempty"`
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
	// Delivery is the delivery envelope filters read (JSON: id, event,
	// query, headers), kept until the delivery is processed.
	Delivery []byte
	Received time.Time
	Attempts int
	// Window is how long a processed delivery id stays a duplicate
	// (InboxPut only); negative: for ever.
	Window time.Duration
}
